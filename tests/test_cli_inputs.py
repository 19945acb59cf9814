"""What ``heicconv`` reads and prints: pipes, devices and sockets, inputs over the size limit, signals, odd names.

Every command runs in a subprocess of its own process group, with its address space capped and a
deadline: a command that hangs (on a named pipe) or reads without end fails its test, and the
group is killed, so nothing is left running and the suite itself never hangs.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from test_cli import _env, decoded_size

from heicconv import Limits
from heicconv.testing.fixtures import make_heic, make_image

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="named pipes, devices and signals are POSIX")

DEADLINE = 90  # seconds: a slow, shared machine converts a few small files in well under this
ADDRESS_SPACE = 3 << 30  # a regression that reads 10 GB fails with MemoryError instead of filling the machine
PEAK_RSS = 500 << 20  # what a command that refuses a 10 GB input may hold at most (it needs about 70 MB)
LIMIT = Limits().max_input_bytes


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes, the command's and its workers'

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        return {r["path"]: r for r in map(json.loads, self.stdout.splitlines())}


def _cap_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@contextlib.contextmanager
def started(*args: str, cwd: Path, stdin: IO[Any] | int = subprocess.DEVNULL, **env: str) -> Iterator[Any]:
    """``python -m heicconv ARGS`` in a new process group; yields ``(process, stdout file, stderr file)``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "heicconv", *args],
            cwd=cwd,
            env=_env(**env),
            stdin=stdin,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=_cap_address_space,
        )
        yield proc, out, err


def finish(proc: subprocess.Popen[Any], out: IO[str], err: IO[str]) -> Finished:
    """Wait for the command (killing its process group after ``DEADLINE``) and measure its peak memory."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        os.killpg(proc.pid, signal.SIGKILL)  # the command and its workers

    timer = threading.Timer(DEADLINE, expire)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    stderr = err.read()
    if expired.is_set():
        pytest.fail(f"heicconv did not finish in {DEADLINE} s (killed); it printed:\n{stderr}")
    return Finished(proc.returncode, out.read(), stderr, usage.ru_maxrss * 1024)


def run(*args: str, cwd: Path, stdin: IO[Any] | int = subprocess.DEVNULL, **env: str) -> Finished:
    with started(*args, cwd=cwd, stdin=stdin, **env) as (proc, out, err):
        return finish(proc, out, err)


@pytest.fixture(scope="module")
def heic() -> bytes:
    return make_heic(size=(96, 64))


# Named pipes, devices and sockets (issue 21, item 8).


@pytest.fixture
def specials(tmp_path: Path, heic: bytes) -> Iterator[Path]:
    """src/ with one photo, and a pipe, a device, a socket and a link to the pipe under photo names."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.heic").write_bytes(heic)
    (src / "b.heic").write_bytes(heic)  # two photos: -j 2 converts them in worker processes
    os.mkfifo(src / "pipe.heic")
    (src / "zero.heic").symlink_to("/dev/zero")
    (src / "to-pipe.heic").symlink_to("pipe.heic")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "sock.heic"))
        yield src


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_folder_scan_skips_pipes_devices_and_sockets(specials: Path, tmp_path: Path, jobs: str) -> None:
    result = run("convert", "src", "-o", "out", "-j", jobs, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = result.records
    assert got["src/a.heic"]["status"] == got["src/b.heic"]["status"] == "converted"
    assert decoded_size(tmp_path / "out" / "a.jpg") == (96, 64)
    for name, kind in [
        ("pipe", "a named pipe"),
        ("to-pipe", "a named pipe"),
        ("zero", "a character device"),
        ("sock", "a socket"),
    ]:
        record = got[f"src/{name}.heic"]
        assert record["status"] == "skipped", record
        assert record["note"] == f"{kind}, not a regular file; heicconv convert reads regular files only"
    assert sorted(os.listdir(tmp_path / "out")) == ["a.jpg", "b.jpg"]  # no temporary file either


def test_convert_and_info_skip_a_pipe_named_on_the_command_line(specials: Path, tmp_path: Path) -> None:
    result = run("convert", "src/pipe.heic", "-o", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert "skipped src/pipe.heic: a named pipe, not a regular file" in result.stderr
    assert "nothing written" in result.stderr
    info = run("info", "src/pipe.heic", "src/a.heic", cwd=tmp_path)
    assert info.returncode == 1
    assert "heicconv info: src/pipe.heic: a named pipe, not a regular file" in info.stderr
    assert "96x64" in info.stdout


def test_the_two_path_form_reads_a_pipe_like_standard_input(specials: Path, tmp_path: Path, heic: bytes) -> None:
    (tmp_path / "a.heic").write_bytes(heic)
    writer = subprocess.Popen(["sh", "-c", "cat a.heic > src/pipe.heic"], cwd=tmp_path)
    try:
        result = run("src/pipe.heic", "out.jpg", cwd=tmp_path)
    finally:
        writer.kill()
        writer.wait()
    assert result.returncode == 0, result.stderr
    assert decoded_size(tmp_path / "out.jpg") == (96, 64)

    # Each image of a burst would need the input again: a pipe gives it once.
    many = run("src/pipe.heic", "many.jpg", "--image-index", "all", cwd=tmp_path)
    assert many.returncode == 2
    assert "--image-index all reads its input once per image; name a file as IN" in many.stderr


def test_an_endless_input_stops_one_byte_past_the_limit(tmp_path: Path) -> None:
    limit = 1 << 20
    expected = f"the input is at least {limit + 1:,} bytes, over the limit of {limit:,} (max_input_bytes)"
    device = run("/dev/zero", "out.jpg", cwd=tmp_path, HEICCONV_MAX_INPUT_BYTES=str(limit))
    with open("/dev/zero", "rb") as zeros:
        stdin = run("-", "out.jpg", cwd=tmp_path, stdin=zeros, HEICCONV_MAX_INPUT_BYTES=str(limit))
    for result, name in ((device, "/dev/zero"), (stdin, "-")):
        assert result.returncode == 1, result.stderr
        assert f"failed {name}: {expected}" in result.stderr
        assert result.peak_rss < PEAK_RSS
    assert not (tmp_path / "out.jpg").exists()


# A file over max_input_bytes is refused from its size, before it is read (issue 21, item 8).


def test_a_file_over_the_limit_is_refused_without_reading_it(tmp_path: Path, heic: bytes) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.heic").write_bytes(heic)
    with open(src / "huge.heic", "wb") as fh:
        fh.truncate(10 << 30)  # sparse: 10 GB that take no disk space
    expected = f"the input is {10 << 30:,} bytes, over the limit of {LIMIT:,} (max_input_bytes)"

    folder = run("convert", "src", "-o", "out", "-j", "2", "--json", cwd=tmp_path)
    assert folder.returncode == 1
    assert folder.records["src/huge.heic"]["error"] == expected
    assert folder.records["src/a.heic"]["status"] == "converted"

    single = run("src/huge.heic", "huge.jpg", cwd=tmp_path)
    to_stdout = run("src/huge.heic", "-", cwd=tmp_path)
    info = run("info", "src/huge.heic", cwd=tmp_path)
    for result in (single, to_stdout):
        assert result.returncode == 1
        assert f"failed src/huge.heic: {expected}" in result.stderr
    assert info.returncode == 1
    assert f"heicconv info: src/huge.heic: {expected}" in info.stderr
    for result in (folder, single, to_stdout, info):
        assert result.peak_rss < PEAK_RSS, result.stderr
    assert not (tmp_path / "huge.jpg").exists()


# Signals: no temporary file outlives the run, and the outputs written are whole.


@pytest.fixture(scope="module")
def slow_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JPEG photos whose conversion to PNG takes about a second each, so that a signal finds one running."""
    src = tmp_path_factory.mktemp("slow") / "src"
    src.mkdir()
    data = make_image("jpeg", size=(3000, 2000))
    for n in range(8):
        (src / f"p{n}.jpg").write_bytes(data)
    return src


@pytest.mark.parametrize(
    ("jobs", "how"),
    [
        ("1", "SIGTERM"),
        ("2", "SIGTERM to the process group"),  # kill -- -PGID, timeout(1), systemd: the workers die at once
        ("2", "SIGTERM twice"),  # the second abandons the running conversions
    ],
)
def test_no_temporary_file_outlives_a_terminated_run(slow_inputs: Path, tmp_path: Path, jobs: str, how: str) -> None:
    out = tmp_path / "out"
    with started(
        "convert", str(slow_inputs), "-o", "out", "-j", jobs, "--from", "jpeg", "--to", "png", cwd=tmp_path
    ) as (proc, stdout, stderr):
        deadline = time.monotonic() + DEADLINE
        while not (out.is_dir() and any(n.endswith(".heicconv-tmp") for n in os.listdir(out))):
            assert proc.poll() is None and time.monotonic() < deadline, "no conversion was seen running"
            time.sleep(0.005)
        if how == "SIGTERM to the process group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        if how == "SIGTERM twice":
            while b"stopping:" not in os.pread(stderr.fileno(), 1 << 16, 0):  # leaves the child's offset alone
                assert proc.poll() is None and time.monotonic() < deadline, "the first SIGTERM was not seen"
                time.sleep(0.005)
            proc.send_signal(signal.SIGTERM)
        result = finish(proc, stdout, stderr)
    assert result.returncode == 143, result.stderr
    assert "Traceback" not in result.stderr
    names = os.listdir(out)
    assert not [n for n in names if n.startswith(".")], f"temporary files left behind: {names}"
    for name in names:
        assert decoded_size(out / name) == (3000, 2000)


# Control characters in names are printed escaped (issue 21, item 9).


def test_names_with_control_characters_are_printed_escaped(tmp_path: Path, heic: bytes) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "new\nline.heic").write_bytes(heic)
    (src / "bad\x1b[2J.heic").write_bytes(b"\x00\x00\x00\x10ftypheic" + b"\x00" * 8)
    (tmp_path / "elsewhere").mkdir()
    (src / "lin\rk").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "not\ta folder").write_text("")

    plain = run("convert", "src", "-r", "-o", "out", cwd=tmp_path)
    assert plain.returncode == 1
    assert "converted src/new\\nline.heic -> out/new\\nline.jpg (96x64, " in plain.stderr
    assert "\nline.heic" not in plain.stderr
    assert "failed src/bad\\x1b[2J.heic: the file is damaged or incomplete" in plain.stderr
    assert "symbolic link(s) to folders (src/lin\\rk)" in plain.stderr
    dry = run("convert", "src", "-o", "elsewhere", "--dry-run", cwd=tmp_path)
    assert "would convert src/new\\nline.heic -> elsewhere/new\\nline.jpg" in dry.stderr
    error = run("convert", "src", "-o", "not\ta folder", cwd=tmp_path)
    assert error.returncode == 2
    assert "heicconv: error: -o not\\ta folder: exists and is not a folder" in error.stderr
    info = run("info", "src/new\nline.heic", "src/bad\x1b[2J.heic", cwd=tmp_path)
    assert info.stdout.startswith("src/new\\nline.heic\n")
    assert "heicconv info: src/bad\\x1b[2J.heic: " in info.stderr
    for result in (plain, dry, error, info):
        for text in (result.stdout, result.stderr):
            assert not {"\x1b", "\r", "\t"} & set(text)

    # JSON escapes names itself: they stay exact.
    report = run("convert", "src", "-o", "again", "--json", cwd=tmp_path)
    assert set(report.records) == {"src/new\nline.heic", "src/bad\x1b[2J.heic"}
    assert report.records["src/new\nline.heic"]["output"] == "again/new\nline.jpg"
