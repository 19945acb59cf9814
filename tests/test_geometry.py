"""Header checks and decoding agree on geometry: every crop, rotation and mirror, with and without
alpha planes that carry the transforms themselves, on single images and grids, on every backend."""

from __future__ import annotations

import io

import pytest

import heicconv
from heicconv.container import isobmff
from heicconv.container.info import _TRANSFORM_TO_EXIF
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend, require_module

np = require_module("numpy", "test")
BACKENDS = ("ffmpeg", "pillow", "vips", "wand")
_TRANSPOSE = {2: [0], 3: [3], 4: [1], 5: [5], 6: [4], 7: [6], 8: [2]}  # EXIF orientation -> Image.Transpose


def _upright(picture: object, rotation: int, mirror: int | None) -> object:
    from PIL import Image

    for method in _TRANSPOSE.get(_TRANSFORM_TO_EXIF[(rotation, mirror)], []):
        picture = picture.transpose(Image.Transpose(method))  # type: ignore[attr-defined]
    return picture


def _psnr(a: object, b: object) -> float:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    mse = float(((x - y) ** 2).mean())
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


TRANSFORMS = [(r, m) for r in (0, 90, 180, 270) for m in (None, 0, 1)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [(64, 48), (64, 64)], ids=["clap", "no-clap"])
@pytest.mark.parametrize("on_alpha", [True, False], ids=["alpha-transformed", "alpha-plain"])
def test_alpha_follows_every_transform(backend: str, size: tuple[int, int], on_alpha: bool) -> None:
    """pillow-heif codes 64x48 as 64x64 with a 'clap' crop; libheif's encoder puts irot/imir on the image only."""
    require_backend(backend)
    from PIL import Image

    for rotation, mirror in TRANSFORMS:
        data = fixtures.set_heif_transform(
            fixtures.make_heic(size, "RGBA", quality=95), rotation, mirror, on_alpha=on_alpha
        )
        expected = _upright(fixtures.gradient(size, "RGBA"), rotation, mirror)
        info = heicconv.probe(data)
        assert (info.width, info.height) == expected.size  # type: ignore[attr-defined]
        out = Image.open(io.BytesIO(heicconv.convert(data, "png", backend=backend)))
        assert out.mode == "RGBA" and out.size == expected.size, (rotation, mirror)  # type: ignore[attr-defined]
        alpha = np.asarray(out.getchannel("A"), dtype=float)
        want = np.asarray(expected.getchannel("A"), dtype=float)  # type: ignore[attr-defined]
        assert np.abs(alpha - want).mean() < 3, (rotation, mirror)  # the transparent blocks are where they belong
        assert _psnr(out.convert("RGB"), expected.convert("RGB")) >= 30, (rotation, mirror)  # type: ignore[attr-defined]


def _grid(rotation: int, alpha: bool) -> bytes:
    """A 2x2 grid of 64x64 tiles (128x96 after a 'clap' crop), rotated, optionally with a grid alpha plane."""
    from PIL import Image

    picture = fixtures.gradient((128, 96), "RGBA")
    items: list[isobmff.NewItem] = []

    def tiles(plane: object, first_id: int) -> list[int]:
        ids = []
        for n, (x, y) in enumerate([(0, 0), (64, 0), (0, 64), (64, 64)]):
            tile = Image.new(plane.mode, (64, 64))  # type: ignore[attr-defined]
            tile.paste(plane.crop((x, y, x + 64, y + 64)))  # type: ignore[attr-defined]
            coded = fixtures.encode_heic(tile)
            c = isobmff.parse(coded)
            item = c.copy_items(coded, c.primary_id)[0]
            item.id = first_id + n
            items.append(item)
            ids.append(item.id)
        return ids

    def grid_props(extra: list[bytes]) -> list[tuple[bytes, bool]]:
        ispe = isobmff._full_box(b"ispe", 0, 0, (128).to_bytes(4, "big") * 2)
        # 'clap' offsets are from the centre: keeping the top 96 of 128 rows is a vertical offset of -16.
        clap = isobmff._box(
            b"clap", b"".join((v & 0xFFFFFFFF).to_bytes(4, "big") for v in (128, 1, 96, 1, 0, 1, -16, 1))
        )
        return [(ispe, False), (clap, True), *((p, True) for p in extra)]

    irot = [isobmff._box(b"irot", bytes([rotation // 90]))] if rotation else []
    grid_data = bytes([0, 0, 1, 1]) + (128).to_bytes(2, "big") * 2
    colour = isobmff.NewItem(100, b"grid", grid_data, grid_props(irot), parts=tiles(picture.convert("RGB"), 1))
    colour.hidden = False
    new = [colour]
    if alpha:
        auxc = isobmff._full_box(b"auxC", 0, 0, b"urn:mpeg:hevc:2015:auxid:1\0")
        plane = isobmff.NewItem(
            200, b"grid", grid_data, [*grid_props([]), (auxc, True)], parts=tiles(picture.getchannel("A"), 11)
        )
        plane.aux_of = [100]
        new.append(plane)
    return isobmff.write(new + items, 100)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("alpha", [False, True], ids=["grid", "grid-alpha"])
def test_cropped_rotated_grids(backend: str, alpha: bool) -> None:
    require_backend(backend)
    from PIL import Image

    for rotation in (0, 90, 270):
        data = _grid(rotation, alpha)
        expected = _upright(fixtures.gradient((128, 96), "RGBA"), rotation, None)
        result = heicconv.convert_with_report(data, "png", backend=backend)
        out = Image.open(io.BytesIO(result.data))
        assert out.size == expected.size, rotation  # type: ignore[attr-defined]
        assert _psnr(out.convert("RGB"), expected.convert("RGB")) >= 30, rotation  # type: ignore[attr-defined]
        if alpha:
            assert (
                np.abs(np.asarray(out.getchannel("A"), dtype=float) - np.asarray(expected.getchannel("A"))).mean() < 3
            )  # type: ignore[attr-defined]
