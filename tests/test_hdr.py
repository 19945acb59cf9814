"""HDR gain maps (issue 14): read from HEIF, carried into Ultra HDR JPEG on every backend, reported elsewhere.

The output is parsed here on its own terms (JPEG segments, MPF index, XMP attributes, ISO 21496-1 fields),
not with heicconv's writer; ``nox -s hdr`` checks the same files with libultrahdr.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import heicconv
from heicconv.testing import fixtures

BACKENDS = ("pillow", "vips", "wand")
PUG_HEADROOM = 2**1.8  # pug.heic: MakerNote tag 33 = 22307/25388 (< 1), no tag 48 -> 1.8 stops
ISO_NS = b"urn:iso:std:iso:ts:21496:-1\0"
XMP_NS = b"http://ns.adobe.com/xap/1.0/\0"


def _backend(name: str) -> str:
    try:
        heicconv.select(name)
    except heicconv.BackendUnavailableError as exc:
        pytest.skip(f"{name}: {exc}")
    return name


def _app_segments(jpeg: bytes) -> list[tuple[int, bytes]]:
    assert jpeg[:2] == b"\xff\xd8"
    pos, out = 2, []
    while jpeg[pos + 1] != 0xDA:
        marker, length = jpeg[pos + 1], struct.unpack_from(">H", jpeg, pos + 2)[0]
        out.append((marker, jpeg[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    return out


def _attrs(xmp: bytes, prefix: str) -> dict[str, str]:
    return dict(re.findall(rf'{prefix}:(\w+)="([^"]*)"', xmp.decode()))


def _ultra_hdr(jpeg: bytes) -> dict[str, object]:
    """What an Ultra HDR reader finds: the MPF entries, the gain map JPEG, the XMP and ISO metadata of both."""
    segs = _app_segments(jpeg)
    (mpf,) = [p for m, p in segs if m == 0xE2 and p.startswith(b"MPF\0")]
    mpf_at = jpeg.index(b"MPF\0") + 4  # offsets count from the MPF header's byte-order mark
    tiff = mpf[4:]
    assert tiff[:4] == b"MM\0*"
    ifd = struct.unpack_from(">I", tiff, 4)[0]
    tags = {}
    for i in range(struct.unpack_from(">H", tiff, ifd)[0]):
        tag, _type, count, value = struct.unpack_from(">HHII", tiff, ifd + 2 + 12 * i)
        tags[tag] = (count, value)
    assert tags[0xB001][1] == 2  # two images
    entries = [struct.unpack_from(">IIIHH", tiff, tags[0xB002][1] + 16 * n) for n in range(2)]
    (primary_attr, primary_size, primary_offset, *_), (_, map_size, map_offset, *_) = entries
    assert primary_attr == 0x030000 and primary_offset == 0
    gain_map = jpeg[mpf_at + map_offset : mpf_at + map_offset + map_size]
    assert mpf_at + map_offset == primary_size and gain_map[:2] == b"\xff\xd8" and gain_map[-2:] == b"\xff\xd9"
    primary_xmp = next(p[len(XMP_NS) :] for m, p in segs if m == 0xE1 and p.startswith(XMP_NS))
    map_segs = _app_segments(gain_map)
    map_xmp = next(p[len(XMP_NS) :] for m, p in map_segs if m == 0xE1 and p.startswith(XMP_NS))
    iso = next(p[len(ISO_NS) :] for m, p in map_segs if m == 0xE2 and p.startswith(ISO_NS))
    assert any(m == 0xE2 and p == ISO_NS + b"\0\0\0\0" for m, p in segs)  # the primary's ISO version segment
    # ISO 21496-1: versions, flags, base and alternate headroom (log2, as fractions)
    _minv, _writer, flags = struct.unpack_from(">HHB", iso, 0)
    bn, bd, an, ad = struct.unpack_from(">IIII", iso, 5)
    return {
        "primary_size": primary_size,
        "gain_map": gain_map,
        "length": int(re.search(rb'Item:Semantic="GainMap"[^>]*Item:Length="(\d+)"', primary_xmp).group(1)),  # type: ignore[union-attr]
        "primary_xmp": primary_xmp,
        "hdrgm": _attrs(map_xmp, "hdrgm"),
        "iso_headroom": 2 ** (an / ad),
        "iso_base": bn / bd,
        "iso_flags": flags,
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_gain_map_becomes_ultra_hdr_jpeg_with_the_makernote_headroom(backend: str) -> None:
    # maker33 >= 1 and maker48 = 0.5: Apple's formula gives -0.303 * 0.5 + 2.303 stops.
    data = fixtures.make_hdr_heic((64, 48), exif=fixtures.apple_exif(1.01, 0.5))
    result = heicconv.convert_with_report(data, "jpeg", backend=_backend(backend))
    found = _ultra_hdr(result.data)
    headroom = 2 ** (-0.303 * 0.5 + 2.303)
    assert found["iso_headroom"] == pytest.approx(headroom, rel=1e-5)
    assert found["iso_base"] == 0 and found["iso_flags"] & 0x40  # SDR base, the map applies in its colour space
    hdrgm = found["hdrgm"]
    assert isinstance(hdrgm, dict)
    assert float(hdrgm["GainMapMax"]) == pytest.approx(math.log2(headroom), rel=1e-5)
    assert float(hdrgm["HDRCapacityMax"]) == pytest.approx(math.log2(headroom), rel=1e-5)
    assert hdrgm["BaseRenditionIsHDR"] == "False"
    assert b'hdrgm:Version="1.0"' in found["primary_xmp"]  # type: ignore[operator]
    assert found["length"] == len(found["gain_map"])  # type: ignore[arg-type]
    # Viewers without gain map support read the first JPEG: the same picture as with hdr="drop".
    plain = heicconv.convert(data, "jpeg", heicconv.Options(hdr="drop"), backend=backend)
    assert Image.open(io.BytesIO(result.data)).tobytes() == Image.open(io.BytesIO(plain)).tobytes()
    assert any("gain map 32x24, headroom 4.44" in n and "kept: Ultra HDR JPEG" in n for n in result.notes)
    assert result.dropped == ()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gain_map_follows_the_photo_rotation_and_resize(backend: str) -> None:
    # The map is bright on its left half; the photo is turned 90 anticlockwise (irot on the photo only),
    # so upright, the bright half is at the bottom. Resized to half, the map halves too.
    data = fixtures.make_hdr_heic((64, 48), rotation=90)
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(max_size=32), backend=_backend(backend))
    assert (result.width, result.height) == (24, 32)
    gain = Image.open(io.BytesIO(_ultra_hdr(result.data)["gain_map"]))  # type: ignore[arg-type]
    assert gain.mode == "L" and gain.size == (12, 16)
    top, bottom = gain.crop((0, 0, 12, 6)), gain.crop((0, 10, 12, 16))
    assert bottom.getextrema()[0] > 150 and top.getextrema()[1] < 60


def test_every_backend_carries_the_same_gain_map() -> None:
    data = fixtures.make_hdr_heic((64, 48))
    maps = {name: _ultra_hdr(heicconv.convert(data, "jpeg", backend=_backend(name)))["gain_map"] for name in BACKENDS}
    assert len(set(maps.values())) == 1  # decoded by pillow-heif and coded by Pillow, whatever the backend


def test_apple_linear_gain_is_written_as_iso_log_gain() -> None:
    # A mid-grey Apple sample g (code 128) boosts by 1 + (H - 1) * rec709_inverse(g); the ISO code must give
    # the same boost as 2 ** (code / 255 * log2(H)).
    data = fixtures.make_hdr_heic((64, 48), gain_map=Image.new("L", (32, 24), 128))
    gain = Image.open(io.BytesIO(_ultra_hdr(heicconv.convert(data, "jpeg"))["gain_map"]))  # type: ignore[arg-type]
    code = float(np.median(np.asarray(gain)))
    g = ((128 / 255 + 0.099) / 1.099) ** (1 / 0.45)
    expected = math.log2(1 + (PUG_HEADROOM - 1) * g) / math.log2(PUG_HEADROOM) * 255
    assert abs(code - expected) <= 2


def test_hdr_drop_writes_a_plain_jpeg_and_says_so() -> None:
    data = fixtures.make_hdr_heic((64, 48))
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(hdr="drop"))
    assert b"MPF\0" not in result.data and b"hdrgm" not in result.data
    assert any("not kept (hdr='drop')" in n for n in result.notes)
    assert result.sources["options.hdr"] == "the call's options"


def test_hdr_is_configured_like_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_HDR", "drop")
    heicconv.config.reset()
    try:
        result = heicconv.convert_with_report(fixtures.make_hdr_heic((64, 48)), "jpeg")
        assert b"MPF\0" not in result.data
        assert result.sources["options.hdr"] == "the environment (HEICCONV_HDR)"
        with pytest.raises(heicconv.ConfigError, match="hdr: must be one of keep, drop"):
            heicconv.Options(hdr="yes")  # type: ignore[arg-type]
    finally:
        heicconv.config.reset()


@pytest.mark.parametrize("fmt", ["png", "webp", "avif", "tiff", "heic"])
def test_other_formats_report_the_gain_map_dropped(fmt: str) -> None:
    result = heicconv.convert_with_report(fixtures.make_hdr_heic((64, 48)), fmt, backend="pillow")
    assert result.dropped == (f"the HDR gain map (heicconv writes it into JPEG only, not {fmt.upper()})",)


def test_unusable_gain_map_never_fails_the_conversion() -> None:
    # No Apple tags in the MakerNote: no headroom, so no HDR; the photo converts, the map is reported dropped.
    no_tags = fixtures.make_hdr_heic((64, 48), exif=fixtures.apple_exif(None, None))
    result = heicconv.convert_with_report(no_tags, "jpeg")
    assert b"MPF\0" not in result.data
    assert result.dropped == ("the HDR gain map (no headroom: the EXIF MakerNote has no Apple HDR tags)",)
    # An ISO 21496-1 'tmap' item with a zero denominator: unreadable metadata, same outcome.
    broken = fixtures.make_hdr_heic((64, 48), tmap=b"\0" * 62)
    result = heicconv.convert_with_report(broken, "jpeg")
    assert result.dropped and "ISO 21496-1 metadata cannot be read" in result.dropped[0]


def test_the_gain_map_is_decoded_into_zeroed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """libde265 leaves what it does not decode of a damaged map as its buffer was: zeroed, that is "no gain", never
    the pixels of a picture decoded before (another upload's, in a service). The map is decoded while glibc
    zeroes allocations, as the photo is (``backends._native.zeroed_allocations``)."""
    import pillow_heif

    from heicconv.backends import _native
    from heicconv.container import gainmap
    from heicconv.container.info import read_source
    from heicconv.pipeline import hdr

    if _native._mallopt() is None:
        pytest.skip("not glibc: nothing is zeroed")
    seen: list[int] = []
    decode = pillow_heif.HeifImage.to_pillow

    def recorded(self: object) -> object:
        seen.append(_native._zeroing_users)
        return decode(self)

    monkeypatch.setattr(pillow_heif.HeifImage, "to_pillow", recorded)
    source = read_source(fixtures.make_hdr_heic((64, 48)))
    gm = gainmap.find(source)
    assert gm is not None
    assert hdr.decode(source, gm).size == (32, 24)
    assert seen and all(users > 0 for users in seen), seen
    assert _native._zeroing_users == 0  # and no longer once it is decoded


def test_iso_tmap_metadata_wins_and_is_carried() -> None:
    # version 0, min/writer version 0, flags 0x40; headrooms 0 and 2.5 stops; gain 0..2.5, gamma 1, offsets 1/64.
    fields = [(0, 1), (5, 2), (0, 1), (5, 2), (1, 1), (1, 64), (1, 64)]
    tmap = b"\0" + struct.pack(">HHB", 0, 0, 0x40) + b"".join(struct.pack(">iI", n, d) for n, d in fields)
    data = fixtures.make_hdr_heic((64, 48), tmap=tmap)
    info = heicconv.probe(data)
    assert info.hdr_headroom == pytest.approx(2**2.5, rel=1e-4) and "ISO 21496-1 'tmap' item" in info.gain_map
    found = _ultra_hdr(heicconv.convert(data, "jpeg"))
    assert found["iso_headroom"] == pytest.approx(2**2.5)
    assert float(found["hdrgm"]["OffsetSDR"]) == pytest.approx(1 / 64)  # type: ignore[index]


def test_probe_and_info_report_the_gain_map(tmp_path: Path) -> None:
    data = fixtures.make_hdr_heic((64, 48))
    info = heicconv.probe(data)
    assert info.hdr_headroom == pytest.approx(PUG_HEADROOM, rel=1e-3)
    assert info.gain_map == "Apple HDR gain map 32x24, headroom 3.48 (Apple MakerNote tags 33 and 48)"
    assert heicconv.probe(fixtures.make_heic((64, 48))).gain_map == ""
    from heicconv.cli import main

    path = tmp_path / "hdr.heic"
    path.write_bytes(data)
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["info", str(path)]) == 0
    assert "HDR gain map" in out.getvalue() and "headroom 3.48" in out.getvalue()


@pytest.mark.skipif(not os.environ.get("HEICCONV_CORPUS"), reason="HEICCONV_CORPUS is not set")
@pytest.mark.parametrize("backend", BACKENDS)
def test_pug_becomes_ultra_hdr_with_its_makernote_headroom(backend: str) -> None:
    data = (Path(os.environ["HEICCONV_CORPUS"]) / "real" / "pug.heic").read_bytes()
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(max_size=1024), backend=_backend(backend))
    found = _ultra_hdr(result.data)
    assert found["iso_headroom"] == pytest.approx(PUG_HEADROOM, rel=1e-5)
    assert float(found["hdrgm"]["HDRCapacityMax"]) == pytest.approx(1.8, rel=1e-5)  # type: ignore[index]
    assert Image.open(io.BytesIO(found["gain_map"])).size == (512, 384)  # type: ignore[arg-type]
    assert Image.open(io.BytesIO(result.data)).size == (1024, 768)


@pytest.mark.parametrize("backend", [*BACKENDS, "ffmpeg"])
def test_the_gain_map_made_while_the_backend_runs_is_the_one_made_after(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a thread budget of two, the map is decoded, turned, resized and encoded in a thread of its own while
    the backend converts the photo; with one, after it. The Ultra HDR JPEG is the same, byte for byte."""
    import threading

    from heicconv.backends import threads
    from heicconv.pipeline import hdr

    _backend(backend)
    data = fixtures.make_hdr_heic((64, 48), rotation=90)
    made_in: list[str] = []
    make = hdr._map_jpeg

    def recorded(*args: object) -> bytes:
        made_in.append(threading.current_thread().name)
        return make(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(hdr, "_map_jpeg", recorded)
    outputs = {}
    for budget in (1, 2):
        monkeypatch.setattr(threads, "threads", lambda budget=budget: budget)
        for box in (None, 32):
            outputs[budget, box] = heicconv.convert(data, "jpeg", heicconv.Options(max_size=box), backend=backend)
    assert outputs[1, None] == outputs[2, None] and outputs[1, 32] == outputs[2, 32]
    assert _ultra_hdr(outputs[2, 32])["length"]  # an Ultra HDR JPEG, its map resized with the photo
    assert [name.startswith("heicconv-gain-map") for name in made_in] == [False, False, True, True]


def test_a_failed_conversion_returns_only_once_the_gain_map_thread_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    from heicconv.backends import threads
    from heicconv.backends.pillow import PillowBackend
    from heicconv.pipeline import hdr

    monkeypatch.setattr(threads, "threads", lambda: 2)
    done = threading.Event()

    def slow(*args: object) -> bytes:
        time.sleep(0.3)
        done.set()
        return b""

    def failing(self: object, job: object) -> None:
        raise heicconv.DecodeError("the backend failed")

    monkeypatch.setattr(hdr, "_map_jpeg", slow)
    monkeypatch.setattr(PillowBackend, "run", failing)
    with pytest.raises(heicconv.DecodeError, match="the backend failed"):
        heicconv.convert(fixtures.make_hdr_heic((64, 48)), "jpeg", backend="pillow")
    assert done.is_set()


def test_a_map_made_for_another_size_than_the_backend_wrote_is_made_again() -> None:
    from concurrent.futures import Future

    from heicconv.container.info import read_source
    from heicconv.pipeline import hdr

    data = fixtures.make_hdr_heic((64, 48))
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(hdr="drop"))
    made: Future[bytes] = Future()
    made.set_result(b"not a JPEG")
    early = hdr.Early((32, 24), made)  # planned at another size than the 64x48 the backend wrote
    kept = hdr.attach(read_source(data), result, heicconv.Options(), early=early)
    gain = Image.open(io.BytesIO(_ultra_hdr(kept.data)["gain_map"]))  # type: ignore[arg-type]
    assert gain.size == (32, 24) and kept.dropped == ()
