"""``heicconv bench`` on the three shapes, the remotes on loopback: in process, a heicconv service, a Lambda Invoke.

    python benchmarks/remote_round_trip.py [--staging] [BENCH ARGUMENTS...]
    python benchmarks/remote_round_trip.py examples/sample.heic --runs 15 --out /tmp/round-trip
    python benchmarks/remote_round_trip.py --staging PHOTO --formats png    # outputs over 6 MB, through S3

Starts ``heicconv serve`` (pillow, one process worker) and the loopback Invoke endpoint of the tests
(tests/lambda_endpoint.py, the real handler, pillow) on 127.0.0.1, points ``HEICCONV_HTTP_URL`` and
``HEICCONV_LAMBDA_FUNCTION`` / ``AWS_ENDPOINT_URL_LAMBDA`` at them, and runs ``heicconv bench`` with
``--backends pillow,http,lambda`` and the arguments given (default: examples/sample.heic); the options
are this environment's (``HEICCONV_MAX_SIZE=1024 HEICCONV_QUALITY=85 python ...``). The measuring
is bench's own; this script only stands the remotes up. With ``--staging`` it also starts moto's S3 on
loopback and sets ``HEICCONV_LAMBDA_STAGING_BUCKET``, so images too large for an Invoke go through it.
Loopback has no network: the difference is the wire (HTTP; base64 and JSON for Lambda) and the
service's worker hand-off, not a data centre's latency.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    import lambda_endpoint
    from test_server import start_server, stop_server

    args = sys.argv[1:]
    staging = "--staging" in args
    args = [a for a in args if a != "--staging"] or [str(ROOT / "examples" / "sample.heic")]
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
        s3 = _staging_bucket(env) if staging else None
        command = [sys.executable, "-m", "heicconv", "bench", "--backends", "pillow,http,lambda", *args]
        try:
            return subprocess.run(command, env=env, check=False).returncode
        finally:
            if s3 is not None:
                s3.stop()
    finally:
        stop_server(service)
        lambda_endpoint.stop(proc)


def _staging_bucket(env: dict[str, str]) -> Any:
    """moto's S3 on loopback with a bucket ``staging``, set in ``env`` as the lambda backend's staging bucket."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request on the bench's output

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env.update(AWS_ENDPOINT_URL_S3=f"http://{host}:{port}", HEICCONV_LAMBDA_STAGING_BUCKET="staging")
    boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket="staging")
    return server


if __name__ == "__main__":
    raise SystemExit(main())
