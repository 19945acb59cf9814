"""Damage inside complete files, made from any photo, and the verdict on what a backend makes of it.

Truncated files are easy to refuse: the file says it is longer than it is. The cases here keep every
byte count right and damage the data inside, as real uploads do:

- :func:`zero_tail`: the last part of the file is zeros, same length (a preallocated file whose upload
  or sync stopped early);
- :func:`zero_hole`: a run of zeros in the middle of one tile's coded data (a failed write);
- :func:`unit_past_extent`: one tile's first NAL unit (or OBU) says it is longer than the tile's data
  (a file in the wild whose tile ends 32 bytes before its unit does);
- :func:`reappended_end`: a JPEG cut short with its end marker put back;
- :func:`changed_bytes`: bytes changed (XOR 0xFF) in the middle of one tile's coded data.

The first four are structural damage: heicconv refuses them on every backend with ``DecodeError``,
before any decoder runs. Changed bytes keep the framing; heicconv refuses them where a decoder reports
them or leaves its tell-tale, and :func:`verdict` tells the cases that still come out as a picture
apart from those whose change no one can see (PSNR against the undamaged conversion).
:func:`changed_bytes_rates` counts the three for one photo and backend; the project's
``benchmarks/damage_rates.py`` runs it over corpus photos and every backend.

>>> from heicconv.testing.fixtures import make_grid, gradient
>>> photo = make_grid(gradient((256, 128)), tile=128)
>>> import heicconv
>>> try:
...     heicconv.convert(zero_tail(photo, 0.4), "jpeg")
... except heicconv.DecodeError as exc:
...     print(str(exc)[:35])
the HEIC file is damaged: tile 2 of
"""

from __future__ import annotations

import io
import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..container import isobmff
from ..errors import DecodeError, HeicconvError
from ..options import Options

__all__ = [
    "Verdict",
    "changed_bytes",
    "coded_tiles",
    "psnr",
    "reappended_end",
    "unit_past_extent",
    "verdict",
    "zero_hole",
    "zero_tail",
]

#: Changed bytes that leave the picture at least this close to the undamaged one count as invisible.
INVISIBLE_DB = 30.0


def zero_tail(data: bytes, fraction: float) -> bytes:
    """``data`` with its last ``fraction`` of bytes set to zero, the length unchanged."""
    keep = len(data) - max(1, int(len(data) * fraction))
    return data[:keep] + bytes(len(data) - keep)


def coded_tiles(data: bytes) -> list[tuple[int, int]]:
    """(start, end) in ``data`` of the coded data of each tile (or the one coded item, or each coded layer of an
    overlay) of the primary image."""
    c = isobmff.parse(data)
    primary = c.items[c.primary_id]
    ids = primary.refs.get(b"dimg", []) if primary.type in (b"grid", b"iovl") else [primary.id]
    spans = []
    for i in ids:
        item = c.items[i]
        if item.construction_method == 0 and len(item.extents) == 1:
            offset, length = item.extents[0]
            spans.append((item.base_offset + offset, item.base_offset + offset + length))
    if not spans:
        raise ValueError("the primary image has no tile coded in one extent of the file")
    return spans


def zero_hole(data: bytes, rng: random.Random, length: int = 256) -> bytes:
    """``data`` with ``length`` zero bytes written in the middle part of one tile's coded data."""
    start, end = rng.choice(coded_tiles(data))
    at = _inside(start, end, length, rng)
    return data[:at] + bytes(min(length, end - at)) + data[at + min(length, end - at) :]


def unit_past_extent(data: bytes, rng: random.Random, extra: int = 32) -> bytes:
    """``data`` with one tile's first length field (HEVC NAL unit, 4 bytes) grown by ``extra``: the unit then
    runs past the tile's data, as if the tile had been cut ``extra`` bytes short."""
    start, _ = rng.choice(coded_tiles(data))
    length = int.from_bytes(data[start : start + 4], "big")
    return data[:start] + (length + extra).to_bytes(4, "big") + data[start + 4 :]


def reappended_end(jpeg: bytes, fraction: float) -> bytes:
    """A JPEG cut after ``fraction`` of its bytes, with its end marker (EOI) put back."""
    return jpeg[: int(len(jpeg) * fraction)] + b"\xff\xd9"


def changed_bytes(data: bytes, rng: random.Random, count: int = 32) -> bytes:
    """``data`` with ``count`` bytes XORed with 0xFF in the middle part of one tile's coded data."""
    start, end = rng.choice(coded_tiles(data))
    at = _inside(start, end, count, rng)
    buf = bytearray(data)
    for i in range(at, min(end, at + count)):
        buf[i] ^= 0xFF
    return bytes(buf)


def _inside(start: int, end: int, length: int, rng: random.Random) -> int:
    """A position in the middle 80 % of [start, end) (past the unit headers, before the last bytes)."""
    lo = start + (end - start) // 10 + 8
    hi = max(lo, end - (end - start) // 10 - length)
    return rng.randrange(lo, hi + 1)


def psnr(a: bytes, b: bytes) -> float:
    """PSNR in dB between two encoded pictures (decoded to 8-bit RGB); 0 if their sizes differ, inf if equal."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(a)) as ia, Image.open(io.BytesIO(b)) as ib:
        if ia.size != ib.size:
            return 0.0
        x = np.asarray(ia.convert("RGB"), dtype=np.float64)
        y = np.asarray(ib.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


@dataclass(frozen=True)
class Verdict:
    """What a backend made of a damaged input: ``refused`` (a ``DecodeError``), ``invisible`` (a picture within
    :data:`INVISIBLE_DB` of the undamaged one) or ``visible``; ``error`` for any other heicconv error."""

    kind: str
    db: float | None = None
    message: str = ""


def verdict(
    damaged: bytes, undamaged_output: bytes, fmt: str = "png", options: Options | None = None, **convert: Any
) -> Verdict:
    """Convert ``damaged`` like ``undamaged_output`` was converted and say what came out."""
    import heicconv

    try:
        out = heicconv.convert(damaged, fmt, options, **convert)
    except DecodeError as exc:
        return Verdict("refused", message=str(exc))
    except HeicconvError as exc:
        return Verdict("error", message=f"{type(exc).__name__}: {exc}")
    db = psnr(out, undamaged_output)
    return Verdict("invisible" if db >= INVISIBLE_DB else "visible", db)


def changed_bytes_rates(photo: bytes, backend: str, cases: int, seed: int = 1) -> Counter[str]:
    """How ``cases`` seeded changed-bytes copies of ``photo`` come out on ``backend``, converted to JPEG (the
    output every backend's fastest route serves) and compared with the undamaged photo's JPEG."""
    import heicconv

    options = Options(quality=90, hdr="drop")
    reference = heicconv.convert(photo, "jpeg", options, backend=backend)
    rng = random.Random(f"{seed}:{backend}")
    damaged = (changed_bytes(photo, rng) for _ in range(cases))
    return Counter(verdict(d, reference, "jpeg", options, backend=backend).kind for d in damaged)
