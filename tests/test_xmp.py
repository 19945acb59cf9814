"""XMP is edited as XML: upright orientation, and location removed in every namespace that records one."""

from __future__ import annotations

import io

import pytest

import heicconv
from heicconv.container import xmp
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

BACKENDS = ("pillow", "vips", "wand")

_NS = (
    'xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
    'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    'xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/" '
    'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"'
)
# Location in every form RDF allows: attributes, simple elements, a structure, an array of structures.
PLACED = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" {_NS} exif:GPSLatitude="47,13.6N" drone-dji:GpsLongitude="+8.53" tiff:Orientation="6">
 <exif:GPSLongitude>8,32.1E</exif:GPSLongitude>
 <photoshop:City>Zürich</photoshop:City><photoshop:Country>Switzerland</photoshop:Country>
 <Iptc4xmpCore:Location>Old Town</Iptc4xmpCore:Location>
 <Iptc4xmpExt:LocationCreated><rdf:Bag><rdf:li rdf:parseType="Resource">
  <Iptc4xmpExt:City>Zürich</Iptc4xmpExt:City><exif:GPSLatitude>47,22.6N</exif:GPSLatitude>
 </rdf:li></rdf:Bag></Iptc4xmpExt:LocationCreated>
 <Iptc4xmpExt:LocationShown rdf:parseType="Resource">
  <Iptc4xmpExt:Sublocation>Lake</Iptc4xmpExt:Sublocation>
 </Iptc4xmpExt:LocationShown>
 <dc:creator><rdf:Seq><rdf:li>Ada</rdf:li></rdf:Seq></dc:creator>
</rdf:Description></rdf:RDF></x:xmpmeta>
{" " * 200}
<?xpacket end="w"?>""".encode()
PLACES = (b"GPS", b"Gps", b"City", b"Country", b"Location", b"47,", b"8,32", b"Lake", b"Old Town")


def test_every_location_form_is_removed_and_the_rest_kept() -> None:
    out = xmp.rewrite(PLACED, strip_location=True)
    assert not [p for p in PLACES if p in out], out
    assert b"<rdf:li>Ada</rdf:li>" in out and b'tiff:Orientation="1"' in out
    assert out.startswith(b'<?xpacket begin="\xef\xbb\xbf"') and out.endswith(b" " * 200 + b'\n<?xpacket end="w"?>')


def test_keep_changes_only_the_orientation() -> None:
    out = xmp.rewrite(PLACED, strip_location=False)
    assert all(p in out for p in (b"GPSLatitude", b"LocationCreated", b"photoshop:City")), out
    assert b'tiff:Orientation="1"' in out and b'tiff:Orientation="6"' not in out
    element_form = PLACED.replace(b' tiff:Orientation="6"', b"").replace(
        b"<dc:creator>", b"<tiff:Orientation>8</tiff:Orientation><dc:creator>"
    )
    assert b"<tiff:Orientation>1</tiff:Orientation>" in xmp.rewrite(element_form, strip_location=False)


def test_a_packet_with_nothing_to_change_is_left_byte_for_byte() -> None:
    assert xmp.rewrite(fixtures.XMP_PACKET, strip_location=True) == fixtures.XMP_PACKET


def test_entities_are_never_expanded() -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>'
    with pytest.raises(xmp.XmpError, match="DTD or entities"):
        xmp.rewrite(laughs, strip_location=False)


def test_latin1_packets_are_read_and_written_as_utf8() -> None:
    packet = PLACED.decode("utf-8").replace("\ufeff", "").encode("latin-1")
    out = xmp.rewrite(packet, strip_location=True)
    assert b"Ada" in out and b"City" not in out and "Zürich".encode("latin-1") not in out
    out.decode("utf-8")  # valid UTF-8 now


@pytest.mark.parametrize("backend", BACKENDS)
def test_strip_location_reaches_the_output_on_every_backend(backend: str) -> None:
    require_backend(backend)
    from PIL import Image

    data = fixtures.make_heic((64, 48), xmp=PLACED, exif=fixtures.exif_block(gps=True))
    result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(metadata="strip-location"), backend=backend)
    written = Image.open(io.BytesIO(result.data)).info.get("xmp", b"")
    assert b"Ada" in written and not [p for p in PLACES if p in written]
    assert "location removed from XMP" in result.notes
    exif = Image.open(io.BytesIO(result.data)).getexif()
    assert 0x8825 not in exif  # the EXIF GPS directory is gone too


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unreadable_packet_is_dropped_and_reported(backend: str) -> None:
    require_backend(backend)
    data = fixtures.make_heic((64, 48), xmp=b"<x:xmpmeta><unclosed></x:xmpmeta>")
    result = heicconv.convert_with_report(data, "jpeg", backend=backend)
    assert any("XMP (the XMP packet is not well-formed XML" in d for d in result.dropped)
    assert b"unclosed" not in result.data
