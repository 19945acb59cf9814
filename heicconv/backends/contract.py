"""The one contract every backend meets, built-in or third-party.

heicconv decides what the output is (``heicconv.pipeline.plan``: which image, its size,
orientation, metadata, colour profile, limits) and hands the backend a :class:`Job`. The backend
only decodes, resizes, converts colour, flattens and encodes, and returns a :class:`Result`.

Most backends subclass :class:`PipelineBackend` and write its six primitives; a backend that does
the whole job its own way (a remote service) implements :class:`Backend` directly.
"""

from __future__ import annotations

import enum
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from ..config.tracing import span
from ..errors import DecodeError, EncodeError, HeicconvError, LimitExceededError
from . import _av1, _damage

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..container.gainmap import Metadata
    from ..container.info import ImageInfo, Input
    from ..container.isobmff import Item
    from ..options import Limits, Options

__all__ = ["AsyncBackend", "Backend", "Capabilities", "Feature", "Job", "Note", "PipelineBackend", "Result"]


class Feature(enum.Flag):
    """What a backend can do beyond reading and writing formats; docs tables and tests read these.

    >>> Feature.ICC in Feature.common()
    True
    >>> Feature.parse("16-bit-output").label
    '16-bit-output'
    """

    HEIF_ALPHA = enum.auto()  # decodes the alpha plane of HEIF images
    HIGH_BIT_DEPTH = enum.auto()  # decodes 10/12-bit sources above 8 bits
    OUTPUT_16_BIT = enum.auto()  # writes 16-bit PNG/TIFF
    ICC = enum.auto()  # carries ICC profiles
    EXIF = enum.auto()
    XMP = enum.auto()
    SRGB = enum.auto()  # converts pixels to sRGB
    THUMBNAIL_DECODE = enum.auto()  # decodes an embedded thumbnail instead of the full image
    HEIF_ALPHA_OUTPUT = enum.auto()  # writes alpha into AVIF/HEIC
    HEIF_METADATA_OUTPUT = enum.auto()  # writes ICC, EXIF and XMP into AVIF/HEIC
    SRGB_16_BIT = enum.auto()  # converts 16-bit images to sRGB

    @property
    def label(self) -> str:
        """The name docs, JSON and ``heicconv backends`` show ("16-bit-output")."""
        return _LABELS[self]

    @classmethod
    def parse(cls, label: str) -> Feature:
        for feature, text in _LABELS.items():
            if text == label:
                return feature
        raise ValueError(f"unknown feature {label!r}; known: {', '.join(_LABELS.values())}")

    @classmethod
    def common(cls) -> Feature:
        """What every built-in backend does; each adds the features only it has."""
        return (
            cls.HEIF_ALPHA
            | cls.HIGH_BIT_DEPTH
            | cls.OUTPUT_16_BIT
            | cls.ICC
            | cls.EXIF
            | cls.XMP
            | cls.SRGB
            | cls.THUMBNAIL_DECODE
        )

    def labels(self) -> list[str]:
        """Every single feature in this set, by label, in declaration order."""
        return [_LABELS[f] for f in Feature if f in self]


_LABELS = {
    Feature.HEIF_ALPHA: "heif-alpha",
    Feature.HIGH_BIT_DEPTH: "high-bit-depth",
    Feature.OUTPUT_16_BIT: "16-bit-output",
    Feature.ICC: "icc",
    Feature.EXIF: "exif",
    Feature.XMP: "xmp",
    Feature.SRGB: "srgb",
    Feature.THUMBNAIL_DECODE: "thumbnail-decode",
    Feature.HEIF_ALPHA_OUTPUT: "heif-alpha-output",
    Feature.HEIF_METADATA_OUTPUT: "heif-metadata-output",
    Feature.SRGB_16_BIT: "16-bit-srgb",
}


@dataclass(frozen=True)
class Capabilities:
    """What a backend reads, writes and can do, as data.

    - ``inputs``, ``outputs``: the format names it reads and writes; ``features``: what else it does.
    - ``remote``: it runs the whole conversion elsewhere (a heicconv service or function), the HDR steps
      included, so heicconv neither tone maps a PQ or HLG source nor carries a gain map for it.
    - ``asynchronous``: it also has ``async def run_async(job)`` (:class:`AsyncBackend`), which
      ``heicconv.convert_async`` awaits on the event loop instead of running ``run`` in a thread.
    """

    inputs: frozenset[str]
    outputs: frozenset[str]
    features: Feature = field(default=Feature(0))
    remote: bool = False
    asynchronous: bool = False


class Note(str):
    """One line of what heicconv did, with its kind, so code never parses the words.

    Kinds: ``backend``, ``source``, ``orientation``, ``resize``, ``thumbnail``, ``alpha``, ``depth``,
    ``colour``, ``metadata``, ``decoder`` (which decoder ran, when a backend has two), ``hdr`` and
    ``dropped`` (the text then names what was dropped).

    >>> n = Note("dropped", "EXIF MakerNote")
    >>> (n.kind, str(n))
    ('dropped', 'dropped EXIF MakerNote')
    """

    kind: str
    detail: str

    def __new__(cls, kind: str, text: str) -> Note:
        self = super().__new__(cls, f"dropped {text}" if kind == "dropped" else text)
        self.kind = kind
        self.detail = text
        return self

    def __reduce__(self) -> tuple[type[Note], tuple[str, str]]:  # workers send results across processes
        return (Note, (self.kind, self.detail))


@dataclass(frozen=True)
class Result:
    """The output and what heicconv did to make it (``heicconv.convert_with_report``).

    - ``data``: the output file's bytes; ``format``: its format name (``heicconv.options.formats``);
      ``width``, ``height``: its size in pixels;
    - ``backend``: the name of the backend that made it (as registered);
    - ``source``: what the input (the source image) held (:class:`~heicconv.container.info.ImageInfo`, header only);
    - ``notes``: what was done and why, each a :class:`Note` (a ``str`` with a ``kind``);
    - ``sources``: where each setting came from (as ``heicconv.config.settings().sources``), e.g.
      ``"options.quality" -> "the call's options"``, ``"backend" -> "default (auto)"``.

    Its ``repr`` is short: sizes, formats, the backend and the notes, never the bytes.
    """

    data: bytes
    format: str
    width: int
    height: int
    backend: str
    source: ImageInfo
    notes: tuple[Note, ...]
    sources: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # the output's bytes would print as megabytes of escapes
        return (
            f"Result({self.format} {self.width}x{self.height}, {len(self.data):,} bytes, backend={self.backend!r}, "
            f"from {self.source.format} {self.source.width}x{self.source.height}, notes: {'; '.join(self.notes)})"
        )

    @property
    def dropped(self) -> tuple[str, ...]:
        """What the source held that the output does not (metadata a format or backend cannot carry)."""
        return tuple(n.detail for n in self.notes if n.kind == "dropped")


@dataclass
class Job:
    """One conversion, fully decided before a backend touches a pixel."""

    source: Input
    fmt: str  # canonical output format name (heicconv.options.formats)
    options: Options
    limits: Limits
    size: tuple[int, int]  # output width, height
    flatten: bool = False  # alpha onto options.background
    alpha: bool = False  # the output keeps alpha
    depth: int = 8  # output bits per sample
    icc: bytes | None = None  # the profile to embed
    exif: bytes | None = None  # bare TIFF bytes, Orientation already 1
    xmp: bytes | None = None
    to_srgb: bool = False  # convert the pixels from source_icc to sRGB
    source_icc: bytes | None = None  # the profile the pixels are in (the file's, or one made from nclx)
    thumbnail: Item | None = None  # an embedded thumbnail to decode instead of the image
    # HDR without a gain map (PQ or HLG, nclx transfer 16 or 18): heicconv decodes and tone maps it before the
    # backend runs (heicconv.pipeline.hdr.tone_map), and ``source`` becomes that SDR picture (a TIFF or PNG).
    tone_map: int = 0  # the nclx transfer to tone map from, 0 for none
    original: Input | None = None  # the HDR source, once ``source`` is its SDR rendering
    computed_gain_map: tuple[Any, Metadata] | None = None  # a Pillow "L" image (upright) and how to apply it
    notes: list[Note] = field(default_factory=list)

    def note(self, kind: str, text: str) -> None:
        """Add a :class:`Note` of ``kind`` to the result's notes (``"dropped"`` ones also fill ``Result.dropped``)."""
        self.notes.append(Note(kind, text))

    def heif_input(self, item: Item | None = None, *, mirror: bool = True) -> bytes:
        """The HEIF/AVIF file a decoder reads: only the image to decode (``item``, else the thumbnail or
        the selected image), as its primary, with its parts and alpha plane (``isobmff.Container.extract``).

        Every backend decodes this rather than the upload, so all see the same single image, and
        library versions that refuse today's phone files (auxiliary images, gain maps) read them.
        Without ``mirror``, the file has no ``imir``: the caller mirrors the decoded picture (see ``mirror_apart``).
        """
        c = self.source.container
        target = item if item is not None else self.thumbnail if self.thumbnail is not None else self.source.item
        if c is None or target is None:
            raise TypeError("heif_input: the source is not a HEIF/AVIF file")
        return c.extract(self.source.data, target.id, drop=frozenset() if mirror else frozenset({b"imir"}))

    def mirror_apart(self) -> int | None:
        """The ``imir`` mode of a 10/12-bit image to decode (0: top and bottom exchanged, 1: left and right).

        libheif 1.15 (Debian 12's, under vips and wand) refuses to apply it ("can only mirror 8-bit images"):
        such a backend reads ``heif_input(mirror=False)`` and mirrors the decoded picture itself, last."""
        target = self.thumbnail if self.thumbnail is not None else self.source.item
        return target.mirror if target is not None and target.bit_depth > 8 else None

    def result(self, data: bytes, backend: str) -> Result:
        """The :class:`Result` of this job, once a backend has written ``data``."""
        return Result(
            data,
            self.fmt,
            self.size[0],
            self.size[1],
            backend,
            (self.original or self.source).info,
            (Note("backend", f"backend: {backend}"), *self.notes),
        )


@runtime_checkable
class Backend(Protocol):
    """What a backend is: a name, its capabilities as data, its library versions, and ``run``."""

    name: str
    capabilities: Capabilities

    def versions(self) -> dict[str, str]:
        """Library versions, for ``heicconv.list_backends()``."""
        ...

    def run(self, job: Job) -> Result:
        """Make the output ``job`` describes; raise nothing but subclasses of ``HeicconvError``."""
        ...


class AsyncBackend(Backend, Protocol):
    """A backend whose capabilities say ``asynchronous``: it also runs a job without blocking an event loop."""

    async def run_async(self, job: Job) -> Result:
        """:meth:`Backend.run` on an event loop: the same result and errors, waiting without holding a thread."""
        ...


Img = TypeVar("Img")


class PipelineBackend(Generic[Img]):
    """A backend made of six primitives; ``run`` drives them the same way for every backend.

    Subclasses set ``name`` and ``capabilities`` and implement ``load``, ``size_of``, ``resize``,
    ``to_srgb``, ``flatten`` and ``save``. Any exception they raise that is not a
    ``HeicconvError`` becomes one (decode side: ``DecodeError``, encode side: ``EncodeError``,
    failed allocations: ``LimitExceededError``), with the original chained.
    """

    name: str = ""
    capabilities: Capabilities = Capabilities(frozenset(), frozenset())
    #: Whether ``load`` refuses damaged AV1 data itself (libavif does); else heicconv has libavif read an AVIF
    #: again after ``load`` (``_av1.check``: libheif 1.15's AV1 decoders make garbage of it without a word).
    av1_refuses_damage: bool = False

    def versions(self) -> dict[str, str]:
        """Library versions, for ``heicconv.list_backends()``; none unless a subclass says."""
        return {}

    def run(self, job: Job) -> Result:
        """Drive the primitives: load (refusing a picture of the wrong size or with a decoder's tell-tale of
        damage), resize, convert to sRGB, flatten, save; a library's own exception becomes a heicconv error."""
        # The spans (heicconv.config.tracing) are no-ops unless the application traces.
        try:
            with span("heicconv.decode", {"heicconv.backend": self.name}):
                img = self._load_preferring_thumbnail(job)
            with span("heicconv.transform", {"heicconv.backend": self.name}):
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
            with span("heicconv.encode", {"heicconv.backend": self.name, "heicconv.output_format": job.fmt}):
                out = self.save(img, job)
        except HeicconvError:
            raise
        except Exception as exc:
            raise self._library_error(exc, job, decoding=False) from exc
        return job.result(out, self.name)

    def _library_error(self, exc: Exception, job: Job, *, decoding: bool) -> HeicconvError:
        """A library's own exception, as the heicconv error it means (the caller chains the original)."""
        if isinstance(exc, MemoryError) or out_of_memory(exc):
            return LimitExceededError(f"{self.name} ran out of memory: {first_line(exc)}")
        if decoding or self.decode_failed(exc):  # lazy libraries decode while they encode
            return DecodeError(f"{self.name} could not decode the {job.source.info.format} image: {first_line(exc, 2)}")
        return EncodeError(f"{self.name} could not write {job.fmt}: {first_line(exc)}")

    def _load_preferring_thumbnail(self, job: Job) -> Img:
        if job.thumbnail is None:
            return self._load_checked(job)
        try:
            return self._load_checked(job)
        except Exception as exc:  # a broken thumbnail only costs the shortcut
            job.thumbnail = None
            job.notes[:] = [n for n in job.notes if n.kind != "thumbnail"]
            job.note(
                "thumbnail", f"the embedded thumbnail could not be decoded ({first_line(exc)}); used the full image"
            )
            return self._load_checked(job)

    def _load_checked(self, job: Job) -> Img:
        """``load``, refusing a picture of another size than the header declares (resizing it to the declared size
        would hide a decoder that returned part of the picture, or another layer of it), and one that shows damage
        (:meth:`_check_damage`; a thumbnail's coded data is read by libde265 before it is decoded)."""
        if job.thumbnail is not None:
            _damage.check_thumbnail(job.source, job.thumbnail)  # before it is decoded: it is read whole
            ahead = None
        else:
            ahead = _damage.read_ahead(job.source)  # a single image: libde265 reads it while it decodes
        img = self.load(job)
        declared = job.thumbnail.display_size if job.thumbnail is not None else (job.source.width, job.source.height)
        decoded = self.size_of(img)
        if decoded != declared:
            raise DecodeError(
                "the picture decodes to {}x{}, not the {}x{} its header declares".format(*decoded, *declared)
            )
        if job.thumbnail is None:
            self._check_damage(img, job, ahead)
        return img

    def _check_damage(self, img: Img, job: Job, verify: Callable[[int], str | None] | None = None) -> None:
        """Refuse an HEVC picture that shows a silent decoder's tell-tale of damaged data (``_damage``), or whose
        suspect tiles libde265 finds broken when it reads them again (``_de265``); and, unless this backend's
        own AV1 decoder refuses damaged data (``av1_refuses_damage``), an AVIF whose data libavif finds damaged
        (``_av1``). ``verify`` is the image's reading begun before it was decoded (``_damage.read_ahead``), if any."""
        if not self.av1_refuses_damage:
            _av1.check(job)
        _damage.check(job.source, lambda box: self.region(img, box), self.pixels_kind(img), verify)

    # The primitives.
    def load(self, job: Job) -> Img:
        """Decode the selected image (or ``job.thumbnail``) upright, at ``job.depth`` bits, grayscale or colour
        as the source says. HEIF decoders read ``job.heif_input()``; others read ``job.source.data`` and apply
        ``job.source.orientation`` (an EXIF Orientation) themselves."""
        raise NotImplementedError

    def size_of(self, img: Img) -> tuple[int, int]:
        """The width and height of a loaded picture."""
        raise NotImplementedError

    def resize(self, img: Img, size: tuple[int, int]) -> Img:
        """``img`` resized to exactly ``size`` (width, height) with a high-quality filter."""
        raise NotImplementedError

    def to_srgb(self, img: Img, job: Job) -> Img:
        """Convert the pixels from ``job.source_icc`` to sRGB (nothing to do when it is ``None``)."""
        raise NotImplementedError

    def flatten(self, img: Img, background: tuple[int, int, int]) -> Img:
        """``img`` with its alpha composited onto the ``background`` colour (RGB, 0 to 255), without alpha."""
        raise NotImplementedError

    def save(self, img: Img, job: Job) -> bytes:
        """Encode ``img`` as ``job.fmt`` with ``job.options``, embedding ``job.icc``, ``job.exif``, ``job.xmp``."""
        raise NotImplementedError

    def decode_failed(self, exc: BaseException) -> bool:
        """Whether an error raised while saving came from decoding (libraries that decode lazily say so)."""
        return False

    def pixels_kind(self, img: Img) -> str | None:
        """What :meth:`region` gives of a loaded colour picture: ``"rgb"``, ``"ycbcr"`` (the decoder's own planes),
        or None if this backend does not show pixels; then heicconv cannot look for damage it left unreported in
        them, and has libde265 read every tile of an HEVC image again instead (a second decode)."""
        return None

    def region(self, img: Img, box: tuple[int, int, int, int]) -> Any:
        """The pixels of ``box`` (left, top, right, bottom) of the loaded picture, as a numpy array of rows x
        columns x bands (uint8, or uint16 for a 16-bit picture), for the damage check; called for a few small
        boxes per tile."""
        raise NotImplementedError


def missing_from_contract(backend: object) -> list[str]:
    """What ``backend`` lacks of :class:`Backend`, in words (empty when it satisfies the contract)."""
    missing = []
    if not isinstance(getattr(backend, "name", None), str) or not getattr(backend, "name", ""):
        missing.append("a `name` string")
    # A remote backend learns its capabilities from the remote on first use: a property is not called here.
    declared = inspect.getattr_static(backend, "capabilities", None)
    if not isinstance(declared, (Capabilities, property)):
        missing.append("`capabilities` (a heicconv.Capabilities)")
    asynchronous = isinstance(declared, Capabilities) and declared.asynchronous
    for method in ("run", "versions", "run_async") if asynchronous else ("run", "versions"):
        if not callable(getattr(backend, method, None)):
            missing.append(f"a `{method}()` method")
    if isinstance(backend, PipelineBackend):
        needed = ["load", "size_of", "resize", "flatten", "save"]
        if Feature.SRGB in getattr(backend, "capabilities", Capabilities(frozenset(), frozenset())).features:
            needed.append("to_srgb")
        for primitive in needed:
            if getattr(type(backend), primitive) is getattr(PipelineBackend, primitive):
                missing.append(f"the `{primitive}()` primitive")
    return missing


_MEMORY_WORDS = ("memory allocation", "out of memory", "cannot allocate", "allocating", "cache resources exhausted")


def out_of_memory(exc: BaseException) -> bool:
    """Libraries report a failed allocation in their own words (libheif, ImageMagick, libvips)."""
    text = str(exc).lower()
    return any(word in text for word in _MEMORY_WORDS)


def first_line(exc: BaseException, lines: int = 1) -> str:
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " / ".join(text[:lines]) if text else type(exc).__name__
