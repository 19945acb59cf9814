"""Newer HEIF/AVIF forms on every backend: the low-overhead 'mini' form, AVIF inputs, sequence-only files."""

from __future__ import annotations

import io

import pytest

import heicconv
from heicconv.container import mini
from heicconv.container.info import _TRANSFORM_TO_EXIF
from heicconv.container.isobmff import _box, _full_box
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend, require_module

np = require_module("numpy", "test")
BACKENDS = ("pillow", "vips", "wand")
_TRANSPOSE = {2: [0], 3: [3], 4: [1], 5: [5], 6: [4], 7: [6], 8: [2]}


def _upright(picture: object, orientation: int) -> object:
    from PIL import Image

    for method in _TRANSPOSE.get(orientation, []):
        picture = picture.transpose(Image.Transpose(method))  # type: ignore[attr-defined]
    return picture


def _mean_difference(a: object, b: object) -> float:
    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_low_overhead_heif_converts_on_every_backend(backend: str, mode: str) -> None:
    require_backend(backend)
    from PIL import Image

    for orientation in (1, 2, 6, 7):
        data = fixtures.make_mini_heic((128, 64), mode, orientation=orientation, exif=fixtures.exif_block())
        assert data[4:12] == b"ftypmif3" and data[20:24] == b"mini"
        info = heicconv.probe(data)
        expected = _upright(fixtures.gradient((128, 64), mode), orientation)
        assert (info.width, info.height, info.alpha, info.grayscale) == (
            *expected.size,  # type: ignore[attr-defined]
            mode == "RGBA",
            mode == "L",
        )
        result = heicconv.convert_with_report(data, "png", backend=backend)
        out = Image.open(io.BytesIO(result.data))
        assert out.mode == mode and out.size == expected.size  # type: ignore[attr-defined]
        assert _mean_difference(out, expected) < 4, orientation
        assert "EXIF kept" in result.notes


def test_low_overhead_heif_reads_as_libheif_reads_it() -> None:
    """pillow-heif's own libheif (1.19+) reads the 'mini' box itself: heicconv's expansion gives the same pixels."""
    import pillow_heif

    data = fixtures.make_mini_heic((128, 64), "RGBA", orientation=6)
    direct = pillow_heif.open_heif(io.BytesIO(data)).to_pillow()
    expanded = pillow_heif.open_heif(io.BytesIO(mini.expand(data))).to_pillow()
    assert direct.size == expanded.size == (64, 128)
    assert _mean_difference(direct, expanded) == 0


def test_a_truncated_low_overhead_heif_is_refused() -> None:
    data = fixtures.make_mini_heic()
    for cut in (len(data) - 1, len(data) // 2):
        with pytest.raises(heicconv.DecodeError, match="truncated"):
            heicconv.convert(data[:cut], "png")


def _avif(size: tuple[int, int] = (96, 64), mode: str = "RGBA") -> bytes:
    buf = io.BytesIO()
    fixtures.gradient(size, mode).save(buf, "AVIF", quality=95)
    return buf.getvalue()


@pytest.mark.parametrize("backend", BACKENDS)
def test_avif_inputs_are_upright_on_every_backend(backend: str) -> None:
    """Pillow's AVIF plugin leaves irot/imir to heicconv; libheif applies them: the pictures must agree."""
    require_backend(backend)
    from PIL import Image

    base = _avif()
    for rotation in (0, 90, 180, 270):
        for mirror in (None, 0, 1):
            data = fixtures.set_heif_transform(base, rotation, mirror)
            expected = _upright(fixtures.gradient((96, 64), "RGBA"), _TRANSFORM_TO_EXIF[(rotation, mirror)])
            out = Image.open(io.BytesIO(heicconv.convert(data, "png", backend=backend)))
            assert out.size == expected.size, (rotation, mirror)  # type: ignore[attr-defined]
            assert _mean_difference(out.convert("RGBA"), expected) < 3, (rotation, mirror)


def _sequence(brands: bytes) -> bytes:
    moov = _box(b"moov", _full_box(b"mvhd", 0, 0, bytes(96)))
    return _box(b"ftyp", brands[:4] + b"\0\0\0\0" + brands) + moov + _box(b"mdat", bytes(64))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("brands", "fmt"), [(b"msf1hevc", "HEIC"), (b"avismsf1", "AVIF")])
def test_sequence_only_files_give_one_clear_error(backend: str, brands: bytes, fmt: str) -> None:
    require_backend(backend)
    with pytest.raises(heicconv.DecodeError, match=f"the {fmt} file holds only an image sequence"):
        heicconv.convert(_sequence(brands), "jpeg", backend=backend)
