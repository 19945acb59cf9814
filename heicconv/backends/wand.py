"""The ``wand`` backend: ImageMagick through Wand, what container images usually install.

ImageMagick 6's HEIC coder reads only the file's primary image, and decodes
neither its alpha plane nor its colour profile. heicconv makes up for it from
the container it has already parsed: to decode another image (the one asked
for, the real primary, or the alpha plane) it hands ImageMagick a copy of the
file whose ``pitm`` box points at that image, and it attaches the ICC profile,
EXIF and XMP itself. Every input reaches ImageMagick with an explicit coder,
never a guessed one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from ..container import output_edits
from ..container.colour import srgb_profile
from ..errors import BackendUnavailableError, DecodeError
from ..options.formats import INPUT_FORMATS
from . import imagemagick
from ._native import hevc_decoder, loaded_library_version, tiny_heic, zeroed_allocations
from .contract import Capabilities, Feature, Job, PipelineBackend

__all__ = ["WandBackend"]

_CODERS = {"heic": "heic", "avif": "heic", "jpeg": "jpeg", "png": "png", "webp": "webp", "tiff": "tiff"}
_WRITERS = {"jpeg": "jpeg", "png": "png", "webp": "webp", "tiff": "tiff", "avif": "avif", "heic": "heic"}
# Per-read settings that keep ImageMagick's coders to the one job: a TIFF's Photoshop layers (tag 37724)
# would otherwise be parsed by the PSD coder's layer reader.
_READ_OPTIONS = {"tiff": {"tiff:ignore-layers": "true"}}


# Wand's order of library names to try (wand.api.library_paths): each version, then each option.
_WAND_VERSIONS = ("", "-7", "-7.Q8", "-7.Q16", "-6", "-Q16", "-Q8", "-6.Q16")
_WAND_SUFFIXES = [version + option for version in _WAND_VERSIONS for option in ("", "HDRI", "HDRI-2")]


@contextlib.contextmanager
def _library_suffix() -> Iterator[None]:
    """While Wand loads: tell it which MagickWand to load first, found in one ``ldconfig -p``.

    Wand looks for each of 24 library names with ``ctypes.util.find_library``, which runs ``ldconfig``, then a
    compiler and the linker, for every name it does not find: Debian's ``libMagickWand-6.Q16`` comes 13th,
    after a second or more of failed searches (most of the wand backend's cold start). The name found here is
    the one Wand's own search would find first; Wand still searches as before if it cannot load it.
    """
    if "WAND_MAGICK_LIBRARY_SUFFIX" in os.environ or not sys.platform.startswith("linux"):
        yield
        return
    try:
        listing = subprocess.run(
            ["/sbin/ldconfig", "-p"], capture_output=True, text=True, timeout=10, env={"LC_ALL": "C"}
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    names = {line.split()[0] for line in listing.splitlines()[1:] if line.strip()}
    found = next((s for s in _WAND_SUFFIXES if any(n.startswith(f"libMagickWand{s}.") for n in names)), None)
    if found is None:
        yield
        return
    os.environ["WAND_MAGICK_LIBRARY_SUFFIX"] = found
    try:
        yield
    finally:
        os.environ.pop("WAND_MAGICK_LIBRARY_SUFFIX", None)


class WandBackend(PipelineBackend[Any]):
    """ImageMagick (via Wand) for decoding and encoding; heicconv for image selection, alpha and metadata."""

    name = "wand"

    def __init__(self) -> None:
        # ImageMagick's policy and resource limits are process-wide, so heicconv changes neither (the application
        # may use ImageMagick too): it checks each picture against them and reads with built-in coders only.
        try:
            with _library_suffix():
                from wand import image as wand_image
                from wand import version as wand_version
        except (ImportError, OSError) as exc:
            raise BackendUnavailableError(
                f"backend 'wand': Wand or ImageMagick's MagickWand library is missing ({exc})"
            ) from exc
        self._image = wand_image
        self._version = wand_version
        import ctypes

        from wand.api import library

        self._library = library
        # Wand does not wrap MagickProfileImage (profile conversion); declare its C signature so the
        # 64-bit wand pointer is passed whole.
        self._profile_image = library.MagickProfileImage
        self._profile_image.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
        self._profile_image.restype = ctypes.c_int
        native = imagemagick.native_coders(sorted({*_CODERS.values(), *_WRITERS.values()}))
        if not native["heic"][0]:
            raise BackendUnavailableError("backend 'wand': ImageMagick has no HEIC coder (built without libheif)")
        try:
            with wand_image.Image(blob=tiny_heic(), format="heic") as probe:
                probe.size  # noqa: B018 - forces the decode
        except Exception as exc:
            raise BackendUnavailableError(
                "backend 'wand': ImageMagick's HEIC coder cannot decode HEVC (libheif lacks an HEVC decoder)"
            ) from exc
        # Only coders built into ImageMagick: for a format it has no coder for, it would run a delegate
        # program from delegates.xml instead (dwebp, cwebp).
        inputs = {fmt for fmt in INPUT_FORMATS if native[_CODERS[fmt]][0]}
        outputs = {fmt for fmt in ("jpeg", "png", "webp", "tiff") if native[_WRITERS[fmt]][1]}
        for fmt in ("avif", "heic"):
            if not native[_WRITERS[fmt]][1]:
                continue
            try:
                with wand_image.Image(width=8, height=8, background="gray") as img:
                    img.format = fmt
                    if img.make_blob():
                        outputs.add(fmt)
            except Exception:  # a coder whose library has no encoder for it
                continue
        self.capabilities = Capabilities(
            frozenset(inputs),
            frozenset(outputs),
            Feature.common() | Feature.SRGB_16_BIT,
        )

    def versions(self) -> dict[str, str]:
        from wand import __version__ as wand_version

        return {
            "wand": wand_version,
            "imagemagick": self._version.MAGICK_VERSION.split(" https")[0],
            "libheif": loaded_library_version("libheif"),
            "hevc-decoder": hevc_decoder(),
            "policy": imagemagick.policy().describe(),
        }

    # -- primitives --------------------------------------------------------------
    def _read(self, data: bytes, coder: str) -> Any:
        """Decode ``data`` with exactly the coder ``coder`` (a built-in one: see ``__init__``)."""
        from wand.exceptions import WandRuntimeError

        img = self._image.Image()
        try:
            for key, value in _READ_OPTIONS.get(coder, {}).items():
                img.options[key] = value
            # An explicit coder: ImageMagick never guesses the format from the bytes. HEIF pictures are decoded
            # into zeroed memory, so that what libde265 leaves undecoded shows (backends._damage).
            with zeroed_allocations() if coder == "heic" else contextlib.nullcontext():
                img.read(blob=data, format=coder)
            # As Wand's own constructor does: a format left on the wand would also be the one written.
            self._library.MagickSetFormat(img.wand, b"")
        except WandRuntimeError as exc:  # no image and no exception: Wand's guess ("a delegate is missing") is wrong
            img.close()
            raise DecodeError(f"ImageMagick's {coder.upper()} coder returned no image and gave no reason") from exc
        except BaseException:
            img.close()
            raise
        return img

    def _check_limits(self, job: Job) -> None:
        """Refuse, naming the limit, a picture ImageMagick's policy would refuse (it would not always say why)."""
        src = job.source
        if src.container is not None and src.item is not None:
            target = job.thumbnail if job.thumbnail is not None else src.item
            width, height = target.display_size
        else:
            width, height = (src.height, src.width) if src.orientation >= 5 else (src.width, src.height)
        imagemagick.check_fits(width, height)

    def load(self, job: Job) -> Any:
        self._check_limits(job)
        src = job.source
        if src.container is not None and src.item is not None:
            c = src.container
            target = job.thumbnail if job.thumbnail is not None else src.item
            mirror = job.mirror_apart()
            img = self._read(job.heif_input(mirror=mirror is None), "heic")
            self._check_size(img, target.display_size)
            alpha_item = c.alpha_of(target.id) if job.thumbnail is None else None
            if alpha_item is not None:
                # ImageMagick 6 decodes no alpha plane: decode it as an image of its own (heif_input gives
                # it the image's crop, rotation and mirror, as libheif applies them to a decoded alpha).
                with self._read(job.heif_input(alpha_item, mirror=mirror is None), "heic") as decoded:
                    self._apply_alpha(img, decoded)
            if mirror == 0:
                img.flip()
            elif mirror == 1:
                img.flop()
        else:
            img = self._read(src.data, _CODERS[src.info.format])
            if src.index:
                frame = self._image.Image(image=img.sequence[src.index])
                img.close()
                img = frame
            elif len(img.sequence) > 1:
                frame = self._image.Image(image=img.sequence[0])
                img.close()
                img = frame
            if src.orientation != 1:
                img.auto_orient()
        return self._normalise(img, job)

    def _check_size(self, img: Any, size: tuple[int, int]) -> None:
        # libheif 1.16 and later refuse a picture whose coded size differs from the size the file declares
        # (so do pillow-heif and libvips); ImageMagick 6 with an older libheif hands it back. Refuse it too.
        if (img.width, img.height) != size:
            decoded = f"{img.width}x{img.height}"
            img.close()
            raise DecodeError(f"the picture decodes to {decoded}, not the {size[0]}x{size[1]} its header declares")

    def _apply_alpha(self, img: Any, decoded: Any) -> None:
        self._check_size(decoded, (img.width, img.height))
        # ImageMagick 6 leaves HEIF pixels as YCbCr: the Y plane (red channel) of the alpha image is the alpha.
        channel = "red" if decoded.colorspace == "ycbcr" else "gray"
        with decoded.channel_images[channel] as mask:
            mask.alpha_channel = "off"
            img.transform_colorspace("srgb")
            img.alpha_channel = "set"
            img.composite(mask, 0, 0, operator="copy_opacity")

    def _normalise(self, img: Any, job: Job) -> Any:
        src = job.source
        if img.colorspace == "ycbcr" and _jpeg_as_decoded(img, job):
            # JPEG stores YCbCr too, and ImageMagick's JPEG writer takes a YCbCr image's planes as they are
            # (JFIF's full-range BT.601, the same matrix ImageMagick would convert with): converting to sRGB
            # here only for the writer to convert back cost 15-30 ms on a 1440x960 photo, most of heicconv's
            # overhead over Wand called directly. Setting the type to truecolor would convert, so it is left.
            img.alpha_channel = "off"
            img.depth = 8
            return img
        if img.colorspace not in ("srgb", "gray", "rgb"):
            img.transform_colorspace("srgb")
        if src.alpha:
            img.type = "truecolormatte"
        elif src.grayscale:
            img.alpha_channel = "off"
            img.type = "grayscale"
        else:
            img.alpha_channel = "off"
            img.type = "truecolor"
        img.depth = job.depth
        return img

    def pixels_kind(self, img: Any) -> str | None:
        if img.depth not in (8, 16):
            return None
        return {"ycbcr": "rgb", "srgb": "rgb", "rgb": "rgb", "gray": "luma"}.get(img.colorspace)

    def region(self, img: Any, box: tuple[int, int, int, int]) -> Any:
        import numpy as np

        x0, y0, x1, y1 = box
        with img[x0:x1, y0:y1] as part:  # a copy
            if part.colorspace == "ycbcr":  # ImageMagick's YCbCr of libheif's RGB (JPEG output): back, in 16 bits
                part.transform_colorspace("srgb")
            values = part.export_pixels(channel_map="RGB", storage="char")
        return np.asarray(values, np.uint8).reshape(y1 - y0, x1 - x0, 3)

    def size_of(self, img: Any) -> tuple[int, int]:
        return (img.width, img.height)

    def resize(self, img: Any, size: tuple[int, int]) -> Any:
        img.resize(size[0], size[1], filter="lanczos")
        return img

    def to_srgb(self, img: Any, job: Job) -> Any:
        icc = job.source_icc
        if icc is None or img.type == "grayscale":
            return img
        # Wand's profiles[...] = only attaches a profile; MagickProfileImage converts the pixels
        # from the attached profile to the new one (with LittleCMS).
        img.profiles["icc"] = icc
        target = srgb_profile()
        if not self._profile_image(img.wand, b"icc", target, len(target)):
            img.raise_exception()
            raise DecodeError("ImageMagick could not convert the image to sRGB")
        return img

    def flatten(self, img: Any, background: tuple[int, int, int]) -> Any:
        from wand.color import Color

        img.background_color = Color("rgb({},{},{})".format(*background))
        img.alpha_channel = "remove"
        img.alpha_channel = "off"
        return img

    def save(self, img: Any, job: Job) -> bytes:
        opts = job.options
        try:
            # Not img.strip(): in ImageMagick 6 it also tells the PNG writer to drop iCCP and iTXt chunks.
            for profile in list(img.profiles):
                del img.profiles[profile]
            img.orientation = "top_left"
            if job.icc:
                img.profiles["icc"] = job.icc
            if job.exif:
                img.profiles["exif"] = b"Exif\x00\x00" + job.exif
            if job.xmp:
                img.profiles["xmp"] = job.xmp
            img.depth = job.depth
            fmt = job.fmt
            img.format = _WRITERS[fmt]
            img.compression_quality = opts.quality
            if fmt == "jpeg":
                img.options["jpeg:sampling-factor"] = "1x1" if opts.quality >= 90 else "2x2"
            elif fmt == "png":
                img.compression_quality = 65  # zlib level 6, adaptive filtering
                # Never a palette or 1-bit PNG (ImageMagick picks those for images with few colours).
                gray = job.source.grayscale and not job.source.alpha
                img.options["png:color-type"] = "6" if job.alpha else "0" if gray else "2"
                # ImageMagick also writes its image properties as text chunks: the decode's EXIF fields
                # (GPS too, even when metadata is stripped), creation times (so no two runs match), and
                # colour chunks the other backends do not write. heicconv writes metadata itself.
                img.options["png:exclude-chunk"] = "bKGD,cHRM,gAMA,sRGB,iCCP,tEXt,zTXt,tIME,date"
                img.options["png:bit-depth"] = str(job.depth)
            elif fmt == "webp":
                img.options["webp:lossless"] = "true" if opts.lossless else "false"
                img.options["webp:method"] = "4"
            elif fmt == "tiff":
                img.compression = "zip"
            out: bytes = img.make_blob()
            if fmt == "tiff":
                out = output_edits.tiff_zero_padding(out)
            if fmt == "png" and job.icc:
                out = output_edits.png_set_icc(out, job.icc)
            if job.xmp and fmt == "png":
                out = output_edits.png_set_xmp(out, job.xmp)
            elif job.xmp and fmt == "webp":
                out = output_edits.webp_set_xmp(out, job.xmp, job.size)
            return out
        finally:
            img.close()


def _jpeg_as_decoded(img: Any, job: Job) -> bool:
    """Whether ``img`` goes to the JPEG writer untouched: no resize, colour conversion, alpha or 16 bits."""
    src = job.source
    unchanged = (img.width, img.height) == job.size and not (job.to_srgb or job.flatten)
    return job.fmt == "jpeg" and job.depth == 8 and unchanged and not (src.alpha or src.grayscale)
