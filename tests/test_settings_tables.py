"""The one typed settings loader (heicconv.config.tables) and the tables that use it.

Every adapter's table (``[server]``, ``[worker]``, ``[lambda]``, ``[cli]``) is a dataclass filled by
``tables.load`` in the one precedence (command line > environment > profile > file > default), with
the source of each value and one error text naming the key and where it was set.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

import heicconv
from heicconv.config import tables
from heicconv.config.rules import choice, integer, text


@dataclasses.dataclass(frozen=True)
class Example:
    name: str = tables.setting("", text(str.strip), help="a name (default {default!r})")
    count: int = tables.setting(3, integer(1, 9), short="-c", help="how many ({default})")
    mode: str = tables.setting("fast", choice("fast", "slow"))
    ratio: float = 0.5  # a plain field: the rule of its type
    verbose: bool = False


def _file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    (tmp_path / "heicconv.toml").write_text(body)
    monkeypatch.chdir(tmp_path)


def test_each_key_from_its_strongest_source_with_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _file(
        tmp_path,
        monkeypatch,
        "[bench]\nname = ' file '\ncount = 2\nmode = 'slow'\nratio = 1\n"
        "[profiles.edge.bench]\ncount = 4\n",
    )
    monkeypatch.setenv("HEICCONV_PROFILE", "edge")
    monkeypatch.setenv("HEICCONV_BENCH_MODE", "FAST")
    monkeypatch.setenv("HEICCONV_BENCH_VERBOSE", "yes")
    loaded = tables.load(Example, "bench", {"name": "flag", "count": None})
    assert loaded.value == Example(name="flag", count=4, mode="fast", ratio=1.0, verbose=True)
    assert loaded.where("name") == "the command line"
    assert loaded.where("count") == "heicconv.toml [profiles.edge.bench]"
    assert loaded.where("mode") == "the environment (HEICCONV_BENCH_MODE)"
    assert loaded.where("ratio") == "heicconv.toml [bench]"
    assert loaded.where("verbose") == "the environment (HEICCONV_BENCH_VERBOSE)"
    defaulted = tables.load(Example, "bench", defaults={"ratio": 0.25}, check_keys=False)
    assert defaulted.value.ratio == 1.0 and defaulted.value.name == "file"  # a source beats a load-time default
    monkeypatch.delenv("HEICCONV_PROFILE")
    (tmp_path / "heicconv.toml").write_text("")
    assert tables.load(Example, "bench", defaults={"ratio": 0.25}).value.ratio == 0.25


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("HEICCONV_BENCH_COUNT=10", "bench.count: must be an integer from 1 to 9, got '10' (in the environment "),
        ("HEICCONV_BENCH_COUNT=many", "bench.count: must be an integer from 1 to 9, got 'many' (in the environment "),
        ("HEICCONV_BENCH_MODE=warp", "bench.mode: must be one of fast, slow, got 'warp' (in the environment "),
        ("HEICCONV_BENCH_RATIO=-1", "bench.ratio: must be a number of at least 0.0, got '-1' (in the environment "),
        ("HEICCONV_BENCH_VERBOSE=maybe", "bench.verbose: must be true or false, got 'maybe' (in the environment "),
        ("HEICCONV_BENCH_COLOUR=red", "bench.colour: unknown key (in the environment (HEICCONV_BENCH_COLOUR)); known"),
    ],
)
def test_one_error_text_names_the_key_the_value_and_where(
    monkeypatch: pytest.MonkeyPatch, env: str, message: str
) -> None:
    name, _, value = env.partition("=")
    monkeypatch.setenv(name, value)
    with pytest.raises(heicconv.ConfigError) as caught:
        tables.load(Example, "bench")
    assert str(caught.value).startswith(message)


def test_others_keys_are_accepted_and_check_keys_false_leaves_them_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_BENCH_SPEED", "9")
    assert tables.load(Example, "bench", others=("speed",)).value == Example()
    assert tables.load(Example, "bench", check_keys=False).value == Example()
    with pytest.raises(heicconv.ConfigError, match=r"bench\.speed: unknown key"):
        tables.load(Example, "bench")


def test_a_field_without_a_rule_for_its_type_is_a_programming_error() -> None:
    @dataclasses.dataclass(frozen=True)
    class Odd:
        size: tuple[int, int] = (1, 1)

    with pytest.raises(TypeError, match=r"Odd.size: .* needs a rule"):
        tables.load(Odd, "bench")


def test_flags_come_from_the_fields_and_go_back_as_overrides() -> None:
    parser = argparse.ArgumentParser(prog="x")
    tables.add_flags(parser, Example)
    assert "how many (3)" in parser.format_help() and "{fast,slow}" in parser.format_help()
    args = parser.parse_args(["-c", "5", "--mode", "slow"])
    overrides = tables.flag_values(args, Example)
    assert overrides == {"name": None, "count": 5, "mode": "slow", "ratio": None, "verbose": None}
    loaded = tables.load(Example, "bench", overrides)
    assert (loaded.value.count, loaded.value.mode, loaded.where("count")) == (5, "slow", "the command line")
    with pytest.raises(SystemExit):
        parser.parse_args(["--count", "many"])  # argparse refuses a flag its type cannot read, as before
