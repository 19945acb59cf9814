"""S3 "object created" notifications, in every envelope a deployment delivers them.

- S3 -> Lambda: ``{"Records": [{"eventSource": "aws:s3", ...}]}``;
- S3 -> SNS -> Lambda: ``{"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "<S3 JSON>"}}]}``;
- S3 (-> SNS) -> SQS -> Lambda: ``{"Records": [{"eventSource": "aws:sqs", "body": "<S3 or SNS JSON>"}]}``;
- S3 -> EventBridge (-> SQS) -> Lambda: ``{"source": "aws.s3", "detail-type": "Object Created", ...}``.

Each object is read, converted with the configured backend and options, and
written under ``output_prefix`` with the output's Content-Type. One record's
failure never stops the others: the answer lists every record's outcome and,
in the partial-batch shape SQS understands, the messages to retry. A message
that is none of these shapes is a failure too (an SQS message is retried, then
goes to the dead-letter queue; any other invocation raises), never acknowledged
silently. S3's ``s3:TestEvent`` is the one message that names no object and is fine.
"""

from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from .. import formats
from ..core import convert_with_report
from ..errors import HeicconvError, LimitExceededError
from ..webapi import classify, endpoint_settings
from .aws import s3
from .settings import LambdaSettings

__all__ = ["handle_records", "is_notification_event", "output_key"]

log = logging.getLogger("heicconv.aws_lambda")


@dataclass(frozen=True)
class _Object:
    item: str  # itemIdentifier: the SQS messageId, or bucket/key
    bucket: str
    key: str  # decoded
    size: int | None
    event: str  # "ObjectCreated:Put" (S3) or "Object Created" (EventBridge)


class Unrecognised(HeicconvError):
    """A message that is not an S3 notification in any envelope heicconv knows."""


def is_notification_event(event: dict[str, Any]) -> bool:
    """Does the event carry S3 notifications (directly, or through SNS, SQS or EventBridge)?"""
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        return first.get("eventSource") in {"aws:s3", "aws:sqs"} or first.get("EventSource") == "aws:sns"
    return event.get("source") == "aws.s3" and "detail-type" in event


def output_key(key: str, fmt: str, prefix: str) -> str:
    """Where the converted ``key`` goes: ``prefix`` + the key with the output suffix.

    >>> output_key("uploads/IMG 0001 (2).HEIC", "jpeg", "converted/")
    'converted/uploads/IMG 0001 (2).jpg'
    """
    stem, _ = posixpath.splitext(key)
    return f"{prefix}{stem or key}{formats.SUFFIXES[fmt]}"


def skip_reason(obj: _Object, cfg: LambdaSettings) -> str | None:
    """Why an object must not be converted (mostly: it is one of our own outputs), or ``None``."""
    if not obj.event.startswith(("ObjectCreated", "Object Created")):
        return f"event {obj.event} is not an object creation"
    if obj.key.endswith("/"):
        return "a folder marker"
    out_bucket = cfg.output_bucket or obj.bucket
    if obj.bucket == out_bucket and cfg.output_prefix and obj.key.startswith(cfg.output_prefix):
        return f"under the output prefix {cfg.output_prefix!r}"
    over_bucket = cfg.oversize_bucket or cfg.output_bucket
    if obj.bucket == over_bucket and cfg.oversize_prefix and obj.key.startswith(cfg.oversize_prefix):
        return f"under the oversize prefix {cfg.oversize_prefix!r}"
    if obj.key.lower().endswith(formats.SUFFIXES[cfg.format]):
        return f"already has the output suffix {formats.SUFFIXES[cfg.format]}"
    return None


def handle_records(event: dict[str, Any], cfg: LambdaSettings) -> dict[str, Any]:
    """Convert every object the event names; answer per record and with ``batchItemFailures``.

    Raises :class:`Unrecognised`, before converting anything, for a message outside SQS that is no S3
    notification: only a failed invocation makes Lambda retry it and then hand it to the function's
    on-failure destination.
    """
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for item, objects, problem in _groups(event):
        ok = problem is None
        if problem is not None:
            status, code, message = classify(problem)
            log.error("SQS message %s: %s", item, message)
            results.append(
                {"item": item, "status": "failed", "error": {"error": code, "message": message, "status": status}}
            )
        for obj in objects:
            result = _one(obj, cfg)
            results.append(result)
            ok = ok and result["status"] != "failed"
        if not ok and item not in failures:
            failures.append(item)
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failures], "results": results}


def _groups(event: dict[str, Any]) -> list[tuple[str, list[_Object], Unrecognised | None]]:
    """The objects each record names, grouped by the item a retry would resend, and why an SQS message names none."""
    if "Records" not in event:  # EventBridge, straight to the function
        return [(obj.item, [obj], None) for obj in _objects(event, "")]
    groups: list[tuple[str, list[_Object], Unrecognised | None]] = []
    for record in event["Records"]:
        if isinstance(record, dict) and record.get("eventSource") == "aws:sqs":
            item = str(record.get("messageId", ""))
            try:
                groups.append((item, _objects(_json(record.get("body"), "the SQS message body"), item), None))
            except Unrecognised as exc:
                groups.append((item, [], exc))
        else:
            groups += [(obj.item, [obj], None) for obj in _objects({"Records": [record]}, "")]
    return groups


def _objects(message: Any, item: str) -> list[_Object]:
    """The objects an S3 notification names, in any of the envelopes; raises :class:`Unrecognised`."""
    if not isinstance(message, dict):
        raise Unrecognised(f"unrecognised message: expected a JSON object, got {type(message).__name__}")
    records = message.get("Records")
    if isinstance(records, list) and records:
        found: list[_Object] = []
        for record in records:
            if not isinstance(record, dict):
                raise Unrecognised("unrecognised record in an S3 notification: not a JSON object")
            if record.get("eventSource") == "aws:s3":
                found.append(_from_s3(record, item))
            elif record.get("EventSource") == "aws:sns" and isinstance(record.get("Sns"), dict):
                found += _objects(_json(record["Sns"].get("Message"), "the SNS message"), item)
            else:
                source = record.get("eventSource") or record.get("EventSource")
                raise Unrecognised(f"unrecognised record: eventSource {source!r} is not aws:s3, aws:sns or aws:sqs")
        return found
    if message.get("Type") == "Notification" and "Message" in message:  # SNS, delivered to SQS
        return _objects(_json(message["Message"], "the SNS message"), item)
    if message.get("source") == "aws.s3" and isinstance(message.get("detail"), dict):  # EventBridge
        return [_from_eventbridge(message, item)]
    if message.get("Event") == "s3:TestEvent":  # sent once when the notification is set up
        return []
    if message.get("Type") == "SubscriptionConfirmation":
        raise Unrecognised("an SNS SubscriptionConfirmation: confirm the subscription (its SubscribeURL) instead")
    raise Unrecognised(
        "unrecognised message: expected an S3 notification (Records), an SNS notification of one, or an "
        f"EventBridge 'Object Created' event; got keys {sorted(message)[:8]}"
    )


def _json(text: Any, what: str) -> Any:
    if not isinstance(text, str):
        raise Unrecognised(f"unrecognised message: {what} is not a string of JSON")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Unrecognised(f"unrecognised message: {what} is not JSON ({exc}): {text[:80]!r}") from exc


def _from_s3(record: dict[str, Any], item: str) -> _Object:
    s3_part = record.get("s3", {})
    bucket = str(s3_part.get("bucket", {}).get("name", ""))
    key = unquote_plus(str(s3_part.get("object", {}).get("key", "")))  # keys arrive form-encoded: '+' is a space
    size = s3_part.get("object", {}).get("size")
    event = str(record.get("eventName", ""))
    return _Object(item or f"{bucket}/{key}", bucket, key, size if isinstance(size, int) else None, event)


def _from_eventbridge(message: dict[str, Any], item: str) -> _Object:
    detail = message["detail"]
    bucket = str(detail.get("bucket", {}).get("name", ""))
    # EventBridge carries the key as it is, not form-encoded like S3's own notifications.
    key = str(detail.get("object", {}).get("key", ""))
    size = detail.get("object", {}).get("size")
    event = str(message.get("detail-type", ""))
    return _Object(item or f"{bucket}/{key}", bucket, key, size if isinstance(size, int) else None, event)


def _one(obj: _Object, cfg: LambdaSettings) -> dict[str, Any]:
    result: dict[str, Any] = {"bucket": obj.bucket, "key": obj.key}
    reason = skip_reason(obj, cfg)
    if reason:
        return {**result, "status": "skipped", "reason": reason}
    try:
        options, limits = endpoint_settings()
        if obj.size is not None and obj.size > limits.max_input_bytes:
            raise LimitExceededError(f"the object is {obj.size} bytes, above max_input_bytes={limits.max_input_bytes}")
        client = s3()
        data = client.get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read()
        converted = convert_with_report(data, cfg.format, options, limits=limits)
        out_bucket = cfg.output_bucket or obj.bucket
        out_key = output_key(obj.key, cfg.format, cfg.output_prefix)
        client.put_object(
            Bucket=out_bucket, Key=out_key, Body=converted.data, ContentType=formats.MIME_TYPES[converted.format]
        )
    except Exception as exc:
        status, code, message = classify(exc)
        if code == "internal":  # e.g. S3 access denied: the caller (not the public) reads this
            message = f"{type(exc).__name__}: {exc}"
        log.error("s3://%s/%s: %s (%s)", obj.bucket, obj.key, message, code)
        return {**result, "status": "failed", "error": {"error": code, "message": message, "status": status}}
    log.info("s3://%s/%s -> s3://%s/%s (%s)", obj.bucket, obj.key, out_bucket, out_key, converted.backend)
    return {
        **result,
        "status": "converted",
        "output": {
            "bucket": out_bucket,
            "key": out_key,
            "content_type": formats.MIME_TYPES[converted.format],
            "bytes": len(converted.data),
            "backend": converted.backend,
        },
    }
