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
from dataclasses import dataclass

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


@dataclass
class _Header:
    """What the bit-packed start of a ``mini`` box says about the image, in the order it says it."""

    full_range: bool
    alpha: bool
    icc: bool
    exif: bool
    xmp: bool
    chroma: int
    orientation: int
    large: bool
    width: int
    height: int
    depth: int
    cicp: tuple[int, int, int]  # colour primaries, transfer characteristics, matrix coefficients
    gainmap: bool = False
    tmap_icc: bool = False


@dataclass
class _Chunks:
    """The payloads that follow the header, cut from the box in the order the box stores them."""

    config: bytes
    alpha_config: bytes
    icc: bytes
    alpha: bytes
    image: bytes
    exif: bytes
    xmp: bytes


def expand(data: bytes) -> bytes:
    """A regular HEIF file holding what the low-overhead file ``data`` holds (raises ``DecodeError``)."""
    codec, body = _mini_body(data)
    bits = _Bits(body)
    header = _read_header(bits, codec)
    sizes, compressed = _read_sizes(bits, header)
    chunks = _cut_chunks(body, bits.align(), sizes)
    if not chunks.config:
        raise DecodeError("the low-overhead HEIF has no codec configuration for its image")
    items = _image_items(header, codec, chunks)
    items += _metadata_items(header, chunks, compressed)
    brand = b"avif" if codec[0] == b"av01" else b"heic"
    return isobmff.write(items, 1, brands=(brand, b"mif1", brand))


def _mini_body(data: bytes) -> tuple[tuple[bytes, bytes], bytes]:
    """The codec (item type, configuration box type) the ``ftyp`` names, and the ``mini`` box's content."""
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
    return codec, bytes(data[ftyp_size + 8 : ftyp_size + box_size])


def _read_header(bits: _Bits, codec: tuple[bytes, bytes]) -> _Header:
    """The image's description: size, samples, colour, codec, and which payloads follow."""
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
        cicp = bits.u(8), bits.u(8), bits.u(8)
    else:
        cicp = (2, 2, 2 if chroma == 0 else 6) if icc else (1, 13, 2 if chroma == 0 else 6)
    if explicit_codec:
        item_type, config_type = bits.u(32).to_bytes(4, "big"), bits.u(32).to_bytes(4, "big")
        if (item_type, config_type) != codec:
            raise DecodeError(f"the low-overhead HEIF codes its image as {item_type!r}, which heicconv does not read")
    header = _Header(full_range, alpha, icc, exif, xmp, chroma, orientation, large, width, height, depth, cicp)
    if hdr:
        _skip_hdr_header(bits, header)
    return header


def _skip_hdr_header(bits: _Bits, header: _Header) -> None:
    """Read past the gain map's description and the HDR metadata, noting which gain map payloads follow."""
    header.gainmap = bits.flag()
    if header.gainmap:
        if not bits.flag():  # gain map of another size than the image
            bits.u(2 * (15 if header.large else 7))
        bits.u(9)  # matrix coefficients, full range
        gain_chroma = bits.u(2)
        bits.u((gain_chroma in (1, 2)) + (gain_chroma == 1))
        if bits.flag():
            bits.u(2)  # floating-point gain map depth
        elif bits.flag():
            bits.u(3)
        header.tmap_icc = bits.flag()
        if bits.flag():
            bits.u(25)  # explicit CICP of the tone-mapped image
    _skip_hdr_metadata(bits)
    if header.gainmap:
        _skip_hdr_metadata(bits)


def _read_sizes(bits: _Bits, header: _Header) -> tuple[list[int], bool]:
    """The payloads' sizes in the order the box stores them, and whether EXIF and XMP are compressed."""
    h = header
    large_metadata = bits.flag() if (h.icc or h.exif or h.xmp or h.gainmap) else False
    large_config, large_data = bits.flag(), bits.flag()
    meta_bits, data_bits, config_bits = (
        (20 if large_metadata else 10),
        (28 if large_data else 15),
        (12 if large_config else 3),
    )
    icc_size = bits.u(meta_bits) + 1 if h.icc else 0
    tmap_icc_size = bits.u(meta_bits) + 1 if h.tmap_icc else 0
    gainmap_meta_size = bits.u(meta_bits) if h.gainmap else 0
    gainmap_size = bits.u(data_bits) if h.gainmap else 0
    gainmap_config_size = bits.u(config_bits) if gainmap_size else 0
    config_size = bits.u(config_bits)
    image_size = bits.u(data_bits) + 1
    alpha_size = bits.u(data_bits) if h.alpha else 0
    alpha_config_size = bits.u(config_bits) if alpha_size else 0
    compressed = bits.flag() if (h.exif or h.xmp) else False
    exif_size = bits.u(meta_bits) + 1 if h.exif else 0
    xmp_size = bits.u(meta_bits) + 1 if h.xmp else 0
    sizes = [config_size, alpha_config_size, gainmap_config_size, icc_size, tmap_icc_size, gainmap_meta_size]
    sizes += [alpha_size, gainmap_size, image_size, exif_size, xmp_size]
    return sizes, compressed


def _cut_chunks(body: bytes, pos: int, sizes: list[int]) -> _Chunks:
    """The payloads, from ``pos`` on; the gain map's (which heicconv does not keep) are dropped."""
    chunks: list[bytes] = []
    for size in sizes:
        if pos + size > len(body):
            raise DecodeError(
                f"the file is truncated: its 'mini' box needs {pos + size:,} bytes of content but holds {len(body):,}"
            )
        chunks.append(body[pos : pos + size])
        pos += size
    config, alpha_config, _, icc, _, _, alpha, _, image, exif, xmp = chunks
    return _Chunks(config, alpha_config, icc, alpha, image, exif, xmp)


def _image_items(header: _Header, codec: tuple[bytes, bytes], chunks: _Chunks) -> list[isobmff.NewItem]:
    """The image item (id 1) and, if there is one, its alpha plane (id 2), with their properties."""
    item_type, config_type = codec
    transforms = _transforms(header.orientation)
    ispe = (isobmff._full_box(b"ispe", 0, 0, struct.pack(">II", header.width, header.height)), False)
    channels = 1 if header.chroma == 0 else 3
    pixi = (isobmff._full_box(b"pixi", 0, 0, bytes([channels] + [header.depth] * channels)), False)
    nclx_payload = b"nclx" + struct.pack(">HHHB", *header.cicp, 0x80 * header.full_range)
    nclx = (isobmff._box(b"colr", nclx_payload), True)
    colour = [nclx, (isobmff._box(b"colr", b"prof" + chunks.icc), True)] if header.icc else [nclx]
    image = isobmff.NewItem(
        1, item_type, chunks.image, [(isobmff._box(config_type, chunks.config), True), ispe, pixi, *colour, *transforms]
    )
    image.hidden = False
    items = [image]
    if chunks.alpha:
        auxc = (isobmff._full_box(b"auxC", 0, 0, _ALPHA_URN), True)
        plane_config = (isobmff._box(config_type, chunks.alpha_config or chunks.config), True)
        items.append(isobmff.NewItem(2, item_type, chunks.alpha, [plane_config, ispe, auxc, *transforms], aux_of=[1]))
    return items


def _transforms(orientation: int) -> list[tuple[bytes, bool]]:
    """The ``irot`` and ``imir`` properties that show the image as the EXIF ``orientation`` would."""
    rotation, mirror = _ORIENTATION[orientation]
    transforms = [(isobmff._box(b"irot", bytes([rotation // 90])), True)] if rotation else []
    if mirror is not None:
        transforms.append((isobmff._box(b"imir", bytes([mirror])), True))
    return transforms


def _metadata_items(header: _Header, chunks: _Chunks, compressed: bool) -> list[isobmff.NewItem]:
    """The EXIF (id 6) and XMP (id 7) items that describe the image, inflated if the box compressed them."""
    items: list[isobmff.NewItem] = []
    if header.exif:
        exif = _inflate(chunks.exif) if compressed else chunks.exif
        items.append(isobmff.NewItem(6, b"Exif", exif, [], describes=[1]))
    if header.xmp:
        xmp_item = isobmff.NewItem(7, b"mime", _inflate(chunks.xmp) if compressed else chunks.xmp, [], describes=[1])
        xmp_item.content_type = b"application/rdf+xml"
        items.append(xmp_item)
    return items


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:
        try:
            return zlib.decompress(data, -15)  # raw deflate
        except zlib.error as exc:
            raise DecodeError(f"the low-overhead HEIF's compressed metadata is damaged: {exc}") from exc
