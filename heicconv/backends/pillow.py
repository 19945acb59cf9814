"""The ``pillow`` backend: Pillow and pillow-heif, pip wheels only (what fits a Lambda package)."""

from __future__ import annotations

import io
from typing import Any

from ..container import sixteen_bit
from ..container.colour import srgb_profile
from ..container.info import open_pillow
from ..options.formats import INPUT_FORMATS, OUTPUT_FORMATS
from . import _av1
from ._native import heif_bands16, heif_frame, load_pillow_heif
from .contract import Capabilities, Feature, Job, PipelineBackend

__all__ = ["PillowBackend"]

_TRANSPOSE = {2: [0], 3: [3], 4: [1], 5: [5], 6: [4], 7: [6], 8: [2]}  # EXIF orientation -> Image.Transpose


class PillowBackend(PipelineBackend[Any]):
    """Pillow for JPEG/PNG/WebP/TIFF/AVIF, pillow-heif (its own libheif) for HEIC."""

    name = "pillow"
    av1_refuses_damage = True  # libavif (Pillow's AVIF plugin) decodes AVIF here

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
            Feature.common() | Feature.HEIF_ALPHA_OUTPUT | Feature.HEIF_METADATA_OUTPUT,
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
        if job.depth == 16:
            return self._load_deep(job)
        return self._load_8(job)

    def _load_deep(self, job: Job) -> list[Any]:
        """16-bit output: the image as ``I;16`` bands (Pillow has no 16-bit RGB mode)."""
        src = job.source
        bands: list[Any] = []
        if src.container is not None and src.info.format == "heic":
            bands, _ = heif_bands16(job.heif_input())
        if not bands:  # an 8-bit source: widen it (v * 257 maps 255 to 65535)
            bands = [b.convert("I").point(lambda v: v * 257).convert("I;16") for b in self._load_8(job).split()]
        if len(bands) == 2:
            bands = [bands[0], bands[0], bands[0], bands[1]]
        if src.grayscale and not src.alpha:
            bands = bands[:1]
        elif not src.alpha:
            bands = bands[:3]
        return bands

    def _load_8(self, job: Job) -> Any:
        src = job.source
        Image = self._Image
        if src.info.format == "avif":
            # pillow-heif reads no AVIF; Pillow's own plugin does, but leaves clap, irot and imir to the caller.
            img: Any = _av1.decode(job)
            box = (job.thumbnail or src.item).crop_box() if src.item is not None else None
            if box is not None and img.size != (box[2] - box[0], box[3] - box[1]):
                img = img.crop(box)
            for method in _TRANSPOSE.get(src.orientation, []):
                img = img.transpose(Image.Transpose(method))
        elif src.container is not None:
            img = heif_frame(job.heif_input(), deep=job.depth != 8).to_pillow()
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

    def pixels_kind(self, img: Any) -> str | None:
        if isinstance(img, list):  # 16 bits: I;16 bands
            return "rgb" if len(img) >= 3 else "luma"
        return {"RGB": "rgb", "RGBA": "rgb", "L": "luma", "LA": "luma"}.get(img.mode)

    def region(self, img: Any, box: tuple[int, int, int, int]) -> Any:
        import numpy as np

        if isinstance(img, list):
            return np.dstack([np.asarray(band.crop(box)) for band in img[:3]])
        pixels = np.asarray(img.crop(box))
        return pixels if pixels.ndim == 3 else pixels[..., None]

    def size_of(self, img: Any) -> tuple[int, int]:
        w, h = img[0].size if isinstance(img, list) else img.size
        return (int(w), int(h))

    def resize(self, img: Any, size: tuple[int, int]) -> Any:
        lanczos = self._Image.Resampling.LANCZOS
        if not isinstance(img, list):
            return img.resize(size, lanczos)  # Pillow premultiplies RGBA itself
        if len(img) != 4:
            return [band.resize(size, lanczos) for band in img]
        # 16-bit RGBA: premultiply, resize in floating point, unpremultiply, as for 8 bits.
        from PIL import ImageMath

        alpha = img[3].convert("F")
        small_alpha = alpha.resize(size, lanczos)
        out = []
        for band in img[:3]:
            pm = ImageMath.lambda_eval(lambda e: e["c"] * e["a"] / 65535.0, c=band.convert("F"), a=alpha)
            back = ImageMath.lambda_eval(
                lambda e: e["min"](e["max"](e["c"] * 65535.0 / e["max"](e["a"], 1.0) + 0.5, 0.0), 65535.0),
                c=pm.resize(size, lanczos),
                a=small_alpha,
            )
            out.append(back.convert("I").convert("I;16"))
        clipped = ImageMath.lambda_eval(lambda e: e["min"](e["max"](e["a"] + 0.5, 0.0), 65535.0), a=small_alpha)
        out.append(clipped.convert("I").convert("I;16"))
        return out

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
        if isinstance(img, list):  # 16-bit PNG or TIFF
            if job.fmt == "png":
                return sixteen_bit.write_png16(img, job.icc, job.exif, job.xmp)
            return sixteen_bit.write_tiff16(img, job.icc, job.xmp)
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
