"""The Lambda handler against a real S3 endpoint (moto's server on loopback) and API event shapes."""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote, urlsplit

import pytest
from PIL import Image

import heicconv
from heicconv.aws_lambda import aws, handler
from heicconv.aws_lambda.s3_events import FailedRecords
from heicconv.aws_lambda.s3_objects import SOURCE_ETAG
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module


@contextlib.contextmanager
def moto_server(*endpoint_variables: str) -> Iterator[str]:
    """moto's server (every service on one port) on 127.0.0.1, with dummy credentials and each of
    ``endpoint_variables`` pointing at it in the environment, restored afterwards."""
    require_module("boto3", "test")
    server_mod = require_module("moto.server", "test")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in (*_AWS_ENV, *endpoint_variables)}
    os.environ.update(_AWS_ENV, **dict.fromkeys(endpoint_variables, endpoint))
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1, with dummy credentials in the environment."""
    with moto_server("AWS_ENDPOINT_URL_S3") as endpoint:
        yield endpoint


_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    """A boto3 client for the moto server (each test creates its own buckets)."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    return client


@dataclass
class S3Requests:
    """The requests heicconv's S3 client sends, as ``(operation, key)``; those in ``fail`` are answered
    ``503 SlowDown``, S3's answer under load (botocore parses it as it would S3's own)."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    fail: set[tuple[str, str]] = field(default_factory=set)

    def of(self, operation: str) -> list[str]:
        return [key for op, key in self.sent if op == operation]


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.data


@pytest.fixture
def s3_requests(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Requests]:
    """Watches (and can fail) the requests of a fresh heicconv S3 client, without botocore's retries."""
    from botocore.awsrequest import AWSResponse

    monkeypatch.setattr(aws, "_clients", {})
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    requests = S3Requests()

    def before_send(request: Any, event_name: str, **kwargs: Any) -> Any:
        path = unquote(urlsplit(request.url).path)
        call = (event_name.rpartition(".")[2], path.split("/", 2)[2] if path.count("/") >= 2 else "")
        requests.sent.append(call)
        if call in requests.fail:
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _Body(body))
        return None

    client = aws.s3()
    client.meta.events.register("before-send.s3", before_send)
    try:
        yield requests
    finally:
        client.meta.events.unregister("before-send.s3", before_send)


@pytest.fixture(autouse=True)
def clean_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("HEICCONV_") and key != "HEICCONV_CORPUS":
            monkeypatch.delenv(key)
    monkeypatch.setenv("HEICCONV_BACKEND", "pillow")
    heicconv.config.reset()
    yield
    heicconv.config.reset()


def _bucket(s3: Any, name: str) -> str:
    s3.create_bucket(Bucket=name)
    return name


def s3_event(*objects: tuple[str, str, int], event: str = "ObjectCreated:Put") -> dict[str, Any]:
    """An S3 notification as S3 sends it: keys form-encoded (spaces as '+')."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-26T10:00:00.000Z",
                "eventName": event,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "heic-uploads",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": size, "sequencer": "0A1B2C3D4E5F678901"},
                },
            }
            for bucket, key, size in objects
        ]
    }


def test_s3_event_key_is_decoded_with_plus_for_spaces() -> None:
    event = s3_event(("b", "uploads/IMG 0001 (2).HEIC", 1))
    assert event["Records"][0]["s3"]["object"]["key"] == "uploads/IMG+0001+%282%29.HEIC"


def test_s3_object_is_converted_with_content_type(s3: Any) -> None:
    bucket = _bucket(s3, "photos-put")
    heic = make_heic(size=(64, 48))
    key = "uploads/IMG 0001 (2).HEIC"
    s3.put_object(Bucket=bucket, Key=key, Body=heic)
    answer = handler(s3_event((bucket, key, len(heic))), None)
    assert answer["batchItemFailures"] == []
    (result,) = answer["results"]
    assert result["status"] == "converted", result
    assert result["output"]["key"] == "converted/uploads/IMG 0001 (2).jpg"
    got = s3.get_object(Bucket=bucket, Key="converted/uploads/IMG 0001 (2).jpg")
    assert got["ContentType"] == "image/jpeg"
    with Image.open(io.BytesIO(got["Body"].read())) as img:
        assert (img.format, img.size) == ("JPEG", (64, 48))


def test_own_outputs_are_never_converted_again(s3: Any) -> None:
    bucket = _bucket(s3, "photos-loop")
    s3.put_object(Bucket=bucket, Key="a.heic", Body=make_heic())
    first = handler(s3_event((bucket, "a.heic", 100)), None)
    assert first["results"][0]["status"] == "converted"
    # The write above is itself an ObjectCreated event for the same function.
    again = handler(s3_event((bucket, "converted/a.jpg", 100), (bucket, "elsewhere/b.JPG", 100)), None)
    assert [r["status"] for r in again["results"]] == ["skipped", "skipped"]
    assert "output prefix" in again["results"][0]["reason"]
    assert "suffix" in again["results"][1]["reason"]
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert listed == ["a.heic", "converted/a.jpg"]


def test_output_bucket_prefix_and_format_come_from_the_environment(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = _bucket(s3, "photos-src"), _bucket(s3, "photos-dst")
    monkeypatch.setenv("HEICCONV_LAMBDA_OUTPUT_BUCKET", dst)
    monkeypatch.setenv("HEICCONV_LAMBDA_OUTPUT_PREFIX", "web/")
    monkeypatch.setenv("HEICCONV_LAMBDA_FORMAT", "webp")
    monkeypatch.setenv("HEICCONV_MAX_SIZE", "32")
    s3.put_object(Bucket=src, Key="x/photo.heic", Body=make_heic(size=(64, 48)))
    answer = handler(s3_event((src, "x/photo.heic", 1)), None)
    assert answer["results"][0]["status"] == "converted", answer
    got = s3.get_object(Bucket=dst, Key="web/x/photo.webp")
    assert got["ContentType"] == "image/webp"
    with Image.open(io.BytesIO(got["Body"].read())) as img:
        assert img.size == (32, 24)


def test_one_bad_record_does_not_lose_the_others(s3: Any) -> None:
    bucket = _bucket(s3, "photos-partial")
    s3.put_object(Bucket=bucket, Key="good one.heic", Body=make_heic())
    s3.put_object(Bucket=bucket, Key="notes.txt.heic", Body=b"not an image at all")
    s3.put_object(Bucket=bucket, Key="cut.heic", Body=make_heic()[:200])
    event = s3_event(
        (bucket, "notes.txt.heic", 19),
        (bucket, "good one.heic", 1),
        (bucket, "cut.heic", 200),
        (bucket, "gone.heic", 1),
    )
    # Permanent failures fail a direct invocation too: Lambda retries it (at most twice), then hands it
    # to the on-failure destination, where the damaged uploads can be found.
    with pytest.raises(FailedRecords, match=r"^3 of 4 object\(s\) failed") as failed:
        handler(event, None)
    answer = failed.value.answer
    statuses = {r["key"]: r["status"] for r in answer["results"]}
    assert statuses == {
        "notes.txt.heic": "failed",
        "good one.heic": "converted",
        "cut.heic": "failed",
        "gone.heic": "failed",
    }
    errors = {r["key"]: r["error"]["status"] for r in answer["results"] if r["status"] == "failed"}
    assert errors["notes.txt.heic"] == 415 and errors["cut.heic"] == 422
    assert "NoSuchKey" in next(r for r in answer["results"] if r["key"] == "gone.heic")["error"]["message"]
    failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    assert failed == [f"{bucket}/notes.txt.heic", f"{bucket}/cut.heic", f"{bucket}/gone.heic"]
    assert s3.head_object(Bucket=bucket, Key="converted/good one.jpg")["ContentType"] == "image/jpeg"


def test_size_from_the_event_is_checked_before_any_request(
    s3_requests: S3Requests, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEICCONV_MAX_INPUT_BYTES", "1000")
    with pytest.raises(FailedRecords, match=r"over the limit of 1,000 \(max_input_bytes\)") as failed:
        handler(s3_event(("photos-absent", "huge.heic", 10**9)), None)
    assert failed.value.answer["results"][0]["error"]["status"] == 413
    assert s3_requests.sent == []


def test_a_failed_write_fails_a_direct_invocation_and_the_retry_converts_only_what_is_missing(
    s3: Any, s3_requests: S3Requests
) -> None:
    bucket = _bucket(s3, "photos-retry")
    s3.put_object(Bucket=bucket, Key="a.heic", Body=make_heic(size=(64, 48)))
    s3.put_object(Bucket=bucket, Key="b.heic", Body=make_heic(size=(48, 64)))
    event = s3_event((bucket, "a.heic", 1), (bucket, "b.heic", 1))
    s3_requests.fail.add(("PutObject", "converted/b.jpg"))
    # S3 invokes the function asynchronously and ignores its answer: only a failed invocation is retried.
    with pytest.raises(FailedRecords, match=r"1 of 2 .* s3://photos-retry/b.heic: .*SlowDown.*transient") as failed:
        handler(event, None)
    assert [r["status"] for r in failed.value.answer["results"]] == ["converted", "failed"]
    assert "SlowDown" in repr(failed.value.__cause__)
    etag = s3.head_object(Bucket=bucket, Key="a.heic")["ETag"].strip('"')
    assert s3.head_object(Bucket=bucket, Key="converted/a.jpg")["Metadata"][SOURCE_ETAG] == etag

    s3_requests.fail.clear()
    s3_requests.sent.clear()
    answer = handler(event, None)  # Lambda's retry: the same event
    (a, b) = answer["results"]
    assert a["status"] == "skipped" and a["reason"].startswith(f"already converted from this source (ETag {etag})")
    assert b["status"] == "converted"
    assert s3_requests.of("GetObject") == ["b.heic"] and s3_requests.of("PutObject") == ["converted/b.jpg"]
    assert s3.head_object(Bucket=bucket, Key="converted/b.jpg")["ContentType"] == "image/jpeg"


def test_an_output_is_written_again_for_a_new_source_or_other_options(
    s3: Any, s3_requests: S3Requests, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket(s3, "photos-stamp")
    s3.put_object(Bucket=bucket, Key="a.heic", Body=make_heic(size=(64, 48)))
    event = s3_event((bucket, "a.heic", 1))
    assert handler(event)["results"][0]["status"] == "converted"
    assert handler(event)["results"][0]["status"] == "skipped"
    s3.put_object(Bucket=bucket, Key="a.heic", Body=make_heic(size=(32, 24)))  # a new upload, a new ETag
    assert handler(event)["results"][0]["status"] == "converted"
    monkeypatch.setenv("HEICCONV_QUALITY", "60")
    assert handler(event)["results"][0]["status"] == "converted"
    assert handler(event)["results"][0]["status"] == "skipped"
    assert s3_requests.of("PutObject") == ["converted/a.jpg"] * 3
    with Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key="converted/a.jpg")["Body"].read())) as img:
        assert img.size == (32, 24)


def test_sqs_batch_reports_failures_by_message_id(s3: Any) -> None:
    bucket = _bucket(s3, "photos-sqs")
    s3.put_object(Bucket=bucket, Key="ok.heic", Body=make_heic())

    def message(mid: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": mid,
            "receiptHandle": "rh",
            "body": json.dumps(body),
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads",
            "attributes": {},
        }

    event = {
        "Records": [
            message("m-test", {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}),
            message("m-ok", s3_event((bucket, "ok.heic", 1))),
            message("m-bad", s3_event((bucket, "missing.heic", 1))),
        ]
    }
    answer = handler(event, None)
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m-bad"}]
    assert [r["status"] for r in answer["results"]] == ["converted", "failed"]


def test_non_create_events_are_skipped(s3: Any) -> None:
    answer = handler(s3_event(("b", "x.heic", 1), event="ObjectRemoved:Delete"), None)
    assert answer["results"][0]["status"] == "skipped"


def test_unrecognised_event_raises_a_heicconv_error() -> None:
    with pytest.raises(heicconv.HeicconvError, match="unrecognised event"):
        handler({"hello": "world"}, None)


# --- API Gateway REST (1.0), HTTP API (2.0), Function URL (2.0) -------------------------------------------


def rest_event(
    body: bytes,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    path: str = "/convert",
    b64: bool = True,
) -> dict[str, Any]:
    headers = {"Content-Type": "image/heic", "Host": "abc123.execute-api.us-east-1.amazonaws.com", **(headers or {})}
    return {
        "resource": "/convert",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/convert",
            "httpMethod": method,
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "192.0.2.1"},
        },
        "body": base64.b64encode(body).decode() if b64 else body.decode("latin-1"),
        "isBase64Encoded": b64,
    }


def v2_event(
    body: bytes,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    path: str = "/convert",
    function_url: bool = False,
) -> dict[str, Any]:
    domain = "abcdefg.lambda-url.us-east-1.on.aws" if function_url else "abc123.execute-api.us-east-1.amazonaws.com"
    raw_query = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    context: dict[str, Any] = {
        "accountId": "123456789012" if not function_url else "anonymous",
        "apiId": "abcdefg" if function_url else "abc123",
        "domainName": domain,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test"},
        "requestId": "id-1",
        "routeKey": "$default" if function_url else "POST /convert",
        "stage": "$default",
        "time": "26/Nov/2026:10:00:00 +0000",
        "timeEpoch": 1795687200000,
    }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": context["routeKey"],
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"content-type": "image/heic", "host": domain, **{k.lower(): v for k, v in (headers or {}).items()}},
        "requestContext": context,
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    if query:
        event["queryStringParameters"] = query
    return event


SHAPES: dict[str, Callable[..., dict[str, Any]]] = {
    "rest": rest_event,
    "http-api": v2_event,
    "function-url": functools.partial(v2_event, function_url=True),
}


def _image(answer: dict[str, Any]) -> Any:
    assert answer["isBase64Encoded"] is True
    return Image.open(io.BytesIO(base64.b64decode(answer["body"])))


def _error(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["headers"]["Content-Type"] == "application/json"
    assert "Traceback" not in answer["body"]
    body: dict[str, Any] = json.loads(answer["body"])
    assert body["status"] == answer["statusCode"]
    return body


@pytest.mark.parametrize("shape", SHAPES)
def test_api_request_answers_the_format_of_the_query(shape: str) -> None:
    answer = handler(SHAPES[shape](make_heic(size=(40, 30)), {"format": "png"}), None)
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "image/png"
    with _image(answer) as img:
        assert (img.format, img.size) == ("PNG", (40, 30))


@pytest.mark.parametrize("shape", SHAPES)
def test_api_request_follows_the_accept_header_only_when_asked(shape: str) -> None:
    accept = {"Accept": "image/avif;q=0.5, image/webp, */*;q=0.1"}
    answer = handler(SHAPES[shape](make_heic(), {"format": "auto"}, accept), None)
    assert answer["statusCode"] == 200, answer
    assert answer["headers"]["Content-Type"] == "image/webp" and answer["headers"]["Vary"] == "Accept"
    with _image(answer) as img:
        assert img.format == "WEBP"
    plain = handler(SHAPES[shape](make_heic(), None, accept), None)
    assert plain["headers"]["Content-Type"] == "image/jpeg" and "Vary" not in plain["headers"]


@pytest.mark.parametrize("shape", SHAPES)
def test_api_request_options_from_the_query(shape: str) -> None:
    answer = handler(
        SHAPES[shape](make_heic(size=(64, 48)), {"format": "jpeg", "quality": "60", "max_size": "16"}), None
    )
    with _image(answer) as img:
        assert img.size == (16, 12)


def test_api_multipart_body() -> None:
    boundary = "xYzZy"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a b.heic"\r\n'
            "Content-Type: image/heic\r\n\r\n"
        ).encode()
        + make_heic(size=(20, 10))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = handler(v2_event(body, None, {"Content-Type": f"multipart/form-data; boundary={boundary}"}), None)
    with _image(answer) as img:
        assert img.size == (20, 10)


@pytest.mark.parametrize(
    ("body", "query", "status", "code"),
    [
        (b"", None, 400, "bad_request"),
        (b"whatever", {"format": "bmp"}, 400, "bad_request"),
        (b"whatever", {"qualty": "80"}, 400, "bad_request"),
        (b"whatever", {"quality": "101"}, 400, "bad_request"),
        (b"GIF89a" + bytes(64), None, 415, "unsupported_format"),
        (b"%PDF-1.7\n" + bytes(64), None, 415, "unsupported_format"),
        (b"TRUNCATED", None, 0, ""),  # replaced below by a cut HEIC
    ],
)
@pytest.mark.parametrize("shape", SHAPES)
def test_api_bad_input_answers_json_errors(
    shape: str, body: bytes, query: dict[str, str] | None, status: int, code: str
) -> None:
    if body == b"TRUNCATED":
        body, status, code = make_heic()[:300], 422, "undecodable"
    answer = handler(SHAPES[shape](body, query), None)
    assert answer["statusCode"] == status
    assert _error(answer)["error"] == code


def test_api_limits_answer_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_MAX_PIXELS", "1000")
    answer = handler(v2_event(make_heic(size=(64, 48))), None)
    assert answer["statusCode"] == 413
    assert "max_pixels" in _error(answer)["message"] or "pixels" in _error(answer)["message"]


def test_api_invalid_base64_is_400() -> None:
    event = v2_event(b"")
    event["body"] = "not base64!!"
    answer = handler(event, None)
    assert answer["statusCode"] == 400


def test_api_get_health_and_wrong_method() -> None:
    health = handler(rest_event(b"", method="GET", path="/health"), None)
    assert health["statusCode"] == 200 and json.loads(health["body"])["backend"] == "pillow"
    backends = handler(v2_event(b"", method="GET", path="/backends"), None)
    assert "pillow" in [b["name"] for b in json.loads(backends["body"])["backends"]]
    assert handler(v2_event(b"", method="PUT"), None)["statusCode"] == 405


def _noise_png_heic() -> bytes:
    # Noise compresses badly, so a small image gives a PNG of a predictable size.
    return make_heic(size=(128, 128))


def test_api_oversize_response_is_413_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_LAMBDA_MAX_RESPONSE_BYTES", "2048")
    answer = handler(v2_event(_noise_png_heic(), {"format": "png"}), None)
    assert answer["statusCode"] == 413
    body = _error(answer)
    assert body["error"] == "response_too_large" and "HEICCONV_LAMBDA_OVERSIZE=s3" in body["message"]


def test_api_oversize_response_goes_to_s3_with_a_presigned_url(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = _bucket(s3, "photos-oversize")
    monkeypatch.setenv("HEICCONV_LAMBDA_MAX_RESPONSE_BYTES", "2048")
    monkeypatch.setenv("HEICCONV_LAMBDA_OVERSIZE", "s3")
    monkeypatch.setenv("HEICCONV_LAMBDA_OUTPUT_BUCKET", bucket)
    answer = handler(rest_event(_noise_png_heic(), {"format": "png"}), None)
    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    assert body["key"].startswith("oversize/") and body["key"].endswith(".png")
    assert answer["headers"]["Location"] == body["url"]
    with urllib.request.urlopen(body["url"], timeout=10) as resp:  # the presigned URL, over loopback
        data = resp.read()
    assert len(data) == body["bytes"]
    with Image.open(io.BytesIO(data)) as img:
        assert (img.format, img.size) == ("PNG", (128, 128))


def test_bad_lambda_setting_is_a_json_500_for_http_and_raises_for_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_LAMBDA_OVERSIZE", "sometimes")
    answer = handler(v2_event(make_heic()), None)
    assert answer["statusCode"] == 500
    assert "lambda.oversize" in _error(answer)["message"]
    with pytest.raises(heicconv.ConfigError, match="HEICCONV_LAMBDA_OVERSIZE"):
        handler(s3_event(("b", "k.heic", 1)), None)


def test_bad_core_setting_fails_the_whole_s3_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_QUALITY", "best")
    with pytest.raises(heicconv.ConfigError, match="quality"):
        handler(s3_event(("b", "k.heic", 1)), None)
    answer = handler(v2_event(make_heic()), None)
    assert answer["statusCode"] == 500 and "quality" in _error(answer)["message"]


def test_importing_the_handler_loads_no_image_library_nor_boto3() -> None:
    code = (
        "import sys, base64, heicconv.aws_lambda as m\n"
        "heavy = ('boto3', 'botocore', 'PIL', 'pillow_heif', 'pyvips', 'wand', 'starlette', 'uvicorn')\n"
        "print(sorted(h for h in heavy if h in sys.modules))\n"
        "m.handler({'version': '2.0', 'rawPath': '/health', 'requestContext': {'http': {'method': 'GET'}}})\n"
        "print(sorted(h for h in heavy if h in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env["HEICCONV_BACKEND"] = "pillow"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=True)
    at_import, after_http = out.stdout.splitlines()
    assert at_import == "[]"
    assert "boto3" not in after_http
