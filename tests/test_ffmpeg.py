"""The ffmpeg backend's own route (HEIC -> JPEG through FFmpeg's decoder): same picture, same errors.

The shared suites (conformance, equivalence, geometry, corpus, integrity, fuzz) run it like every backend;
these tests check what only this route does: grid assembly, orientation of the planes, limited range,
strips joined with restart markers, and the hand-over to pillow-heif.
"""

from __future__ import annotations

import io
import random
from typing import Any

import numpy as np
import pytest

import heicconv
from heicconv.container import isobmff
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend


@pytest.fixture
def ffmpeg() -> Any:
    require_backend("ffmpeg")
    return heicconv.select("ffmpeg")


def _pixels(data: bytes) -> Any:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def _psnr(a: Any, b: Any) -> float:
    mse = float(((a - b) ** 2).mean())
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _reference(data: bytes) -> Any:
    """What libheif decodes (pillow backend, lossless PNG)."""
    return _pixels(heicconv.convert(data, "png", backend="pillow"))


def _route(result: heicconv.Result) -> str:
    return next(n for n in result.notes if n.startswith("decoded by"))


def _distinct_grid(width: int, height: int, tile: int = 64) -> bytes:
    """A grid HEIC whose tiles are all different (cut from one picture), so a misplaced tile shows."""
    from PIL import Image

    picture = fixtures.gradient((width, height))
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    return fixtures.make_grid(Image.blend(picture, noise, 0.3), tile, quality=95)


def test_a_grid_is_assembled_as_libheif_assembles_it(ffmpeg: Any) -> None:
    data = _distinct_grid(200, 136)
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(quality=95), backend="ffmpeg")
    assert _route(result).startswith("decoded by FFmpeg (12 tile(s)")
    assert _psnr(_pixels(result.data), _reference(data)) >= 38


@pytest.mark.parametrize(("rotation", "mirror"), [(r, m) for r in (0, 90, 180, 270) for m in (None, 0, 1)])
def test_every_transform_makes_the_same_upright_picture(ffmpeg: Any, rotation: int, mirror: int | None) -> None:
    data = fixtures.set_heif_transform(_distinct_grid(128, 96), rotation, mirror)
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(quality=95), backend="ffmpeg")
    assert _route(result).startswith("decoded by FFmpeg")
    ours, theirs = _pixels(result.data), _reference(data)
    assert ours.shape == theirs.shape
    assert _psnr(ours, theirs) >= 38, (rotation, mirror)


@pytest.mark.parametrize("nclx", [(1, 13, 6, True), (1, 13, 6, False)], ids=["full-range", "limited-range"])
def test_bt601_goes_through_ffmpeg_in_either_range(ffmpeg: Any, nclx: tuple[int, int, int, bool]) -> None:
    data = fixtures.make_heic((96, 64), nclx=nclx, quality=95)
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(quality=95), backend="ffmpeg")
    assert _route(result).startswith("decoded by FFmpeg")
    # 35 dB, as tests/test_equivalence.py asks of JPEG: this gradient's saturated edges show 4:2:0 chroma.
    assert _psnr(_pixels(result.data), _reference(data)) >= 35


def test_other_matrices_and_outputs_go_to_pillow_heif_and_say_so(ffmpeg: Any) -> None:
    bt709 = fixtures.make_heic((96, 64), nclx=(1, 13, 1, True), quality=95)
    result = heicconv.convert_with_report(bt709, "jpeg", heicconv.Options(quality=95), backend="ffmpeg")
    assert "not BT.601" in _route(result) and result.backend == "ffmpeg"
    assert _psnr(_pixels(result.data), _reference(bt709)) >= 40
    png = heicconv.convert_with_report(fixtures.make_heic(), "png", backend="ffmpeg")
    assert _route(png) == "decoded by pillow-heif (libheif), not FFmpeg: png output (the FFmpeg route writes JPEG)"


@pytest.mark.parametrize(("rotation", "mirror"), [(0, None), (180, None), (0, 0), (90, None), (270, None), (90, 1)])
def test_strips_joined_with_restart_markers_decode_to_the_whole_picture(
    ffmpeg: Any, rotation: int, mirror: int | None
) -> None:
    data = fixtures.set_heif_transform(_distinct_grid(200, 300), rotation, mirror)
    options = heicconv.Options(quality=95)
    whole = heicconv.convert(data, "jpeg", options, backend="ffmpeg")
    ffmpeg.strip_pixels = 0
    try:
        result = heicconv.convert_with_report(data, "jpeg", options, backend="ffmpeg")
    finally:
        ffmpeg.strip_pixels = type(ffmpeg)().strip_pixels
    strips = 4 if rotation in (90, 270) else 5  # bands of tiles: columns when the picture is turned
    assert f"encoded in {strips} strips of 64 rows joined with restart markers" in _route(result)
    assert b"\xff\xdd\x00\x04" in result.data[: result.data.index(b"\xff\xda")]  # the restart interval
    assert np.array_equal(_pixels(result.data), _pixels(whole))  # the same blocks, coded the same way
    assert _psnr(_pixels(result.data), _reference(data)) >= 38


def test_exif_and_xmp_are_written_as_pillow_writes_them(ffmpeg: Any) -> None:
    from PIL import Image

    data = fixtures.make_heic((64, 64), exif=fixtures.exif_block(orientation=1), xmp=b"<x:xmpmeta/>")
    out = Image.open(io.BytesIO(heicconv.convert(data, "jpeg", backend="ffmpeg")))
    ref = Image.open(io.BytesIO(heicconv.convert(data, "jpeg", backend="pillow")))
    assert out.info.get("exif") == ref.info.get("exif")
    assert out.info.get("xmp") == ref.info.get("xmp")


def test_a_damaged_tile_is_a_decode_error(ffmpeg: Any) -> None:
    data = bytearray(_distinct_grid(128, 64))
    c = isobmff.parse(bytes(data))
    tile = c.items[c.items[c.primary_id].refs[b"dimg"][1]]
    start, length = tile.base_offset + tile.extents[0][0], tile.extents[0][1]
    # The slice's payload replaced by noise that keeps its framing (no zero runs), so that heicconv's structural
    # check lets it through and FFmpeg itself fails on it.
    noise = random.Random(4).randbytes(length - 6).replace(b"\x00", b"\x55")
    data[start + 6 : start + length] = noise
    ffmpeg.threads, threads = 2, ffmpeg.threads  # frame threads: freeing them after a damaged tile once deadlocked
    try:
        for _ in range(5):
            with pytest.raises(heicconv.DecodeError, match=r"tiles decoded|ffmpeg could not decode"):
                heicconv.convert(bytes(data), "jpeg", backend="ffmpeg")
    finally:
        ffmpeg.threads = threads
