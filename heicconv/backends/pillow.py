"""The ``pillow`` backend: Pillow and pillow-heif, pip wheels only (what fits a Lambda package)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..colour import srgb_profile
from ..errors import BackendUnavailableError
from ..formats import INPUT_FORMATS, OUTPUT_FORMATS
from ..info import open_pillow
from .base import Capabilities, Job, PipelineBackend

__all__ = ["PillowBackend", "load_pillow_heif"]

_TRANSPOSE = {2: [0], 3: [3], 4: [1], 5: [5], 6: [4], 7: [6], 8: [2]}  # EXIF orientation -> Image.Transpose


def load_pillow_heif() -> Any:
    """Import pillow-heif and check it is bound to its own libheif.

    If a process loads the system libheif globally first (pyvips does), the
    pillow-heif extension can bind to that older library and crash. heicconv
    always imports pillow-heif before pyvips; this check catches an application
    that imported pyvips before heicconv.
    """
    import pillow_heif

    libs = Path(pillow_heif.__file__).parent.parent / "pillow_heif.libs"
    bundled = [p.name.split(".so.")[-1] for p in libs.glob("libheif-*.so.*")] if libs.is_dir() else []
    running = pillow_heif.libheif_version()
    if bundled and running not in bundled:
        raise BackendUnavailableError(
            f"pillow-heif is bound to libheif {running} instead of its own {bundled[0]}: a library that loads the "
            "system libheif (pyvips) was imported before pillow-heif. Import heicconv (or pillow_heif) before pyvips."
        )
    return pillow_heif


class PillowBackend(PipelineBackend[Any]):
    """Pillow for JPEG/PNG/WebP/TIFF/AVIF, pillow-heif (its own libheif) for HEIC."""

    name = "pillow"

    def __init__(self) -> None:
        from PIL import Image, features

        self._heif = load_pillow_heif()
        self._Image = Image
        outputs = set(OUTPUT_FORMATS)
        inputs = set(INPUT_FORMATS)
        if not features.check("avif"):
            outputs.discard("avif")
            inputs.discard("avif")
        if not features.check("webp"):
            outputs.discard("webp")
            inputs.discard("webp")
        self.capabilities = Capabilities(
            frozenset(inputs),
            frozenset(outputs),
            frozenset(
                {
                    "heif-alpha",
                    "high-bit-depth",
                    "icc",
                    "exif",
                    "xmp",
                    "srgb",
                    "thumbnail-decode",
                    "heif-alpha-output",
                    "heif-metadata-output",
                }
            ),
        )

    def versions(self) -> dict[str, str]:
        from PIL import __version__ as pillow_version

        info = self._heif.libheif_info()
        decoders = info.get("decoders", {})
        return {
            "pillow": pillow_version,
            "pillow-heif": self._heif.__version__,
            "libheif": self._heif.libheif_version(),
            "hevc-decoder": decoders.get("libde265", "") or ("yes" if decoders else "none"),
        }

    # -- primitives --------------------------------------------------------------
    def load(self, job: Job) -> Any:
        src = job.source
        Image = self._Image
        if src.info.format == "avif":
            # pillow-heif reads no AVIF; Pillow's own plugin does, but leaves irot/imir to the caller.
            from PIL import AvifImagePlugin

            img: Any = AvifImagePlugin.AvifImageFile(io.BytesIO(src.data))
            if src.index:
                img.seek(src.index)
            img.load()
            for method in _TRANSPOSE.get(src.orientation, []):
                img = img.transpose(Image.Transpose(method))
        elif src.container is not None:
            heif = self._heif.open_heif(io.BytesIO(src.data), convert_hdr_to_8bit=job.depth == 8)
            frame = heif[src.index]
            if job.thumbnail is not None:
                want = job.thumbnail.display_size
                sizes = frame.info.get("thumbnails", [])
                for i in range(len(sizes)):
                    thumb = frame.get_thumbnail(i)
                    if tuple(thumb.size) == want:
                        return thumb.to_pillow()
            img = frame.to_pillow()
            img.info.clear()
        else:
            img = open_pillow(src.data, src.info.format)
            if src.index:
                img.seek(src.index)
            img.load()
            for method in _TRANSPOSE.get(src.orientation, []):
                img = img.transpose(Image.Transpose(method))
        return self._normalise(img, job)

    def _normalise(self, img: Any, job: Job) -> Any:
        src = job.source
        if src.alpha:
            want = "RGBA"
        elif src.grayscale:
            want = "L"
        else:
            want = "RGB"
        if img.mode in ("I;16", "I;16B", "I;16L", "I") and want == "L":
            return (
                img.point(lambda v: v / 257).convert("L")
                if img.mode == "I"
                else img.convert("I").point(lambda v: v / 257).convert("L")
            )
        if img.mode != want:
            img = img.convert(want)
        return img

    def size_of(self, img: Any) -> tuple[int, int]:
        w, h = img.size
        return (int(w), int(h))

    def resize(self, img: Any, size: tuple[int, int]) -> Any:
        return img.resize(size, self._Image.Resampling.LANCZOS)

    def to_srgb(self, img: Any, job: Job) -> Any:
        from PIL import ImageCms

        icc = job.source_icc
        if icc is None or img.mode not in ("RGB", "RGBA"):
            return img
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile()))
        return ImageCms.profileToProfile(
            img, src, dst, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode=img.mode
        )

    def flatten(self, img: Any, background: tuple[int, int, int]) -> Any:
        base = self._Image.new("RGB", img.size, background)
        base.paste(img.convert("RGB"), mask=img.getchannel("A"))
        return base

    def save(self, img: Any, job: Job) -> bytes:
        opts = job.options
        buf = io.BytesIO()
        params: dict[str, Any] = {}
        if job.icc:
            params["icc_profile"] = job.icc
        if job.exif:
            params["exif"] = b"Exif\x00\x00" + job.exif
        if job.xmp:
            params["xmp"] = job.xmp
        fmt = job.fmt
        if fmt == "jpeg":
            img.save(buf, "JPEG", quality=opts.quality, subsampling=0 if opts.quality >= 90 else 2, **params)
        elif fmt == "png":
            if job.xmp:
                from PIL import PngImagePlugin

                info = PngImagePlugin.PngInfo()
                info.add_itxt("XML:com.adobe.xmp", job.xmp.decode("utf-8", "replace"), zip=False)
                params["pnginfo"] = info
                params.pop("xmp")
            img.save(buf, "PNG", compress_level=6, **params)
        elif fmt == "webp":
            img.save(buf, "WEBP", quality=opts.quality, lossless=opts.lossless, method=4, **params)
        elif fmt == "tiff":
            xmp = params.pop("xmp", None)
            if xmp:
                params["tiffinfo"] = {700: xmp}  # XMLPacket; Pillow's TIFF writer has no xmp argument
            img.save(buf, "TIFF", compression="tiff_adobe_deflate", **params)
        elif fmt == "avif":
            img.save(buf, "AVIF", quality=opts.quality, **params)
        else:  # heic
            heif = self._heif.from_pillow(img)
            heif.save(buf, quality=opts.quality, **params)
        return buf.getvalue()
