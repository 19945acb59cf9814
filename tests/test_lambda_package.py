"""A deployment package built for another Python is named at init, not met as an ImportError at the first photo.

The fast test lays out a package as a wheel for another CPython would (this Python's own Pillow and
pillow-heif, their compiled modules tagged for the next minor version); the slow one runs the handler
of the real python3.12 ZIP (``docker/build_lambda_zip.py``, shared with test_docker_lambda_zip.py)
with this Python, when it is another one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from test_docker_lambda_zip import _load_builder, built

from heicconv.testing.fixtures import make_heic

__all__ = ["built"]  # the real ZIPs for python3.12, a fixture used by name

OTHER = f"{sys.version_info.major}.{sys.version_info.minor + 1}"
RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"

# Lambda's INIT, then one Function URL request and one S3 notification, as the runtime would call them.
INVOKE = r"""
import base64, json, sys
import heicconv.aws_lambda as function
event = {"version": "2.0", "rawPath": "/convert", "requestContext": {"http": {"method": "POST"}},
         "headers": {"content-type": "image/heic"}, "body": sys.argv[1], "isBase64Encoded": True}
http = function.handler(event)
try:
    function.handler({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                   "s3": {"bucket": {"name": "b"}, "object": {"key": "k.heic"}}}]})
    s3 = "no error"
except Exception as exc:
    s3 = f"{type(exc).__name__}: {exc}"
print(json.dumps({"http": http, "s3": s3}))
"""


def invoke(package: Path) -> tuple[dict[str, Any], str, str]:
    """Run the handler of ``package`` (first on sys.path, as /var/task is on Lambda) with this Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env["PYTHONPATH"] = os.pathsep.join([str(package), *filter(None, [os.environ.get("PYTHONPATH")])])
    photo = base64.b64encode(make_heic(size=(32, 24))).decode()
    out = subprocess.run(
        [sys.executable, "-c", INVOKE, photo], env=env, cwd=package, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    return result["http"], result["s3"], out.stderr


def check(package: Path, built_for: str = OTHER) -> None:
    http, s3, log = invoke(package)
    body = json.loads(http["body"])
    assert http["statusCode"] == 503 and body["error"] == "backend_unavailable", body
    said = f"built for Python {built_for} on x86_64"
    assert said in body["message"] and f"runs Python {RUNNING}" in body["message"]
    assert f"--python {RUNNING}" in body["message"]
    assert s3.startswith("BackendUnavailableError") and said in s3  # S3 events fail (and are retried), loudly
    assert said in log  # said once at init, in the function's log


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64", reason="x86_64 Linux")
def test_a_package_for_another_python_is_named_at_init(tmp_path: Path) -> None:
    import PIL

    site = Path(PIL.__file__).parent.parent
    tag = re.compile(rf"\.cpython-{sys.version_info.major}{sys.version_info.minor}-")
    for name in ("PIL", "pillow.libs", "pillow_heif", "pillow_heif.libs"):
        if (site / name).is_dir():
            shutil.copytree(site / name, tmp_path / name)
    for module in site.glob("_pillow_heif.*.so"):
        shutil.copy(module, tmp_path / module.name)
    renamed = 0
    for module in tmp_path.rglob("*.so"):
        if tag.search(module.name):
            module.rename(module.with_name(tag.sub(f".cpython-{OTHER.replace('.', '')}-", module.name)))
            renamed += 1
    assert renamed > 2
    check(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="runs the x86_64 ZIP")
@pytest.mark.skipif(RUNNING == "3.12", reason="the ZIP is built for Python 3.12: run this with another Python")
def test_the_real_zip_for_another_python_is_named_at_init(built: list[dict[str, Any]], tmp_path: Path) -> None:
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(next(s["zip"] for s in built if s["arch"] == "x86_64")) as zf:
        zf.extractall(unpacked)
    check(unpacked, built_for="3.12")


def _summary(unzipped_mb: float, zipped_mb: float) -> dict[str, Any]:
    mb = 1024 * 1024
    return {"zip": "/out/heicconv-lambda-ffmpeg-py312-x86_64.zip", "unzipped_bytes": int(unzipped_mb * mb),
            "zipped_bytes": int(zipped_mb * mb)}  # fmt: skip


def test_the_builder_refuses_past_250_mb_and_warns_near_it() -> None:
    builder = _load_builder()
    assert builder.limit_notes(_summary(46.2, 12.5)) == []
    near = builder.limit_notes(_summary(240.0, 45.0))
    assert len(near) == 1 and near[0].startswith("warning:") and "within 25 MB" in near[0]
    over = builder.limit_notes(_summary(251.0, 70.0))
    assert over[0].startswith("error:") and "251.0 MB unzipped, over Lambda's 250 MB limit" in over[0]
    assert over[1].startswith("note:") and "--s3-bucket" in over[1]


def test_the_builder_drops_what_nothing_imports(tmp_path: Path) -> None:
    builder = _load_builder()
    for name in ("numpy/_core/tests/test_a.py", "numpy/__init__.pyi", "av/frame.pxd", "numpy/_core/include/a.h",
                 "numpy/_core/multiarray.py", "tests/__init__.py", "av/__init__.py"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    builder.trim(tmp_path)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["av/__init__.py", "numpy/_core/multiarray.py", "tests/__init__.py"]  # a top-level "tests" stays
