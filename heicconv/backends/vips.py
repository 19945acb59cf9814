"""The ``vips`` backend: libvips through pyvips. Fast, and frugal with memory."""

from __future__ import annotations

import contextlib
from typing import Any

from ..container import completeness, output_edits
from ..errors import BackendUnavailableError
from ..options.formats import INPUT_FORMATS
from ._native import hevc_decoder, load_pillow_heif, loaded_library_version, tiny_heic, zeroed_allocations
from .contract import Capabilities, Feature, Job, PipelineBackend

__all__ = ["VipsBackend"]

_LOADERS = {
    "heic": "heifload_buffer",
    "avif": "heifload_buffer",
    "jpeg": "jpegload_buffer",
    "png": "pngload_buffer",
    "webp": "webpload_buffer",
    "tiff": "tiffload_buffer",
}
_DECODER_MARKERS = ("load", "2vips", "VipsJpeg", "vipspng", "spng", "heif", "Decod", "TIFFRead")
_METADATA_PREFIXES = ("exif-", "xmp-", "iptc-", "icc-", "png-comment", "heif-", "orientation", "jpeg-", "tiff-")


class VipsBackend(PipelineBackend[Any]):
    """libvips decodes HEIF through the system libheif; heicconv handles metadata itself."""

    name = "vips"

    def __init__(self) -> None:
        # Not needed by this backend, but once pyvips has put the system libheif in the global scope, a plain
        # `import pillow_heif` (the application's, or heicconv's test fixtures') would bind to it: load it
        # bound to its own libheif first, while that is simplest. Its own problems are the pillow backend's.
        with contextlib.suppress(ImportError):  # BackendUnavailableError is an ImportError too
            load_pillow_heif()
        try:
            import pyvips
        except (ImportError, OSError) as exc:
            raise BackendUnavailableError(f"backend 'vips': pyvips or libvips is missing ({exc})") from exc
        self._vips = pyvips
        # libvips caches recent operations with their pixels. heicconv's inputs are one-off buffers, so the
        # cache only holds memory: with it, RSS climbed from 186 to about 400 MB over 500 conversions.
        pyvips.cache_set_max(0)
        if not pyvips.type_find("VipsForeignLoad", "heifload_buffer"):
            raise BackendUnavailableError("backend 'vips': this libvips was built without HEIF support (heifload)")
        try:
            pyvips.Image.heifload_buffer(tiny_heic()).avg()
        except pyvips.Error as exc:
            raise BackendUnavailableError(
                "backend 'vips': libvips reads HEIF but cannot decode HEVC (its libheif has no HEVC decoder; "
                "the pyvips-binary wheel is built that way)"
            ) from exc
        outputs = {"jpeg", "png", "webp", "tiff"}
        for fmt, compression in (("avif", "av1"), ("heic", "hevc")):
            try:
                pyvips.Image.black(8, 8, bands=3).heifsave_buffer(compression=compression)
                outputs.add(fmt)
            except pyvips.Error:
                continue
        self.capabilities = Capabilities(
            frozenset(INPUT_FORMATS),
            frozenset(outputs),
            Feature.common() | Feature.SRGB_16_BIT | Feature.HEIF_ALPHA_OUTPUT | Feature.HEIF_METADATA_OUTPUT,
        )

    def versions(self) -> dict[str, str]:
        v = self._vips
        return {
            "pyvips": v.__version__,
            "libvips": f"{v.version(0)}.{v.version(1)}.{v.version(2)}",
            "libheif": loaded_library_version("libheif"),
            "hevc-decoder": hevc_decoder(),
        }

    # -- primitives --------------------------------------------------------------
    def load(self, job: Job) -> Any:
        src = job.source
        vips = self._vips
        loader = getattr(vips.Image, _LOADERS[src.info.format])
        # fail_on="error": a decoding error stops the load (libvips' default carries on, and returns a
        # damaged PNG as a picture); "warning" would also refuse JPEGs that every other decoder reads.
        kwargs: dict[str, Any] = {"access": "sequential", "fail_on": "error"}
        if src.container is not None:
            # Random access: libheif decodes the whole picture at the first request either way, and the damage
            # check (contract.PipelineBackend) reads a few blocks of it before the save reads it all. The first
            # request is made here, so that libde265 decodes into zeroed memory (zeroed_allocations).
            mirror = job.mirror_apart()
            img = loader(job.heif_input(mirror=mirror is None), **{**kwargs, "access": "random"})
            with zeroed_allocations():
                img.crop(0, 0, 1, 1).avg()
            if mirror is not None:
                img = img.flipver() if mirror == 0 else img.fliphor()
            if job.thumbnail is not None:
                img = img.copy_memory()  # small; decoding now lets a broken thumbnail fall back to the image
        else:
            if src.index:
                kwargs["page"] = src.index
            if src.info.format == "png":  # libvips misses damaged image data about once in a hundred tries
                completeness.check_png_data(src.data)
            img = loader(src.data, **kwargs)
            if src.orientation != 1:
                img = img.copy()
                img.set_type(vips.GValue.gint_type, "orientation", src.orientation)
                img = img.autorot()
        return self._normalise(img, job)

    def _normalise(self, img: Any, job: Job) -> Any:
        src = job.source
        if img.format not in ("uchar", "ushort"):
            img = img.cast("ushort") if src.bit_depth > 8 else img.cast("uchar")
        if img.interpretation in ("cmyk",):
            img = img.colourspace("srgb")
        colour_bands = img.bands - (1 if img.hasalpha() else 0)
        alpha = img[img.bands - 1] if img.hasalpha() else None
        if src.grayscale and not src.alpha:
            img = img[0]
        elif colour_bands == 1:
            img = img[0].bandjoin([img[0], img[0]])
        else:
            img = img.extract_band(0, n=3)
        if src.alpha:
            img = img.bandjoin(alpha if alpha is not None else (255 if img.format == "uchar" else 65535))
        if img.format == "ushort" and job.depth == 8:
            img = (img >> 8).cast("uchar")
        elif img.format == "uchar" and job.depth == 16:
            img = (img.cast("ushort") * 257).cast("ushort")
        interpretation = (
            ("grey16" if job.depth == 16 else "b-w") if img.bands <= 2 else ("rgb16" if job.depth == 16 else "srgb")
        )
        img = img.copy(interpretation=interpretation)
        return img

    def decode_failed(self, exc: BaseException) -> bool:
        # libvips decodes on demand, so a damaged input fails inside the save; the loaders' messages
        # name them ("tiff2vips: read error", "vipspng: libpng read error", "VipsJpeg: ...").
        return any(marker in str(exc) for marker in _DECODER_MARKERS)

    def pixels_kind(self, img: Any) -> str | None:
        if img.format not in ("uchar", "ushort"):
            return None
        return "rgb" if img.bands >= 3 else "luma"

    def region(self, img: Any, box: tuple[int, int, int, int]) -> Any:
        x0, y0, x1, y1 = box
        pixels = img.crop(x0, y0, x1 - x0, y1 - y0).numpy()
        return pixels if pixels.ndim == 3 else pixels[..., None]

    def size_of(self, img: Any) -> tuple[int, int]:
        return (img.width, img.height)

    def resize(self, img: Any, size: tuple[int, int]) -> Any:
        w, h = size
        fmt = img.format
        alpha = img.hasalpha()
        if alpha:
            img = img.premultiply()
        out = img.resize(w / img.width, vscale=h / img.height, kernel="lanczos3")
        if alpha:
            out = out.unpremultiply()
        if out.width != w or out.height != h:
            out = out.embed(0, 0, w, h, extend="copy")
        return out.cast(fmt)

    def to_srgb(self, img: Any, job: Job) -> Any:
        icc = job.source_icc
        if icc is None or img.bands < 3:
            return img
        vips = self._vips
        fmt = img.format
        img = img.copy()
        img.set_type(vips.GValue.blob_type, "icc-profile-data", icc)
        out = img.icc_transform("srgb", embedded=True, intent="relative", depth=16 if fmt == "ushort" else 8)
        return out.cast(fmt)

    def flatten(self, img: Any, background: tuple[int, int, int]) -> Any:
        scale = 257 if img.format == "ushort" else 1
        bg = [c * scale for c in background]
        if img.bands == 2:
            bg = bg[:1]
        return img.flatten(background=bg).cast(img.format)

    def save(self, img: Any, job: Job) -> bytes:
        vips = self._vips
        opts = job.options
        img = img.copy()
        for name in img.get_fields():
            if name.startswith(_METADATA_PREFIXES):
                img.remove(name)
        blob = vips.GValue.blob_type
        if job.icc:
            img.set_type(blob, "icc-profile-data", job.icc)
        if job.exif:
            img.set_type(blob, "exif-data", b"Exif\x00\x00" + job.exif)
        if job.xmp:
            img.set_type(blob, "xmp-data", job.xmp)
        fmt = job.fmt
        out: bytes
        if fmt == "jpeg":
            out = img.jpegsave_buffer(Q=opts.quality, subsample_mode="off" if opts.quality >= 90 else "on")
        elif fmt == "png":
            out = img.pngsave_buffer(compression=6, bitdepth=job.depth)
        elif fmt == "webp":
            out = img.webpsave_buffer(Q=opts.quality, lossless=opts.lossless, effort=4)
        elif fmt == "tiff":
            out = img.tiffsave_buffer(compression="deflate")
        else:
            out = img.heifsave_buffer(Q=opts.quality, compression="av1" if fmt == "avif" else "hevc")
        if not job.exif:  # libvips writes an EXIF block of its own (resolution, orientation) when there is none
            out = output_edits.drop_exif(out, fmt)
        return out
