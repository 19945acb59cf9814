"""The handler driven by the real Lambda runtime client (awslambdaric) against a loopback Runtime API.

The test plays the Lambda service: it serves ``/2018-06-01/runtime/invocation/next``
with real event JSON and collects what the runtime client posts back, while
``python -m awslambdaric heicconv.aws_lambda.handler`` runs in a subprocess.
S3 is moto's server on loopback.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import pytest

from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module

require_module("awslambdaric", "test")
boto3 = require_module("boto3", "test")
moto_server = pytest.importorskip("moto.server")
Image = pytest.importorskip("PIL.Image")

PREFIX = "/2018-06-01/runtime"


class RuntimeAPI(http.server.ThreadingHTTPServer):
    """A minimal Lambda Runtime API: hands out queued events, records responses and errors."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.answers: dict[str, tuple[str, Any]] = {}  # request id -> ("response" | "error", body)
        self.init_error: Any = None
        self.done = threading.Condition()

    def wait_for(self, ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.done:
            while not all(i in self.answers for i in ids) and self.init_error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.done.wait(left)

    def record(self, request_id: str, kind: str, body: Any) -> None:
        with self.done:
            if kind == "init":
                self.init_error = body
            else:
                self.answers[request_id] = (kind, body)
            self.done.notify_all()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RuntimeAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self.send_error(404)
            return
        try:
            request_id, event = self.server.events.get(timeout=60)
        except queue.Empty:
            self.send_error(500)
            return
        body = json.dumps(event).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
        self.send_header(
            "Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:heicconv"
        )
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=1;Sampled=0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        parts = self.path[len(PREFIX) :].strip("/").split("/")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if parts == ["init", "error"]:
            self.server.record("", "init", body)
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in {"response", "error"}:
            self.server.record(parts[1], parts[2], body)
        else:
            self.send_error(404)
            return
        self.send_response(202)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def runtime_api() -> Iterator[RuntimeAPI]:
    api = RuntimeAPI()
    thread = threading.Thread(target=api.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.shutdown()
        api.server_close()


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_handler_runs_in_the_real_runtime_client(runtime_api: RuntimeAPI, s3_endpoint: str) -> None:
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        **{"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"},
    )
    s3.create_bucket(Bucket="uploads")
    key = "IMG 0001 (2).HEIC"
    s3.put_object(Bucket="uploads", Key=key, Body=make_heic(size=(64, 48)))

    s3_record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "uploads"}, "object": {"key": quote_plus(key), "size": 1}},
    }
    http_event = {
        "version": "2.0",
        "rawPath": "/convert",
        "rawQueryString": "format=png",
        "queryStringParameters": {"format": "png"},
        "headers": {"content-type": "image/heic"},
        "requestContext": {"http": {"method": "POST", "path": "/convert"}},
        "body": base64.b64encode(make_heic(size=(30, 20))).decode(),
        "isBase64Encoded": True,
    }
    invocations: list[tuple[str, dict[str, Any]]] = [
        ("req-s3", {"Records": [s3_record]}),
        ("req-s3-gone", {"Records": [{**s3_record, "s3": {"bucket": {"name": "uploads"}, "object": {"key": "gone"}}}]}),
        ("req-http", http_event),
        ("req-bad", {"what": "ever"}),
    ]
    for item in invocations:
        runtime_api.events.put(item)

    host, port = runtime_api.server_address[0], runtime_api.server_address[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEICCONV_", "AWS_"))}
    env.update(
        creds,
        AWS_ENDPOINT_URL_S3=s3_endpoint,
        AWS_LAMBDA_RUNTIME_API=f"{host!s}:{port}",
        HEICCONV_BACKEND="pillow",
        AWS_LAMBDA_FUNCTION_NAME="heicconv",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "awslambdaric", "heicconv.aws_lambda.handler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        runtime_api.wait_for([i for i, _ in invocations], timeout=60)
    finally:
        proc.kill()
        output = proc.communicate(timeout=10)[0].decode("utf-8", "replace")
    assert runtime_api.init_error is None, (runtime_api.init_error, output)
    answers = runtime_api.answers
    assert set(answers) == {"req-s3", "req-s3-gone", "req-http", "req-bad"}, output

    kind, s3_answer = answers["req-s3"]
    assert kind == "response" and s3_answer["batchItemFailures"] == [], s3_answer
    got = s3.get_object(Bucket="uploads", Key="converted/IMG 0001 (2).jpg")
    assert got["ContentType"] == "image/jpeg"
    with Image.open(io.BytesIO(got["Body"].read())) as img:
        assert img.size == (64, 48)

    # A failed object fails the invocation, which is what makes Lambda retry an asynchronous event.
    kind, error = answers["req-s3-gone"]
    assert kind == "error" and error["errorType"] == "FailedRecords", error
    assert "s3://uploads/gone: NoSuchKey" in error["errorMessage"]

    kind, http_answer = answers["req-http"]
    assert kind == "response" and http_answer["statusCode"] == 200
    with Image.open(io.BytesIO(base64.b64decode(http_answer["body"]))) as img:
        assert (img.format, img.size) == ("PNG", (30, 20))

    kind, error = answers["req-bad"]
    assert kind == "error"
    assert error["errorType"] == "HeicconvError" and "unrecognised event" in error["errorMessage"]
