"""The Lambda handler's figures and logs: one CloudWatch EMF line per invocation, the Lambda request id in the logs.

The EMF checks follow the specification (CloudWatch "Embedded metric format specification"): a
top-level ``_aws`` object with a millisecond ``Timestamp`` and ``CloudWatchMetrics`` directives, each
with a ``Namespace``, ``Dimensions`` (lists of names) and ``Metrics`` (``Name`` and ``Unit``); every
dimension and metric named there must be a top-level member, a metric's value a number or an array
of at most 100 numbers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from test_lambda import _bucket, rest_event, s3, s3_endpoint, s3_event  # noqa: F401 (fixtures)

import heicconv
from heicconv.aws_lambda import handler, invocation
from heicconv.config.logs import JsonFormatter
from heicconv.testing.fixtures import make_heic

PHOTO = make_heic(size=(64, 48))
CONTEXT = SimpleNamespace(aws_request_id="8f5c2a8e-req", function_name="heicconv-convert")


@pytest.fixture(autouse=True)
def clean_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("HEICCONV_") and key != "HEICCONV_CORPUS":
            monkeypatch.delenv(key)
    monkeypatch.setenv("HEICCONV_BACKEND", "pillow")
    heicconv.config.reset()
    yield
    heicconv.config.reset()


def emf_lines(out: str) -> list[dict[str, Any]]:
    """The EMF lines of ``out`` (stdout), each checked against the specification."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    for line in lines:
        meta = line["_aws"]
        assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
        assert meta["CloudWatchMetrics"]
        for directive in meta["CloudWatchMetrics"]:
            assert isinstance(directive["Namespace"], str) and directive["Namespace"]
            for dimension_set in directive["Dimensions"]:
                assert 1 <= len(dimension_set) <= 30
                for name in dimension_set:
                    assert isinstance(line[name], str), name  # a dimension's value: a top-level string
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]  # a metric's value: a top-level number or array of numbers
                values = value if isinstance(value, list) else [value]
                assert 1 <= len(values) <= 100 and all(isinstance(v, (int, float)) for v in values), metric
                assert metric["Unit"] in ("Count", "Seconds", "Bytes"), metric
    return lines


def test_an_http_conversion_writes_one_emf_line(capsys: pytest.CaptureFixture[str]) -> None:
    answer = handler(rest_event(PHOTO, {"format": "png"}), CONTEXT)
    assert answer["statusCode"] == 200
    [line] = emf_lines(capsys.readouterr().out)
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "heicconv"
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["backend", "output_format"]]
    assert (line["backend"], line["output_format"]) == ("pillow", "png")
    assert (line["Conversions"], line["ConversionFailures"]) == (1, 0)
    assert line["InputBytes"] == len(PHOTO)
    import base64

    assert line["OutputBytes"] == len(base64.b64decode(answer["body"]))
    assert len(line["ConversionSeconds"]) == 1 and line["ConversionSeconds"][0] > 0
    assert line["request_id"] == "8f5c2a8e-req" and line["function_name"] == "heicconv-convert"
    assert isinstance(line["cold_start"], bool)


def test_the_line_can_be_switched_off_and_names_its_namespace(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEICCONV_LAMBDA_METRICS", "false")
    assert handler(rest_event(PHOTO), CONTEXT)["statusCode"] == 200
    assert emf_lines(capsys.readouterr().out) == []
    monkeypatch.setenv("HEICCONV_LAMBDA_METRICS", "true")
    monkeypatch.setenv("HEICCONV_LAMBDA_METRICS_NAMESPACE", "Photos/heicconv")
    heicconv.config.reset()
    assert handler(rest_event(PHOTO), CONTEXT)["statusCode"] == 200
    [line] = emf_lines(capsys.readouterr().out)
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Photos/heicconv"
    monkeypatch.setenv("HEICCONV_LAMBDA_METRICS", "maybe")
    heicconv.config.reset()
    answer = handler(rest_event(PHOTO), CONTEXT)
    assert answer["statusCode"] == 500
    assert "lambda.metrics: must be true or false, got 'maybe'" in json.loads(answer["body"])["message"]


def test_nothing_converted_no_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert handler(rest_event(PHOTO, {"format": "bmp"}), CONTEXT)["statusCode"] == 400
    assert handler(rest_event(b"", method="GET", path="/health"), CONTEXT)["statusCode"] == 200
    assert emf_lines(capsys.readouterr().out) == []


def test_an_s3_batch_counts_conversions_and_failures(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    bucket = _bucket(s3, "photos-emf")
    s3.put_object(Bucket=bucket, Key="a.heic", Body=PHOTO)
    s3.put_object(Bucket=bucket, Key="b.heic", Body=PHOTO)
    s3.put_object(Bucket=bucket, Key="cut.heic", Body=PHOTO[:300])
    objects = [(bucket, "a.heic", 1), (bucket, "b.heic", 1), (bucket, "cut.heic", 300)]
    records = [
        {"eventSource": "aws:sqs", "messageId": f"m{i}", "body": json.dumps(s3_event(o))} for i, o in enumerate(objects)
    ]
    sqs = {"Records": records}
    answer = handler(sqs, CONTEXT)
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == ["m2"]
    [line] = emf_lines(capsys.readouterr().out)
    assert (line["backend"], line["output_format"]) == ("pillow", "jpeg")
    assert (line["Conversions"], line["ConversionFailures"]) == (3, 1)
    assert len(line["ConversionSeconds"]) == 3
    assert line["InputBytes"] == 2 * len(PHOTO) + 300
    written = sum(s3.head_object(Bucket=bucket, Key=f"converted/{k}.jpg")["ContentLength"] for k in "ab")
    assert line["OutputBytes"] == written


def test_more_than_100_conversions_are_split_into_lines() -> None:
    current = invocation.Invocation()
    current.conversions = [invocation._Conversion("vips", "webp", 0.1, 10, 5) for _ in range(230)]
    lines = [json.loads(line) for line in current.lines("heicconv", {"request_id": "r"}, 1_700_000_000_000)]
    assert [line["Conversions"] for line in lines] == [100, 100, 30]
    assert [len(line["ConversionSeconds"]) for line in lines] == [100, 100, 30]
    assert emf_lines("\n".join(json.dumps(line) for line in lines)) == lines


def test_log_lines_carry_the_lambda_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    """One JSON line per HTTP request, with the service's field names, and the invocation's request id."""
    formatted: list[str] = []
    catcher = logging.Handler()
    catcher.setFormatter(JsonFormatter())
    catcher.emit = lambda record: formatted.append(catcher.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger("heicconv.aws_lambda")
    logger.addHandler(catcher)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        handler(rest_event(PHOTO, {"format": "webp"}), CONTEXT)
        handler(rest_event(PHOTO[:300]), SimpleNamespace(aws_request_id="second-req"))
    finally:
        logger.removeHandler(catcher)
        logger.setLevel(level)
    lines = [line for line in map(json.loads, formatted) if line["message"].startswith("POST")]
    ok, bad = lines
    assert ok["message"] == "POST /convert 200" and ok["request_id"] == "8f5c2a8e-req"
    assert (ok["backend"], ok["input_format"], ok["output_format"], ok["outcome"]) == ("pillow", "heic", "webp", "ok")
    assert ok["bytes_in"] == len(PHOTO) and ok["bytes_out"] > 0 and ok["image_size"] == "64x48"
    assert ok["conversion_ms"] > 0 and ok["status"] == 200
    assert bad["request_id"] == "second-req" and bad["status"] == 422
    assert bad["outcome"] == bad["error"] == "DecodeError"
    from heicconv.config.logs import REQUEST_ID

    assert REQUEST_ID.get() is None  # reset after the invocation


def test_on_lambda_heicconv_logs_json_to_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "heicconv-convert")
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "WARN")
    monkeypatch.setattr(invocation, "_logging_ready", False)
    logger = logging.getLogger("heicconv")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        handler(rest_event(PHOTO, {"format": "bmp"}), CONTEXT)
        assert isinstance(logger.handlers[0].formatter, JsonFormatter)
        assert logger.level == logging.WARNING and logger.propagate is False
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
        for name in ("uvicorn", "uvicorn.error"):
            logging.getLogger(name).handlers[:] = []
            logging.getLogger(name).propagate = True
