"""Memory one request can take under the endpoint defaults (``heicconv.api.web.ENDPOINT_DEFAULTS``).

    python benchmarks/endpoint_memory.py [--backends pillow,vips,wand]

Each line is one conversion in a fresh process, with the endpoints' options and limits (as
``heicconv serve`` and the Lambda handler use them), peak RSS from ``/proc/self/status`` (VmHWM):

1. the largest picture the 50 MP default admits: an 8160x6120 HEIC (49.9 MP), to JPEG and to PNG;
2. the bomb of issue 11, a 16000x16000 RGB PNG of a few hundred KB, under the endpoint defaults
   (refused) and under the library's own (300 MP: converted), for comparison.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = r"""
import json, sys, time
import heicconv
from heicconv.api.web import endpoint_settings

def hwm():  # peak RSS of this process image (ru_maxrss would include the parent's, inherited at fork)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) // 1024 for line in fh if line.startswith("VmHWM:"))

backend, path, fmt, endpoint = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
data = open(path, "rb").read()
heicconv.convert(open(sys.argv[5], "rb").read(), "jpeg", backend=backend)  # import and warm the backend
base = hwm()
options, limits = endpoint_settings() if endpoint else (heicconv.Options(), heicconv.Limits())
start = time.perf_counter()
try:
    heicconv.convert(data, fmt, options, backend=backend, limits=limits)
    outcome = "converted"
except heicconv.HeicconvError as exc:
    outcome = f"{type(exc).__name__}: {str(exc)[:70]}"
print(json.dumps({"baseline_mb": base, "peak_mb": hwm(),
                  "seconds": round(time.perf_counter() - start, 2), "outcome": outcome}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="pillow,vips,wand")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_server_errors import big_png

    from heicconv.testing.fixtures import make_heic

    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "8160x6120 HEIC (49.9 MP)": Path(tmp, "50mp.heic"),
            "16000x16000 PNG (256 MP)": Path(tmp, "bomb.png"),
            "small": Path(tmp, "small.heic"),
        }
        files["8160x6120 HEIC (49.9 MP)"].write_bytes(make_heic(size=(8160, 6120), quality=60))
        files["16000x16000 PNG (256 MP)"].write_bytes(big_png(16000, 16000, rgb=True))
        files["small"].write_bytes(make_heic(size=(64, 48)))
        runs = [("8160x6120 HEIC (49.9 MP)", "jpeg", True), ("8160x6120 HEIC (49.9 MP)", "png", True)]
        runs += [("16000x16000 PNG (256 MP)", "jpeg", True), ("16000x16000 PNG (256 MP)", "jpeg", False)]
        print("| input | output | defaults | backend | peak RSS (MB) | process before (MB) | seconds | outcome |")
        print("|---|---|---|---|---:|---:|---:|---|")
        for backend in args.backends.split(","):
            for name, fmt, endpoint in runs:
                cmd = [sys.executable, "-c", WORKER, backend, str(files[name]), fmt, "1" if endpoint else "0"]
                out = subprocess.run([*cmd, str(files["small"])], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout)
                which = "endpoint" if endpoint else "library"
                print(
                    f"| {name} | {fmt} | {which} | {backend} | {r['peak_mb']} | {r['baseline_mb']} | {r['seconds']} "
                    f"| {r['outcome']} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
