"""AVIF as real files lay it out: heicconv's header reader, its limits, and what it hands each decoder.

The pictures every backend gives on these files are compared in tests/test_equivalence.py.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from PIL import Image

import heicconv
from heicconv.backends.contract import PipelineBackend
from heicconv.container import bitstream, isobmff
from heicconv.container.info import read_source
from heicconv.testing import fixtures
from heicconv.testing.conformance import _psnr, decode
from heicconv.testing.plugin import require_backend

BACKENDS = ("pillow", "ffmpeg", "vips", "wand")


def _ipma_ids(data: bytes) -> list[int]:
    ((start, header, _),) = fixtures._find_boxes(data, [b"meta", b"iprp", b"ipma"])
    pos = start + header + 4  # version 0, flags 0: 16-bit ids, 1-byte associations
    count, pos = struct.unpack_from(">I", data, pos)[0], pos + 4
    ids = []
    for _ in range(count):
        ids.append(struct.unpack_from(">H", data, pos)[0])
        pos += 3 + data[pos + 2]
    return ids


def test_written_files_list_item_properties_by_increasing_id() -> None:
    # libavif refuses an 'ipma' that does not ("BMFF parsing failed"), and heicconv hands decoders a grid first.
    data = fixtures.make_avif_grid(fixtures.gradient((128, 64)), grid_first=False)
    c = isobmff.parse(data)
    extracted = c.extract(data, c.primary_id)
    assert isobmff.parse(extracted).primary_id == c.primary_id
    assert _ipma_ids(extracted) == sorted(_ipma_ids(extracted)) == [1, 2, 3]


@pytest.mark.parametrize(
    "layout",
    [{}, {"grid_first": False}, {"tiles_hidden": False}, {"other_image": True}, {"tile": 32}],
    ids=["plain", "grid-last", "tiles-shown", "two-images", "tiles-under-64"],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_avif_grids_decode_whole_on_every_backend(backend: str, layout: dict[str, Any]) -> None:
    require_backend(backend)
    data = fixtures.make_avif_grid(fixtures.gradient((150, 100)), **layout)
    result = heicconv.convert_with_report(data, "png", backend=backend)
    assert (result.width, result.height) == (150, 100)
    assert result.source.images == (2 if layout.get("other_image") else 1)


def test_clean_aperture_offsets_are_read_and_rounded_as_libheif_does() -> None:
    data = fixtures.set_heif_transform(fixtures.encode_avif(fixtures.gradient((96, 64))), crop=(80, 48, 4, -6))
    item = read_source(data).item
    assert item is not None and item.crop_box() == (12, 2, 92, 50)
    odd = fixtures.set_heif_transform(fixtures.encode_avif(fixtures.gradient((96, 64))), crop=(81, 47, 0, 0))
    item = read_source(odd).item
    assert item is not None and item.crop_box() == (7, 8, 88, 55)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clean_aperture_is_applied_on_every_backend(backend: str) -> None:
    require_backend(backend)
    picture = fixtures.gradient((96, 64))
    data = fixtures.set_heif_transform(fixtures.encode_avif(picture), 90, 1, crop=(80, 48, 4, -6))
    img = decode(heicconv.convert(data, "png", backend=backend)).convert("RGB")
    # The clean aperture (12, 2)-(92, 50) of the picture, turned 90 degrees anticlockwise, then mirrored left-right.
    want = picture.crop((12, 2, 92, 50)).transpose(Image.Transpose.ROTATE_90).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert img.size == want.size == (48, 80)
    assert _psnr(img, want) > 30


def _huge_grid() -> bytes:
    """A grid whose header declares 17000x17000 (289 MP) made of one small tile: a few hundred bytes."""
    tile = fixtures.encode_avif(fixtures.gradient((64, 64)))
    c = isobmff.parse(tile)
    item = c.copy_items(tile, c.primary_id)[0]
    descriptor = bytes([0, 0, 0, 0]) + struct.pack(">HH", 17000, 17000)
    ispe = isobmff._full_box(b"ispe", 0, 0, struct.pack(">II", 17000, 17000))
    grid = isobmff.NewItem(2, b"grid", descriptor, [(ispe, False)], [1], hidden=False)
    return isobmff.write([grid, isobmff.NewItem(1, item.type, item.data, item.properties)], 2)


@pytest.mark.parametrize("form", ["ispe", "grid"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_289_megapixel_avif_is_refused_by_the_limits_before_any_decoder(
    backend: str, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_backend(backend)
    small = fixtures.encode_avif(fixtures.gradient((64, 48)))
    data = fixtures.set_ispe(small, 17000, 17000) if form == "ispe" else _huge_grid()
    assert len(data) < 2000

    def must_not_decode(self: object, job: object) -> None:
        raise AssertionError("a decoder was asked to decode a 289 MP AVIF")

    monkeypatch.setattr(PipelineBackend, "load", must_not_decode)
    # Under heicconv's default max_pixels (300 MP), and refused even when the caller raises that: libavif's own
    # limit (16384x16384) is applied to AVIF on every backend, so they all refuse it the same way.
    for limits in (heicconv.Limits(), heicconv.Limits(max_pixels=10**9)):
        with pytest.raises(heicconv.LimitExceededError, match=r"17000x17000 = 289,000,000 pixels, over libavif"):
            heicconv.convert(data, "jpeg", backend=backend, limits=limits)


def test_av1_layers_are_read_and_cut_to_the_selected_one() -> None:
    data = fixtures.make_layered_avif(fixtures.gradient((128, 96)))
    c = isobmff.parse(data)
    item = c.items[c.primary_id]
    assert (item.width, item.height, item.operating_point, item.layer) == (64, 48, 0, 0)
    coded = c.item_data(item, data)
    sequence = bitstream.av1_sequence(coded)
    # Operating point 0 decodes spatial layers 0 and 1, operating point 1 layer 0 (idc bits 8-11; bit 0: temporal 0).
    assert sequence is not None and sequence.layered and sequence.operating_points == (0x301, 0x101)
    assert sequence.max_size == (128, 96)
    frames = [spatial for kind, spatial, *_ in bitstream._obus(coded) if kind == 6]
    assert frames == [0, 1]
    for point, layer in ((0, 0), (1, None)):
        cut = bitstream.av1_select_layer(coded, point, layer)
        assert [spatial for kind, spatial, *_ in bitstream._obus(cut) if kind == 6] == [0]
    assert bitstream.av1_select_layer(coded, 0, None) == coded
    with pytest.raises(ValueError, match="operating point 2 of 2"):
        bitstream.av1_select_layer(coded, 2, None)
    with pytest.raises(ValueError, match="layer 1 is not in operating point 1"):
        bitstream.av1_select_layer(coded, 1, 1)
    # What a decoder is handed: the first layer only, without the properties that select it.
    extracted = c.extract(data, item.id)
    handed = isobmff.parse(extracted)
    kinds = {extracted[start + 4 : start + 8] for start, _ in handed.property_spans}
    assert not kinds & {b"a1op", b"lsel", b"a1lx"} and b"ispe" in kinds
    assert handed.item_data(handed.items[item.id], extracted) == bitstream.av1_select_layer(coded, 0, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_layer_of_a_layered_avif_is_the_image_its_header_declares(backend: str) -> None:
    require_backend(backend)
    picture = fixtures.gradient((128, 96))
    data = fixtures.make_layered_avif(picture, select="both")
    assert heicconv.probe(data).image_sizes == ((128, 96), (64, 48))
    for index, size in ((0, (128, 96)), (1, (64, 48))):
        img = decode(heicconv.convert(data, "png", heicconv.Options(image_index=index), backend=backend))
        assert img.size == size
        assert _psnr(img.convert("RGB"), picture.resize(size, Image.Resampling.LANCZOS)) > 25
