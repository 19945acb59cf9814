"""The metadata policy: which EXIF, XMP and ICC profile go into the output, and what was dropped."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..container import exif as exif_tools
from ..container import xmp as xmp_tools
from ..options import Options

__all__ = ["EXIF_LIMITS", "Kept", "icc_name", "keep"]

#: The most EXIF each output format can carry (JPEG: one APP1 segment).
EXIF_LIMITS = {"jpeg": exif_tools.JPEG_EXIF_MAX, "webp": 16 * 1024 * 1024}


@dataclass
class Kept:
    exif: bytes | None
    xmp: bytes | None


def keep(exif: bytes | None, xmp: bytes | None, fmt: str, options: Options, note: Callable[[str, str], None]) -> Kept:
    """The EXIF and XMP the output carries under ``options.metadata``: Orientation reset to 1 (the
    pixels are upright), location removed for ``strip-location``, EXIF trimmed to what ``fmt`` holds.
    ``note(kind, text)`` records what was done and what was dropped."""
    if fmt == "tiff":
        exif = None  # see docs/fidelity.md: no backend writes EXIF into TIFF
    if options.metadata == "strip":
        if exif or xmp:
            note("metadata", "EXIF and XMP stripped")
        return Kept(None, None)
    strip_location = options.metadata == "strip-location"
    if exif is not None:
        before = exif_tools.orientation(exif)
        exif = exif_tools.reset_orientation(exif)
        if before != 1:
            note("orientation", f"EXIF Orientation {before} -> 1 (the pixels are upright)")
        if strip_location:
            try:
                exif = exif_tools.strip_location(exif)
                note("metadata", "GPS location removed from EXIF")
            except Exception:  # unreadable EXIF: drop it rather than leak location
                exif = None
                note("dropped", "EXIF (unreadable, so its location could not be removed)")
        limit = EXIF_LIMITS.get(fmt)
        if limit is not None and exif is not None and len(exif) > limit:
            exif, lost = exif_tools.fit(exif, limit)
            for what in lost:
                note("dropped", what)
    if xmp is not None:
        try:
            xmp = xmp_tools.rewrite(xmp, strip_location=strip_location)
            if strip_location:
                note("metadata", "location removed from XMP")
        except xmp_tools.XmpError as exc:  # one that cannot be read cannot be made upright or location-free
            xmp = None
            note("dropped", f"XMP ({exc})")
    kept = [name for name, value in (("EXIF", exif), ("XMP", xmp)) if value]
    if kept:
        note("metadata", " and ".join(kept) + " kept")
    return Kept(exif, xmp)


def icc_name(icc: bytes) -> str:
    """The profile's description, for notes ("Display P3"); its size when it has none that reads."""
    try:
        count = struct.unpack_from(">I", icc, 128)[0]
        for i in range(min(count, 100)):
            sig, off, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
            if sig == b"desc":
                tag = icc[off : off + size]
                if tag[:4] == b"desc":
                    n = struct.unpack_from(">I", tag, 8)[0]
                    return tag[12 : 12 + n].rstrip(b"\0").decode("latin-1")
                if tag[:4] == b"mluc":
                    rec_len, rec_off = struct.unpack_from(">II", tag, 20)
                    return tag[rec_off : rec_off + rec_len].decode("utf-16-be")
    except Exception:  # a description is only for the notes
        pass
    return f"{len(icc):,} bytes"
