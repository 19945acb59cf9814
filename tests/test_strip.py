"""``metadata="strip"`` writes no EXIF at all, on every local backend and output format.

Not even the small block some writers make up themselves (libvips' WebP writer adds one with the
resolution and orientation): each output's own container is parsed for wherever EXIF can live.
"""

from __future__ import annotations

import struct

import pytest

import heicconv
from heicconv.container import isobmff
from heicconv.options import formats
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

BACKENDS = ["pillow", "vips", "wand", "ffmpeg"]


def exif_blocks(data: bytes, fmt: str) -> list[str]:
    """Where ``data`` (an output in ``fmt``) carries EXIF, in words; empty when it carries none."""
    found: list[str] = []
    if fmt == "jpeg":
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] not in (0xDA, 0xD9):
            length = struct.unpack_from(">H", data, pos + 2)[0]
            if data[pos + 1] == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
                found.append(f"an APP1 Exif segment at byte {pos}")
            pos += 2 + length
    elif fmt == "png":
        pos = 8
        while pos + 8 <= len(data):
            length, kind = struct.unpack_from(">I4s", data, pos)
            body = data[pos + 8 : pos + 8 + length]
            if kind == b"eXIf" or (kind in (b"tEXt", b"zTXt", b"iTXt") and body.lower().startswith(b"raw profile")):
                found.append(f"a {kind.decode()} chunk")
            pos += 12 + length
    elif fmt == "webp":
        pos = 12
        while pos + 8 <= len(data):
            kind, length = struct.unpack_from("<4sI", data, pos)
            if kind == b"EXIF":
                found.append("an EXIF chunk")
            pos += 8 + length + (length & 1)
    elif fmt == "tiff":
        from PIL import Image

        with Image.open(__import__("io").BytesIO(data)) as img:
            tags = img.tag_v2  # type: ignore[attr-defined]
            found += [f"TIFF tag {tag}" for tag in (0x8769, 0x8825) if tag in tags]  # Exif IFD, GPS IFD
    else:  # avif, heic: an Exif item
        container = isobmff.parse(data)
        found += [f"an Exif item ({i.id})" for i in container.items.values() if i.type == b"Exif"]
    return found


def test_exif_blocks_finds_exif_in_every_format() -> None:
    """The parser above finds the EXIF the pillow backend writes when metadata is kept (so it can fail)."""
    data = fixtures.make_heic((40, 30), exif=fixtures.exif_block(orientation=6))
    for fmt in formats.OUTPUT_FORMATS:
        if fmt == "tiff":  # TIFF output carries no EXIF on any backend (docs/fidelity.md)
            continue
        assert exif_blocks(heicconv.convert(data, fmt, backend="pillow"), fmt), fmt


@pytest.mark.parametrize("fmt", formats.OUTPUT_FORMATS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_strip_writes_no_exif(backend: str, fmt: str) -> None:
    require_backend(backend)
    if fmt not in heicconv.select(backend).capabilities.outputs:
        pytest.skip(f"{backend} does not write {fmt}")
    data = fixtures.make_heic((40, 30), exif=fixtures.exif_block(orientation=6))
    out = heicconv.convert(data, fmt, heicconv.Options(metadata="strip"), backend=backend)
    assert exif_blocks(out, fmt) == []
