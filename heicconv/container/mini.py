"""HEIF's low-overhead form: a ``mini`` box (brand ``mif3``) instead of a ``meta`` box.

libheif 1.19 and later write it for small images: one bit-packed box that says what a regular
file says in a dozen boxes (size, bit depth, colour, orientation, alpha, EXIF, XMP, codec
configuration) followed by the coded data. Only libheif 1.19+ reads it, so heicconv expands it
into a regular HEIF file with the same coded data (ISO/IEC 23008-12 Annex O, as libheif reads
it); every backend then decodes that, and heicconv's own reader and limits see a regular file.
HDR gain maps a ``mini`` box may carry are not kept.
"""

from __future__ import annotations

import struct
import zlib

from ..errors import DecodeError
from . import isobmff

__all__ = ["expand", "is_mini"]

# EXIF orientation -> (irot anticlockwise, imir mode) that shows the same thing (see info._TRANSFORM_TO_EXIF).
_ORIENTATION = {
    1: (0, None),
    2: (0, 1),
    3: (180, None),
    4: (0, 0),
    5: (90, 0),
    6: (270, None),
    7: (270, 0),
    8: (90, None),
}
_CODECS = {b"heic": (b"hvc1", b"hvcC"), b"avif": (b"av01", b"av1C")}
_ALPHA_URN = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\0"


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        if self.pos + n > 8 * len(self.data):
            raise DecodeError("the HEIF 'mini' box is truncated")
        value = int.from_bytes(self.data[self.pos >> 3 : ((self.pos + n + 7) >> 3)], "big")
        value >>= (8 - (self.pos + n) % 8) % 8
        self.pos += n
        return value & ((1 << n) - 1)

    def flag(self) -> bool:
        return bool(self.u(1))

    def align(self) -> int:
        self.pos = (self.pos + 7) & ~7
        return self.pos >> 3


def is_mini(data: bytes) -> bool:
    """Whether ``data`` is a low-overhead HEIF: an ``ftyp`` box followed by a ``mini`` box."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    size = struct.unpack_from(">I", data, 0)[0]
    return size + 8 <= len(data) and data[size + 4 : size + 8] == b"mini"


def _skip_hdr_metadata(bits: _Bits) -> None:
    """Content light level, mastering display, content colour volume, ambient viewing, reference
    viewing environment and diffuse white, in that order: heicconv reads none of them."""
    clli, mdcv, cclv, amve, reve, ndwt = (bits.flag() for _ in range(6))
    bits.u(32 * clli + 192 * mdcv)
    if cclv:
        bits.u(2)
        primaries, low, high, average = (bits.flag() for _ in range(4))
        bits.u(2 + 192 * primaries + 32 * (low + high + average))
    bits.u(64 * amve + 128 * reve + 32 * ndwt)


def expand(data: bytes) -> bytes:
    """A regular HEIF file holding what the low-overhead file ``data`` holds (raises ``DecodeError``)."""
    ftyp_size = struct.unpack_from(">I", data, 0)[0]
    codec = _CODECS.get(bytes(data[12:16]))  # the codec brand is the ftyp's minor version
    if codec is None:
        raise DecodeError(f"the low-overhead HEIF names the codec brand {bytes(data[12:16])!r}, not heic or avif")
    box_size = struct.unpack_from(">I", data, ftyp_size)[0]
    if box_size < 8:
        raise DecodeError("the HEIF 'mini' box has an invalid size")
    if ftyp_size + box_size > len(data):
        raise DecodeError(
            f"the file is truncated: its 'mini' box declares {box_size:,} bytes but only "
            f"{len(data) - ftyp_size:,} are there"
        )
    body = bytes(data[ftyp_size + 8 : ftyp_size + box_size])
    bits = _Bits(body)
    if bits.u(2) != 0:
        raise DecodeError("the HEIF 'mini' box has a version heicconv does not read")
    explicit_codec, floating, full_range, alpha, explicit_cicp, hdr = (bits.flag() for _ in range(6))
    icc, exif, xmp = bits.flag(), bits.flag(), bits.flag()
    chroma = bits.u(2)
    orientation = bits.u(3) + 1
    large = bits.flag()
    width, height = bits.u(15 if large else 7) + 1, bits.u(15 if large else 7) + 1
    if chroma in (1, 2):
        bits.u(1)  # chroma horizontally centred
    if chroma == 1:
        bits.u(1)  # chroma vertically centred
    if floating:
        raise DecodeError("the low-overhead HEIF holds floating-point samples, which no backend decodes")
    depth = bits.u(3) + 9 if bits.flag() else 8
    if alpha:
        bits.u(1)  # alpha premultiplied
    if explicit_cicp:
        primaries, transfer, matrix = bits.u(8), bits.u(8), bits.u(8)
    else:
        primaries, transfer, matrix = (2, 2, 2 if chroma == 0 else 6) if icc else (1, 13, 2 if chroma == 0 else 6)
    if explicit_codec:
        item_type, config_type = bits.u(32).to_bytes(4, "big"), bits.u(32).to_bytes(4, "big")
        if (item_type, config_type) != codec:
            raise DecodeError(f"the low-overhead HEIF codes its image as {item_type!r}, which heicconv does not read")
    gainmap = tmap_icc = False
    if hdr:
        gainmap = bits.flag()
        if gainmap:
            if not bits.flag():  # gain map of another size than the image
                bits.u(2 * (15 if large else 7))
            bits.u(9)  # matrix coefficients, full range
            gain_chroma = bits.u(2)
            bits.u((gain_chroma in (1, 2)) + (gain_chroma == 1))
            if bits.flag():
                bits.u(2)  # floating-point gain map depth
            elif bits.flag():
                bits.u(3)
            tmap_icc = bits.flag()
            if bits.flag():
                bits.u(25)  # explicit CICP of the tone-mapped image
        _skip_hdr_metadata(bits)
        if gainmap:
            _skip_hdr_metadata(bits)
    large_metadata = bits.flag() if (icc or exif or xmp or gainmap) else False
    large_config, large_data = bits.flag(), bits.flag()
    meta_bits, data_bits, config_bits = (
        (20 if large_metadata else 10),
        (28 if large_data else 15),
        (12 if large_config else 3),
    )
    icc_size = bits.u(meta_bits) + 1 if icc else 0
    tmap_icc_size = bits.u(meta_bits) + 1 if tmap_icc else 0
    gainmap_meta_size = bits.u(meta_bits) if gainmap else 0
    gainmap_size = bits.u(data_bits) if gainmap else 0
    gainmap_config_size = bits.u(config_bits) if gainmap_size else 0
    config_size = bits.u(config_bits)
    image_size = bits.u(data_bits) + 1
    alpha_size = bits.u(data_bits) if alpha else 0
    alpha_config_size = bits.u(config_bits) if alpha_size else 0
    compressed = bits.flag() if (exif or xmp) else False
    exif_size = bits.u(meta_bits) + 1 if exif else 0
    xmp_size = bits.u(meta_bits) + 1 if xmp else 0
    pos = bits.align()

    chunks: list[bytes] = []
    for size in (
        config_size,
        alpha_config_size,
        gainmap_config_size,
        icc_size,
        tmap_icc_size,
        gainmap_meta_size,
        alpha_size,
        gainmap_size,
        image_size,
        exif_size,
        xmp_size,
    ):
        if pos + size > len(body):
            raise DecodeError(
                f"the file is truncated: its 'mini' box needs {pos + size:,} bytes of content but holds {len(body):,}"
            )
        chunks.append(body[pos : pos + size])
        pos += size
    config, alpha_config, _, icc_data, _, _, alpha_data, _, image_data, exif_data, xmp_data = chunks
    if not config:
        raise DecodeError("the low-overhead HEIF has no codec configuration for its image")

    item_type, config_type = codec
    rotation, mirror = _ORIENTATION[orientation]
    transforms = [(isobmff._box(b"irot", bytes([rotation // 90])), True)] if rotation else []
    if mirror is not None:
        transforms.append((isobmff._box(b"imir", bytes([mirror])), True))
    ispe = (isobmff._full_box(b"ispe", 0, 0, struct.pack(">II", width, height)), False)
    channels = 1 if chroma == 0 else 3
    pixi = (isobmff._full_box(b"pixi", 0, 0, bytes([channels] + [depth] * channels)), False)
    nclx = (isobmff._box(b"colr", b"nclx" + struct.pack(">HHHB", primaries, transfer, matrix, 0x80 * full_range)), True)
    colour = [nclx, (isobmff._box(b"colr", b"prof" + icc_data), True)] if icc else [nclx]
    image = isobmff.NewItem(
        1, item_type, image_data, [(isobmff._box(config_type, config), True), ispe, pixi, *colour, *transforms]
    )
    image.hidden = False
    items = [image]
    if alpha_data:
        auxc = (isobmff._full_box(b"auxC", 0, 0, _ALPHA_URN), True)
        plane_config = (isobmff._box(config_type, alpha_config or config), True)
        items.append(isobmff.NewItem(2, item_type, alpha_data, [plane_config, ispe, auxc, *transforms], aux_of=[1]))
    if exif:
        items.append(isobmff.NewItem(6, b"Exif", _inflate(exif_data) if compressed else exif_data, [], describes=[1]))
    if xmp:
        xmp_item = isobmff.NewItem(7, b"mime", _inflate(xmp_data) if compressed else xmp_data, [], describes=[1])
        xmp_item.content_type = b"application/rdf+xml"
        items.append(xmp_item)
    brand = b"avif" if item_type == b"av01" else b"heic"
    return isobmff.write(items, 1, brands=(brand, b"mif1", brand))


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:
        try:
            return zlib.decompress(data, -15)  # raw deflate
        except zlib.error as exc:
            raise DecodeError(f"the low-overhead HEIF's compressed metadata is damaged: {exc}") from exc
