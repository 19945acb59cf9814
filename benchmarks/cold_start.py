"""Cold start of each backend: a fresh Python process importing heicconv and converting one 12 MP photo.

    python benchmarks/cold_start.py [--runs 5] [--backends pillow,vips,wand,ffmpeg] [--python PY] [--path DIR]

What a cold Lambda request pays, approximated without Lambda: the AWS Runtime Interface Emulator is
not installable here, and Lambda's INIT is, for a ZIP function, the runtime importing the handler's
module, then the first invocation. Each run starts a new interpreter and times, in it:

- ``start``: from just before the parent starts the process until its first line runs (interpreter
  and site start-up, the same for every backend);
- ``init``: ``import heicconv.aws_lambda`` (what Lambda's INIT phase runs for the handler);
- ``backend``: loading the backend (its libraries; heicconv loads them on the first conversion);
- ``first``: the first conversion itself, HEIC -> JPEG q85, without the loading;
- ``warm``: a second conversion, for comparison.

``--python`` and ``--path`` run another interpreter with another tree first on ``sys.path``: an unpacked
Lambda ZIP (``docker/build_lambda_zip.py``) with a Python 3.12, as Lambda's python3.12 runtime would.
Backends run in turn, round-robin, and medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
t0 = time.time()
p0 = time.perf_counter()
import heicconv.aws_lambda
p1 = time.perf_counter()
import heicconv
heicconv.select(sys.argv[1])
p2 = time.perf_counter()
data = open(sys.argv[2], "rb").read()
opts = heicconv.Options(quality=85)
p3 = time.perf_counter()
heicconv.convert(data, "jpeg", opts, backend=sys.argv[1])
p4 = time.perf_counter()
heicconv.convert(data, "jpeg", opts, backend=sys.argv[1])
p5 = time.perf_counter()
print(json.dumps({"t0": t0, "init": p1 - p0, "backend": p2 - p1, "first": p4 - p3, "warm": p5 - p4,
                  "modules": sorted(m for m in ("numpy", "av", "simplejpeg", "pillow_heif", "pyvips", "wand")
                                    if m in sys.modules)}))
"""


def one(python: str, path: Path, backend: str, photo: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env["PYTHONPATH"] = str(path)
    start = time.time()
    with tempfile.TemporaryDirectory() as cwd:  # `python -c` puts the working directory first on sys.path
        cmd = [python, "-s", "-c", CHILD, backend, str(photo)]
        out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    said: dict[str, float] = json.loads(out.stdout)
    said["start"] = said.pop("t0") - start
    return said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backends", default="pillow,vips,wand,ffmpeg")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--path", type=Path, default=ROOT, help="first on PYTHONPATH (default: this checkout)")
    parser.add_argument("--input", type=Path, help="default: the corpus's real/pug.heic")
    args = parser.parse_args(argv)
    photo = args.input or Path(os.environ.get("HEICCONV_CORPUS", "/work/shared/corpus"), "real", "pug.heic")
    backends = args.backends.split(",")
    runs: dict[str, list[dict[str, float]]] = {b: [] for b in backends}
    for _ in range(args.runs):
        for backend in backends:
            runs[backend].append(one(args.python, args.path, backend, photo))
    version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True)
    print(f"Python {version.stdout.decode().strip()}, {args.path}; {photo.name}; medians of {args.runs}, ms")
    print()
    steps = ("start", "init", "backend", "first")
    print("| backend | start | import heicconv.aws_lambda | load backend | first conversion | cold total | warm |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, done in runs.items():
        med = {k: statistics.median(float(r[k]) for r in done) * 1000 for k in (*steps, "warm")}
        total = statistics.median(sum(float(r[k]) for k in steps) for r in done) * 1000
        cells = " | ".join(f"{med[k]:.0f}" for k in steps)
        print(f"| {backend} | {cells} | {total:.0f} | {med['warm']:.0f} |")
    print()
    for backend, done in runs.items():
        print(f"{backend} loads: {', '.join(done[0]['modules'])}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
