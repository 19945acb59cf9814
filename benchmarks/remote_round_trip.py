"""``heicconv bench`` on the three shapes, the remotes on loopback: in process, a heicconv service, a Lambda Invoke.

    python benchmarks/remote_round_trip.py [BENCH ARGUMENTS...]
    python benchmarks/remote_round_trip.py examples/sample.heic --runs 15 --out /tmp/round-trip

Starts ``heicconv serve`` (pillow, one process worker) and the loopback Invoke endpoint of the tests
(tests/lambda_endpoint.py, the real handler, pillow) on 127.0.0.1, points ``HEICCONV_HTTP_URL`` and
``HEICCONV_LAMBDA_FUNCTION`` / ``AWS_ENDPOINT_URL_LAMBDA`` at them, and runs ``heicconv bench`` with
``--backends pillow,http,lambda`` and the arguments given (default: examples/sample.heic); the options
are this environment's (``HEICCONV_MAX_SIZE=1024 HEICCONV_QUALITY=85 python ...``). The measuring
is bench's own; this script only stands the remotes up. Loopback has no network: the difference is the
wire (HTTP; base64 and JSON for Lambda) and the service's worker hand-off, not a data centre's latency.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    import lambda_endpoint
    from test_server import start_server, stop_server

    args = sys.argv[1:] or [str(ROOT / "examples" / "sample.heic")]
    service = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1")
    proc, invoke_url = lambda_endpoint.start({"HEICCONV_BACKEND": "pillow"})
    try:
        env = dict(os.environ)  # the caller's options (HEICCONV_MAX_SIZE, ...) travel with each job
        env.update(
            HEICCONV_HTTP_URL=f"http://127.0.0.1:{service.port}",
            HEICCONV_LAMBDA_FUNCTION="heicconv",
            AWS_ENDPOINT_URL_LAMBDA=invoke_url,
            AWS_ACCESS_KEY_ID=env.get("AWS_ACCESS_KEY_ID", "testing"),
            AWS_SECRET_ACCESS_KEY=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
            AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        command = [sys.executable, "-m", "heicconv", "bench", "--backends", "pillow,http,lambda", *args]
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        stop_server(service)
        lambda_endpoint.stop(proc)


if __name__ == "__main__":
    raise SystemExit(main())
