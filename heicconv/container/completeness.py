"""Whether an input is all there, read from each format's own framing before anything is decoded.

Decoders differ on a file that ends early: some stop with an error, others return the picture
with the missing part grey, green, black or repeated. heicconv refuses such a file on every
backend, with a ``DecodeError`` that says it is truncated. HEIF and AVIF are checked in
``heicconv.container.isobmff`` (box sizes and item extents); this module covers JPEG, PNG, WebP and TIFF.

>>> from heicconv.testing.fixtures import make_image
>>> png = make_image("png")
>>> check(png, "png")
>>> try:
...     check(png[:-1], "png")
... except DecodeError as exc:
...     print(str(exc)[:41])
the PNG file is truncated: its last chunk
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from ..errors import DecodeError

__all__ = ["check", "check_jpeg_data", "check_png_data", "check_tiff_frame"]


def check(data: bytes, fmt: str) -> None:
    """Raise ``DecodeError`` if ``data`` ends before its format says it does (for PNG, also if a chunk
    fails its checksum). A TIFF's pixel data is checked per page, once open: :func:`check_tiff_frame`."""
    why = {"jpeg": _jpeg, "png": _png, "webp": _webp, "tiff": _tiff}.get(fmt, lambda _: "")(data)
    if why:
        raise DecodeError(f"the {fmt.upper()} file is {why}")


_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}


def _tiff(data: bytes) -> str:
    """The first directory (where a TIFF says what it holds) and the values it points at must be in the file."""
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return "truncated: it ends inside its header"
    ifd = struct.unpack_from(order + "I", data, 4)[0]
    if ifd + 2 > len(data):
        return f"truncated: its first directory is at byte {ifd:,}, after the end of the file ({len(data):,} bytes)"
    entries = struct.unpack_from(order + "H", data, ifd)[0]
    if ifd + 2 + 12 * entries > len(data):
        return f"truncated: its first directory (byte {ifd:,}, {entries} entries) runs past the end of the file"
    for n in range(entries):
        tag, kind, count, offset = struct.unpack_from(order + "HHII", data, ifd + 2 + 12 * n)
        size = _TIFF_TYPE_SIZES.get(kind, 1) * count
        if size > 4 and offset + size > len(data):
            return f"truncated: the values of its tag {tag} run to byte {offset + size:,}, past the end of the file"
    return ""


def check_tiff_frame(data: bytes, image: Any) -> None:
    """Raise ``DecodeError`` if the strips or tiles of the TIFF page Pillow has open lie past the end of ``data``."""
    tags = image.tag_v2
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):  # StripOffsets/-ByteCounts, TileOffsets/-ByteCounts
        offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
        if offsets is None or counts is None:
            continue
        offsets = offsets if isinstance(offsets, tuple) else (offsets,)
        counts = counts if isinstance(counts, tuple) else (counts,)
        ends = [int(o) + int(c) for o, c in zip(offsets, counts, strict=False)]
        if len(offsets) != len(counts) or not ends:
            raise DecodeError("the TIFF file is damaged: its strip offsets and byte counts do not match")
        if max(ends) > len(data):
            raise DecodeError(
                f"the TIFF file is truncated: its image data runs to byte {max(ends):,} but the file ends at "
                f"byte {len(data):,}"
            )


def _jpeg(data: bytes) -> str:
    """A JPEG is segments up to the first scan, then entropy-coded data that only an EOI marker ends."""
    pos = 2
    while True:
        if pos + 4 > len(data):
            return "truncated: it ends inside its header segments"
        if data[pos] != 0xFF:
            return ""  # not framed as expected: the decoder will say what is wrong
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if pos + 2 + length > len(data):
            return f"truncated: its segment 0xFF{marker:02X} at byte {pos:,} runs past the end of the file"
        if marker == 0xDA:  # start of scan: the picture data follows, up to EOI
            break
        pos += 2 + length
    # Inside the scans 0xFF is always followed by 0x00 or a restart marker, so 0xFFD9 can only be EOI.
    if data.find(b"\xff\xd9", pos + 2 + length) < 0:
        return "truncated: its picture data has no end marker (EOI), so the end of the picture is missing"
    return ""


# What libjpeg says, as a warning, when the entropy-coded data does not hold the picture its header declares:
# the data stops early (a cut file, even one whose end marker was put back), or cannot be decoded.
_JPEG_DAMAGE = (
    "premature end of data segment",
    "premature end of jpeg file",
    "bad huffman code",
    "instead of rst",
    "inconsistent progression sequence",
    "invalid sos parameters",
)


def check_jpeg_data(data: bytes) -> None:
    """Raise ``DecodeError`` unless the JPEG's picture data decodes to every block its header declares.

    A JPEG cut short whose end marker was put back (what some "repair" tools and interrupted copies do) has
    all its framing; decoders then fill the missing blocks with grey and say so only as a warning, which
    Pillow drops. libjpeg-turbo (through simplejpeg) is asked here, at 1/8 scale and in grey (the entropy
    decoding is all done, most of the rest is skipped): 17 ms for a 12 MP baseline photo. Warnings that
    are not damage (bytes between segments, an unknown JFIF version) and JPEGs libjpeg-turbo cannot
    read at all are left to the backend. Call it after the limits are checked.
    """
    import simplejpeg

    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True, min_width=1, min_height=1, min_factor=8)
    except ValueError as exc:
        why = str(exc)
        if any(sign in why.lower() for sign in _JPEG_DAMAGE):
            raise DecodeError(f"the JPEG file is damaged or truncated: its picture data is incomplete ({why})") from exc


def _png(data: bytes) -> str:
    """Every chunk must be whole and pass its CRC (decoders differ: libvips' default keeps a damaged IDAT)."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        name = kind.decode("latin-1")
        if end > len(data):
            return (
                f"truncated: its last chunk ({name!r} at byte {pos:,}) ends at byte {end:,}, "
                f"after the end of the file ({len(data):,} bytes)"
            )
        if zlib.crc32(data[pos + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            return f"damaged: its {name!r} chunk at byte {pos:,} fails its CRC check"
        if kind == b"IEND":
            return ""
        pos = end
    return "truncated: it has no IEND chunk"


def check_png_data(data: bytes) -> None:
    """Raise ``DecodeError`` unless the PNG's image data inflates cleanly (zlib's own checksum included) to
    exactly the rows its header declares. Damage that keeps every chunk's CRC right (a file edited after
    it was written) is found here. libvips, left to find it while it decodes in its threaded pipeline,
    wrote such a PNG as a picture about once in a hundred tries, so the vips backend calls this; Pillow
    and ImageMagick find the damage themselves every time (this check costs 20 to 30 % of a PNG
    conversion, so they are spared it). Memory stays bounded: output is counted in 1 MB pieces and
    dropped. Call it after the limits are checked (a small file can inflate to gigabytes)."""
    why = _png_data(data)
    if why:
        raise DecodeError(f"the PNG file is {why}")


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png_data(data: bytes) -> str:
    width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    inflater = zlib.decompressobj()
    total = 0
    pos = 8
    try:
        while pos + 8 <= len(data):
            length, kind = struct.unpack_from(">I4s", data, pos)
            if kind == b"IDAT":
                chunk = data[pos + 8 : pos + 8 + length]
                while chunk:
                    total += len(inflater.decompress(chunk, 1 << 20))
                    chunk = inflater.unconsumed_tail
            elif kind == b"IEND":
                break
            pos += 12 + length
        while not inflater.eof and (piece := inflater.decompress(b"", 1 << 20)):
            total += len(piece)
    except zlib.error as exc:
        return f"damaged: its image data does not inflate ({exc})"
    if not inflater.eof:
        return "truncated: its image data ends before its compressed stream does"
    if interlace == 0 and colour in _PNG_CHANNELS:
        expected = height * (1 + (width * depth * _PNG_CHANNELS[colour] + 7) // 8)
        if total != expected:
            return f"damaged: its image data holds {total:,} bytes, not the {expected:,} of {width}x{height} pixels"
    return ""


def _webp(data: bytes) -> str:
    if len(data) < 12:
        return "truncated: it ends inside its RIFF header"
    declared = struct.unpack_from("<I", data, 4)[0] + 8
    if declared > len(data):
        return f"truncated: its RIFF header declares {declared:,} bytes but only {len(data):,} are there"
    return ""
