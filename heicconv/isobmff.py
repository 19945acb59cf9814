"""A small, defensive reader of the HEIF/AVIF container (ISO/IEC 23008-12).

It reads only the ``meta`` box: items, their properties and references. That
is enough to answer what a file holds (sizes, primary image, thumbnails, alpha,
colour, EXIF/XMP) without decoding a pixel, and to check limits before a
backend allocates anything. Every read is bounds-checked; anything malformed
raises ``DecodeError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import DecodeError

__all__ = ["Container", "Item", "check_image", "parse"]

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
    rotation: int = 0  # degrees anticlockwise, from 'irot'
    mirror: int | None = None  # 'imir' axis: 0 = vertical axis (left-right), 1 = horizontal axis
    icc: bytes | None = None
    nclx: tuple[int, int, int, bool] | None = None
    bit_depth: int = 0
    monochrome: bool = False
    chroma: int = 1  # chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
    grid: tuple[int, int, int, int] | None = None  # rows, columns, width, height of a 'grid' item
    aux_type: str = ""
    refs: dict[bytes, list[int]] = field(default_factory=dict)  # type -> ids this item refers to

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height after the item's crop and rotation."""
        w, h = self.crop or (self.width, self.height)
        return (h, w) if self.rotation in (90, 270) else (w, h)


@dataclass
class Container:
    """What the ``meta`` box says about a HEIF/AVIF file."""

    major_brand: bytes
    brands: frozenset[bytes]
    primary_id: int
    items: dict[int, Item]
    top_level: list[int]  # ids of top-level images, in file order
    idat: bytes = b""
    pitm_field: tuple[int, int] = (0, 0)  # byte offset and size of the primary item id, for rewriting it

    def with_primary(self, data: bytes, item_id: int) -> bytes:
        """``data`` with ``pitm`` pointing at ``item_id`` (same length), for decoders that read only the primary."""
        offset, size = self.pitm_field
        if int.from_bytes(data[offset : offset + size], "big") == item_id:
            return data  # already the primary: no copy of the file
        if item_id >= 1 << (8 * size):
            raise DecodeError(f"item id {item_id} does not fit the file's primary-item field")
        return data[:offset] + item_id.to_bytes(size, "big") + data[offset + size :]

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
        if item.construction_method not in (0, 1):
            raise DecodeError(f"item {item.id} uses an unsupported iloc construction method")
        chunks = []
        total = 0
        for offset, length in item.extents:
            start = item.base_offset + offset
            end = len(source) if length == 0 else start + length
            if start < 0 or end > len(source) or start > end:
                raise DecodeError(f"item {item.id} points outside the file (bytes {start}-{end} of {len(source)})")
            total += end - start
            if total > limit:
                raise DecodeError(f"item {item.id} is larger than {limit} bytes")
            chunks.append(source[start:end])
        return b"".join(chunks)


class _Reader:
    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

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
            yield kind, _Reader(self.buf, start + header, start + size)


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
    return _parse_meta(meta, major, frozenset(brands), data)


def _parse_meta(meta: _Reader, major: bytes, brands: frozenset[bytes], data: bytes) -> Container:
    meta.full_box()
    children = dict(meta.boxes())  # a malformed sibling after 'meta' is the decoder's business
    if b"iinf" not in children or b"pitm" not in children:
        raise DecodeError("the HEIF 'meta' box has no item list or no primary item")
    items = _parse_iinf(children[b"iinf"])
    pitm = children[b"pitm"]
    version, _ = pitm.full_box()
    pitm_field = (pitm.pos, 2 if version == 0 else 4)
    primary = pitm.u16() if version == 0 else pitm.u32()
    if primary not in items:
        raise DecodeError(f"the primary item {primary} is not in the item list")
    if b"iloc" in children:
        _parse_iloc(children[b"iloc"], items)
    if b"iref" in children:
        _parse_iref(children[b"iref"], items)
    if b"iprp" in children:
        _parse_iprp(children[b"iprp"], items)
    idat = bytes(children[b"idat"].raw(children[b"idat"].end - children[b"idat"].pos)) if b"idat" in children else b""
    container = Container(major, brands, primary, items, [], idat, pitm_field)
    for item in items.values():
        if item.type == b"grid":
            _grid_header(container, item, data)
        tile = items.get(item.refs[b"dimg"][0]) if item.refs.get(b"dimg") else None
        if tile is not None:
            # A derived image (grid, overlay) takes what it does not say itself from its first tile, as libheif does.
            if not item.bit_depth:
                item.bit_depth, item.monochrome, item.chroma = tile.bit_depth, tile.monochrome, tile.chroma
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


def _parse_iprp(box: _Reader, items: dict[int, Item]) -> None:
    children = list(box.boxes())
    ipco = next((b for k, b in children if k == b"ipco"), None)
    if ipco is None:
        return
    props = list(ipco.boxes())
    for kind, ipma in children:
        if kind != b"ipma":
            continue
        version, flags = ipma.full_box()
        for _ in range(ipma.u32()):
            item_id = ipma.u16() if version < 1 else ipma.u32()
            for _ in range(ipma.u8()):
                index = (ipma.u16() & 0x7FFF) if flags & 1 else (ipma.u8() & 0x7F)
                item = items.get(item_id)
                if index == 0 or item is None:
                    continue
                if index > len(props):
                    raise DecodeError(f"item {item_id} refers to property {index} of {len(props)}")
                pkind, prop = props[index - 1]
                _apply_property(item, pkind, _Reader(prop.buf, prop.pos, prop.end))


def _apply_property(item: Item, kind: bytes, prop: _Reader) -> None:
    if kind == b"ispe":
        prop.full_box()
        item.width, item.height = prop.u32(), prop.u32()
    elif kind == b"clap":
        wn, wd, hn, hd = prop.u32(), prop.u32(), prop.u32(), prop.u32()
        if not (wd and hd) or wn // wd < 1 or hn // hd < 1:
            raise DecodeError(f"item {item.id} has an invalid clean aperture")
        item.crop = (wn // wd, hn // hd)
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
        item.chroma = prop.buf[prop.pos + 16] & 3
        item.monochrome = item.chroma == 0
        item.bit_depth = item.bit_depth or (prop.buf[prop.pos + 17] & 7) + 8
    elif kind == b"av1C":
        prop.need(3)
        flags = prop.buf[prop.pos + 2]
        item.monochrome = bool(flags & 0x10)
        item.bit_depth = item.bit_depth or (12 if flags & 0x20 else 10 if flags & 0x40 else 8)
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


def check_image(c: Container, item: Item, role: str = "image") -> None:
    """Refuse an image whose parts disagree: grid tiles that do not tile its size, tiles of other sizes.

    Decoders given such a file allocate what the header claims, or loop on it, before they fail.
    """
    if item.type == b"grid":
        if item.grid is None:
            raise DecodeError(f"the {role} is a grid without a grid description")
        rows, cols, width, height = item.grid
        tiles = item.refs.get(b"dimg", [])
        if len(tiles) != rows * cols or not all(t in c.items for t in tiles):
            raise DecodeError(f"the {role} is a {cols}x{rows} grid with {len(tiles)} tile(s)")
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
    """Visible images that are neither thumbnails nor auxiliary images, by item id (as libheif lists them)."""
    return sorted(
        i.id
        for i in c.items.values()
        if i.type in _IMAGE_TYPES and not i.hidden and b"thmb" not in i.refs and b"auxl" not in i.refs
    )
