"""The one typed settings loader (heicconv.config.tables) and the tables that use it.

Every adapter's table (``[server]``, ``[worker]``, ``[lambda]``, ``[cli]``) is a dataclass filled by
``tables.load`` in the one precedence (command line > environment > profile > file > default), with
the source of each value and one error text naming the key and where it was set.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

import heicconv
from heicconv.aws_lambda import settings as lambda_settings
from heicconv.aws_lambda.queue_worker import settings as worker_settings
from heicconv.backends import http as http_backend
from heicconv.backends import lambda_invoke
from heicconv.bench import cli as bench_cli
from heicconv.cli import settings as cli_settings
from heicconv.config import tables
from heicconv.config.rules import choice, integer, text
from heicconv.server import settings as server_settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


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
        "[bench]\nname = ' file '\ncount = 2\nmode = 'slow'\nratio = 1\n[profiles.edge.bench]\ncount = 4\n",
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


@pytest.mark.parametrize(
    ("load", "env", "message"),
    [
        (server_settings.load, "HEICCONV_SERVER_PORT=70000", "server.port: must be an integer from 0 to 65535"),
        (worker_settings.load, "HEICCONV_WORKER_WAIT_TIME=30", "worker.wait_time: must be an integer from 0 to 20"),
        (lambda_settings.load, "HEICCONV_LAMBDA_URL_EXPIRES=0", "lambda.url_expires: must be an integer of at least 1"),
        (cli_settings.load, "HEICCONV_CLI_QUALITY=500", "cli.quality: must be an integer from 1 to 100"),
        (cli_settings.load, "HEICCONV_CLI_HDR=yes", "cli.hdr: must be one of keep, drop"),
        (cli_settings.load, "HEICCONV_CLI_JOBS=0", "cli.jobs: must be an integer of at least 1, or 'auto'"),
        (cli_settings.load, "HEICCONV_CLI_STRIP=perhaps", "cli.strip: must be true or false"),
        (http_backend.read_settings, "HEICCONV_HTTP_RETRIES=11", "http.retries: must be an integer from 0 to 10"),
        (http_backend.read_settings, "HEICCONV_HTTP_VERIFY=maybe", "http.verify: must be true or false"),
        (
            lambda_invoke.read_settings,
            "HEICCONV_LAMBDA_TIMEOUT=0",
            "lambda.timeout: must be a number of at least 0.001",
        ),
    ],
)
def test_every_adapter_table_gives_the_same_error_text(
    monkeypatch: pytest.MonkeyPatch, load: object, env: str, message: str
) -> None:
    name, _, value = env.partition("=")
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("HEICCONV_WORKER_QUEUE", "https://sqs.example/q")
    with pytest.raises(heicconv.ConfigError) as caught:
        load()  # type: ignore[operator]
    assert str(caught.value) == f"{message}, got {value!r} (in the environment ({name}))"


def test_a_digit_that_is_not_a_number_is_a_config_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_CLI_IMAGE_INDEX", "²")  # str.isdigit() says yes, int() says no
    with pytest.raises(heicconv.ConfigError, match=r"cli.image_index: expected a number from 0"):
        cli_settings.load()


def test_the_cli_table_keeps_its_values_none_when_unset_and_reads_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli_settings.load() == cli_settings.CliSettings()
    _file(tmp_path, monkeypatch, "[cli]\nfrom = 'heic, jpg'\njobs = 'auto'\nimage_index = 'ALL'\nmax_size = 800\n")
    cli = cli_settings.load()
    assert (cli.from_formats, cli.jobs, cli.image_index, cli.max_size) == (("heic", "jpeg"), None, "all", (800, 800))
    (tmp_path / "heicconv.toml").write_text("[cli]\noverwrite = true\nskip_existing = 'yes'\n")
    with pytest.raises(heicconv.ConfigError, match=r"cli.overwrite \(in heicconv.toml \[cli\]\), cli.skip_existing"):
        cli_settings.load()


def test_the_worker_still_needs_a_queue_and_lambda_s3_oversize_a_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(heicconv.ConfigError, match=r"worker\.queue: the SQS queue URL is required"):
        worker_settings.load()
    monkeypatch.setenv("HEICCONV_LAMBDA_OVERSIZE", "s3")
    with pytest.raises(heicconv.ConfigError, match=r"lambda.oversize: 's3' needs a bucket.*got 's3' \(in the env"):
        lambda_settings.load()
    monkeypatch.setenv("HEICCONV_LAMBDA_OUTPUT_BUCKET", " out ")
    monkeypatch.setenv("HEICCONV_LAMBDA_FUNCTION", "caller-key")  # the lambda backend's key, same table
    monkeypatch.setenv("HEICCONV_LAMBDA_METRICS_NAMESPACE", " ")
    cfg = lambda_settings.load()
    assert (cfg.output_bucket, cfg.metrics_namespace) == ("out", "heicconv")


def test_the_deployment_page_quotes_the_error_text_the_service_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_SERVER_QUEUE", "lots")
    with pytest.raises(heicconv.ConfigError) as caught:
        server_settings.load()
    page = " ".join((DOCS / "deployment.md").read_text(encoding="utf-8").split())
    assert f"`{caught.value}`" in page


def _rows(page: str, heading: str) -> list[tuple[str, ...]]:
    text = (DOCS / page).read_text(encoding="utf-8").split(heading, 1)[1]
    table = re.search(r"((?:^\|.*\n)+)", text, re.M)
    assert table, f"{page}: no table under {heading}"
    return [tuple(c.strip() for c in line.strip("|").split("|")) for line in table.group(1).splitlines()[2:]]


@pytest.mark.parametrize(
    ("cls", "page", "heading", "env"),
    [
        (worker_settings.WorkerSettings, "deployment.md", "### `[worker]`", "HEICCONV_WORKER_"),
        (lambda_settings.LambdaSettings, "deployment.md", "The function's own keys follow", "HEICCONV_LAMBDA_"),
        (server_settings.ServerSettings, "deployment.md", "### `[server]`", "HEICCONV_SERVER_"),
        (cli_settings.CliSettings, "cli.md", "## Configuration", ""),
    ],
)
def test_every_key_of_a_table_is_documented_with_its_variable(cls: type, page: str, heading: str, env: str) -> None:
    rows = _rows(page, heading)
    assert {row[0].strip("`") for row in rows} == set(tables.keys(cls))
    if env:
        assert all(row[1] == f"`{env}{row[0].strip('`').upper()}`" for row in rows)


@pytest.mark.parametrize(
    ("load", "toml", "env"),
    [
        (server_settings.load, "", "HEICCONV_SERVER_QUEUE=lots"),
        (cli_settings.load, "[cli]\nhdr = 'yes'\n", ""),
        (worker_settings.load, "[worker]\ncolour = 'red'\n", ""),
    ],
)
def test_the_configuration_page_quotes_the_adapter_error_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: object, toml: str, env: str
) -> None:
    _file(tmp_path, monkeypatch, toml)
    if env:
        monkeypatch.setenv(*env.split("=", 1))
    with pytest.raises(heicconv.ConfigError) as caught:
        load()  # type: ignore[operator]
    assert f"\n{caught.value}\n" in (DOCS / "configuration.md").read_text(encoding="utf-8")


def test_the_remote_backends_read_their_tables_with_the_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _file(
        tmp_path,
        monkeypatch,
        '[http]\nurl = "http://file:8000"\nverify = "no"\ntoken = "secret"\n'
        '[profiles.p.http]\nurl = " http://profile:8000 "\n'
        '[lambda]\nfunction = " heicconv:live "\nstaging_prefix = "/in/"\noutput_bucket = "out"\n',
    )
    cfg = http_backend.read_settings()
    assert (cfg.url, cfg.verify, cfg.retries, cfg.timeout) == ("http://file:8000", False, 3, 60.0)
    assert "secret" not in repr(cfg)
    monkeypatch.setenv("HEICCONV_PROFILE", "p")
    assert http_backend.read_settings().url == "http://profile:8000"  # a profile's table, stripped
    monkeypatch.setenv("HEICCONV_HTTP_URL", "http://env:8000")
    assert http_backend.read_settings().url == "http://env:8000"  # the environment beats the profile
    # The backend reads its keys of [lambda] and leaves the handler's (output_bucket) to the handler.
    lam = lambda_invoke.read_settings()
    assert (lam.function, lam.staging_prefix, lam.timeout) == ("heicconv:live", "in/", 120.0)
    assert lambda_settings.load().output_bucket == "out"
    assert tuple(f.name for f in dataclasses.fields(lambda_invoke.LambdaSettings)) == lambda_invoke.LAMBDA_CALLER_KEYS
    monkeypatch.setenv("HEICCONV_HTTP_URLS", "http://typo")
    with pytest.raises(heicconv.ConfigError, match=r"http.urls: unknown key \(in the environment \(HEICCONV_HTTP_URLS"):
        http_backend.read_settings()
    monkeypatch.setenv("HEICCONV_LAMBDA_FUNCTON", "typo")  # the handler checks the whole table
    with pytest.raises(heicconv.ConfigError, match=r"lambda.functon: unknown key"):
        lambda_settings.load()


def test_the_http_backend_without_a_url_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(heicconv.BackendUnavailableError, match="set HEICCONV_HTTP_URL"):
        http_backend.read_settings()


def test_the_bench_table_is_read_with_the_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _file(tmp_path, monkeypatch, '[bench]\nruns = 5\nformats = ["png", "webp"]\nlambda_x86_gb_s = 0.00001\n')
    args = bench_cli.build_parser().parse_args(["x.heic", "--formats", "avif"])
    loaded = bench_cli.read_settings(args)
    assert (loaded.value.runs, loaded.value.formats, loaded.value.timeout) == (5, ("avif",), 900.0)
    assert (loaded.where("runs"), loaded.where("formats")) == ("heicconv.toml [bench]", "the command line")
    assert bench_cli.model_from(args, loaded).prices.lambda_x86_gb_s == 0.00001
    monkeypatch.setenv("HEICCONV_BENCH_LAMBDA_ARM64_GB_S", "nan")
    with pytest.raises(
        heicconv.ConfigError, match=r"bench.lambda_arm64_gb_s: must be a number >= 0, got 'nan' \(in the env"
    ):
        bench_cli.model_from(args, loaded)
    monkeypatch.setenv("HEICCONV_BENCH_RUNS", "0")
    with pytest.raises(heicconv.ConfigError) as caught:
        bench_cli.read_settings(args)
    assert (
        str(caught.value)
        == "bench.runs: must be an integer of at least 1, got '0' (in the environment (HEICCONV_BENCH_RUNS))"
    )
