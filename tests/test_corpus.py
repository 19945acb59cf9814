"""The real-world corpus (third-party files), when HEICCONV_CORPUS points at it.

Every ``expect: ok`` file converts to JPEG and PNG on every backend at the
primary image's size; every ``expect: error`` file raises DecodeError.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import heicconv
from heicconv.testing.conformance import decode
from heicconv.testing.plugin import require_backend

CORPUS = os.environ.get("HEICCONV_CORPUS")
BACKENDS = ["ffmpeg", "pillow", "vips", "wand"]


def _manifest() -> list[dict[str, Any]]:
    if not CORPUS:
        return []
    with open(Path(CORPUS) / "manifest.json", encoding="utf-8") as fh:
        files: list[dict[str, Any]] = json.load(fh)["files"]
    return files


FILES = _manifest()
pytestmark = pytest.mark.skipif(not CORPUS, reason="set HEICCONV_CORPUS to the shared corpus folder")


def _params(expect: str) -> list[Any]:
    out = []
    for f in FILES:
        if f["expect"] != expect:
            continue
        marks = [pytest.mark.slow] if f["path"].endswith("200MP.heic") else []
        out.append(pytest.param(f, id=f["path"], marks=marks))
    return out


def _formats() -> list[Any]:
    """JPEG for every photo; PNG (an alpha check) too, in the slow tier for photos above 4 MP, not the 200 MP one."""
    out = []
    for f in FILES:
        if f["expect"] != "ok":
            continue
        pixels = f["width"] * f["height"]
        out.append(pytest.param(f, "jpeg", id=f"{f['path']}-jpeg", marks=[pytest.mark.slow] if pixels > 50e6 else []))
        if pixels <= 50e6:
            out.append(pytest.param(f, "png", id=f"{f['path']}-png", marks=[pytest.mark.slow] if pixels > 4e6 else []))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("entry", "fmt"), _formats())
def test_ok_files_convert_at_the_primary_size(entry: dict[str, Any], fmt: str, backend: str) -> None:
    require_backend(backend)
    data = (Path(CORPUS or "") / entry["path"]).read_bytes()
    info = heicconv.probe(data)
    assert (info.width, info.height) == (entry["width"], entry["height"])
    assert (info.images, info.primary_index) == (entry["images"], entry["primary_index"])
    assert info.alpha == entry["alpha"]
    assert list(info.thumbnails) == entry["thumbnails"]
    if backend == "wand" and _imagemagick_refuses(entry["width"], entry["height"]):
        # This machine's ImageMagick policy refuses the picture (Debian's refuses the 200 MP photo); heicconv
        # leaves that policy alone and says so. tests/test_coexistence.py converts it under heicconv's policy.
        with pytest.raises(heicconv.LimitExceededError, match="ImageMagick's policy limits refuse"):
            heicconv.convert(data, fmt, backend=backend)
        return
    out = heicconv.convert(data, fmt, backend=backend)
    if fmt == "jpeg":
        assert heicconv.probe(out).format == "jpeg"
        assert (heicconv.probe(out).width, heicconv.probe(out).height) == (entry["width"], entry["height"])
        return
    img = decode(out)
    assert img.size == (entry["width"], entry["height"]), fmt
    assert ("A" in img.mode) == entry["alpha"]


def _imagemagick_refuses(width: int, height: int) -> bool:
    from heicconv.backends import imagemagick

    try:
        imagemagick.check_fits(width, height)
    except heicconv.LimitExceededError:
        return True
    return False


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", _params("error"))
def test_error_files_raise_decode_error(entry: dict[str, Any], backend: str) -> None:
    require_backend(backend)
    data = (Path(CORPUS or "") / entry["path"]).read_bytes()
    with pytest.raises(heicconv.DecodeError):
        heicconv.convert(data, "jpeg", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", _params("ok-or-error"))
def test_ok_or_error_files_never_leak_a_raw_error(entry: dict[str, Any], backend: str) -> None:
    require_backend(backend)
    data = (Path(CORPUS or "") / entry["path"]).read_bytes()
    try:
        out = heicconv.convert(data, "png", backend=backend)
    except heicconv.HeicconvError as exc:
        assert isinstance(exc, heicconv.DecodeError)
    else:
        assert decode(out).size == (entry["width"], entry["height"])
