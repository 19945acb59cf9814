"""docker/build_lambda_zip.py: real wheels from PyPI for Lambda's python3.12 on x86_64 and arm64.

Needs network access to the package index (skipped without it). The x86_64 ZIP is
then unpacked and its handler run by a local Python 3.12, as Lambda would import it.
"""

from __future__ import annotations

import base64
import glob
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from heicconv.testing.fixtures import make_heic

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docker" / "build_lambda_zip.py"
pytestmark = pytest.mark.slow
PYTHON312 = os.environ.get("HEICCONV_PYTHON312")  # read at import: conftest clears HEICCONV_* per test


def _load_builder() -> Any:
    spec = importlib.util.spec_from_file_location("build_lambda_zip", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_zips(out: Path, *args: str, timeout: float) -> list[dict[str, Any]]:
    """Run the builder for both architectures; its JSON summaries (skips if the package index is unreachable)."""
    cmd = [sys.executable, str(SCRIPT), *args, "--arch", "x86_64", "--arch", "arm64", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 and ("Could not find a version" in proc.stderr or "NewConnectionError" in proc.stderr):
        pytest.skip(f"the package index is not reachable: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries: list[dict[str, Any]] = json.loads(proc.stdout)
    for s in summaries:
        print(f"\nLambda ZIP, {s['backend']}, {s['arch']}: {s['zipped_mb']} MB zipped, {s['unzipped_mb']} MB unzipped")
    return summaries


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _build_zips(tmp_path_factory.mktemp("lambda-zip"), timeout=600)


def test_zips_fit_lambda_limits_and_hold_the_right_architecture(built: list[dict[str, Any]]) -> None:
    assert [s["arch"] for s in built] == ["x86_64", "arm64"]
    for s in built:
        assert s["under_250mb_unzipped"] and s["unzipped_bytes"] < 250 * 1024 * 1024
        assert s["direct_upload_ok"]
        assert s["shared_libraries"] > 0  # each checked for the target's ELF machine by the script
        with zipfile.ZipFile(s["zip"]) as zf:
            names = set(zf.namelist())
            notices = zf.read("THIRD_PARTY_NOTICES.md").decode()  # docs/licences.md: the ZIP carries them
        assert "libx265" in notices and "GNU GENERAL PUBLIC LICENSE" in notices and "GNU LESSER" in notices
        assert "heicconv/aws_lambda/__init__.py" in names
        assert not any(n.startswith(("boto3/", "botocore/")) for n in names)  # the runtime provides boto3
        assert not any("__pycache__" in n for n in names)
        suffix = "x86_64" if s["arch"] == "x86_64" else "aarch64"
        assert any(n.startswith("_pillow_heif.cpython-312-" + suffix) for n in names)


def test_zip_is_reproducible(tmp_path: Path) -> None:
    builder = _load_builder()
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "a.py").write_text("x = 1\n")
    one, two = tmp_path / "one.zip", tmp_path / "two.zip"
    builder.write_zip(tree, one)
    (tree / "pkg" / "a.py").touch()
    builder.write_zip(tree, two)
    assert one.read_bytes() == two.read_bytes()


def _python312() -> str | None:
    """A Python 3.12 that really runs (a pyenv shim may exist without one selected)."""
    candidates = [PYTHON312, shutil.which("python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for candidate in candidates:
        if not candidate:
            continue
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.executable, sys.version_info[:2] == (3, 12))"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError:
            continue
        words = out.stdout.split()
        if out.returncode == 0 and words[-1:] == ["True"]:
            return words[0]
    return None


def test_x86_64_zip_runs_the_handler_on_python_312(built: list[dict[str, Any]], tmp_path: Path) -> None:
    python = _python312()
    if python is None or sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("needs a Python 3.12 interpreter on linux x86_64 (or HEICCONV_PYTHON312 naming one)")
    task = tmp_path / "task"  # what Lambda unpacks to /var/task
    with zipfile.ZipFile(built[0]["zip"]) as zf:
        zf.extractall(task)
    event = {
        "version": "2.0",
        "rawPath": "/convert",
        "rawQueryString": "format=auto",
        "queryStringParameters": {"format": "auto"},  # the Accept header is followed only when asked
        "requestContext": {"http": {"method": "POST"}},
        "headers": {"accept": "image/webp"},
        "body": base64.b64encode(make_heic(size=(48, 32))).decode(),
        "isBase64Encoded": True,
    }
    code = (
        "import json, sys, heicconv.aws_lambda as m, heicconv\n"
        "assert heicconv.__file__.startswith(sys.argv[1]), heicconv.__file__\n"
        "r = m.handler(json.loads(sys.stdin.read()), None)\n"
        "print(json.dumps({'status': r['statusCode'], 'headers': r['headers'], 'version': sys.version_info[:2]}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(task), "HOME": str(tmp_path), "HEICCONV_BACKEND": "pillow"}
    proc = subprocess.run(
        [python, "-s", "-c", code, str(task)],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    *logged, last = proc.stdout.splitlines()
    answer = json.loads(last)
    assert answer["status"] == 200 and answer["headers"]["Content-Type"] == "image/webp"
    assert answer["version"] == [3, 12]
    # Before it, on standard output as Lambda's log: the invocation's CloudWatch EMF line.
    assert any("CloudWatchMetrics" in json.loads(line).get("_aws", {}) for line in logged if line.startswith("{"))


@pytest.fixture(scope="module")
def built_ffmpeg(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _build_zips(tmp_path_factory.mktemp("lambda-zip-ffmpeg"), "--backend", "ffmpeg", timeout=900)


def test_ffmpeg_zips_fit_under_250_mb_with_margin(built_ffmpeg: list[dict[str, Any]]) -> None:
    builder = _load_builder()
    assert [s["arch"] for s in built_ffmpeg] == ["x86_64", "arm64"]
    for s in built_ffmpeg:
        assert s["backend"] == "ffmpeg" and s["zip"].endswith(f"heicconv-lambda-ffmpeg-py312-{s['arch']}.zip")
        assert s["unzipped_bytes"] < builder.UNZIPPED_LIMIT - builder.UNZIPPED_MARGIN, s["unzipped_mb"]
        with zipfile.ZipFile(s["zip"]) as zf:
            names = zf.namelist()
        suffix = "x86_64" if s["arch"] == "x86_64" else "aarch64"
        assert any(n.startswith("av/_core.") for n in names)
        assert any(n.startswith("simplejpeg/_jpeg.cpython-312-" + suffix) for n in names)
        assert not any("/tests/" in n or n.endswith((".pyi", ".pxd")) for n in names)


def test_x86_64_ffmpeg_zip_converts_with_ffmpeg_on_python_312(
    built_ffmpeg: list[dict[str, Any]], tmp_path: Path
) -> None:
    python = _python312()
    if python is None or sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("needs a Python 3.12 interpreter on linux x86_64 (or HEICCONV_PYTHON312 naming one)")
    task = tmp_path / "task"
    with zipfile.ZipFile(built_ffmpeg[0]["zip"]) as zf:
        zf.extractall(task)
    code = (
        "import sys, heicconv\n"
        "assert heicconv.__file__.startswith(sys.argv[1]), heicconv.__file__\n"
        "r = heicconv.convert_with_report(sys.stdin.buffer.read(), 'jpeg')\n"
        "print(r.backend, [n for n in r.notes if n.startswith('decoded by')][0])\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(task), "HOME": str(tmp_path)}  # backend: auto
    proc = subprocess.run(
        [python, "-s", "-c", code, str(task)], input=make_heic(size=(128, 96)), capture_output=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().startswith("ffmpeg decoded by FFmpeg"), proc.stdout
