"""The tell-tale a silent HEVC decoder leaves in a damaged picture, found in the decoded pixels.

Damaged HEVC data makes the decoder lose its place in a tile's coded data; often it then reads an "end of
slice" early and stops, and the rest of the tile (every coding tree unit, CTU, after that point in raster
order) keeps what the decoder's picture buffer held. libde265 (under pillow-heif, libvips and ImageMagick)
and FFmpeg's HEVC decoder report nothing when this happens. heicconv makes that buffer zero for libde265
(``_native.zeroed_allocations``): zero in all three planes (Y, Cb, Cr), flat green, RGB about (0, 136, 0).

:func:`find` looks for that shape on the decoded picture of each tile of the coded grid:

* the tile's last CTU (its bottom-right corner) has zero chroma (Cb = Cr = 0: as RGB, red and blue at 0
  and green at least 64, whatever the luma); only then is anything more read, so a picture without the
  tell-tale costs one 8x8 block per tile;
* the CTUs with zero chroma are a tail of the tile in raster order (CTUs of 64, 32 or 16 pixels), after at
  least one CTU with decoded content;
* as RGB, where a real colour looks the same (RGB (0, 136, 0) is a legal colour), the tail must also stop
  at the tile's edges: a real area of that colour goes on into the neighbouring tile, a decoder's
  untouched area does not. As YCbCr (FFmpeg's planes), Cb = Cr = 0 is never a real colour.

FFmpeg reuses its frame buffers without clearing them: the ffmpeg route also compares each tile's corner
block with those of the tiles decoded before it (``_hevc._Corners``).

A decoder that lost its place and kept decoding garbage to the end of the tile leaves no such tail; the
garbage breaks with the neighbouring tiles along the tile's edges instead. :func:`suspects` ranks the tiles by
that break, and :func:`find` has libde265 read the most suspect ones again (``_de265``), which tells damaged
data from a real edge. What this cannot see: a tile whose damage leaves its untouched part outside the picture
(the cropped edge of the grid: nothing of it shows), and garbage in a tile that is not among the suspects
(see docs/hardening.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..container.bitstream import Slices, hevc_slices, hvcc_units
from ..errors import DecodeError
from . import _de265, threads

if TYPE_CHECKING:
    from ..container.info import Input
    from ..container.isobmff import Container, Item

__all__ = [
    "Layout",
    "Seams",
    "check",
    "check_thumbnail",
    "coded",
    "find",
    "garbage",
    "layout",
    "read_ahead",
    "refuse",
    "suspects",
    "untouched",
    "upright_box",
]

#: CTU sizes HEVC allows (log2 4 to 6); the size a stream uses is in its SPS, which heicconv does not parse.
_CTU_SIZES = (64, 32, 16)
#: Pixels left out at each edge of a CTU when checking its interior: chroma upsampling and resampling in
#: the library's colour conversion blend the untouched area's edge with decoded content next to it.
_INSET = 2

#: How far from 0 red and blue may be in a library's RGB of zero chroma (ImageMagick 6 stores HEIF pictures as
#: its own 8-bit YCbCr, up to 5 levels off after the round trip; libheif's RGB is exact).
_RGB_SLACK = 6

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive), in pixels


@dataclass(frozen=True)
class Layout:
    """An HEVC image's tiles in coded orientation: ``rows`` x ``cols`` tiles of ``tile`` size, cropped to ``size``."""

    rows: int
    cols: int
    tile: tuple[int, int]
    size: tuple[int, int]
    nclx: tuple[int, int, int, bool] | None  # the tiles' colour description, if the file gives one
    monochrome: bool = False  # the tiles are coded in luma only (4:0:0)

    def boxes(self) -> list[Box]:
        """Each tile's visible box, row by row."""
        (tw, th), (w, h) = self.tile, self.size
        return [
            (c * tw, r * th, min(w, (c + 1) * tw), min(h, (r + 1) * th))
            for r in range(self.rows)
            for c in range(self.cols)
            if c * tw < w and r * th < h
        ]

    def seams(self) -> list[tuple[Box, int, int]]:
        """The 4-pixel strip across each tile edge inside the picture (2 pixels each side), with the axis the
        edge crosses (1: an edge between columns of tiles, 0: between rows) and the column or row after it."""
        (tw, th), (w, h) = self.tile, self.size
        across = [((c * tw - 2, 0, c * tw + 2, h), 1, c) for c in range(1, self.cols) if c * tw + 2 <= w]
        return across + [((0, r * th - 2, w, r * th + 2), 0, r) for r in range(1, self.rows) if r * th + 2 <= h]


class Seams:
    """The luma of a picture in coded orientation along its tile edges (:meth:`Layout.seams`), gathered as the
    picture is decoded a region at a time: all :func:`suspects` reads of a ``"ycbcr"`` picture, about 4 pixels
    per row and column of tiles (160 KB for a 12 MP photo of 512-pixel tiles, its luma plane being 12 MB)."""

    def __init__(self, grid: Layout) -> None:
        import numpy as np

        self.grid = grid
        self.strips = {box: np.zeros((box[3] - box[1], box[2] - box[0], 1), np.uint8) for box, _, _ in grid.seams()}

    def add(self, box: Box, luma: Any) -> None:
        """Keep what lies on a tile edge of ``luma``, the luma plane (rows x columns) of ``box`` of the picture."""
        for (x0, y0, x1, y1), strip in self.strips.items():
            left, top, right, bottom = max(x0, box[0]), max(y0, box[1]), min(x1, box[2]), min(y1, box[3])
            if left < right and top < bottom:
                rows, cols = slice(top - box[1], bottom - box[1]), slice(left - box[0], right - box[0])
                strip[top - y0 : bottom - y0, left - x0 : right - x0, 0] = luma[rows, cols]

    def fetch(self, box: Box) -> Any:
        """``fetch`` for :func:`garbage` with ``"ycbcr"``: a seam's strip (``KeyError`` for any other box)."""
        return self.strips[box]


def layout(container: Container, item: Item) -> Layout | None:
    """The tile layout of an ``hvc1`` image or grid of them (any bit depth, any chroma format), None for anything
    the check does not cover (AV1 and other codecs, a clean aperture that does not start at the top left corner,
    transformed tiles, tiles of mixed formats)."""
    if item.type == b"hvc1":
        # Its own irot and imir are the source's orientation, which :func:`coded` undoes.
        tiles, rows, cols, size, transformed = [item], 1, 1, (item.width, item.height), False
    elif item.type == b"grid" and item.grid is not None:
        rows, cols, width, height = item.grid
        tiles = [container.items[t] for t in item.refs.get(b"dimg", []) if t in container.items]
        size = (width, height)
        if len(tiles) != rows * cols or any(t.type != b"hvc1" for t in tiles):
            return None
        transformed = any(t.crop or t.rotation or t.mirror is not None for t in tiles)
    else:
        return None
    first = tiles[0]
    window = item.crop_box()
    if transformed or (window is not None and window[:2] != (0, 0)):
        return None  # a crop that starts inside the picture would shift the CTU grid: not covered
    if window is not None:  # a clean aperture from the top left corner hides the right and bottom edges only
        size = (min(size[0], window[2]), min(size[1], window[3]))
    monochrome = {bool(t.monochrome or t.chroma == 0) for t in tiles}
    if len(monochrome) != 1:
        return None
    if any((t.width, t.height) != (first.width, first.height) for t in tiles) or not first.width:
        return None
    return Layout(rows, cols, (first.width, first.height), size, first.nclx or item.nclx, monochrome.pop())


def upright_box(box: Box, size: tuple[int, int], orientation: int) -> Box:
    """Where ``box`` of a picture coded at ``size`` lies once it is turned upright by EXIF ``orientation``."""
    w, h = size
    x0, y0, x1, y1 = box

    def point(x: int, y: int) -> tuple[int, int]:  # a pixel's upright position
        return {
            1: (x, y),
            2: (w - 1 - x, y),
            3: (w - 1 - x, h - 1 - y),
            4: (x, h - 1 - y),
            5: (y, x),
            6: (h - 1 - y, x),
            7: (h - 1 - y, w - 1 - x),
            8: (y, w - 1 - x),
        }[orientation]

    (ax, ay), (bx, by) = point(x0, y0), point(x1 - 1, y1 - 1)
    return (min(ax, bx), min(ay, by), max(ax, bx) + 1, max(ay, by) + 1)


def coded(region: Callable[[Box], Any], size: tuple[int, int], orientation: int) -> Callable[[Box], Any]:
    """``fetch`` for :func:`find` from ``region(box)``, which gives a box of the upright picture (a numpy array,
    rows x columns x bands, 8 or 16 bits a sample): the box of the coded picture, as coded, 8 bits a sample (the
    tell-tale is the same colour at any depth: zero chroma)."""
    import numpy as np

    inverse = {6: 8, 8: 6}.get(orientation, orientation)

    def fetch(box: Box) -> Any:
        pixels = region(upright_box(box, size, orientation))
        if pixels.dtype == np.uint16:
            pixels = (pixels >> 8).astype(np.uint8)
        return _turn(pixels, inverse)

    return fetch


def read_ahead(source: Input) -> Callable[[int], str | None] | None:
    """``verify`` for :func:`check` of a single HEVC image (no grid), with libde265's reading of it already begun in
    a thread of its own: call it before the backend decodes the image. A single image is read again whole whatever
    its picture shows, and its decoding keeps only one core busy, so the reading costs no wall time on a second
    one. None for anything else, or with a thread budget of one (``threads.threads``)."""
    c, item = source.container, source.item
    if c is None or item is None or item.type != b"hvc1" or threads.threads() < 2:
        return None
    verify = _de265.verifier(c, item, source.data)
    if verify is None:
        return None
    pool = ThreadPoolExecutor(1, thread_name_prefix="heicconv-verify")
    begun = pool.submit(verify, 0)
    pool.shutdown(wait=False)  # the thread ends with the reading, whatever becomes of the conversion
    return lambda n: begun.result() if n == 0 else verify(n)


def check(
    source: Input,
    region: Callable[[Box], Any],
    kind: str | None,
    verify: Callable[[int], str | None] | None = None,
) -> None:
    """Refuse (``DecodeError``) the decoded picture of ``source``'s HEVC image if it shows a silent decoder's
    tell-tale of damaged data, or if libde265 finds broken data in its suspect tiles when it reads them again
    (:func:`find`). ``region(box)`` gives a box of the upright picture (as for :func:`coded`); ``kind`` says
    what it holds (``"rgb"``, ``"ycbcr"``, or ``"luma"`` for a grayscale picture), None if nothing can be read
    of it. Where the picture cannot be read as coded tiles (what :func:`layout` does not cover, a picture coded
    as RGB, the identity matrix, where zero chroma is black, or ``kind`` None), libde265 reads every HEVC tile
    again (:func:`_every_tile`); so is every layer of an overlay (:func:`_layers`). An HEVC alpha plane is read
    again by libde265 whole (:func:`_alpha`). ``verify``, if given, is the image's (from :func:`read_ahead`), else
    one is made (``_de265.verifier``)."""
    c, item = source.container, source.item
    if c is None or item is None:
        return
    if item.type == b"iovl":
        _layers(source, item)
        return
    refuse(_alpha(c, item, source.data))
    verify = verify or _de265.verifier(c, item, source.data)
    grid = layout(c, item)
    if (
        kind is None
        or grid is None
        or grid.monochrome != (kind == "luma")
        or (kind == "rgb" and grid.nclx and grid.nclx[2] == 0)
    ):
        # Nothing of the picture can be read, or mapped to its coded tiles (a clean aperture inside a grid): with
        # no picture to choose suspects from, libde265 reads every tile again.
        wrong = _every_tile(item, verify)
        refuse(f"{_tile_name(*wrong[0])}: {wrong[1]}" if wrong is not None else None)
        return
    fetch = coded(region, grid.size, source.orientation)
    refuse(find(fetch, grid, kind, verify, slicer(c, item, source.data)))


def check_thumbnail(source: Input, thumbnail: Item) -> None:
    """Refuse (``DecodeError``) an embedded HEVC thumbnail of ``source`` whose coded data libde265 finds wrong when it
    reads it again, whole (a thumbnail is a few tens of thousands of pixels: a millisecond or two). Its picture is
    not looked at; the caller decodes the full image instead."""
    c = source.container
    wrong = _every_tile(thumbnail, _de265.verifier(c, thumbnail, source.data)) if c is not None else None
    refuse(f"the embedded thumbnail: {wrong[1]}" if wrong is not None else None)


def _alpha(container: Container, image: Item, data: bytes) -> str | None:
    """What libde265 finds wrong with ``image``'s HEVC alpha plane, every tile of it, in words, or None.

    An alpha plane is luma only, and what it holds (edges, flat areas) decodes into no tell-tale anyone can tell
    from a real one: damage in it came out as a picture with a garbage alpha on every backend (8 seeded cases of
    8, ``tests/test_damage.py``). It is read whole: one plane, which compresses far better than the picture."""
    alpha = container.alpha_of(image.id)
    wrong = _every_tile(alpha, _de265.verifier(container, alpha, data)) if alpha is not None else None
    if wrong is None:
        return None
    (n, count), said = wrong
    return f"the alpha plane{f' (tile {n + 1} of {count})' if count > 1 else ''}: {said}"


def _layers(source: Input, overlay: Item) -> None:
    """Refuse (``DecodeError``) an overlay (``iovl``, as Nokia phones write photos with alpha) any of whose layers
    shows damage: each is decoded again by libheif (pillow-heif) into zeroed memory and checked as a photo is
    (:func:`check`: its tell-tale, libde265's second reading, its alpha plane). The composed picture cannot be
    checked: the layers cover each other. It costs a second decode of every layer."""
    import dataclasses

    c = source.container
    assert c is not None
    layers = [c.items[i] for i in overlay.refs.get(b"dimg", []) if i in c.items]

    def said(layer: Item) -> str | None:  # what is wrong with one layer, checked as a photo
        part = dataclasses.replace(source, item=layer, orientation=1)
        try:
            if layer.rotation or layer.mirror is not None or layer.type not in (b"hvc1", b"grid"):
                check(part, lambda box: None, None)  # libde265 reads every tile of it
            else:
                check(part, *_layer_picture(c, source.data, layer))
        except DecodeError as exc:
            return str(exc).removeprefix("the HEVC data is damaged: ")
        return None

    wrong = _first_wrong(lambda n: said(layers[n]), list(range(len(layers))))  # the layers at once, budget allowing
    refuse(f"layer {wrong[0] + 1} of {len(layers)} of the overlay: {wrong[1]}" if wrong is not None else None)


def _layer_picture(c: Container, data: bytes, layer: Item) -> tuple[Callable[[Box], Any], str]:
    """``region`` and ``kind`` for :func:`check` of one layer of an overlay, decoded by libheif into zeroed memory
    (8 bits a sample); ``DecodeError`` if libheif cannot decode it."""
    import numpy as np

    from ._native import heif_frame

    try:
        frame = heif_frame(c.extract(data, layer.id))
        pixels = np.asarray(frame)
    except Exception as exc:
        raise DecodeError(f"the HEVC data is damaged: libheif cannot decode it ({exc})") from exc
    pixels = pixels if pixels.ndim == 3 else pixels[..., None]
    kind = "rgb" if frame.mode.startswith("RGB") and pixels.shape[2] >= 3 else "luma"
    return (lambda box: pixels[box[1] : box[3], box[0] : box[2]]), kind


def _every_tile(image: Item, verify: Callable[[int], str | None] | None) -> tuple[tuple[int, int], str] | None:
    """The first tile of ``image`` (an ``hvc1`` item or a grid of them; anything else is not read) that ``verify``
    (its ``_de265.verifier``) finds wrong when every one is read again, as ``((n, count), what it says``), or None."""
    if verify is None or image.type not in (b"hvc1", b"grid"):
        return None
    count = len(_de265.tiles_of(image))
    wrong = _first_wrong(verify, list(range(count)))
    return ((wrong[0], count), wrong[1]) if wrong is not None else None


def slicer(container: Container, image: Item, data: bytes) -> Callable[[int], Slices | None]:
    """``slices(n)`` for :func:`find`: where the slices of tile ``n`` (0-based, row by row) of ``image`` (an
    ``hvc1`` item, or a grid of them) begin, read from its coded data (``bitstream.hevc_slices``), or None (also
    for a tile of one slice)."""
    units_of = _de265.tile_units(container, image, data)

    def slices(n: int) -> Slices | None:
        tile = units_of(n)
        if tile is None or sum((unit[0] >> 1) & 0x3F < 32 for unit in tile[1]) < 2:
            return None  # one slice (phones write one per tile): an untouched run can only be the tile's tail
        return hevc_slices(hvcc_units(tile[0]), tile[1])

    return slices


def _turn(a: Any, orientation: int) -> Any:
    """An array (rows x columns x bands) turned as EXIF ``orientation`` says."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return a.swapaxes(0, 1)[:, ::-1]
    if orientation == 7:
        return a[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return a.swapaxes(0, 1)[::-1]
    return a


def find(
    fetch: Callable[[Box], Any],
    grid: Layout,
    kind: str,
    verify: Callable[[int], str | None] | None = None,
    slices: Callable[[int], Slices | None] | None = None,
) -> str | None:
    """Where the decoded picture shows the untouched tail of a tile, or a tile ends in garbage, in words, or None.

    ``fetch(box)`` gives the pixels of a box of the coded picture, as coded (a numpy array, rows x columns x
    3 or more bands; :func:`coded` makes one from an upright picture); ``kind`` says what they are: ``"rgb"``
    (a library's conversion), ``"ycbcr"`` (the decoder's planes) or ``"luma"`` (a monochrome picture: its
    untouched buffer, zero luma, is black, which photos have, so only ``verify`` decides). ``verify(n)``, if
    given, says what is wrong with tile ``n``'s coded data (``_de265.verifier``); it is asked about the tiles
    :func:`suspects` names.
    ``slices(n)``, if given, says where tile ``n``'s slices begin (:func:`slicer`).
    """
    boxes = grid.boxes()
    for n, box in enumerate(boxes if kind != "luma" else []):
        found = untouched(fetch, box, grid.size, kind, slices(n) if slices is not None else None)
        if found is not None:
            return f"{_tile_name(n, len(boxes))} {found}"
    return garbage(fetch, grid, kind, verify) if verify is not None else None


def garbage(fetch: Callable[[Box], Any], grid: Layout, kind: str, verify: Callable[[int], str | None]) -> str | None:
    """What ``verify`` finds wrong with the tiles :func:`suspects` names, in words, or None (``fetch`` and ``kind``
    as for :func:`find`; for ``"ycbcr"`` and ``"luma"`` only the first band is read, so a luma plane alone will
    do).

    The answer is the first suspect, in :func:`suspects`' order, that ``verify`` finds wrong (:func:`_first_wrong`
    verifies them at once where the thread budget allows)."""
    wrong = _first_wrong(verify, suspects(fetch, grid, kind))
    return f"{_tile_name(wrong[0], len(grid.boxes()))}: {wrong[1]}" if wrong is not None else None


def _first_wrong(verify: Callable[[int], str | None], tiles: list[int]) -> tuple[int, str] | None:
    """The first of ``tiles`` that ``verify`` finds wrong and what it says, or None.

    With a thread budget of two or more (``threads.threads``), the tiles are verified that many at once: libde265
    decodes outside Python's lock, so two tiles cost the wall time of one. The answer is the same either way."""
    workers = min(len(tiles), threads.threads())
    found: Iterable[str | None] = (verify(n) for n in tiles)  # in turn, lazily: none after the first one wrong
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="heicconv-verify") as pool:
            found = pool.map(verify, tiles)
    for n, said in zip(tiles, found, strict=True):
        if said is not None:
            return n, said
    return None


def _tile_name(n: int, count: int) -> str:
    return f"tile {n + 1} of {count}" if count > 1 else "the image"


#: How many pixels of tiles :func:`suspects` names at most: about two 512x512 tiles, re-decoded by libde265 in
#: a few milliseconds each.
VERIFY_PIXELS = 2 * 512 * 512


def suspects(fetch: Callable[[Box], Any], grid: Layout, kind: str) -> list[int]:
    """The tiles (indices, row by row) whose decoded picture breaks most with their neighbours', most suspect
    first, as many as :data:`VERIFY_PIXELS` allows; a picture of one tile, whatever its size.

    A tile whose decoder read garbage to its end (see :mod:`_de265`) breaks with its neighbours along its
    bottom edge and, below the damage, its left and right edges: the neighbours go on with the photo. A
    natural picture changes across a tile edge about as much as beside it. The score of an edge pixel is how
    much more the picture changes across the edge than on the calmer side next to it; a tile's score is the sum
    along its edges. Real edges that follow a tile edge score too: the score only chooses what to verify.
    """
    import numpy as np

    boxes = grid.boxes()
    tw, th = grid.tile
    if len(boxes) == 1:
        return [0]  # no neighbours to compare with: read whatever its size (the one image of a Nokia photo)
    score = np.zeros((grid.rows, grid.cols))
    luma = kind in ("ycbcr", "luma")
    for box, axis, k in grid.seams():
        excess = _seam(fetch(box), luma, axis)
        span = th if axis == 1 else tw
        for m in range(grid.rows if axis == 1 else grid.cols):
            part = float(excess[m * span : (m + 1) * span].sum())
            pair = ((m, k - 1), (m, k)) if axis == 1 else ((k - 1, m), (k, m))
            for cell in pair:
                score[cell] += part
    order = [int(i) for i in np.argsort(-score, axis=None, kind="stable") if score.flat[i] > 0]
    return order[: max(1, VERIFY_PIXELS // (tw * th))]


def _seam(strip: Any, luma: bool, axis: int) -> Any:
    """For a strip 4 pixels across a tile edge (the edge between the 2nd and 3rd), how much more the picture
    changes across the edge than on the calmer side beside it, at each position along the edge."""
    import numpy as np

    a = strip.astype(np.int16)
    if axis == 1:
        a = a.swapaxes(0, 1)  # rows: across the edge, columns: along it
    a = a[..., :1] if luma else a[..., :3]
    d = np.abs(np.diff(a, axis=0)).sum(axis=-1)  # 3 differences across: beside, across the edge, beside
    return np.maximum(d[1] - np.minimum(d[0], d[2]), 0)


def untouched(
    fetch: Callable[[Box], Any], box: Box, size: tuple[int, int], kind: str, slices: Slices | None = None
) -> str | None:
    """Whether the tile at ``box`` of a picture of ``size`` ends in the decoder's untouched tail, or (given where
    its ``slices`` begin) has an untouched run that ends where a later slice begins, in words."""
    x0, y0, x1, y1 = box
    corner = (x0 + (x1 - 1 - x0) // 8 * 8, y0 + (y1 - 1 - y0) // 8 * 8, x1, y1)  # inside the tile's last CTU
    if _blank(fetch(corner), kind).all():
        # A whole tile left untouched (libheif leaves a grid's tile that libde265 made no picture of as it was,
        # with a warning only): as RGB, only a tile of a grid, whose neighbours show whether the colour goes on.
        whole = kind == "ycbcr" or box != (0, 0, *size)
        found = _tail(_blank(fetch(box), kind), whole)
        # Not a tail in CTU order, or a real area of that colour that goes on past the tile's edge: not damage.
        if found is not None and not (kind == "rgb" and _continues(fetch, box, size, found[1])):
            if found[0] == "":
                return "is not decoded at all: it is left as the decoder's buffer was (zero chroma, green)"
            return f"stops decoding after {found[0]}: the rest is left as the decoder's buffer was (zero chroma, green)"
    return _hole(fetch, box, size, kind, slices) if slices is not None and len(slices.starts) > 1 else None


def _hole(fetch: Callable[[Box], Any], box: Box, size: tuple[int, int], kind: str, slices: Slices) -> str | None:
    """An untouched run of CTUs (in raster order) that ends where a later slice of the tile begins, that slice
    decoded: the decoder lost its place in the slice before and picked up again at the next one. Cameras code
    a tile in several slices (Canon's HIF files in two); one 8x8 block is read per slice boundary."""
    import numpy as np

    x0, y0, x1, y1 = box
    cells = _Cells(slices, (x1 - x0, y1 - y0))
    blank: Any = None
    for start in slices.starts[1:]:
        before = start - 1  # the last CTU before the slice that shows (a cropped tile's last columns do not)
        while before > 0 and cells.cell(before) is None:
            before -= 1
        if not cells.probe(fetch, box, kind, before) or cells.probe(fetch, box, kind, start):
            continue
        if blank is None:
            blank = _blank(fetch(box), kind)
        first = start
        while first > 0 and (cells.cell(first - 1) is None or cells.untouched(blank, first - 1)):
            first -= 1
        while cells.cell(first) is None:  # the run starts at its first CTU that shows
            first += 1
        mask = np.zeros(blank.shape, bool)
        for part in filter(None, map(cells.cell, range(first, start))):
            mask[part[1] : part[3], part[0] : part[2]] = True
        if kind == "rgb" and _continues(fetch, box, size, mask):
            continue
        return (
            f"is left undecoded from CTU {first + 1} to CTU {start} of its {slices.count} (of {slices.ctb} pixels), up "
            f"to the slice that begins at CTU {start + 1}: that part is left as the decoder's buffer was (zero chroma, "
            "green)"
        )
    return None


@dataclass(frozen=True)
class _Cells:
    """The CTUs of a tile coded in ``slices``, of which ``visible`` (width, height) pixels show."""

    slices: Slices
    visible: tuple[int, int]

    def cell(self, c: int) -> Box | None:
        """CTU ``c``'s visible part, in the tile's pixels; None if too little of it shows to be read."""
        ctb, columns = self.slices.ctb, self.slices.columns
        left, top = (c % columns) * ctb, (c // columns) * ctb
        right, bottom = min(left + ctb, self.visible[0]), min(top + ctb, self.visible[1])
        return (left, top, right, bottom) if right - left > 2 * _INSET and bottom - top > 2 * _INSET else None

    def probe(self, fetch: Callable[[Box], Any], box: Box, kind: str, c: int) -> bool:
        """Whether an 8x8 block (or less) at the middle of CTU ``c`` of the tile at ``box`` is untouched."""
        part = self.cell(c)
        if part is None:
            return False
        x, y = (part[0] + part[2]) // 2 + box[0], (part[1] + part[3]) // 2 + box[1]
        left, top, right, bottom = part[0] + box[0], part[1] + box[1], part[2] + box[0], part[3] + box[1]
        block = (max(left, x - 4), max(top, y - 4), min(right, x + 4), min(bottom, y + 4))
        return bool(_blank(fetch(block), kind).all())

    def untouched(self, blank: Any, c: int) -> bool:
        """Whether CTU ``c``'s interior is untouched in the tile's mask ``blank``."""
        part = self.cell(c)
        inner = (
            None if part is None else blank[part[1] + _INSET : part[3] - _INSET, part[0] + _INSET : part[2] - _INSET]
        )
        return inner is not None and bool(inner.all())


def _blank(pixels: Any, kind: str) -> Any:
    """Which pixels have the chroma of the decoder's untouched buffer, Cb = Cr = 0, whatever their luma: as RGB,
    red and blue at 0 (up to 6 after ImageMagick's round trip through its own YCbCr) and green at least 64
    (zero chroma makes green 76 or more with any luma and matrix: it is never black, and black is common)."""
    if kind == "ycbcr":
        return (pixels[..., 1] == 0) & (pixels[..., 2] == 0)
    return (pixels[..., 0] <= _RGB_SLACK) & (pixels[..., 2] <= _RGB_SLACK) & (pixels[..., 1] >= 64)


def _tail(blank: Any, whole: bool = False) -> tuple[str, Any] | None:
    """How much of the tile decoded before its untouched tail (in words; empty if nothing did) and the tail (a
    mask of the tile's pixels), if the untouched CTUs are a tail in raster order after decoded ones, or, with
    ``whole``, every CTU of the tile."""
    import numpy as np

    h, w = blank.shape
    for ctu in _CTU_SIZES:
        rows, cols = -(-h // ctu), -(-w // ctu)
        padded = np.ones((rows * ctu, cols * ctu), bool)
        padded[:h, :w] = blank
        cells = padded.reshape(rows, ctu, cols, ctu)[:, _INSET : ctu - _INSET, :, _INSET : ctu - _INSET]
        flags = cells.all(axis=(1, 3)).ravel()  # CTUs in raster order: interior all untouched
        start = len(flags)
        while start and flags[start - 1]:
            start -= 1
        if 0 < start < len(flags) or (whole and start == 0):
            tail = (np.arange(rows * cols) >= start).reshape(rows, cols)
            mask = np.repeat(np.repeat(tail, ctu, 0), ctu, 1)[:h, :w]
            return (f"{start} of its {len(flags)} CTUs of {ctu} pixels" if start else ""), mask
    return None


def _continues(fetch: Callable[[Box], Any], box: Box, size: tuple[int, int], tail: Any) -> bool:
    """Whether a neighbouring tile has that colour too all along the tail's stretch of their common edge."""
    x0, y0, x1, y1 = box
    w, h = size
    edges = []  # a neighbour's pixels along one edge, and which of them touch the tail
    if x1 < w:
        edges.append(((x1, y0, x1 + 1, y1), tail[:, -1]))
    if x0 > 0:
        edges.append(((x0 - 1, y0, x0, y1), tail[:, 0]))
    if y1 < h:
        edges.append(((x0, y1, x1, y1 + 1), tail[-1, :]))
    for edge, touching in edges:
        if touching.sum() >= 8 and _blank(fetch(edge), "rgb").reshape(-1)[touching].all():
            return True
    return False


def refuse(description: str | None) -> None:
    """Raise the ``DecodeError`` for a tell-tale :func:`find` described."""
    if description is not None:
        raise DecodeError(f"the HEVC data is damaged: {description}")
