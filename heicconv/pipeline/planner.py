"""``plan``: everything about the output, decided once from the source file, for any backend."""

from __future__ import annotations

from collections.abc import Callable

from ..backends.contract import Capabilities, Feature, Job
from ..container.colour import describe_nclx, profile_from_nclx, srgb_profile
from ..container.info import read_source
from ..errors import UnsupportedInputError, UnsupportedOutputError
from ..options import Limits, Options
from .metadata import icc_name, keep
from .tonemap import METHOD, NAMES

__all__ = ["Hint", "Job", "fit_size", "plan"]

#: ``hint(fmt, feature)``: which backends could do what this one cannot, as a clause ("; the vips backend can").
Hint = Callable[[str | None, Feature], str]

_ALPHA_FORMATS = frozenset({"png", "webp", "avif", "tiff", "heic"})
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


def _no_hint(fmt: str | None, feature: Feature) -> str:
    return ""


def plan(
    data: bytes,
    fmt: str,
    options: Options,
    limits: Limits,
    capabilities: Capabilities,
    hint: Hint = _no_hint,
    backend: str = "",
) -> Job:
    """Read the header, check limits and what the backend can do, and decide everything about the output.

    ``backend`` is the name the backend was selected by: refusals name it ("the 'mine' backend
    cannot write avif"); without it they say "this backend".

    >>> from heicconv.backends.contract import Capabilities, Feature
    >>> from heicconv.testing.fixtures import make_heic
    >>> caps = Capabilities(frozenset({"heic"}), frozenset({"jpeg"}), Feature.common())
    >>> job = plan(make_heic(size=(64, 48)), "jpeg", Options(max_size=32), Limits(), caps)
    >>> job.size, [n for n in job.notes if n.kind == "resize"]
    ((32, 24), ['resized 64x48 -> 32x24 (Lanczos 3)'])
    """
    source = read_source(data, options.image_index, limits)
    info = source.info
    job = Job(source, fmt, options, limits, fit_size(source.width, source.height, options.box))
    job.note(
        "source",
        f"source: {info.format} {source.width}x{source.height}, {source.bit_depth}-bit"
        + (", alpha" if source.alpha else "")
        + (", grayscale" if source.grayscale else "")
        + (f", image {source.index} of {info.images}" if info.images > 1 else ""),
    )
    who = f"the {backend!r} backend" if backend else "this backend"
    _check_formats(info.format, fmt, options, capabilities, hint, who)
    if source.orientation != 1:
        what = "irot/imir" if source.container is not None else f"EXIF Orientation {source.orientation}"
        job.note("orientation", f"{_ORIENTATION_WORDS[source.orientation]} ({what}) to make it upright")
    if job.size != (source.width, source.height):
        job.note("resize", f"resized {source.width}x{source.height} -> {job.size[0]}x{job.size[1]} (Lanczos 3)")
    _decide_tone_map(job, capabilities)
    _choose_thumbnail(job, capabilities)
    _decide_alpha_and_depth(job, capabilities, hint, who)
    _decide_colour(job, capabilities, hint, who)
    kept = keep(source.exif, source.xmp, fmt, options, job.note)
    job.exif, job.xmp = kept.exif, kept.xmp
    _fit_heif_output(job, capabilities, hint, who)
    return job


def _check_formats(source_fmt: str, fmt: str, options: Options, caps: Capabilities, hint: Hint, who: str) -> None:
    if source_fmt not in caps.inputs:
        raise UnsupportedInputError(f"{who} cannot read {source_fmt} input{hint(None, Feature(0))}")
    if fmt not in caps.outputs:
        raise UnsupportedOutputError(f"{who} cannot write {fmt}{hint(fmt, Feature(0))}")
    if options.lossless and fmt == "jpeg":
        raise UnsupportedOutputError("lossless: JPEG has no lossless mode; use png, webp, avif or heic")


def _decide_tone_map(job: Job, caps: Capabilities) -> None:
    """A 10/12-bit PQ or HLG HEIC without an ICC profile is tone mapped to SDR by heicconv (pipeline.tonemap)."""
    source = job.source
    nclx = source.item.nclx if source.item is not None and source.icc is None else None
    if nclx is None or nclx[1] not in NAMES or source.bit_depth <= 8:
        return
    if source.info.format != "heic":  # pillow-heif, which decodes it for every backend, reads no AVIF
        job.note("colour", f"{NAMES[nclx[1]]} HDR not tone mapped: heicconv tone maps HEIC sources only")
        return
    if not {"tiff", "png"} & caps.inputs:  # the SDR rendering reaches the backend as a TIFF or a PNG
        job.note("colour", f"{NAMES[nclx[1]]} HDR not tone mapped: this backend reads neither TIFF nor PNG")
        return
    job.tone_map = nclx[1]
    job.note("colour", f"{NAMES[nclx[1]]} HDR tone mapped to SDR by heicconv: {METHOD}")


def _choose_thumbnail(job: Job, caps: Capabilities) -> None:
    source, options = job.source, job.options
    if job.tone_map or not (options.use_thumbnail and options.box is not None and source.thumbnails):
        return
    if Feature.THUMBNAIL_DECODE not in caps.features:
        return
    # The first thumbnail in file order: the one every library picks when asked for "the thumbnail".
    first = source.thumbnails[0]
    tw, th = first.display_size
    if tw >= job.size[0] and th >= job.size[1] and first.crop is None and not source.alpha:
        job.thumbnail = first
        job.note("thumbnail", f"decoded the embedded {tw}x{th} thumbnail instead of the full image")


def _decide_alpha_and_depth(job: Job, caps: Capabilities, hint: Hint, who: str) -> None:
    source, fmt, options = job.source, job.fmt, job.options
    job.alpha = source.alpha and fmt in _ALPHA_FORMATS
    job.flatten = source.alpha and not job.alpha
    if job.alpha and fmt in ("avif", "heic") and Feature.HEIF_ALPHA_OUTPUT not in caps.features:
        raise UnsupportedOutputError(
            f"{who} cannot write the image's alpha channel into {fmt} (it would come out opaque); "
            f"use png or webp{hint(fmt, Feature.HEIF_ALPHA_OUTPUT)}"
        )
    if job.flatten:
        r, g, b = options.background_rgb
        job.note("alpha", f"alpha flattened onto background #{r:02x}{g:02x}{b:02x}")
    job.depth = 16 if options.bit_depth == 16 and fmt in ("png", "tiff") else 8
    if job.depth == 16 and Feature.OUTPUT_16_BIT not in caps.features:
        raise UnsupportedOutputError(f"bit_depth: {who} cannot write 16-bit output{hint(fmt, Feature.OUTPUT_16_BIT)}")
    if job.depth == 16 and options.colour == "srgb" and Feature.SRGB_16_BIT not in caps.features:
        raise UnsupportedOutputError(
            f"{who} cannot convert 16-bit images to sRGB; use bit_depth=8{hint(fmt, Feature.SRGB_16_BIT)}"
        )
    if source.bit_depth > job.depth:
        job.note("depth", f"{source.bit_depth}-bit scaled to {job.depth}-bit")
    elif job.tone_map:  # heicconv's SDR rendering is 8-bit, so that every backend reads the same picture
        job.note("depth", "tone mapped to 8 bits per sample, written as 16 (times 257)")


def _decide_colour(job: Job, caps: Capabilities, hint: Hint, who: str) -> None:
    source = job.source
    job.to_srgb = job.options.colour == "srgb"
    if job.to_srgb and Feature.SRGB not in caps.features:
        raise UnsupportedOutputError(f"colour='srgb': {who} cannot convert colours{hint(None, Feature.SRGB)}")
    job.source_icc = source.icc
    nclx = source.item.nclx if source.item is not None and source.icc is None else None
    if nclx is not None:
        job.source_icc = profile_from_nclx(nclx[0], nclx[1], tone_mapped=bool(job.tone_map))
        what = describe_nclx(nclx[0], nclx[1])
        job.note(
            "colour", f"colour signalled as {what}" + (": made an ICC profile from it" if job.source_icc else ": sRGB")
        )
    job.icc = job.source_icc
    if job.to_srgb:
        origin = f" from {icc_name(job.source_icc)}" if job.source_icc else ""
        job.note("colour", f"converted to sRGB{origin}, tagged sRGB")
        job.icc = srgb_profile()
    elif job.icc:
        job.note("colour", f"ICC profile kept ({icc_name(job.icc)})")


def _fit_heif_output(job: Job, caps: Capabilities, hint: Hint, who: str) -> None:
    """AVIF/HEIC written by a backend that cannot store metadata in them: refuse a colour change, report the rest."""
    if job.fmt not in ("avif", "heic") or Feature.HEIF_METADATA_OUTPUT in caps.features:
        return
    if job.icc is not None and not job.to_srgb:
        raise UnsupportedOutputError(
            f"{who} cannot store the colour profile in {job.fmt}, so colours would change; "
            f"use colour='srgb' or another format{hint(job.fmt, Feature.HEIF_METADATA_OUTPUT)}"
        )
    lost = [name for name, value in (("the sRGB tag", job.to_srgb), ("EXIF", job.exif), ("XMP", job.xmp)) if value]
    if lost:
        job.note("dropped", " and ".join(lost) + f" (this backend cannot store them in {job.fmt})")
        job.exif = job.xmp = job.icc = None
