"""HEVC-coded HEIF images decoded with FFmpeg's decoder (PyAV), as YCbCr 4:2:0 planes, a row of tiles at a time.

heicconv reads the container itself (``isobmff``): the decoder gets the tiles' ``hvcC`` parameter sets and
each tile's coded data, converted from length-prefixed NAL units to an Annex B stream. Each tile is an
independent picture: one-thread decoders, as many as the thread budget allows, decode several at once in
threads of their own, outside Python's lock (``_Decoders``).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..container.bitstream import Slices, hvcc_arrays
from ..container.isobmff import Container, Item
from ..errors import DecodeError
from . import _damage, _de265

__all__ = [
    "Geometry",
    "NotHandled",
    "Refused",
    "Strip",
    "decode_strips",
    "decode_tile",
    "disagree",
    "geometry",
    "parameter_sets",
    "to_annex_b",
]

_START = b"\x00\x00\x00\x01"
#: FFmpeg pixel formats of 8-bit YCbCr 4:2:0 ("j": full range, an older spelling that FFmpeg still emits).
_YUV420 = frozenset({"yuv420p", "yuvj420p"})
#: Matrix coefficients (ITU-T H.273) that are JPEG's own YCbCr: BT.470 System B/G and BT.601.
_BT601 = frozenset({2, 5, 6})


class NotHandled(Exception):
    """This image is not for the FFmpeg route (the caller hands it to pillow-heif); the message says why."""


class Refused(Exception):
    """FFmpeg's decoder refused the coded data, or returned no picture for a tile (the message says which).

    Not yet a verdict on the data: FFmpeg, strict here (``err_detect=explode``), also refuses some that decode
    to one picture (a malformed SEI message, say); the caller decides (:func:`disagree`)."""


@dataclass(frozen=True)
class Geometry:
    """Where an image's tiles go: ``rows`` x ``cols`` tiles of ``tile`` size, cropped to ``size``."""

    tiles: list[Item]
    rows: int
    cols: int
    tile: tuple[int, int]
    size: tuple[int, int]
    hvcc: bytes


@dataclass
class Strip:
    """Rows ``top`` to ``top + height`` of the image as YCbCr 4:2:0 planes, full range (JPEG's own YCbCr)."""

    top: int
    y: Any  # numpy uint8 arrays
    cb: Any
    cr: Any


def _hvcc(container: Container, item: Item, data: bytes) -> bytes:
    hvcc = _de265.hvcc_of(container, item, data)
    if hvcc is None:
        raise DecodeError(f"image item {item.id} has no HEVC configuration ('hvcC')")
    return hvcc


def geometry(container: Container, item: Item, data: bytes) -> Geometry:
    """The tile layout of an ``hvc1`` image or a grid of ``hvc1`` tiles; ``NotHandled`` for anything else."""
    if item.type == b"hvc1":
        tiles, rows, cols, size = [item], 1, 1, (item.width, item.height)
    elif item.type == b"grid" and item.grid is not None:
        rows, cols, width, height = item.grid
        tiles = [container.items[t] for t in item.refs.get(b"dimg", [])]
        size = (width, height)
        if not tiles or any(t.type != b"hvc1" for t in tiles):
            raise NotHandled("the grid's tiles are not HEVC")
    else:
        raise NotHandled(f"{item.type.decode('latin-1')} images are decoded by libheif")
    if item.crop is not None or any(t.crop or t.rotation or t.mirror is not None for t in tiles):
        raise NotHandled("the image has a clean-aperture crop or transformed tiles")
    if item.chroma != 1 or item.bit_depth != 8 or any(t.chroma != 1 or t.bit_depth != 8 for t in tiles):
        raise NotHandled("only 8-bit YCbCr 4:2:0 goes through FFmpeg")
    hvcc = {_hvcc(container, t, data) for t in tiles}
    if len(hvcc) != 1:
        raise NotHandled("the tiles have different HEVC configurations")
    return Geometry(tiles, rows, cols, (tiles[0].width, tiles[0].height), size, hvcc.pop())


def parameter_sets(hvcc: bytes) -> tuple[bytes, int]:
    """The ``hvcC`` box's parameter sets (VPS, SPS, PPS, SEI) as an Annex B stream, and its NAL length size."""
    units, broken = hvcc_arrays(hvcc)
    if broken == "its header":
        raise DecodeError("the HEVC configuration ('hvcC') is shorter than its header")
    if broken is not None:
        raise DecodeError(f"the HEVC configuration ('hvcC') ends inside {broken}")
    return b"".join(_START + unit for unit in units), (hvcc[21] & 3) + 1


def to_annex_b(coded: bytes, length_size: int) -> bytes:
    """Length-prefixed NAL units (as HEIF stores them) as an Annex B stream (as FFmpeg's parser-less decoder reads)."""
    out: list[bytes | memoryview] = []
    pos = 0
    view = memoryview(coded)
    while pos < len(coded):
        if pos + length_size > len(coded):
            raise DecodeError("an HEVC tile ends inside a NAL unit's length")
        length = int.from_bytes(view[pos : pos + length_size], "big")
        pos += length_size
        if length == 0 or pos + length > len(coded):
            raise DecodeError(f"an HEVC tile's NAL unit claims {length:,} bytes but {len(coded) - pos:,} are left")
        out += [_START, view[pos : pos + length]]
        pos += length
    return b"".join(out)


def _colour(item: Item, frame: Any) -> tuple[int, bool]:
    """Matrix coefficients and full-range flag: the ``nclx`` box if there is one, else the HEVC stream's VUI."""
    if item.nclx is not None:
        return item.nclx[2], item.nclx[3]
    return int(frame.colorspace), int(frame.color_range) == 2  # AVCOL_RANGE_JPEG


def _limited_to_full() -> tuple[Any, Any]:
    """Lookup tables from limited-range ("video") Y and Cb/Cr to the full range JPEG's YCbCr uses."""
    import numpy as np

    v = np.arange(256, dtype=np.float64)
    luma = np.clip(np.rint((v - 16) * 255 / 219), 0, 255).astype(np.uint8)
    chroma = np.clip(np.rint((v - 128) * 255 / 224 + 128), 0, 255).astype(np.uint8)
    return luma, chroma


def _plane(frame: Any, index: int, width: int, height: int) -> Any:
    import numpy as np

    plane = frame.planes[index]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    return rows[:height, :width]


def _untouched(frame: Any, size: tuple[int, int], slices: Slices | None = None) -> str | None:
    """The decoder's tell-tale of damaged data in a tile's visible part (``_damage.untouched``), from its planes:
    FFmpeg leaves what it did not decode at zero in all three."""
    import numpy as np

    w, h = size
    planes = [
        _plane(frame, 0, w, h),
        _plane(frame, 1, (w + 1) // 2, (h + 1) // 2),
        _plane(frame, 2, (w + 1) // 2, (h + 1) // 2),
    ]

    def fetch(box: tuple[int, int, int, int]) -> Any:
        x0, y0, x1, y1 = box
        chroma = [
            np.repeat(np.repeat(p[y0 // 2 : (y1 + 1) // 2, x0 // 2 : (x1 + 1) // 2], 2, 0), 2, 1)[
                y0 % 2 : y0 % 2 + y1 - y0, x0 % 2 : x0 % 2 + x1 - x0
            ]
            for p in planes[1:]
        ]
        return np.dstack([planes[0][y0:y1, x0:x1], *chroma])

    return _damage.untouched(fetch, (0, 0, w, h), size, "ycbcr", slices)


@dataclass
class _Coded:
    """What is read of each tile's coded data (by tile index) as it goes to a decoder: its CRC-32 (for
    ``_Corners``) and where its slices begin (``_damage.untouched``)."""

    crc: dict[int, int] = field(default_factory=dict)
    slices: dict[int, Slices | None] = field(default_factory=dict)


class _Corners:
    """The bottom-right corner block of each tile decoded so far, to see a tile left with another's pixels.

    FFmpeg reuses the buffers of frames it has handed out, without clearing them: where a damaged tile stops
    decoding, it keeps the pixels of the tile decoded in that buffer before (not zeros). The corner block lies
    in that stale part (``_damage``); a textured block identical in all three planes to another tile's, whose
    coded data differ, is such a leftover.
    """

    def __init__(self) -> None:
        self.seen: dict[bytes, tuple[int, int]] = {}  # corner block -> (tile index, CRC-32 of its coded data)

    def stale(self, frame: Any, size: tuple[int, int], index: int, crc: int) -> str | None:
        w, h = size
        if w < 16 or h < 16:
            return None
        x, y = (w - 16) // 2 * 2, (h - 16) // 2 * 2
        luma = _plane(frame, 0, w, h)[y : y + 16, x : x + 16]
        if luma.min() == luma.max():
            return None  # flat blocks (white sky, black borders) are alike in many tiles
        cw, ch = (w + 1) // 2, (h + 1) // 2
        block = b"".join(
            [
                luma.tobytes(),
                *(_plane(frame, p, cw, ch)[y // 2 : y // 2 + 8, x // 2 : x // 2 + 8].tobytes() for p in (1, 2)),
            ]
        )
        other = self.seen.setdefault(block, (index, crc))
        if other[0] == index or other[1] == crc:
            return None
        return f"ends with the pixels of tile {other[0] + 1}, left in the decoder's buffer where it stopped decoding"


def bands(geo: Geometry, orientation: int) -> list[list[int]]:
    """The tiles (indices) of each band of the upright picture, top band first.

    A band is a row of tiles, or a column of them when the picture is turned a quarter (EXIF orientations 5
    to 8: the coded picture's left or right column becomes the upright picture's top).
    """
    rows = [[r * geo.cols + c for c in range(geo.cols)] for r in range(geo.rows)]
    cols = [[r * geo.cols + c for r in range(geo.rows)] for c in range(geo.cols)]
    return {1: rows, 2: rows, 3: rows[::-1], 4: rows[::-1], 5: cols, 6: cols, 7: cols[::-1], 8: cols[::-1]}[orientation]


def decode_strips(
    image: Item,
    geo: Geometry,
    data: bytes,
    container: Container,
    threads: int,
    orientation: int = 1,
    verify: Callable[[int], str | None] | None = None,
) -> Iterator[Strip]:
    """Decode the image a band of tiles at a time (``bands``), yielding each band upright, top band first.

    Raises ``NotHandled`` (before yielding anything) if the colour is not BT.601, ``DecodeError`` if a tile
    does not decode, decodes to another size than its header declares or shows a decoder's tell-tale of
    damaged data (``_untouched``, ``_Corners``), and, after the last band, if libde265 finds broken data in
    the tiles whose edges look most suspect (``_damage.garbage``: only the luma along the tile edges is kept
    for it, ``_damage.Seams``). ``verify``, if given, is the image's libde265 reading (``_damage.read_ahead``).
    """
    sets = parameter_sets(geo.hvcc)
    order = bands(geo, orientation)
    coded_order = [i for band in order for i in band]
    seen = _Coded()
    slices_of = _damage.slicer(container, image, data)

    def coded(n: int) -> bytes:  # the n-th tile to decode
        index = coded_order[n]
        tile = _tile_stream(geo, data, container, index, sets)
        seen.crc[index] = zlib.crc32(tile)
        seen.slices[index] = slices_of(index)
        return tile

    grid = _damage.layout(container, image)
    verify = (verify or _de265.verifier(container, image, data)) if grid is not None else None
    seams = _damage.Seams(grid) if grid is not None and verify is not None else None
    decoders = _Decoders(coded, len(coded_order), threads, ahead=2 * max(len(b) for b in order))
    try:
        yield from _bands(decoders.frames(), image, geo, order, orientation, seen, seams)
        if seams is not None and verify is not None:
            _damage.refuse(_damage.garbage(seams.fetch, seams.grid, "ycbcr", verify))
    finally:
        decoders.close()


def _bands(
    frames: Iterator[Any],
    image: Item,
    geo: Geometry,
    order: list[list[int]],
    orientation: int,
    seen: _Coded,
    seams: _damage.Seams | None,
) -> Iterator[Strip]:
    """The decoded tiles (``frames``, in ``order``) checked one by one and joined into upright bands."""
    lut: tuple[Any, Any] | None = None
    band: list[Any] = []
    top = count = done = 0
    coded_order = [i for b in order for i in b]
    corners = _Corners()
    for frame in frames:
        _check_tile(frame, count, coded_order, geo, corners, seen)
        if count == 0:
            lut = _to_full_range(image, frame)
        count += 1
        band.append(frame)
        if len(band) < len(order[done]):
            continue
        box, planes = _band_planes(band, geo, order[done][0], orientation >= 5, lut)
        if seams is not None:
            seams.add(box, planes[0])
        band = []
        done += 1
        y, cb, cr = orient(planes, orientation)
        yield Strip(top, y, cb, cr)
        top += y.shape[0]
    if count != len(geo.tiles):
        raise Refused(f"FFmpeg returned only {count} of the {len(geo.tiles)} tiles")


def _check_tile(frame: Any, count: int, coded_order: list[int], geo: Geometry, corners: _Corners, seen: _Coded) -> None:
    """Refuse the ``count``-th decoded tile (0-based, in ``coded_order``) if it is missing, of another size than
    declared, or shows a decoder's tell-tale of damaged data."""
    tw, th = geo.tile
    if frame.pts != count:
        raise Refused(f"FFmpeg returned no picture for tile {count + 1} of {len(geo.tiles)}")
    index = coded_order[count]
    if (frame.width, frame.height) != (tw, th):
        raise DecodeError(f"tile {count + 1} decodes to {frame.width}x{frame.height}, not the {tw}x{th} it declares")
    width, height = geo.size
    visible = (min(tw, width - (index % geo.cols) * tw), min(th, height - (index // geo.cols) * th))
    why = _untouched(frame, visible, seen.slices[index]) or corners.stale(frame, visible, index, seen.crc[index])
    if why is not None:
        where = f"tile {index + 1} of {len(geo.tiles)}" if len(geo.tiles) > 1 else "the image"
        raise DecodeError(f"the HEVC data is damaged: {where} {why}")


def _to_full_range(image: Item, frame: Any) -> tuple[Any, Any] | None:
    """The lookup tables that make the decoded planes full range (None if they are); ``NotHandled`` for
    anything but BT.601 YCbCr 4:2:0 (read from the first tile: the tiles share one configuration)."""
    if frame.format.name not in _YUV420:
        raise NotHandled(f"FFmpeg decodes it as {frame.format.name}")
    matrix, full = _colour(image, frame)
    if matrix not in _BT601:
        raise NotHandled(f"its colour matrix ({matrix}) is not BT.601, JPEG's own")
    return None if full else _limited_to_full()


def _band_planes(
    band: list[Any], geo: Geometry, first: int, vertical: bool, lut: tuple[Any, Any] | None
) -> tuple[_damage.Box, tuple[Any, Any, Any]]:
    """A band's decoded tiles (a row of them, or a column if ``vertical``; ``first`` is its first tile's index)
    as one picture in coded orientation, full range: where it lies in the coded picture, and its Y, Cb, Cr."""
    import numpy as np

    (tw, th), (width, height) = geo.tile, geo.size
    x0, y0 = (first % geo.cols) * tw, (first // geo.cols) * th
    bw = min(tw, width - x0) if vertical else width
    bh = height if vertical else min(th, height - y0)
    y = np.empty((bh, bw), np.uint8)
    cb = np.empty(((bh + 1) // 2, (bw + 1) // 2), np.uint8)
    cr = np.empty_like(cb)
    for k, f in enumerate(band):
        x, yy = (0, k * th) if vertical else (k * tw, 0)
        w, h = min(tw, bw - x), min(th, bh - yy)
        cx, cy, cwid, chei = x // 2, yy // 2, (w + 1) // 2, (h + 1) // 2
        y[yy : yy + h, x : x + w] = _plane(f, 0, w, h)
        cb[cy : cy + chei, cx : cx + cwid] = _plane(f, 1, cwid, chei)
        cr[cy : cy + chei, cx : cx + cwid] = _plane(f, 2, cwid, chei)
    if lut is not None:
        np.take(lut[0], y, out=y)
        np.take(lut[1], cb, out=cb)
        np.take(lut[1], cr, out=cr)
    return (x0, y0, x0 + bw, y0 + bh), (y, cb, cr)


def _decoded(ctx: Any, packet: Any) -> Any:
    import av

    try:
        return ctx.decode(packet)
    except av.FFmpegError as exc:
        raise Refused(f"FFmpeg refused the data: {exc}") from exc


def _tile_stream(geo: Geometry, data: bytes, container: Container, index: int, sets: tuple[bytes, int]) -> bytes:
    """Tile ``index`` as the decoder reads it: the parameter sets (``parameter_sets``), then its NAL units as
    an Annex B stream."""
    params, length_size = sets
    return params + to_annex_b(container.item_data(geo.tiles[index], data, len(data)), length_size)


def _context(strict: bool = True) -> Any:
    """An FFmpeg HEVC decoder of one thread; strict: a damaged tile is an error, not a concealed picture."""
    import av

    ctx = av.CodecContext.create("hevc", "r")
    ctx.thread_count = 1
    if strict:
        ctx.options = {"err_detect": "explode"}
    return ctx


def _packet(coded: bytes, pts: int) -> Any:
    """A packet FFmpeg owns (not one wrapping Python bytes, which FFmpeg would release without Python's lock)."""
    import av

    packet = av.Packet(len(coded))
    memoryview(packet)[:] = coded
    packet.pts = pts
    return packet


_TAKEN: Future[Any] = Future()  # a slot whose picture the caller has taken
_TAKEN.set_result(None)


class _Decoders:
    """The tiles decoded by ``workers`` FFmpeg decoders, one thread each, and handed out in order (:meth:`frames`).

    Tile ``n`` (0-based, in decoding order; ``coded(n)`` gives its data) goes to decoder ``n % workers``. The
    tiles are independent pictures and PyAV decodes outside Python's lock, so the decoders run at once while
    the caller's thread checks and joins the tiles they have finished. Several one-thread decoders rather than
    one with frame threads: FFmpeg alone decoded a 12 MP photo of 48 tiles in 98 against 103 ms on two CPUs, 6
    tiles in 30 against 35, and the caller's work on each tile no longer holds up the decoding (a whole JPEG
    conversion of the 12 MP photo: about 145 against 165 ms, docs/performance.md).

    At most ``ahead`` tiles wait decoded and not yet taken (memory stays bounded): a decoder waits beyond that,
    unless it holds a picture the caller waits for (a decoder may return a tile's picture only after the next
    tile's data). FFmpeg refusing a tile's data (``Refused``) reaches the caller at that tile; :meth:`close` stops
    the decoders and waits for them, so none runs on after the conversion.
    """

    def __init__(self, coded: Callable[[int], bytes], count: int, workers: int, ahead: int) -> None:
        self.coded, self.count, self.ahead = coded, count, max(1, ahead)
        self.workers = max(1, min(workers, count))
        self.slots: list[Future[Any]] = [Future() for _ in range(count)]
        self.taken = 0  # tiles the caller has taken
        self.stopped = False
        self.turn = threading.Condition()
        self.threads: list[threading.Thread] = []

    def frames(self) -> Iterator[Any]:
        """Each tile's decoded picture, in decoding order (its ``pts`` is its place in that order)."""
        if self.workers == 1:  # on this thread, in turn
            ctx = _context()
            for n in range(self.count):
                yield from _decoded(ctx, _packet(self.coded(n), n))
            yield from _decoded(ctx, None)
            return
        for first in range(self.workers):
            thread = threading.Thread(target=self._decode, args=(first,), name=f"heicconv-hevc-{first}", daemon=True)
            self.threads.append(thread)
            thread.start()
        for n in range(self.count):
            frame = self.slots[n].result()
            with self.turn:
                self.slots[n] = _TAKEN  # the picture is the caller's now: held here, every tile would stay in memory
                self.taken = n + 1
                self.turn.notify_all()
            yield frame

    def _decode(self, first: int) -> None:
        """Decode tiles ``first``, ``first + workers``, ... into their slots (a decoder's thread)."""
        mine = range(first, self.count, self.workers)
        ctx = _context()
        try:
            for n in mine:
                with self.turn:  # wait while enough tiles wait, unless this decoder holds back a picture it was fed
                    while not self.stopped and n - self.taken >= self.ahead and self._all_out(mine, n):
                        self.turn.wait()
                    if self.stopped:
                        return
                self._deliver(_decoded(ctx, _packet(self.coded(n), n)), mine)
            self._deliver(_decoded(ctx, None), mine)
            for n in mine:
                self._fail(n, Refused(f"FFmpeg returned no picture for tile {n + 1}"))
        except BaseException as exc:  # FFmpeg refused a tile's data (Refused) or failed otherwise
            for n in mine:
                self._fail(n, exc)

    def _fail(self, n: int, exc: BaseException) -> None:
        """Tile ``n`` is ``exc`` for the caller, unless it has its picture already."""
        if not self.slots[n].done():
            self.slots[n].set_exception(exc)

    def _all_out(self, mine: range, n: int) -> bool:
        """Whether every tile of ``mine`` before ``n`` has its picture (the decoder holds none back)."""
        return all(self.slots[m].done() for m in mine if m < n)

    def _deliver(self, frames: Any, mine: range) -> None:
        for frame in frames:
            n = frame.pts
            if n not in mine or self.slots[n].done():
                raise Refused(f"FFmpeg returned a picture for tile {n} where it was not given one")
            self.slots[n].set_result(frame)

    def close(self) -> None:
        """Stop the decoders and wait until their threads have ended."""
        with self.turn:
            self.stopped = True
            self.turn.notify_all()
        for thread in self.threads:
            thread.join()


def decode_tile(geo: Geometry, data: bytes, container: Container, index: int, *, strict: bool) -> Any | None:
    """Tile ``index`` decoded on its own by a decoder of its own, strict (``err_detect=explode``) or concealing
    what it cannot decode; None if FFmpeg refuses it or returns no picture."""
    import av

    coded = _tile_stream(geo, data, container, index, parameter_sets(geo.hvcc))
    ctx = _context(strict)
    try:
        frames = [*ctx.decode(_packet(coded, 0)), *ctx.decode(None)]
    except av.FFmpegError:
        return None
    return frames[0] if frames else None


def disagree(image: Item, lenient: Any, theirs: Any) -> bool:
    """Whether FFmpeg's concealing decode of a tile (``lenient``, a frame) and libheif's (``theirs``, RGB as a
    numpy array) are different pictures: luma further apart than 30 dB PSNR.

    HEVC decoding is exact: two decoders that read a tile whole make the same picture (up to the conversion to
    RGB, 45 dB and more). Where the data is damaged, each conceals or reads garbage its own way (10 to 20 dB)."""
    import numpy as np

    if theirs.shape[:2] != (lenient.height, lenient.width) or lenient.format.name not in _YUV420:
        return True
    _, full = _colour(image, lenient)
    ours = _plane(lenient, 0, lenient.width, lenient.height).astype(np.float64)
    if not full:
        ours = (ours - 16) * 255 / 219
    rgb = theirs[..., :3].astype(np.float64)
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    mse = float(((ours - luma) ** 2).mean())
    return mse > 0 and 10 * np.log10(255.0**2 / mse) < 30


def orient(planes: tuple[Any, Any, Any], orientation: int) -> tuple[Any, Any, Any]:
    """Each plane made upright, as EXIF ``orientation`` says (what irot/imir came to, see ``info``)."""
    import numpy as np

    def turn(a: Any) -> Any:
        if orientation == 2:
            a = a[:, ::-1]
        elif orientation == 3:
            a = a[::-1, ::-1]
        elif orientation == 4:
            a = a[::-1]
        elif orientation == 5:
            a = a.T
        elif orientation == 6:
            a = a.T[:, ::-1]
        elif orientation == 7:
            a = a[::-1, ::-1].T
        elif orientation == 8:
            a = a.T[::-1]
        return np.ascontiguousarray(a)

    if orientation == 1:
        return planes
    y, cb, cr = planes
    return turn(y), turn(cb), turn(cr)
