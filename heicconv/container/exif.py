"""Small, careful edits of EXIF blocks (bare TIFF bytes, without the ``Exif\\0\\0`` prefix)."""

from __future__ import annotations

import struct

__all__ = ["JPEG_EXIF_MAX", "fit", "reset_orientation", "strip_location"]

#: The largest TIFF payload a JPEG APP1 segment holds: 65,535 - 2 (length) - 6 ("Exif\0\0").
JPEG_EXIF_MAX = 65_527
_ORIENTATION = 0x0112
_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
_MAKER_NOTE = 0x927C


def _endian(tiff: bytes) -> str | None:
    if tiff[:4] == b"II*\x00":
        return "<"
    if tiff[:4] == b"MM\x00*":
        return ">"
    return None


def orientation(tiff: bytes) -> int:
    """The Orientation tag of IFD0, 1 when absent or unreadable."""
    found = _find_ifd0_tag(tiff, _ORIENTATION)
    if found is None:
        return 1
    e, pos = found
    value: int = struct.unpack_from(e + "H", tiff, pos + 8)[0]
    return value if 1 <= value <= 8 else 1


def _find_ifd0_tag(tiff: bytes, tag: int) -> tuple[str, int] | None:
    e = _endian(tiff)
    if e is None or len(tiff) < 8:
        return None
    ifd = struct.unpack_from(e + "I", tiff, 4)[0]
    if ifd + 2 > len(tiff):
        return None
    count = struct.unpack_from(e + "H", tiff, ifd)[0]
    for i in range(count):
        pos = ifd + 2 + 12 * i
        if pos + 12 > len(tiff):
            return None
        entry_tag, entry_type = struct.unpack_from(e + "HH", tiff, pos)
        if entry_tag == tag and entry_type == 3:  # SHORT, value stored inline
            return e, pos
    return None


def reset_orientation(tiff: bytes) -> bytes:
    """Set IFD0's Orientation to 1 in place (same length), so no viewer rotates the upright pixels again."""
    found = _find_ifd0_tag(tiff, _ORIENTATION)
    if found is None:
        return tiff
    e, pos = found
    out = bytearray(tiff)
    struct.pack_into(e + "H", out, pos + 8, 1)
    return bytes(out)


def _load(tiff: bytes):  # type: ignore[no-untyped-def]
    from PIL import Image

    exif = Image.Exif()
    exif.load(b"Exif\x00\x00" + tiff)
    for sub in (_EXIF_IFD, _GPS_IFD):
        if sub in exif:
            exif.get_ifd(sub)  # materialise sub-IFDs so they are written back
    return exif


def _dump(exif) -> bytes:  # type: ignore[no-untyped-def]
    raw: bytes = exif.tobytes()
    return raw[6:] if raw.startswith(b"Exif\x00\x00") else raw


def strip_location(tiff: bytes) -> bytes:
    """Remove the GPS IFD and keep every other tag."""
    exif = _load(tiff)
    if _GPS_IFD not in exif:
        return tiff
    del exif[_GPS_IFD]
    return _dump(exif)


def fit(tiff: bytes, limit: int) -> tuple[bytes | None, list[str]]:
    """Shrink an EXIF block to at most ``limit`` bytes, dropping the least useful parts first.

    Order: the embedded thumbnail (IFD1) and unreferenced data, the maker note,
    then any other tag over 1 KiB, largest first. Returns the block (``None`` if
    nothing fits) and what was dropped, in words.
    """
    if len(tiff) <= limit:
        return tiff, []
    dropped = []
    try:
        exif = _load(tiff)
        out = _dump(exif)
    except Exception:  # an EXIF block Pillow cannot rewrite cannot be trimmed
        return None, [f"EXIF ({len(tiff):,} bytes, unreadable, over the {limit:,}-byte limit)"]
    dropped.append(f"EXIF thumbnail and unreferenced data ({len(tiff) - len(out):,} bytes)")
    if len(out) > limit:
        exif_ifd = exif.get_ifd(_EXIF_IFD)
        if _MAKER_NOTE in exif_ifd:
            del exif_ifd[_MAKER_NOTE]
            dropped.append("EXIF MakerNote")
            out = _dump(exif)
    if len(out) > limit:
        big = sorted(
            (
                (len(v), ifd, tag)
                for ifd in (exif, exif.get_ifd(_EXIF_IFD))
                for tag, v in ifd.items()
                if isinstance(v, (bytes, str)) and len(v) > 1024
            ),
            key=lambda t: t[0],
            reverse=True,
        )
        for size, ifd, tag in big:
            del ifd[tag]
            dropped.append(f"EXIF tag 0x{tag:04X} ({size:,} bytes)")
            out = _dump(exif)
            if len(out) <= limit:
                break
    if len(out) > limit:
        return None, [f"all EXIF ({len(tiff):,} bytes; still {len(out):,} after trimming, limit {limit:,})"]
    return out, dropped
