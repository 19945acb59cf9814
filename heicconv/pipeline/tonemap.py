"""HDR to SDR by published formulas: PQ and HLG signals to display light, then ITU-R BT.2390's EETF.

A 10/12-bit HEIF whose nclx box signals PQ (transfer 16, SMPTE ST 2084) or HLG (transfer 18, ARIB
STD-B67) holds *display light* up to thousands of cd/m², not an SDR picture. heicconv renders it for
an SDR screen in three steps, the same for every backend (:mod:`heicconv.pipeline.hdr` runs them):

1. **To display light.** PQ: the ST 2084 EOTF (ITU-R BT.2100, Table 4). HLG: BT.2100's inverse OETF,
   then its OOTF for a 1,000 cd/m² display (``Lw = 1000``, ``gamma = 1.2``, applied to the scene
   luminance ``Ys`` so hues are kept; BT.2100, Table 5).
2. **Highlights compressed.** ITU-R BT.2390's EETF (the Hermite spline of its section 5.4, in the PQ
   domain, per colour component) from a source peak of 1,000 cd/m² (the mastering peak BT.2408
   assumes; brighter content clips in the SDR picture) to 203 cd/m². Below its knee (88 cd/m²)
   it changes nothing.
3. **SDR white is HDR reference white.** ITU-R BT.2408 puts diffuse white at 203 cd/m² (75 % HLG,
   58 % PQ); it becomes SDR 1.0, and the result is coded with the sRGB curve, the curve of the ICC
   profile heicconv makes from the nclx signal (:func:`heicconv.container.colour.profile_from_nclx`).

So PQ reference white (203 cd/m²) comes out at 159 cd/m² (sRGB code 229 of 255), a 1,000 cd/m²
highlight at SDR white, and everything below the knee (88 cd/m²: mid-grey, skin) unchanged.

Everything here is a function of one sample, so it is applied with lookup tables (Pillow's ``point``),
without numpy.

>>> round(pq_eotf(pq_inverse_eotf(203.0)), 3)
203.0
>>> round(eetf(203.0), 1), round(eetf(1000.0), 1), round(eetf(50.0), 1)
(159.0, 203.0, 50.0)
>>> round(hlg_display(0.75))  # HLG reference white on a 1,000 cd/m² display
203
"""

from __future__ import annotations

import math
from functools import cache

__all__ = [
    "HLG",
    "HLG_PEAK",
    "PQ",
    "PQ_CONSTANTS",
    "REFERENCE_WHITE",
    "SOURCE_PEAK",
    "eetf",
    "hlg_display",
    "hlg_inverse_oetf",
    "pq_eotf",
    "pq_inverse_eotf",
    "sdr_code",
    "srgb_oetf",
]

PQ, HLG = 16, 18  # nclx (ITU-T H.273) transfer characteristics
REFERENCE_WHITE = 203.0  # cd/m², ITU-R BT.2408: HDR diffuse white, shown as SDR white
SOURCE_PEAK = 1000.0  # cd/m², the mastering peak assumed for PQ (no mastering metadata is read)
HLG_PEAK = 1000.0  # cd/m², the nominal display peak of BT.2100's HLG OOTF
HLG_GAMMA = 1.2  # BT.2100 Table 5, for a 1,000 cd/m² display
NAMES = {PQ: "PQ (SMPTE ST 2084)", HLG: "HLG (ARIB STD-B67)"}
METHOD = "ITU-R BT.2390 EETF, 1000 to 203 cd/m², reference white 203 cd/m² (BT.2408)"

# SMPTE ST 2084 constants.
_M1 = 2610 / 16384
_M2 = 2523 / 4096 * 128
_C1 = 3424 / 4096
_C2 = 2413 / 4096 * 32
_C3 = 2392 / 4096 * 32
#: SMPTE ST 2084's m1, m2, c1, c2 and c3, for code that applies the EOTF to a whole picture.
PQ_CONSTANTS = (_M1, _M2, _C1, _C2, _C3)
# ARIB STD-B67 (BT.2100 HLG) constants.
_A = 0.17883277
_B = 1 - 4 * _A
_C = 0.5 - _A * math.log(4 * _A)


def pq_eotf(signal: float) -> float:
    """A PQ signal (0..1) as display light in cd/m² (SMPTE ST 2084)."""
    p = max(signal, 0.0) ** (1 / _M2)
    return float(10000.0 * (max(p - _C1, 0.0) / (_C2 - _C3 * p)) ** (1 / _M1))


def pq_inverse_eotf(nits: float) -> float:
    """Display light in cd/m² as a PQ signal (0..1)."""
    y = (max(nits, 0.0) / 10000.0) ** _M1
    return float(((_C1 + _C2 * y) / (1 + _C3 * y)) ** _M2)


def hlg_inverse_oetf(signal: float) -> float:
    """An HLG signal (0..1) as relative scene light (0..1), BT.2100 Table 5."""
    if signal <= 0.5:
        return signal * signal / 3
    return float((math.exp((signal - _C) / _A) + _B) / 12)


def hlg_display(signal: float) -> float:
    """An achromatic HLG signal as display light in cd/m² (its OOTF with ``Ys`` equal to the sample)."""
    return float(HLG_PEAK * hlg_inverse_oetf(signal) ** HLG_GAMMA)


def eetf(nits: float, source_peak: float = SOURCE_PEAK, target_peak: float = REFERENCE_WHITE) -> float:
    """BT.2390's EETF (section 5.4; black levels 0): display light in cd/m² compressed into ``target_peak``."""
    top = pq_inverse_eotf(source_peak)
    e1 = min(pq_inverse_eotf(nits) / top, 1.0)
    max_lum = pq_inverse_eotf(target_peak) / top
    ks = 1.5 * max_lum - 0.5
    if e1 >= ks:
        t = (e1 - ks) / (1 - ks)
        t2, t3 = t * t, t * t * t
        e1 = (2 * t3 - 3 * t2 + 1) * ks + (t3 - 2 * t2 + t) * (1 - ks) + (-2 * t3 + 3 * t2) * max_lum
    return pq_eotf(e1 * top)


def srgb_oetf(linear: float) -> float:
    """Relative linear light (0..1) coded with the sRGB curve (IEC 61966-2-1)."""
    v = min(max(linear, 0.0), 1.0)
    return 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055


def sdr_code(pq_signal: float) -> float:
    """The SDR sample (0..1, sRGB curve) for a PQ signal: steps 2 and 3 above."""
    return srgb_oetf(eetf(pq_eotf(pq_signal)) / REFERENCE_WHITE)


def _signal(v16: int, bit_depth: int) -> float:
    """A decoded sample (the code shifted to the top of 16 bits, as libheif gives it) as a signal 0..1."""
    shift = 16 - bit_depth
    return (v16 >> shift) / ((1 << bit_depth) - 1)


@cache
def pq_table(bit_depth: int) -> list[int]:
    """65,536 entries: a decoded PQ sample (top of 16 bits) -> its 8-bit SDR sample."""
    codes = [round(255 * sdr_code(code / ((1 << bit_depth) - 1))) for code in range(1 << bit_depth)]
    shift = 16 - bit_depth
    return [codes[v >> shift] for v in range(65536)]


@cache
def hlg_scene_tables(bit_depth: int) -> tuple[list[int], list[int]]:
    """A decoded HLG sample -> its scene light (BT.2100 inverse OETF) times 65,535, as high and low bytes."""
    scene = [round(65535 * hlg_inverse_oetf(code / ((1 << bit_depth) - 1))) for code in range(1 << bit_depth)]
    shift = 16 - bit_depth
    return [scene[v >> shift] >> 8 for v in range(65536)], [scene[v >> shift] & 255 for v in range(65536)]


#: HLG display light is indexed as ``(nits / HLG_PEAK) ** (1 / HLG_INDEX_GAMMA)`` on 16 bits.
HLG_INDEX_GAMMA = 2.4


@cache
def hlg_table() -> list[int]:
    """65,536 entries: HLG display light (indexed as :data:`HLG_INDEX_GAMMA` says) -> its 8-bit SDR sample."""
    return [
        round(255 * srgb_oetf(eetf(HLG_PEAK * (i / 65535) ** HLG_INDEX_GAMMA) / REFERENCE_WHITE)) for i in range(65536)
    ]


def log_table(max_ratio: float) -> list[int]:
    """65,536 entries: ``(ratio - 1) / (max_ratio - 1)`` on 16 bits -> an 8-bit gain map sample whose ISO
    21496-1 meaning (``min_log2 = 0``, ``max_log2 = log2(max_ratio)``, gamma 1) is that ratio."""
    top = math.log2(max_ratio)
    return [round(255 * math.log2(1 + (max_ratio - 1) * i / 65535) / top) for i in range(65536)]
