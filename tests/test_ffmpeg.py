"""The ffmpeg backend's own route (HEIC -> JPEG through FFmpeg's decoder): same picture, same errors.

The shared suites (conformance, equivalence, geometry, corpus, integrity, fuzz) run it like every backend;
these tests check what only this route does: grid assembly, orientation of the planes, limited range,
strips joined with restart markers, and the hand-over to pillow-heif.
"""

from __future__ import annotations

import io
import random
import struct
from typing import Any

import numpy as np
import pytest

import heicconv
from heicconv.backends import threads
from heicconv.container import bitstream, isobmff
from heicconv.testing import damage, fixtures
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
    heic = heicconv.convert_with_report(fixtures.make_heic(), "heic", backend="ffmpeg")
    assert _route(heic) == (
        "decoded by pillow-heif (libheif), not FFmpeg: "
        "heic output (the FFmpeg route writes AVIF, JPEG, PNG, TIFF, WEBP)"
    )


@pytest.mark.parametrize(("rotation", "mirror"), [(0, None), (180, None), (0, 0), (90, None), (270, None), (90, 1)])
def test_strips_joined_with_restart_markers_decode_to_the_whole_picture(
    ffmpeg: Any, rotation: int, mirror: int | None
) -> None:
    data = fixtures.set_heif_transform(_distinct_grid(200, 300), rotation, mirror)
    options = heicconv.Options(quality=95)
    ffmpeg.strip_pixels = 1 << 62
    try:
        whole = heicconv.convert_with_report(data, "jpeg", options, backend="ffmpeg")
    finally:
        ffmpeg.strip_pixels = type(ffmpeg)().strip_pixels
    assert "encoded whole" in _route(whole)
    result = heicconv.convert_with_report(data, "jpeg", options, backend="ffmpeg")  # strips: the default
    strips = 4 if rotation in (90, 270) else 5  # bands of tiles: columns when the picture is turned
    assert f"encoded in {strips} strips of 64 rows joined with restart markers" in _route(result)
    assert b"\xff\xdd\x00\x04" in result.data[: result.data.index(b"\xff\xda")]  # the restart interval
    assert np.array_equal(_pixels(result.data), _pixels(whole.data))  # the same blocks, coded the same way
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
            with pytest.raises(heicconv.DecodeError, match=r"damaged: tile 2 of 2 (cannot be|is refused)"):
                heicconv.convert(bytes(data), "jpeg", backend="ffmpeg")
    finally:
        ffmpeg.threads = threads


def test_strips_encoded_beside_the_decoder_make_the_same_jpeg_as_one_thread(ffmpeg: Any) -> None:
    data = _distinct_grid(192, 320)  # five bands of 64 rows
    before = ffmpeg.threads
    try:
        ffmpeg.threads = 1  # no second core: each strip encoded in turn, on the decoding thread
        alone = heicconv.convert_with_report(data, "jpeg", backend="ffmpeg")
        ffmpeg.threads = 2  # strips encoded in a thread of their own while FFmpeg decodes the next bands
        beside = heicconv.convert_with_report(data, "jpeg", backend="ffmpeg")
    finally:
        ffmpeg.threads = before
    assert "encoded in 5 strips of 64 rows" in _route(beside)
    assert beside.data == alone.data


def test_a_damaged_tile_after_strips_were_sent_to_the_encoder_is_a_decode_error(ffmpeg: Any) -> None:
    data = bytearray(_distinct_grid(128, 320))  # 5 bands of 2 tiles: the last band's tile is damaged
    c = isobmff.parse(bytes(data))
    tile = c.items[c.items[c.primary_id].refs[b"dimg"][9]]
    start, length = tile.base_offset + tile.extents[0][0], tile.extents[0][1]
    data[start + 6 : start + length] = random.Random(5).randbytes(length - 6).replace(b"\x00", b"\x55")
    ffmpeg.threads, before = 2, ffmpeg.threads
    try:
        with pytest.raises(heicconv.DecodeError, match=r"damaged: tile 10 of 10 (cannot be|is refused)"):
            heicconv.convert(bytes(data), "jpeg", backend="ffmpeg")
    finally:
        ffmpeg.threads = before


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff", "avif"])
@pytest.mark.parametrize("box", [None, 40])
def test_every_output_is_decoded_by_ffmpeg_and_agrees_with_libheif(ffmpeg: Any, fmt: str, box: int | None) -> None:
    data = _distinct_grid(200, 136)
    options = heicconv.Options(quality=95, max_size=box)
    result = heicconv.convert_with_report(data, fmt, options, backend="ffmpeg")
    scaled = "resized (Lanczos) and " if box else ""
    assert _route(result) == (
        f"decoded by FFmpeg (12 tile(s), {ffmpeg.threads or threads.threads()} thread(s)); "
        f"{scaled}converted to RGB by FFmpeg's scaler, encoded by Pillow"
    )
    theirs = heicconv.convert(data, fmt, options, backend="pillow")
    assert _pixels(result.data).shape == _pixels(theirs).shape
    assert _psnr(_pixels(result.data), _pixels(theirs)) >= (40 if fmt in ("png", "tiff") and not box else 35)


@pytest.mark.parametrize(("quality", "chroma"), [(85, "4:2:0"), (95, "4:4:4")])
@pytest.mark.parametrize("box", [48, 100])
def test_a_resized_jpeg_is_resized_in_ycbcr_and_agrees_with_pillow(
    ffmpeg: Any, quality: int, chroma: str, box: int
) -> None:
    from PIL import Image

    data = fixtures.set_heif_transform(_distinct_grid(200, 136), 90, None)
    options = heicconv.Options(quality=quality, max_size=box)
    result = heicconv.convert_with_report(data, "jpeg", options, backend="ffmpeg")
    assert "resized by FFmpeg's scaler (Lanczos) in YCbCr" in _route(result)
    assert f"{chroma}, encoded whole" in _route(result)
    sampling = Image.open(io.BytesIO(result.data)).layer[0][1:3]  # Y's sampling factors: 2x2 over 4:2:0 chroma
    assert sampling == ((1, 1) if chroma == "4:4:4" else (2, 2))
    theirs = heicconv.convert(data, "jpeg", options, backend="pillow")
    assert _pixels(result.data).shape == _pixels(theirs).shape
    assert _psnr(_pixels(result.data), _pixels(theirs)) >= 35


def test_the_embedded_thumbnail_still_serves_small_sizes(ffmpeg: Any) -> None:
    data = fixtures.make_heic((640, 480), thumbnail=160, quality=90)
    result = heicconv.convert_with_report(
        data, "jpeg", heicconv.Options(max_size=100, use_thumbnail=True), backend="ffmpeg"
    )
    assert _route(result).endswith("the embedded thumbnail is decoded instead")


def _with_nal(data: bytes, nal: bytes, *, first: bool = False) -> bytes:
    """A one-image HEIC whose coded data ends the file, with ``nal`` added at the end of the image's data (at its
    start if ``first``)."""
    c = isobmff.parse(data)
    item = c.items[c.primary_id]
    (offset, length), base = item.extents[-1], item.base_offset
    assert base + offset + length == len(data) and data[base - 4 : base] == b"mdat"
    unit = struct.pack(">I", len(nal)) + nal
    at = base + offset if first else len(data)
    out = bytearray(data[:at] + unit + data[at:])
    field = bytes(out[:base]).index(struct.pack(">I", length))  # the extent's length in 'iloc' (the only match)
    struct.pack_into(">I", out, field, length + len(unit))
    struct.pack_into(">I", out, base - 8, struct.unpack_from(">I", out, base - 8)[0] + len(unit))
    return bytes(out)


def _parameter_sets(data: bytes) -> dict[int, bytes]:
    """The primary image's parameter sets (its 'hvcC'), by NAL unit type: 32 VPS, 33 SPS, 34 PPS."""
    from heicconv.backends import _de265

    c = isobmff.parse(data)
    hvcc = _de265.hvcc_of(c, c.items[c.primary_id], data)
    assert hvcc is not None
    return {(unit[0] >> 1) & 0x3F: unit for unit in bitstream.hvcc_units(hvcc)}


#: A suffix SEI message whose payload claims 200 bytes and has 3: FFmpeg refuses it when strict
#: (``err_detect=explode``) and skips it when concealing errors; libheif (libde265) skips it.
_SEI_CLAIMING_200_BYTES = bytes([0x50, 0x01, 0x05, 0xC8, 0x11, 0x22, 0x80])


def test_data_ffmpeg_refuses_but_that_decodes_to_one_picture_is_converted_by_libheif(ffmpeg: Any) -> None:
    # FFmpeg (strict) refuses the tile for its SEI message, libheif skips the message; the picture itself is whole,
    # and both decoders make the same one of it.
    data = _with_nal(fixtures.make_heic((128, 96), quality=90), _SEI_CLAIMING_200_BYTES)
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(quality=95), backend="ffmpeg")
    assert _route(result).startswith("decoded by pillow-heif (libheif), not FFmpeg: FFmpeg refused the data")
    assert _route(result).endswith("(tile(s) 1), and libheif decodes the same picture from them")
    assert _psnr(_pixels(result.data), _reference(data)) >= 40


def _unparsable_slice_header(photo: bytes) -> bytes:
    """``photo`` with its last tile's slice header naming picture parameter set 100 (HEVC allows 0 to 63)."""
    start, _ = damage.coded_tiles(photo)[-1]
    nal = start + 4  # the tile's first NAL unit (after its length): the slice of an IDR picture
    # After the 2-byte unit header: first_slice_segment_in_pic_flag 1, no_output_of_prior_pics_flag 0, then
    # slice_pic_parameter_set_id as ue(v), '1' for 0. Rewritten: 1, 0, then 0000001100101 (ue(v) of 100), then 1.
    assert (photo[nal] >> 1) & 0x3F in range(16, 22) and photo[nal + 2] >> 5 == 0b101
    return photo[: nal + 2] + bytes([0x80, 0xCB]) + photo[nal + 4 :]


@pytest.mark.parametrize("case", ["single", "grid"])
def test_a_tile_ffmpeg_cannot_parse_even_concealing_errors_is_a_decode_error(ffmpeg: Any, case: str) -> None:
    """A slice header naming a parameter set that cannot exist. FFmpeg conceals errors in a slice's data (and skips
    broken SEI messages and parameter sets), never in a slice header, which it returns as an error either way: the
    tile decoded again concealing errors gives no picture either, and the route refuses it without asking libheif
    ("cannot be parsed"). libde265 drops such a slice too, so libheif makes no picture of the single image."""
    photo = _distinct_grid(128, 64) if case == "grid" else fixtures.make_heic((128, 96), quality=90)
    bad = _unparsable_slice_header(photo)
    where = "tile 2 of 2" if case == "grid" else "the image"
    with pytest.raises(heicconv.DecodeError, match=rf"^the HEVC data is damaged: {where} cannot be parsed \(FFmpeg"):
        heicconv.convert(bad, "jpeg", backend="ffmpeg")
    if case == "single":  # the grid: see the next test
        require_backend("pillow")
        with pytest.raises(heicconv.DecodeError, match="did not give a decompressed image"):
            heicconv.convert(bad, "jpeg", backend="pillow")


@pytest.mark.parametrize("backend", ["pillow", "vips", "wand"])
def test_a_grid_with_a_tile_no_decoder_makes_a_picture_of_is_refused_on_every_backend(backend: str) -> None:
    """libheif 1.23 (pillow-heif's) decodes a grid leniently: a tile libde265 makes no picture of stays as the
    buffer was (zero YCbCr, RGB (0, 136, 0)), with only a warning. The damage check refuses a tile left wholly
    untouched as it refuses an untouched tail (``_damage.untouched``)."""
    require_backend(backend)
    bad = _unparsable_slice_header(_distinct_grid(128, 64))
    # libvips and ImageMagick get no picture from libheif: their own words. pillow-heif gets the blank tile.
    said = r"^the HEVC data is damaged: tile 2 of 2 is not decoded at all" if backend == "pillow" else None
    for fmt in ("jpeg", "png"):
        with pytest.raises(heicconv.DecodeError, match=said):
            heicconv.convert(bad, fmt, backend=backend)


def test_a_tile_ffmpeg_refuses_and_libheif_cannot_decode_is_a_decode_error(ffmpeg: Any) -> None:
    """A 128x96 image whose data carries, before its slice, the SPS of a 192x96 picture and its own PPS again, and
    after it an SEI message whose payload claims more bytes than it has. FFmpeg, strict, refuses the SEI message;
    concealing errors, it skips the message and decodes the slice under the new SPS: a 192x96 picture, so the
    route goes on to libheif. libde265 also decodes a 192x96 picture, and libheif refuses a decoded picture of
    another size than the item declares ('ispe'): both decoders refuse the image."""
    photo = fixtures.make_heic((128, 96), quality=90)
    # An SPS in the data replaces the 'hvcC' one (heicconv's own checks read only that one). FFmpeg then drops the
    # PPS that named it, and libde265 keeps a PPS tied to the SPS it was read with: the PPS follows the new SPS.
    wider = _parameter_sets(fixtures.make_heic((192, 96), quality=90))[33]
    own = _parameter_sets(photo)[34]
    bad = _with_nal(_with_nal(_with_nal(photo, own, first=True), wider, first=True), _SEI_CLAIMING_200_BYTES)
    said = "Decoded image does not have the size signaled in the file"
    with pytest.raises(
        heicconv.DecodeError,
        match=rf"^the HEVC data is damaged: the image is refused by FFmpeg \(FFmpeg refused .*\) and by libheif "
        rf"\(.*{said}\.\)$",
    ):
        heicconv.convert(bad, "jpeg", backend="ffmpeg")
    require_backend("pillow")
    with pytest.raises(heicconv.DecodeError, match=said):
        heicconv.convert(bad, "jpeg", backend="pillow")


def test_two_decoders_agree_on_a_whole_tile_and_not_on_another_picture(ffmpeg: Any) -> None:
    from heicconv.backends import _hevc
    from heicconv.container.info import read_source

    data = _distinct_grid(128, 64)
    src = read_source(data)
    assert src.container is not None and src.item is not None
    geo = _hevc.geometry(src.container, src.item, data)
    lenient = _hevc.decode_tile(geo, data, src.container, 1, strict=False)
    reference = _reference(data)[:, 64:128]  # libheif's picture of tile 2
    assert not _hevc.disagree(src.item, lenient, reference)
    assert _hevc.disagree(src.item, lenient, reference[::-1])  # another picture: the same tile upside down
    assert _hevc.disagree(src.item, lenient, reference[:32])  # another size


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_the_luma_kept_for_the_damage_check_is_the_coded_pictures_along_each_tile_edge(
    ffmpeg: Any, orientation: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route keeps only strips across the tile edges (``_damage.Seams``), gathered band by band, and bands are
    columns of tiles when the picture is turned a quarter: each strip must be the coded picture's own luma."""
    from heicconv.backends import _damage, _hevc

    data = _distinct_grid(200, 136, tile=64)  # 4 x 3 tiles, the last column and row cropped
    c = isobmff.parse(data)
    item = c.items[c.primary_id]
    geo = _hevc.geometry(c, item, data)
    kept: list[_damage.Seams] = []

    class Keeping(_damage.Seams):
        def __init__(self, grid: _damage.Layout) -> None:
            super().__init__(grid)
            kept.append(self)

    luma = np.vstack([s.y for s in _hevc.decode_strips(item, geo, data, c, 1)])  # upright is coded at 1
    monkeypatch.setattr(_damage, "Seams", Keeping)
    strips = list(_hevc.decode_strips(item, geo, data, c, 1, orientation))
    assert strips and len(kept) == 1
    grid = kept[0].grid
    assert len(grid.seams()) == (4 - 1) + (3 - 1)
    for (x0, y0, x1, y1), _, _ in grid.seams():
        assert np.array_equal(kept[0].fetch((x0, y0, x1, y1))[..., 0], luma[y0:y1, x0:x1]), (x0, y0)


def _tile_decoders(data: bytes, workers: int, ahead: int) -> tuple[Any, Any]:
    """``_hevc._Decoders`` over the primary grid of ``data``, tiles in row order."""
    from heicconv.backends import _hevc

    c = isobmff.parse(data)
    geo = _hevc.geometry(c, c.items[c.primary_id], data)
    params, size = _hevc.parameter_sets(geo.hvcc)

    def coded(n: int) -> bytes:
        return params + _hevc.to_annex_b(c.item_data(geo.tiles[n], data, len(data)), size)

    return _hevc._Decoders(coded, len(geo.tiles), workers, ahead), geo


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_tile_decoders_hand_out_each_tile_in_order_a_bounded_number_ahead(ffmpeg: Any, workers: int) -> None:
    """Several one-thread decoders, tile n to decoder n % workers: the caller gets every tile, in order, with the
    pixels one decoder alone gives, and no more than ``ahead`` tiles wait decoded while the caller is slow."""
    import time

    import numpy as np

    data = _distinct_grid(320, 192)  # 5 x 3 tiles
    decoders, geo = _tile_decoders(data, workers, ahead=2)
    alone, _ = _tile_decoders(data, 1, ahead=1)
    expected = [f.to_ndarray() for f in alone.frames()]
    waiting = []
    got = []
    for n, frame in enumerate(decoders.frames()):
        time.sleep(0.01)  # a slow caller: the decoders get ahead of it, as far as they may
        waiting.append(sum(s.done() for s in decoders.slots[n + 1 :]))
        got.append(frame)
    decoders.close()
    assert [f.pts for f in got] == list(range(len(geo.tiles)))
    assert all(np.array_equal(f.to_ndarray(), e) for f, e in zip(got, expected, strict=True))
    assert max(waiting) <= (2 if workers > 1 else 0)
    assert not any(t.is_alive() for t in decoders.threads)
    if workers > 1:  # nothing taken stays held in its slot (a 200 MP photo has 768 tiles)
        assert all(s.done() and s.result() is None for s in decoders.slots)


def test_a_tile_ffmpeg_refuses_reaches_the_caller_at_that_tile_and_the_decoders_stop(ffmpeg: Any) -> None:
    from heicconv.backends import _hevc

    bad = _unparsable_slice_header(_distinct_grid(320, 192))  # the last of 15 tiles
    decoders, geo = _tile_decoders(bad, 2, ahead=2)
    taken = []
    with pytest.raises(_hevc.Refused, match="FFmpeg refused the data"):
        for frame in decoders.frames():
            taken.append(frame.pts)
    decoders.close()
    assert taken == list(range(len(geo.tiles) - 1))
    # A caller that stops early (a tile found damaged): closing ends the decoders' threads.
    decoders, _ = _tile_decoders(_distinct_grid(320, 192), 2, ahead=1)
    next(iter(decoders.frames()))
    decoders.close()
    assert decoders.threads and not any(t.is_alive() for t in decoders.threads)
