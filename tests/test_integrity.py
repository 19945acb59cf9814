"""Never a damaged picture: truncated and damaged inputs give the same heicconv error on every backend.

The truncation matrix converts every input format, cut at several points (one byte short
included), on every backend, and expects a ``DecodeError`` that says the file is truncated.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

import heicconv
from heicconv.container import isobmff
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

BACKENDS = ("ffmpeg", "pillow", "vips", "wand")
CUTS = (0.1, 0.5, 0.99, -1)  # fractions of the file kept; -1: all but the last byte


def _avif() -> bytes:
    buf = io.BytesIO()
    fixtures.gradient((256, 192)).save(buf, "AVIF", quality=80)
    return buf.getvalue()


def _sources() -> dict[str, bytes]:
    return {
        "heic": fixtures.make_heic((256, 192), quality=80, exif=fixtures.exif_block()),
        "heic-alpha": fixtures.make_heic((256, 192), "RGBA", quality=80),
        "ios18-layout": fixtures.make_iphone_heic((256, 192)),
        "avif": _avif(),
        "jpeg": fixtures.make_image("jpeg", (256, 192), quality=90),
        "jpeg-progressive": fixtures.make_image("jpeg", (256, 192), quality=90, progressive=True),
        "png": fixtures.make_image("png", (256, 192)),
        "webp": fixtures.make_image("webp", (256, 192), quality=90),
        "tiff": fixtures.make_image("tiff", (256, 192), compression="tiff_adobe_deflate"),
    }


SOURCES = _sources()


def _cut(data: bytes, cut: float) -> bytes:
    return data[: len(data) - 1] if cut == -1 else data[: int(len(data) * cut)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_truncated_inputs_are_refused_on_every_backend(backend: str, name: str) -> None:
    require_backend(backend)
    whole = SOURCES[name]
    assert heicconv.convert_with_report(whole, "png", backend=backend).width == 256  # the uncut file converts
    for cut in CUTS:
        with pytest.raises(heicconv.DecodeError, match="truncated") as caught:
            heicconv.convert(_cut(whole, cut), "png", backend=backend)
        assert caught.value.__class__ is heicconv.DecodeError, cut


def test_probe_still_reads_the_header_of_a_partial_download() -> None:
    data = fixtures.make_heic((256, 192), quality=80)
    info = heicconv.probe(data[: len(data) // 2])
    assert (info.format, info.width, info.height) == ("heic", 256, 192)


def test_a_cut_inside_the_header_says_truncated() -> None:
    data = fixtures.make_heic((64, 48))
    meta_start = data.index(b"meta") - 4
    with pytest.raises(heicconv.DecodeError, match="truncated: its 'meta' box"):
        heicconv.convert(data[: meta_start + 40], "png")


def _open_ended(data: bytes) -> bytes:
    """The same file with its 'mdat' box size 0 ("to the end of the file"), as some writers do."""
    at = data.index(b"mdat") - 4
    return data[:at] + b"\0\0\0\0" + data[at + 4 :]


@pytest.mark.parametrize("backend", BACKENDS)
def test_items_past_the_end_of_an_open_ended_mdat_are_refused(backend: str) -> None:
    require_backend(backend)
    data = _open_ended(fixtures.make_heic((256, 192), quality=80))
    assert heicconv.convert_with_report(data, "png", backend=backend).width == 256
    with pytest.raises(heicconv.DecodeError, match="truncated or damaged: item"):
        heicconv.convert(data[:-1], "png", backend=backend)


def test_a_truncated_thumbnail_or_alpha_plane_is_refused() -> None:
    """Every item the output needs is checked, not only the image: here the file's last item is cut."""
    with_thumb = fixtures.make_heic((256, 192), thumbnail=64, quality=80)
    c = isobmff.parse(with_thumb)
    photo = c.copy_items(with_thumb, c.primary_id)
    thumb = c.copy_items(with_thumb, c.thumbnails_of(c.primary_id)[0].id)[0]
    thumb.id, thumb.thumbnail_of = 99, [photo[0].id]
    with_alpha = fixtures.make_heic((256, 192), "RGBA", quality=80)
    c = isobmff.parse(with_alpha)
    for items, last in (([*photo, thumb], 99), (c.copy_items(with_alpha, c.primary_id), c.alpha_of(c.primary_id).id)):  # type: ignore[union-attr]
        data = _open_ended(isobmff.write(items, items[0].id))
        assert heicconv.convert_with_report(data, "jpeg").width == 256
        with pytest.raises(heicconv.DecodeError, match=f"truncated or damaged: item {last}'s data"):
            heicconv.convert(data[:-1], "jpeg", heicconv.Options(max_size=64, use_thumbnail=True))


def _png_with_damaged_idat(fix_crc: bool) -> bytes:
    data = bytearray(fixtures.make_image("png", (256, 192)))
    at = data.index(b"IDAT") - 4
    length = struct.unpack_from(">I", data, at)[0]
    for k in range(at + 8 + length // 3, at + 8 + length // 3 + 24):
        data[k] ^= 0x5A
    if fix_crc:  # damage that the chunk's CRC does not reveal: the decoder must find it
        struct.pack_into(">I", data, at + 8 + length, zlib.crc32(bytes(data[at + 4 : at + 8 + length])))
    return bytes(data)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fix_crc", [False, True], ids=["crc-fails", "crc-recomputed"])
def test_a_damaged_png_is_refused_on_every_backend(backend: str, fix_crc: bool) -> None:
    require_backend(backend)
    # The CRC check names the damage; past it, each decoder finds it in its own words.
    with pytest.raises(heicconv.DecodeError, match="damaged: its 'IDAT' chunk" if not fix_crc else "."):
        heicconv.convert(_png_with_damaged_idat(fix_crc), "jpeg", backend=backend)


def _webp_with_damaged_data() -> bytes:
    data = bytearray(fixtures.make_image("webp", (256, 192), quality=90))
    for k in range(len(data) // 2, len(data) // 2 + 64):
        data[k] ^= 0xA5
    return bytes(data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_damaged_pixel_data_is_a_decode_error_not_an_encode_error(backend: str) -> None:
    """libvips decodes while it encodes; its loaders' failures must still read as DecodeError."""
    require_backend(backend)
    with pytest.raises(heicconv.DecodeError):
        heicconv.convert(_webp_with_damaged_data(), "png", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_header_that_understates_the_picture_is_a_decode_error(backend: str) -> None:
    """A 1024x1024 HEVC picture declared 64x64: refused from the SPS, before a decoder allocates for it."""
    require_backend(backend)
    data = fixtures.set_ispe(fixtures.make_heic((1024, 1024), quality=50), 64, 64)
    with pytest.raises(heicconv.DecodeError, match="codes a 1024x1024 picture but its header"):
        heicconv.convert(data, "png", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_image_index_out_of_range_is_the_callers_mistake(backend: str) -> None:
    require_backend(backend)
    for data in (fixtures.make_heic((40, 30), images=2), fixtures.make_image("png")):
        with pytest.raises(heicconv.ConfigError, match="image_index: 5 is out of range"):
            heicconv.convert(data, "png", heicconv.Options(image_index=5), backend=backend)


def _gray_grid() -> bytes:
    """A grayscale photo stored as a one-tile grid with a 'pixi' on the grid, as some encoders write it."""
    coded = fixtures.encode_heic(fixtures.gradient((64, 64), "L"))
    c = isobmff.parse(coded)
    tile = c.copy_items(coded, c.primary_id)[0]
    ispe = isobmff._full_box(b"ispe", 0, 0, (48).to_bytes(4, "big") * 2)
    pixi = isobmff._full_box(b"pixi", 0, 0, bytes([3, 8, 8, 8]))  # an encoder that says 3 channels
    grid = isobmff.NewItem(10, b"grid", bytes([0, 0, 0, 0, 0, 48, 0, 48]), [(ispe, False), (pixi, False)])
    grid.parts, grid.hidden = [tile.id], False
    return isobmff.write([grid, tile], 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grayscale_stays_grayscale(backend: str) -> None:
    require_backend(backend)
    from PIL import Image

    for data in (_gray_grid(), fixtures.make_heic((64, 48), "L")):
        assert heicconv.probe(data).grayscale
        for fmt in ("jpeg", "png", "tiff"):
            out = Image.open(io.BytesIO(heicconv.convert(data, fmt, backend=backend)))
            assert out.mode == "L", (fmt, out.mode)
        # WebP has no grayscale mode: it comes out RGB, and the picture is still gray.
        webp = Image.open(io.BytesIO(heicconv.convert(data, "webp", backend=backend))).convert("RGB")
        r, g, _ = (band.getextrema() for band in webp.split())
        assert max(abs(x - y) for x, y in zip(r, g, strict=True)) <= 3


def test_the_command_line_refuses_every_truncated_file(tmp_path: Path) -> None:
    for backend in BACKENDS:
        require_backend(backend)
    src = tmp_path / "cut"
    src.mkdir()
    suffix = {"avif": ".avif", "png": ".png", "webp": ".webp", "tiff": ".tiff"}
    expected = []
    for name, data in SOURCES.items():
        for n, cut in enumerate(CUTS):
            path = src / f"{name}-{n}{suffix.get(name, '.jpg' if 'jpeg' in name else '.heic')}"
            path.write_bytes(_cut(data, cut))
            expected.append(path.name)
    for backend in BACKENDS:
        out = tmp_path / f"out-{backend}"
        done = _heicconv("convert", str(src), "-o", str(out), "--backend", backend, "--to", "png", "--from", "all")
        assert done.returncode == 1, done.stderr
        failed = [line for line in done.stderr.splitlines() if line.startswith("failed")]
        assert len(failed) == len(expected) and all("truncated" in line for line in failed), done.stderr
        assert not out.exists() or not any(out.rglob("*.png"))  # nothing written, not even a partial picture


def _heicconv(*args: str) -> subprocess.CompletedProcess[str]:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    return subprocess.run(
        [sys.executable, "-m", "heicconv", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "I;16", "1"])
def test_png_image_data_is_checked_to_the_last_row(mode: str) -> None:
    from PIL import Image

    from heicconv.container import completeness

    buf = io.BytesIO()
    fixtures.gradient((61, 37), "RGBA" if mode in ("RGBA", "LA") else "RGB").convert(mode).save(buf, "PNG")
    good = buf.getvalue()
    completeness.check_png_data(good)  # whole: no error
    assert Image.open(io.BytesIO(good)).mode == mode
    at = good.index(b"IDAT") - 4
    length = struct.unpack_from(">I", good, at)[0]
    # The same rows compressed again without the last one: every chunk's CRC is right, the stream is whole.
    raw = zlib.decompress(good[at + 8 : at + 8 + length])
    short = zlib.compress(raw[: len(raw) - len(raw) // 37])
    chunk = struct.pack(">I", len(short)) + b"IDAT" + short
    chunk += struct.pack(">I", zlib.crc32(b"IDAT" + short))
    cut = good[:at] + chunk + good[at + 12 + length :]
    with pytest.raises(heicconv.DecodeError, match="image data holds"):
        completeness.check_png_data(cut)


def test_vips_never_writes_a_png_whose_image_data_is_damaged() -> None:
    """libvips found this damage in its threaded pipeline about once in a hundred tries: now every time."""
    require_backend("vips")
    damaged = _png_with_damaged_idat(fix_crc=True)
    for _ in range(40):
        with pytest.raises(heicconv.DecodeError, match="does not inflate"):
            heicconv.convert(damaged, "jpeg", backend="vips")
