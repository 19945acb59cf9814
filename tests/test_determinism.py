"""The same call gives the same bytes, every time, on every backend (caches and ETags rely on it)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from pathlib import Path

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


CORPUS = os.environ.get("HEICCONV_CORPUS")


@pytest.mark.skipif(not CORPUS, reason="set HEICCONV_CORPUS to the shared corpus folder")
def test_the_bytes_do_not_depend_on_what_the_process_converted_before() -> None:
    """Odd-sized photos between other conversions: nothing of theirs may reach their bytes.

    Two leaks did: the ffmpeg backend's full-size JPEG read one byte past each odd-width luma row (the next
    row's, and past the plane's end, the heap's), and ImageMagick's TIFF writer skipped its pad bytes, which kept
    what its memory held before. The corpus's synthetic files stir the memory as a service's uploads would.
    """
    for backend in ("ffmpeg", "wand"):
        require_backend(backend)
    root = Path(CORPUS or "")
    targets = [
        ("real/empty_icc.heic", "ffmpeg", "jpeg"),
        ("synthetic/RGB_8__29x100.heif", "ffmpeg", "jpeg"),
        ("synthetic/L_8__128x128.heif", "wand", "tiff"),
    ]
    seen: dict[tuple[str, str, str], set[str]] = {target: set() for target in targets}
    for other in sorted((root / "synthetic").glob("*.heif"))[:12]:
        for target in targets:
            path, backend, fmt = target
            seen[target].add(
                hashlib.sha256(heicconv.convert((root / path).read_bytes(), fmt, backend=backend)).hexdigest()
            )
        for backend, fmt in (("wand", "png"), ("wand", "tiff"), ("wand", "webp"), ("ffmpeg", "jpeg")):
            with contextlib.suppress(heicconv.HeicconvError):  # a refusal stirs the memory all the same
                heicconv.convert(other.read_bytes(), fmt, backend=backend)
    assert {target: len(digests) for target, digests in seen.items()} == dict.fromkeys(targets, 1)


def test_tiff_pad_bytes_between_blocks_are_zero() -> None:
    from heicconv.container.output_edits import tiff_zero_padding

    # A little-endian TIFF: 3 bytes of strip data at 8, its pad byte at 11 (0xAB), the directory at 12.
    entries = [(256, 3, 1, 3), (257, 3, 1, 1), (273, 4, 1, 8), (279, 4, 1, 3)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + bytes(4)
    tiff = b"II*\x00" + struct.pack("<I", 12) + b"\x01\x02\x03" + b"\xab" + ifd
    fixed = tiff_zero_padding(tiff)
    assert fixed[11] == 0 and fixed[:11] == tiff[:11] and fixed[12:] == tiff[12:]
    assert tiff_zero_padding(fixed) == fixed
    assert tiff_zero_padding(b"not a tiff") == b"not a tiff"
