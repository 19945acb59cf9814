"""A small, defensive reader of the HEIF/AVIF container (ISO/IEC 23008-12).

It reads only the ``meta`` box: items, their properties and references. That
is enough to answer what a file holds (sizes, primary image, thumbnails, alpha,
colour, EXIF/XMP) without decoding a pixel, and to check limits before a
backend allocates anything. Every read is bounds-checked; anything malformed
raises ``DecodeError``.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

from ..errors import DecodeError
from .bitstream import av1_damage, av1_select_layer, hevc_damage, hevc_picture_size

__all__ = ["Container", "Item", "NewItem", "check_image", "cut_short", "parse", "sequence_only", "write"]

_TRANSFORMS = frozenset({b"clap", b"irot", b"imir"})  # transformative properties, applied in this order
# What selects and describes an AV1 image's layers; the data heicconv hands over holds the selected layer only.
_LAYER_PROPERTIES = frozenset({b"a1op", b"lsel", b"a1lx"})
_IMAGE_TYPES = frozenset({b"hvc1", b"av01", b"grid", b"iden", b"iovl", b"jpeg", b"unci", b"j2k1", b"vvc1"})
_ALPHA_URNS = ("urn:mpeg:hevc:2015:auxid:1", "urn:mpeg:mpegB:cicp:systems:auxiliary:alpha")
_DEPTH_URNS = ("urn:mpeg:hevc:2015:auxid:2", "urn:mpeg:mpegB:cicp:systems:auxiliary:depth")
_MAX_ITEMS = 100_000


@dataclass
class Item:
    """One item of the ``meta`` box, with the properties associated with it."""

    id: int
    type: bytes
    hidden: bool = False
    content_type: str = ""
    extents: list[tuple[int, int]] = field(default_factory=list)
    construction_method: int = 0
    base_offset: int = 0
    width: int = 0
    height: int = 0
    crop: tuple[int, int] | None = None  # clean-aperture size, from 'clap'
    crop_offset: tuple[Fraction, Fraction] = (Fraction(0), Fraction(0))  # its centre's offset from the picture's
    rotation: int = 0  # degrees anticlockwise, from 'irot'
    mirror: int | None = None  # 'imir' mode: 0 exchanges top and bottom, 1 left and right (HEIF Amd 2)
    icc: bytes | None = None
    nclx: tuple[int, int, int, bool] | None = None
    bit_depth: int = 0
    monochrome: bool = False
    chroma: int = 1  # chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
    grid: tuple[int, int, int, int] | None = None  # rows, columns, width, height of a 'grid' item
    coded_size: tuple[int, int] | None = None  # what the HEVC stream's own SPS says it decodes to
    nal_length_size: int = 4  # bytes before each NAL unit of an HEVC item's data, from 'hvcC'
    aux_type: str = ""
    operating_point: int = 0  # AV1 operating point to decode, from 'a1op'
    layer: int | None = None  # AV1 spatial layer to output, from 'lsel' (None: the operating point's highest)
    refs: dict[bytes, list[int]] = field(default_factory=dict)  # type -> ids this item refers to
    props: list[tuple[int, bool]] = field(default_factory=list)  # 'ipma': 1-based property index, essential

    def crop_box(self) -> tuple[int, int, int, int] | None:
        """The clean aperture as (left, top, right, bottom) in the coded picture, rounded as libheif rounds it."""
        if self.crop is None:
            return None
        (cw, ch), (dx, dy) = self.crop, self.crop_offset
        left = math.floor(dx + Fraction(self.width - 1, 2) - Fraction(cw - 1, 2))
        top = math.floor(dy + Fraction(self.height - 1, 2) - Fraction(ch - 1, 2))
        left, top = min(max(left, 0), max(0, self.width - cw)), min(max(top, 0), max(0, self.height - ch))
        return left, top, left + cw, top + ch

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height after the item's crop and rotation."""
        w, h = self.crop or (self.width, self.height)
        return (h, w) if self.rotation in (90, 270) else (w, h)


@dataclass
class Container:
    """What the ``meta`` box says about a HEIF/AVIF file."""

    brands: frozenset[bytes]
    primary_id: int
    items: dict[int, Item]
    top_level: list[int]  # ids of top-level images, in file order
    idat: bytes = b""
    # Where the property boxes lie in the original (start, end), for ``extract``.
    property_spans: list[tuple[int, int]] = field(default_factory=list)  # 'ipco' children, in order
    truncated: str = ""  # how the top-level boxes show the file was cut short, if they do

    def referring(self, ref_type: bytes, to_id: int) -> list[int]:
        """Ids of items that have a ``ref_type`` reference to ``to_id`` (thumbnails, alpha, metadata)."""
        return [i.id for i in self.items.values() if to_id in i.refs.get(ref_type, ())]

    def alpha_of(self, item_id: int) -> Item | None:
        for aux_id in self.referring(b"auxl", item_id):
            aux = self.items[aux_id]
            if aux.aux_type in _ALPHA_URNS:
                return aux
        return None

    def depth_of(self, item_id: int) -> list[Item]:
        return [self.items[a] for a in self.referring(b"auxl", item_id) if self.items[a].aux_type in _DEPTH_URNS]

    def thumbnails_of(self, item_id: int) -> list[Item]:
        return [self.items[t] for t in self.referring(b"thmb", item_id) if self.items[t].type in _IMAGE_TYPES]

    def metadata_of(self, item_id: int) -> list[Item]:
        """Metadata items (EXIF, XMP) describing ``item_id``; unattached ones count for the primary."""
        found = [self.items[m] for m in self.referring(b"cdsc", item_id)]
        if not found and item_id == self.primary_id:
            found = [i for i in self.items.values() if i.type in (b"Exif", b"mime") and not i.refs]
        return found

    def item_data(self, item: Item, data: bytes, limit: int = 64 * 1024 * 1024) -> bytes:
        """The bytes of an item (from ``mdat`` or ``idat``), bounds-checked."""
        source = self.idat if item.construction_method == 1 else data
        chunks = []
        total = 0
        for start, end in self._extents(item, data):
            total += end - start
            if total > limit:
                raise DecodeError(f"item {item.id} is larger than {limit} bytes")
            chunks.append(source[start:end])
        return b"".join(chunks)

    def check_data(self, data: bytes, ids: list[int]) -> None:
        """Raise ``DecodeError`` if any of these items' data is not all in ``data`` (a truncated file)."""
        for i in ids:
            if i in self.items:
                for _ in self._extents(self.items[i], data):
                    pass

    def _extents(self, item: Item, data: bytes) -> Iterator[tuple[int, int]]:
        """(start, end) of each extent of ``item`` in ``data`` (or in 'idat'), checked to lie inside it."""
        if item.construction_method not in (0, 1):
            raise DecodeError(f"item {item.id} uses an unsupported iloc construction method")
        source = self.idat if item.construction_method == 1 else data
        for offset, length in item.extents:
            start = item.base_offset + offset
            end = len(source) if length == 0 else start + length
            if item.construction_method == 0 and 0 <= start <= end and end > len(source):
                if self.truncated:
                    raise DecodeError(f"the file is truncated: {self.truncated}")
                raise DecodeError(
                    f"the file is truncated or damaged: item {item.id}'s data runs to byte {end:,} but the file "
                    f"ends at byte {len(source):,}"
                )
            if start < 0 or end > len(source) or start > end:
                where = "its 'idat' box" if item.construction_method == 1 else "the file"
                raise DecodeError(f"item {item.id} points outside {where} (bytes {start}-{end} of {len(source)})")
            yield start, end

    def damage(self, data: bytes, item: Item) -> str:
        """What breaks the framing of a coded item's data (HEVC NAL units, AV1 OBUs), or ``""``.

        Call :meth:`check_data` first: the data must be in the file. Other item types are not read here.
        """
        if item.type == b"hvc1":
            return hevc_damage(self.item_data(item, data, limit=len(data) + len(self.idat)), item.nal_length_size)
        if item.type == b"av01":
            return av1_damage(self.item_data(item, data, limit=len(data) + len(self.idat)))
        return ""

    def check_coded(self, data: bytes, ids: list[int], fmt: str) -> None:
        """Raise ``DecodeError`` if the coded data of any of these items (an image and its parts, as
        :meth:`parts_of` lists them) is damaged (see :meth:`damage`)."""
        for i in ids:
            why = self.damage(data, self.items[i]) if i in self.items else ""
            if why:
                role = self._role(i, ids)
                raise DecodeError(f"the {fmt.upper()} file is damaged: {role}'s coded data is broken: {why}")

    def _role(self, item_id: int, ids: list[int]) -> str:
        if item_id == ids[0]:
            return "the image"
        for grid in ids:
            tiles = self.items[grid].refs.get(b"dimg", []) if grid in self.items else []
            if item_id in tiles:
                return f"tile {tiles.index(item_id) + 1} of {len(tiles)} (item {item_id})"
        if self.items[item_id].aux_type in _ALPHA_URNS:
            return f"the alpha plane (item {item_id})"
        return f"item {item_id}"

    def parts_of(self, item_id: int) -> list[int]:
        """``item_id`` and every item a decoder needs to produce it, in that order.

        That is the items it is derived from (grid tiles, overlay inputs) and the alpha plane of each
        (an overlay's inputs may have their own). Nothing else in the file is needed.
        """
        wanted = [item_id]
        seen: list[int] = []
        while wanted:
            current = wanted.pop(0)
            if current in seen or current not in self.items:
                continue
            seen.append(current)
            wanted.extend(self.items[current].refs.get(b"dimg", []))
            alpha_item = self.alpha_of(current)
            if alpha_item is not None:
                wanted.append(alpha_item.id)
        return seen

    def extract(self, data: bytes, item_id: int, *, drop: frozenset[bytes] = frozenset()) -> bytes:
        """A new HEIF file that holds only ``item_id`` (as its primary image), its parts and its alpha planes.

        Decoders then see one image and the properties it needs, none of the auxiliary images,
        metadata, groups or derived items (gain maps, mattes, 'tmap') that older libheif versions
        refuse; the image may have been hidden, a thumbnail or an alpha plane. Every part's data
        is bounds-checked, so a truncated file fails here, before any decoder runs. Properties of a type in
        ``drop`` (``imir``, for a decoder that cannot apply it) are left out, for the caller to apply.
        """
        return write(self.copy_items(data, item_id, drop=drop), item_id)

    def copy_items(self, data: bytes, item_id: int, *, drop: frozenset[bytes] = frozenset()) -> list[NewItem]:
        """``item_id`` and its parts (:meth:`parts_of`) as items to :func:`write`, their data read from ``data``,
        without properties of the types in ``drop``."""
        ids = self.parts_of(item_id)
        keep = set(ids)
        parts = []
        for i in ids:
            item = self.items[i]
            coded = self.item_data(item, data, limit=len(data) + len(self.idat))
            left_out = drop
            if item.type == b"av01":
                coded = self._selected_layer(item, coded)
                left_out = drop | _LAYER_PROPERTIES
            parts.append(
                NewItem(
                    i,
                    item.type,
                    coded,
                    [
                        (bytes(data[a:b]), essential)
                        for a, b, essential in self._property_boxes(item, data)
                        if bytes(data[a + 4 : a + 8]) not in left_out
                    ],
                    parts=item.refs.get(b"dimg", []),
                    aux_of=[t for t in item.refs.get(b"auxl", []) if t in keep],  # an alpha plane of a kept image
                    # Only the new primary is shown, so it is the one top-level image whatever a decoder
                    # lists (even an alpha plane decoded on its own); its parts are hidden, as tiles are.
                    hidden=i != item_id,
                )
            )
        return parts

    @staticmethod
    def _selected_layer(item: Item, coded: bytes) -> bytes:
        """A layered AV1 image's data cut to the layer its 'a1op'/'lsel' select (``bitstream.av1_select_layer``):
        libheif 1.15 ignores both and outputs the top layer, larger than the image's 'ispe' says."""
        try:
            return av1_select_layer(coded, item.operating_point, item.layer)
        except ValueError as exc:
            raise DecodeError(f"item {item.id}'s AV1 layers do not hold together: {exc}") from exc

    def _property_boxes(self, item: Item, data: bytes) -> list[tuple[int, int, bool]]:
        """Where ``item``'s property boxes are, with ``essential``; an alpha plane coded at its image's size
        gets the image's crop, rotation and mirror (see :meth:`alpha_follows_image`)."""
        own = [(*self.property_spans[index - 1], essential) for index, essential in item.props]
        master = self.master_of(item)
        if master is None or not self.alpha_follows_image(item, master):
            return own
        kept = [p for p in own if bytes(data[p[0] + 4 : p[0] + 8]) not in _TRANSFORMS]
        return kept + [p for p in self._property_boxes(master, data) if bytes(data[p[0] + 4 : p[0] + 8]) in _TRANSFORMS]

    def master_of(self, item: Item) -> Item | None:
        """The image whose alpha plane ``item`` is, if it is one."""
        if item.aux_type not in _ALPHA_URNS:
            return None
        masters = [self.items[t] for t in item.refs.get(b"auxl", []) if t in self.items]
        return masters[0] if masters else None

    @staticmethod
    def alpha_follows_image(alpha: Item, image: Item) -> bool:
        """Whether an alpha plane is coded like its image, so the image's crop, rotation and mirror apply to it.

        Cameras repeat the image's transforms on the alpha plane; libheif's own encoder writes them on the
        image only. Either way the plane is coded at the image's coded size, and is shown as the image is.
        """
        return (alpha.width, alpha.height) == (image.width, image.height)


@dataclass
class NewItem:
    """An image item for :func:`write`: its coded data and its property boxes (whole, with ``essential``)."""

    id: int
    type: bytes
    data: bytes
    properties: list[tuple[bytes, bool]]
    parts: list[int] = field(default_factory=list)  # 'dimg': the items it is derived from (grid tiles)
    aux_of: list[int] = field(default_factory=list)  # 'auxl': the images it is an auxiliary image of
    hidden: bool = True
    describes: list[int] = field(default_factory=list)  # 'cdsc': for metadata items (Exif, mime)
    thumbnail_of: list[int] = field(default_factory=list)  # 'thmb': the images it is a thumbnail of
    content_type: bytes = b""  # for 'mime' items


def write(items: list[NewItem], primary: int, *, brands: tuple[bytes, ...] | None = None) -> bytes:
    """A HEIF file of ``items`` (``primary`` shown, the rest as each item says), data in one ``mdat``.

    Identical property boxes are stored once. ``brands`` defaults to what the items are: HEVC or AV1
    still images (not the original's brands, which may promise an image sequence that is not there).
    """
    wide = max(i.id for i in items) > 0xFFFF
    if brands is None:
        brands = _still_image_brands(items)
    ftyp = _box(b"ftyp", brands[0] + b"\0\0\0\0" + b"".join(brands[1:]))
    head = _meta_head(items, primary, wide)
    # The data's offsets depend on the 'meta' box's size, which does not depend on their values.
    at = len(ftyp) + len(_meta(head, items, [0] * len(items), wide)) + 16  # 16: the mdat header, with a 64-bit size
    offsets = []
    for item in items:
        offsets.append(at)
        at += len(item.data)
    mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + sum(len(i.data) for i in items))
    return b"".join([ftyp, _meta(head, items, offsets, wide), mdat, *(i.data for i in items)])


def _still_image_brands(items: list[NewItem]) -> tuple[bytes, ...]:
    coded = {i.type for i in items}
    brand = b"avif" if b"av01" in coded else b"heic" if b"hvc1" in coded else b"mif1"
    return (brand, b"mif1", brand) if brand != b"mif1" else (b"mif1", b"mif1")


def _meta_head(items: list[NewItem], primary: int, wide: bool) -> bytes:
    """Every box of the 'meta' box but the last, 'iloc': handler, data reference, primary, items, references,
    properties."""
    infes = [
        _full_box(
            b"infe",
            3 if wide else 2,
            1 if i.hidden and i.id != primary else 0,
            _id(i.id, wide) + b"\0\0" + i.type + b"\0" + (i.content_type + b"\0" if i.type == b"mime" else b""),
        )
        for i in items
    ]
    refs = _references(items, wide)
    return b"".join(
        [
            _full_box(b"hdlr", 0, 0, b"\0" * 4 + b"pict" + b"\0" * 13),
            _DINF,
            _full_box(b"pitm", 1 if wide else 0, 0, _id(primary, wide)),
            _full_box(b"iinf", 1 if wide else 0, 0, _count(len(infes), wide) + b"".join(infes)),
            _full_box(b"iref", 1 if wide else 0, 0, b"".join(refs)) if refs else b"",
            _properties(items, wide),
        ]
    )


def _references(items: list[NewItem], wide: bool) -> list[bytes]:
    """The 'iref' entries: tiles, auxiliary images, metadata and thumbnails, item by item."""
    return [
        _box(kind, _id(item.id, wide) + struct.pack(">H", len(targets)) + b"".join(_id(t, wide) for t in targets))
        for item in items
        for kind, targets in (
            (b"dimg", item.parts),
            (b"auxl", item.aux_of),
            (b"cdsc", item.describes),
            (b"thmb", item.thumbnail_of),
        )
        if targets
    ]


def _properties(items: list[NewItem], wide: bool) -> bytes:
    """The 'iprp' box: each distinct property box once ('ipco'), and which items have which ('ipma')."""
    boxes: list[bytes] = []
    index: dict[bytes, int] = {}
    for item in items:
        for raw, _ in item.properties:
            if raw not in index:
                boxes.append(raw)
                index[raw] = len(boxes)
    big_index = len(boxes) > 127
    entries = []
    for item in sorted(items, key=lambda i: i.id):  # 'ipma' lists items by increasing id (libavif insists)
        cells = b"".join(
            struct.pack(">H", index[raw] | (0x8000 if essential else 0))
            if big_index
            else struct.pack(">B", index[raw] | (0x80 if essential else 0))
            for raw, essential in item.properties
        )
        entries.append(_id(item.id, wide) + struct.pack(">B", len(item.properties)) + cells)
    ipma = _full_box(
        b"ipma", 1 if wide else 0, 1 if big_index else 0, struct.pack(">I", len(items)) + b"".join(entries)
    )
    return _box(b"iprp", _box(b"ipco", b"".join(boxes)) + ipma)


def _meta(head: bytes, items: list[NewItem], offsets: list[int], wide: bool) -> bytes:
    """The 'meta' box: ``head``, then 'iloc' with one extent per item at ``offsets``."""
    # 64-bit offsets and lengths; version 2 adds the construction method field.
    extent, fields = (">HHHQQ", (0, 0, 1)) if wide else (">HHQQ", (0, 1))
    extents = b"".join(
        _id(i.id, wide) + struct.pack(extent, *fields, off, len(i.data)) for i, off in zip(items, offsets, strict=True)
    )
    iloc = _full_box(b"iloc", 2 if wide else 0, 0, b"\x88\x00" + _count(len(items), wide) + extents)
    return _full_box(b"meta", 0, 0, head + iloc)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _id(item_id: int, wide: bool) -> bytes:
    return struct.pack(">I" if wide else ">H", item_id)


def _count(n: int, wide: bool) -> bytes:
    return struct.pack(">I" if wide else ">H", n)


#: A data-information box that says every item's data is in this file.
_DINF = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1) + _full_box(b"url ", 0, 1, b"")))


class _Reader:
    __slots__ = ("buf", "end", "pos", "start")

    def __init__(self, buf: bytes | memoryview, pos: int = 0, end: int | None = None, start: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.start = pos if start is None else start  # where the box begins, header included

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise DecodeError("the HEIF header is truncated or a box size is wrong")

    def u8(self) -> int:
        self.need(1)
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def u16(self) -> int:
        self.need(2)
        v: int = struct.unpack_from(">H", self.buf, self.pos)[0]
        self.pos += 2
        return v

    def u32(self) -> int:
        self.need(4)
        v: int = struct.unpack_from(">I", self.buf, self.pos)[0]
        self.pos += 4
        return v

    def uint(self, size: int) -> int:
        if size == 0:
            return 0
        if size not in (1, 2, 4, 8):
            raise DecodeError(f"invalid field size {size} in the HEIF header")
        self.need(size)
        v = int.from_bytes(self.buf[self.pos : self.pos + size], "big")
        self.pos += size
        return v

    def raw(self, n: int) -> bytes:
        self.need(n)
        v = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return v

    def cstring(self) -> str:
        raw = bytes(self.buf[self.pos : self.end])
        nul = raw.find(b"\0")
        if nul < 0:
            self.pos = self.end
            return raw.decode("utf-8", "replace")
        self.pos += nul + 1
        return raw[:nul].decode("utf-8", "replace")

    def full_box(self) -> tuple[int, int]:
        v = self.u32()
        return v >> 24, v & 0xFFFFFF

    def boxes_lenient(self) -> Iterator[tuple[bytes, _Reader]]:
        """:meth:`boxes`, stopping quietly at the first malformed one."""
        try:
            yield from self.boxes()
        except DecodeError:
            return

    def boxes(self) -> Iterator[tuple[bytes, _Reader]]:
        """Split the rest of this reader into child boxes, lazily."""
        while self.pos < self.end:
            start = self.pos
            size = self.u32()
            kind = self.raw(4)
            header = 8
            if size == 1:
                size = self.uint(8)
                header = 16
            elif size == 0:
                size = self.end - start
            if size < header or start + size > self.end:
                raise DecodeError(f"box {kind!r} at byte {start} claims {size} bytes, beyond its parent")
            self.pos = start + size
            yield kind, _Reader(self.buf, start + header, start + size, start)


def sequence_only(data: bytes) -> bool:
    """Whether the file holds an image sequence (a 'moov' track) and no still image (no 'meta' box)."""
    kinds = {kind for kind, _ in _Reader(memoryview(data)).boxes_lenient()}
    return b"moov" in kinds and b"meta" not in kinds


def parse(data: bytes) -> Container:
    """Read the ``ftyp`` and ``meta`` boxes of a HEIF/AVIF file."""
    top = _Reader(memoryview(data))
    ftyp: _Reader | None = None
    meta: _Reader | None = None
    for kind, box in top.boxes():
        if kind == b"ftyp":
            ftyp = box
        elif kind == b"meta":
            meta = box
            break  # everything needed is before or in 'meta'; mdat is read by offset
    if ftyp is None:
        raise DecodeError("not a HEIF file: no 'ftyp' box")
    if meta is None:
        raise DecodeError("the HEIF file has no 'meta' box (truncated or not an image file)")
    major = ftyp.raw(4)
    ftyp.u32()
    brands = {major}
    while ftyp.end - ftyp.pos >= 4:
        brands.add(ftyp.raw(4))
    container = _parse_meta(meta, frozenset(brands), data)
    container.truncated = cut_short(data)
    return container


#: Top-level boxes a HEIF/AVIF file is made of; one that claims more bytes than the file has means
#: the file was cut short. Other data after the image (an appended video, padding) is not judged.
_FILE_BOXES = frozenset({b"ftyp", b"meta", b"mdat", b"moov", b"free", b"skip", b"uuid", b"idat", b"sefd", b"mpvd"})


def cut_short(data: bytes) -> str:
    """Why the file's top-level boxes say it is incomplete, or "" if they do not."""
    pos = 0
    while len(data) - pos >= 8:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            if len(data) - pos < 16:
                break
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        elif size == 0:  # runs to the end of the file, whatever its length
            break
        if kind not in _FILE_BOXES or size < 8:
            break
        if pos + size > len(data):
            name = kind.decode("latin-1")
            return f"its '{name}' box at byte {pos:,} declares {size:,} bytes but only {len(data) - pos:,} are there"
        pos += size
    return ""


def _parse_meta(meta: _Reader, brands: frozenset[bytes], data: bytes) -> Container:
    meta.full_box()
    children = dict(meta.boxes())  # a malformed sibling after 'meta' is the decoder's business
    if b"iinf" not in children or b"pitm" not in children:
        raise DecodeError("the HEIF 'meta' box has no item list or no primary item")
    items = _parse_iinf(children[b"iinf"])
    pitm = children[b"pitm"]
    version, _ = pitm.full_box()
    primary = pitm.u16() if version == 0 else pitm.u32()
    if primary not in items:
        raise DecodeError(f"the primary item {primary} is not in the item list")
    if b"iloc" in children:
        _parse_iloc(children[b"iloc"], items)
    if b"iref" in children:
        _parse_iref(children[b"iref"], items)
    property_spans = _parse_iprp(children[b"iprp"], items) if b"iprp" in children else []
    idat = bytes(children[b"idat"].raw(children[b"idat"].end - children[b"idat"].pos)) if b"idat" in children else b""
    container = Container(
        brands,
        primary,
        items,
        [],
        idat,
        property_spans=property_spans,
    )
    for item in items.values():
        if item.type == b"grid":
            _grid_header(container, item, data)
        tile = items.get(item.refs[b"dimg"][0]) if item.refs.get(b"dimg") else None
        if tile is not None:
            # A derived image (grid, overlay) takes what it does not say itself from its first tile, as libheif
            # does; its chroma always (it has no codec configuration of its own, even when 'pixi' gives a depth).
            item.bit_depth = item.bit_depth or tile.bit_depth
            item.monochrome, item.chroma = tile.monochrome, tile.chroma
            if item.icc is None and item.nclx is None:
                item.icc, item.nclx = tile.icc, tile.nclx
    primary_item = items[primary]
    if b"thmb" in primary_item.refs and primary_item.refs[b"thmb"][0] in items:
        # The primary claims to be a thumbnail of another image: that image is the real primary.
        container.primary_id = primary_item.refs[b"thmb"][0]
    container.top_level = _top_level(container)
    if container.primary_id not in container.top_level:
        raise DecodeError(f"the primary item {container.primary_id} is not a displayable image")
    return container


def _parse_iinf(box: _Reader) -> dict[int, Item]:
    version, _ = box.full_box()
    count = box.u16() if version == 0 else box.u32()
    if count > _MAX_ITEMS:
        raise DecodeError(f"the HEIF file declares {count} items")
    items: dict[int, Item] = {}
    for kind, infe in box.boxes():
        if kind != b"infe":
            continue
        v, flags = infe.full_box()
        if v < 2:
            continue  # version 0/1 entries describe no image items
        item_id = infe.u16() if v == 2 else infe.u32()
        infe.u16()  # protection index
        item_type = infe.raw(4)
        infe.cstring()  # name
        content_type = infe.cstring() if item_type == b"mime" else ""
        items[item_id] = Item(item_id, item_type, hidden=bool(flags & 1), content_type=content_type)
    return items


def _parse_iloc(box: _Reader, items: dict[int, Item]) -> None:
    version, _ = box.full_box()
    sizes = box.u16()
    offset_size, length_size = sizes >> 12, (sizes >> 8) & 0xF
    base_offset_size, index_size = (sizes >> 4) & 0xF, sizes & 0xF
    count = box.u16() if version < 2 else box.u32()
    if count > _MAX_ITEMS:
        raise DecodeError(f"the HEIF file locates {count} items")
    for _ in range(count):
        item_id = box.u16() if version < 2 else box.u32()
        method = box.u16() & 0xF if version in (1, 2) else 0
        box.u16()  # data reference index
        base = box.uint(base_offset_size)
        extent_count = box.u16()
        extents = []
        for _ in range(extent_count):
            if version in (1, 2) and index_size:
                box.uint(index_size)
            extents.append((box.uint(offset_size), box.uint(length_size)))
        item = items.get(item_id)
        if item is not None:
            item.construction_method, item.base_offset, item.extents = method, base, extents


def _parse_iref(box: _Reader, items: dict[int, Item]) -> None:
    version, _ = box.full_box()
    for kind, ref in box.boxes():
        from_id = ref.u16() if version == 0 else ref.u32()
        count = ref.u16()
        to_ids = [ref.u16() if version == 0 else ref.u32() for _ in range(count)]
        if from_id in items:
            items[from_id].refs.setdefault(kind, []).extend(to_ids)


def _parse_iprp(box: _Reader, items: dict[int, Item]) -> list[tuple[int, int]]:
    """Apply each item's properties; return where every property box lies, in 'ipco' order."""
    children = list(box.boxes())
    ipco = next((b for k, b in children if k == b"ipco"), None)
    if ipco is None:
        return []
    props = list(ipco.boxes())
    for kind, ipma in children:
        if kind != b"ipma":
            continue
        version, flags = ipma.full_box()
        for _ in range(ipma.u32()):
            item_id = ipma.u16() if version < 1 else ipma.u32()
            for _ in range(ipma.u8()):
                entry = ipma.u16() if flags & 1 else ipma.u8()
                essential = bool(entry & (0x8000 if flags & 1 else 0x80))
                index = entry & (0x7FFF if flags & 1 else 0x7F)
                item = items.get(item_id)
                if index == 0 or item is None:
                    continue
                if index > len(props):
                    raise DecodeError(f"item {item_id} refers to property {index} of {len(props)}")
                item.props.append((index, essential))
                pkind, prop = props[index - 1]
                _apply_property(item, pkind, _Reader(prop.buf, prop.pos, prop.end))
    return [(prop.start, prop.end) for _, prop in props]


def _apply_property(item: Item, kind: bytes, prop: _Reader) -> None:
    if kind == b"ispe":
        prop.full_box()
        item.width, item.height = prop.u32(), prop.u32()
    elif kind == b"clap":
        wn, wd, hn, hd = prop.u32(), prop.u32(), prop.u32(), prop.u32()
        if not (wd and hd) or wn // wd < 1 or hn // hd < 1:
            raise DecodeError(f"item {item.id} has an invalid clean aperture")
        item.crop = (wn // wd, hn // hd)
        if prop.end - prop.pos >= 16:  # the offsets are signed
            xn, xd, yn, yd = (
                struct.unpack(">i", prop.raw(4))[0],
                prop.u32(),
                struct.unpack(">i", prop.raw(4))[0],
                prop.u32(),
            )
            item.crop_offset = (Fraction(xn, xd or 1), Fraction(yn, yd or 1))
    elif kind == b"irot":
        item.rotation = (prop.u8() & 3) * 90
    elif kind == b"imir":
        item.mirror = prop.u8() & 1
    elif kind == b"colr":
        colour_type = prop.raw(4)
        if colour_type in (b"prof", b"rICC"):
            item.icc = prop.raw(prop.end - prop.pos)
        elif colour_type == b"nclx":
            item.nclx = (prop.u16(), prop.u16(), prop.u16(), bool(prop.u8() & 0x80))
    elif kind == b"pixi":
        prop.full_box()
        channels = prop.u8()
        depths = [prop.u8() for _ in range(channels)]
        if depths:
            item.bit_depth = max(depths)
    elif kind == b"hvcC":
        prop.need(19)
        try:
            item.coded_size = _coded_size(bytes(prop.buf[prop.pos : prop.end]))
        except ValueError as exc:
            raise DecodeError(f"item {item.id}'s HEVC configuration is malformed: {exc}") from exc
        item.chroma = prop.buf[prop.pos + 16] & 3
        item.nal_length_size = (prop.buf[prop.pos + 21] & 3) + 1 if prop.end - prop.pos > 21 else 4
        item.monochrome = item.chroma == 0
        item.bit_depth = item.bit_depth or (prop.buf[prop.pos + 17] & 7) + 8
    elif kind == b"av1C":
        prop.need(3)
        flags = prop.buf[prop.pos + 2]
        item.monochrome = bool(flags & 0x10)
        subsampling = (flags >> 2) & 3  # chroma_subsampling_x, chroma_subsampling_y
        item.chroma = 0 if item.monochrome else {3: 1, 2: 2}.get(subsampling, 3)
        item.bit_depth = item.bit_depth or (12 if flags & 0x20 else 10 if flags & 0x40 else 8)
    elif kind == b"a1op":
        item.operating_point = prop.u8()
    elif kind == b"lsel":
        layer = prop.u16()
        item.layer = None if layer == 0xFFFF else layer
    elif kind == b"auxC":
        prop.full_box()
        item.aux_type = prop.cstring()


def _grid_header(container: Container, item: Item, data: bytes) -> None:
    raw = _Reader(container.item_data(item, data, 64))
    raw.u8()
    flags = raw.u8()
    rows, cols = raw.u8() + 1, raw.u8() + 1
    size = 4 if flags & 1 else 2
    width, height = raw.uint(size), raw.uint(size)
    item.grid = (rows, cols, width, height)
    if not (item.width and item.height):
        item.width, item.height = width, height


@functools.lru_cache(maxsize=64)
def _coded_size(hvcc: bytes) -> tuple[int, int] | None:
    return hevc_picture_size(hvcc)  # tiles share one 'hvcC': parse it once


def _check_coded_size(item: Item, role: str) -> None:
    if item.coded_size is not None and item.coded_size != (item.width, item.height):
        raise DecodeError(
            "the {}'s HEVC stream codes a {}x{} picture but its header ('ispe') declares {}x{}".format(
                role, *item.coded_size, item.width, item.height
            )
        )


def check_image(c: Container, item: Item, role: str = "image") -> None:
    """Refuse an image whose parts disagree: grid tiles that do not tile its size, tiles of other sizes,
    a coded picture of another size than the header declares.

    Decoders given such a file allocate what the stream or the header claims, or loop on it, before they fail.
    """
    _check_coded_size(item, role)
    if item.type == b"grid":
        if item.grid is None:
            raise DecodeError(f"the {role} is a grid without a grid description")
        rows, cols, width, height = item.grid
        tiles = item.refs.get(b"dimg", [])
        if len(tiles) != rows * cols or not all(t in c.items for t in tiles):
            raise DecodeError(f"the {role} is a {cols}x{rows} grid with {len(tiles)} tile(s)")
        for t in tiles:
            _check_coded_size(c.items[t], f"{role}'s tile")
        sizes = {(c.items[t].width, c.items[t].height) for t in tiles}
        if len(sizes) != 1:
            raise DecodeError(f"the {role}'s grid tiles differ in size ({len(sizes)} sizes)")
        tw, th = sizes.pop()
        if not (tw * (cols - 1) < width <= tw * cols and th * (rows - 1) < height <= th * rows):
            raise DecodeError(
                f"the {role}'s {cols}x{rows} tiles of {tw}x{th} do not make its declared {width}x{height}"
            )
        if (item.width, item.height) != (width, height):
            raise DecodeError(f"the {role}'s grid says {width}x{height} but its 'ispe' says {item.width}x{item.height}")
    elif item.type == b"iovl" or item.type == b"iden":
        for ref in item.refs.get(b"dimg", []):
            part = c.items.get(ref)
            if part is None:
                raise DecodeError(f"the {role} refers to a missing item {ref}")
            if part.width * part.height > 4 * max(1, item.width * item.height):
                raise DecodeError(f"the {role}'s input {ref} is far larger than the {role} itself")


def _top_level(c: Container) -> list[int]:
    """Visible images that are neither thumbnails, auxiliary images nor grid tiles, by item id (as libheif lists
    them). A tile some writers leave visible is still only a part of its grid."""
    tiles = {t for i in c.items.values() if i.type == b"grid" for t in i.refs.get(b"dimg", [])}
    return sorted(
        i.id
        for i in c.items.values()
        if i.type in _IMAGE_TYPES
        and not i.hidden
        and b"thmb" not in i.refs
        and b"auxl" not in i.refs
        and i.id not in tiles
    )
