"""The command line, run as users run it: ``python -m heicconv`` in a subprocess, on generated files.

Files of the real-world corpus are used only when ``HEICCONV_CORPUS`` points at it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import heicconv
from heicconv import Limits, Options
from heicconv.cli.run import Item, Outcome, execute
from heicconv.testing.fixtures import make_heic, make_image

CORPUS = os.environ.get("HEICCONV_CORPUS")
needs_corpus = pytest.mark.skipif(not CORPUS, reason="HEICCONV_CORPUS is not set")
REAL_JSON_KEYS = {"path", "output", "status", "error", "seconds", "width", "height", "backend"}


def _env(**extra: str) -> dict[str, str]:
    # The user's own heicconv settings must not leak into the tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env.pop("HEICCONV_CONFIG", None)
    env.update(extra)
    return env


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "heicconv", *args],
        cwd=cwd,
        env=env if env is not None else _env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def records(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def by_path(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {Path(r["path"]).name: r for r in records(result)}


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def decoded_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.load()  # a truncated file fails here
        width, height = img.size
        return width, height


@pytest.fixture(scope="module")
def heic() -> bytes:
    return make_heic(size=(96, 64))


@pytest.fixture(scope="module")
def heic_alpha() -> bytes:
    return make_heic(size=(40, 30), mode="RGBA")


@pytest.fixture
def tree(tmp_path: Path, heic: bytes, heic_alpha: bytes) -> Path:
    """src/ with HEIC files under every suffix spelling, a sub-folder, and files that are not images."""
    src = tmp_path / "src"
    (src / "trip" / "day1").mkdir(parents=True)
    (src / "a.heic").write_bytes(heic)
    (src / "B.HEIC").write_bytes(heic_alpha)
    (src / "c.heif").write_bytes(heic)
    (src / "trip" / "d.HIF").write_bytes(heic)
    (src / "trip" / "day1" / "e.heic").write_bytes(heic)
    (src / "trip" / "f.png").write_bytes(make_image("png", size=(20, 10)))
    (src / "notes.txt").write_text("not an image")
    (src / "._a.heic").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    return src


# The two-path form used by the README.


def test_short_form_converts_and_never_clobbers(tmp_path: Path, heic: bytes) -> None:
    (tmp_path / "in.heic").write_bytes(heic)
    first = run("in.heic", "out.jpg", "--quality", "70", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert decoded_size(tmp_path / "out.jpg") == (96, 64)
    before = (tmp_path / "out.jpg").read_bytes()

    again = run("in.heic", "out.jpg", "--quality", "20", cwd=tmp_path)
    assert again.returncode == 1
    assert "--overwrite" in again.stderr
    assert (tmp_path / "out.jpg").read_bytes() == before

    forced = run("in.heic", "out.jpg", "--quality", "20", "--overwrite", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "out.jpg").read_bytes() != before
    assert (tmp_path / "in.heic").read_bytes() == heic


def test_short_form_takes_the_format_from_the_suffix(tmp_path: Path, heic_alpha: bytes) -> None:
    (tmp_path / "in.HEIC").write_bytes(heic_alpha)
    result = run("in.HEIC", "sub/out.png", "--backend", "pillow", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "sub" / "out.png") as img:
        assert (img.format, img.size, img.mode) == ("PNG", (40, 30), "RGBA")


# convert: layout, names, which files are read.


def test_convert_mirrors_the_folder_tree(tree: Path, tmp_path: Path) -> None:
    result = run("convert", "src", "-r", "-o", "out", "-j", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    # By default folders give their HEIF files only (.heic .heif .hif, any case): f.png is left alone.
    assert files_under(out) == {"a.jpg", "B.jpg", "c.jpg", "trip/d.jpg", "trip/day1/e.jpg"}
    assert decoded_size(out / "B.jpg") == (40, 30)
    assert "ignored 1 file(s)" in result.stderr  # notes.txt
    assert "ignored 1 image(s)" in result.stderr and "--from all" in result.stderr  # f.png

    every = run("convert", "src", "-r", "-o", "all", "-j", "1", "--from", "all", cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    assert files_under(tmp_path / "all") == files_under(out) | {"trip/f.jpg"}
    assert decoded_size(tmp_path / "all" / "trip" / "f.jpg") == (20, 10)


def test_convert_without_recursive_stays_at_the_top(tree: Path, tmp_path: Path) -> None:
    result = run("convert", "src", "-o", "out", "--to", "webp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert files_under(tmp_path / "out") == {"a.webp", "B.webp", "c.webp"}


def test_convert_writes_next_to_the_inputs_by_default(tree: Path, tmp_path: Path) -> None:
    before = {name: (tree / name).read_bytes() for name in files_under(tree)}
    result = run("convert", "src", "-r", "--to", "png", "--from", "heic,png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    made = files_under(tree) - set(before)
    assert made == {"a.png", "B.png", "c.png", "trip/d.png", "trip/day1/e.png"}
    # f.png is already PNG: its output would be itself, so it is left alone, and no input changed.
    assert all((tree / name).read_bytes() == data for name, data in before.items())
    assert "left 1 png file(s)" in result.stderr


def test_explicit_non_image_is_skipped_with_a_note(tree: Path, tmp_path: Path) -> None:
    result = run("convert", "src/notes.txt", "src/a.heic", "-o", "out", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = by_path(result)
    assert got["notes.txt"]["status"] == "skipped"
    assert "not an image" in got["notes.txt"]["note"]
    assert got["a.heic"]["status"] == "converted"


def test_an_image_without_an_image_suffix_is_read_by_content(tmp_path: Path, heic: bytes) -> None:
    (tmp_path / "IMG_0001").write_bytes(heic)
    result = run("convert", "IMG_0001", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert decoded_size(tmp_path / "IMG_0001.jpg") == (96, 64)


# Never lose or clobber data.


def test_existing_outputs_are_kept_unless_overwrite(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"precious")

    default = run("convert", "src", "-o", "out", "--json", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert (out / "a.jpg").read_bytes() == b"precious"
    record = by_path(default)["a.heic"]
    assert record["status"] == "skipped"
    assert "exists" in record["note"]
    assert "--overwrite replaces them" in default.stderr

    quiet = run("convert", "src", "-o", "out", "--skip-existing", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "a.heic" not in quiet.stderr  # skipped without a note
    assert (out / "a.jpg").read_bytes() == b"precious"

    forced = run("convert", "src", "-o", "out", "--overwrite", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert decoded_size(out / "a.jpg") == (96, 64)


def test_an_output_folder_inside_the_input_is_not_read_again(tree: Path, tmp_path: Path) -> None:
    first = run("convert", "src", "-r", "-o", "src/converted", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run("convert", "src", "-r", "-o", "src/converted", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert {r["status"] for r in records(again)} == {"skipped"}
    assert not (tree / "converted" / "converted").exists()


def test_output_dir_must_be_a_folder(tree: Path, tmp_path: Path) -> None:
    result = run("convert", "src", "-o", "src/notes.txt", cwd=tmp_path)
    assert result.returncode == 2
    assert "not a folder" in result.stderr


def test_overwrite_and_skip_existing_exclude_each_other(tree: Path, tmp_path: Path) -> None:
    result = run("convert", "src", "--overwrite", "--skip-existing", cwd=tmp_path)
    assert result.returncode == 2
    assert "not allowed with" in result.stderr


def test_two_inputs_for_one_output_is_a_conflict(tmp_path: Path, heic: bytes, heic_alpha: bytes) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.heic").write_bytes(heic)
    (tmp_path / "src" / "a.HEIC").write_bytes(heic_alpha)
    (tmp_path / "src" / "b.heic").write_bytes(heic)
    result = run("convert", "src", "-o", "out", "--json", cwd=tmp_path)
    assert result.returncode == 1
    got = records(result)
    conflicts = [r for r in got if r["status"] == "failed"]
    assert {Path(r["path"]).name for r in conflicts} == {"a.heic", "a.HEIC"}
    assert all("conflict" in r["error"] for r in conflicts)
    assert files_under(tmp_path / "out") == {"b.jpg"}


def test_an_output_never_replaces_an_input(tmp_path: Path, heic: bytes) -> None:
    (tmp_path / "a.heic").write_bytes(heic)
    result = run("convert", "a.heic", "--to", "heic", "--overwrite", cwd=tmp_path)
    assert result.returncode == 1
    assert "would replace the input" in result.stderr
    assert (tmp_path / "a.heic").read_bytes() == heic


def test_a_bad_file_fails_alone(tree: Path, tmp_path: Path) -> None:
    (tree / "broken.heic").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00garbage" * 20)
    (tree / "empty.heic").write_bytes(b"")
    result = run("convert", "src", "-o", "out", "-j", "2", "--json", cwd=tmp_path)
    assert result.returncode == 1
    got = by_path(result)
    assert got["broken.heic"]["status"] == "failed"
    assert got["empty.heic"]["status"] == "failed"
    assert got["broken.heic"]["error"]
    assert "src/broken.heic" in result.stderr  # the plain line names the file
    assert files_under(tmp_path / "out") == {"a.jpg", "B.jpg", "c.jpg"}
    assert "failed 2" in result.stderr


def test_dry_run_writes_nothing(tree: Path, tmp_path: Path) -> None:
    before = files_under(tmp_path)
    result = run("convert", "src", "-r", "-o", "out", "--dry-run", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert files_under(tmp_path) == before
    assert not (tmp_path / "out").exists()
    got = records(result)
    assert {r["status"] for r in got} == {"planned"}
    assert {Path(r["output"]).relative_to("out").as_posix() for r in got} >= {"trip/day1/e.jpg", "a.jpg"}


def test_interrupted_run_leaves_only_complete_files(tmp_path: Path) -> None:
    data = make_heic(size=(1024, 768))
    src = tmp_path / "src"
    src.mkdir()
    for n in range(150):
        (src / f"p{n:03d}.heic").write_bytes(data)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "heicconv", "convert", "src", "-o", "out", "-j", "1", "--to", "png"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.is_dir() and any(not n.startswith(".") for n in os.listdir(out))):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no output appeared"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    names = os.listdir(out)
    assert not [n for n in names if n.startswith(".")], "temporary files left behind"
    assert 0 < len(names) < 150
    for name in names:
        assert decoded_size(out / name) == (1024, 768)


# Output formats: JSON, plain lines.


def test_json_lines_parse_and_carry_every_field(tree: Path, tmp_path: Path) -> None:
    result = run("convert", "src", "-r", "-o", "out", "--json", "-j", "2", "--from", "all", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = records(result)
    assert len(got) == 6
    for record in got:
        assert record.keys() >= REAL_JSON_KEYS
        assert record["status"] == "converted"
        assert record["backend"] == heicconv.select().name  # auto's first available backend
        assert Path(tmp_path / record["output"]).is_file()
        assert decoded_size(tmp_path / record["output"]) == (record["width"], record["height"])


def test_no_escape_codes_when_not_on_a_terminal(tree: Path, tmp_path: Path) -> None:
    (tree / "broken.heic").write_bytes(b"\x00\x00\x00\x10ftypheic" + b"\x00" * 8)
    result = run("convert", "src", "-r", "-o", "out", "--from", "all", cwd=tmp_path)
    assert result.returncode == 1
    for text in (result.stdout, result.stderr):
        assert "\x1b" not in text
        assert "\r" not in text
    assert "converted 6" in result.stderr
    info = run("info", "src/a.heic", cwd=tmp_path)
    assert "\x1b" not in info.stdout + info.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal(tree: Path, tmp_path: Path) -> None:
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "heicconv", "convert", "src", "-r", "-o", "out", "-j", "1", "--from", "all"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    assert proc.wait(timeout=60) == 0
    assert proc.stdout is not None and proc.stdout.read() == b""
    text = b"".join(chunks).decode()
    assert "6/6" in text and "files/s" in text and "ETA" in text
    assert "converted 6" in text
    assert "converted src/a.heic" not in text  # the bar replaces the per-file lines


def test_quiet_prints_only_failures(tree: Path, tmp_path: Path) -> None:
    (tree / "broken.heic").write_bytes(b"")
    result = run("convert", "src", "-o", "out", "-q", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        next(line for line in result.stderr.splitlines() if line.startswith("failed src/broken.heic"))
    ]


# Options and configuration.


def test_conversion_flags_apply(tmp_path: Path) -> None:
    (tmp_path / "big.heic").write_bytes(make_heic(size=(400, 200)))
    result = run("convert", "big.heic", "--to", "png", "--max-size", "100x100", "--strip", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert decoded_size(tmp_path / "big.png") == (100, 50)


def test_cli_table_sets_defaults_and_flags_win(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "heicconv.toml").write_text('[cli]\nto = "webp"\nrecursive = true\nmax_size = "32x32"\njobs = 1\n')
    result = run("convert", "src", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "trip/day1/e.webp" in files_under(tmp_path / "out")
    assert max(decoded_size(tmp_path / "out" / "a.webp")) == 32

    flags = run("convert", "src", "-o", "out2", "--to", "png", "--no-recursive", "--max-size", "48", cwd=tmp_path)
    assert flags.returncode == 0, flags.stderr
    assert files_under(tmp_path / "out2") == {"a.png", "B.png", "c.png"}
    assert decoded_size(tmp_path / "out2" / "a.png") == (48, 32)


def test_environment_overrides_the_cli_table(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "heicconv.toml").write_text('[cli]\nto = "webp"\n')
    result = run("convert", "src/a.heic", cwd=tmp_path, env=_env(HEICCONV_CLI_TO="png"))
    assert result.returncode == 0, result.stderr
    assert (tree / "a.png").is_file()


def test_configured_options_apply_under_the_flags(tmp_path: Path) -> None:
    (tmp_path / "big.heic").write_bytes(make_heic(size=(400, 200)))
    (tmp_path / "heicconv.toml").write_text("[options]\nmax_size = 40\n")
    result = run("convert", "big.heic", "--to", "png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert decoded_size(tmp_path / "big.png") == (40, 20)


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[cli]\nquality = 500\n", ["quality", "1 to 100", "heicconv.toml"]),
        ('[cli]\ncolour = "red"\n', ["colour", "unknown key", "known keys"]),
        ('[cli]\nto = "bmp"\n', ["to", "bmp"]),
        ("[cli]\noverwrite = true\nskip_existing = true\n", ["only one"]),
        ("backend = 'nonesuch'\n", ["backend", "nonesuch"]),
    ],
)
def test_configuration_errors_exit_2(tree: Path, tmp_path: Path, toml: str, words: list[str]) -> None:
    (tmp_path / "heicconv.toml").write_text(toml)
    result = run("convert", "src", "-o", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("heicconv: error:")
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["convert", "src", "--quality", "0"], ["--quality", "1 to 100"]),
        (["convert", "src", "--to", "bmp"], ["--to", "bmp"]),
        (["convert", "src", "--max-size", "wide"], ["--max-size", "WxH"]),
        (["convert", "src", "-j", "0"], ["--jobs"]),
        (["convert", "src", "--backend", "nonesuch"], ["nonesuch", "known"]),
        (["frobnicate"], ["unknown command"]),
        (["src/a.heic"], ["heicconv convert"]),
        (["src", "out.jpg"], ["is a folder", "heicconv convert"]),
        (["src/a.heic", "out.bmp"], ["BMP is not an output format; choose one of JPEG (.jpg), PNG (.png)"]),
        (["src/a.heic", "out.gif", "--quality", "80"], ["GIF is not an output format", "HEIC (.heic)"]),
        ([], ["usage"]),
    ],
)
def test_usage_errors_exit_2(tree: Path, tmp_path: Path, args: list[str], words: list[str]) -> None:
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr


def test_the_installed_console_script(tmp_path: Path, heic: bytes) -> None:
    script = Path(sys.executable).with_name("heicconv")
    if not script.exists():
        pytest.skip("the heicconv console script is not installed next to this Python")
    (tmp_path / "a.heic").write_bytes(heic)
    result = subprocess.run([str(script), "a.heic", "a.png"], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert decoded_size(tmp_path / "a.png") == (96, 64)


def test_help_has_examples(tmp_path: Path) -> None:
    top = run("--help", cwd=tmp_path)
    assert top.returncode == 0
    for word in ("convert", "info", "backends", "bench", "serve", "examples:"):
        assert word in top.stdout
    sub = run("convert", "--help", cwd=tmp_path)
    assert sub.returncode == 0
    assert "--skip-existing" in sub.stdout
    assert "examples:" in sub.stdout
    # The rule for which files a folder gives, where a user looks for it.
    text = " ".join(sub.stdout.split())
    assert "Which files a folder gives: those of the --from formats" in text
    assert "earlier run's output and never a source" in text
    assert "--follow-links" in text


def test_parallel_and_serial_runs_agree(tree: Path, tmp_path: Path) -> None:
    serial = run("convert", "src", "-r", "-o", "one", "-j", "1", "--to", "png", cwd=tmp_path)
    parallel = run("convert", "src", "-r", "-o", "two", "-j", "3", "--to", "png", cwd=tmp_path)
    assert serial.returncode == parallel.returncode == 0, serial.stderr + parallel.stderr
    names = files_under(tmp_path / "one")
    assert names == files_under(tmp_path / "two")
    for name in names:
        with Image.open(tmp_path / "one" / name) as a, Image.open(tmp_path / "two" / name) as b:
            assert a.tobytes() == b.tobytes()


def crash_on_request(item: Item) -> Outcome:
    """A stand-in conversion that kills its worker process for inputs named "crash"."""
    if item.source == "crash":
        os._exit(3)
    return Outcome("converted")


def test_a_crashing_worker_fails_its_file_and_the_run_goes_on(tmp_path: Path) -> None:
    names = ["a", "b", "crash", "c", "d", "e", "f"]
    items = [
        Item(n, str(tmp_path / f"{n}.jpg"), str(tmp_path / f".{n}.tmp"), "jpeg", Options(), Limits(), "pillow", False)
        for n in names
    ]
    got: dict[str, str] = {}
    execute(items, 2, lambda i, o: got.__setitem__(names[i], o.status), lambda n: None, work=crash_on_request)
    assert set(got) == set(names)
    assert got["crash"] == "failed"
    # Only the files in flight with the crash can be blamed; the rest converted in a new worker.
    assert sum(status == "failed" for status in got.values()) <= 2
    assert got["f"] == "converted"


def test_outputs_get_ordinary_permissions(tmp_path: Path, heic: bytes) -> None:
    (tmp_path / "a.heic").write_bytes(heic)
    old = os.umask(0o022)
    try:
        result = run("a.heic", "a.jpg", cwd=tmp_path)
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.jpg").stat().st_mode & 0o777 == 0o644


# info and backends.


def test_info_describes_a_file(tmp_path: Path) -> None:
    (tmp_path / "x.heic").write_bytes(make_heic(size=(64, 48), images=3, primary=1, thumbnail=16))
    (tmp_path / "notes.txt").write_text("hello")
    result = run("info", "x.heic", "notes.txt", "--json", cwd=tmp_path)
    assert result.returncode == 1
    x, notes = records(result)
    assert (x["width"], x["height"], x["images"], x["primary_index"]) == (72, 48, 3, 1)
    assert x["thumbnails"] == [16]
    assert "not an image" in notes["error"]

    plain = run("info", "x.heic", cwd=tmp_path)
    assert plain.returncode == 0
    assert "72x48" in plain.stdout


def test_backends_lists_every_backend_and_the_selected_one(tmp_path: Path) -> None:
    result = run("backends", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    names = {b["name"] for b in got["backends"]}
    assert {"pillow", "vips", "wand"} <= names
    # auto's choice: the first available backend of the order (ffmpeg where its extra is installed).
    assert got["selected"] == {"name": heicconv.select().name, "source": "default (auto)"}
    pillow = next(b for b in got["backends"] if b["name"] == "pillow")
    assert pillow["available"] and "heic" in pillow["inputs"] and "jpeg" in pillow["outputs"]

    chosen = run("backends", cwd=tmp_path, env=_env(HEICCONV_BACKEND="pillow"))
    assert "selected: pillow (from the environment (HEICCONV_BACKEND))" in chosen.stdout


# Lazily loaded subcommands.


def test_missing_lazy_subcommand_says_it_is_unavailable(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from heicconv import cli

    monkeypatch.setitem(cli.LAZY_COMMANDS, "bench", ("heicconv.no_such_module.cli", "measure"))
    assert cli.main(["bench", "--anything"]) == 2
    err = capsys.readouterr().err
    assert "not available" in err
    assert "heicconv.no_such_module.cli" in err


@pytest.mark.parametrize("name", ["bench", "serve"])
def test_lazy_subcommands_load_when_present(tmp_path: Path, name: str) -> None:
    import importlib.util

    from heicconv.cli import LAZY_COMMANDS

    module = LAZY_COMMANDS[name][0]
    try:
        present = importlib.util.find_spec(module) is not None
    except ImportError:
        present = False
    result = run(name, "--help", cwd=tmp_path)
    if present:
        assert result.returncode == 0, result.stderr
        assert f"heicconv {name}" in result.stdout
    else:
        assert result.returncode == 2
        assert "not available" in result.stderr


def test_help_does_not_import_lazy_subcommands(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom heicconv.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('heicconv.bench.cli', 'heicconv.server.cli') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


# The real-world corpus.


def _manifest() -> dict[str, dict[str, Any]]:
    assert CORPUS
    with open(Path(CORPUS) / "manifest.json") as fh:
        return {f["path"]: f for f in json.load(fh)["files"]}


def _real_files(skip_huge: bool) -> Iterator[Path]:
    assert CORPUS
    for path in sorted((Path(CORPUS) / "real").iterdir()):
        if not (skip_huge and path.name == "200MP.heic"):
            yield path


@needs_corpus
def test_info_matches_the_corpus_manifest(tmp_path: Path) -> None:
    manifest = _manifest()
    files = list(_real_files(skip_huge=False))
    result = run("info", "--json", *map(str, files), cwd=tmp_path, env=_env(HEICCONV_CORPUS=str(CORPUS)))
    assert result.returncode == 0, result.stderr
    got = records(result)
    assert len(got) == len(files)
    for record in got:
        expected = manifest[f"real/{Path(record['path']).name}"]
        for key in ("width", "height", "images", "primary_index", "bit_depth", "alpha", "thumbnails"):
            assert record[key] == expected[key], (record["path"], key)


@needs_corpus
def test_converting_the_corpus(tmp_path: Path) -> None:
    manifest = _manifest()
    src = tmp_path / "real"
    src.mkdir()
    for path in _real_files(skip_huge=True):
        (src / path.name).symlink_to(path)
    result = run("convert", "real", "-o", "out", "-j", "2", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for record in records(result):
        expected = manifest[f"real/{Path(record['path']).name}"]
        assert record["status"] == "converted"
        assert decoded_size(tmp_path / record["output"]) == (expected["width"], expected["height"])


@needs_corpus
def test_corrupted_corpus_files_fail_cleanly(tmp_path: Path) -> None:
    assert CORPUS
    src = tmp_path / "bad"
    src.mkdir()
    for path in (Path(CORPUS) / "corrupted").iterdir():
        # corrupted.heic and corrupted.hif would both become corrupted.jpg: give each its own name.
        (src / f"{path.stem}-{path.suffix[1:]}{path.suffix}").symlink_to(path)
    result = run("convert", "bad", "-o", "out", "--json", cwd=tmp_path)
    got = by_path(result)
    assert result.returncode == 1
    for name in ("corrupted-heic.heic", "corrupted-hif.hif", "empty-heic.heic"):
        assert got[name]["status"] == "failed"
        assert "conflict" not in got[name]["error"]
        assert "unexpected" not in got[name]["error"]  # a heicconv error, not a leaked one
    assert got["truncated-heic.heic"]["status"] in {"converted", "failed"}
    assert "Traceback" not in result.stderr


# Folders converted again and again (issue 11, item 9).

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _docs_sequence(heading: str) -> list[list[str]]:
    """The commands of the first ``sh`` block under ``heading`` in docs/cli.md, comments dropped."""
    text = DOCS.read_text(encoding="utf-8")
    block = text.split(heading, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]

    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_the_docs_sequence_converts_one_folder_to_several_formats(tmp_path: Path, heic: bytes) -> None:
    photos = tmp_path / "Photos"
    photos.mkdir()
    (photos / "IMG_0001.HEIC").write_bytes(heic)
    (photos / "IMG_0002.heic").write_bytes(make_heic(size=(40, 30)))
    commands = _docs_sequence("### Converting a folder again")
    assert len(commands) >= 3 and {c[0] for c in commands} == {"heicconv"}
    for command in commands:
        result = run(*command[1:], "-j", "1", cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
        assert "failed 0" in result.stderr, (command, result.stderr)
    outputs = {f"IMG_000{n}.{ext}" for n in (1, 2) for ext in ("jpg", "webp", "png")}
    assert files_under(photos) == outputs | {"IMG_0001.HEIC", "IMG_0002.heic"}
    for ext in ("jpg", "webp", "png"):  # each made from the HEIC, not from an earlier output
        assert decoded_size(photos / f"IMG_0002.{ext}") == (40, 30)
    # The last command found every output in place and converted nothing.
    assert "converted 0" in result.stderr and "skipped 2" in result.stderr


def test_folders_give_the_from_formats_and_never_earlier_outputs(tmp_path: Path, heic: bytes) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "IMG_1.HEIC").write_bytes(make_heic(size=(64, 48), images=2))
    (src / "IMG_1.jpg").write_bytes(make_image("jpeg", size=(11, 11)))  # an earlier run's output
    (src / "IMG_1-1.webp").write_bytes(make_image("webp", size=(12, 12)))  # from --image-index all
    (src / "holiday.png").write_bytes(make_image("png", size=(14, 14)))
    (src / "b-1.heic").write_bytes(heic)  # a source that happens to end in -N
    (src / "b.heic").write_bytes(heic)

    default = run("convert", "src", "-o", "one", "--json", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert {r["path"] for r in records(default)} == {"src/IMG_1.HEIC", "src/b-1.heic", "src/b.heic"}
    assert "ignored 3 image(s)" in default.stderr

    every = run("convert", "src", "-o", "all", "--from", "all", "--to", "png", "--json", cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    read = {Path(r["path"]).name for r in records(every)}
    assert read == {"IMG_1.HEIC", "holiday.png", "b-1.heic", "b.heic"}
    assert "left 2 earlier output(s) alone" in every.stderr
    assert decoded_size(tmp_path / "all" / "IMG_1.png") == (64, 48)

    # Of two files with one name, the one whose format comes first in --from is the source.
    pair = tmp_path / "pair"
    pair.mkdir()
    (pair / "x.heic").write_bytes(heic)
    (pair / "x.jpg").write_bytes(make_image("jpeg", size=(15, 15)))
    heic_first = run("convert", "pair", "-o", "h", "--from", "heic,jpeg", "--to", "png", cwd=tmp_path)
    assert heic_first.returncode == 0, heic_first.stderr
    assert decoded_size(tmp_path / "h" / "x.png") == (96, 64)
    jpeg_first = run("convert", "pair", "-o", "j", "--from", "jpeg,heic", "--to", "png", cwd=tmp_path)
    assert jpeg_first.returncode == 0, jpeg_first.stderr
    assert decoded_size(tmp_path / "j" / "x.png") == (15, 15)


def test_from_and_other_new_keys_in_the_cli_table(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "heicconv.toml").write_text('[cli]\nfrom = ["png"]\nrecursive = true\nkeep_mtime = false\n')
    result = run("convert", "src", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert files_under(tmp_path / "out") == {"trip/f.jpg"}
    assert (tmp_path / "out" / "trip" / "f.jpg").stat().st_mtime > (tree / "trip" / "f.png").stat().st_mtime - 1
    (tmp_path / "heicconv.toml").write_text('[cli]\nfrom = "bmp"\n')
    bad = run("convert", "src", "-o", "out", cwd=tmp_path)
    assert bad.returncode == 2 and "from:" in bad.stderr and "bmp" in bad.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_symlinked_folders_are_named_or_followed(tmp_path: Path, heic: bytes) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "far.heic").write_bytes(heic)
    src = tmp_path / "src"
    src.mkdir()
    (src / "near.heic").write_bytes(heic)
    (src / "linked").symlink_to(elsewhere)
    (src / "loop").symlink_to(src)  # a link back up the tree must not loop

    plain = run("convert", "src", "-r", "-o", "out", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert files_under(tmp_path / "out") == {"near.jpg"}
    assert "skipped 2 symbolic link(s) to folders" in plain.stderr
    assert "src/linked" in plain.stderr and "--follow-links" in plain.stderr

    followed = run("convert", "src", "-r", "-o", "out2", "--follow-links", cwd=tmp_path)
    assert followed.returncode == 0, followed.stderr
    assert files_under(tmp_path / "out2") == {"near.jpg", "linked/far.jpg"}


# Nothing written is a failure (item 10).


def test_nothing_written_exits_1_and_says_why(tmp_path: Path, heic: bytes) -> None:
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    short = run("doc.pdf", "o.jpg", cwd=tmp_path)
    assert short.returncode == 1
    assert "doc.pdf: not an image heicconv reads" in short.stderr
    assert not (tmp_path / "o.jpg").exists()

    named = run("convert", "doc.pdf", cwd=tmp_path)
    assert named.returncode == 1
    assert "nothing written: none of the inputs is an image" in named.stderr

    (tmp_path / "Empty" / "sub").mkdir(parents=True)
    (tmp_path / "Empty" / "sub" / "a.heic").write_bytes(heic)
    (tmp_path / "Empty" / "b.png").write_bytes(make_image("png"))
    empty = run("convert", "Empty", "-q", cwd=tmp_path)
    assert empty.returncode == 1
    assert "nothing written: no file to convert was found" in empty.stderr  # even with -q
    assert "--recursive" in empty.stderr and "--from all" in empty.stderr

    # Outputs that exist already are what was asked for: a second run succeeds.
    assert run("convert", "Empty", "-r", cwd=tmp_path).returncode == 0
    again = run("convert", "Empty", "-r", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing written" not in again.stderr


# Names that are long in bytes (item 11).


def test_a_long_non_ascii_name_converts(tmp_path: Path, heic: bytes) -> None:
    name = "照" * 80  # 240 bytes in UTF-8: the temporary name must be cut by bytes, not characters
    (tmp_path / f"{name}.heic").write_bytes(heic)
    result = run("convert", f"{name}.heic", "--to", "webp", "-j", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert decoded_size(tmp_path / f"{name}.webp") == (96, 64)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    short = run(f"{name}.heic", f"{name}.png", cwd=tmp_path)
    assert short.returncode == 0, short.stderr

    # An output name longer than the file system allows fails up front, with the reason.
    longest = "a" * 251 + ".hif"  # 255 bytes; the output's .tiff adds one
    (tmp_path / longest).write_bytes(heic)
    over = run("convert", longest, "--to", "tiff", cwd=tmp_path)
    assert over.returncode == 1
    assert "is 256 bytes, longer than its folder's file system allows (255)" in over.stderr


# An output folder that cannot be written (item 12).


def _many(tmp_path: Path, count: int = 12) -> Path:
    src = tmp_path / "many"
    src.mkdir()
    data = make_heic(size=(256, 256))
    for n in range(count):
        (src / f"p{n:02d}.heic").write_bytes(data)
    return src


def _without_file_capabilities() -> None:
    # Root passes every permission check through CAP_DAC_OVERRIDE; without it (and its
    # relatives) it meets the folder's mode bits like any user. Dropped from the bounding
    # set, they are gone from the command the child then runs.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.skipif(sys.platform != "linux", reason="drops Linux capabilities when run as root")
def test_a_read_only_output_folder_stops_the_run(tmp_path: Path) -> None:
    _many(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "heicconv", "convert", "many", "-o", "out", "-j", "2"],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=_without_file_capabilities if os.geteuid() == 0 else None,
        )
    finally:
        out.chmod(0o755)
    assert result.returncode == 1
    assert "stopped: cannot write to the output folder out: Permission denied" in result.stderr
    assert "heicconv-tmp" not in result.stderr  # the folder is named, not a hidden temporary file
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed ")]
    assert 1 <= len(failed) <= 2  # the files in flight; the other ten were never started
    assert "were not tried" in result.stderr
    assert os.listdir(out) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, where no folder can be made")
def test_an_output_folder_that_cannot_be_made_stops_the_run(tmp_path: Path) -> None:
    _many(tmp_path)
    result = run("convert", "many", "-o", "/proc/heicconv-out", "-j", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert "stopped: cannot write to the output folder /proc/heicconv-out" in result.stderr
    assert "11 file(s) were not tried" in result.stderr


def _small_tmpfs(where: Path) -> None:
    where.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("a full file system is made with a small tmpfs, which needs root (as CI runs)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr!r}")


def test_a_full_output_folder_stops_the_run(tmp_path: Path) -> None:
    _many(tmp_path, 20)
    full = tmp_path / "full"
    _small_tmpfs(full)  # 64 KiB: four 14 KB PNG files fit
    try:
        result = run("convert", "many", "-o", "full", "--to", "png", "-j", "1", cwd=tmp_path)
        left = sorted(os.listdir(full))
    finally:
        subprocess.run(["umount", str(full)], check=True)
    assert result.returncode == 1
    assert "stopped: cannot write to the output folder full: No space left on device" in result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1
    written = [n for n in left if not n.startswith(".")]
    assert 1 <= len(written) < 20 and len(written) == len(left)  # no temporary file left behind
    assert f"{20 - len(written) - 1} file(s) were not tried" in result.stderr


# What a team expects (item 13).


def test_standard_input_and_output(tmp_path: Path, heic: bytes) -> None:
    fed = subprocess.run(
        [sys.executable, "-m", "heicconv", "-", "out.jpg"], cwd=tmp_path, env=_env(), input=heic, capture_output=True
    )
    assert fed.returncode == 0, fed.stderr
    assert decoded_size(tmp_path / "out.jpg") == (96, 64)

    (tmp_path / "a.heic").write_bytes(heic)
    with open(tmp_path / "piped.png", "wb") as sink:
        piped = subprocess.run(
            [sys.executable, "-m", "heicconv", "a.heic", "-", "--to", "png"],
            cwd=tmp_path,
            env=_env(),
            stdout=sink,
            stderr=subprocess.PIPE,
        )
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == b""  # a filter says nothing when it succeeds
    with Image.open(tmp_path / "piped.png") as img:
        assert (img.format, img.size) == ("PNG", (96, 64))

    both = subprocess.run(
        [sys.executable, "-m", "heicconv", "-", "-", "--max-size", "48"], env=_env(), input=heic, capture_output=True
    )
    assert both.returncode == 0, both.stderr
    assert both.stdout[:3] == b"\xff\xd8\xff"

    garbage = subprocess.run(
        [sys.executable, "-m", "heicconv", "-", "-"], env=_env(), input=b"not an image", capture_output=True
    )
    assert garbage.returncode == 1 and garbage.stdout == b""
    assert b"failed -:" in garbage.stderr


def test_outputs_keep_the_source_modification_time(tmp_path: Path, heic: bytes) -> None:
    (tmp_path / "a.heic").write_bytes(heic)
    taken = 1_000_000_000  # 2001-09-09
    os.utime(tmp_path / "a.heic", (taken, taken))
    assert run("convert", "a.heic", "-j", "1", cwd=tmp_path).returncode == 0
    assert (tmp_path / "a.jpg").stat().st_mtime == taken
    assert run("a.heic", "b.png", cwd=tmp_path).returncode == 0
    assert (tmp_path / "b.png").stat().st_mtime == taken
    assert run("a.heic", "c.png", "--no-keep-mtime", cwd=tmp_path).returncode == 0
    assert (tmp_path / "c.png").stat().st_mtime > taken + 10**8


def _profile_name(img: Image.Image) -> str:
    import io

    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
    return str(ImageCms.getProfileDescription(profile)).strip()


def test_strip_location_and_srgb_flags(tmp_path: Path) -> None:
    from heicconv.container.colour import profile_from_nclx
    from heicconv.testing.fixtures import exif_block

    p3 = profile_from_nclx(12, 13)
    (tmp_path / "a.heic").write_bytes(make_heic(size=(48, 32), exif=exif_block(gps=True), icc=p3))
    assert run("a.heic", "loc.jpg", "--strip-location", "--srgb", cwd=tmp_path).returncode == 0
    with Image.open(tmp_path / "loc.jpg") as img:
        exif = img.getexif()
        assert exif.get(0x010F) == "heicconv"  # the camera make is kept
        assert not exif.get_ifd(0x8825)  # the GPS block is gone
        assert _profile_name(img) == "sRGB built-in"
    assert run("a.heic", "kept.jpg", cwd=tmp_path).returncode == 0
    with Image.open(tmp_path / "kept.jpg") as img:
        assert img.getexif().get_ifd(0x8825)
        assert img.info.get("icc_profile") == p3
    both = run("a.heic", "x.jpg", "--strip", "--strip-location", cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_hdr_flag_keeps_or_drops_the_gain_map(tmp_path: Path) -> None:
    from heicconv.testing.fixtures import make_hdr_heic

    (tmp_path / "a.heic").write_bytes(make_hdr_heic((64, 48)))
    assert run("a.heic", "kept.jpg", "--hdr", "keep", cwd=tmp_path).returncode == 0
    assert b"MPF\0" in (tmp_path / "kept.jpg").read_bytes()
    assert run("a.heic", "plain.jpg", "--hdr", "drop", cwd=tmp_path).returncode == 0
    assert b"MPF\0" not in (tmp_path / "plain.jpg").read_bytes()
    (tmp_path / "heicconv.toml").write_text('[cli]\nhdr = "drop"\n')
    assert run("convert", "a.heic", "--overwrite", cwd=tmp_path).returncode == 0
    assert b"MPF\0" not in (tmp_path / "a.jpg").read_bytes()
    assert run("convert", "a.heic", "--overwrite", "--hdr", "keep", cwd=tmp_path).returncode == 0  # the flag wins
    assert b"MPF\0" in (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "heicconv.toml").write_text('[cli]\nhdr = "yes"\n')
    bad = run("convert", "a.heic", cwd=tmp_path)
    assert bad.returncode == 2 and "hdr: must be keep or drop" in bad.stderr
    assert run("a.heic", "x.jpg", "--hdr", "maybe", cwd=tmp_path).returncode == 2


def test_image_index_picks_one_image_or_all(tmp_path: Path) -> None:
    # Three images of different widths (64, 72, 80), the second one primary.
    (tmp_path / "burst.heic").write_bytes(make_heic(size=(64, 48), images=3, primary=1))
    assert run("burst.heic", "primary.png", cwd=tmp_path).returncode == 0
    assert decoded_size(tmp_path / "primary.png") == (72, 48)
    assert run("burst.heic", "third.png", "--image-index", "2", cwd=tmp_path).returncode == 0
    assert decoded_size(tmp_path / "third.png") == (80, 48)

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "burst.heic").write_bytes((tmp_path / "burst.heic").read_bytes())
    every = run("convert", "b", "--image-index", "all", "--json", cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    assert {Path(r["output"]).name: r["width"] for r in records(every)} == {
        "burst-0.jpg": 64,
        "burst-1.jpg": 72,
        "burst-2.jpg": 80,
    }
    # Converting that folder again reads none of those outputs.
    again = run("convert", "b", "--from", "all", "--to", "png", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert {r["path"] for r in records(again)} == {"b/burst.heic"}

    (tmp_path / "twelve.heic").write_bytes(make_heic(size=(16, 16), images=12))
    assert run("twelve.heic", "t.png", "--image-index", "all", cwd=tmp_path).returncode == 0
    assert {n for n in os.listdir(tmp_path) if n.startswith("t-")} == {f"t-{i:02d}.png" for i in range(12)}

    beyond = run("burst.heic", "x.png", "--image-index", "5", cwd=tmp_path)
    assert beyond.returncode == 1
    assert "image_index: 5 is out of range: the file has 3 image(s)" in beyond.stderr
    assert "damaged" not in beyond.stderr
