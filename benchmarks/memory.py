"""Memory per backend, each in a fresh process.

    python benchmarks/memory.py [--loops 500]

1. Peak RSS of one 12 MP HEIC -> JPEG q85 conversion ($HEICCONV_CORPUS/real/pug.heic, else a
   generated 4032x3024), measured in a fresh process (the process's own baseline shown beside it).
2. RSS during ``--loops`` conversions of a 2 MP HEIC: after the warm-up (first 10) and every 50
   after that. A leak shows as a curve that keeps climbing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = r"""
import json, os, sys
import heicconv
from heicconv.bench.worker import maxrss_mb
from heicconv.testing.fixtures import make_heic

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)

backend, mode, loops, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
heicconv.select(backend)
if mode == "peak":
    data = open(path, "rb").read() if path else make_heic(size=(4032, 3024), quality=80)
    base = int(maxrss_mb())  # VmHWM: ru_maxrss would include the parent's peak, inherited through exec
    heicconv.convert(data, "jpeg", heicconv.Options(quality=85), backend=backend)
    print(json.dumps({"baseline_mb": base, "peak_mb": int(maxrss_mb())}))
else:
    data = make_heic(size=(1600, 1200), quality=80)
    curve = []
    for i in range(loops):
        heicconv.convert(data, "jpeg", heicconv.Options(quality=85), backend=backend)
        if i == 9 or (i + 1) % 50 == 0:
            curve.append((i + 1, rss()))
    print(json.dumps({"curve": curve}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", type=int, default=500)
    parser.add_argument("--backends", default="pillow,vips,wand")
    args = parser.parse_args(argv)
    corpus = os.environ.get("HEICCONV_CORPUS", "")
    pug = os.path.join(corpus, "real", "pug.heic") if corpus else ""
    print(
        "| backend | process baseline (MB) | peak RSS, one 12 MP conversion (MB) | RSS after 10 loops (MB) "
        f"| RSS after {args.loops} loops (MB) |"
    )
    print("|---|---:|---:|---:|---:|")
    for backend in args.backends.split(","):
        run = [sys.executable, "-c", WORKER, backend]
        peak = json.loads(subprocess.run([*run, "peak", "1", pug], capture_output=True, text=True, check=True).stdout)
        loop = json.loads(
            subprocess.run([*run, "loop", str(args.loops), ""], capture_output=True, text=True, check=True).stdout
        )
        curve = loop["curve"]
        print(f"| {backend} | {peak['baseline_mb']} | {peak['peak_mb']} | {curve[0][1]} | {curve[-1][1]} |")
        print(f"<!-- {backend} curve (conversions, MB): {curve} -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
