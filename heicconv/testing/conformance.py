"""The conformance suite every backend runs, built-in or third-party.

Subclass :class:`ConformanceSuite` in a test module and override one fixture::

    class TestMyBackend(ConformanceSuite):
        @pytest.fixture
        def backend_name(self) -> str:
            return "mine"

Every output is decoded again and checked (format by magic bytes, size, mode),
never only for being non-empty.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest

import heicconv
from heicconv.options import formats
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

__all__ = ["ConformanceSuite", "decode"]

_MAGIC: dict[str, Callable[[bytes], bool]] = {
    "jpeg": lambda b: b[:3] == b"\xff\xd8\xff",
    "png": lambda b: b[:8] == b"\x89PNG\r\n\x1a\n",
    "webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
    "tiff": lambda b: b[:4] in (b"II*\x00", b"MM\x00*"),
    "avif": lambda b: b[4:8] == b"ftyp" and formats.detect(b) == "avif",
    "heic": lambda b: b[4:8] == b"ftyp" and formats.detect(b) == "heic",
}


def decode(data: bytes) -> Any:
    """Decode any output with Pillow (pillow-heif for HEIC) and return the loaded image."""
    from PIL import Image

    if formats.detect(data) == "heic":
        import pillow_heif

        heif = pillow_heif.open_heif(io.BytesIO(data))
        return heif[heif.primary_index].to_pillow()
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


class ConformanceSuite:
    """Behaviour every backend must have. Override ``backend_name``."""

    @pytest.fixture
    def backend_name(self) -> str:
        raise NotImplementedError("override the backend_name fixture")

    @pytest.fixture
    def backend(self, backend_name: str) -> str:
        require_backend(backend_name)
        return backend_name

    # -- outputs -----------------------------------------------------------------
    @pytest.mark.parametrize("fmt", formats.OUTPUT_FORMATS)
    @pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
    def test_every_output_format_decodes_back(self, backend: str, fmt: str, mode: str) -> None:
        caps = heicconv.select(backend).capabilities
        cannot_keep_alpha = (
            mode == "RGBA" and fmt in ("avif", "heic") and heicconv.Feature.HEIF_ALPHA_OUTPUT not in caps.features
        )
        if fmt not in caps.outputs or cannot_keep_alpha:
            with pytest.raises(heicconv.UnsupportedOutputError, match=fmt):
                heicconv.convert(fixtures.make_heic((40, 30), mode), fmt, backend=backend)
            return
        out = heicconv.convert(fixtures.make_heic((40, 30), mode), fmt, backend=backend)
        assert _MAGIC[fmt](out), f"{fmt} output does not start with {fmt}'s magic bytes"
        img = decode(out)
        _equal(backend, f"size of the {fmt} output of a 40x30 {mode} HEIC", img.size, (40, 30))
        if mode == "RGBA":
            expected = {"RGB"} if fmt == "jpeg" else {"RGBA"}
        elif mode == "L" and fmt in ("webp", "avif", "heic"):
            expected = {"L", "RGB"}  # these formats (or their decoders) have no plain grayscale mode
        else:
            expected = {mode}
        assert img.mode in expected, (
            f"{backend}: {fmt} output of a {mode} HEIC decodes as {img.mode}, expected {expected}"
        )

    @pytest.mark.parametrize("src_fmt", ["jpeg", "png", "webp", "tiff"])
    def test_reads_other_inputs(self, backend: str, src_fmt: str) -> None:
        data = fixtures.make_image(src_fmt, (50, 20))
        out = _first_output(backend)
        if src_fmt not in heicconv.select(backend).capabilities.inputs:
            with pytest.raises(heicconv.UnsupportedInputError, match=f"cannot read {src_fmt}"):
                heicconv.convert(data, out, backend=backend)
            return
        img = decode(heicconv.convert(data, out, backend=backend))
        _equal(backend, f"size of the output of a 50x20 {src_fmt}", img.size, (50, 20))

    @pytest.mark.parametrize("rotation", [0, 90])
    def test_reads_avif_upright(self, backend: str, rotation: int) -> None:
        data = fixtures.set_heif_transform(_avif((40, 30), "RGBA"), rotation, None)
        if "avif" not in heicconv.select(backend).capabilities.inputs:
            with pytest.raises(heicconv.UnsupportedInputError, match="cannot read avif"):
                heicconv.convert(data, "png", backend=backend)
            return
        img = decode(heicconv.convert(data, "png", backend=backend))
        _equal(backend, f"size of a 40x30 AVIF rotated {rotation}", img.size, (30, 40) if rotation else (40, 30))
        _equal(backend, "mode of an RGBA AVIF's PNG output", img.mode, "RGBA")

    @pytest.mark.parametrize("shuffled", [False, True], ids=["grid", "grid-last-tiles-shown-two-images"])
    def test_reads_avif_grids_whole(self, backend: str, shuffled: bool) -> None:
        picture = fixtures.gradient((150, 100))
        normal = not shuffled
        data = fixtures.make_avif_grid(picture, grid_first=normal, tiles_hidden=normal, other_image=shuffled)
        if "avif" not in heicconv.select(backend).capabilities.inputs:
            return  # test_reads_avif_upright checks the refusal
        img = decode(heicconv.convert(data, _first_output(backend), backend=backend))
        _equal(backend, "size of a 150x100 AVIF grid (every tile, once)", img.size, (150, 100))

    @pytest.mark.parametrize(("rotation", "mirror"), [(0, None), (90, 1)])
    def test_avif_clean_aperture_is_applied(self, backend: str, rotation: int, mirror: int | None) -> None:
        from PIL import Image

        picture = fixtures.gradient((96, 64))
        data = fixtures.set_heif_transform(fixtures.encode_avif(picture), rotation, mirror, crop=(80, 48, 4, -6))
        if "avif" not in heicconv.select(backend).capabilities.inputs:
            return
        img = decode(heicconv.convert(data, _first_output(backend), backend=backend)).convert("RGB")
        want = picture.crop((12, 2, 92, 50))
        if rotation:
            want = want.transpose(Image.Transpose.ROTATE_90).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        _equal(backend, "size after the AVIF clean aperture", img.size, want.size)
        _similar(backend, "the cropped picture", img, want, 30)

    @pytest.mark.parametrize("select", ["lsel", "a1op"])
    def test_layered_avif_gives_the_selected_layer(self, backend: str, select: str) -> None:
        data = fixtures.make_layered_avif(fixtures.gradient((128, 96)), select=select)
        if "avif" not in heicconv.select(backend).capabilities.inputs:
            return
        img = decode(heicconv.convert(data, _first_output(backend), backend=backend))
        _equal(backend, f"size of the layer that {select} selects", img.size, (64, 48))

    def test_avif_over_libavif_limits_is_refused_before_decoding(self, backend: str) -> None:
        data = fixtures.set_ispe(fixtures.encode_avif(fixtures.gradient((64, 48))), 17000, 17000)
        with pytest.raises(heicconv.LimitExceededError, match="17000x17000"):
            heicconv.convert(data, "jpeg", backend=backend)

    def test_exif_orientation_of_a_jpeg_input_is_applied(self, backend: str) -> None:
        data = fixtures.make_image("jpeg", (60, 20), exif=fixtures.exif_block(orientation=6))
        out = heicconv.convert(data, "jpeg", backend=backend)
        img = decode(out)
        _equal(backend, "size of a 60x20 JPEG with EXIF Orientation 6", img.size, (20, 60))
        _equal(backend, "EXIF Orientation of the upright output", img.getexif().get(0x0112, 1), 1)

    @pytest.mark.parametrize(
        ("rotation", "mirror"), [(0, None), (90, None), (180, None), (270, None), (0, 0), (0, 1), (90, 0), (270, 0)]
    )
    def test_heif_transforms_give_upright_pixels(self, backend: str, rotation: int, mirror: int | None) -> None:
        from PIL import Image

        base = fixtures.make_heic((60, 40), quality=95, exif=fixtures.exif_block(orientation=1))
        data = fixtures.set_heif_transform(base, rotation, mirror)
        out = heicconv.convert(data, "png", backend=backend)
        img = decode(out).convert("RGB")
        # The expected picture is the source decoded by pillow-heif (libheif applies irot/imir), not any backend.
        import pillow_heif

        expected = pillow_heif.open_heif(io.BytesIO(data))[0].to_pillow().convert("RGB")
        _equal(backend, f"size with irot {rotation}, imir {mirror}", img.size, expected.size)
        _similar(backend, "the picture libheif makes upright", img, expected, 35)
        corner = max(1, min(img.size) // 8)
        _equal(backend, f"size with irot {rotation}", img.size, (40, 60) if rotation in (90, 270) else (60, 40))
        del Image, corner
        orientation = decode(heicconv.convert(data, "jpeg", backend=backend)).getexif().get(0x0112, 1)
        _equal(backend, "EXIF Orientation of the upright JPEG output", orientation, 1)

    @pytest.mark.parametrize(("rotation", "mirror"), [(90, None), (270, 0), (0, 1)])
    def test_alpha_follows_the_transforms(self, backend: str, rotation: int, mirror: int | None) -> None:
        import pillow_heif

        data = fixtures.set_heif_transform(fixtures.make_heic((60, 40), "RGBA", quality=95), rotation, mirror)
        img = decode(heicconv.convert(data, "png", backend=backend))
        expected = pillow_heif.open_heif(io.BytesIO(data))[0].to_pillow()
        _equal(backend, "mode and size of the PNG output", (img.mode, img.size), ("RGBA", expected.size))
        _similar(backend, "the alpha plane libheif makes upright", img.getchannel("A"), expected.getchannel("A"), 35)

    @pytest.mark.parametrize("fmt", ["png", "tiff"])
    def test_sixteen_bits_are_kept_when_asked(self, backend: str, fmt: str) -> None:
        data = fixtures.make_heic((40, 30), bit_depth=10, quality=95)
        opts = heicconv.Options(bit_depth=16)
        caps = heicconv.select(backend).capabilities
        if fmt not in caps.outputs or heicconv.Feature.OUTPUT_16_BIT not in caps.features:
            with pytest.raises(heicconv.UnsupportedOutputError, match="16-bit" if fmt in caps.outputs else fmt):
                heicconv.convert(data, fmt, opts, backend=backend)
            return
        out = heicconv.convert(data, fmt, opts, backend=backend)
        if fmt == "png":
            _equal(backend, "PNG IHDR bit depth with bit_depth=16", out[24], 16)
        else:
            from PIL import TiffImagePlugin

            tiff = TiffImagePlugin.TiffImageFile(io.BytesIO(out))
            _equal(backend, "TIFF BitsPerSample with bit_depth=16", set(tiff.tag_v2[258]), {16})
        eight = decode(heicconv.convert(data, "png", backend=backend))
        _equal(backend, "size of the default output", eight.size, (40, 30))
        _equal(backend, "PNG IHDR bit depth by default", heicconv.convert(data, "png", backend=backend)[24], 8)

    @pytest.mark.parametrize("transfer", [16, 18], ids=["PQ", "HLG"])
    def test_pq_and_hlg_are_tone_mapped_to_sdr(self, backend: str, transfer: int) -> None:
        # Gray stripes: PQ 1000, 203 (reference white) and 36.5 cd/m², black; HLG 100, 75, 50 %, 0. BT.2390's
        # EETF to 203 cd/m², coded with the sRGB curve (docs/fidelity.md): 255, 229, 117 (137 for HLG), 0.
        signals = (769 / 1023, 594 / 1023, 420 / 1023, 0.0) if transfer == 16 else (1.0, 0.75, 0.5, 0.0)
        data = fixtures.make_hdr_signal_heic(transfer, signals, size=(64, 16))
        img = decode(heicconv.convert(data, "png", backend=backend)).convert("L")
        got = [img.getpixel((x, 8)) for x in (8, 24, 40, 56)]
        expected = [255, 229, 117 if transfer == 16 else 137, 0]
        assert all(abs(g - e) <= 1 for g, e in zip(got, expected, strict=True)), (
            f"{backend}: the tone mapped stripes are {got}, expected {expected} (each within 1)"
        )

    # -- selection ---------------------------------------------------------------

    def test_primary_image_by_default_and_image_index(self, backend: str) -> None:
        data = fixtures.make_heic((40, 30), images=3, primary=1)
        _equal(
            backend,
            "size of the primary image (the second, 48x30)",
            decode(heicconv.convert(data, "png", backend=backend)).size,
            (48, 30),
        )
        for index, width in enumerate((40, 48, 56)):
            opts = heicconv.Options(image_index=index)
            got = decode(heicconv.convert(data, "png", opts, backend=backend)).size
            _equal(backend, f"size of image_index={index}", got, (width, 30))
        with pytest.raises(heicconv.ConfigError, match="out of range"):
            heicconv.convert(data, "png", heicconv.Options(image_index=3), backend=backend)

    def test_max_size_fits_inside_and_never_enlarges(self, backend: str) -> None:
        data = fixtures.make_heic((120, 80))
        for max_size, want in ((60, (60, 40)), ((500, 500), (120, 80)), ("100x10", (15, 10))):
            got = decode(heicconv.convert(data, "png", heicconv.Options(max_size=max_size), backend=backend)).size
            _equal(backend, f"size of a 120x80 image with max_size={max_size!r}", got, want)

    # -- colour and metadata -----------------------------------------------------
    @pytest.mark.parametrize("fmt", formats.OUTPUT_FORMATS)
    def test_icc_exif_xmp_are_kept_and_strippable(self, backend: str, fmt: str) -> None:
        from PIL import ImageCms

        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        data = fixtures.make_heic((40, 30), exif=fixtures.exif_block(), xmp=fixtures.XMP_PACKET, icc=icc)
        caps = heicconv.select(backend).capabilities
        if fmt not in caps.outputs:
            with pytest.raises(heicconv.UnsupportedOutputError, match=f"cannot write {fmt}"):
                heicconv.convert(data, fmt, backend=backend)
            return
        if fmt in ("avif", "heic") and heicconv.Feature.HEIF_METADATA_OUTPUT not in caps.features:
            with pytest.raises(heicconv.UnsupportedOutputError, match="colour profile"):
                heicconv.convert(data, fmt, backend=backend)
            return
        img = decode(heicconv.convert(data, fmt, backend=backend))
        _equal(backend, f"ICC profile of the {fmt} output", img.info.get("icc_profile") == icc, True)
        xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp") or b""
        assert b"heicconv fixture" in (xmp if isinstance(xmp, bytes) else xmp.encode()), (
            f"{backend}: the {fmt} output lost the XMP packet (read back: {xmp[:80]!r})"
        )
        exif = img.getexif()
        if fmt != "tiff":  # TIFF output carries no EXIF on any backend (docs/fidelity.md)
            _equal(backend, f"EXIF Make of the {fmt} output", exif.get(0x010F), "heicconv")
            _equal(backend, f"EXIF DateTime of the {fmt} output", exif.get(0x0132), "2026:11:26 10:00:00")
            assert exif.get_ifd(0x8825), f"{backend}: the {fmt} output lost the EXIF GPS IFD"
            _equal(backend, f"EXIF Orientation of the {fmt} output", exif.get(0x0112, 1), 1)
        stripped_bytes = heicconv.convert(data, fmt, heicconv.Options(metadata="strip"), backend=backend)
        for secret in (b"Fixture Camera", b"heicconv fixture", b"GPS"):  # in no chunk, tag or text of any kind
            assert secret not in stripped_bytes, f"{backend}: metadata='strip' left {secret!r} in the {fmt} output"
        stripped = decode(stripped_bytes)
        _equal(backend, f"EXIF Make after metadata='strip' ({fmt})", stripped.getexif().get(0x010F), None)
        left = stripped.info.get("xmp") or stripped.info.get("XML:com.adobe.xmp")
        assert not left, f"{backend}: metadata='strip' left XMP in the {fmt} output: {left[:80]!r}"
        # colour is not metadata: strip keeps the profile
        _equal(backend, f"ICC profile kept by metadata='strip' ({fmt})", stripped.info.get("icc_profile") == icc, True)

    @pytest.mark.parametrize("signal", ["icc", "nclx"])
    def test_colour_is_kept_or_converted_to_srgb(self, backend: str, signal: str) -> None:
        import pillow_heif
        from PIL import ImageCms

        from heicconv.container.colour import profile_from_nclx, srgb_profile

        p3 = profile_from_nclx(12, 13)
        assert p3 is not None
        if signal == "icc":
            data = fixtures.make_heic((48, 32), quality=95, icc=p3)
        else:
            data = fixtures.make_heic((48, 32), quality=95, nclx=(12, 13, 6, True))
        kept = decode(heicconv.convert(data, "png", backend=backend))
        # an nclx signal becomes the same profile on every backend
        _equal(
            backend, f"the output's profile is the Display P3 one ({signal})", kept.info.get("icc_profile") == p3, True
        )
        converted = decode(heicconv.convert(data, "png", heicconv.Options(colour="srgb"), backend=backend))
        _equal(
            backend,
            "the output's profile is sRGB with colour='srgb'",
            converted.info.get("icc_profile") == srgb_profile(),
            True,
        )
        source = pillow_heif.open_heif(io.BytesIO(data))[0].to_pillow().convert("RGB")
        expected = ImageCms.profileToProfile(
            source,
            ImageCms.ImageCmsProfile(io.BytesIO(p3)),
            ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile())),
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        )
        assert expected is not None
        _similar(backend, "the picture LittleCMS converts to sRGB", converted.convert("RGB"), expected, 35)
        unchanged = _psnr(kept.convert("RGB"), converted.convert("RGB"))
        assert unchanged < _psnr(converted.convert("RGB"), expected), (
            f"{backend}: colour='srgb' output is as close to the unconverted one ({unchanged:.1f} dB) as to sRGB"
        )

    def test_output_is_deterministic(self, backend: str) -> None:
        import time

        data = fixtures.make_heic((48, 32), "RGBA", exif=fixtures.exif_block(), xmp=fixtures.XMP_PACKET)
        fmts = [f for f in ("jpeg", "png", "webp", "tiff") if f in heicconv.select(backend).capabilities.outputs]
        first = [heicconv.convert(data, f, backend=backend) for f in fmts]
        time.sleep(1.1)  # a writer that stamps the time (ImageMagick's PNG did) now differs
        for fmt, before in zip(fmts, first, strict=True):
            assert heicconv.convert(data, fmt, backend=backend) == before, (
                f"{backend}: {fmt} output differs a second later"
            )

    def test_location_can_be_stripped_alone(self, backend: str) -> None:
        data = fixtures.make_heic((40, 30), exif=fixtures.exif_block(gps=True))
        kept = decode(heicconv.convert(data, "jpeg", backend=backend)).getexif()
        assert kept.get_ifd(0x8825), f"{backend}: the JPEG output lost the GPS IFD by default"
        opts = heicconv.Options(metadata="strip-location")
        exif = decode(heicconv.convert(data, "jpeg", opts, backend=backend)).getexif()
        assert not exif.get_ifd(0x8825), f"{backend}: metadata='strip-location' left the GPS IFD"
        _equal(backend, "EXIF Make after metadata='strip-location'", exif.get(0x010F), "heicconv")

    def test_alpha_is_flattened_onto_the_background_for_jpeg(self, backend: str) -> None:
        from PIL import Image

        img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        opts = heicconv.Options(background="#00ff00", quality=95)
        out = decode(heicconv.convert(buf.getvalue(), "jpeg", opts, backend=backend)).convert("RGB")
        r, g, b = out.getpixel((16, 16))
        assert g > 240 and r < 15 and b < 15, f"{backend}: transparent pixel on #00ff00 is {(r, g, b)}, expected green"

    # -- errors ------------------------------------------------------------------
    def test_empty_input_is_a_decode_error(self, backend: str) -> None:
        with pytest.raises(heicconv.DecodeError, match="empty"):
            heicconv.convert(b"", "jpeg", backend=backend)

    @pytest.mark.parametrize(
        "payload",
        [
            b"garbage" * 10,
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            b"%!PS-Adobe-3.0\n0 0 moveto showpage\n",
            b"push graphic-context\nviewbox 0 0 640 480\nimage over 0,0 0,0 'ephemeral:/tmp/x'\npop graphic-context\n",
        ],
    )
    def test_non_images_are_rejected_before_the_backend(self, backend: str, payload: bytes) -> None:
        with pytest.raises(heicconv.UnsupportedInputError, match="not an image heicconv reads"):
            heicconv.convert(payload, "jpeg", backend=backend)

    @pytest.mark.parametrize("cut", [0.3, 0.6, 0.9, -1])
    def test_truncated_heic_is_a_decode_error(self, backend: str, cut: float) -> None:
        data = fixtures.make_heic((64, 64))
        truncated = data[:-1] if cut == -1 else data[: int(len(data) * cut)]
        with pytest.raises(heicconv.DecodeError, match=r"truncated|ends|past the end"):
            heicconv.convert(truncated, "png", backend=backend)

    def test_header_bomb_is_refused_before_decoding(self, backend: str) -> None:
        data = fixtures.set_ispe(fixtures.make_heic((64, 64)), 40000, 40000)
        with pytest.raises(heicconv.LimitExceededError, match="max_pixels"):
            heicconv.convert(data, "jpeg", backend=backend)

    @pytest.mark.parametrize("claimed", [(32, 32), (128, 128)])
    def test_a_header_that_lies_about_the_size_is_a_decode_error(self, backend: str, claimed: tuple[int, int]) -> None:
        data = fixtures.set_ispe(fixtures.make_heic((64, 64)), *claimed)
        with pytest.raises(heicconv.DecodeError):
            heicconv.convert(data, "png", backend=backend)

    def test_unknown_output_format(self, backend: str) -> None:
        with pytest.raises(heicconv.UnsupportedOutputError, match="gif"):
            heicconv.convert(fixtures.make_heic(), "gif", backend=backend)

    def test_probe_reads_without_decoding(self, backend: str) -> None:
        data = fixtures.make_heic((40, 30), "RGBA", exif=fixtures.exif_block(), thumbnail=16)
        info = heicconv.probe(data, backend=backend)
        _equal(
            backend,
            "probe's (format, width, height, alpha)",
            (info.format, info.width, info.height, info.alpha),
            ("heic", 40, 30, True),
        )
        assert info.exif_bytes > 0, f"{backend}: probe found no EXIF"
        _equal(backend, "probe's thumbnails", info.thumbnails, (16,))

    def test_report_says_what_happened(self, backend: str) -> None:
        data = fixtures.make_heic((120, 80), "RGBA", exif=fixtures.exif_block())
        result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(max_size=60), backend=backend)
        _equal(backend, "Result.backend", result.backend, backend)
        _equal(backend, "Result's (width, height) with max_size=60", (result.width, result.height), (60, 40))
        text = "\n".join(result.notes)
        assert "resized 120x80 -> 60x40" in text, f"{backend}: no note 'resized 120x80 -> 60x40' in {result.notes}"
        assert "alpha flattened" in text, f"{backend}: no note 'alpha flattened' in {result.notes}"


def _equal(backend: str, what: str, got: Any, want: Any) -> None:
    """Fail with a message that names the backend, what was checked, what was expected and what came out."""
    assert got == want, f"{backend}: {what}: expected {want!r}, got {got!r}"


def _similar(backend: str, what: str, got: Any, want: Any, floor: float) -> None:
    psnr = _psnr(got, want)
    assert psnr > floor, f"{backend}: expected the output within {floor} dB PSNR of {what}, got {psnr:.1f} dB"


def _first_output(backend: str) -> str:
    """A lossless format the backend writes, to read its pixels back."""
    outputs = heicconv.select(backend).capabilities.outputs
    return next(f for f in ("png", "tiff", "webp", "jpeg") if f in outputs)


def _psnr(a: Any, b: Any) -> float:
    from PIL import ImageChops, ImageStat

    diff = ImageChops.difference(a, b)
    mse = sum(v * v for v in ImageStat.Stat(diff).rms) / len(ImageStat.Stat(diff).rms)
    if mse == 0:
        return 100.0
    import math

    return 10 * math.log10(255 * 255 / mse)


def _avif(size: tuple[int, int], mode: str) -> bytes:
    buf = io.BytesIO()
    fixtures.gradient(size, mode).save(buf, "AVIF", quality=90)
    return buf.getvalue()
