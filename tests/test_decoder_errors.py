"""Damage a decoder does not report is still refused: the tell-tale it leaves is found in the pixels.

libde265 (under pillow-heif, libvips and ImageMagick) and FFmpeg's HEVC decoder return a picture without a
word when a tile's coded data stops early: the rest of the tile is left as the decoder's buffer was. The
fixtures here make that happen for certain, without damaged bytes: each tile is coded in four slices (a
slice is a CTU row of a 256-pixel tile) and the last slice of one tile is left out, which every decoder
reads as a picture whose bottom CTU row was never decoded.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest

import heicconv
from heicconv.backends import _damage
from heicconv.container import isobmff
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

BACKENDS = ["pillow", "vips", "wand", "ffmpeg"]
TILE = 256


def _picture(size: tuple[int, int] = (512, 512)) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(fixtures.make_image("png", size))).convert("RGB")


def _units(data: bytes) -> list[bytes]:
    """The length-prefixed NAL units of an item's data."""
    units, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        units.append(data[pos : pos + 4 + n])
        pos += 4 + n
    return units


def sliced_grid(picture: Any, *, cut: tuple[int, ...] = (), grid: bool = True) -> bytes:
    """``picture`` as a HEIC grid of 256-pixel tiles (or one image), each HEVC-coded in four slices; the tiles
    whose indices are in ``cut`` lose their last slice (their data stays well-formed: whole NAL units)."""
    from heicconv.backends._native import load_pillow_heif

    heif = load_pillow_heif()
    width, height = picture.size
    tile = TILE if grid else max(width, height)
    cols, rows = -(-width // tile), -(-height // tile)
    tiles: list[isobmff.NewItem] = []
    for r in range(rows):
        for c in range(cols):
            from PIL import Image

            canvas = Image.new("RGB", (tile, tile))
            canvas.paste(picture.crop((c * tile, r * tile, min(width, (c + 1) * tile), min(height, (r + 1) * tile))))
            buf = io.BytesIO()
            heif.from_pillow(canvas).save(buf, quality=80, enc_params={"x265:slices": "4"})
            coded = buf.getvalue()
            parsed = isobmff.parse(coded)
            item = parsed.copy_items(coded, parsed.primary_id)[0]
            units = _units(item.data)
            assert len(units) == 4, "x265 did not code the tile in four slices"
            data = b"".join(units[:-1]) if len(tiles) in cut else item.data
            tiles.append(isobmff.NewItem(len(tiles) + 1, item.type, data, item.properties))
    if not grid:
        tiles[0].hidden = False
        return isobmff.write(tiles, tiles[0].id)
    descriptor = bytes([0, 0, rows - 1, cols - 1]) + struct.pack(">HH", width, height)
    ispe = isobmff._full_box(b"ispe", 0, 0, struct.pack(">II", width, height))
    item = isobmff.NewItem(len(tiles) + 1, b"grid", descriptor, [(ispe, False)], parts=[t.id for t in tiles])
    item.hidden = False
    return isobmff.write([item, *tiles], item.id)


@pytest.fixture(scope="module")
def picture() -> Any:
    return _picture()


@pytest.fixture(scope="module")
def whole(picture: Any) -> bytes:
    return sliced_grid(picture)


@pytest.fixture(scope="module")
def cut(picture: Any) -> bytes:
    return sliced_grid(picture, cut=(1,))


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tile_the_decoder_did_not_finish_is_refused(backend: str, fmt: str, whole: bytes, cut: bytes) -> None:
    require_backend(backend)
    assert heicconv.convert(whole, fmt, backend=backend)  # the same file with every slice converts
    with pytest.raises(heicconv.DecodeError, match=r"HEVC data is damaged: tile 2 of 4 stops decoding after 12"):
        heicconv.convert(cut, fmt, backend=backend)


@pytest.mark.parametrize("rotation", [90, 270])
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_damaged_tile_is_found_in_a_rotated_picture(backend: str, rotation: int, cut: bytes) -> None:
    """The check maps the upright picture back to the coded tiles (irot): the same tile is named."""
    require_backend(backend)
    turned = fixtures.set_heif_transform(cut, rotation=rotation)
    with pytest.raises(heicconv.DecodeError, match="damaged: tile 2 of 4 "):
        heicconv.convert(turned, "jpeg", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_single_image_the_decoder_did_not_finish_is_refused(backend: str) -> None:
    require_backend(backend)
    data = sliced_grid(_picture((256, 256)), cut=(0,), grid=False)
    with pytest.raises(heicconv.DecodeError, match="the image stops decoding after"):
        heicconv.convert(data, "jpeg", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_flat_green_is_not_damage(backend: str) -> None:
    """Green at the decoder's initial value, RGB (0, 136, 0), in a real picture: across tile edges along a CTU row
    (the lower part of the picture), and filling whole tiles. Both convert, on every backend."""
    require_backend(backend)
    from PIL import Image, ImageDraw

    picture = _picture()
    ImageDraw.Draw(picture).rectangle((0, 384, 511, 511), fill=(0, 136, 0))
    assert heicconv.convert(sliced_grid(picture), "jpeg", backend=backend)
    green = Image.new("RGB", (512, 512), (0, 136, 0))
    ImageDraw.Draw(green).rectangle((0, 0, 40, 40), fill=(200, 30, 30))
    assert heicconv.convert(sliced_grid(green), "jpeg", backend=backend)


def test_upright_box_follows_every_orientation() -> None:
    """A box of the coded picture lands where ``_hevc.orient`` (the ffmpeg route's turn) puts its pixels."""
    import numpy as np

    from heicconv.backends import _hevc

    coded = np.arange(6 * 4, dtype=np.int32).reshape(4, 6)  # 6 wide, 4 high
    box = (1, 2, 4, 4)
    for orientation in range(1, 9):
        upright = _hevc.orient((coded, coded, coded), orientation)[0]
        x0, y0, x1, y1 = _damage.upright_box(box, (6, 4), orientation)
        assert sorted(upright[y0:y1, x0:x1].ravel()) == sorted(coded[2:4, 1:4].ravel()), orientation
        fetch = _damage.coded(lambda b, u=upright: u[b[1] : b[3], b[0] : b[2]], (6, 4), orientation)
        assert (fetch(box) == coded[2:4, 1:4]).all(), orientation
