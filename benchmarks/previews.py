"""Fast previews: a 320-pixel preview from the full image vs from the embedded thumbnail.

    python benchmarks/previews.py [--runs 9] [--input photo.heic]

Without --input it uses $HEICCONV_CORPUS/real/arrow.heic (3024x4032 with a 240x320 thumbnail),
else a generated HEIC with a thumbnail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import heicconv
from heicconv.testing import fixtures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--input")
    parser.add_argument("--backends", default="pillow,vips,wand")
    args = parser.parse_args(argv)
    corpus = os.environ.get("HEICCONV_CORPUS")
    arrow = Path(corpus, "real", "arrow.heic") if corpus else None
    if args.input:
        data = Path(args.input).read_bytes()
    elif arrow and arrow.is_file():
        data = arrow.read_bytes()
    else:
        data = fixtures.make_heic((3024, 4032), quality=80, thumbnail=320)
    info = heicconv.probe(data)
    box = max(info.thumbnails or (320,))
    print(f"{info.width}x{info.height} with thumbnails {list(info.thumbnails)}; JPEG preview fitting {box}x{box}")
    print()
    print("| backend | full decode (ms) | from thumbnail (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    for backend in args.backends.split(","):
        results = []
        for use in (False, True):
            opts = heicconv.Options(max_size=box, use_thumbnail=use)
            heicconv.convert(data, "jpeg", opts, backend=backend)
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                heicconv.convert(data, "jpeg", opts, backend=backend)
                times.append(time.perf_counter() - start)
            results.append(statistics.median(times) * 1000)
        print(f"| {backend} | {results[0]:.1f} | {results[1]:.1f} | {results[0] / results[1]:.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
