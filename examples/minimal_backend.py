"""A complete third-party heicconv backend in one file: Pillow and pillow-heif, JPEG and PNG out.

heicconv decides everything about the output (which image, its size and orientation, alpha,
colour profile, metadata, limits) and hands the backend a ``heicconv.Job``; the backend only
decodes, resizes, converts colour, flattens and encodes. Register it and use it by name:

    heicconv.register_backend("minimal", "minimal_backend:MinimalBackend")
    heicconv.convert(data, "jpeg", backend="minimal")
"""

from __future__ import annotations

import io

import pillow_heif
from PIL import Image, ImageCms, ImageOps, PngImagePlugin
from PIL import __version__ as pillow_version

import heicconv
from heicconv import Capabilities, Feature, Job


class MinimalBackend(heicconv.PipelineBackend[Image.Image]):
    name = "minimal"
    capabilities = Capabilities(
        inputs=frozenset({"heic", "jpeg", "png"}),
        outputs=frozenset({"jpeg", "png"}),
        features=Feature.HEIF_ALPHA | Feature.ICC | Feature.EXIF | Feature.XMP | Feature.SRGB,
    )

    def versions(self) -> dict[str, str]:
        return {"pillow": pillow_version, "pillow-heif": pillow_heif.__version__}

    def load(self, job: Job) -> Image.Image:
        if job.source.container is not None:  # HEIF: libheif applies the file's rotation and mirror
            img = pillow_heif.open_heif(io.BytesIO(job.heif_input()))[0].to_pillow()
        else:  # JPEG or PNG: apply its EXIF Orientation
            img = ImageOps.exif_transpose(Image.open(io.BytesIO(job.source.data)))
        mode = "RGBA" if job.source.alpha else "L" if job.source.grayscale else "RGB"
        return img.convert(mode)

    def size_of(self, img: Image.Image) -> tuple[int, int]:
        return img.size

    def resize(self, img: Image.Image, size: tuple[int, int]) -> Image.Image:
        return img.resize(size, Image.Resampling.LANCZOS)

    def to_srgb(self, img: Image.Image, job: Job) -> Image.Image:
        if job.source_icc is None or img.mode not in ("RGB", "RGBA"):
            return img
        source = ImageCms.ImageCmsProfile(io.BytesIO(job.source_icc))
        srgb = ImageCms.ImageCmsProfile(io.BytesIO(job.icc or b""))
        return ImageCms.profileToProfile(img, source, srgb, outputMode=img.mode)

    def flatten(self, img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
        base = Image.new("RGB", img.size, background)
        base.paste(img.convert("RGB"), mask=img.getchannel("A"))
        return base

    def save(self, img: Image.Image, job: Job) -> bytes:
        params: dict[str, bytes] = {}  # what heicconv decided the output carries
        if job.icc:
            params["icc_profile"] = job.icc
        if job.exif:
            params["exif"] = b"Exif\0\0" + job.exif
        buf = io.BytesIO()
        if job.fmt == "jpeg":
            img.save(buf, "JPEG", quality=job.options.quality, xmp=job.xmp or b"", **params)
        else:  # Pillow writes a PNG's XMP as an iTXt chunk given through PngInfo
            text = PngImagePlugin.PngInfo()
            if job.xmp:
                text.add_itxt("XML:com.adobe.xmp", job.xmp.decode("utf-8"), zip=False)
            img.save(buf, "PNG", pnginfo=text, **params)
        return buf.getvalue()
