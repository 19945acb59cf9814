"""What every HEIF decoder is given: a file of the one image to decode (``Container.extract``)."""

from __future__ import annotations

import pytest

import heicconv
from heicconv.container import isobmff
from heicconv.testing import fixtures
from heicconv.testing.conformance import decode
from heicconv.testing.plugin import require_backend, require_module

np = require_module("numpy", "test")
BACKENDS = ("pillow", "vips", "wand")


def _psnr(a: object, b: object) -> float:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    mse = float(((x - y) ** 2).mean())
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def test_extract_keeps_only_the_image_and_its_parts() -> None:
    data = fixtures.make_iphone_heic((64, 48))
    c = isobmff.parse(data)
    assert {i.type for i in c.items.values()} == {b"hvc1", b"tmap", b"Exif"}
    out = isobmff.parse(c.extract(data, c.primary_id))
    assert [(i.type, i.hidden) for i in out.items.values()] == [(b"hvc1", False)]
    assert out.top_level == [out.primary_id] and out.brands == {b"heic", b"mif1"}
    assert out.items[out.primary_id].display_size == (64, 48)


def test_extract_makes_any_image_the_primary_with_its_alpha() -> None:
    data = fixtures.make_heic((40, 30), "RGBA", images=3, primary=2, thumbnail=16)
    c = isobmff.parse(data)
    first = c.top_level[0]
    out = isobmff.parse(c.extract(data, first))
    alpha = out.alpha_of(out.primary_id)
    assert out.top_level == [out.primary_id] == [first]
    assert alpha is not None and alpha.hidden and alpha.aux_type == c.alpha_of(first).aux_type  # type: ignore[union-attr]
    assert len(out.items) == 2  # no other image, no thumbnail
    thumb = c.thumbnails_of(c.primary_id)[0]
    only_thumb = isobmff.parse(c.extract(data, thumb.id))
    assert only_thumb.top_level == [thumb.id] and max(only_thumb.items[thumb.id].display_size) == 16


def test_extract_of_grid_keeps_tiles_in_order() -> None:
    # Phones write grids; pillow-heif does not. Build a 2x2 grid from four coded 64x64 tiles.
    tiles = []
    for n in range(4):
        c = isobmff.parse(tile := fixtures.make_heic((64, 64)))
        item = c.copy_items(tile, c.primary_id)[0]
        item.id = n + 1
        tiles.append(item)
    grid_data = bytes([0, 0, 1, 1]) + (128).to_bytes(2, "big") + (128).to_bytes(2, "big")
    ispe = isobmff._full_box(b"ispe", 0, 0, (128).to_bytes(4, "big") * 2)
    grid = isobmff.NewItem(10, b"grid", grid_data, [(ispe, False)], parts=[1, 2, 3, 4], hidden=False)
    data = isobmff.write([grid, *tiles], 10)
    c = isobmff.parse(data)
    assert c.items[10].grid == (2, 2, 128, 128)
    out = isobmff.parse(c.extract(data, 10))
    assert out.items[10].refs[b"dimg"] == [1, 2, 3, 4] and out.items[10].grid == (2, 2, 128, 128)
    for name in BACKENDS:
        require_backend(name)
        picture = decode(heicconv.convert(data, "png", backend=name))
        assert picture.size == (128, 128)
        # Each quadrant is one tile: the gradient's red corner block repeats at every tile's top-left.
        assert all(picture.getpixel((x + 2, y + 2))[0] > 200 for x in (0, 64) for y in (0, 64))


def test_extract_refuses_an_item_past_the_end_of_the_file() -> None:
    data = fixtures.make_heic((64, 48))
    cut = data[:-10]
    c = isobmff.parse(cut)
    with pytest.raises(heicconv.DecodeError, match="truncated"):
        c.extract(cut, c.primary_id)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ios18_layout_converts_to_the_same_picture(backend: str) -> None:
    require_backend(backend)
    data = fixtures.make_iphone_heic((96, 64))
    result = heicconv.convert_with_report(data, "png", backend=backend)
    assert (result.width, result.height) == (96, 64)
    reference = decode(heicconv.convert(fixtures.make_heic((96, 64)), "png", backend="pillow"))
    assert _psnr(decode(result.data), reference) >= 40
    assert "EXIF kept" in result.notes


def test_the_fixture_is_refused_by_libheif_before_1_18_when_given_whole() -> None:
    """Why the normalised file matters: the system libheif (Debian 12: 1.15) refuses the upload itself."""
    require_backend("vips")
    import pyvips

    version = tuple(int(p) for p in heicconv.select("vips").versions()["libheif"].split(".")[:2])
    if version >= (1, 18):
        pytest.skip(f"libheif {version} reads the whole file")
    with pytest.raises(pyvips.Error):
        pyvips.Image.heifload_buffer(fixtures.make_iphone_heic()).avg()
