"""What running a conversion in an isolated worker costs: in-process vs IsolatedConverter, per call.

python benchmarks/isolation.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import heicconv
from heicconv.api.workers import IsolatedConverter
from heicconv.testing import fixtures


def _median_ms(convert: Callable[..., bytes], data: bytes, backend: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        convert(data, "jpeg", backend=backend)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--backends", default="pillow,vips,wand")
    args = parser.parse_args(argv)
    corpus = os.environ.get("HEICCONV_CORPUS")
    pug = Path(corpus, "real", "pug.heic") if corpus else None
    inputs = {
        "64x48 HEIC": fixtures.make_heic((64, 48)),
        "12 MP HEIC": pug.read_bytes() if pug and pug.is_file() else fixtures.make_heic((4032, 3024), quality=80),
    }
    print("| backend | input | in-process (ms) | isolated worker (ms) | cost per call (ms) |")
    print("|---|---|---:|---:|---:|")
    for backend in args.backends.split(","):
        with IsolatedConverter(workers=1, timeout=120) as pool:
            for label, data in inputs.items():
                heicconv.convert(data, "jpeg", backend=backend)
                pool.convert(data, "jpeg", backend=backend)  # the worker loads its backend once
                local = _median_ms(heicconv.convert, data, backend, args.runs)
                remote = _median_ms(pool.convert, data, backend, args.runs)
                print(f"| {backend} | {label} | {local:.1f} | {remote:.1f} | {remote - local:+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
