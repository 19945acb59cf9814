"""AV1 images (AVIF) decoded by libavif through Pillow's AVIF plugin: the pillow backend's decoder, and the
second reading that tells damaged AV1 data for the backends whose decoder does not.

libavif (with dav1d, as Pillow's wheels bundle them) refuses AV1 data whose bytes were changed: "Decoding of
color planes failed". libheif 1.15's AV1 decoders, under libvips and ImageMagick, decode the same data into a
picture of garbage without a word (9 of 10 seeded cases each, ``tests/test_damage.py``). :func:`check` has
libavif read the data again for them and turns its refusal into a ``DecodeError``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from ..errors import DecodeError
from ._native import load_pillow_heif

if TYPE_CHECKING:
    from .contract import Job

__all__ = ["check", "decode"]

#: What libavif says when the AV1 decoder fails on the coded data (``AVIF_RESULT_DECODE_COLOR_FAILED`` and
#: ``..._ALPHA_FAILED``): the data is damaged. Other failures (a feature libavif lacks) say nothing about it.
_DAMAGED = ("Decoding of color planes failed", "Decoding of alpha plane failed")


def decode(job: Job) -> Any:
    """Pillow's AVIF plugin (libavif) on ``job.heif_input()``; ``DecodeError`` where libavif's decoder fails on the
    AV1 data (it is damaged), libavif's own exception for its other failures. A grid of tiles under 64 pixels a
    side, which libavif refuses (MIAF's minimum: "Invalid image grid") and libheif reads, is decoded tile by tile
    here."""
    load_pillow_heif()  # Pillow's codecs bound to the libraries its wheel bundles
    from PIL import AvifImagePlugin, Image

    def one(data: bytes) -> Any:
        try:
            img = AvifImagePlugin.AvifImageFile(io.BytesIO(data))
            img.load()
        except Exception as exc:
            if any(words in str(exc) for words in _DAMAGED):
                raise DecodeError(f"the AV1 data is damaged: libavif cannot decode it ({exc})") from exc
            raise
        return img

    c, grid = job.source.container, job.thumbnail or job.source.item
    if c is None or grid is None or grid.grid is None or job.source.alpha:
        return one(job.heif_input())
    tiles = [c.items[t] for t in grid.refs.get(b"dimg", [])]
    if not tiles or min(tiles[0].width, tiles[0].height) >= 64:
        return one(job.heif_input())
    rows, cols, width, height = grid.grid
    canvas = None
    for n, tile in enumerate(tiles):
        picture = one(job.heif_input(tile))
        if canvas is None:
            canvas = Image.new(picture.mode, (picture.width * cols, picture.height * rows))
        canvas.paste(picture, ((n % cols) * picture.width, (n // cols) * picture.height))
    assert canvas is not None
    return canvas.crop((0, 0, width, height))


def check(job: Job) -> None:
    """Refuse (``DecodeError``) an AVIF whose AV1 data libavif finds damaged when it decodes it; nothing for
    other inputs, or where libavif fails for another reason. It costs a decode of the image."""
    if job.source.info.format != "avif" or job.thumbnail is not None:
        return
    try:
        decode(job)
    except DecodeError:
        raise
    except Exception:
        return  # a failure that says nothing about the data (a feature libavif lacks): the backend's picture stands
