"""Ultra HDR JPEG as an input (issue 24 item 3): recognised by probe and ``heicconv info``, and its gain map kept
into JPEG or dropped with a note, as for a HEIF source. heicconv writes these itself (heicconv.container.ultrahdr)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageStat

import heicconv
from heicconv.container import gainmap, ultrahdr
from heicconv.container.gainmap import Metadata
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

BACKENDS = ("pillow", "ffmpeg", "vips", "wand")


def _ultra_hdr(orientation: int = 1) -> bytes:
    """An Ultra HDR JPEG as heicconv writes it: a 64x48 photo and a 32x24 map, bright on its left half, headroom 4."""
    photo = io.BytesIO()
    fixtures.gradient((64, 48)).save(photo, "JPEG", quality=95, exif=fixtures.exif_block(orientation))
    gain = Image.new("L", (32, 24), 0)
    gain.paste(255, (0, 0, 16, 24))
    coded = io.BytesIO()
    gain.save(coded, "JPEG", quality=95)
    return ultrahdr.assemble(photo.getvalue(), coded.getvalue(), Metadata(0.0, 2.0, alternate_headroom_log2=2.0))


def _gain_map_of(jpeg: bytes) -> Image.Image:
    found = gainmap.read_ultra_hdr(jpeg)
    assert found is not None and found.metadata is not None
    return Image.open(io.BytesIO(found.jpeg))


def test_probe_reports_the_gain_map_of_an_ultra_hdr_jpeg() -> None:
    info = heicconv.probe(_ultra_hdr())
    assert info.format == "jpeg"
    assert info.gain_map == "Ultra HDR gain map 32x24, headroom 4.00 (ISO 21496-1 APP2 segment)"
    assert info.hdr_headroom == 4.0
    assert heicconv.probe(fixtures.make_image("jpeg")).gain_map == ""


def test_what_heicconv_writes_it_reads_back() -> None:
    source = fixtures.make_hdr_heic((64, 48), rotation=90)
    written = heicconv.convert(source, "jpeg")
    assert heicconv.probe(written).hdr_headroom == pytest.approx(heicconv.probe(source).hdr_headroom, abs=1e-3)
    assert heicconv.probe(written).gain_map.startswith("Ultra HDR gain map 24x32, headroom 3.48")


def test_heicconv_info_shows_it(tmp_path: Path) -> None:
    (tmp_path / "u.jpg").write_bytes(_ultra_hdr())
    run = subprocess.run(
        [sys.executable, "-m", "heicconv", "info", "u.jpg", "--json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout.splitlines()[0])
    assert record["hdr_headroom"] == 4.0 and "Ultra HDR gain map 32x24" in record["gain_map"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_gain_map_is_kept_into_jpeg_and_turned_with_the_photo(backend: str) -> None:
    require_backend(backend)
    result = heicconv.convert_with_report(_ultra_hdr(orientation=6), "jpeg", backend=backend)
    assert (result.width, result.height) == (48, 64)
    assert any(n.kind == "hdr" and "kept: Ultra HDR JPEG" in n for n in result.notes)
    assert heicconv.probe(result.data).hdr_headroom == 4.0
    # One description of the map in the output's XMP: the source's own is not carried twice.
    assert result.data.count(b"Container:Directory>") == 2  # one element, opened and closed
    gain = _gain_map_of(result.data).convert("L")
    assert gain.size == (24, 32)  # turned 90 degrees clockwise, as EXIF orientation 6 turns the photo
    top, bottom = ImageStat.Stat(gain.crop((0, 0, 24, 12))).mean[0], ImageStat.Stat(gain.crop((0, 20, 24, 32))).mean[0]
    assert top > 200 and bottom < 50


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_gain_map_is_dropped_with_a_note_elsewhere_or_when_asked(backend: str) -> None:
    require_backend(backend)
    png = heicconv.convert_with_report(_ultra_hdr(), "png", backend=backend)
    assert png.dropped == ("the HDR gain map (heicconv writes it into JPEG only, not PNG)",)
    assert b"hdr-gain-map" not in png.data
    sdr = heicconv.convert_with_report(_ultra_hdr(), "jpeg", heicconv.Options(hdr="drop"), backend=backend)
    assert any(n.kind == "hdr" and "not kept (hdr='drop')" in n for n in sdr.notes)
    assert heicconv.probe(sdr.data).gain_map == "" and b"hdr-gain-map" not in sdr.data


def test_a_map_that_is_not_where_the_jpeg_says_is_reported_not_carried() -> None:
    data = _ultra_hdr()
    cut = data[: data.rindex(b"\xff\xd8")]  # the map JPEG removed, the MPF index left pointing past the end
    assert heicconv.probe(cut).gain_map.endswith("(the JPEG says it has a gain map but holds none where it says)")
    result = heicconv.convert_with_report(cut, "jpeg")
    assert any("the HDR gain map (the JPEG says it has a gain map" in d for d in result.dropped)
