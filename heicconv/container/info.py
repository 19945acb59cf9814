"""What an input holds, read from its header without decoding pixels."""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import ConfigError, DecodeError, HeicconvError, LimitExceededError
from ..options import Limits, formats
from . import completeness, gainmap, isobmff, mini
from . import xmp as xmp_tools

__all__ = ["ImageInfo", "Source", "probe", "read_source"]


@dataclass(frozen=True)
class ImageInfo:
    """What a file holds. ``width``/``height`` are the primary image's, as displayed (upright).

    ``thumbnails`` lists the longest side of each embedded thumbnail of the
    primary image; ``image_sizes`` the displayed size of every top-level image.
    ``gain_map`` describes the primary's HDR gain map ("" without one): its kind, size, headroom
    and where that came from, or why it cannot be carried; ``hdr_headroom`` is that headroom
    (how much brighter than SDR white the HDR rendition reaches; 0.0 without a usable map).
    """

    format: str
    width: int
    height: int
    images: int = 1
    primary_index: int = 0
    bit_depth: int = 8
    alpha: bool = False
    grayscale: bool = False
    icc_profile: bool = False
    colour: str = "unspecified"  # "icc", "nclx" or "unspecified"
    exif_bytes: int = 0  # as a JPEG would store it: the TIFF block plus its 6-byte "Exif\0\0" header
    xmp: bool = False
    thumbnails: tuple[int, ...] = ()
    depth_images: int = 0
    orientation: int = 1  # EXIF-style orientation the decoder applies to make it upright
    image_sizes: tuple[tuple[int, int], ...] = ()
    gain_map: str = ""
    hdr_headroom: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["thumbnails"] = list(self.thumbnails)
        out["image_sizes"] = [list(s) for s in self.image_sizes]
        return out


@dataclass
class Source:
    """An input after its header was read: the public info plus what the pipeline needs."""

    data: bytes
    info: ImageInfo
    index: int  # selected top-level image
    width: int  # selected image, displayed
    height: int
    alpha: bool
    bit_depth: int
    grayscale: bool
    icc: bytes | None = None
    exif: bytes | None = None  # TIFF bytes ("II*\0"/"MM\0*"), no "Exif\0\0" prefix
    xmp: bytes | None = None
    orientation: int = 1
    container: isobmff.Container | None = None
    item: isobmff.Item | None = None
    thumbnails: list[isobmff.Item] = field(default_factory=list)


# irot (anticlockwise), then imir, -> the EXIF orientation that shows the same thing. imir's field is
# read as HEIF's amended text (ISO/IEC 23008-12 Amd 2, "mode") and as libheif, ImageMagick and iPhones
# do: 0 exchanges top and bottom, 1 exchanges left and right.
_TRANSFORM_TO_EXIF = {
    (0, None): 1,
    (0, 0): 4,
    (0, 1): 2,
    (90, None): 8,
    (90, 0): 5,
    (90, 1): 7,
    (180, None): 3,
    (180, 0): 2,
    (180, 1): 4,
    (270, None): 6,
    (270, 0): 7,
    (270, 1): 5,
}


def probe(data: bytes) -> ImageInfo:
    """Read what ``data`` holds without decoding pixels.

    >>> from heicconv.testing.fixtures import make_heic
    >>> info = probe(make_heic(size=(64, 48)))
    >>> (info.format, info.width, info.height)
    ('heic', 64, 48)
    """
    return read_source(data, whole=False).info


def read_source(
    data: bytes, image_index: int | None = None, limits: Limits | None = None, *, whole: bool = True
) -> Source:
    """Read the header, select the image, and check ``limits`` before anything is decoded.

    With ``whole`` (what a conversion needs), a file that ends before its format says it does
    raises ``DecodeError``; without it (``probe``), the header of a partial download is enough.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if limits is not None:
        limits.check_input_bytes(len(data))
    fmt = formats.detect(data)
    try:
        source = (
            _read_heif(data, fmt, image_index, whole, limits)
            if fmt in ("heic", "avif")
            else _read_pillow(data, fmt, image_index, whole, limits)
        )
    except HeicconvError:
        raise
    except Exception as exc:  # a malformed header must never escape as a raw error
        raise DecodeError(f"cannot read the {fmt} header: {exc}") from exc
    if limits is not None:
        check_limits(source.width, source.height, limits)
    return source


def check_limits(width: int, height: int, limits: Limits) -> None:
    if width > limits.max_width or height > limits.max_height:
        raise LimitExceededError(
            f"the image is {width}x{height}, over the limit of {limits.max_width}x{limits.max_height} "
            "(max_width, max_height)"
        )
    if width * height > limits.max_pixels:
        raise LimitExceededError(
            f"the image is {width}x{height} = {width * height:,} pixels, "
            f"over the limit of {limits.max_pixels:,} (max_pixels)"
        )


#: What libavif decodes at most (its default image size and dimension limits), per item and in total. heicconv
#: applies them to AVIF on every backend, before any decoder runs, so that all refuse the same files the same way.
AVIF_MAX_PIXELS = 16384 * 16384
AVIF_MAX_SIDE = 32768


def _check_avif_ceiling(c: isobmff.Container, item: isobmff.Item) -> None:
    for part in (c.items[i] for i in c.parts_of(item.id)):
        w, h = part.width, part.height
        if w * h > AVIF_MAX_PIXELS or max(w, h) > AVIF_MAX_SIDE:
            raise LimitExceededError(
                f"the AVIF image is {w}x{h} = {w * h:,} pixels, over libavif's limits of {AVIF_MAX_PIXELS:,} pixels "
                f"and {AVIF_MAX_SIDE:,} a side, which heicconv applies to AVIF on every backend"
            )


def _select(index: int | None, default: int, count: int) -> int:
    if index is None:
        return default
    if index >= count:
        # The caller's mistake, not the file's: a ConfigError (HTTP 400), like any other bad option value.
        raise ConfigError(f"image_index: {index} is out of range: the file has {count} image(s) (0 to {count - 1})")
    return index


def _exif_payload(raw: bytes) -> bytes | None:
    """Normalise an EXIF block to bare TIFF bytes."""
    start = raw.find(b"II*\x00")
    start_mm = raw.find(b"MM\x00*")
    candidates = [s for s in (start, start_mm) if s >= 0]
    if not candidates:
        return None
    return raw[min(candidates) :]


def _read_heif(data: bytes, fmt: str, image_index: int | None, whole: bool, limits: Limits | None) -> Source:
    data = _regular_heif(data, fmt)
    c = _parse_heif(data, fmt, whole)
    primary_index = c.top_level.index(c.primary_id)
    index = _select(image_index, primary_index, len(c.top_level))
    item = c.items[c.top_level[index]]
    if not (item.width and item.height):
        raise DecodeError(f"image item {item.id} has no size ('ispe' box missing)")
    exif, xmp = _heif_metadata(c, item, data)
    width, height = item.display_size
    if limits is not None:  # the size first: a bomb is refused as one, before its parts are examined
        check_limits(width, height, limits)
        if fmt == "avif":
            _check_avif_ceiling(c, item)
    isobmff.check_image(c, item)
    alpha = _check_alpha(c, item)
    # A thumbnail is only a shortcut: one that does not hold together is ignored, not an error.
    thumbs = [t for t in c.thumbnails_of(item.id) if _sound(c, t, item)]
    if whole:  # everything a decoder will read must be in the file (size-0 'mdat' boxes say nothing)
        c.check_data(data, c.parts_of(item.id) + [i for t in thumbs for i in c.parts_of(t.id)])
        # Data that is all there can still be damaged inside (zeros where units must be, a unit longer than
        # its item): some decoders turn that into a picture with grey or green regions, so it is refused here.
        c.check_coded(data, c.parts_of(item.id), fmt)
        thumbs = [t for t in thumbs if not any(c.damage(data, c.items[i]) for i in c.parts_of(t.id))]
    info = _heif_info(c, fmt, item, exif, xmp)
    source = Source(
        data,
        info,
        index,
        width,
        height,
        alpha,
        item.bit_depth or 8,
        item.monochrome,
        icc=item.icc,
        exif=exif,
        xmp=xmp,
        orientation=_TRANSFORM_TO_EXIF.get((item.rotation, item.mirror), 1),
        container=c,
        item=item,
        thumbnails=thumbs,
    )
    if item.id == c.primary_id:  # ImageInfo describes the primary image
        _add_gain_map(source)
    return source


def _regular_heif(data: bytes, fmt: str) -> bytes:
    """``data`` as a regular HEIF file: a low-overhead one expanded, a sequence without a still image refused."""
    if mini.is_mini(data):
        return mini.expand(data)  # every reader below, and every backend, sees a regular HEIF file
    if isobmff.sequence_only(data):
        # Decoders differ here (some read the first frame, some nothing); heicconv gives one answer.
        raise DecodeError(
            f"the {fmt.upper()} file holds only an image sequence (a 'moov' track) and no still image; "
            "heicconv converts still images"
        )
    return data


def _parse_heif(data: bytes, fmt: str, whole: bool) -> isobmff.Container:
    """The parsed container; a file cut short says so (always if the boxes break, only if ``whole`` otherwise)."""
    try:
        c = isobmff.parse(data)
    except DecodeError as exc:
        why = f"the {fmt.upper()} file is damaged or incomplete: {exc}"
        cut = isobmff.cut_short(data)
        raise DecodeError(f"the {fmt.upper()} file is truncated: {cut}" if cut else why) from exc
    if whole and c.truncated:
        raise DecodeError(f"the {fmt.upper()} file is truncated: {c.truncated}")
    return c


def _heif_metadata(c: isobmff.Container, item: isobmff.Item, data: bytes) -> tuple[bytes | None, bytes | None]:
    """The first EXIF (as bare TIFF bytes) and the first XMP packet that describe ``item``."""
    exif = xmp = None
    for meta in c.metadata_of(item.id):
        if meta.type == b"Exif" and exif is None:
            raw = c.item_data(meta, data)
            exif = _exif_payload(raw[4:] if len(raw) >= 4 else raw)
        elif meta.type == b"mime" and "rdf+xml" in meta.content_type and xmp is None:
            xmp = c.item_data(meta, data)
    return exif, xmp


def _check_alpha(c: isobmff.Container, item: isobmff.Item) -> bool:
    """Whether ``item`` has an alpha plane; one that cannot be decoded or does not fit the image is refused."""
    alpha_item = c.alpha_of(item.id)
    if alpha_item is None:
        return False
    isobmff.check_image(c, alpha_item, "alpha plane")
    # Coded at the image's size (its transforms then apply to it), or already shown at the image's size.
    if not (c.alpha_follows_image(alpha_item, item) or alpha_item.display_size == item.display_size):
        raise DecodeError(
            f"the alpha plane is {alpha_item.width}x{alpha_item.height} but the image is {item.width}x{item.height}"
        )
    return True


def _heif_info(c: isobmff.Container, fmt: str, item: isobmff.Item, exif: bytes | None, xmp: bytes | None) -> ImageInfo:
    """The public description of the file: the primary image's, with ``item``'s EXIF and XMP if it is the primary."""
    primary = c.items[c.primary_id]
    pw, ph = primary.display_size
    return ImageInfo(
        format=fmt,
        width=pw,
        height=ph,
        images=len(c.top_level),
        primary_index=c.top_level.index(c.primary_id),
        bit_depth=primary.bit_depth or 8,
        alpha=c.alpha_of(primary.id) is not None,
        grayscale=primary.monochrome,
        icc_profile=primary.icc is not None,
        colour="icc" if primary.icc else "nclx" if primary.nclx else "unspecified",
        exif_bytes=len(exif) + 6 if exif and item.id == primary.id else 0,
        xmp=xmp is not None and item.id == primary.id,
        thumbnails=tuple(sorted((max(t.display_size) for t in c.thumbnails_of(primary.id)), reverse=True)),
        depth_images=len(c.depth_of(primary.id)),
        orientation=_TRANSFORM_TO_EXIF.get((primary.rotation, primary.mirror), 1),
        image_sizes=tuple(c.items[i].display_size for i in c.top_level),
    )


def _add_gain_map(source: Source) -> None:
    """Describe the HDR gain map ``source`` carries, if any, in its ``info``."""
    found = gainmap.find(source)
    if found is not None:
        source.info = replace(source.info, gain_map=found.describe(), hdr_headroom=round(found.headroom, 4))


def _sound(c: isobmff.Container, thumb: isobmff.Item, image: isobmff.Item) -> bool:
    tw, th = thumb.display_size
    if not (0 < tw <= image.width and 0 < th <= image.height) and not (0 < tw * th <= image.width * image.height):
        return False
    try:
        isobmff.check_image(c, thumb, "thumbnail")
    except DecodeError:
        return False
    return True


def _pillow_plugin(fmt: str) -> Any:
    # Explicit plugin classes: Pillow never guesses the format, and Image.open's
    # global decompression-bomb threshold does not apply (heicconv's limits do).
    if fmt == "jpeg":
        from PIL import JpegImagePlugin

        return JpegImagePlugin.JpegImageFile
    if fmt == "png":
        from PIL import PngImagePlugin

        return PngImagePlugin.PngImageFile
    if fmt == "webp":
        from PIL import WebPImagePlugin

        return WebPImagePlugin.WebPImageFile
    from PIL import TiffImagePlugin

    return TiffImagePlugin.TiffImageFile


def open_pillow(data: bytes, fmt: str) -> Any:
    """Open a JPEG/PNG/WebP/TIFF with Pillow's plugin for exactly that format (header only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _pillow_plugin(fmt)(io.BytesIO(data))


def _read_pillow(data: bytes, fmt: str, image_index: int | None, whole: bool, limits: Limits | None) -> Source:
    im, index, frames = _open_frame(data, fmt, image_index, whole, limits)
    exif_raw = im.info.get("exif")
    exif = _exif_payload(exif_raw) if isinstance(exif_raw, bytes) else None
    orientation = _pillow_orientation(im)
    w, h = im.size
    width, height = (h, w) if orientation >= 5 else (w, h)
    ultra_hdr = fmt == "jpeg" and gainmap.read_ultra_hdr(data) is not None
    xmp = _pillow_xmp(im, ultra_hdr)
    alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info)
    depth = (
        16 if im.mode in ("I;16", "I;16B", "I;16L", "I", "RGB;16") or "16" in str(im.info.get("bitdepth", "")) else 8
    )
    gray = im.mode in ("L", "LA", "I;16", "I;16B", "I;16L", "I", "1")
    icc = im.info.get("icc_profile") or None
    info = ImageInfo(
        format=fmt,
        width=width,
        height=height,
        images=frames,
        primary_index=0,
        bit_depth=depth,
        alpha=alpha,
        grayscale=gray,
        icc_profile=icc is not None,
        colour="icc" if icc else "unspecified",
        exif_bytes=len(exif) + 6 if exif else 0,
        xmp=xmp is not None,
        orientation=orientation,
        image_sizes=((width, height),) if frames == 1 else (),
    )
    source = Source(
        data,
        info,
        index,
        width,
        height,
        alpha,
        depth,
        gray,
        icc=icc,
        exif=exif,
        xmp=xmp if isinstance(xmp, bytes) else None,
        orientation=orientation,
    )
    if ultra_hdr:
        _add_gain_map(source)
    return source


def _open_frame(
    data: bytes, fmt: str, image_index: int | None, whole: bool, limits: Limits | None
) -> tuple[Any, int, int]:
    """The Pillow image at the selected frame, its index and the frame count, once the file is known to be all there."""
    if whole:
        completeness.check(data, fmt)
    im = open_pillow(data, fmt)
    frames = getattr(im, "n_frames", 1)
    index = _select(image_index, 0, frames)
    if index:
        im.seek(index)
    if whole and fmt == "tiff":
        completeness.check_tiff_frame(data, im)
    w, h = im.size
    if limits is not None and w * h > limits.max_pixels:  # before getexif(), which decodes a PNG to find eXIf
        check_limits(w, h, limits)
    if whole and fmt == "jpeg":
        completeness.check_jpeg_data(data)
    return im, index, frames


def _pillow_orientation(im: Any) -> int:
    """The EXIF orientation, 1 when there is none or the EXIF block cannot be read."""
    try:
        value = im.getexif().get(0x0112, 1)
        return value if isinstance(value, int) and 1 <= value <= 8 else 1
    except Exception:  # an unreadable EXIF block only means no orientation
        return 1


def _pillow_xmp(im: Any, ultra_hdr: bool) -> Any:
    """The XMP packet (bytes, or whatever else Pillow found); an Ultra HDR JPEG's without its gain map's location."""
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if ultra_hdr and isinstance(xmp, bytes):
        # Its XMP says where its gain map is: heicconv carries the map itself, and writes that again if it keeps it.
        try:
            xmp = xmp_tools.rewrite(xmp, strip_location=False, drop=xmp_tools.GAIN_MAP)
        except xmp_tools.XmpError:
            xmp = None
    return xmp
