from __future__ import annotations

import pytest

import heicconv
from heicconv.options import formats
from heicconv.testing import fixtures


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff"])
def test_detects_from_bytes_not_names(fmt: str) -> None:
    assert formats.detect(fixtures.make_image(fmt)) == fmt


def test_detects_heic_and_avif_brands() -> None:
    assert formats.detect(fixtures.make_heic()) == "heic"
    avif = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"
    assert formats.detect(avif) == "avif"
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isomiso2"
    with pytest.raises(heicconv.UnsupportedFormatError):
        formats.detect(mp4)


@pytest.mark.parametrize(
    "payload",
    [b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"%!PS-Adobe-3.0", b"push graphic-context", b"GIF89a...", b"hello"],
)
def test_rejects_everything_else(payload: bytes) -> None:
    with pytest.raises(heicconv.UnsupportedFormatError, match="not an image heicconv reads"):
        formats.detect(payload)


def test_empty_and_broken_ftyp_are_decode_errors() -> None:
    with pytest.raises(heicconv.DecodeError, match="empty"):
        formats.detect(b"")
    with pytest.raises(heicconv.DecodeError, match="ftyp"):
        formats.detect(b"\x00\x00\xff\xffftypheic")


def test_names_and_suffixes() -> None:
    assert formats.normalize("JPG") == "jpeg"
    assert formats.normalize(".tif") == "tiff"
    assert formats.format_from_suffix(".HEIC") == "heic"
    with pytest.raises(heicconv.UnsupportedFormatError, match="gif"):
        formats.normalize("gif")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quality": 0}, "quality"),
        ({"quality": 101}, "quality"),
        ({"quality": True}, "quality"),
        ({"lossless": "yes"}, "lossless"),
        ({"max_size": 0}, "max_size"),
        ({"max_size": "big"}, "max_size"),
        ({"metadata": "some"}, "metadata"),
        ({"background": "red"}, "background"),
        ({"background": (0, 0, 256)}, "background"),
        ({"image_index": -1}, "image_index"),
        ({"bit_depth": 10}, "bit_depth"),
    ],
)
def test_options_fail_at_construction(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(heicconv.ConfigError, match=f"^{field}: ") as info:
        heicconv.Options(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_options_normalise() -> None:
    opts = heicconv.Options(max_size="800x600", background="#102030")
    assert opts.max_size == (800, 600)
    assert opts.background == (16, 32, 48)
    assert opts.replace(quality=50).quality == 50
    with pytest.raises(heicconv.ConfigError):
        opts.replace(quality=500)


def test_errors_subclass_builtins_and_one_root() -> None:
    pairs = [
        (heicconv.ConfigError, ValueError),
        (heicconv.BackendUnavailableError, ImportError),
        (heicconv.UnsupportedFormatError, ValueError),
        (heicconv.DecodeError, ValueError),
        (heicconv.EncodeError, RuntimeError),
        (heicconv.LimitExceededError, ValueError),
        (heicconv.TimeoutError, TimeoutError),
    ]
    for cls, builtin in pairs:
        assert issubclass(cls, heicconv.HeicconvError) and issubclass(cls, builtin)


def test_lossless_jpeg_is_refused() -> None:
    with pytest.raises(heicconv.UnsupportedFormatError, match="lossless"):
        heicconv.convert(fixtures.make_heic(), "jpeg", heicconv.Options(lossless=True))


def test_a_result_prints_short_without_its_bytes() -> None:
    result = heicconv.convert_with_report(fixtures.make_heic(size=(640, 480)), "png")
    shown = repr(result)
    assert len(result.data) > 10_000 and len(shown) < 1_000, shown
    expected = f"Result(png 640x480, {len(result.data):,} bytes, backend={result.backend!r}, from heic 640x480"
    assert shown.startswith(expected), shown
    assert "\\x" not in shown and str(result.notes[0]) in shown
