"""The HEIF container reader and the EXIF helpers, on generated files."""

from __future__ import annotations

import io

import pytest

import heicconv
from heicconv.container import exif
from heicconv.container.info import read_source
from heicconv.testing import fixtures


def test_probe_reads_what_the_file_holds() -> None:
    data = fixtures.make_heic((40, 30), "RGBA", images=3, primary=2, thumbnail=16, exif=fixtures.exif_block())
    info = heicconv.probe(data)
    assert (info.images, info.primary_index, info.width, info.height) == (3, 2, 56, 30)
    assert info.alpha and info.exif_bytes > 0 and info.thumbnails == (16,)
    assert info.image_sizes == ((40, 30), (48, 30), (56, 30))


@pytest.mark.parametrize(
    ("rotation", "mirror", "orientation"),
    [
        (0, None, 1),
        (0, 1, 2),
        (180, 0, 2),
        (180, None, 3),
        (0, 0, 4),
        (180, 1, 4),
        (90, 0, 5),
        (270, 1, 5),
        (270, None, 6),
        (270, 0, 7),
        (90, 1, 7),
        (90, None, 8),
    ],
)
def test_irot_imir_map_to_exif_orientations(rotation: int, mirror: int | None, orientation: int) -> None:
    data = fixtures.set_heif_transform(fixtures.make_heic((60, 40)), rotation, mirror)
    info = heicconv.probe(data)
    assert info.orientation == orientation
    assert (info.width, info.height) == ((40, 60) if rotation in (90, 270) else (60, 40))


def test_bomb_header_is_refused_on_the_header_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from heicconv.backends.contract import PipelineBackend

    data = fixtures.set_ispe(fixtures.make_heic((64, 64)), 40000, 40000)
    # probe() says the header lies (its HEVC stream codes 64x64); a conversion refuses the size first.
    with pytest.raises(heicconv.DecodeError, match=r"codes a 64x64 picture but its header .* declares 40000x40000"):
        heicconv.probe(data)

    def must_not_decode(self: object, job: object) -> None:
        raise AssertionError("the backend was asked to decode a bomb")

    monkeypatch.setattr(PipelineBackend, "load", must_not_decode)
    with pytest.raises(heicconv.LimitExceededError, match="40000x40000"):
        heicconv.convert(data, "jpeg")


@pytest.mark.parametrize("cut", [*range(0, 400, 7), -1])
def test_truncated_files_raise_decode_errors(cut: int) -> None:
    data = fixtures.make_heic((32, 32), exif=fixtures.exif_block())
    assert len(data) > 400
    # Too short to carry an 'ftyp' box, the bytes are not recognisably HEIF at all.
    expected = heicconv.DecodeError if cut == -1 or cut >= 16 or cut == 0 else heicconv.HeicconvError
    with pytest.raises(expected) as info:
        read_source(data[:cut])
    assert isinstance(info.value, (heicconv.DecodeError, heicconv.UnsupportedInputError))


def test_input_byte_limit() -> None:
    with pytest.raises(heicconv.LimitExceededError, match="max_input_bytes"):
        heicconv.convert(fixtures.make_heic(), "jpeg", limits=heicconv.Limits(max_input_bytes=100))


def test_exif_orientation_is_reset_in_place() -> None:
    from PIL import Image

    raw = fixtures.exif_block(orientation=6)[6:]
    assert exif.orientation(raw) == 6
    fixed = exif.reset_orientation(raw)
    assert len(fixed) == len(raw) and exif.orientation(fixed) == 1
    e = Image.Exif()
    e.load(b"Exif\x00\x00" + fixed)
    assert e[0x010F] == "heicconv"


def test_oversized_exif_is_trimmed_for_jpeg_and_the_loss_is_reported() -> None:
    big = fixtures.exif_block(extra=70_000)
    data = fixtures.make_heic((32, 32), exif=big)
    result = heicconv.convert_with_report(data, "jpeg")
    assert result.dropped and any("0x010E" in d for d in result.dropped)
    from PIL import Image

    img = Image.open(io.BytesIO(result.data))
    assert img.getexif()[0x010F] == "heicconv"  # what matters is kept
    png = Image.open(io.BytesIO(heicconv.convert(data, "png")))
    assert len(png.getexif()[0x010E]) == 70_000  # PNG holds it all


def test_strip_location_removes_gps_only() -> None:
    raw = fixtures.exif_block(gps=True)[6:]
    out = exif.strip_location(raw)
    from PIL import Image

    e = Image.Exif()
    e.load(b"Exif\x00\x00" + out)
    assert 0x8825 not in e and e[0x010F] == "heicconv"
