"""HDR gain maps: found in a HEIF file, read, and carried into the output (issue 14).

A phone photo that looks bright on an HDR screen is an ordinary (SDR) picture plus a *gain map*: a
small grayscale auxiliary image saying how much brighter each area may be shown, up to the photo's
*headroom*. Three kinds exist in HEIF files:

- Apple (``urn:com:apple:photo:2020:aux:hdrgainmap``): the headroom comes from the EXIF MakerNote
  (tags 33 and 48, by the formula of Apple's article "Applying Apple HDR effect to your photos"),
  and a pixel is ``sdr * (1 + (headroom - 1) * g)`` in linear light, with ``g`` the map sample
  linearised by the Rec.709 curve;
- ISO 21496-1: a ``tmap`` item whose inputs are the photo and the map, its data the metadata
  (iPhones since iOS 18 write one next to Apple's own; Samsung phones since 2025);
- Samsung (``urn:com:samsung:photo:2024:aux:hdrgainmap``): Adobe ``hdrgm`` XMP on the map item.

ISO 21496-1 metadata, where the file has it, is what heicconv carries; otherwise the ``hdrgm`` XMP;
otherwise Apple's MakerNote, whose linear gain is re-expressed exactly in ISO 21496-1 terms by a
256-entry table (see :func:`apple_to_log`). Reading only looks at the header (:func:`find`);
the map is decoded by pillow-heif whatever the backend, so every backend carries the same map.

This module reads (container level); :mod:`heicconv.pipeline.hdr` decodes the map and carries it
into the output.

>>> from heicconv.container.info import read_source
>>> from heicconv.testing.fixtures import make_heic
>>> find(read_source(make_heic(size=(32, 24)))) is None
True
"""

from __future__ import annotations

import dataclasses
import math
import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DecodeError
from . import isobmff

if TYPE_CHECKING:
    from .info import Source

__all__ = [
    "APPLE",
    "ISO_NAMESPACE",
    "SAMSUNG",
    "XMP_NAMESPACE",
    "Found",
    "GainMap",
    "Metadata",
    "apple_headroom",
    "apple_to_log",
    "find",
    "hdrgm",
    "map_size",
    "parse_iso",
    "read_ultra_hdr",
    "segments",
]

APPLE = "urn:com:apple:photo:2020:aux:hdrgainmap"
SAMSUNG = "urn:com:samsung:photo:2024:aux:hdrgainmap"
_HDRGM = "http://ns.adobe.com/hdr-gain-map/1.0/"
XMP_NAMESPACE = (
    b"http://ns.adobe.com/xap/1.0/\0"  # in Ultra HDR JPEGs' segments (heicconv.container.ultrahdr writes them)
)
ISO_NAMESPACE = b"urn:iso:std:iso:ts:21496:-1\0"
_MPF = b"MPF\0"
_APPLE_NS = "http://ns.apple.com/HDRGainMap/1.0/"
_MAKER_NOTE = 0x927C
_EXIF_IFD = 0x8769
_MAX_STOPS = 16.0  # a corrupt MakerNote must not give an infinite headroom; 16 stops is past any display


@dataclass(frozen=True)
class Metadata:
    """How to apply a gain map, in ISO 21496-1 terms (one channel; log2 values as the standard has them).

    A pixel of the HDR rendition is ``(sdr + offset_sdr) * 2 ** (L) - offset_hdr`` in linear light, with
    ``L = min_log2 + (max_log2 - min_log2) * g ** (1 / gamma)`` and ``g`` the map sample in 0..1.
    """

    min_log2: float
    max_log2: float
    gamma: float = 1.0
    offset_sdr: float = 0.0
    offset_hdr: float = 0.0
    base_headroom_log2: float = 0.0
    alternate_headroom_log2: float = 0.0
    use_base_colour_space: bool = True

    @property
    def headroom(self) -> float:
        """How much brighter than SDR white the HDR rendition reaches (a ratio: 4.0 is two stops)."""
        return float(2.0**self.alternate_headroom_log2)

    def problem(self) -> str:
        """Why a reader (libultrahdr, browsers) would refuse this metadata, or ``""``."""
        values = (self.min_log2, self.max_log2, self.gamma, self.offset_sdr, self.offset_hdr)
        if not all(math.isfinite(v) for v in (*values, self.base_headroom_log2, self.alternate_headroom_log2)):
            return "its metadata holds a value that is not a number"
        if self.max_log2 < self.min_log2:
            return "its largest gain is below its smallest"
        if self.gamma <= 0 or self.offset_sdr < 0 or self.offset_hdr < 0:
            return "its gamma or offsets are out of range"
        if self.base_headroom_log2 < 0 or self.alternate_headroom_log2 <= self.base_headroom_log2:
            return f"its headroom ({self.headroom:.2f}) gives no HDR"
        return ""


@dataclass(frozen=True)
class GainMap:
    """A gain map found in a file's header, and what it means."""

    item: isobmff.Item | None  # None for an Ultra HDR JPEG's map (``jpeg`` then holds it)
    kind: str  # "Apple", "Samsung", "ISO 21496-1", "Ultra HDR"
    metadata: Metadata | None
    origin: str  # where the metadata came from, for notes and probe()
    apple_headroom: float = 0.0  # set when the map's samples are Apple's linear gain (re-expressed on output)
    problem: str = ""  # why it cannot be carried, "" if it can
    size: tuple[int, int] = (0, 0)  # upright, as it is carried (see :func:`decode`)
    jpeg: bytes = b""  # an Ultra HDR JPEG's gain map, as it is stored (not upright)

    @property
    def headroom(self) -> float:
        return self.metadata.headroom if self.metadata is not None else 0.0

    def describe(self) -> str:
        w, h = self.size
        what = f"{self.kind} gain map" if self.kind.endswith("HDR") else f"{self.kind} HDR gain map"
        if self.metadata is None:
            return f"{what} {w}x{h} ({self.problem})"
        return f"{what} {w}x{h}, headroom {self.headroom:.2f} ({self.origin})"


def parse_iso(payload: bytes) -> Metadata:
    """ISO 21496-1 metadata as a JPEG APP2 segment carries it (after the namespace), or a ``tmap`` item
    without its leading version byte. Raises ``ValueError`` if it is malformed or multi-channel with
    differing channels (heicconv writes single-channel maps only).

    >>> m = parse_iso(bytes.fromhex("00000000" "40" "00000000" "00000001" "00000002" "00000001") + bytes.fromhex(
    ...     "00000000" "00000001" "00000002" "00000001" "00000001" "00000001" "00000000" "00000001" * 2))
    >>> m.max_log2, m.headroom, m.use_base_colour_space
    (2.0, 4.0, True)
    """
    if len(payload) < 5:
        raise ValueError("ISO 21496-1 metadata is truncated")
    min_version, _writer, flags = struct.unpack_from(">HHB", payload, 0)
    if min_version != 0:
        raise ValueError(f"ISO 21496-1 metadata of minimum version {min_version} (heicconv reads version 0)")
    channels = 3 if flags & 0x80 else 1
    common = bool(flags & 0x08)
    if flags & 0x04:
        raise ValueError("the ISO 21496-1 gain map makes an SDR picture from an HDR one (backward direction)")
    pos = 5

    def take(fmt: str) -> int:
        nonlocal pos
        if pos + 4 > len(payload):
            raise ValueError("ISO 21496-1 metadata is truncated")
        (value,) = struct.unpack_from(">" + fmt, payload, pos)
        pos += 4
        return int(value)

    def ratio(n: int, d: int) -> float:
        if d == 0:
            raise ValueError("ISO 21496-1 metadata has a zero denominator")
        return n / d

    if common:
        d = take("I")
        base, alternate = ratio(take("I"), d), ratio(take("I"), d)
        rows = [tuple(ratio(take(f), d) for f in "iiIii") for _ in range(channels)]
    else:
        base = ratio(take("I"), take("I"))
        alternate = ratio(take("I"), take("I"))
        rows = [
            tuple(ratio(take(f), take("I")) for f in "iiIii")  # numerator, then its denominator
            for _ in range(channels)
        ]
    if any(row != rows[0] for row in rows[1:]):
        raise ValueError("the ISO 21496-1 gain map has three channels with different metadata")
    lo, hi, gamma, off_sdr, off_hdr = rows[0]
    return Metadata(lo, hi, gamma, off_sdr, off_hdr, base, alternate, bool(flags & 0x40))


def apple_headroom(exif: bytes | None) -> float | None:
    """The headroom of an Apple gain map from the EXIF MakerNote (bare TIFF bytes), or ``None``.

    Apple's formula from tags 33 and 48 (signed rationals); a note with tag 33 and no tag 48 counts
    48 as 0, as Chrome (Skia) does: iPhones before iOS 17 wrote only 33.

    >>> round(_stops_to_headroom(0.8786, 0.0), 3), round(_stops_to_headroom(1.01, 0.498), 3)
    (3.482, 4.445)
    """
    note = _maker_note(exif) if exif else None
    if note is None or not note.startswith(b"Apple iOS\0") or len(note) < 16:
        return None
    e = ">" if note[12:14] == b"MM" else "<" if note[12:14] == b"II" else ""
    if not e:
        return None
    values = _ifd_rationals(note, 14, e, {33, 48})
    if 33 not in values:
        return None
    return _stops_to_headroom(values[33], values.get(48, 0.0))


def _stops_to_headroom(maker33: float, maker48: float) -> float:
    if maker33 < 1.0:
        stops = -20.0 * maker48 + 1.8 if maker48 <= 0.01 else -0.101 * maker48 + 1.601
    else:
        stops = -70.0 * maker48 + 3.0 if maker48 <= 0.01 else -0.303 * maker48 + 2.303
    return float(2.0 ** min(max(stops, 0.0), _MAX_STOPS))


def _maker_note(tiff: bytes) -> bytes | None:
    e = ">" if tiff[:4] == b"MM\0*" else "<" if tiff[:4] == b"II*\0" else ""
    if not e or len(tiff) < 8:
        return None
    ifd0 = struct.unpack_from(e + "I", tiff, 4)[0]
    exif_ifd = _ifd_entry(tiff, ifd0, e, _EXIF_IFD)
    if exif_ifd is None:
        return None
    found = _ifd_entry(tiff, struct.unpack_from(e + "I", tiff, exif_ifd + 8)[0], e, _MAKER_NOTE)
    if found is None:
        return None
    count, offset = struct.unpack_from(e + "II", tiff, found + 4)
    if count <= 4 or offset + count > len(tiff):
        return None
    return tiff[offset : offset + count]


def _ifd_entry(buf: bytes, ifd: int, e: str, tag: int) -> int | None:
    """Where the 12-byte entry of ``tag`` lies in the IFD at ``ifd``, bounds-checked."""
    if ifd + 2 > len(buf):
        return None
    for i in range(struct.unpack_from(e + "H", buf, ifd)[0]):
        at = ifd + 2 + 12 * i
        if at + 12 > len(buf):
            return None
        if struct.unpack_from(e + "H", buf, at)[0] == tag:
            return at
    return None


def _ifd_rationals(note: bytes, ifd: int, e: str, tags: set[int]) -> dict[int, float]:
    """Single signed or unsigned rationals of ``tags`` in an IFD whose offsets count from the note's start."""
    out: dict[int, float] = {}
    for tag in tags:
        at = _ifd_entry(note, ifd, e, tag)
        if at is None:
            continue
        kind, count, offset = struct.unpack_from(e + "HII", note, at + 2)
        if kind not in (5, 10) or count != 1 or offset + 8 > len(note):
            continue
        n, d = struct.unpack_from(e + ("ii" if kind == 10 else "II"), note, offset)
        if d:
            out[tag] = n / d
    return out


def hdrgm(xmp: bytes) -> Metadata | None:
    """``hdrgm`` attributes of an XMP packet (Adobe's gain map XMP, which Samsung writes on its map)."""
    import xml.etree.ElementTree as ET

    if b"<!DOCTYPE" in xmp or b"<!ENTITY" in xmp or _HDRGM.encode() not in xmp:
        return None
    try:
        start = xmp.find(b"<x:xmpmeta")
        end = xmp.rfind(b"</x:xmpmeta>")
        root = ET.fromstring(xmp[start : end + 12] if start >= 0 and end > start else xmp)
    except ET.ParseError:
        return None
    values: dict[str, str] = {}
    for element in root.iter():
        for key, value in element.attrib.items():
            if key.startswith("{" + _HDRGM + "}"):
                values[key.split("}", 1)[1]] = value
        if element.tag.startswith("{" + _HDRGM + "}") and element.text:
            values[element.tag.split("}", 1)[1]] = element.text
    if "GainMapMax" not in values or values.get("BaseRenditionIsHDR", "False").lower() == "true":
        return None
    try:

        def number(name: str, default: float) -> float:
            return float(values[name]) if name in values else default

        # Defaults as Adobe's specification gives them.
        hi = number("GainMapMax", 0.0)
        return Metadata(
            min_log2=number("GainMapMin", 0.0),
            max_log2=hi,
            gamma=number("Gamma", 1.0),
            offset_sdr=number("OffsetSDR", 1 / 64),
            offset_hdr=number("OffsetHDR", 1 / 64),
            base_headroom_log2=number("HDRCapacityMin", 0.0),
            alternate_headroom_log2=number("HDRCapacityMax", hi),
        )
    except ValueError:
        return None


def find(source: Source) -> GainMap | None:
    """The gain map of the selected image of ``source``, read from the header only, or ``None``."""
    c, item = source.container, source.item
    if c is None or item is None:
        return _find_jpeg(source) if source.info.format == "jpeg" else None
    found = _find(source, c, item)
    return None if found is None else _upright(found, item)


def _find(source: Source, c: isobmff.Container, item: isobmff.Item) -> GainMap | None:
    data = source.data
    tmap = next((t for t in c.items.values() if t.type == b"tmap" and t.refs.get(b"dimg", [])[:1] == [item.id]), None)
    aux = [c.items[a] for a in c.referring(b"auxl", item.id) if c.items[a].aux_type in (APPLE, SAMSUNG)]
    target: isobmff.Item | None = None
    if tmap is not None and len(tmap.refs[b"dimg"]) == 2 and tmap.refs[b"dimg"][1] in c.items:
        target = c.items[tmap.refs[b"dimg"][1]]
    elif aux:
        target = aux[0]
    if target is None:
        return None
    kind = {APPLE: "Apple", SAMSUNG: "Samsung"}.get(target.aux_type, "ISO 21496-1")
    broken = _damage(c, target, data)
    if broken:  # a damaged map would be decoded into streaks in the HDR rendering: the photo converts without it
        return GainMap(target, kind, None, "", problem=f"its coded data is damaged or missing: {broken}")
    if tmap is not None and target.id == tmap.refs[b"dimg"][1]:
        try:
            raw = c.item_data(tmap, data, limit=4096)
            if not raw or raw[0] != 0:
                raise ValueError(f"'tmap' version {raw[0] if raw else 'missing'}")
            meta = parse_iso(raw[1:])
        except Exception as exc:  # unreadable metadata: the photo still converts, without its map
            return GainMap(target, kind, None, "", problem=f"its ISO 21496-1 metadata cannot be read: {exc}")
        return _checked(GainMap(target, kind, meta, "ISO 21496-1 'tmap' item"))
    for m in c.metadata_of(target.id):
        if m.type == b"mime" and "rdf+xml" in m.content_type:
            try:
                meta_x = hdrgm(c.item_data(m, data, limit=1 << 20))
            except Exception:
                meta_x = None
            if meta_x is not None:
                return _checked(GainMap(target, kind, meta_x, "hdrgm XMP on the gain map"))
    if target.aux_type == APPLE:
        headroom = apple_headroom(source.exif)
        if headroom is None:
            return GainMap(target, kind, None, "", problem="no headroom: the EXIF MakerNote has no Apple HDR tags")
        meta_a = Metadata(0.0, math.log2(headroom), alternate_headroom_log2=math.log2(headroom))
        return _checked(GainMap(target, kind, meta_a, "Apple MakerNote tags 33 and 48", apple_headroom=headroom))
    return GainMap(target, kind, None, "", problem="no metadata says how to apply it")


def _find_jpeg(source: Source) -> GainMap | None:
    """The gain map of an Ultra HDR JPEG (heicconv writes them: :mod:`heicconv.container.ultrahdr`), or None."""
    found = read_ultra_hdr(source.data)
    if found is None:
        return None
    w, h = found.size
    size = (h, w) if source.orientation >= 5 else (w, h)  # stored as the photo is; its EXIF orientation turns both
    gm = GainMap(None, "Ultra HDR", found.metadata, found.origin, problem=found.problem, size=size, jpeg=found.jpeg)
    return _checked(gm)


def _damage(c: isobmff.Container, target: isobmff.Item, data: bytes) -> str:
    try:
        c.check_data(data, c.parts_of(target.id))
        return next((why for i in c.parts_of(target.id) if (why := c.damage(data, c.items[i]))), "")
    except DecodeError as exc:
        return str(exc)


def _checked(gm: GainMap) -> GainMap:
    why = gm.metadata.problem() if gm.metadata is not None else ""
    return dataclasses.replace(gm, metadata=None, problem=why) if why else gm


def own_transforms(item: isobmff.Item | None) -> bool:
    """Whether a map carries its own rotation or mirror (iPhones write them on it; libheif's encoder and
    Samsung phones on the photo only). A crop of its own is its own padding, not the photo's framing."""
    return item is not None and (bool(item.rotation) or item.mirror is not None)


def _upright(gm: GainMap, photo: isobmff.Item) -> GainMap:
    assert gm.item is not None
    w, h = gm.item.display_size
    if not own_transforms(gm.item) and photo.rotation in (90, 270):
        w, h = h, w
    return dataclasses.replace(gm, size=(w, h))


def apple_to_log(headroom: float) -> bytes:
    """A 256-entry table from Apple's gain map samples to ISO 21496-1 ones with ``min_log2=0``,
    ``max_log2=log2(headroom)``, ``gamma=1``: the same boost, ``1 + (headroom - 1) * g``, expressed as
    a power of two. ``g`` is the sample linearised with the Rec.709 curve, as Apple's article says.

    >>> table = apple_to_log(4.0)
    >>> table[0], table[255]
    (0, 255)
    """
    out = bytearray(256)
    top = math.log2(headroom)
    for code in range(256):
        v = code / 255
        g = v / 4.5 if v < 0.081 else ((v + 0.099) / 1.099) ** (1 / 0.45)
        out[code] = min(255, max(0, round(255 * math.log2(1 + (headroom - 1) * g) / top)))
    return bytes(out)


def map_size(gain: tuple[int, int], photo: tuple[int, int], output: tuple[int, int]) -> tuple[int, int]:
    """The gain map's size for an output of ``output`` from a photo of ``photo``: scaled as the photo was.

    >>> map_size((2016, 1512), (4032, 3024), (1024, 768))
    (512, 384)
    >>> map_size((2016, 1512), (4032, 3024), (4032, 3024))
    (2016, 1512)
    """
    if output == photo:
        return gain
    return (
        max(1, round(gain[0] * output[0] / photo[0])),
        max(1, round(gain[1] * output[1] / photo[1])),
    )


@dataclass(frozen=True)
class Found:
    """The gain map of an Ultra HDR JPEG: its JPEG, its size as stored, and its metadata (or why there is none)."""

    jpeg: bytes
    size: tuple[int, int]
    metadata: Metadata | None
    origin: str  # which segment the metadata came from
    problem: str = ""


def read_ultra_hdr(jpeg: bytes) -> Found | None:
    """The gain map an Ultra HDR JPEG carries (found by its MPF index, else by its XMP's directory), or None for a
    JPEG that says it has none. Only segments are read; nothing is decoded.

    >>> read_ultra_hdr(b"\\xff\\xd8\\xff\\xda\\x00\\x02\\xff\\xd9") is None
    True
    """
    try:
        segs, _ = segments(jpeg)
    except ValueError:
        return None
    xmp = next((p[len(XMP_NAMESPACE) :] for m, p in segs if m == 0xE1 and p.startswith(XMP_NAMESPACE)), b"")
    iso = any(m == 0xE2 and p.startswith(ISO_NAMESPACE) for m, p in segs)
    if not iso and _HDRGM.encode() not in xmp:
        return None
    gain_map = _by_mpf(jpeg) or _by_directory(jpeg, xmp)
    if gain_map is None:
        return Found(b"", (0, 0), None, "", problem="the JPEG says it has a gain map but holds none where it says")
    try:
        map_segments, _ = segments(gain_map)
    except ValueError as exc:
        return Found(b"", (0, 0), None, "", problem=f"its gain map JPEG is damaged: {exc}")
    frames = [struct.unpack(">HH", p[1:5]) for m, p in map_segments if m in _SOF and len(p) >= 5]
    size = (frames[0][1], frames[0][0]) if frames else (0, 0)
    for marker, payload in map_segments:
        if marker == 0xE2 and payload.startswith(ISO_NAMESPACE) and len(payload) > len(ISO_NAMESPACE) + 4:
            try:
                return Found(gain_map, size, parse_iso(payload[len(ISO_NAMESPACE) :]), "ISO 21496-1 APP2 segment")
            except ValueError as exc:
                return Found(gain_map, size, None, "", problem=f"its ISO 21496-1 metadata cannot be read: {exc}")
    map_xmp = next((p[len(XMP_NAMESPACE) :] for m, p in map_segments if m == 0xE1 and p.startswith(XMP_NAMESPACE)), b"")
    meta = hdrgm(map_xmp) if map_xmp else None
    if meta is not None:
        return Found(gain_map, size, meta, "hdrgm XMP on the gain map")
    return Found(gain_map, size, None, "", problem="no metadata says how to apply it")


#: Start-of-frame markers: the frame header gives the picture's size.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _by_mpf(jpeg: bytes) -> bytes | None:
    """The second image the MPF index lists (offsets count from the index's byte-order mark), if it is a JPEG."""
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and jpeg[pos + 1] not in (0xDA, 0xD9):
        (length,) = struct.unpack_from(">H", jpeg, pos + 2)
        if jpeg[pos + 1] == 0xE2 and jpeg[pos + 4 : pos + 8] == _MPF:
            base = pos + 8
            try:
                entries = _mp_entries(jpeg[base : pos + 2 + length])
            except (struct.error, ValueError):
                return None
            for size, offset in entries[1:2]:
                start = base + offset
                if offset and jpeg[start : start + 2] == b"\xff\xd8" and start + size <= len(jpeg):
                    return jpeg[start : start + size]
            return None
        pos += 2 + length
    return None


def _mp_entries(tiff: bytes) -> list[tuple[int, int]]:
    """(size, offset) of each MP entry of an MPF index (a TIFF structure, either byte order)."""
    order = {b"MM": ">", b"II": "<"}.get(tiff[:2])
    if order is None:
        raise ValueError("MPF index without a byte-order mark")
    (ifd,) = struct.unpack_from(order + "I", tiff, 4)
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for n in range(count):
        tag, _kind, length, value = struct.unpack_from(order + "HHII", tiff, ifd + 2 + 12 * n)
        if tag == 0xB002:
            return [
                (int(size), int(offset))
                for size, offset in (
                    struct.unpack_from(order + "4xII", tiff, value + 16 * k) for k in range(length // 16)
                )
            ]
    return []


def _by_directory(jpeg: bytes, xmp: bytes) -> bytes | None:
    """The gain map a ``Container:Directory`` places at the end of the file, by its ``Item:Length``."""
    found = re.search(rb'Item:Semantic="GainMap"[^>]*?Item:Length="(\d+)"', xmp)
    if found is None:
        return None
    length = int(found.group(1))
    start = len(jpeg) - length
    return jpeg[start:] if 0 < length < len(jpeg) and jpeg[start : start + 2] == b"\xff\xd8" else None


def segments(jpeg: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The marker segments of a JPEG before its first SOS, as ``(marker, payload)``, and the rest (SOS to EOI).

    >>> segs, rest = segments(b"\\xff\\xd8\\xff\\xe0\\x00\\x04ab\\xff\\xda\\x00\\x02\\xff\\xd9")
    >>> segs, rest
    ([(224, b'ab')], b'\\xff\\xda\\x00\\x02\\xff\\xd9')
    """
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    pos, out = 2, list[tuple[int, bytes]]()
    while pos + 4 <= len(jpeg):
        if jpeg[pos] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {pos}")
        marker = jpeg[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:
            return out, jpeg[pos:]
        (length,) = struct.unpack_from(">H", jpeg, pos + 2)
        if length < 2 or pos + 2 + length > len(jpeg):
            raise ValueError(f"JPEG segment at byte {pos} runs past the end")
        out.append((marker, jpeg[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    raise ValueError("JPEG without a scan (no SOS marker)")
