"""Does numpy pay its way in the ffmpeg backend? Its route against one without numpy, HEIC -> JPEG q85.

    python benchmarks/numpy_route.py [--runs 11] [--input photo.heic]

numpy (about 53 MB of a Lambda ZIP's 200) comes with simplejpeg, which takes the decoded YCbCr 4:2:0
planes as numpy arrays and writes them to JPEG without a conversion to RGB: the ffmpeg backend's route.
Without numpy, the fastest route left that still decodes with FFmpeg converts each tile to RGB
(FFmpeg's swscale, ``VideoFrame.to_image``), pastes the tiles into a Pillow image and lets Pillow's
libjpeg-turbo convert back to YCbCr and encode. The floor is pillow-heif (libheif) + Pillow. Only the
decode and encode are timed (no metadata, no gain map), round-robin in one process, medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heicconv.backends import _hevc
from heicconv.container import isobmff


def _tiles(data: bytes) -> tuple[Any, Any, Any]:
    container = isobmff.parse(data)
    item = container.items[container.primary_id]
    return container, item, _hevc.geometry(container, item, data)


def with_numpy(data: bytes) -> bytes:
    """The ffmpeg backend's route: FFmpeg's planes straight into simplejpeg (numpy arrays)."""
    import simplejpeg

    container, item, geo = _tiles(data)
    strips = _hevc.decode_strips(item, geo, data, container, os.cpu_count() or 1)
    import numpy as np

    parts = list(strips)
    y = np.concatenate([s.y for s in parts])
    cb = np.concatenate([s.cb for s in parts])
    cr = np.concatenate([s.cr for s in parts])
    return bytes(simplejpeg.encode_jpeg_yuv_planes(y, cb, cr, 85))


def without_numpy(data: bytes) -> bytes:
    """FFmpeg decodes, swscale converts each tile to RGB, Pillow assembles and encodes: no numpy anywhere."""
    import av
    from PIL import Image

    container, _, geo = _tiles(data)
    params, length_size = _hevc.parameter_sets(geo.hvcc)
    ctx = av.CodecContext.create("hevc", "r")
    ctx.thread_type = "FRAME"
    ctx.thread_count = os.cpu_count() or 1
    canvas = Image.new("RGB", (geo.cols * geo.tile[0], geo.rows * geo.tile[1]))

    def place(frame: Any) -> None:
        index = int(frame.pts)
        canvas.paste(frame.to_image(), ((index % geo.cols) * geo.tile[0], (index // geo.cols) * geo.tile[1]))

    for n, tile in enumerate(geo.tiles):
        coded = params + _hevc.to_annex_b(container.item_data(tile, data, len(data)), length_size)
        packet = av.Packet(len(coded))
        memoryview(packet)[:] = coded
        packet.pts = n
        for frame in ctx.decode(packet):
            place(frame)
    for frame in ctx.decode(None):
        place(frame)
    out = io.BytesIO()
    canvas.crop((0, 0, *geo.size)).save(out, "JPEG", quality=85)
    return out.getvalue()


def floor(data: bytes) -> bytes:
    import pillow_heif

    heif = pillow_heif.open_heif(io.BytesIO(data))
    out = io.BytesIO()
    heif[heif.primary_index].to_pillow().save(out, "JPEG", quality=85)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--input", type=Path)
    args = parser.parse_args(argv)
    photo = args.input or Path(os.environ.get("HEICCONV_CORPUS", "/work/shared/corpus"), "real", "pug.heic")
    data = photo.read_bytes()
    jobs: dict[str, Callable[[bytes], bytes]] = {
        "floor: pillow-heif + Pillow": floor,
        "FFmpeg + Pillow (no numpy)": without_numpy,
        "FFmpeg + simplejpeg (numpy)": with_numpy,
    }
    wall: dict[str, list[float]] = {k: [] for k in jobs}
    cpu: dict[str, list[float]] = {k: [] for k in jobs}
    for job in jobs.values():
        job(data)  # warm-up: libraries loaded
    for _ in range(args.runs):
        for name, job in jobs.items():
            w, c = time.perf_counter(), time.process_time()
            job(data)
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    base = statistics.median(wall["floor: pillow-heif + Pillow"])
    print(f"{photo.name}, HEIC -> JPEG q85, {os.cpu_count()} CPUs, medians of {args.runs} round-robin runs")
    print()
    print("| route | median ms | median CPU ms | x floor (wall) |")
    print("|---|---:|---:|---:|")
    for name in jobs:
        w = statistics.median(wall[name])
        print(f"| {name} | {w * 1000:.0f} | {statistics.median(cpu[name]) * 1000:.0f} | {base / w:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
