"""XMP packets read as XML: the orientation reset to upright, and location removed in every namespace that holds one.

An XMP packet is RDF/XML. Rewriting it with patterns misses the forms RDF allows (a property as an
attribute or as an element, a structure such as IPTC's ``LocationCreated``); this module parses the
packet with the standard library's XML parser (a packet that declares a DTD or entities is refused
before parsing, so no entity is ever expanded), edits the tree and writes it back with the packet's
own prefixes, keeping the ``<?xpacket?>`` wrapper and its padding as they were.

>>> packet = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
...     b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
...     b' exif:GPSLatitude="47,13.6N" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
>>> out = rewrite(packet, strip_location=True)
>>> b"GPS" in out, b'tiff:Orientation="1"' in out
(False, True)
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

__all__ = ["GAIN_MAP", "LOCATION", "XmpError", "rewrite"]

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_TIFF = "http://ns.adobe.com/tiff/1.0/"

#: Where a place is recorded: namespace -> local names (``"GPS*"``: every name with that prefix).
LOCATION: dict[str, tuple[str, ...]] = {
    "http://ns.adobe.com/exif/1.0/": ("GPS*",),
    "http://cipa.jp/exif/1.0/": ("GPS*",),
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": ("LocationCreated", "LocationShown", "City", "Sublocation"),
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": ("Location", "CountryCode"),
    "http://ns.adobe.com/photoshop/1.0/": ("City", "State", "Country"),
    "http://www.dji.com/drone-dji/1.0/": ("Gps*", "AbsoluteAltitude", "RelativeAltitude"),
    "http://ns.google.com/photos/1.0/camera/": ("Location*",),
    "http://purl.org/dc/elements/1.1/": ("coverage",),
}


#: The namespaces in which an Ultra HDR JPEG's XMP says it has a gain map, and where it is: heicconv reads the map
#: itself, and writes these again for the output that keeps it (``heicconv.container.ultrahdr``).
GAIN_MAP = ("http://ns.adobe.com/hdr-gain-map/1.0/", "http://ns.google.com/photos/1.0/container/")


class XmpError(ValueError):
    """The packet is not well-formed XML heicconv will edit (the caller decides: keep it or drop it)."""


def _is_location(tag: str) -> bool:
    if not tag.startswith("{"):
        return False
    uri, _, local = tag[1:].partition("}")
    return any(local == n or (n.endswith("*") and local.startswith(n[:-1])) for n in LOCATION.get(uri, ()))


def _root_span(text: str) -> tuple[int, int]:
    """Where the packet's one root element starts and ends (the wrapper and padding lie outside)."""
    start = 0
    while True:
        start = text.find("<", start)
        if start < 0:
            raise XmpError("the XMP packet has no element")
        if not text.startswith(("<?", "<!--"), start):
            break
        start = text.find("?>" if text.startswith("<?", start) else "-->", start) + 2
    found = re.match(r"<([^\s/>]+)", text[start:])
    if found is None:
        raise XmpError("the XMP packet's root element has no name")
    close = text.rfind(f"</{found.group(1)}>")
    end = close + len(found.group(1)) + 3 if close > start else text.find("/>", start) + 2
    return start, end


def rewrite(packet: bytes, *, strip_location: bool, drop: tuple[str, ...] = ()) -> bytes:
    """``packet`` with ``tiff:Orientation`` set to 1 and, with ``strip_location``, every location property removed;
    and every property in the namespaces ``drop`` lists (:data:`GAIN_MAP`).

    Raises :class:`XmpError` if the packet declares a DTD or entities, or is not well-formed XML.
    """
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise XmpError("the XMP packet declares a DTD or entities")
    try:
        text = packet.decode("utf-8")
    except UnicodeDecodeError:
        text = packet.decode("latin-1")  # some cameras write Latin-1 without saying so; written back as UTF-8
    start, end = _root_span(text)
    prefixes: dict[str, str] = {}
    try:
        for _, (prefix, uri) in ET.iterparse(_Source(text[start:end]), events=("start-ns",)):
            prefixes.setdefault(uri, prefix)
        root = ET.fromstring(text[start:end])
    except ET.ParseError as exc:
        raise XmpError(f"the XMP packet is not well-formed XML ({exc})") from exc
    if not _edit(root, strip_location, drop):
        return packet
    for uri in drop:  # not declared either: what is left says nothing of it
        prefixes.pop(uri, None)  # nothing to change: the packet stays byte for byte as the camera wrote it
    body = _serialise(root, prefixes)
    return (text[:start] + body + text[end:]).encode("utf-8")


class _Source:
    """A file-like object over a string, for ``iterparse``."""

    def __init__(self, text: str) -> None:
        self._data = text.encode("utf-8")
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk, self._pos = self._data[self._pos : end], min(end, len(self._data))
        return chunk


def _edit(element: ET.Element, strip_location: bool, drop: tuple[str, ...] = ()) -> bool:
    """Reset the orientation, (``strip_location``) remove location and the namespaces ``drop`` below ``element``;
    whether anything changed."""
    changed = False
    if drop:
        prefixes = tuple(f"{{{uri}}}" for uri in drop)
        for key in [k for k in element.attrib if k.startswith(prefixes)]:
            del element.attrib[key]
            changed = True
        for child in [c for c in element if c.tag.startswith(prefixes)]:
            element.remove(child)
            changed = True
    orientation = f"{{{_TIFF}}}Orientation"
    if element.attrib.get(orientation, "1").strip() != "1":
        element.set(orientation, "1")
        changed = True
    if element.tag == orientation and (element.text or "1").strip() != "1":
        element.text = "1"
        changed = True
    if strip_location:
        for key in [k for k in element.attrib if _is_location(k)]:
            del element.attrib[key]
            changed = True
        for child in [c for c in element if _is_location(c.tag)]:
            element.remove(child)
            changed = True
    for child in element:
        changed = _edit(child, strip_location, drop) or changed
    return changed


def _serialise(root: ET.Element, prefixes: dict[str, str]) -> str:
    """XML text for ``root`` with the packet's own prefixes, every namespace declared on the root."""
    used = dict(prefixes)

    def name(qualified: str) -> str:
        if not qualified.startswith("{"):
            return qualified
        uri, _, local = qualified[1:].partition("}")
        if uri not in used:
            used[uri] = f"ns{len(used)}"
        prefix = used[uri]
        return f"{prefix}:{local}" if prefix else local

    def write(element: ET.Element, out: list[str], top: bool) -> None:
        tag = name(element.tag)
        attrs = [f' {name(k)}="{_escape(v, True)}"' for k, v in element.attrib.items()]
        if top:
            declared = [
                f' xmlns:{p}="{_escape(u, True)}"' if p else f' xmlns="{_escape(u, True)}"' for u, p in used.items()
            ]
            attrs = declared + attrs
        out.append(f"<{tag}{''.join(attrs)}")
        if element.text is None and len(element) == 0:
            out.append("/>")
        else:
            out.append(">" + _escape(element.text or "", False))
            for child in element:
                write(child, out, False)
                out.append(_escape(child.tail or "", False))
            out.append(f"</{tag}>")

    # Names first (the root's declarations must list every namespace used below it), then the text.
    scratch: list[str] = []
    write(root, scratch, False)
    out: list[str] = []
    write(root, out, True)
    return "".join(out)


def _escape(value: str, attribute: bool) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace('"', "&quot;") if attribute else value
