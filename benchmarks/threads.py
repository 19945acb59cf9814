"""Do threads give real parallelism? Conversions of a 12 MP HEIC -> JPEG q85 on 1 and on N threads.

    python benchmarks/threads.py [--conversions 8] [--threads 2]

Also times how fast each backend refuses a header bomb (a HEIC whose header claims 40000x40000).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import heicconv
from heicconv.testing import fixtures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversions", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--backends", default="pillow,vips,wand")
    args = parser.parse_args(argv)
    corpus = os.environ.get("HEICCONV_CORPUS")
    pug = Path(corpus, "real", "pug.heic") if corpus else None
    data = pug.read_bytes() if pug and pug.is_file() else fixtures.make_heic(size=(4032, 3024), quality=80)
    bomb = fixtures.set_ispe(fixtures.make_heic((64, 64)), 40000, 40000)
    options = heicconv.Options(quality=85)
    print(f"{args.conversions} conversions of a 12 MP HEIC to JPEG; {os.cpu_count()} CPUs")
    print()
    print(f"| backend | 1 thread (s) | {args.threads} threads (s) | speed-up | bomb refused in (ms, median of 50) |")
    print("|---|---:|---:|---:|---:|")
    for backend in args.backends.split(","):
        heicconv.convert(data, "jpeg", options, backend=backend)  # warm-up
        start = time.perf_counter()
        for _ in range(args.conversions):
            heicconv.convert(data, "jpeg", options, backend=backend)
        serial = time.perf_counter() - start
        start = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            jobs = [
                pool.submit(heicconv.convert, data, "jpeg", options, backend=backend) for _ in range(args.conversions)
            ]
            for job in jobs:
                job.result()
        parallel = time.perf_counter() - start
        refusals = []
        for _ in range(50):
            t = time.perf_counter()
            try:
                heicconv.convert(bomb, "jpeg", backend=backend)
            except heicconv.LimitExceededError:
                refusals.append(time.perf_counter() - t)
        print(
            f"| {backend} | {serial:.2f} | {parallel:.2f} | {serial / parallel:.2f}x | "
            f"{statistics.median(refusals) * 1000:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
