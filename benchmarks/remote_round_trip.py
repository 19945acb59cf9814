"""The round trip as an application sees it: in process, through a heicconv service, through a Lambda Invoke.

    python benchmarks/remote_round_trip.py [PHOTO] [--runs N]

Starts ``heicconv serve`` (pillow, process pool) and the loopback Invoke endpoint of the tests
(tests/lambda_endpoint.py, the real handler) on 127.0.0.1, then converts PHOTO to a 1024-pixel JPEG
N times with ``pillow``, ``http`` and ``lambda``, one at a time, and prints the median and the
fastest wall time of each. Loopback has no network: the difference is the wire (HTTP, base64 and
JSON for Lambda) and the service's worker hand-off, not a data centre's latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("photo", nargs="?", default=str(ROOT / "examples" / "sample.heic"))
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    from test_server import start_server, stop_server

    import heicconv

    data = Path(args.photo).read_bytes()
    service = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env["HEICCONV_BACKEND"] = "pillow"
    endpoint = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "lambda_endpoint.py")], env=env, stdout=subprocess.PIPE, text=True
    )
    assert endpoint.stdout is not None
    port = endpoint.stdout.readline().split()[1]
    os.environ.update(
        HEICCONV_HTTP_URL=f"http://127.0.0.1:{service.port}",
        HEICCONV_LAMBDA_FUNCTION="heicconv",
        AWS_ENDPOINT_URL_LAMBDA=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    options = heicconv.Options(max_size=1024, quality=85)
    try:
        print(f"{Path(args.photo).name}: {len(data)} bytes, {heicconv.probe(data).width}x{heicconv.probe(data).height}")
        print(f"{'backend':8} {'median ms':>10} {'fastest ms':>11}")
        for backend in ("pillow", "http", "lambda"):
            heicconv.convert(data, "jpeg", options, backend=backend)  # warm: imports, /health, worker start
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                heicconv.convert(data, "jpeg", options, backend=backend)
                times.append((time.perf_counter() - start) * 1000)
            print(f"{backend:8} {statistics.median(times):10.1f} {min(times):11.1f}")
    finally:
        stop_server(service)
        endpoint.terminate()
        endpoint.wait(timeout=15)


if __name__ == "__main__":
    main()
