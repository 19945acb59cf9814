"""Worker processes with a memory cap and a timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import heicconv
from heicconv.api.workers import IsolatedConverter
from heicconv.testing import fixtures
from heicconv.testing.conformance import decode


@pytest.fixture(scope="module")
def pool() -> IsolatedConverter:
    with IsolatedConverter(workers=2, timeout=60, memory_mb=1024) as p:
        yield p  # type: ignore[misc]


def test_converts_and_raises_heicconv_errors(pool: IsolatedConverter) -> None:
    assert decode(pool.convert(fixtures.make_heic((40, 30)), "png")).size == (40, 30)
    with pytest.raises(heicconv.UnsupportedFormatError):
        pool.convert(b"<svg/>", "png")


@pytest.mark.parametrize("backend", ["pillow", "vips", "wand"])
def test_memory_cap_gives_limit_exceeded_and_the_pool_survives(backend: str) -> None:
    from heicconv.testing.plugin import require_backend

    require_backend(backend)
    # A worker sits at 30-70 MB after a small conversion; a 6000x4500 photo needs well over 150 MB
    # of pixels on every backend.
    big = fixtures.make_heic((6000, 4500), quality=10)
    with IsolatedConverter(workers=1, timeout=120, memory_mb=150) as small:
        assert decode(small.convert(fixtures.make_heic((40, 30)), "png", backend=backend)).size == (40, 30)
        with pytest.raises(heicconv.LimitExceededError):
            small.convert(big, "png", backend=backend)
        assert decode(small.convert(fixtures.make_heic((40, 30)), "png", backend=backend)).size == (40, 30)


def test_timeout_stops_the_worker() -> None:
    # No machine decodes and encodes 12 MP in 10 ms, so the first call times out.
    with IsolatedConverter(workers=1, timeout=0.01) as slow:
        with pytest.raises(heicconv.TimeoutError, match=r"longer than 0\.01 s"):
            slow.convert(fixtures.make_heic((4000, 3000), quality=10), "png")
        slow.timeout = 120
        assert decode(slow.convert(fixtures.make_heic((40, 30)), "png")).size == (40, 30)


# A quick script, with no `if __name__ == "__main__":` guard.
_SCRIPT = """
import heicconv
from heicconv.api.workers import IsolatedConverter
from heicconv.testing.fixtures import make_heic

print("top level", flush=True)
pool = IsolatedConverter(workers=1, timeout=60)
print(len(pool.convert(make_heic(), "png")))
"""


def _run_script(tmp_path: Path, *, via_stdin: bool) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "convert_photos.py"
    script.write_text(_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    return subprocess.run(
        [sys.executable, "-"] if via_stdin else [sys.executable, str(script)],
        input=_SCRIPT if via_stdin else None,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_script_without_the_main_guard_is_told_what_to_fix(tmp_path: Path) -> None:
    done = _run_script(tmp_path, via_stdin=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("heicconv.errors.ConfigError: IsolatedConverter: a worker process exited (code 1)")
    assert f"importing the script {tmp_path / 'convert_photos.py'} failed" in last
    assert 'under `if __name__ == "__main__":`' in last
    assert "DecodeError" not in done.stderr and "hostile" not in done.stderr
    # The same script with the guard works.
    guarded = _SCRIPT.replace('print("top level"', 'if __name__ == "__main__":\n    print("top level"')
    guarded = guarded.replace("\npool =", "\n    pool =").replace("\nprint(len", "\n    print(len")
    (tmp_path / "convert_photos.py").write_text(guarded)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    ok = subprocess.run(
        [sys.executable, "convert_photos.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == "top level" and int(ok.stdout.splitlines()[1]) > 0


def test_a_program_read_from_stdin_is_told_to_become_a_file(tmp_path: Path) -> None:
    done = _run_script(tmp_path, via_stdin=True)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("heicconv.errors.ConfigError: IsolatedConverter: a worker process exited (code 1)")
    assert "a program read from <stdin> cannot be imported: save it as a .py file" in last


def test_workers_apply_the_callers_configure_settings() -> None:
    from heicconv.testing.fixtures import XMP_PACKET, exif_block

    heicconv.configure(options={"metadata": "strip"}, limits={"max_pixels": 100_000})
    photo = fixtures.make_heic((40, 30), exif=exif_block(), xmp=XMP_PACKET)
    with IsolatedConverter(workers=1, timeout=60) as pool:
        out = pool.convert(photo, "jpeg", heicconv.Options(quality=70))
        assert b"Fixture Camera" not in out and b"heicconv fixture" not in out
        with pytest.raises(heicconv.LimitExceededError, match="max_pixels"):
            pool.convert(fixtures.make_heic((400, 300)), "png")
        heicconv.config.reset()  # and follow a later change
        assert b"Fixture Camera" in pool.convert(photo, "jpeg")
