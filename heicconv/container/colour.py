"""Colour profiles heicconv itself provides: sRGB, and ICC profiles made from nclx (CICP) colour signals.

Many Android and camera HEIFs describe their colour with an ``nclx`` box (primaries, transfer
function, matrix) instead of an ICC profile. Libraries differ on what they do with it; heicconv
turns it into an ICC profile once, so every backend keeps or converts the same colours.

>>> profile = profile_from_nclx(12, 13)  # Display P3 primaries, sRGB transfer
>>> profile[36:40], profile[12:16]
(b'acsp', b'mntr')
>>> profile_from_nclx(1, 13) is None  # sRGB needs no profile
True
"""

from __future__ import annotations

import struct
from functools import cache

__all__ = ["describe_nclx", "luminance_weights", "profile_from_nclx", "srgb_profile"]

# CICP colour primaries (ITU-T H.273): red, green, blue and white chromaticities.
_D65 = (0.3127, 0.3290)
_PRIMARIES: dict[
    int, tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float], str]
] = {
    1: ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060), _D65, "BT.709/sRGB"),
    4: ((0.67, 0.33), (0.21, 0.71), (0.14, 0.08), (0.310, 0.316), "BT.470 M"),
    5: ((0.640, 0.330), (0.290, 0.600), (0.150, 0.060), _D65, "BT.601 625"),
    6: ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070), _D65, "BT.601 525"),
    7: ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070), _D65, "SMPTE 240M"),
    9: ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), _D65, "BT.2020"),
    11: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.314, 0.351), "DCI-P3"),
    12: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), _D65, "Display P3"),
}
_SRGB_LIKE_TRANSFER = {1, 2, 6, 13, 14, 15}  # BT.709/601/2020 SDR curves and sRGB: displayed as sRGB's curve
_D50 = (0.9642, 1.0, 0.8249)
_BRADFORD = ((0.8951, 0.2664, -0.1614), (-0.7502, 1.7135, 0.0367), (0.0389, -0.0685, 1.0296))


def describe_nclx(primaries: int, transfer: int) -> str:
    name = _PRIMARIES.get(primaries, (None, None, None, None, f"primaries {primaries}"))[4]
    return f"{name} (nclx {primaries}/{transfer})"


def luminance_weights(primaries: int) -> tuple[float, float, float]:
    """How much red, green and blue of these primaries (CICP) count in luminance (the Y row of RGB to XYZ).

    >>> [round(w, 4) for w in luminance_weights(9)]  # BT.2020, as BT.2100 gives them
    [0.2627, 0.678, 0.0593]
    """
    r, g, b, w, _ = _PRIMARIES.get(primaries, _PRIMARIES[1])
    cols = [_xyz(*r), _xyz(*g), _xyz(*b)]
    m = tuple(tuple(cols[j][i] for j in range(3)) for i in range(3))
    s = _mul(_inv(m), _xyz(*w))
    return (cols[0][1] * s[0], cols[1][1] * s[1], cols[2][1] * s[2])


def _xyz(x: float, y: float) -> tuple[float, float, float]:
    return (x / y, 1.0, (1 - x - y) / y)


def _mul(m: tuple[tuple[float, ...], ...], v: tuple[float, ...]) -> tuple[float, float, float]:
    a, b, c = (sum(m[i][j] * v[j] for j in range(3)) for i in range(3))
    return (a, b, c)


def _inv(m: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, float, float], ...]:
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    return (
        ((e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det),
        ((f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det),
        ((d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det),
    )


def _colorants(primaries: int) -> list[tuple[float, float, float]]:
    """Red, green and blue XYZ, chromatically adapted to D50 (Bradford), as ICC v2 wants them."""
    r, g, b, w, _ = _PRIMARIES[primaries]
    cols = [_xyz(*r), _xyz(*g), _xyz(*b)]
    m = tuple(tuple(cols[j][i] for j in range(3)) for i in range(3))
    s = _mul(_inv(m), _xyz(*w))
    rgb_to_xyz = tuple(tuple(m[i][j] * s[j] for j in range(3)) for i in range(3))
    src_lms, dst_lms = _mul(_BRADFORD, _xyz(*w)), _mul(_BRADFORD, _D50)
    scale = tuple(tuple((dst_lms[i] / src_lms[i]) if i == j else 0.0 for j in range(3)) for i in range(3))
    adapt = _matmul(_inv(_BRADFORD), _matmul(scale, _BRADFORD))
    full = _matmul(adapt, rgb_to_xyz)
    return [(full[0][k], full[1][k], full[2][k]) for k in range(3)]


def _matmul(a: tuple[tuple[float, ...], ...], b: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3))


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _srgb_curve() -> bytes:
    n = 1024
    values = []
    for i in range(n):
        c = i / (n - 1)
        lin = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        values.append(min(65535, round(lin * 65535)))
    return b"curv" + bytes(4) + struct.pack(">I", n) + struct.pack(f">{n}H", *values)


def _tag_desc(text: str) -> bytes:
    ascii_ = text.encode("ascii", "replace") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(4 + 4 + 2 + 1 + 67)


def _build(description: str, colorants: list[tuple[float, float, float]]) -> bytes:
    curve = _srgb_curve()
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _tag_desc(description)),
        (b"cprt", b"text" + bytes(4) + b"No copyright, made by heicconv\0"),
        (b"wtpt", b"XYZ " + bytes(4) + b"".join(_s15(v) for v in _D50)),
        (b"rXYZ", b"XYZ " + bytes(4) + b"".join(_s15(v) for v in colorants[0])),
        (b"gXYZ", b"XYZ " + bytes(4) + b"".join(_s15(v) for v in colorants[1])),
        (b"bXYZ", b"XYZ " + bytes(4) + b"".join(_s15(v) for v in colorants[2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs = [], []
    shared: dict[bytes, int] = {}
    for sig, data in tags:
        if data in shared:  # the three curves share one copy
            entries.append(struct.pack(">4sII", sig, shared[data], len(data)))
            continue
        shared[data] = offset
        entries.append(struct.pack(">4sII", sig, offset, len(data)))
        padded = data + bytes(-len(data) % 4)
        blobs.append(padded)
        offset += len(padded)
    body = struct.pack(">I", len(tags)) + b"".join(entries) + b"".join(blobs)
    size = 128 + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + bytes([2, 0x10, 0, 0])
        + b"mntr"
        + b"RGB "
        + b"XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"APPL"
        + bytes(4)
        + bytes(4)
        + bytes(4)
        + bytes(8)
        + struct.pack(">I", 0)
        + b"".join(_s15(v) for v in _D50)
        + bytes(4)
        + bytes(16)
        + bytes(28)
    )
    assert len(header) == 128
    return header + body


@cache
def profile_from_nclx(primaries: int, transfer: int, tone_mapped: bool = False) -> bytes | None:
    """An ICC profile for an nclx colour signal, or None when the signal is sRGB (or unknown).

    HDR transfer functions (PQ, HLG) have no ICC v2 equivalent: the profile then uses the sRGB curve, which
    keeps the gamut right though not the tone; ``tone_mapped`` says heicconv has tone mapped the pixels to
    SDR with the sRGB curve (:mod:`heicconv.pipeline.tonemap`), which is then the right one.
    """
    if primaries in (1, 2) or primaries not in _PRIMARIES:
        return None
    name = _PRIMARIES[primaries][4]
    note = (
        ", tone mapped to SDR"
        if tone_mapped
        else ""
        if transfer in _SRGB_LIKE_TRANSFER
        else f", transfer {transfer} approximated"
    )
    return _build(f"{name} (from nclx by heicconv{note})", _colorants(primaries))


@cache
def srgb_profile() -> bytes:
    """The sRGB ICC profile every backend embeds after converting to sRGB (LittleCMS's built-in one, via Pillow)."""
    from PIL import ImageCms

    data = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    # LittleCMS stamps the creation time (header bytes 24-35): a fixed date makes the profile, and so every
    # output converted to sRGB, the same bytes in every process (a remote backend's and this one's).
    return data[:24] + _PROFILE_DATE + data[36:]


_PROFILE_DATE = bytes.fromhex("07d000010001000000000000")  # 2000-01-01 00:00:00
