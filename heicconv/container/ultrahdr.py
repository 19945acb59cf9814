"""Ultra HDR JPEG (Google's format, v1.1): an SDR JPEG, then its gain map as a second JPEG.

The layout, as libultrahdr writes and reads it:

- the primary (SDR) JPEG: SOI, APP0 JFIF, APP1 EXIF, APP1 XMP (``hdrgm:Version`` and a
  ``Container:Directory`` listing the primary and the gain map with its length), APP2 ICC, APP2
  ISO 21496-1 (the namespace ``urn:iso:std:iso:ts:21496:-1`` and only the two version numbers),
  APP2 MPF (CIPA DC-007: two MP entries, offsets counted from the MPF header's byte-order mark),
  then the coded picture, EOI;
- directly after it, the gain map JPEG: SOI, APP1 XMP with the ``hdrgm`` metadata, APP2 ISO 21496-1
  with the full metadata, then the coded map.

Viewers that know nothing of gain maps read the first JPEG and stop at its EOI, so they show the SDR
picture exactly as before. :func:`assemble` writes that from the JPEG a backend made, whichever
backend it was, so every backend gives the same structure.
"""

from __future__ import annotations

import re
import struct
from fractions import Fraction

from .gainmap import _MPF, ISO_NAMESPACE, XMP_NAMESPACE, Metadata, segments

__all__ = ["ISO_NAMESPACE", "XMP_NAMESPACE", "assemble", "iso_payload", "segments"]

_SEGMENT_MAX = 65_533  # payload of one marker segment: 65,535 less the two length bytes
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) > _SEGMENT_MAX:
        raise ValueError(f"a JPEG segment cannot hold {len(payload):,} bytes")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _num(value: float) -> str:
    return f"{value:.7g}"


def _hdrgm_attributes(meta: Metadata) -> str:
    return (
        f' hdrgm:Version="1.0" hdrgm:GainMapMin="{_num(meta.min_log2)}" hdrgm:GainMapMax="{_num(meta.max_log2)}"'
        f' hdrgm:Gamma="{_num(meta.gamma)}" hdrgm:OffsetSDR="{_num(meta.offset_sdr)}"'
        f' hdrgm:OffsetHDR="{_num(meta.offset_hdr)}" hdrgm:HDRCapacityMin="{_num(meta.base_headroom_log2)}"'
        f' hdrgm:HDRCapacityMax="{_num(meta.alternate_headroom_log2)}" hdrgm:BaseRenditionIsHDR="False"'
    )


def _secondary_description(meta: Metadata) -> str:
    return (
        '<rdf:Description rdf:about="" xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/"'
        + _hdrgm_attributes(meta)
        + "/>"
    )


def _packet(description: str) -> bytes:
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="'
        + _RDF
        + '">'
        + description
        + "</rdf:RDF></x:xmpmeta>"
    ).encode()


def _primary_description(gain_map_length: int) -> str:
    return (
        '<rdf:Description rdf:about="" xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/"'
        ' xmlns:Container="http://ns.google.com/photos/1.0/container/"'
        ' xmlns:Item="http://ns.google.com/photos/1.0/container/item/" hdrgm:Version="1.0">'
        "<Container:Directory><rdf:Seq>"
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="Primary" Item:Mime="image/jpeg"/></rdf:li>'
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="GainMap" Item:Mime="image/jpeg"'
        f' Item:Length="{gain_map_length}"/></rdf:li>'
        "</rdf:Seq></Container:Directory></rdf:Description>"
    )


def _merge_xmp(packet: bytes | None, description: str) -> bytes:
    """The photo's XMP packet with ``description`` added to its ``rdf:RDF``, or a new packet."""
    if packet is None:
        return _packet(description)
    text = packet.decode("utf-8")
    closing = list(re.finditer(r"</([\w.-]+:)?RDF\s*>", text))
    if not closing:
        raise ValueError("the photo's XMP has no rdf:RDF element to add the gain map's description to")
    prefix = (closing[-1].group(1) or "")[:-1]
    if prefix != "rdf":  # the description is written with rdf:; declare it where another prefix is in use
        description = description.replace("<rdf:Description ", f'<rdf:Description xmlns:rdf="{_RDF}" ', 1)
    at = closing[-1].start()
    return (text[:at] + description + text[at:]).encode("utf-8")


def _fraction(value: float, signed: bool) -> tuple[int, int]:
    limit = 2**31 - 1 if signed else 2**32 - 1
    denominator = max(1, min(1 << 24, int(limit // max(1.0, abs(value)))))
    f = Fraction(value).limit_denominator(denominator)
    if (not signed and f < 0) or abs(f.numerator) > limit:
        raise ValueError(f"{value} cannot be written as ISO 21496-1 metadata")
    return f.numerator, f.denominator


def iso_payload(meta: Metadata) -> bytes:
    """ISO 21496-1 metadata as the gain map's APP2 segment holds it (after the namespace): version 0,
    one channel, each value a numerator and its denominator.

    >>> from heicconv.container.gainmap import parse_iso
    >>> m = Metadata(0.0, 1.8, alternate_headroom_log2=1.8)
    >>> parse_iso(iso_payload(m)) == m
    True
    """
    out = bytearray(struct.pack(">HHB", 0, 0, 0x40 if meta.use_base_colour_space else 0))
    for value, signed in (
        (meta.base_headroom_log2, False),
        (meta.alternate_headroom_log2, False),
        (meta.min_log2, True),
        (meta.max_log2, True),
        (meta.gamma, False),
        (meta.offset_sdr, True),
        (meta.offset_hdr, True),
    ):
        n, d = _fraction(value, signed)
        out += struct.pack(">iI" if signed else ">II", n, d)
    return bytes(out)


def _mpf(primary_size: int, gain_map_size: int, gain_map_offset: int) -> bytes:
    """The MPF APP2 payload: a big-endian index IFD with version, image count and two MP entries."""
    entries_at = 8 + 2 + 3 * 12 + 4  # after the header, the tag count, three tags and the next-IFD offset
    ifd = struct.pack(">H", 3)
    ifd += struct.pack(">HHI4s", 0xB000, 7, 4, b"0100")
    ifd += struct.pack(">HHII", 0xB001, 4, 1, 2)
    ifd += struct.pack(">HHII", 0xB002, 7, 32, entries_at)
    ifd += struct.pack(">I", 0)
    entries = struct.pack(">IIIHH", 0x030000, primary_size, 0, 0, 0)  # primary, baseline JPEG
    entries += struct.pack(">IIIHH", 0, gain_map_size, gain_map_offset, 0, 0)
    return _MPF + b"MM\0*" + struct.pack(">I", 8) + ifd + entries


def assemble(primary: bytes, gain_map: bytes, meta: Metadata) -> bytes:
    """An Ultra HDR JPEG from a backend's JPEG, the gain map coded as a grayscale JPEG, and its metadata.

    The primary's coded picture and its metadata (EXIF, ICC, the photo's XMP, with the gain map's
    description added) are kept byte for byte; only segments are added.
    """
    map_segments, map_rest = segments(gain_map)
    secondary = (
        b"\xff\xd8"
        + _segment(0xE1, XMP_NAMESPACE + _packet(_secondary_description(meta)))
        + _segment(0xE2, ISO_NAMESPACE + iso_payload(meta))
        + b"".join(_segment(m, p) for m, p in map_segments if m != 0xE1)
        + map_rest
    )
    segs, rest = segments(primary)
    photo_xmp = next((p[len(XMP_NAMESPACE) :] for m, p in segs if m == 0xE1 and p.startswith(XMP_NAMESPACE)), None)
    xmp = _segment(0xE1, XMP_NAMESPACE + _merge_xmp(photo_xmp, _primary_description(len(secondary))))
    # Dropped: the photo's XMP (written again with the gain map's description) and an earlier gain map's segments.
    kept = [
        (m, p)
        for m, p in segs
        if not (m == 0xE1 and p.startswith(XMP_NAMESPACE)) and not (m == 0xE2 and p.startswith((ISO_NAMESPACE, _MPF)))
    ]
    app = [(m, p) for m, p in kept if 0xE0 <= m <= 0xEF or m == 0xFE]
    tables = [(m, p) for m, p in kept if not (0xE0 <= m <= 0xEF or m == 0xFE)]
    # XMP after JFIF and EXIF; the ISO version segment and MPF last among the application segments.
    first = [s[0] == 0xE0 or (s[0] == 0xE1 and s[1].startswith(b"Exif\0")) for s in app]
    lead = [s for s, f in zip(app, first, strict=True) if f]
    other = [s for s, f in zip(app, first, strict=True) if not f]
    before = (
        b"\xff\xd8"
        + b"".join(_segment(m, p) for m, p in lead)
        + xmp
        + b"".join(_segment(m, p) for m, p in other)
        + _segment(0xE2, ISO_NAMESPACE + struct.pack(">HH", 0, 0))
    )
    after = b"".join(_segment(m, p) for m, p in tables) + rest
    mpf_length = 4 + len(_mpf(0, 0, 0))
    primary_size = len(before) + mpf_length + len(after)
    # MPF offsets count from the byte-order mark, 8 bytes into the segment (marker, length, "MPF\0").
    mpf = _segment(0xE2, _mpf(primary_size, len(secondary), primary_size - (len(before) + 8)))
    return before + mpf + after + secondary
