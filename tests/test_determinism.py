"""The same call gives the same bytes, every time, on every backend (caches and ETags rely on it)."""

from __future__ import annotations

import hashlib

import pytest

import heicconv
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_backend

BACKENDS = ("pillow", "vips", "wand", "ffmpeg")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("fmt", "options"), [("jpeg", {"max_size": 100}), ("png", {}), ("webp", {"max_size": 150})])
def test_repeated_calls_give_identical_bytes(backend: str, fmt: str, options: dict[str, int]) -> None:
    """A 400x300 photo, resized to an odd height (100x75) for JPEG.

    libjpeg-turbo reads a 4:2:0 luma plane to an even height; the ffmpeg backend handed simplejpeg a plane of 75
    rows, so the 76th came from whatever memory followed it, and the JPEG differed from one call to the next.
    """
    require_backend(backend)
    photo = make_heic(size=(400, 300))
    digests = {
        hashlib.sha256(heicconv.convert(photo, fmt, heicconv.Options(**options), backend=backend)).hexdigest()  # type: ignore[arg-type]
        for _ in range(8)
    }
    assert len(digests) == 1
