"""Damage a decoder does not report is still refused: the tell-tale it leaves is found in the pixels.

libde265 (under pillow-heif, libvips and ImageMagick) and FFmpeg's HEVC decoder return a picture without a
word when a tile's coded data stops early: the rest of the tile is left as the decoder's buffer was. The
fixtures here make that happen for certain, without damaged bytes: each tile is coded in four slices (a
slice is a CTU row of a 256-pixel tile) and the last slice of one tile is left out, which every decoder
reads as a picture whose bottom CTU row was never decoded.
"""

from __future__ import annotations

import functools
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


def sliced_grid(
    picture: Any,
    *,
    cut: tuple[int, ...] = (),
    grid: bool = True,
    bit_depth: int = 8,
    nclx: tuple[int, int, int, bool] | None = None,
    slice: int = 3,
) -> bytes:
    """``picture`` as a HEIC grid of 256-pixel tiles (or one image), each HEVC-coded in four slices (a CTU row
    each); the tiles whose indices are in ``cut`` lose their slice ``slice`` (0-based: the last by default;
    their data stays well-formed: whole NAL units). ``bit_depth`` and ``nclx`` as for ``fixtures.encode_heic``."""
    width, height = picture.size
    tile = TILE if grid else max(width, height)
    cols, rows = -(-width // tile), -(-height // tile)
    tiles: list[isobmff.NewItem] = []
    for r in range(rows):
        for c in range(cols):
            from PIL import Image

            canvas = Image.new("RGB", (tile, tile))
            canvas.paste(picture.crop((c * tile, r * tile, min(width, (c + 1) * tile), min(height, (r + 1) * tile))))
            coded = fixtures.encode_heic(canvas, 80, bit_depth=bit_depth, nclx=nclx, enc_params={"x265:slices": "4"})
            parsed = isobmff.parse(coded)
            item = parsed.copy_items(coded, parsed.primary_id)[0]
            units = _units(item.data)
            assert len(units) == 4, "x265 did not code the tile in four slices"
            data = b"".join(units[:slice] + units[slice + 1 :]) if len(tiles) in cut else item.data
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


# Camera files (10-bit) and HDR phones' photos (10-bit PQ or HLG, which heicconv renders SDR before the backend
# runs) get the same check: the untouched buffer is zero chroma at any depth, found in 8- and 16-bit pictures.
DEEP = {"10-bit": None, "PQ": (9, 16, 9, True)}


@functools.cache
def _deep(source: str) -> tuple[bytes, bytes]:
    """The 10-bit grid whole, and with tile 2's last slice left out."""
    whole, cut = (sliced_grid(_picture(), cut=c, bit_depth=10, nclx=DEEP[source]) for c in ((), (1,)))
    return whole, cut


@pytest.mark.parametrize("output", ["jpeg", "png16"])
@pytest.mark.parametrize("source", sorted(DEEP))
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_10_bit_tile_the_decoder_did_not_finish_is_refused(backend: str, source: str, output: str) -> None:
    require_backend(backend)
    options = heicconv.Options(bit_depth=16) if output == "png16" else None
    fmt = "png" if output == "png16" else "jpeg"
    whole, cut = _deep(source)
    assert heicconv.probe(cut).bit_depth == 10
    assert heicconv.convert(whole, fmt, options, backend=backend)
    with pytest.raises(heicconv.DecodeError, match=r"HEVC data is damaged: tile 2 of 4 stops decoding after 12"):
        heicconv.convert(cut, fmt, options, backend=backend)


# A camera codes a tile in several slices (Canon's HIF files in two): when the decoder loses its place in one,
# it picks up again where the next one begins, and the untouched run is inside the tile, not at its end.
@pytest.mark.parametrize("depth", [8, 10])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slice_the_decoder_did_not_finish_inside_a_tile_is_refused(backend: str, depth: int) -> None:
    require_backend(backend)
    hole = sliced_grid(_picture(), cut=(1,), bit_depth=depth, slice=1)
    for fmt in ("jpeg", "png"):
        with pytest.raises(
            heicconv.DecodeError,
            match=r"damaged: tile 2 of 4 is left undecoded from CTU 5 to CTU 8 of its 16 \(of 64 pixels\), up to the "
            r"slice that begins at CTU 9",
        ):
            heicconv.convert(hole, fmt, backend=backend)


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


@pytest.mark.parametrize("depth", [8, 10])
@pytest.mark.parametrize("backend", BACKENDS)
def test_real_flat_green_is_not_damage(backend: str, depth: int) -> None:
    """Green at the decoder's initial value, RGB (0, 136, 0), in a real picture: across tile edges along a CTU row
    (the lower part of the picture), and filling whole tiles. Both convert, on every backend, from 8 and 10 bits
    (to 16-bit PNG too)."""
    require_backend(backend)
    from PIL import Image, ImageDraw

    picture = _picture()
    ImageDraw.Draw(picture).rectangle((0, 384, 511, 511), fill=(0, 136, 0))
    green = Image.new("RGB", (512, 512), (0, 136, 0))
    ImageDraw.Draw(green).rectangle((0, 0, 40, 40), fill=(200, 30, 30))
    outputs = [("jpeg", None)] + ([("png", heicconv.Options(bit_depth=16))] if depth > 8 else [])
    for photo in (sliced_grid(picture, bit_depth=depth), sliced_grid(green, bit_depth=depth)):
        for fmt, options in outputs:
            assert heicconv.convert(photo, fmt, options, backend=backend)


def test_16_bit_pixels_are_checked_as_their_top_8_bits() -> None:
    """A 16-bit picture's samples are read as 8-bit ones (its high byte), as the tell-tale's thresholds are."""
    import numpy as np

    samples = np.array([[[0x0012, 0x88FF, 0xFF00]]], dtype=np.uint16)
    fetch = _damage.coded(lambda box: samples, (1, 1), 1)
    assert fetch((0, 0, 1, 1)).tolist() == [[[0x00, 0x88, 0xFF]]]
    assert fetch((0, 0, 1, 1)).dtype == np.uint8


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


def test_where_slices_begin_is_read_from_the_coded_data() -> None:
    """``bitstream.hevc_slices`` reads the CTU size and each slice's address from the SPS, PPS and slice headers:
    the fixture's 256-pixel tiles are four slices of one row of four 64-pixel CTUs; a tile with its second slice
    left out begins slices at CTUs 0, 8 and 12; data that is not a slice header gives None."""
    from heicconv.container.bitstream import Slices, hevc_slices, hvcc_units, nal_units

    def slices(photo: bytes, tile: int) -> Slices | None:
        c = isobmff.parse(photo)
        item = c.items[c.items[c.primary_id].refs[b"dimg"][tile]]
        hvcc = next(bytes(photo[s + 8 : e]) for s, e in c.property_spans if photo[s + 4 : s + 8] == b"hvcC")
        return hevc_slices(hvcc_units(hvcc), nal_units(c.item_data(item, photo, len(photo)), item.nal_length_size))

    hole = sliced_grid(_picture(), cut=(1,), slice=1)
    assert slices(hole, 0) == Slices(ctb=64, columns=4, count=16, starts=(0, 4, 8, 12))
    assert slices(hole, 1) == Slices(ctb=64, columns=4, count=16, starts=(0, 8, 12))
    whole = fixtures.make_grid(_picture(), tile=256)
    one = slices(whole, 3)
    assert one is not None and one.starts == (0,)
    assert hevc_slices([b"\x42\x01\xff"], [b"\x26\x01\x80"]) is None


def test_an_hvcc_cut_short_is_read_as_far_as_it_is_whole() -> None:
    """The slice reader and libde265 take the parameter sets that are whole; the ffmpeg route refuses the box."""
    pytest.importorskip("av")
    from heicconv.backends._hevc import parameter_sets
    from heicconv.container.bitstream import hvcc_arrays, hvcc_units

    photo = fixtures.encode_heic(fixtures.gradient((64, 48)), quality=80)
    c = isobmff.parse(photo)
    hvcc = next(photo[s + 8 : e] for s, e in c.property_spans if photo[s + 4 : s + 8] == b"hvcC")  # its payload
    units, broken = hvcc_arrays(hvcc)
    assert broken is None and [(u[0] >> 1) & 0x3F for u in units][:3] == [32, 33, 34]  # VPS, SPS, PPS
    stream, length_size = parameter_sets(hvcc)
    assert length_size == 4 and stream.count(b"\0\0\0\1") == len(units)
    cut = hvcc[: len(hvcc) - 3]  # inside the last parameter set
    assert hvcc_arrays(cut)[1] == "a parameter set" and hvcc_units(cut) == units[:-1]
    with pytest.raises(heicconv.DecodeError, match=r"\('hvcC'\) ends inside a parameter set"):
        parameter_sets(cut)
    with pytest.raises(heicconv.DecodeError, match=r"\('hvcC'\) is shorter than its header"):
        parameter_sets(hvcc[:20])
    assert hvcc_units(hvcc[:20]) == []
