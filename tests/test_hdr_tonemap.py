"""HDR sources without a gain map (issue 14, item 5): PQ and HLG tone mapped to SDR, with a gain map in JPEG.

The fixtures are gray stripes at known signal levels, so the expected SDR samples follow from the published
formulas by hand (worked out below, not by calling heicconv.pipeline.tonemap): what the old sRGB-curve rendering
gave is far outside each tolerance.
"""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image, ImageChops
from test_hdr import _ultra_hdr

import heicconv
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

BACKENDS = ("pillow", "vips", "wand", "ffmpeg")
PQ, HLG = 16, 18

# PQ signals (SMPTE ST 2084 inverse EOTF, 10-bit codes): 1000 cd/m² -> 0.7518 (769), 203 -> 0.5806 (594),
# 36.5 (18 % of 203) -> 0.4109 (420), 0 -> 0.
PQ_STRIPES = (769 / 1023, 594 / 1023, 420 / 1023, 0.0)
# BT.2390 EETF from 1000 to 203 cd/m² (knee at PQ 0.4948, 88 cd/m²): 1000 -> 203 (SDR 1.0, code 255);
# 203 -> 159.0 (T = 1/3 on the spline: PQ 0.5553), 0.7835 of SDR white, sRGB code 229; 36.5 is below the
# knee, so unchanged: 0.18 of SDR white, sRGB code 117. The sRGB curve alone gave 192, 148, 105 and 0.
PQ_SDR = (255, 229, 117, 0)
# HLG signals 1.0, 0.75, 0.5, 0: BT.2100 inverse OETF 1.0, 0.2649, 1/12, 0; OOTF on a 1000 cd/m² display
# (gray, so Ys = E): 1000, 203, 50.7 cd/m², 0; the same EETF: 203, 159, 50.7 (below the knee), 0;
# SDR codes 255, 229, 137, 0 (the sRGB curve alone gave 255, 191, 128, 0).
HLG_STRIPES = (1.0, 0.75, 0.5, 0.0)
HLG_SDR = (255, 229, 137, 0)
STRIPES = {PQ: (PQ_STRIPES, PQ_SDR), HLG: (HLG_STRIPES, HLG_SDR)}
# What each stripe is in HDR, relative to SDR white (203 cd/m²).
HDR_RELATIVE = {PQ: (1000 / 203, 1.0, 0.18, 0.0), HLG: (1000 / 203, 1.0, 50.7 / 203, 0.0)}


def _stripe_values(data: bytes, n: int = 4) -> list[float]:
    """The median luma of the centre of each of ``n`` vertical stripes of a decoded picture."""
    img = Image.open(io.BytesIO(data)).convert("L")
    w, h = img.size
    out = []
    for i in range(n):
        x0, x1 = i * w // n + w // (4 * n), (i + 1) * w // n - w // (4 * n)
        values = sorted(img.crop((x0, h // 4, x1, 3 * h // 4)).tobytes())
        out.append(float(values[len(values) // 2]))
    return out


def _srgb_linear(code: float) -> float:
    v = code / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transfer", [PQ, HLG], ids=["PQ", "HLG"])
def test_sdr_tone_follows_bt2390_on_every_backend(backend: str, transfer: int) -> None:
    require_backend(backend)
    signals, expected = STRIPES[transfer]
    data = fixtures.make_hdr_signal_heic(transfer, signals)
    for fmt in ("png", "jpeg"):
        result = heicconv.convert_with_report(data, fmt, heicconv.Options(quality=95, hdr="drop"), backend=backend)
        got = _stripe_values(result.data)
        # 10-bit signal codes move the result by under 1 code; JPEG at quality 95 by 1 more.
        assert got == pytest.approx(expected, abs=2 if fmt == "jpeg" else 1), (fmt, got)
    name = "PQ (SMPTE ST 2084)" if transfer == PQ else "HLG (ARIB STD-B67)"
    assert any(
        n.kind == "colour" and n.startswith(f"{name} HDR tone mapped to SDR") and "ITU-R BT.2390 EETF" in n
        for n in result.notes
    )
    assert result.source.format == "heic" and result.source.bit_depth == 10  # the report is about the HEIC


@pytest.mark.parametrize("transfer", [PQ, HLG], ids=["PQ", "HLG"])
def test_every_backend_writes_the_same_pixels(transfer: int) -> None:
    # heicconv renders the SDR picture once, so a lossless output is the same bytes of pixels everywhere;
    # resized, the backends' own Lanczos filters differ by 1 at most, as for any other source.
    data = fixtures.make_hdr_signal_heic(transfer, STRIPES[transfer][0], size=(64, 40), bit_depth=12)
    for box in (None, 48):
        pictures = {}
        for backend in BACKENDS:
            require_backend(backend)
            png = heicconv.convert(data, "png", heicconv.Options(max_size=box), backend=backend)
            pictures[backend] = Image.open(io.BytesIO(png)).convert("RGB")
        reference = pictures["pillow"]
        for backend, picture in pictures.items():
            diff = ImageChops.difference(picture, reference).getextrema()
            assert max(hi for _lo, hi in diff) <= (0 if box is None else 1), (backend, box)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transfer", [PQ, HLG], ids=["PQ", "HLG"])
def test_jpeg_keeps_hdr_as_a_computed_gain_map(backend: str, transfer: int) -> None:
    require_backend(backend)
    data = fixtures.make_hdr_signal_heic(transfer, STRIPES[transfer][0], size=(128, 32))
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(quality=95), backend=backend)
    found = _ultra_hdr(result.data)
    hdrgm = found["hdrgm"]
    assert isinstance(hdrgm, dict)
    lo, hi, gamma = float(hdrgm["GainMapMin"]), float(hdrgm["GainMapMax"]), float(hdrgm["Gamma"])
    off_sdr, off_hdr = float(hdrgm["OffsetSDR"]), float(hdrgm["OffsetHDR"])
    # The brightest stripe is 1000 cd/m²: 4.93 times SDR white, at SDR white in the SDR picture; with the
    # offsets of 1/64 the largest gain is (4.93 + 1/64) / (1 + 1/64) = 4.87.
    assert 2**hi == pytest.approx((1000 / 203 + 1 / 64) / (1 + 1 / 64), rel=0.03)
    assert found["iso_headroom"] == pytest.approx(2**hi, rel=1e-4) and found["iso_base"] == 0
    gain = _stripe_values(found["gain_map"])  # type: ignore[arg-type]
    sdr = _stripe_values(result.data)
    # The HDR picture an Ultra HDR reader makes, per stripe (ISO 21496-1 / Ultra HDR: gain in log2).
    hdr = [
        (_srgb_linear(s) + off_sdr) * 2 ** (lo + (hi - lo) * (g / 255) ** (1 / gamma)) - off_hdr
        for s, g in zip(sdr, gain, strict=True)
    ]
    assert hdr[0] > 4.0  # the highlight, brighter than SDR white (1.0)
    for got, want in zip(hdr, HDR_RELATIVE[transfer], strict=True):
        assert got == pytest.approx(want, rel=0.06, abs=0.01), hdr
    assert found["length"] == len(found["gain_map"])  # type: ignore[arg-type]
    assert any(n.kind == "hdr" and "gain map 32x8 computed (headroom 4.8" in n for n in result.notes), result.notes
    # Viewers without gain map support see the same SDR picture as with hdr="drop".
    plain = heicconv.convert(data, "jpeg", heicconv.Options(quality=95, hdr="drop"), backend=backend)
    assert Image.open(io.BytesIO(result.data)).tobytes() == Image.open(io.BytesIO(plain)).tobytes()


def test_hdr_drop_writes_no_gain_map_and_says_so() -> None:
    data = fixtures.make_hdr_signal_heic(PQ, PQ_STRIPES)
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(hdr="drop"))
    assert b"MPF\0" not in result.data and b"hdrgm" not in result.data
    assert any(n.kind == "hdr" and "PQ (SMPTE ST 2084) source not kept (hdr='drop')" in n for n in result.notes)
    assert result.dropped == ()


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff", "avif", "heic"])
def test_other_formats_report_the_hdr_rendition_dropped(fmt: str) -> None:
    result = heicconv.convert_with_report(fixtures.make_hdr_signal_heic(HLG, HLG_STRIPES), fmt, backend="pillow")
    assert result.dropped == (
        f"the HDR rendition of the HLG (ARIB STD-B67) source (heicconv writes a gain map into JPEG only, not "
        f"{fmt.upper()})",
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_computed_gain_map_follows_rotation_and_resize(backend: str) -> None:
    require_backend(backend)
    # irot 90 (anticlockwise): the left stripe (1000 cd/m²) ends up at the bottom; max_size halves everything.
    data = fixtures.make_hdr_signal_heic(PQ, PQ_STRIPES, size=(128, 64), rotation=90)
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(max_size=64), backend=backend)
    assert (result.width, result.height) == (32, 64)
    gain = Image.open(io.BytesIO(_ultra_hdr(result.data)["gain_map"])).convert("L")  # type: ignore[arg-type]
    assert gain.size == (8, 16)
    bottom, top = gain.crop((2, 13, 6, 16)), gain.crop((2, 0, 6, 7))
    assert bottom.getextrema()[0] > 200 and top.getextrema()[1] < 40
    photo = Image.open(io.BytesIO(result.data)).convert("L")
    assert photo.getpixel((16, 60)) > 245 and photo.getpixel((16, 4)) < 10


def test_a_picture_without_highlights_gets_no_gain_map() -> None:
    # Nothing above the EETF's knee (88 cd/m²): the SDR picture is the HDR one, so there is nothing to keep.
    result = heicconv.convert_with_report(fixtures.make_hdr_signal_heic(PQ, (420 / 1023, 0.2)), "jpeg")
    assert b"MPF\0" not in result.data
    assert any(n.kind == "hdr" and "needs no gain map: no pixel is brighter" in n for n in result.notes)


def test_sdr_and_8_bit_sources_are_not_tone_mapped() -> None:
    for data in (
        fixtures.make_heic((64, 48), bit_depth=10, nclx=(9, 1, 9, True)),  # 10-bit SDR (BT.709 curve)
        fixtures.make_heic((64, 48), bit_depth=8, nclx=(9, 16, 9, True)),  # PQ signalled, but 8-bit
    ):
        result = heicconv.convert_with_report(data, "jpeg")
        assert not any("tone mapped" in n for n in result.notes)
        assert b"MPF\0" not in result.data


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_broken_hdr_picture_is_the_same_error_on_every_backend(backend: str) -> None:
    require_backend(backend)
    data = bytearray(fixtures.make_hdr_signal_heic(PQ, PQ_STRIPES))
    hvcc = data.index(b"hvcC")
    data[hvcc + 30 : hvcc + 60] = bytes(30)  # the decoder configuration (VPS/SPS) destroyed
    with pytest.raises(heicconv.DecodeError, match="could not decode the HDR heic image"):
        heicconv.convert(bytes(data), "jpeg", backend=backend)


def test_formulas_at_points_the_standards_give() -> None:
    from heicconv.pipeline import tonemap

    assert tonemap.pq_inverse_eotf(100) == pytest.approx(0.5081, abs=1e-4)  # BT.2408: 100 cd/m² is PQ 51 %
    assert tonemap.pq_inverse_eotf(10000) == pytest.approx(1.0)
    assert tonemap.hlg_inverse_oetf(0.5) == pytest.approx(1 / 12)
    assert tonemap.hlg_display(0.75) == pytest.approx(203, abs=0.5)  # BT.2408: HLG 75 % is 203 cd/m²
    assert tonemap.eetf(50) == pytest.approx(50) and tonemap.eetf(1000) == pytest.approx(203)
    assert tonemap.eetf(203) == pytest.approx(159.0, abs=0.1)
    assert math.isclose(tonemap.eetf(5000), 203)  # above the assumed mastering peak: clipped
