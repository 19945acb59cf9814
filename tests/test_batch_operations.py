"""S3 Batch Operations tasks through the Lambda handler, against moto's S3 server on loopback.

Event and answer shapes as the Amazon S3 User Guide documents them ("Invoke AWS Lambda function"):
schema 1.0 names the bucket by ARN, schema 2.0 by name and adds ``job.userArguments``; the answer
has one ``resultCode`` per task. Throttling is a real S3-style 503 ``SlowDown`` from a server on
loopback, and a network failure a real refused connection.
"""

from __future__ import annotations

import http.server
import io
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import pytest
from PIL import Image
from test_lambda import S3Requests, _bucket, clean_config, s3, s3_endpoint, s3_requests

from heicconv.aws_lambda import handler
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module

__all__ = ["clean_config", "s3", "s3_endpoint", "s3_requests"]  # fixtures used by name

require_module("boto3", "test")  # CI must run these: HEICCONV_REQUIRE_EXTRAS makes a missing one fail
require_module("moto.server", "test")


def batch_event(
    bucket: str, *keys: str, version: str = "1.0", arguments: dict[str, str] | None = None
) -> dict[str, Any]:
    """What Batch Operations sends: keys URL-encoded, the bucket as an ARN (1.0) or a name (2.0)."""
    job: dict[str, Any] = {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"}
    if arguments is not None:
        job["userArguments"] = arguments
    where = {"s3BucketArn": f"arn:aws:s3:::{bucket}"} if version == "1.0" else {"s3Bucket": bucket}
    return {
        "invocationSchemaVersion": version,
        "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "job": job,
        "tasks": [
            {"taskId": f"task-{i}", "s3Key": quote_plus(key, safe="/"), "s3VersionId": None, **where}
            for i, key in enumerate(keys)
        ],
    }


def codes(answer: dict[str, Any]) -> dict[str, str]:
    return {r["taskId"]: r["resultCode"] for r in answer["results"]}


def test_schema_1_each_task_gets_its_result_code(s3: Any) -> None:
    bucket = _bucket(s3, "backfill-v1")
    heic = make_heic(size=(64, 48))
    s3.put_object(Bucket=bucket, Key="2019/IMG 0001 (copy).HEIC", Body=heic)
    s3.put_object(Bucket=bucket, Key="2019/a+b.heic", Body=heic)
    s3.put_object(Bucket=bucket, Key="2019/cut.heic", Body=heic[:300])
    s3.put_object(Bucket=bucket, Key="converted/2019/old.jpg", Body=b"an output of an earlier run")
    keys = ("2019/IMG 0001 (copy).HEIC", "2019/a+b.heic", "2019/cut.heic", "2019/gone.heic", "converted/2019/old.jpg")
    event = batch_event(bucket, *keys)
    answer = handler(event, None)

    assert answer["invocationSchemaVersion"] == "1.0"
    assert answer["invocationId"] == event["invocationId"]
    assert answer["treatMissingKeysAs"] == "PermanentFailure"
    assert codes(answer) == {
        "task-0": "Succeeded",
        "task-1": "Succeeded",
        "task-2": "PermanentFailure",
        "task-3": "PermanentFailure",
        "task-4": "Succeeded",
    }
    strings = [json.loads(r["resultString"]) for r in answer["results"]]
    assert strings[0]["status"] == "converted"
    assert strings[0]["output"]["key"] == "converted/2019/IMG 0001 (copy).jpg"
    assert strings[2]["error"]["error"] == "undecodable"
    assert "NoSuchKey" in strings[3]["error"]["message"]
    assert strings[4] == {"status": "skipped", "reason": "under the output prefix 'converted/'"}
    for key in ("converted/2019/IMG 0001 (copy).jpg", "converted/2019/a+b.jpg"):
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["ContentType"] == "image/jpeg"
        with Image.open(io.BytesIO(got["Body"].read())) as img:
            assert (img.format, img.size) == ("JPEG", (64, 48))


def test_schema_2_user_arguments_set_format_options_and_prefix(s3: Any) -> None:
    bucket = _bucket(s3, "backfill-v2")
    s3.put_object(Bucket=bucket, Key="in/photo one.heic", Body=make_heic(size=(64, 48)))
    arguments = {"format": "webp", "quality": "60", "max_size": "32", "output_prefix": "web/"}
    answer = handler(batch_event(bucket, "in/photo one.heic", version="2.0", arguments=arguments), None)
    assert answer["invocationSchemaVersion"] == "2.0"
    assert codes(answer) == {"task-0": "Succeeded"}, answer
    got = s3.get_object(Bucket=bucket, Key="web/in/photo one.webp")
    assert got["ContentType"] == "image/webp"
    with Image.open(io.BytesIO(got["Body"].read())) as img:
        assert (img.format, img.size) == ("WEBP", (32, 24))


def test_schema_2_without_arguments_writes_what_a_notification_writes(s3: Any) -> None:
    bucket = _bucket(s3, "backfill-same")
    s3.put_object(Bucket=bucket, Key="p.heic", Body=make_heic(size=(96, 64)))
    assert codes(handler(batch_event(bucket, "p.heic", version="2.0", arguments={}), None)) == {"task-0": "Succeeded"}
    from_batch = s3.get_object(Bucket=bucket, Key="converted/p.jpg")["Body"].read()
    notification = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": "p.heic", "size": 1}},
            }
        ]
    }
    # The same source, format and options: the notification finds the output written, and skips it ...
    answer = handler(notification, None)
    assert answer["results"][0]["status"] == "skipped" and "already converted" in answer["results"][0]["reason"]
    # ... and, the output gone, writes the same bytes.
    s3.delete_object(Bucket=bucket, Key="converted/p.jpg")
    assert handler(notification, None)["results"][0]["status"] == "converted"
    assert s3.get_object(Bucket=bucket, Key="converted/p.jpg")["Body"].read() == from_batch


def test_a_job_run_again_skips_what_it_wrote_unless_its_arguments_changed(s3: Any, s3_requests: S3Requests) -> None:
    bucket = _bucket(s3, "backfill-again")
    s3.put_object(Bucket=bucket, Key="p.heic", Body=make_heic(size=(96, 64)))
    for arguments, status in [({}, "converted"), ({}, "skipped"), ({"quality": "50"}, "converted")]:
        answer = handler(batch_event(bucket, "p.heic", version="2.0", arguments=arguments), None)
        assert codes(answer) == {"task-0": "Succeeded"}
        assert json.loads(answer["results"][0]["resultString"])["status"] == status
    assert s3_requests.of("GetObject") == ["p.heic", "p.heic"]


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"qualty": "80"}, "unknown userArguments qualty"),
        ({"format": "bmp"}, "format:"),
        ({"quality": "loud"}, "quality"),
    ],
)
def test_bad_user_arguments_fail_every_task_permanently(s3: Any, arguments: dict[str, str], says: str) -> None:
    bucket = _bucket(s3, f"backfill-bad-{len(says)}")
    s3.put_object(Bucket=bucket, Key="a.heic", Body=make_heic())
    answer = handler(batch_event(bucket, "a.heic", "b.heic", version="2.0", arguments=arguments), None)
    assert codes(answer) == {"task-0": "PermanentFailure", "task-1": "PermanentFailure"}
    assert says in answer["results"][0]["resultString"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a.heic"]


def test_unknown_schema_version_fails_every_task() -> None:
    event = batch_event("any", "a.heic", version="9.9")
    answer = handler(event, None)
    assert codes(answer) == {"task-0": "PermanentFailure"}
    assert "invocationSchemaVersion 9.9" in answer["results"][0]["resultString"]


class _SlowDown(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint under load: every request is answered 503 SlowDown, as S3 throttles (a HEAD without a body)."""

    def do_GET(self) -> None:
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
        body += b"<Message>Please reduce your request rate.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def throttling_s3(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowDown)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore would otherwise retry with back-off first
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_throttling_is_a_temporary_failure(throttling_s3: str) -> None:
    answer = handler(batch_event("photos", "a.heic", version="2.0", arguments={}), None)
    assert codes(answer) == {"task-0": "TemporaryFailure"}
    assert "(503)" in json.loads(answer["results"][0]["resultString"])["error"]["message"]  # the HEAD: no body


def test_throttled_write_is_a_temporary_failure(s3: Any, s3_requests: S3Requests) -> None:
    bucket = _bucket(s3, "backfill-throttled")
    s3.put_object(Bucket=bucket, Key="a.heic", Body=make_heic())
    s3_requests.fail.add(("PutObject", "converted/a.jpg"))
    answer = handler(batch_event(bucket, "a.heic", version="2.0", arguments={}), None)
    assert codes(answer) == {"task-0": "TemporaryFailure"}
    assert "SlowDown" in json.loads(answer["results"][0]["resultString"])["error"]["message"]


def test_an_object_over_max_input_bytes_is_refused_before_it_is_read(
    s3: Any, s3_requests: S3Requests, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task names no size: the HEAD gives it, and a 400 MB object is never downloaded to be refused."""
    bucket = _bucket(s3, "backfill-large")
    heic = make_heic(size=(128, 96))
    s3.put_object(Bucket=bucket, Key="large.heic", Body=heic)
    monkeypatch.setenv("HEICCONV_MAX_INPUT_BYTES", "1000")
    answer = handler(batch_event(bucket, "large.heic"), None)
    assert codes(answer) == {"task-0": "PermanentFailure"}
    error = json.loads(answer["results"][0]["resultString"])["error"]
    assert error == {
        "error": "too_large",
        "message": f"the object is {len(heic):,} bytes, over the limit of 1,000 (max_input_bytes)",
        "status": 413,
    }
    assert s3_requests.sent == [("HeadObject", "large.heic")]


def test_unreachable_s3_is_a_temporary_failure(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    answer = handler(batch_event("photos", "a.heic"), None)
    assert codes(answer) == {"task-0": "TemporaryFailure"}
