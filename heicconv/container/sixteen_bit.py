"""16-bit PNG and TIFF writers, for the pillow backend (Pillow holds 16-bit images only as single bands).

An image is a list of ``I;16`` bands of one size: 1 (gray), 3 (RGB) or 4 (RGBA).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from .output_edits import png_chunk

__all__ = ["deinterleave", "interleave", "write_png16", "write_tiff16"]


def interleave(bands: list[Any], *, big_endian: bool) -> bytes:
    """The bands' samples, interleaved pixel by pixel, 16-bit big-endian (PNG) or little-endian (TIFF)."""
    n = len(bands)
    planes = [band.tobytes("raw", "I;16") for band in bands]  # little-endian: low byte first
    first, second = (1, 0) if big_endian else (0, 1)
    out = bytearray(len(planes[0]) * n)
    for c, plane in enumerate(planes):
        out[2 * c :: 2 * n] = plane[first::2]
        out[2 * c + 1 :: 2 * n] = plane[second::2]
    return bytes(out)


def deinterleave(raw: bytes, n: int) -> list[bytes]:
    """The inverse of ``interleave``: ``n`` planes of 16-bit samples from pixel-interleaved ``raw``, in its byte
    order (``I;16`` bands when ``raw`` is little-endian, as pillow-heif's 16-bit data is)."""
    planes = []
    for c in range(n):
        plane = bytearray(len(raw) // n)
        plane[0::2] = raw[2 * c :: 2 * n]
        plane[1::2] = raw[2 * c + 1 :: 2 * n]
        planes.append(bytes(plane))
    return planes


def write_png16(bands: list[Any], icc: bytes | None, exif: bytes | None, xmp: bytes | None) -> bytes:
    """A 16-bit PNG (colour type 0, 2 or 6) with ``iCCP``, ``eXIf`` and XMP ``iTXt`` chunks."""
    width, height = bands[0].size
    n = len(bands)
    colour_type = {1: 0, 3: 2, 4: 6}[n]
    data = interleave(bands, big_endian=True)
    stride = width * n * 2
    rows = b"".join(b"\0" + data[y * stride : (y + 1) * stride] for y in range(height))
    out = [b"\x89PNG\r\n\x1a\n", png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))]
    if icc:
        out.append(png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc, 6)))
    if exif:
        out.append(png_chunk(b"eXIf", exif))
    if xmp:
        out.append(png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp))
    out.append(png_chunk(b"IDAT", zlib.compress(rows, 6)))
    out.append(png_chunk(b"IEND", b""))
    return b"".join(out)


def write_tiff16(bands: list[Any], icc: bytes | None, xmp: bytes | None) -> bytes:
    """A 16-bit, deflate-compressed, little-endian TIFF with its ICC profile and XMP."""
    width, height = bands[0].size
    n = len(bands)
    strip = zlib.compress(interleave(bands, big_endian=False), 6)
    entries: list[tuple[int, int, int, bytes]] = []  # tag, type, count, value bytes

    def add(tag: int, kind: int, values: list[int] | bytes) -> None:
        if isinstance(values, bytes):
            entries.append((tag, kind, len(values), values))
        else:
            fmt = {3: "<H", 4: "<I"}[kind]
            entries.append((tag, kind, len(values), b"".join(struct.pack(fmt, v) for v in values)))

    add(256, 4, [width])
    add(257, 4, [height])
    add(258, 3, [16] * n)
    add(259, 3, [8])  # Adobe deflate
    add(262, 3, [1 if n == 1 else 2])
    add(273, 4, [0])  # strip offset, patched below
    add(277, 3, [n])
    add(278, 4, [height])
    add(279, 4, [len(strip)])
    add(284, 3, [1])
    if n == 4:
        add(338, 3, [2])  # unassociated alpha
    if xmp:
        add(700, 1, xmp)
    if icc:
        add(34675, 7, icc)
    entries.sort()
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = 8 + ifd_size
    extra = bytearray()
    packed = []
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            packed.append((tag, kind, count, value.ljust(4, b"\0")))
        else:
            packed.append((tag, kind, count, struct.pack("<I", extra_at + len(extra))))
            extra += value + (b"\0" if len(value) % 2 else b"")
    strip_at = extra_at + len(extra)
    ifd = struct.pack("<H", len(packed))
    for tag, kind, count, value in packed:
        if tag == 273:
            value = struct.pack("<I", strip_at)
        ifd += struct.pack("<HHI", tag, kind, count) + value
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd + bytes(extra) + strip
