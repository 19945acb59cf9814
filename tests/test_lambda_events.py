"""S3 notifications in every envelope a deployment delivers them, against moto's S3 server.

Shapes as AWS documents them (Amazon S3 User Guide, "Event message structure" and "EventBridge
event message structure"; the SNS and SQS developer guides): S3 -> SNS -> Lambda,
S3 -> SNS -> SQS -> Lambda (with and without raw message delivery), S3 -> EventBridge -> Lambda
and EventBridge -> SQS -> Lambda. Anything else is a failure the caller sees, never an empty success.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from test_lambda import S3Requests, _bucket, clean_config, s3, s3_endpoint, s3_event, s3_requests

import heicconv
from heicconv.aws_lambda import handler
from heicconv.aws_lambda.s3_events import FailedRecords
from heicconv.testing.fixtures import make_heic

__all__ = ["clean_config", "s3", "s3_endpoint", "s3_requests"]  # fixtures used by name

TOPIC = "arn:aws:sns:us-east-1:123456789012:photo-uploads"
_buckets = itertools.count()


def sns_notification(message: dict[str, Any], *, to_lambda: bool = False) -> dict[str, Any]:
    """What SNS delivers: to Lambda inside ``Sns``, to SQS as the message body (which spells ``URL``)."""
    url = "Url" if to_lambda else "URL"
    return {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": TOPIC,
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(message),
        "Timestamp": "2026-11-26T10:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        f"SigningCert{url}": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000.pem",
        f"Unsubscribe{url}": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:1",
        "MessageAttributes": {},
    }


def sns_event(message: dict[str, Any]) -> dict[str, Any]:
    """S3 -> SNS -> Lambda."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{TOPIC}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
                "Sns": sns_notification(message, to_lambda=True),
            }
        ]
    }


def sqs_event(*bodies: tuple[str, str]) -> dict[str, Any]:
    """(messageId, body) pairs as Lambda's SQS event source mapping delivers them."""
    return {
        "Records": [
            {
                "messageId": mid,
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795687200000"},
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:photo-uploads",
                "awsRegion": "us-east-1",
            }
            for mid, body in bodies
        ]
    }


def eventbridge_event(bucket: str, key: str, size: int, detail_type: str = "Object Created") -> dict[str, Any]:
    """S3 -> EventBridge: the key as it is (EventBridge does not form-encode it)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-26T10:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "617f0829"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "192.0.2.1",
            "reason": "PutObject",
        },
    }


@pytest.fixture
def uploads(s3: Any) -> tuple[Any, str]:
    bucket = _bucket(s3, f"photos-envelopes-{next(_buckets)}")
    s3.put_object(Bucket=bucket, Key="IMG 0001.HEIC", Body=make_heic(size=(64, 48)))
    return s3, bucket


def converted(s3: Any, bucket: str, key: str = "converted/IMG 0001.jpg") -> str:
    content_type: str = s3.head_object(Bucket=bucket, Key=key)["ContentType"]
    return content_type


def test_s3_through_sns(uploads: tuple[Any, str]) -> None:
    s3, bucket = uploads
    answer = handler(sns_event(s3_event((bucket, "IMG 0001.HEIC", 100))))
    assert [r["status"] for r in answer["results"]] == ["converted"]
    assert converted(s3, bucket) == "image/jpeg"
    # Anything else on the topic (here a CloudWatch alarm) fails the invocation, so Lambda retries it.
    with pytest.raises(heicconv.HeicconvError, match="unrecognised message"):
        handler(sns_event({"AlarmName": "cpu-high", "NewStateValue": "ALARM"}))
    with pytest.raises(heicconv.HeicconvError, match="not JSON"):
        handler({"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": "hello"}}]})


def test_s3_through_sns_and_sqs_with_and_without_raw_delivery(uploads: tuple[Any, str]) -> None:
    s3, bucket = uploads
    s3.put_object(Bucket=bucket, Key="IMG 0002.HEIC", Body=make_heic(size=(64, 48)))
    event = sqs_event(
        ("m-sns", json.dumps(sns_notification(s3_event((bucket, "IMG 0001.HEIC", 100))))),
        ("m-raw", json.dumps(s3_event((bucket, "IMG 0002.HEIC", 100)))),
        ("m-bad", json.dumps(sns_notification(s3_event((bucket, "missing.heic", 100))))),
    )
    answer = handler(event)
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m-bad"}]
    assert [r["status"] for r in answer["results"]] == ["converted", "converted", "failed"]
    assert converted(s3, bucket) == converted(s3, bucket, "converted/IMG 0002.jpg") == "image/jpeg"


def test_s3_through_eventbridge_and_through_eventbridge_and_sqs(uploads: tuple[Any, str]) -> None:
    s3, bucket = uploads
    answer = handler(eventbridge_event(bucket, "IMG 0001.HEIC", 100))
    assert [r["status"] for r in answer["results"]] == ["converted"]
    s3.delete_object(Bucket=bucket, Key="converted/IMG 0001.jpg")
    queued = handler(sqs_event(("m-1", json.dumps(eventbridge_event(bucket, "IMG 0001.HEIC", 100)))))
    assert queued["batchItemFailures"] == [] and [r["status"] for r in queued["results"]] == ["converted"]
    assert converted(s3, bucket) == "image/jpeg"
    with pytest.raises(heicconv.HeicconvError, match="unrecognised message"):
        handler({"source": "aws.s3", "detail-type": "Object Created"})  # no detail


@pytest.mark.parametrize("route", ["sns", "eventbridge"])
def test_a_failed_write_fails_the_invocation_on_every_asynchronous_route(
    uploads: tuple[Any, str], s3_requests: S3Requests, route: str
) -> None:
    """SNS and EventBridge invoke the function asynchronously, as S3 does: a failure must fail the invocation."""
    s3, bucket = uploads
    event = (
        sns_event(s3_event((bucket, "IMG 0001.HEIC", 100)))
        if route == "sns"
        else eventbridge_event(bucket, "IMG 0001.HEIC", 100)
    )
    s3_requests.fail.add(("PutObject", "converted/IMG 0001.jpg"))
    with pytest.raises(FailedRecords, match="SlowDown"):
        handler(event)
    s3_requests.fail.clear()
    assert [r["status"] for r in handler(event)["results"]] == ["converted"]  # Lambda's retry
    assert [r["status"] for r in handler(event)["results"]] == ["skipped"]  # a duplicate delivery
    assert converted(s3, bucket) == "image/jpeg"


def test_eventbridge_events_other_than_created_are_skipped_with_a_reason() -> None:
    answer = handler(eventbridge_event("photos", "IMG 0001.HEIC", 100, detail_type="Object Deleted"))
    (result,) = answer["results"]
    assert result["status"] == "skipped" and "Object Deleted" in result["reason"]


def test_unreadable_sqs_messages_are_retried_not_deleted(uploads: tuple[Any, str]) -> None:
    _, bucket = uploads
    answer = handler(
        sqs_event(
            ("m-text", "IMG 0001.HEIC was uploaded"),
            ("m-other", json.dumps({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2"})),
            ("m-test", json.dumps(sns_notification({"Service": "Amazon S3", "Event": "s3:TestEvent"}))),
            ("m-ok", json.dumps(s3_event((bucket, "IMG 0001.HEIC", 100)))),
        )
    )
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m-text"}, {"itemIdentifier": "m-other"}]
    failed = {r["item"]: r["error"]["message"] for r in answer["results"] if r["status"] == "failed"}
    assert "not JSON" in failed["m-text"] and "unrecognised message" in failed["m-other"]
    assert [r["status"] for r in answer["results"] if "item" not in r] == ["converted"]


S3_TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2026-11-26T10:00:00.000Z",
    "Bucket": "photos",
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}


def test_s3_test_event_is_ignored_with_one_log_line_straight_or_through_sqs(caplog: pytest.LogCaptureFixture) -> None:
    """S3 sends s3:TestEvent when a notification is set up: straight to the function, or as an SQS message body."""
    with caplog.at_level("INFO", logger="heicconv.aws_lambda"):
        assert handler(dict(S3_TEST_EVENT)) == {"batchItemFailures": [], "results": []}
    assert [r.getMessage() for r in caplog.records] == ["s3:TestEvent for bucket photos: ignored (names no object)"]
    caplog.clear()
    with caplog.at_level("INFO", logger="heicconv.aws_lambda"):
        answer = handler(sqs_event(("m-test", json.dumps(S3_TEST_EVENT))))
    assert answer == {"batchItemFailures": [], "results": []}
    assert [r.getMessage() for r in caplog.records] == ["s3:TestEvent for bucket photos: ignored (names no object)"]
