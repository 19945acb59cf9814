"""What heicconv costs over calling each library directly: HEIC 12 MP -> JPEG q85.

    python benchmarks/overhead.py [--runs 9] [--input photo.heic]

Without --input it uses $HEICCONV_CORPUS/real/pug.heic (a 12 MP iPhone-style photo) when
HEICCONV_CORPUS is set, else a generated 4032x3024 HEIC. Each backend's direct job is
what a user would write without heicconv: decode the primary image, encode JPEG at
quality 85 keeping the ICC profile and EXIF. Runs alternate between the two so drift
on a noisy machine hits both alike; the table shows medians.
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

import heicconv


def _input(path: str | None) -> tuple[str, bytes]:
    if path:
        return path, Path(path).read_bytes()
    corpus = os.environ.get("HEICCONV_CORPUS")
    if corpus and (Path(corpus) / "real" / "pug.heic").is_file():
        p = Path(corpus) / "real" / "pug.heic"
        return str(p), p.read_bytes()
    from heicconv.testing.fixtures import make_heic

    return "generated 4032x3024", make_heic(size=(4032, 3024), quality=80)


def direct_pillow(data: bytes) -> bytes:
    import pillow_heif

    heif = pillow_heif.open_heif(io.BytesIO(data))
    frame = heif[heif.primary_index]
    img = frame.to_pillow()
    buf = io.BytesIO()
    params = {}
    if frame.info.get("icc_profile"):
        params["icc_profile"] = frame.info["icc_profile"]
    img.save(buf, "JPEG", quality=85, **params)
    return buf.getvalue()


def direct_vips(data: bytes) -> bytes:
    import pyvips

    out: bytes = pyvips.Image.heifload_buffer(data, access="sequential").jpegsave_buffer(Q=85)
    return out


def direct_wand(data: bytes) -> bytes:
    from wand.image import Image

    with Image(blob=data, format="heic") as img:
        img.format = "jpeg"
        img.compression_quality = 85
        out: bytes = img.make_blob()
        return out


DIRECT: dict[str, Callable[[bytes], bytes]] = {"pillow": direct_pillow, "vips": direct_vips, "wand": direct_wand}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--input")
    parser.add_argument("--backends", default="pillow,vips,wand")
    args = parser.parse_args(argv)
    name, data = _input(args.input)
    info = heicconv.probe(data)
    print(f"input: {name} ({info.width}x{info.height}, {len(data):,} bytes), JPEG q85, median of {args.runs} runs")
    print()
    print("| backend | direct (ms) | heicconv (ms) | overhead |")
    print("|---|---:|---:|---:|")
    options = heicconv.Options(quality=85)
    for backend in args.backends.split(","):
        try:
            heicconv.select(backend)  # loads pillow-heif before pyvips, as heicconv always does
        except heicconv.BackendUnavailableError as exc:
            print(f"| {backend} | unavailable: {exc} | | |")
            continue
        direct = DIRECT[backend]
        direct(data)
        heicconv.convert(data, "jpeg", options, backend=backend)  # warm-up
        t_direct, t_ours = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            direct(data)
            t_direct.append(time.perf_counter() - start)
            start = time.perf_counter()
            heicconv.convert(data, "jpeg", options, backend=backend)
            t_ours.append(time.perf_counter() - start)
        d, o = statistics.median(t_direct) * 1000, statistics.median(t_ours) * 1000
        print(f"| {backend} | {d:.1f} | {o:.1f} | {100 * (o - d) / d:+.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
