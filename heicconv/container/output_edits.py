"""Byte-level edits of output files, so metadata comes out the same whichever library wrote the pixels.

Each function takes a complete file and returns a complete file; none decodes pixels.
"""

from __future__ import annotations

import struct
import zlib

__all__ = [
    "drop_exif",
    "jpeg_add_metadata",
    "jpeg_drop_exif",
    "png_chunk",
    "png_set_icc",
    "png_set_xmp",
    "webp_set_xmp",
]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_XMP_KEYWORDS = (b"XML:com.adobe.xmp", b"Raw profile type xmp")


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    chunks = []
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(png):
        length, kind = struct.unpack_from(">I4s", png, pos)
        chunks.append((kind, png[pos + 8 : pos + 8 + length]))
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and the CRC of type and body."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_set_xmp(png: bytes, xmp: bytes) -> bytes:
    """Store ``xmp`` as the standard uncompressed ``iTXt`` chunk, replacing any other XMP chunk.

    (ImageMagick writes XMP as a hex-encoded "Raw profile type xmp" text chunk that other readers ignore.)
    """
    out = [_PNG_SIGNATURE]
    placed = False
    for kind, body in _png_chunks(png):
        if kind in (b"tEXt", b"zTXt", b"iTXt") and body.split(b"\0", 1)[0] in _XMP_KEYWORDS:
            continue
        if kind == b"IDAT" and not placed:
            out.append(png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp))
            placed = True
        out.append(png_chunk(kind, body))
    return b"".join(out)


def png_set_icc(png: bytes, icc: bytes) -> bytes:
    """Store ``icc`` as the PNG's ``iCCP`` chunk, replacing any colour chunk (``sRGB``, ``gAMA``, ``cHRM``).

    (ImageMagick writes an ``sRGB`` chunk instead of the profile when the profile is sRGB, so the
    profile's bytes would differ from the other backends'.)
    """
    out = [_PNG_SIGNATURE]
    for kind, body in _png_chunks(png):
        if kind in (b"iCCP", b"sRGB", b"gAMA", b"cHRM"):
            continue
        out.append(png_chunk(kind, body))
        if kind == b"IHDR":
            out.append(png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc, 6)))
    return b"".join(out)


def webp_set_xmp(webp: bytes, xmp: bytes, size: tuple[int, int]) -> bytes:
    """Add (or replace) the ``XMP `` chunk of a WebP file, turning on the extended header's XMP flag."""
    if webp[:4] != b"RIFF" or webp[8:12] != b"WEBP":
        raise ValueError("not a WebP")
    chunks = []
    pos = 12
    while pos + 8 <= len(webp):
        kind, length = webp[pos : pos + 4], struct.unpack_from("<I", webp, pos + 4)[0]
        chunks.append((kind, webp[pos + 8 : pos + 8 + length]))
        pos += 8 + length + (length & 1)
    chunks = [(k, b) for k, b in chunks if k != b"XMP "]
    if chunks and chunks[0][0] == b"VP8X":
        header = bytearray(chunks[0][1])
        header[0] |= 0x04
        chunks[0] = (b"VP8X", bytes(header))
    else:
        alpha = any(k == b"ALPH" for k, _ in chunks) or (
            chunks and chunks[0][0] == b"VP8L" and len(chunks[0][1]) > 4 and chunks[0][1][4] & 0x10
        )
        w, h = size
        flags = 0x04 | (0x10 if alpha else 0)
        vp8x = bytes([flags, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", vp8x))
    chunks.append((b"XMP ", xmp))
    body = b"".join(k + struct.pack("<I", len(b)) + b + (b"\0" if len(b) & 1 else b"") for k, b in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def jpeg_drop_exif(jpeg: bytes) -> bytes:
    """Remove APP1 EXIF segments (libvips adds one even when the source had none)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    out = [jpeg[:2]]
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        length = struct.unpack_from(">H", jpeg, pos + 2)[0]
        segment = jpeg[pos : pos + 2 + length]
        if not (marker == 0xE1 and segment[4:10] == b"Exif\0\0"):
            out.append(segment)
        pos += 2 + length
    out.append(jpeg[pos:])
    return b"".join(out)


def drop_exif(data: bytes, fmt: str) -> bytes:
    """``data`` (a file in ``fmt``) without its EXIF: libvips writes a block of its own (resolution and
    orientation) into JPEG, WebP, AVIF and HEIC even when the image has none."""
    if fmt == "jpeg":
        return jpeg_drop_exif(data)
    if fmt == "webp":
        return _webp_drop_exif(data)
    if fmt in ("avif", "heic"):
        return _heif_drop_exif(data)
    return data


def _webp_drop_exif(webp: bytes) -> bytes:
    if webp[:4] != b"RIFF" or webp[8:12] != b"WEBP":
        raise ValueError("not a WebP")
    out = []
    pos = 12
    while pos + 8 <= len(webp):
        kind, length = webp[pos : pos + 4], struct.unpack_from("<I", webp, pos + 4)[0]
        chunk = webp[pos : pos + 8 + length + (length & 1)]
        if kind == b"VP8X":
            header = bytearray(chunk)
            header[8] &= ~0x08 & 0xFF  # the extended header's EXIF flag
            chunk = bytes(header)
        if kind != b"EXIF":
            out.append(chunk)
        pos += 8 + length + (length & 1)
    body = b"".join(out)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _heif_drop_exif(heif: bytes) -> bytes:
    """The primary image, its parts and its metadata items but the Exif ones, rewritten as one file."""
    from . import isobmff

    c = isobmff.parse(heif)
    if not any(i.type == b"Exif" for i in c.items.values()):
        return heif
    items = c.copy_items(heif, c.primary_id)
    for meta in c.metadata_of(c.primary_id):
        if meta.type != b"Exif":
            items.append(
                isobmff.NewItem(
                    meta.id,
                    meta.type,
                    c.item_data(meta, heif, limit=len(heif)),
                    [],
                    describes=[c.primary_id],
                    content_type=meta.content_type.encode(),
                )
            )
    return isobmff.write(items, c.primary_id)


_ICC_CHUNK = 65_519  # an APP2 segment's room after "ICC_PROFILE\0", its sequence number and count


def jpeg_add_metadata(jpeg: bytes, icc: bytes | None, exif: bytes | None, xmp: bytes | None) -> bytes:
    """Insert EXIF (bare TIFF bytes), XMP and an ICC profile (split over APP2 segments) after the JFIF header.

    For encoders that write pixels only (libjpeg-turbo's raw-plane encoder); ``exif`` and ``xmp`` must fit
    one segment each (``exif.fit``, 65,504 bytes of XMP).
    """
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    at = 2
    if jpeg[2:4] == b"\xff\xe0":  # JFIF first, as readers expect
        at = 4 + struct.unpack_from(">H", jpeg, 4)[0]
    segments = []
    if exif:
        segments.append((0xE1, b"Exif\0\0" + exif))
    if xmp:
        segments.append((0xE1, b"http://ns.adobe.com/xap/1.0/\0" + xmp))
    if icc:
        chunks = [icc[i : i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
        for n, chunk in enumerate(chunks, 1):
            segments.append((0xE2, b"ICC_PROFILE\0" + bytes((n, len(chunks))) + chunk))
    for _, body in segments:
        if len(body) > 65_533:
            raise ValueError(f"a JPEG segment holds at most 65,533 bytes, not {len(body):,}")
    head = b"".join(struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body for marker, body in segments)
    return jpeg[:at] + head + jpeg[at:]


_TIFF_TYPES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8, 17: 8, 18: 8}


def tiff_zero_padding(tiff: bytes) -> bytes:
    """``tiff`` with each pad byte between two of its blocks set to zero.

    A TIFF writer starts each directory and value on an even offset. ImageMagick writes to a memory blob and
    skips the pad byte instead of writing it, so it keeps what the blob's memory held before: a byte of another
    conversion's data, different from one call to the next. Only a byte that ends an odd-length block and sits
    right before another block is touched.
    """
    if len(tiff) < 8 or tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return tiff
    order = "<" if tiff[:2] == b"II" else ">"
    blocks = _tiff_blocks(tiff, order)
    starts = {start for start, _ in blocks}
    out = bytearray(tiff)
    for start, length in blocks:
        end = start + length
        if end % 2 and end + 1 in starts and end not in starts and end < len(out):
            out[end] = 0
    return bytes(out)


def _tiff_blocks(tiff: bytes, order: str) -> list[tuple[int, int]]:
    """Every directory, out-of-line value and strip or tile of ``tiff``, as (offset, length)."""
    blocks: list[tuple[int, int]] = []
    seen: set[int] = set()
    ifd = struct.unpack_from(order + "I", tiff, 4)[0]
    while 8 <= ifd < len(tiff) - 2 and ifd not in seen:
        seen.add(ifd)
        count = struct.unpack_from(order + "H", tiff, ifd)[0]
        if ifd + 2 + 12 * count + 4 > len(tiff):
            break
        blocks.append((ifd, 2 + 12 * count + 4))
        segments: dict[int, list[int]] = {}
        for i in range(count):
            tag, kind, n, value = struct.unpack_from(order + "HHII", tiff, ifd + 2 + 12 * i)
            size = _TIFF_TYPES.get(kind, 1) * n
            if size > 4:
                blocks.append((value, size))
            if tag in (273, 279, 324, 325):  # strip or tile offsets and byte counts
                segments[tag] = _tiff_values(tiff, order, kind, n, value if size > 4 else ifd + 2 + 12 * i + 8)
        for offsets, counts in ((273, 279), (324, 325)):
            blocks += zip(segments.get(offsets, []), segments.get(counts, []), strict=False)
        ifd = struct.unpack_from(order + "I", tiff, ifd + 2 + 12 * count)[0]
    return blocks


def _tiff_values(tiff: bytes, order: str, kind: int, n: int, at: int) -> list[int]:
    code = {3: "H", 4: "I", 16: "Q"}.get(kind)
    if code is None or at + struct.calcsize(code) * n > len(tiff):
        return []
    return list(struct.unpack_from(f"{order}{n}{code}", tiff, at))
