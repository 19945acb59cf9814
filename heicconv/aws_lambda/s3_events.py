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

Outside SQS (S3, SNS or EventBridge straight to the function: asynchronous invocations, whose
answer nobody reads) a failed object fails the invocation: :class:`FailedRecords` is raised after
every object was tried, so Lambda retries the event and, once its retries are spent, hands it to the
function's on-failure destination. That holds for permanent failures too (a damaged upload): Lambda
retries an asynchronous event at most twice, so nothing retries forever, and the photo reaches the
destination instead of one log line. On the retry, objects whose output was written are skipped
(:func:`.s3_objects.convert_object` compares the source's ETag recorded on the output).

Reading the envelopes is shared with the queue worker (:func:`objects_in_body` reads one SQS
message body); what happens to each object is :func:`.s3_objects.convert_object`, shared by every route.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote_plus

from ..api.web import classify
from ..errors import HeicconvError
from .s3_objects import Outcome, S3Object, convert_object
from .settings import LambdaSettings

__all__ = ["FailedRecords", "Unrecognised", "handle_records", "is_notification_event", "objects_in_body"]

log = logging.getLogger("heicconv.aws_lambda")


class Unrecognised(HeicconvError):
    """A message that is not an S3 notification in any envelope heicconv knows."""


class FailedRecords(HeicconvError):
    """Objects of an invocation from S3, SNS or EventBridge failed; ``answer`` is what the handler would have answered.

    Raised so that the invocation fails: Lambda retries it, then hands it to the on-failure destination.
    """

    def __init__(self, message: str, answer: dict[str, Any]) -> None:
        super().__init__(message)
        self.answer = answer


def is_notification_event(event: dict[str, Any]) -> bool:
    """Does the event carry S3 notifications (directly, or through SNS, SQS or EventBridge), or S3's test event?"""
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        return first.get("eventSource") in {"aws:s3", "aws:sqs"} or first.get("EventSource") == "aws:sns"
    return (event.get("source") == "aws.s3" and "detail-type" in event) or _is_test_event(event)


def _is_test_event(message: dict[str, Any]) -> bool:
    """S3's ``s3:TestEvent``, sent once when a notification is set up: it names no object."""
    return message.get("Service") == "Amazon S3" and message.get("Event") == "s3:TestEvent"


def handle_records(event: dict[str, Any], cfg: LambdaSettings) -> dict[str, Any]:
    """Convert every object the event names; answer per record and with ``batchItemFailures``.

    Outside SQS, raises :class:`Unrecognised`, before converting anything, for a message that is no S3
    notification, and :class:`FailedRecords`, after trying every object, when one failed: only a failed
    invocation makes Lambda retry it and then hand it to the function's on-failure destination.
    """
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    failed: list[Outcome] = []
    for item, objects, problem in _groups(event):
        ok = problem is None
        if problem is not None:
            status, code, message = classify(problem)
            log.error("SQS message %s: %s", item, message)
            results.append(
                {"item": item, "status": "failed", "error": {"error": code, "message": message, "status": status}}
            )
        for obj in objects:
            outcome = convert_object(obj, cfg)
            results.append(outcome.to_dict())
            ok = ok and not outcome.failed
            if outcome.status == "skipped":
                log.info("s3://%s/%s skipped: %s", obj.bucket, obj.key, outcome.reason)
            if outcome.failed:
                failed.append(outcome)
        if not ok and item not in failures:
            failures.append(item)
    answer = {"batchItemFailures": [{"itemIdentifier": i} for i in failures], "results": results}
    if failed and not _from_sqs(event):
        raise FailedRecords(_failure_summary(failed, len(results)), answer) from failed[0].cause
    return answer


def _from_sqs(event: dict[str, Any]) -> bool:
    """Did SQS deliver the event? Its answer's ``batchItemFailures`` are then read; any other sender ignores it."""
    records = event.get("Records")
    return isinstance(records, list) and any(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)


def _failure_summary(failed: list[Outcome], total: int) -> str:
    """What the on-failure destination's ``errorMessage`` says: which objects failed and why (the first five)."""
    shown = [
        f"s3://{o.bucket}/{o.key}: {o.error['message']} ({o.error['error']}{', transient' if o.transient else ''})"
        for o in failed[:5]
    ]
    more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
    return (
        f"{len(failed)} of {total} object(s) failed, so the invocation fails for Lambda to retry it "
        f"(objects already written are skipped then): {'; '.join(shown)}{more}"
    )


def _groups(event: dict[str, Any]) -> list[tuple[str, list[S3Object], Unrecognised | None]]:
    """The objects each record names, grouped by the item a retry would resend, and why an SQS message names none."""
    if "Records" not in event:  # EventBridge or S3's test event, straight to the function
        return [(obj.item, [obj], None) for obj in _objects(event, "")]
    groups: list[tuple[str, list[S3Object], Unrecognised | None]] = []
    for record in event["Records"]:
        if isinstance(record, dict) and record.get("eventSource") == "aws:sqs":
            item = str(record.get("messageId", ""))
            try:
                groups.append((item, objects_in_body(record.get("body"), item), None))
            except Unrecognised as exc:
                groups.append((item, [], exc))
        else:
            groups += [(obj.item, [obj], None) for obj in _objects({"Records": [record]}, "")]
    return groups


def objects_in_body(body: Any, item: str) -> list[S3Object]:
    """The objects one SQS message body names (an S3 notification, an SNS notification of one, or an
    EventBridge event); raises :class:`Unrecognised` for anything else.

    >>> objects_in_body('{"Service": "Amazon S3", "Event": "s3:TestEvent"}', "m-1")
    []
    """
    return _objects(_json(body, "the SQS message body"), item)


def _objects(message: Any, item: str) -> list[S3Object]:
    """The objects an S3 notification names, in any of the envelopes; raises :class:`Unrecognised`."""
    if not isinstance(message, dict):
        raise Unrecognised(f"unrecognised message: expected a JSON object, got {type(message).__name__}")
    records = message.get("Records")
    if isinstance(records, list) and records:
        found: list[S3Object] = []
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
    if _is_test_event(message):
        log.info("s3:TestEvent for bucket %s: ignored (names no object)", message.get("Bucket", "?"))
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


def _from_s3(record: dict[str, Any], item: str) -> S3Object:
    s3_part = record.get("s3", {})
    bucket = str(s3_part.get("bucket", {}).get("name", ""))
    key = unquote_plus(str(s3_part.get("object", {}).get("key", "")))  # keys arrive form-encoded: '+' is a space
    size = s3_part.get("object", {}).get("size")
    event = str(record.get("eventName", ""))
    return S3Object(item or f"{bucket}/{key}", bucket, key, size if isinstance(size, int) else None, event)


def _from_eventbridge(message: dict[str, Any], item: str) -> S3Object:
    detail = message["detail"]
    bucket = str(detail.get("bucket", {}).get("name", ""))
    # EventBridge carries the key as it is, not form-encoded like S3's own notifications.
    key = str(detail.get("object", {}).get("key", ""))
    size = detail.get("object", {}).get("size")
    event = str(message.get("detail-type", ""))
    return S3Object(item or f"{bucket}/{key}", bucket, key, size if isinstance(size, int) else None, event)
