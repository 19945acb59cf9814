"""Images generated on the fly, so tests need no files from elsewhere.

pillow-heif encodes the HEIC fixtures; the helpers below add what encoders do not
write (rotation boxes, thumbnails, a primary that is not the first image) by
editing the container.

>>> data = make_heic(size=(40, 20), mode="RGBA")
>>> from heicconv import probe
>>> info = probe(data)
>>> (info.width, info.height, info.alpha)
(40, 20, True)
"""

from __future__ import annotations

import io
import struct
from typing import Any, cast

__all__ = [
    "XMP_PACKET",
    "apple_exif",
    "encode_avif",
    "encode_avif_10bit",
    "encode_heic",
    "exif_block",
    "gradient",
    "make_avif_grid",
    "make_hdr_heic",
    "make_heic",
    "make_image",
    "make_iphone_heic",
    "make_large_grid",
    "make_layered_avif",
    "make_mini_heic",
    "make_overlay",
    "set_heif_transform",
    "set_ispe",
]


def gradient(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Any:
    """A smooth, asymmetric test picture (so rotations and mirrors are visible)."""
    from PIL import Image

    w, h = size
    base = Image.linear_gradient("L").resize((w, h))
    other = Image.linear_gradient("L").rotate(90).resize((w, h))
    if mode == "L":
        return base
    rgb = Image.merge("RGB", (base, other, Image.new("L", (w, h), 96)))
    # A bright block in the top-left corner marks orientation.
    rgb.paste((250, 20, 20), (0, 0, max(1, w // 4), max(1, h // 4)))
    if mode == "RGB":
        return rgb
    if mode == "LA":
        return Image.merge("LA", (base, other))
    # Alpha: opaque, with a transparent block at top-left and a half-transparent one at bottom-right,
    # so a transform applied to the colour but not to the alpha shows.
    alpha = Image.new("L", (w, h), 255)
    alpha.paste(0, (0, 0, max(1, w // 3), max(1, h // 4)))
    alpha.paste(128, (w - max(1, w // 4), h - max(1, h // 4), w, h))
    return Image.merge("RGBA", (*rgb.split(), alpha))


def exif_block(orientation: int = 1, make: str = "heicconv", gps: bool = True, extra: int = 0) -> bytes:
    """An EXIF block (with ``Exif\\0\\0``) with camera make, date, orientation and optionally GPS."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = make  # Make
    exif[0x0110] = "Fixture Camera"  # Model
    exif[0x0112] = orientation
    exif[0x0132] = "2026:11:26 10:00:00"  # DateTime
    if gps:
        exif[0x8825] = {1: "N", 2: (47.0, 13.0, 38.0), 3: "E", 4: (8.0, 32.0, 10.0)}
    if extra:
        exif[0x010E] = "x" * extra  # ImageDescription, to make a large block
    data: bytes = exif.tobytes()
    return data


XMP_PACKET = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
    b' tiff:Orientation="1"><dc:creator>heicconv fixture</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>'
    b'<?xpacket end="w"?>'
)


def make_image(fmt: str = "png", size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: Any) -> bytes:
    """Encode the gradient as JPEG, PNG, WebP or TIFF with Pillow."""
    img = gradient(size, mode)
    buf = io.BytesIO()
    img.save(buf, {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF"}[fmt], **save)
    return buf.getvalue()


def make_heic(
    size: tuple[int, int] = (64, 48),
    mode: str = "RGB",
    *,
    bit_depth: int = 8,
    quality: int = 90,
    exif: bytes | None = None,
    xmp: bytes | None = None,
    icc: bytes | None = None,
    images: int = 1,
    primary: int = 0,
    thumbnail: int | None = None,
    nclx: tuple[int, int, int, bool] | None = None,
) -> bytes:
    """Encode a HEIC with pillow-heif.

    ``images`` top-level images (each a different size: the n-th is grown by n*8
    pixels in width) with ``primary`` as the primary; ``thumbnail`` adds an
    embedded thumbnail of that longest side to each image. ``nclx`` (primaries, transfer,
    matrix, full range) signals colour the way Android phones and cameras do, without ICC.
    """
    import pillow_heif

    heif: Any = cast(Any, pillow_heif).HeifFile()
    for n in range(images):
        img = gradient((size[0] + 8 * n, size[1]), mode)
        if bit_depth > 8:
            import numpy as np  # only the high-bit-depth fixtures need numpy

            arr = np.asarray(img, dtype=np.uint16) * 257
            heif_mode = {1: "I;16", 3: "RGB;16", 4: "RGBA;16"}[len(img.getbands())]
            heif.add_frombytes(heif_mode, img.size, arr.tobytes())
        else:
            heif.add_from_pillow(img)
        if n == primary:
            heif[n].info["primary"] = True
        if nclx is not None:
            heif[n].info["nclx_profile"] = {
                "color_primaries": nclx[0],
                "transfer_characteristics": nclx[1],
                "matrix_coefficients": nclx[2],
                "full_range_flag": int(nclx[3]),
            }
    params: dict[str, Any] = {"quality": quality}
    if bit_depth > 8:
        params["save_to_12bit"] = bit_depth == 12
    if exif is not None:
        params["exif"] = exif
    if xmp is not None:
        params["xmp"] = xmp
    if icc is not None:
        params["icc_profile"] = icc
    if thumbnail:
        params["thumbnails"] = [thumbnail]
    buf = io.BytesIO()
    heif.save(buf, primary_index=primary, **params)
    return buf.getvalue()


def make_hdr_signal_heic(
    transfer: int,
    signals: tuple[float, ...],
    *,
    size: tuple[int, int] = (96, 32),
    bit_depth: int = 10,
    primaries: int = 9,
    rotation: int = 0,
) -> bytes:
    """A gray HDR HEIC without a gain map: vertical stripes of equal width at these PQ (``transfer=16``) or
    HLG (``18``) signal levels (0..1), coded losslessly, with nclx ``primaries``/``transfer``/BT.2020 matrix,
    full range. ``rotation`` (degrees anticlockwise) is written as ``irot``.
    """
    import numpy as np
    import pillow_heif

    w, h = size
    top = (1 << bit_depth) - 1
    row = np.zeros(w, dtype=np.uint16)
    for n, signal in enumerate(signals):
        row[n * w // len(signals) : (n + 1) * w // len(signals)] = round(signal * top) << (16 - bit_depth)
    arr = np.repeat(np.repeat(row[None, :, None], h, axis=0), 3, axis=2)
    heif: Any = cast(Any, pillow_heif).HeifFile()
    heif.add_frombytes("RGB;16", size, np.ascontiguousarray(arr).tobytes())
    heif[0].info["nclx_profile"] = {
        "color_primaries": primaries,
        "transfer_characteristics": transfer,
        "matrix_coefficients": 9,
        "full_range_flag": 1,
    }
    buf = io.BytesIO()
    heif.save(buf, quality=-1, save_to_12bit=bit_depth == 12)
    data = buf.getvalue()
    return set_heif_transform(data, rotation) if rotation else data


def encode_heic(
    image: Any,
    quality: int = 95,
    *,
    bit_depth: int = 8,
    nclx: tuple[int, int, int, bool] | None = None,
    **save: Any,
) -> bytes:
    """Encode a Pillow image (L, RGB or RGBA) as a HEIC with pillow-heif, nothing else added.

    ``bit_depth=10`` codes an RGB image's samples widened to 10 bits (as cameras and HDR phones write photos);
    ``nclx`` (primaries, transfer, matrix, full range) is written as the colour description, e.g.
    ``(9, 16, 9, True)`` for BT.2100 PQ. ``save`` goes to pillow-heif's ``save`` (``enc_params``, say)."""
    import numpy as np
    import pillow_heif

    heif: Any = cast(Any, pillow_heif).from_pillow(image)
    if bit_depth != 8:
        heif = cast(Any, pillow_heif).HeifFile()
        wide = np.asarray(image.convert("RGB"), dtype=np.uint16) * 257  # 0..255 onto 0..65535; the top bits are kept
        heif.add_frombytes("RGB;16", image.size, np.ascontiguousarray(wide).tobytes())
    if nclx is not None:
        primaries, transfer, matrix, full = nclx
        heif[0].info["nclx_profile"] = {
            "color_primaries": primaries,
            "transfer_characteristics": transfer,
            "matrix_coefficients": matrix,
            "full_range_flag": int(full),
        }
    buf = io.BytesIO()
    heif.save(buf, quality=quality, **save)
    return buf.getvalue()


def encode_avif(image: Any, quality: int = 95, subsampling: str = "4:4:4") -> bytes:
    """Encode a Pillow image (RGB or RGBA) as an AVIF with Pillow's plugin (libavif), nothing else added.

    4:4:4 by default: libavif and libheif upsample 4:2:0 chroma differently (about 37 dB apart on the gradient's
    red corner), which would hide what the comparisons of pictures look for.
    """
    buf = io.BytesIO()
    image.save(buf, "AVIF", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def encode_avif_10bit(image: Any) -> bytes:
    """A 10-bit 4:2:0 AVIF of a Pillow RGB image, coded by SVT-AV1 through PyAV (libavif as Pillow ships it
    writes 8 bits only, and Debian 12's libheif 1.15 with libaom 3.6 aborts on 10-bit AV1)."""
    from fractions import Fraction

    import av
    import numpy as np

    from ..container import isobmff

    frame = av.VideoFrame.from_ndarray(np.asarray(image.convert("RGB")), format="rgb24").reformat(format="yuv420p10le")
    encoder: Any = av.CodecContext.create("libsvtav1", "w")
    (encoder.width, encoder.height), encoder.pix_fmt = image.size, "yuv420p10le"
    encoder.time_base, encoder.options = Fraction(1, 25), {"crf": "8", "preset": "8"}
    stream = b"".join(bytes(p) for f in (frame, None) for p in encoder.encode(f))
    units, pos = [], 0
    while pos < len(stream):  # OBUs with size fields, as encoders write them
        kind, start, size, shift = (stream[pos] >> 3) & 15, pos + 1 + ((stream[pos] >> 2) & 1), 0, 0
        while True:
            size |= (stream[start] & 0x7F) << shift
            start, shift = start + 1, shift + 7
            if not stream[start - 1] & 0x80:
                break
        units.append((kind, stream[pos : start + size]))
        pos = start + size
    sequence = next(unit for kind, unit in units if kind == 1)
    # av1C: version 1, profile 0, level 0; 10 bits (high_bitdepth), 4:2:0; then the sequence header.
    av1c = _box(b"av1C", bytes([0x81, 0x00, 0x4C, 0x00]) + sequence)
    ispe = isobmff._full_box(b"ispe", 0, 0, struct.pack(">II", *image.size))
    pixi = isobmff._full_box(b"pixi", 0, 0, bytes([3, 10, 10, 10]))
    coded = b"".join(unit for kind, unit in units if kind != 2)  # no temporal delimiters in an item
    item = isobmff.NewItem(1, b"av01", coded, [(av1c, True), (ispe, False), (pixi, False)], hidden=False)
    return isobmff.write([item], 1)


def _libavif() -> Any:
    """The libavif Pillow's AVIF plugin runs (its wheel bundles it), through ctypes: Pillow does not expose
    libavif's layered encoding. Only fields of libavif's stable 1.0 structs are used."""
    import ctypes

    from PIL import AvifImagePlugin  # noqa: F401  (loads the library)

    from ..backends._native import mapped_libraries

    path = next((p for p in mapped_libraries() if "/libavif" in p), None)
    if path is None:
        raise ImportError("Pillow's libavif is not loaded in this process (Pillow without AVIF, or not Linux)")
    lib = ctypes.CDLL(path)
    lib.avifImageCreate.restype = lib.avifEncoderCreate.restype = ctypes.c_void_p
    lib.avifImageCreate.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_int]
    lib.avifImageAllocatePlanes.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.avifEncoderAddImage.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32]
    lib.avifEncoderFinish.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.avifEncoderDestroy.argtypes = lib.avifImageDestroy.argtypes = lib.avifRWDataFree.argtypes = [ctypes.c_void_p]
    return lib


def _encode_layered_av1(picture: Any) -> bytes:
    """A two-layer AVIF of ``picture`` (even width and height) by libavif: spatial layer 0 at half the size, layer 1
    at full size; operating point 0 decodes both, operating point 1 the first only."""
    import ctypes

    lib = _libavif()
    width, height = picture.size
    image = lib.avifImageCreate(width, height, 8, 1)  # AVIF_PIXEL_FORMAT_YUV444, full range by default
    encoder = lib.avifEncoderCreate()
    if not image or not encoder or lib.avifImageAllocatePlanes(image, 1):
        raise MemoryError("libavif could not allocate an image or an encoder")

    def field(struct_at: int, offset: int) -> Any:
        return ctypes.c_int32.from_address(struct_at + offset)

    class RWData(ctypes.Structure):
        _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_size_t)]

    out = RWData()
    try:
        for plane, band in enumerate(picture.convert("YCbCr").split()):  # JPEG's YCbCr: BT.601, full range
            start = ctypes.c_void_p.from_address(image + 24 + 8 * plane).value or 0  # avifImage.yuvPlanes
            stride = ctypes.c_uint32.from_address(image + 48 + 4 * plane).value  # avifImage.yuvRowBytes
            raw = band.tobytes()
            for y in range(height):
                ctypes.memmove(start + y * stride, raw[y * width : (y + 1) * width], width)
        field(encoder, 28).value = 1  # avifEncoder.extraLayerCount
        for scale, quality in ((2, 50), (1, 95)):
            field(encoder, 32).value = quality  # avifEncoder.quality
            for offset, value in ((68, 1), (72, scale), (76, 1), (80, scale)):  # avifEncoder.scalingMode
                field(encoder, offset).value = value
            if lib.avifEncoderAddImage(encoder, image, 1, 0):
                raise RuntimeError("libavif could not encode a layer")
        if lib.avifEncoderFinish(encoder, ctypes.byref(out)):
            raise RuntimeError("libavif could not finish the layered image")
        return ctypes.string_at(out.data, out.size)
    finally:
        lib.avifRWDataFree(ctypes.byref(out))
        lib.avifEncoderDestroy(encoder)
        lib.avifImageDestroy(image)


def make_layered_avif(picture: Any, *, select: str = "lsel") -> bytes:
    """An AVIF whose AV1 image has two spatial layers (half and full size) and whose header selects and declares
    the half-size one, as Apple's multilayer conformance files do: with ``lsel`` = 0, or (``select="a1op"``) with
    ``a1op`` = 1, the operating point holding the first layer only. ``select="both"``: two images of one stream,
    the full-size one (``lsel`` = 1) and the half-size one (``lsel`` = 0). libheif 1.15 outputs the top layer."""
    from ..container import isobmff

    data = _encode_layered_av1(picture)
    c = isobmff.parse(data)
    coded = c.items[c.primary_id]
    payload = c.item_data(coded, data)
    common = []
    for index, essential in coded.props:
        start, end = c.property_spans[index - 1]
        if bytes(data[start + 4 : start + 8]) in (b"av1C", b"pixi", b"colr"):
            common.append((bytes(data[start:end]), essential))

    def image(item_id: int, size: tuple[int, int], selection: list[bytes]) -> isobmff.NewItem:
        ispe = isobmff._full_box(b"ispe", 0, 0, struct.pack(">II", *size))
        props = [*common, (ispe, False), *((box, True) for box in selection)]
        return isobmff.NewItem(item_id, b"av01", payload, props, hidden=False)

    half = (picture.width // 2, picture.height // 2)
    lsel = [_box(b"lsel", struct.pack(">H", 0))]
    if select == "a1op":
        return isobmff.write([image(1, half, [_box(b"a1op", b"\x01")])], 1)
    if select == "both":
        full = image(1, picture.size, [_box(b"lsel", struct.pack(">H", 1))])
        return isobmff.write([full, image(2, half, lsel)], 1)
    return isobmff.write([image(1, half, lsel)], 1)


def make_avif_grid(
    picture: Any,
    tile: int = 64,
    *,
    grid_first: bool = True,
    tiles_hidden: bool = True,
    other_image: bool = False,
    quality: int = 95,
    subsampling: str = "4:2:0",
) -> bytes:
    """An AVIF of ``picture`` (a Pillow RGB image) coded as a grid of ``tile``-sized AV1 tiles, each coded on its
    own by libavif, in the layouts real files have and libavif's parser refuses as written: the grid after its
    tiles (``grid_first=False``), tiles that are not hidden, and ``other_image``, a second top-level image."""
    from PIL import Image

    from ..container import isobmff

    def coded(image: Any, item_id: int) -> isobmff.NewItem:
        data = encode_avif(image, quality, subsampling)
        c = isobmff.parse(data)
        item = c.copy_items(data, c.primary_id)[0]
        return isobmff.NewItem(item_id, item.type, item.data, item.properties, hidden=tiles_hidden)

    width, height = picture.size
    cols, rows = -(-width // tile), -(-height // tile)
    tiles: list[isobmff.NewItem] = []
    for r in range(rows):
        for c in range(cols):
            canvas = Image.new("RGB", (tile, tile))
            canvas.paste(picture.crop((c * tile, r * tile, min(width, (c + 1) * tile), min(height, (r + 1) * tile))))
            tiles.append(coded(canvas, len(tiles) + 1))
    descriptor = bytes([0, 0, rows - 1, cols - 1]) + struct.pack(">HH", width, height)
    ispe = isobmff._full_box(b"ispe", 0, 0, struct.pack(">II", width, height))
    grid = isobmff.NewItem(len(tiles) + 1, b"grid", descriptor, [(ispe, False)], [t.id for t in tiles], hidden=False)
    items = [grid, *tiles] if grid_first else [*tiles, grid]
    if other_image:
        extra = coded(gradient((48, 32)), len(tiles) + 2)
        extra.hidden = False
        items.append(extra)
    return isobmff.write(items, grid.id)


def make_large_grid(width: int, height: int, tile: int = 512) -> bytes:
    """A HEIC that really is ``width``x``height`` (a grid of ``tile``-sized HEVC tiles, as phones write
    large photos), small on disk because every tile repeats one coded picture."""
    from ..container import isobmff

    coded = encode_heic(gradient((tile, tile)), quality=30)
    c = isobmff.parse(coded)
    template = c.copy_items(coded, c.primary_id)[0]
    cols, rows = -(-width // tile), -(-height // tile)
    tiles = [isobmff.NewItem(n + 1, template.type, template.data, template.properties) for n in range(rows * cols)]
    return _grid_file(tiles, cols, rows, (width, height))


def _grid_file(tiles: list[Any], cols: int, rows: int, size: tuple[int, int]) -> bytes:
    """A HEIF whose primary image is a ``cols`` x ``rows`` grid of ``tiles`` (row by row), cropped to ``size``."""
    from ..container import isobmff

    width, height = size
    wide = width > 0xFFFF or height > 0xFFFF
    field = ">I" if wide else ">H"
    descriptor = bytes([0, int(wide), rows - 1, cols - 1]) + struct.pack(field, width) + struct.pack(field, height)
    ispe = isobmff._full_box(b"ispe", 0, 0, struct.pack(">II", width, height))
    grid = isobmff.NewItem(len(tiles) + 1, b"grid", descriptor, [(ispe, False)], parts=[t.id for t in tiles])
    grid.hidden = False
    return isobmff.write([grid, *tiles], grid.id)


def make_grid(
    picture: Any,
    tile: int = 512,
    quality: int = 90,
    *,
    bit_depth: int = 8,
    nclx: tuple[int, int, int, bool] | None = None,
) -> bytes:
    """A HEIC of ``picture`` (a Pillow RGB image) coded as a grid of ``tile``-sized HEVC tiles, each cut from the
    picture and coded on its own, as phones write photos; the last row and column are padded and cropped.

    ``bit_depth`` and ``nclx`` are :func:`encode_heic`'s, for each tile."""
    from PIL import Image

    from ..container import isobmff

    width, height = picture.size
    cols, rows = -(-width // tile), -(-height // tile)
    tiles: list[isobmff.NewItem] = []
    for r in range(rows):
        for c in range(cols):
            canvas = Image.new("RGB", (tile, tile))
            canvas.paste(picture.crop((c * tile, r * tile, min(width, (c + 1) * tile), min(height, (r + 1) * tile))))
            coded = encode_heic(canvas, quality, bit_depth=bit_depth, nclx=nclx)
            parsed = isobmff.parse(coded)
            item = parsed.copy_items(coded, parsed.primary_id)[0]
            tiles.append(isobmff.NewItem(len(tiles) + 1, item.type, item.data, item.properties))
    return _grid_file(tiles, cols, rows, (width, height))


def make_overlay(background: Any, foreground: Any, offset: tuple[int, int], quality: int = 90) -> bytes:
    """A HEIC whose primary image is an overlay (``iovl``, as Nokia phones write photos with alpha): ``foreground``
    (a Pillow RGB image) at ``offset`` over ``background``, each coded as an HEVC image of its own."""
    from ..container import isobmff

    layers = []
    for n, picture in enumerate((background, foreground)):
        coded = encode_heic(picture, quality)
        parsed = isobmff.parse(coded)
        item = parsed.copy_items(coded, parsed.primary_id)[0]
        layers.append(isobmff.NewItem(n + 1, item.type, item.data, item.properties))
    width, height = background.size
    # version 0, flags 0 (16-bit fields), the canvas fill (RGBA, 16 bits each), the size, each layer's offset
    payload = bytes(2) + struct.pack(">HHHHHH", 0, 0, 0, 0xFFFF, width, height)
    payload += struct.pack(">hh", 0, 0) + struct.pack(">hh", *offset)
    ispe = isobmff._full_box(b"ispe", 0, 0, struct.pack(">II", width, height))
    overlay = isobmff.NewItem(3, b"iovl", payload, [(ispe, False)], parts=[1, 2])
    overlay.hidden = False
    return isobmff.write([overlay, *layers], overlay.id)


def make_mini_heic(
    size: tuple[int, int] = (128, 64),
    mode: str = "RGB",
    *,
    orientation: int = 1,
    exif: bytes | None = None,
    icc: bytes | None = None,
) -> bytes:
    """A low-overhead HEIF (brand ``mif3``, one ``mini`` box), written bit by bit as libheif 1.19+ writes them.

    ``size`` should be a multiple of 64 each way: the ``mini`` box has no crop, and the HEVC
    encoder pads other sizes. ``mode`` is L, RGB or RGBA; ``orientation`` an EXIF orientation.
    """
    from ..container import isobmff

    def coded(image: Any) -> tuple[bytes, bytes]:
        data = encode_heic(image)
        c = isobmff.parse(data)
        item = c.copy_items(data, c.primary_id)[0]
        config = next(raw for raw, _ in item.properties if raw[4:8] == b"hvcC")
        return config[8:], item.data

    picture = gradient(size, mode)
    config, image = coded(picture.convert("L" if mode == "L" else "RGB"))
    alpha_config, alpha = coded(picture.getchannel("A")) if mode == "RGBA" else (b"", b"")
    exif_payload = b"\0\0\0\0" + exif if exif else b""
    fields: list[tuple[int, int]] = []  # (value, bits)
    fields += [(0, 2), (0, 1), (0, 1), (1, 1), (int(bool(alpha)), 1), (0, 1), (0, 1)]  # version, flags
    fields += [(int(bool(icc)), 1), (int(bool(exif)), 1), (0, 1)]  # icc, exif, xmp
    fields += [(0 if mode == "L" else 1, 2), (orientation - 1, 3), (1, 1)]  # chroma, orientation, large dims
    fields += [(size[0] - 1, 15), (size[1] - 1, 15)]
    if mode != "L":
        fields += [(0, 1), (0, 1)]  # chroma siting
    fields += [(0, 1)]  # 8 bits
    if alpha:
        fields += [(0, 1)]  # not premultiplied
    if icc or exif:
        fields += [(1, 1)]  # large metadata sizes
    fields += [(1, 1), (1, 1)]  # large codec configuration and item data sizes
    if icc:
        fields += [(len(icc) - 1, 20)]
    fields += [(len(config), 12), (len(image) - 1, 28)]
    if alpha:
        fields += [(len(alpha), 28), (len(alpha_config), 12)]
    if exif:
        fields += [(0, 1), (len(exif_payload) - 1, 20)]  # not compressed
    bits = "".join(format(value, f"0{n}b") for value, n in fields)
    bits += "0" * (-len(bits) % 8)
    header = int(bits, 2).to_bytes(len(bits) // 8, "big")
    body = header + config + alpha_config + (icc or b"") + alpha + image + exif_payload
    return _box(b"ftyp", b"mif3heic") + _box(b"mini", body)


def make_iphone_heic(size: tuple[int, int] = (64, 48), *, exif: bytes | None = None) -> bytes:
    """A HEIC laid out as iPhones write them since iOS 18: the photo, an HDR gain map that is an
    auxiliary image of both the photo and an ISO 21496-1 ``tmap`` item, and EXIF that describes both.

    libheif before 1.18 refuses such a file ("Too many auxiliary image references", "Metadata not
    correctly assigned to image"), as it refuses real iPhone photos.
    """
    from ..container import isobmff

    def coded(data: bytes) -> list[isobmff.NewItem]:
        c = isobmff.parse(data)
        return c.copy_items(data, c.primary_id)

    photo = coded(make_heic(size))[0]
    photo.id, photo.hidden = 1, False
    gain = coded(make_heic((max(1, size[0] // 2), max(1, size[1] // 2)), "L"))[0]
    auxc = _box(b"auxC", b"\0\0\0\0" + b"urn:com:apple:photo:2020:aux:hdrgainmap\0")
    gain.id, gain.aux_of, gain.properties = 2, [1, 3], [*gain.properties, (auxc, False)]
    ispe = next(raw for raw, _ in photo.properties if raw[4:8] == b"ispe")
    # A tmap's data starts with its version; what follows (the gain map metadata) decoders only read for HDR.
    tmap = isobmff.NewItem(3, b"tmap", b"\0" * 62, [(ispe, False)], parts=[1, 2], hidden=False)
    meta = isobmff.NewItem(4, b"Exif", b"\0\0\0\x06" + (exif or exif_block()), [], describes=[1, 3])
    return isobmff.write([photo, gain, tmap, meta], 1, brands=(b"heic", b"mif1", b"heic", b"tmap"))


def apple_exif(maker33: float | None = 0.8786, maker48: float | None = None) -> bytes:
    """Bare TIFF EXIF whose MakerNote is Apple's, with HDR tags 33 and 48 (signed rationals) where given."""
    tags = [(t, v) for t, v in ((33, maker33), (48, maker48)) if v is not None]
    entries = b"".join(
        struct.pack(">HHII", tag, 10, 1, 16 + 12 * len(tags) + 4 + 8 * n) for n, (tag, _) in enumerate(tags)
    )
    values = b"".join(struct.pack(">ii", round(v * 1_000_000), 1_000_000) for _, v in tags)
    note = b"Apple iOS\0\0\x01MM" + struct.pack(">H", len(tags)) + entries + b"\0\0\0\0" + values
    # IFD0 (Make, ExifIFD pointer) at 8; the Exif IFD (MakerNote) after it; the note after that.
    ifd0 = 8
    exif_ifd = ifd0 + 2 + 2 * 12 + 4
    note_at = exif_ifd + 2 + 12 + 4 + 8  # after the Exif IFD and the Make string
    make_at = exif_ifd + 2 + 12 + 4
    tiff = b"MM\0*" + struct.pack(">I", ifd0)
    tiff += (
        struct.pack(">H", 2)
        + struct.pack(">HHII", 0x010F, 2, 6, make_at)
        + struct.pack(">HHII", 0x8769, 4, 1, exif_ifd)
    )
    tiff += b"\0\0\0\0"
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", 0x927C, 7, len(note), note_at) + b"\0\0\0\0"
    tiff += b"Apple\0\0\0" + note
    return tiff


def make_hdr_heic(
    size: tuple[int, int] = (64, 48),
    *,
    exif: bytes | None = None,
    rotation: int = 0,
    gain_map: Any = None,
    tmap: bytes | None = None,
) -> bytes:
    """A HEIC with an Apple HDR gain map: the photo, a half-size map (by default bright on its left half, dark on
    its right) as an auxiliary image, and EXIF (by default :func:`apple_exif`: tags 33 and 48 give the headroom).

    ``rotation`` (degrees anticlockwise) goes on the photo only, as libheif's encoder writes it; ``tmap`` adds an
    ISO 21496-1 ``tmap`` item with that data (version byte first) whose inputs are the photo and the map.
    """
    from PIL import Image

    from ..container import isobmff

    def coded(data: bytes) -> isobmff.NewItem:
        c = isobmff.parse(data)
        return c.copy_items(data, c.primary_id)[0]

    photo = coded(set_heif_transform(make_heic(size), rotation) if rotation else make_heic(size))
    photo.id, photo.hidden = 1, False
    if gain_map is None:
        w, h = max(2, size[0] // 2), max(1, size[1] // 2)
        gain_map = Image.new("L", (w, h), 0)
        gain_map.paste(255, (0, 0, w // 2, h))
    gain = coded(encode_heic(gain_map))
    auxc = _box(b"auxC", b"\0\0\0\0" + b"urn:com:apple:photo:2020:aux:hdrgainmap\0")
    gain.id, gain.aux_of, gain.properties = 2, [1], [*gain.properties, (auxc, False)]
    items = [photo, gain]
    if tmap is not None:
        ispe = next(raw for raw, _ in photo.properties if raw[4:8] == b"ispe")
        items.append(isobmff.NewItem(3, b"tmap", tmap, [(ispe, False)], parts=[1, 2], hidden=False))
    items.append(
        isobmff.NewItem(4, b"Exif", b"\0\0\0\0" + (exif if exif is not None else apple_exif()), [], describes=[1])
    )
    return isobmff.write(items, 1)


def _find_boxes(data: bytes, path: list[bytes]) -> list[tuple[int, int, int]]:
    """(start, header size, total size) of boxes at ``path`` (e.g. [b"meta", b"iprp", b"ipco"])."""
    out = []

    def walk(start: int, end: int, depth: int) -> None:
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack_from(">I4s", data, pos)
            header = 8
            if size == 1:
                size = struct.unpack_from(">Q", data, pos + 8)[0]
                header = 16
            elif size == 0:
                size = end - pos
            if size < header:
                return
            if kind == path[depth]:
                if depth == len(path) - 1:
                    out.append((pos, header, size))
                else:
                    inner = pos + header + (4 if kind == b"meta" else 0)
                    walk(inner, pos + size, depth + 1)
            pos += size

    walk(0, len(data), 0)
    return out


def set_ispe(data: bytes, width: int, height: int) -> bytes:
    """Make every ``ispe`` box claim ``width``x``height`` (a lying header, for bomb tests)."""
    out = bytearray(data)
    for start, header, _size in _find_boxes(data, [b"meta", b"iprp", b"ipco", b"ispe"]):
        struct.pack_into(">II", out, start + header + 4, width, height)
    return bytes(out)


def set_heif_transform(
    data: bytes,
    rotation: int = 0,
    mirror: int | None = None,
    *,
    on_alpha: bool = True,
    crop: tuple[int, int, int, int] | None = None,
) -> bytes:
    """Add ``clap``/``irot``/``imir`` properties to the primary image and (``on_alpha``) its alpha plane.

    ``rotation`` is in degrees anticlockwise (0, 90, 180, 270); ``mirror`` is the
    ``imir`` mode (0: top and bottom exchanged, 1: left and right) or None. Cameras write the transforms on
    both; libheif's own encoder writes them on the primary image only. ``crop`` (width, height, and the
    offset of its centre from the picture's, each way) is written as a clean aperture (``clap``), applied first.
    """
    from heicconv.container import isobmff

    container = isobmff.parse(data)
    primary = container.primary_id
    alpha = container.alpha_of(primary)
    targets = {primary} | ({alpha.id} if alpha is not None and on_alpha else set())
    props = []
    if crop is not None:
        w, h, dx, dy = crop
        props.append(_box(b"clap", struct.pack(">IIIIiIiI", w, 1, h, 1, dx, 1, dy, 1)))
    if rotation:
        props.append(_box(b"irot", bytes([rotation // 90])))
    if mirror is not None:
        props.append(_box(b"imir", bytes([mirror])))
    if not props:
        return data
    ((ipco_start, ipco_header, ipco_size),) = _find_boxes(data, [b"meta", b"iprp", b"ipco"])
    count = _count_children(data, ipco_start + ipco_header, ipco_start + ipco_size)
    new_indices = list(range(count + 1, count + 1 + len(props)))
    ipma_start, ipma_header, ipma_size = _find_boxes(data, [b"meta", b"iprp", b"ipma"])[0]
    ipma = data[ipma_start : ipma_start + ipma_size]
    new_ipma = _ipma_add(ipma, ipma_header, targets, new_indices)
    added = b"".join(props)
    # Rebuild: ipco grows by `added`, ipma by its delta; fix sizes of iprp and meta, and iloc offsets.
    delta = len(added) + len(new_ipma) - len(ipma)
    body = (
        data[: ipco_start + ipco_size]
        + added
        + data[ipco_start + ipco_size : ipma_start]
        + new_ipma
        + data[ipma_start + ipma_size :]
    )
    out = bytearray(body)
    _grow(out, ipco_start, len(added))
    for path in ([b"meta"], [b"meta", b"iprp"]):
        start, _h, _s = _find_boxes(data, path)[0]
        _grow(out, start, delta)
    return _shift_iloc(bytes(out), ipma_start, delta)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _count_children(data: bytes, start: int, end: int) -> int:
    n, pos = 0, start
    while pos + 8 <= end:
        n += 1
        pos += struct.unpack_from(">I", data, pos)[0]
    return n


def _grow(buf: bytearray, start: int, delta: int) -> None:
    size = struct.unpack_from(">I", buf, start)[0]
    struct.pack_into(">I", buf, start, size + delta)


def _ipma_add(ipma: bytes, header: int, item_ids: set[int], indices: list[int]) -> bytes:
    version, flags = ipma[header], int.from_bytes(ipma[header + 1 : header + 4], "big")
    pos = header + 4
    count = struct.unpack_from(">I", ipma, pos)[0]
    pos += 4
    out = bytearray(ipma[:pos])
    for _ in range(count):
        id_size = 2 if version < 1 else 4
        entry_id = int.from_bytes(ipma[pos : pos + id_size], "big")
        n = ipma[pos + id_size]
        assoc_size = 2 if flags & 1 else 1
        assocs = ipma[pos + id_size + 1 : pos + id_size + 1 + n * assoc_size]
        pos += id_size + 1 + n * assoc_size
        if entry_id in item_ids:
            extra = b"".join((0x8000 | i).to_bytes(2, "big") if assoc_size == 2 else bytes([0x80 | i]) for i in indices)
            out += entry_id.to_bytes(id_size, "big") + bytes([n + len(indices)]) + assocs + extra
        else:
            out += entry_id.to_bytes(id_size, "big") + bytes([n]) + assocs
    struct.pack_into(">I", out, 0, len(out))
    return bytes(out)


def _shift_iloc(data: bytes, after: int, delta: int) -> bytes:
    """Move file-offset extents that point past ``after`` by ``delta`` bytes."""
    ((start, header, _size),) = _find_boxes(data, [b"meta", b"iloc"])
    out = bytearray(data)
    pos = start + header
    version = data[pos]
    pos += 4
    sizes = struct.unpack_from(">H", data, pos)[0]
    pos += 2
    offset_size, length_size, base_size, index_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15, sizes & 15
    count_size = 2 if version < 2 else 4
    count = int.from_bytes(data[pos : pos + count_size], "big")
    pos += count_size
    for _ in range(count):
        pos += count_size  # item id
        method = 0
        if version in (1, 2):
            method = struct.unpack_from(">H", data, pos)[0] & 15
            pos += 2
        pos += 2  # data reference index
        base = int.from_bytes(data[pos : pos + base_size], "big") if base_size else 0
        base_pos = pos
        pos += base_size
        extents = struct.unpack_from(">H", data, pos)[0]
        pos += 2
        if method == 0 and base_size and base > after:
            out[base_pos : base_pos + base_size] = (base + delta).to_bytes(base_size, "big")
        for _ in range(extents):
            if version in (1, 2) and index_size:
                pos += index_size
            off = int.from_bytes(data[pos : pos + offset_size], "big")
            if method == 0 and offset_size and base + off > after and not (base_size and base > after):
                out[pos : pos + offset_size] = (off + delta).to_bytes(offset_size, "big")
            pos += offset_size + length_size
    return bytes(out)
