"""The ``lambda`` backend with a staging bucket: images over the 6 MB Invoke payload go through S3.

The caller (boto3 presigning against moto's S3 on loopback) uploads what does not fit, the real handler
behind the loopback Invoke endpoint (tests/lambda_endpoint.py) reads and writes the staged objects through
the presigned URLs, and the caller fetches and deletes them. Each path runs blocking and under asyncio.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import lambda_endpoint
import pytest
from PIL import Image
from test_lambda import moto_server

import heicconv
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_module

BUCKET = "staging"
PADDING = 5 * 1024 * 1024  # trailing bytes: the HEIC still reads, but base64 puts its event over 6 MB


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server("AWS_ENDPOINT_URL_S3") as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture(scope="module")
def function() -> Iterator[str]:
    """The real handler with pillow; answers above 4 KB do not fit (so a 320x240 PNG must be staged);
    photos above 100,000 pixels are refused there, not here (a conversion that fails remotely)."""
    require_module("boto3", "lambda")
    proc, url = lambda_endpoint.start(
        {
            "HEICCONV_BACKEND": "pillow",
            "HEICCONV_LAMBDA_MAX_RESPONSE_BYTES": "4096",
            "HEICCONV_MAX_PIXELS": "100000",
        }
    )
    yield url
    lambda_endpoint.stop(proc)


@pytest.fixture
def staged(function: str, s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The caller's settings: the function, and the staging bucket; returns the S3 client to look in it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", function)
    monkeypatch.setenv("HEICCONV_LAMBDA_FUNCTION", "heicconv")
    monkeypatch.setenv("HEICCONV_LAMBDA_STAGING_BUCKET", BUCKET)
    return s3


def _convert(mode: str, data: bytes, fmt: str) -> heicconv.Result:
    if mode == "async":
        return asyncio.run(heicconv.convert_with_report_async(data, fmt, backend="lambda"))
    return heicconv.convert_with_report(data, fmt, backend="lambda")


def _keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


MODES = ["blocking", "async"]


@pytest.mark.parametrize("mode", MODES)
def test_an_input_over_the_payload_limit_goes_through_s3(mode: str, staged: Any) -> None:
    photo = fixtures.make_heic((200, 150))
    big = photo + b"\0" * PADDING
    result = _convert(mode, big, "jpeg")
    assert result.data == heicconv.convert(photo, "jpeg", backend="pillow")
    assert (result.width, result.height, result.backend) == (200, 150, "lambda")
    assert _keys(staged) == []  # the staged input is gone


@pytest.mark.parametrize("mode", MODES)
def test_an_output_too_large_to_answer_comes_back_through_s3(mode: str, staged: Any) -> None:
    photo = fixtures.make_heic((320, 240))
    result = _convert(mode, photo, "png")
    local = heicconv.convert(photo, "png", backend="pillow")
    assert len(local) > 4096 and result.data == local
    assert Image.open(io.BytesIO(result.data)).size == (320, 240)
    assert result.notes[0].kind == "backend" and "pillow" in result.notes[0]
    assert _keys(staged) == []  # the staged output is gone once fetched


@pytest.mark.parametrize("mode", MODES)
def test_both_ways_at_once(mode: str, staged: Any) -> None:
    photo = fixtures.make_heic((320, 240))
    result = _convert(mode, photo + b"\0" * PADDING, "png")
    assert result.data == heicconv.convert(photo, "png", backend="pillow")
    assert _keys(staged) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_conversion_cleans_up_its_staged_input(mode: str, staged: Any) -> None:
    too_many_pixels_there = fixtures.make_heic((400, 300)) + b"\0" * PADDING
    with pytest.raises(heicconv.LimitExceededError, match=r"max_pixels.*Lambda function heicconv answered 413"):
        _convert(mode, too_many_pixels_there, "jpeg")
    assert _keys(staged) == []


def test_small_images_still_travel_in_the_event(staged: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staging bucket costs nothing when nothing is staged: no object is written."""
    seen: list[str] = []
    real = heicconv.backends.wire.exchange

    def watched(endpoint: Any, method: str, target: str, *rest: Any) -> Any:
        seen.append(f"{method} {target.partition('?')[0]}")
        return real(endpoint, method, target, *rest)

    monkeypatch.setattr("heicconv.backends.wire.exchange", watched)  # every exchange of the conversion
    monkeypatch.setattr("heicconv.backends.lambda_invoke.exchange", watched)  # the deletions afterwards
    photo = fixtures.make_heic((64, 48))
    assert heicconv.backends.registry.get("lambda").capabilities  # the function's /health: asked once, before
    seen.clear()
    assert heicconv.convert(photo, "jpeg", backend="lambda") == heicconv.convert(photo, "jpeg", backend="pillow")
    assert seen == ["POST /2015-03-31/functions/heicconv/invocations"] and _keys(staged) == []


def test_without_a_bucket_the_error_names_the_setting(function: str, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", function)
    monkeypatch.setenv("HEICCONV_LAMBDA_FUNCTION", "heicconv")
    big = fixtures.make_heic((64, 48)) + b"\0" * PADDING
    with pytest.raises(heicconv.LimitExceededError, match=r"set HEICCONV_LAMBDA_STAGING_BUCKET"):
        heicconv.convert(big, "jpeg", backend="lambda")
    with pytest.raises(heicconv.LimitExceededError, match=r"HEICCONV_LAMBDA_OVERSIZE=s3"):  # the function's 413
        heicconv.convert(fixtures.make_heic((320, 240)), "png", backend="lambda")
    assert _keys(s3) == []


def test_the_handler_reads_only_http_urls() -> None:
    from heicconv.aws_lambda import handler
    from heicconv.backends.remote import STAGING_KEY

    event = {
        "version": "2.0",
        "rawPath": "/convert",
        "requestContext": {"http": {"method": "POST"}},
        "queryStringParameters": {"format": "png"},
        STAGING_KEY: {"input": "file:///etc/passwd", "output": "http://127.0.0.1:9/x"},
    }
    answer = handler(event)
    assert answer["statusCode"] == 400 and "presigned http(s) URLs" in json.loads(answer["body"])["message"]


def test_a_throttled_function_is_retried_then_reported(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend's own retries try TooManyRequestsException again, blocking or under asyncio."""
    require_module("boto3", "lambda")
    throttles = tmp_path / "throttles"
    proc, url = lambda_endpoint.start({"HEICCONV_BACKEND": "pillow", "LAMBDA_ENDPOINT_THROTTLE_FILE": str(throttles)})
    try:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
        monkeypatch.setenv("HEICCONV_LAMBDA_FUNCTION", "heicconv")
        photo = fixtures.make_heic((64, 48))
        local = heicconv.convert(photo, "jpeg", backend="pillow")
        for mode in MODES:
            throttles.write_text("2")
            assert _convert(mode, photo, "jpeg").data == local
            assert throttles.read_text() == "0"  # both throttled tries were made, then a third converted
        monkeypatch.setenv("HEICCONV_LAMBDA_RETRIES", "0")
        for mode in MODES:
            throttles.write_text("1")
            with pytest.raises(heicconv.BackendUnavailableError, match="TooManyRequestsException"):
                _convert(mode, photo, "jpeg")
    finally:
        lambda_endpoint.stop(proc)
