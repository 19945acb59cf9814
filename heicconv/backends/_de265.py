"""A second reading of a tile's coded data by libde265 itself, to hear the stream errors its callers drop.

Bytes changed inside a tile's coded data desynchronise the decoder's arithmetic (CABAC) decoding: from there
on it reads garbage. When it then stops early, the tile's untouched tail shows (``_damage.untouched``); when
it goes on to the tile's last coding tree unit, the tile ends in garbage, and neither libheif (under
pillow-heif, libvips and ImageMagick) nor FFmpeg says a word. libde265 itself knows: the slice does not end
where the picture does (``CTB outside of image area``), a wavefront row's substream does not end with its
stop bit (``end_of_sub_stream_one_bit not set``), the data runs out first (``premature end of slice``). It
queues these as warnings, which libheif never reads.

:func:`tile_errors` decodes one tile's data with the libde265 this process already has (the one the backend
decoded with, else pillow-heif's or the system's), through its C API, and returns those warnings. Decoding
a tile costs what decoding it did, so heicconv reads only the few tiles the decoded picture makes suspect
(``_damage.suspects``), not the whole photo.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..container.bitstream import hvcc_units, nal_units
from ._native import mapped_libraries

if TYPE_CHECKING:
    from ..container.isobmff import Container, Item

__all__ = ["available", "tile_errors", "tile_units", "tiles_of", "verifier"]

#: libde265's codes (``de265_error``) that mean the coded data does not hold together. Others (out of memory,
#: a size limit, multithreading notices) say nothing about the data and are ignored.
_STREAM_ERRORS = frozenset(
    {
        4,  # coefficient out of image bounds
        6,  # CTB outside of image area
        8,  # coded parameter out of range
        16,  # first slice missing, cannot decode dependent slice
        17,  # premature end of slice data
        1002,  # premature end of slice segment
        1003,  # incorrect entry-point offsets
        1004,  # CTB outside of image area (the slice goes on past the picture's last CTU)
        1005,  # SPS header invalid
        1006,  # PPS header invalid
        1007,  # slice header invalid
        1017,  # end_of_sub_stream_one_bit not set (a wavefront row does not end where it should)
        1020,  # slice segment address invalid
        1021,  # dependent slice with address 0
    }
)
_WAITING_FOR_INPUT = 13  # DE265_ERROR_WAITING_FOR_INPUT_DATA: all pushed data is decoded
_DISABLE_DEBLOCKING, _DISABLE_SAO = 6, 7  # de265_param: in-loop filters change pixels, not the parsing
_NAME = re.compile(r"/libde265(?:-[0-9a-f]{8})?\.so[.0-9]*$")
_lock = threading.Lock()


def _candidates() -> list[str]:
    """libde265 copies to try when none is in the global scope: a loaded one, pillow-heif's, the system's."""
    found = [p for p in mapped_libraries() if _NAME.search(p)]
    try:
        from importlib.util import find_spec

        spec = find_spec("_pillow_heif")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        found += sorted(str(p) for p in (Path(spec.origin).parent / "pillow_heif.libs").glob("libde265-*.so*"))
    system = ctypes.util.find_library("de265")
    if system:
        found.append(system)
    return found


def _open(path: str | None) -> Any:
    try:
        lib = ctypes.CDLL(path)
        _declare(lib)
    except (OSError, AttributeError):
        return None
    return lib


@cache
def _library() -> Any:
    # A copy in the process's global scope comes first, whatever the paths: libvips's modules load
    # libheif and libde265 globally, and then every other copy's calls to libde265's exported functions
    # resolve to that one. Calling into another copy would mix two builds' structures and crash.
    # ``CDLL(None)`` looks the functions up in the global scope only.
    for path in (None, *_candidates()):
        lib = _open(path)
        if lib is not None:
            return lib
    return None


def _declare(lib: Any) -> None:
    ctx, c_int = ctypes.c_void_p, ctypes.c_int
    lib.de265_new_decoder.restype = ctx
    lib.de265_new_decoder.argtypes = []
    lib.de265_free_decoder.argtypes = [ctx]
    lib.de265_set_parameter_bool.argtypes = [ctx, c_int, c_int]
    lib.de265_push_NAL.argtypes = [ctx, ctypes.c_char_p, c_int, ctypes.c_int64, ctypes.c_void_p]
    lib.de265_push_NAL.restype = c_int
    lib.de265_flush_data.argtypes = [ctx]
    lib.de265_decode.argtypes = [ctx, ctypes.POINTER(c_int)]
    lib.de265_decode.restype = c_int
    lib.de265_get_warning.argtypes = [ctx]
    lib.de265_get_warning.restype = c_int
    lib.de265_peek_next_picture.argtypes = [ctx]
    lib.de265_peek_next_picture.restype = ctypes.c_void_p
    lib.de265_get_error_text.argtypes = [c_int]
    lib.de265_get_error_text.restype = ctypes.c_char_p


def available() -> bool:
    """Whether a libde265 can be loaded (else nothing is checked)."""
    with _lock:
        return _library() is not None


def tile_errors(parameter_sets: list[bytes], units: list[bytes]) -> list[str]:
    """The stream errors libde265 reports decoding one picture (its parameter sets, then its NAL units), in its
    words; empty if it reports none, or if no libde265 can be loaded."""
    with _lock:  # the first load only; decoding runs outside Python's lock (ctypes releases it)
        lib = _library()
    if lib is None:
        return []
    decoder = lib.de265_new_decoder()
    if not decoder:
        return []
    codes: list[int] = []
    try:
        lib.de265_set_parameter_bool(decoder, _DISABLE_DEBLOCKING, 1)
        lib.de265_set_parameter_bool(decoder, _DISABLE_SAO, 1)
        for nal in [*parameter_sets, *units]:
            lib.de265_push_NAL(decoder, nal, len(nal), 0, None)
        lib.de265_flush_data(decoder)
        more = ctypes.c_int(1)
        for _ in range(64 + len(units)):  # one picture: a few rounds; bounded whatever the data
            code = lib.de265_decode(decoder, ctypes.byref(more))
            if code:
                codes.append(code)
            if code or not more.value or lib.de265_peek_next_picture(decoder):
                break
        while (warning := lib.de265_get_warning(decoder)) != 0 and len(codes) < 64:
            codes.append(warning)
    finally:
        lib.de265_free_decoder(decoder)
    words = [lib.de265_get_error_text(c).decode("utf-8", "replace") for c in codes if c in _STREAM_ERRORS]
    return list(dict.fromkeys(words))


def hvcc_of(container: Container, item: Item, data: bytes) -> bytes | None:
    """The payload of an item's ``hvcC`` property box, or None if it has none."""
    for index, _ in item.props:
        if 0 < index <= len(container.property_spans):
            start, end = container.property_spans[index - 1]
            if bytes(data[start + 4 : start + 8]) == b"hvcC":
                return bytes(data[start + 8 : end])
    return None


def tiles_of(image: Item) -> list[int]:
    """The ids of the coded pictures of an ``hvc1`` image, row by row: a grid's tiles, else the image itself."""
    return image.refs.get(b"dimg", []) if image.type == b"grid" else [image.id]


def tile_units(container: Container, image: Item, data: bytes) -> Callable[[int], tuple[bytes, list[bytes]] | None]:
    """``units(n)``: the ``hvcC`` configuration and the NAL units of tile ``n`` (0-based, row by row) of ``image``
    (an ``hvc1`` item, or a grid of them), or None if the tile or its configuration is missing."""
    tiles = tiles_of(image)

    def units(n: int) -> tuple[bytes, list[bytes]] | None:
        item = container.items.get(tiles[n]) if n < len(tiles) else None
        hvcc = hvcc_of(container, item, data) if item is not None else None
        if item is None or hvcc is None:
            return None
        coded = container.item_data(item, data, limit=len(data) + len(container.idat))
        return hvcc, nal_units(coded, item.nal_length_size)

    return units


def verifier(container: Container, image: Item, data: bytes) -> Callable[[int], str | None] | None:
    """``verify(n)`` for ``_damage.find``: what libde265 says is wrong with tile ``n`` (0-based, row by row) of
    ``image`` (an ``hvc1`` item, or a grid of them), in words, or None; None if no libde265 can be loaded."""
    if not available():
        return None
    units_of = tile_units(container, image, data)

    def verify(n: int) -> str | None:
        tile = units_of(n)
        errors = tile_errors(hvcc_units(tile[0]), tile[1]) if tile is not None else []
        return f"its coded data does not decode as it should (libde265: {'; '.join(errors)})" if errors else None

    return verify
