"""What a backend is (``Converter``), and the pipeline the built-in backends share.

The built-in backends differ only in how they decode, resize, flatten, convert
colour and encode. Everything that decides *what* the output is (which image,
its size, its metadata and colour profile, what to say about it) is decided
here, once, from the source file, so every backend gives the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from .. import exif as exif_tools
from .. import xmp as xmp_tools
from ..colour import describe_nclx, profile_from_nclx, srgb_profile
from ..errors import DecodeError, EncodeError, HeicconvError, LimitExceededError, UnsupportedFormatError
from ..info import ImageInfo, Source, inspect, probe
from ..options import Limits, Options

__all__ = ["Capabilities", "Converter", "Job", "PipelineBackend", "Result", "plan"]

#: Features a backend may have; docs and tests read these.
FEATURES = (
    "heif-alpha",  # decodes the alpha plane of HEIF images
    "high-bit-depth",  # decodes 10/12-bit sources above 8 bits
    "16-bit-output",  # writes 16-bit PNG/TIFF
    "icc",  # carries ICC profiles
    "exif",
    "xmp",
    "srgb",  # converts pixels to sRGB
    "thumbnail-decode",  # decodes an embedded thumbnail instead of the full image
    "heif-alpha-output",  # writes alpha into AVIF/HEIC
    "heif-metadata-output",  # writes ICC, EXIF and XMP into AVIF/HEIC
    "16-bit-srgb",  # converts 16-bit images to sRGB
)


#: What every built-in backend does; each adds the features only it has.
COMMON_FEATURES = frozenset(
    {"heif-alpha", "high-bit-depth", "16-bit-output", "icc", "exif", "xmp", "srgb", "thumbnail-decode"}
)


@dataclass(frozen=True)
class Capabilities:
    """What a backend reads, writes and can do, as data."""

    inputs: frozenset[str]
    outputs: frozenset[str]
    features: frozenset[str] = frozenset()


@runtime_checkable
class Converter(Protocol):
    """The interface every backend implements; third-party backends too."""

    name: str
    capabilities: Capabilities

    def convert(self, data: bytes, fmt: str, options: Options) -> bytes:
        """Convert ``data`` to ``fmt`` (a canonical name from ``heicconv.formats``)."""
        ...

    def probe(self, data: bytes) -> ImageInfo:
        """Read what ``data`` holds without decoding pixels."""
        ...

    def versions(self) -> dict[str, str]:
        """Library versions, for ``heicconv.list_backends()``."""
        ...


@dataclass
class Job:
    """One conversion, fully decided before a backend touches a pixel."""

    source: Source
    fmt: str
    options: Options
    limits: Limits
    size: tuple[int, int]  # output width, height
    flatten: bool  # alpha onto options.background
    alpha: bool  # output keeps alpha
    depth: int  # output bits per sample
    icc: bytes | None
    exif: bytes | None  # bare TIFF bytes, Orientation already 1
    xmp: bytes | None
    to_srgb: bool
    source_icc: bytes | None = None  # the profile the pixels are in (the file's, or one made from nclx)
    thumbnail: Any = None  # isobmff.Item of an embedded thumbnail to decode instead
    notes: list[str] = field(default_factory=list)

    def heif_input(self, item: Any = None) -> bytes:
        """The HEIF/AVIF file a decoder reads: only the image to decode (``item``, else the thumbnail or
        the selected image), as its primary, with its parts and alpha plane (``isobmff.Container.extract``).

        Every backend decodes this rather than the upload, so all see the same single image, and
        library versions that refuse today's phone files (auxiliary images, gain maps) read them.
        """
        c = self.source.container
        target = item if item is not None else self.thumbnail if self.thumbnail is not None else self.source.item
        if c is None or target is None:
            raise TypeError("heif_input: the source is not a HEIF/AVIF file")
        return c.extract(self.source.data, target.id)


@dataclass(frozen=True)
class Result:
    """The output and what heicconv did to make it (``heicconv.convert_with_report``)."""

    data: bytes
    format: str
    width: int
    height: int
    backend: str
    source: ImageInfo
    notes: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    # Where each setting came from: "options.quality" -> "the call's options",
    # "options.metadata" -> "the environment (HEICCONV_METADATA)", "backend" -> "default (auto)".
    sources: dict[str, str] = field(default_factory=dict)


_ALPHA_FORMATS = frozenset({"png", "webp", "avif", "tiff", "heic"})
_EXIF_LIMITS = {"jpeg": exif_tools.JPEG_EXIF_MAX, "webp": 16 * 1024 * 1024}
_ORIENTATION_WORDS = {
    2: "mirrored left-right",
    3: "rotated 180",
    4: "mirrored top-bottom",
    5: "transposed",
    6: "rotated 90 clockwise",
    7: "transversed",
    8: "rotated 90 anticlockwise",
}


def fit_size(width: int, height: int, box: tuple[int, int] | None) -> tuple[int, int]:
    """Fit ``width``x``height`` inside ``box``, keeping the aspect ratio, never enlarging.

    The long side (relative to the box) gets the box's size exactly; the other
    is rounded half up, and is at least 1.

    >>> fit_size(4032, 3024, (1024, 1024))
    (1024, 768)
    >>> fit_size(100, 50, (1000, 1000))
    (100, 50)
    """
    if box is None:
        return (width, height)
    bw, bh = box
    if width <= bw and height <= bh:
        return (width, height)
    if width * bh >= height * bw:
        return (bw, max(1, (height * bw * 2 + width) // (2 * width)))
    return (max(1, (width * bh * 2 + height) // (2 * height)), bh)


def plan(data: bytes, fmt: str, options: Options, limits: Limits, capabilities: Capabilities) -> Job:
    """Read the header, check limits, and decide everything about the output."""
    source = inspect(data, options.image_index, limits)
    notes: list[str] = []
    info = source.info
    notes.append(
        f"source: {info.format} {source.width}x{source.height}, {source.bit_depth}-bit"
        + (", alpha" if source.alpha else "")
        + (", grayscale" if source.grayscale else "")
        + (f", image {source.index} of {info.images}" if info.images > 1 else "")
    )
    if source.info.format not in capabilities.inputs:
        raise UnsupportedFormatError(f"this backend cannot read {source.info.format} input")
    if fmt not in capabilities.outputs:
        raise UnsupportedFormatError(f"this backend cannot write {fmt}")
    if options.lossless and fmt == "jpeg":
        raise UnsupportedFormatError("lossless: JPEG has no lossless mode; use png, webp, avif or heic")
    if source.orientation != 1:
        what = "irot/imir" if source.container is not None else f"EXIF Orientation {source.orientation}"
        notes.append(f"{_ORIENTATION_WORDS[source.orientation]} ({what}) to make it upright")

    size = fit_size(source.width, source.height, options.box)
    if size != (source.width, source.height):
        notes.append(f"resized {source.width}x{source.height} -> {size[0]}x{size[1]} (Lanczos 3)")
    thumbnail = None
    if options.use_thumbnail and options.box is not None and source.thumbnails:
        # The first thumbnail in file order: the one every library picks when asked for "the thumbnail".
        first = source.thumbnails[0]
        tw, th = first.display_size
        if tw >= size[0] and th >= size[1] and first.crop is None and not source.alpha:
            thumbnail = first
            notes.append(f"decoded the embedded {tw}x{th} thumbnail instead of the full image")

    alpha = source.alpha and fmt in _ALPHA_FORMATS
    flatten = source.alpha and not alpha
    if alpha and fmt in ("avif", "heic") and "heif-alpha-output" not in capabilities.features:
        raise UnsupportedFormatError(
            f"this backend cannot write the image's alpha channel into {fmt} (it would come out opaque); "
            "use png or webp, or the pillow or vips backend"
        )
    if flatten:
        r, g, b = options.background_rgb
        notes.append(f"alpha flattened onto background #{r:02x}{g:02x}{b:02x}")
    depth = 16 if options.bit_depth == 16 and fmt in ("png", "tiff") else 8
    if depth == 16 and "16-bit-output" not in capabilities.features:
        raise UnsupportedFormatError("bit_depth: this backend cannot write 16-bit output; use the vips or wand backend")
    if depth == 16 and options.colour == "srgb" and "16-bit-srgb" not in capabilities.features:
        raise UnsupportedFormatError(
            "this backend cannot convert 16-bit images to sRGB; use bit_depth=8, or the vips or wand backend"
        )
    if source.bit_depth > depth:
        notes.append(f"{source.bit_depth}-bit scaled to {depth}-bit")

    to_srgb = options.colour == "srgb"
    source_icc = source.icc
    nclx = source.item.nclx if source.item is not None and source.icc is None else None
    if nclx is not None:
        source_icc = profile_from_nclx(nclx[0], nclx[1])
        what = describe_nclx(nclx[0], nclx[1])
        notes.append(f"colour signalled as {what}" + (": made an ICC profile from it" if source_icc else ": sRGB"))
    icc = source_icc
    if to_srgb:
        notes.append("converted to sRGB" + (f" from {_icc_name(source_icc)}" if source_icc else "") + ", tagged sRGB")
        icc = srgb_profile()
    elif icc:
        notes.append(f"ICC profile kept ({_icc_name(icc)})")

    exif = source.exif if fmt != "tiff" else None  # see docs/fidelity.md: no backend writes EXIF into TIFF
    xmp = source.xmp
    dropped: list[str] = []
    if options.metadata == "strip":
        if exif or xmp:
            notes.append("EXIF and XMP stripped")
        exif = xmp = None
    else:
        if exif is not None:
            before = exif_tools.orientation(exif)
            exif = exif_tools.reset_orientation(exif)
            if before != 1:
                notes.append(f"EXIF Orientation {before} -> 1 (the pixels are upright)")
            if options.metadata == "strip-location":
                try:
                    exif = exif_tools.strip_location(exif)
                    notes.append("GPS location removed from EXIF")
                except Exception:  # unreadable EXIF: drop it rather than leak location
                    exif = None
                    dropped.append("EXIF (unreadable, so its location could not be removed)")
            limit = _EXIF_LIMITS.get(fmt)
            if limit is not None and exif is not None and len(exif) > limit:
                exif, lost = exif_tools.fit(exif, limit)
                dropped.extend(lost)
        if xmp is not None:
            try:
                xmp = xmp_tools.rewrite(xmp, strip_location=options.metadata == "strip-location")
                if options.metadata == "strip-location":
                    notes.append("location removed from XMP")
            except xmp_tools.XmpError as exc:  # one that cannot be read cannot be made upright or location-free
                xmp = None
                dropped.append(f"XMP ({exc})")
        kept = [name for name, value in (("EXIF", exif), ("XMP", xmp)) if value]
        if kept:
            notes.append(" and ".join(kept) + " kept")
    if fmt in ("avif", "heic") and "heif-metadata-output" not in capabilities.features:
        if icc is not None and not to_srgb:
            raise UnsupportedFormatError(
                f"this backend cannot store the colour profile in {fmt}, so colours would change; "
                "use colour='srgb', another format, or the pillow or vips backend"
            )
        lost = [name for name, value in (("the sRGB tag", to_srgb), ("EXIF", exif), ("XMP", xmp)) if value]
        if lost:
            dropped.append(" and ".join(lost) + f" (this backend cannot store them in {fmt})")
            exif = xmp = icc = None
    for d in dropped:
        notes.append(f"dropped {d}")
    return Job(
        source, fmt, options, limits, size, flatten, alpha, depth, icc, exif, xmp, to_srgb, source_icc, thumbnail, notes
    )


def _icc_name(icc: bytes) -> str:
    """The profile's description, for notes ("Display P3")."""
    try:
        import struct

        count = struct.unpack_from(">I", icc, 128)[0]
        for i in range(min(count, 100)):
            sig, off, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
            if sig == b"desc":
                tag = icc[off : off + size]
                if tag[:4] == b"desc":
                    n = struct.unpack_from(">I", tag, 8)[0]
                    return tag[12 : 12 + n].rstrip(b"\0").decode("latin-1")
                if tag[:4] == b"mluc":
                    rec_len, rec_off = struct.unpack_from(">II", tag, 20)
                    return tag[rec_off : rec_off + rec_len].decode("utf-16-be")
    except Exception:  # a description is only for the notes
        pass
    return f"{len(icc):,} bytes"


Img = TypeVar("Img")


class PipelineBackend(Generic[Img]):
    """A backend made of five primitives; the shared pipeline does the rest.

    Subclasses set ``name`` and ``capabilities`` and implement ``load``, ``resize``,
    ``flatten``, ``to_srgb`` and ``save``. Any exception they raise that is not a
    ``HeicconvError`` is wrapped (decode side: ``DecodeError``, encode side:
    ``EncodeError``), with the original chained.
    """

    name: str = ""
    capabilities: Capabilities = Capabilities(frozenset(), frozenset())
    limits: Limits = Limits()

    def versions(self) -> dict[str, str]:
        raise NotImplementedError

    def probe(self, data: bytes) -> ImageInfo:
        return probe(data)

    def convert(self, data: bytes, fmt: str, options: Options) -> bytes:
        return self.run(plan(data, fmt, options, self.limits, self.capabilities)).data

    def run(self, job: Job) -> Result:
        try:
            img = self._load_preferring_thumbnail(job)
            if self.size_of(img) != job.size:
                img = self.resize(img, job.size)
            if job.to_srgb:
                img = self.to_srgb(img, job)
            if job.flatten:
                img = self.flatten(img, job.options.background_rgb)
        except HeicconvError:
            raise
        except Exception as exc:
            raise self._library_error(exc, job, decoding=True) from exc
        try:
            out = self.save(img, job)
        except HeicconvError:
            raise
        except Exception as exc:
            raise self._library_error(exc, job, decoding=False) from exc
        dropped = tuple(n[len("dropped ") :] for n in job.notes if n.startswith("dropped "))
        return Result(
            out,
            job.fmt,
            job.size[0],
            job.size[1],
            self.name,
            job.source.info,
            (f"backend: {self.name}", *job.notes),
            dropped,
        )

    def _library_error(self, exc: Exception, job: Job, *, decoding: bool) -> HeicconvError:
        """A library's own exception, as the heicconv error it means (the caller chains the original)."""
        if isinstance(exc, MemoryError) or _out_of_memory(exc):
            return LimitExceededError(f"{self.name} ran out of memory: {_first_line(exc)}")
        if decoding or self.decode_failed(exc):  # lazy libraries decode while they encode
            return DecodeError(
                f"{self.name} could not decode the {job.source.info.format} image: {_first_line(exc, 2)}"
            )
        return EncodeError(f"{self.name} could not write {job.fmt}: {_first_line(exc)}")

    def _load_preferring_thumbnail(self, job: Job) -> Img:
        if job.thumbnail is None:
            return self._load_checked(job)
        try:
            return self._load_checked(job)
        except Exception as exc:  # a broken thumbnail only costs the shortcut
            job.thumbnail = None
            job.notes[:] = [n for n in job.notes if "thumbnail instead" not in n]
            job.notes.append(f"the embedded thumbnail could not be decoded ({_first_line(exc)}); used the full image")
            return self._load_checked(job)

    def _load_checked(self, job: Job) -> Img:
        """``load``, refusing a picture of another size than the header declares: resizing it to the
        declared size would hide a decoder that returned part of the picture, or another layer of it."""
        img = self.load(job)
        declared = job.thumbnail.display_size if job.thumbnail is not None else (job.source.width, job.source.height)
        decoded = self.size_of(img)
        if decoded != declared:
            raise DecodeError(
                "the picture decodes to {}x{}, not the {}x{} its header declares".format(*decoded, *declared)
            )
        return img

    # The primitives.
    def load(self, job: Job) -> Img:
        """Decode the selected image upright, at ``job.depth`` bits, grayscale or colour as the source."""
        raise NotImplementedError

    def size_of(self, img: Img) -> tuple[int, int]:
        raise NotImplementedError

    def resize(self, img: Img, size: tuple[int, int]) -> Img:
        raise NotImplementedError

    def to_srgb(self, img: Img, job: Job) -> Img:
        raise NotImplementedError

    def flatten(self, img: Img, background: tuple[int, int, int]) -> Img:
        raise NotImplementedError

    def save(self, img: Img, job: Job) -> bytes:
        raise NotImplementedError

    def decode_failed(self, exc: BaseException) -> bool:
        """Whether an error raised while saving came from decoding (libraries that decode lazily say so)."""
        return False


_MEMORY_WORDS = ("memory allocation", "out of memory", "cannot allocate", "allocating", "cache resources exhausted")


def _out_of_memory(exc: BaseException) -> bool:
    """Libraries report a failed allocation in their own words (libheif, ImageMagick, libvips)."""
    text = str(exc).lower()
    return any(word in text for word in _MEMORY_WORDS)


def _first_line(exc: BaseException, lines: int = 1) -> str:
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " / ".join(text[:lines]) if text else type(exc).__name__
