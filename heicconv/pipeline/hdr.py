"""HDR into the output (issue 14): gain maps carried into Ultra HDR JPEG, PQ and HLG sources tone mapped.

:mod:`heicconv.container.gainmap` finds and reads a photo's gain map from the header; here it is decoded by
pillow-heif whatever the backend (so every backend carries the same map), made upright, cropped and
resized as the photo was, and assembled with the backend's JPEG by :mod:`heicconv.container.ultrahdr`.

A PQ or HLG source has no gain map: :func:`tone_map` decodes it with pillow-heif, renders it SDR by
:mod:`heicconv.pipeline.tonemap`'s method and hands the backend that picture (so every backend gives the same
one), and for JPEG output with ``hdr="keep"`` computes a gain map from the HDR and SDR renderings, which
:func:`attach` writes as it writes a source's own.

>>> from heicconv.testing.fixtures import make_heic
>>> find_in(make_heic(size=(32, 24))) is None
True
"""

from __future__ import annotations

import dataclasses
import io
import math
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from ..backends import threads
from ..backends.contract import Job, Note, Result, first_line, out_of_memory
from ..container import colour, gainmap
from ..container.gainmap import GainMap, Metadata
from ..container.info import Input, read_source
from ..errors import DecodeError, HeicconvError, LimitExceededError
from ..options import Options
from . import tonemap

__all__ = ["Early", "attach", "decode", "find_in", "start", "tone_map"]


def find_in(data: bytes) -> GainMap | None:
    """:func:`heicconv.container.gainmap.find` for the primary image of a file's bytes."""
    return gainmap.find(read_source(data, whole=False))


def decode(source: Input, gm: GainMap) -> Any:
    """The gain map as a Pillow ``L`` image, upright and cropped like the photo (pillow-heif decodes it, into
    zeroed memory as a backend decodes the photo: ``backends._native.zeroed_allocations``).

    A map that carries no rotation or mirror of its own gets the photo's, and (in proportion) its crop,
    as libheif's encoder and Samsung phones write them on the photo only; one that has its own (iPhones)
    is shown as they say.
    """
    from PIL import Image

    from ..backends._native import load_pillow_heif, zeroed_allocations
    from ..container.info import _TRANSFORM_TO_EXIF

    if gm.item is None:  # an Ultra HDR JPEG's map: stored as the photo is, so its EXIF orientation turns it too
        from ..container.info import open_pillow

        img = open_pillow(gm.jpeg, "jpeg").convert("L")
        for step in _TRANSPOSE.get(source.orientation, []):
            img = img.transpose(Image.Transpose(step))
        return img
    c, photo = source.container, source.item
    assert c is not None and photo is not None
    heif = load_pillow_heif()
    frame = heif.open_heif(io.BytesIO(c.extract(source.data, gm.item.id)), convert_hdr_to_8bit=True)[0]
    with zeroed_allocations():  # what libde265 leaves undecoded is zero (no gain), never another picture's pixels
        img = frame.to_pillow()
    img = img.convert("L")
    if not gainmap.own_transforms(gm.item):
        if photo.crop is not None and gm.item.crop is None and photo.width and photo.height:
            cw = round(img.width * photo.crop[0] / photo.width)
            ch = round(img.height * photo.crop[1] / photo.height)
            left, top = (img.width - cw) // 2, (img.height - ch) // 2
            img = img.crop((left, top, left + cw, top + ch))
        orientation = _TRANSFORM_TO_EXIF.get((photo.rotation, photo.mirror), 1)
        for step in _TRANSPOSE[orientation]:
            img = img.transpose(Image.Transpose(step))
    return img


# EXIF orientation -> Pillow transposes that make it upright (as the pillow backend does).
_TRANSPOSE: dict[int, list[int]] = {1: [], 2: [0], 3: [3], 4: [1], 5: [5], 6: [4], 7: [6], 8: [2]}


def attach(
    source: Input,
    result: Result,
    options: Options,
    computed: tuple[Any, Metadata] | None = None,
    tone_mapped: int = 0,
    early: Early | None = None,
) -> Result:
    """``result`` with the source's gain map carried where the output can hold it, and notes saying so.

    JPEG output becomes an Ultra HDR JPEG (:mod:`heicconv.container.ultrahdr`); every other format reports the
    map in ``dropped``. A map that cannot be read never fails the conversion: the photo is converted
    without it, and the notes say why. ``tone_mapped`` is the nclx transfer of a PQ or HLG source that
    :func:`tone_map` rendered SDR, and ``computed`` the gain map it made (``None`` if it made none).
    ``early`` is the map's JPEG :func:`start` began while the backend ran; it serves if the backend wrote the
    size it was made for.
    """
    gm = gainmap.find(source)
    if gm is None:
        return _attach_computed(source, result, options, computed, tone_mapped) if tone_mapped else result
    if options.hdr == "drop":
        return _noted(result, Note("hdr", f"{gm.describe()} not kept (hdr='drop'): the output is SDR only"))
    if gm.metadata is None:
        return _noted(result, Note("dropped", f"the HDR gain map ({gm.problem})"))
    if result.format != "jpeg":
        why = f"heicconv writes it into JPEG only, not {result.format.upper()}"
        return _noted(result, Note("dropped", f"the HDR gain map ({why})"))
    if not (result.width and result.height):
        return _noted(result, Note("dropped", "the HDR gain map (the backend did not say what size it wrote)"))
    try:
        data = _ultra_hdr(source, gm, result, options, early)
    except Exception as exc:  # the photo is converted; only its HDR rendition is lost
        return _noted(result, Note("dropped", f"the HDR gain map (it could not be decoded: {first_line(exc)})"))
    kept = Note("hdr", f"{gm.describe()} kept: Ultra HDR JPEG (MPF, hdrgm XMP and ISO 21496-1)")
    return dataclasses.replace(_noted(result, kept), data=data)


def _noted(result: Result, note: Note) -> Result:
    return dataclasses.replace(result, notes=(*result.notes, note))


@dataclasses.dataclass(frozen=True)
class Early:
    """A gain map's JPEG being made in a thread (:func:`start`) for an output of ``size``."""

    size: tuple[int, int]
    future: Future[bytes]

    def settle(self) -> None:
        """Wait until the thread is done: nothing a conversion started runs on after it returns."""
        wait([self.future])


def start(job: Job) -> Early | None:
    """Begin the source's gain map for ``job``'s output in a thread of its own while the backend converts the
    photo: decoding it (libheif, outside Python's lock), turning it upright, resizing it as the photo will be
    and encoding it, everything but joining it to the backend's JPEG (:func:`attach`). It costs about a sixth of
    a 12 MP photo's conversion, done in turn (``benchmarks/ffmpeg_speed.py``). None when there is nothing to
    begin: an output other than JPEG, ``hdr="drop"``, no gain map or one without metadata, a tone-mapped
    source, or a thread budget of one (``backends.threads``), where a second thread would only take a CPU
    share from another worker."""
    if job.fmt != "jpeg" or job.options.hdr != "keep" or job.original is not None or threads.threads() < 2:
        return None
    gm = gainmap.find(job.source)
    if gm is None or gm.metadata is None:
        return None
    pool = ThreadPoolExecutor(1, thread_name_prefix="heicconv-gain-map")
    try:
        return Early(job.size, pool.submit(_map_jpeg, job.source, gm, job.size, job.options.quality))
    finally:
        pool.shutdown(wait=False)


def _ultra_hdr(source: Input, gm: GainMap, result: Result, options: Options, early: Early | None) -> bytes:
    from ..container import ultrahdr

    assert gm.metadata is not None
    size = (result.width, result.height)
    if early is not None and early.size == size:
        return ultrahdr.assemble(result.data, early.future.result(), gm.metadata)
    return ultrahdr.assemble(result.data, _map_jpeg(source, gm, size, options.quality), gm.metadata)


def _map_jpeg(source: Input, gm: GainMap, output: tuple[int, int], quality: int) -> bytes:
    """The JPEG of the source's gain map, upright and resized for an ``output``-sized picture."""
    img = decode(source, gm)
    if gm.apple_headroom:
        img = img.point(list(gainmap.apple_to_log(gm.apple_headroom)))
    return _encoded_map(img, (source.width, source.height), output, quality)


def _encoded_map(img: Any, photo: tuple[int, int], output: tuple[int, int], quality: int) -> bytes:
    """The JPEG of the upright map ``img`` of a ``photo``-sized picture, resized as the photo was to ``output``."""
    from PIL import Image

    size = gainmap.map_size(img.size, photo, output)
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _attach_computed(
    source: Input, result: Result, options: Options, computed: tuple[Any, Metadata] | None, transfer: int
) -> Result:
    """The gain map :func:`tone_map` computed, written into a JPEG (or the notes say why not)."""
    what = f"the HDR rendition of the {tonemap.NAMES[transfer]} source"
    if options.hdr == "drop":
        return _noted(result, Note("hdr", f"{what} not kept (hdr='drop'): the output is SDR only"))
    if result.format != "jpeg":
        return _noted(
            result, Note("dropped", f"{what} (heicconv writes a gain map into JPEG only, not {result.format.upper()})")
        )
    if computed is None:
        return _noted(
            result, Note("hdr", f"{what} needs no gain map: no pixel is brighter than the SDR picture shows it")
        )
    from ..container import ultrahdr

    img, meta = computed
    map_jpeg = _encoded_map(img, (source.width, source.height), (result.width, result.height), options.quality)
    data = ultrahdr.assemble(result.data, map_jpeg, meta)
    w, h = img.size
    kept = Note(
        "hdr",
        f"{what} kept: gain map {w}x{h} computed (headroom {meta.headroom:.2f}), "
        "Ultra HDR JPEG (MPF, hdrgm XMP and ISO 21496-1)",
    )
    return dataclasses.replace(_noted(result, kept), data=data)


#: The computed gain map is this many times smaller than the picture on each side: a map is smooth, and a
#: small one costs little in time and size (``benchmarks/hdr_cost.py``).
MAP_SCALE = 4
_OFFSET = 1 / 64  # ISO 21496-1 offsets for SDR and HDR (Adobe's default): black pixels get a finite gain


def tone_map(job: Job, readable: frozenset[str] = frozenset({"tiff"})) -> None:
    """Decode ``job``'s PQ or HLG source with pillow-heif, render it SDR, and make that the picture the backend
    reads: ``job.source`` becomes an uncompressed TIFF of it if the backend reads TIFF (``readable``: its
    input formats), else a PNG; ``job.original`` keeps the HDR source. With JPEG output and ``hdr="keep"``,
    also compute the gain map from the HDR and SDR renderings.

    Every failure is a heicconv error, whatever the backend: ``DecodeError``, or ``LimitExceededError`` when
    memory runs out.
    """
    if not job.tone_map or job.original is not None:
        return
    try:
        rendered, computed = _rendered(job, "tiff" if "tiff" in readable else "png")
    except HeicconvError:
        raise
    except Exception as exc:
        if isinstance(exc, MemoryError) or out_of_memory(exc):
            raise LimitExceededError(f"tone mapping ran out of memory: {first_line(exc)}") from exc
        raise DecodeError(f"could not decode the HDR {job.source.info.format} image: {first_line(exc, 2)}") from exc
    job.original = job.source
    job.source = read_source(rendered, limits=job.limits)
    job.computed_gain_map = computed


def _decoded(job: Job) -> tuple[list[Any], Any]:
    """The picture as ``I;16`` colour bands (one or three) and its alpha (``L``) or ``None``, upright; refused
    (``DecodeError``) where it shows the tell-tale of damaged data, as a backend's picture is (``_damage``)."""
    import numpy as np

    from ..backends import _damage
    from ..backends._native import heif_bands16

    ahead = _damage.read_ahead(job.source)  # a single image: libde265 reads it while libheif decodes it
    bands, mode = heif_bands16(job.heif_input())
    if not bands:
        raise DecodeError(f"pillow-heif decoded the HDR image as {mode}, not 16 bits per sample")
    n = len(bands)
    colour = bands[:3] if len(bands) >= 3 else []  # one band (monochrome): libde265 reads every tile again
    _damage.check(
        job.source, lambda box: np.dstack([np.asarray(b.crop(box)) for b in colour]), "rgb" if colour else None, ahead
    )
    alpha = None
    if n in (2, 4):
        alpha = bands.pop().convert("I").point([v >> 8 for v in range(65536)], "L")
    return bands, alpha


def _hlg_display(codes: list[Any], depth: int, weights: tuple[float, float, float]) -> list[Any]:
    """HLG samples (``I`` bands) as display light over :data:`heicconv.pipeline.tonemap.HLG_PEAK` (``F`` bands).

    BT.2100's OOTF scales each component by the scene luminance ``Ys ** (gamma - 1)``: not a function of one
    sample, so it is computed on the picture. Scene light comes from tables as two bytes, each made a float by a
    256-entry table; scalar products are ``point`` transforms, which make no constant image as ``ImageMath`` does.
    """
    from PIL import ImageMath

    hi_table, lo_table = tonemap.hlg_scene_tables(depth)
    hi_float = [v * 256 / 65535 for v in range(256)]
    lo_float = [v / 65535 for v in range(256)]

    def plus(a: Any, b: Any) -> Any:
        return ImageMath.lambda_eval(lambda e: e["a"] + e["b"], a=a, b=b)

    scene = [
        plus(c.point(hi_table, "L").point(hi_float, "F"), c.point(lo_table, "L").point(lo_float, "F")) for c in codes
    ]
    if len(scene) == 3:
        ys = plus(plus(_scaled(scene[0], weights[0]), _scaled(scene[1], weights[1])), _scaled(scene[2], weights[2]))
    else:
        ys = scene[0]
    boost = ImageMath.lambda_eval(lambda e: e["y"] ** (tonemap.HLG_GAMMA - 1), y=ys)
    return [ImageMath.lambda_eval(lambda e: e["s"] * e["k"], s=s, k=boost) for s in scene]


def _scaled(img: Any, factor: float) -> Any:
    return img.point(lambda x: x * factor)


def _hlg_index(img: Any) -> Any:
    """Display light over HLG_PEAK as the index of :func:`heicconv.pipeline.tonemap.hlg_table` (still ``F``)."""
    from PIL import ImageMath

    power = ImageMath.lambda_eval(lambda e: e["d"] ** (1 / tonemap.HLG_INDEX_GAMMA), d=img)
    return power.point(lambda x: x * 65535 + 0.5)


def _rendered(job: Job, intermediate: str) -> tuple[bytes, tuple[Any, Metadata] | None]:
    from PIL import Image

    source = job.source
    assert source.item is not None and source.item.nclx is not None
    primaries = source.item.nclx[0]
    weights = colour.luminance_weights(primaries)
    bands, alpha = _decoded(job)
    depth = source.bit_depth
    codes = [b.convert("I") for b in bands]
    if job.tone_map == tonemap.PQ:
        sdr = [c.point(tonemap.pq_table(depth), "L") for c in codes]
        light = None
    else:
        light = _hlg_display(codes, depth, weights)
        index = [_hlg_index(d).convert("I") for d in light]
        sdr = [i.point(tonemap.hlg_table(), "L") for i in index]
    mode = "L" if len(sdr) == 1 else "RGB"
    picture = Image.merge(mode, sdr) if mode == "RGB" else sdr[0]
    if alpha is not None:
        picture.putalpha(alpha)
    out = io.BytesIO()
    if intermediate == "tiff":
        picture.save(out, "TIFF")  # uncompressed: a tenth of the time of the fastest PNG, to write and to read
    else:
        picture.save(out, "PNG", compress_level=1)
    computed = None
    if job.fmt == "jpeg" and job.options.hdr == "keep":
        computed = _gain_map(job, codes if light is None else light, sdr, weights)
    return out.getvalue(), computed


def _gain_map(
    job: Job, hdr: list[Any], sdr: list[Any], weights: tuple[float, float, float]
) -> tuple[Any, Metadata] | None:
    """A one-channel gain map from the HDR rendering (display light over reference white) to the SDR one, in
    luminance, at :data:`MAP_SCALE` times smaller; ``None`` when no pixel is brighter than SDR white."""
    from PIL import Image, ImageMath

    w, h = sdr[0].size
    size = (max(1, round(w / MAP_SCALE)), max(1, round(h / MAP_SCALE)))
    box = Image.Resampling.BOX
    pq = job.tone_map == tonemap.PQ
    top = float(((1 << job.source.bit_depth) - 1) << (16 - job.source.bit_depth))
    scale = tonemap.HLG_PEAK / tonemap.REFERENCE_WHITE

    def hdr_linear(band: Any) -> Any:
        # PQ samples are averaged before the EOTF (on a sixteenth of the pixels; the map is smooth, and libultrahdr's
        # rebuilt HDR stays within 1 % of the source's display light, nox -s hdr).
        small = band.convert("F").resize(size, box)
        if not pq:  # HLG: display light / HLG_PEAK already
            return ImageMath.lambda_eval(lambda e: e["d"] * scale, d=small)
        m1, m2, c1, c2, c3 = tonemap.PQ_CONSTANTS
        return ImageMath.lambda_eval(
            lambda e: (e["max"](e["p"] - c1, 0.0) / (c2 - c3 * e["p"])) ** (1 / m1) * (10000 / tonemap.REFERENCE_WHITE),
            p=ImageMath.lambda_eval(lambda e: (e["v"] / top) ** (1 / m2), v=small),
        )

    def sdr_linear(band: Any) -> Any:
        v = band.convert("F").resize(size, box)
        return ImageMath.lambda_eval(
            lambda e: (
                (e["v"] <= 10.31475) * (e["v"] / (255 * 12.92))
                + (e["v"] > 10.31475) * ((e["v"] / 255 + 0.055) / 1.055) ** 2.4
            ),
            v=v,
        )

    def luminance(planes: list[Any]) -> Any:
        if len(planes) == 1:
            return planes[0]
        return ImageMath.lambda_eval(
            lambda e: e["r"] * weights[0] + e["g"] * weights[1] + e["b"] * weights[2],
            r=planes[0],
            g=planes[1],
            b=planes[2],
        )

    y_hdr = luminance([hdr_linear(b) for b in hdr])
    y_sdr = luminance([sdr_linear(b) for b in sdr])
    ratio = ImageMath.lambda_eval(lambda e: e["max"]((e["h"] + _OFFSET) / (e["s"] + _OFFSET), 1.0), h=y_hdr, s=y_sdr)
    highest = float(ratio.getextrema()[1])
    if highest < 1.02:  # under a thirtieth of a stop: no HDR worth a map
        return None
    code = ImageMath.lambda_eval(lambda e: (e["r"] - 1) * (65535 / (highest - 1)) + 0.5, r=ratio).convert("I")
    img = code.point(tonemap.log_table(highest), "L")
    stops = math.log2(highest)
    meta = Metadata(0.0, stops, 1.0, _OFFSET, _OFFSET, 0.0, stops)
    return img, meta
