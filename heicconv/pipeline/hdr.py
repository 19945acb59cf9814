"""HDR gain maps carried into the output (issue 14): JPEG becomes Ultra HDR, other formats report the map.

:mod:`heicconv.gainmap` finds and reads a photo's gain map from the header; here it is decoded by
pillow-heif whatever the backend (so every backend carries the same map), made upright, cropped and
resized as the photo was, and assembled with the backend's JPEG by :mod:`heicconv.ultrahdr`.

>>> from heicconv.testing.fixtures import make_heic
>>> find_in(make_heic(size=(32, 24))) is None
True
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from .. import gainmap
from ..backends.contract import Note, Result, first_line
from ..gainmap import GainMap
from ..info import Source, read_source
from ..options import Options

__all__ = ["attach", "decode", "find_in"]


def find_in(data: bytes) -> GainMap | None:
    """:func:`heicconv.gainmap.find` for the primary image of a file's bytes."""
    return gainmap.find(read_source(data, whole=False))


def decode(source: Source, gm: GainMap) -> Any:
    """The gain map as a Pillow ``L`` image, upright and cropped like the photo (pillow-heif decodes it).

    A map that carries no rotation or mirror of its own gets the photo's, and (in proportion) its crop,
    as libheif's encoder and Samsung phones write them on the photo only; one that has its own (iPhones)
    is shown as they say.
    """
    from PIL import Image

    from ..backends._native import load_pillow_heif
    from ..info import _TRANSFORM_TO_EXIF

    c, photo = source.container, source.item
    assert c is not None and photo is not None
    heif = load_pillow_heif()
    frame = heif.open_heif(io.BytesIO(c.extract(source.data, gm.item.id)), convert_hdr_to_8bit=True)[0]
    img = frame.to_pillow() if hasattr(frame, "to_pillow") else Image.frombytes(frame.mode, frame.size, frame.data)
    img = img.convert("L")
    if not gainmap.own_transforms(gm.item):
        if photo.crop is not None and gm.item.crop is None and photo.width and photo.height:
            cw = round(img.width * photo.crop[0] / photo.width)
            ch = round(img.height * photo.crop[1] / photo.height)
            left, top = (img.width - cw) // 2, (img.height - ch) // 2
            img = img.crop((left, top, left + cw, top + ch))
        orientation = _TRANSFORM_TO_EXIF.get((photo.rotation, photo.mirror), 1)
        for step in _TRANSPOSE[orientation]:
            img = img.transpose(Image.Transpose(step))
    return img


# EXIF orientation -> Pillow transposes that make it upright (as the pillow backend does).
_TRANSPOSE: dict[int, list[int]] = {1: [], 2: [0], 3: [3], 4: [1], 5: [5], 6: [4], 7: [6], 8: [2]}


def attach(source: Source, result: Result, options: Options) -> Result:
    """``result`` with the source's gain map carried where the output can hold it, and notes saying so.

    JPEG output becomes an Ultra HDR JPEG (:mod:`heicconv.ultrahdr`); every other format reports the
    map in ``dropped``. A map that cannot be read never fails the conversion: the photo is converted
    without it, and the notes say why.
    """
    gm = gainmap.find(source)
    if gm is None:
        return result
    if options.hdr == "drop":
        return _noted(result, Note("hdr", f"{gm.describe()} not kept (hdr='drop'): the output is SDR only"))
    if gm.metadata is None:
        return _noted(result, Note("dropped", f"the HDR gain map ({gm.problem})"))
    if result.format != "jpeg":
        why = f"heicconv writes it into JPEG only, not {result.format.upper()}"
        return _noted(result, Note("dropped", f"the HDR gain map ({why})"))
    if not (result.width and result.height):
        return _noted(result, Note("dropped", "the HDR gain map (the backend did not say what size it wrote)"))
    try:
        data = _ultra_hdr(source, gm, result, options)
    except Exception as exc:  # the photo is converted; only its HDR rendition is lost
        return _noted(result, Note("dropped", f"the HDR gain map (it could not be decoded: {first_line(exc)})"))
    kept = Note("hdr", f"{gm.describe()} kept: Ultra HDR JPEG (MPF, hdrgm XMP and ISO 21496-1)")
    return dataclasses.replace(_noted(result, kept), data=data)


def _noted(result: Result, note: Note) -> Result:
    return dataclasses.replace(result, notes=(*result.notes, note))


def _ultra_hdr(source: Source, gm: GainMap, result: Result, options: Options) -> bytes:
    from PIL import Image

    from .. import ultrahdr

    assert gm.metadata is not None
    img = decode(source, gm)
    if gm.apple_headroom:
        img = img.point(list(gainmap.apple_to_log(gm.apple_headroom)))
    size = gainmap.map_size(img.size, (source.width, source.height), (result.width, result.height))
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=options.quality)
    return ultrahdr.assemble(result.data, out.getvalue(), gm.metadata)
