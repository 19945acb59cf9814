"""S3 ObjectCreated notifications, delivered directly or through SQS.

Each object is read, converted with the configured backend and options, and
written under ``output_prefix`` with the output's Content-Type. One record's
failure never stops the others: the answer lists every record's outcome and,
in the partial-batch shape SQS understands, the records to retry.
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
from ..errors import LimitExceededError
from ..server.api import classify, endpoint_settings
from .aws import s3
from .settings import LambdaSettings

__all__ = ["handle_records", "is_s3_event", "output_key"]

log = logging.getLogger("heicconv.aws_lambda")


@dataclass(frozen=True)
class _Object:
    item: str  # itemIdentifier: the SQS messageId, or bucket/key
    bucket: str
    key: str  # decoded
    size: int | None
    event: str


def is_s3_event(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        return False
    source = records[0].get("eventSource") if isinstance(records[0], dict) else None
    return source in {"aws:s3", "aws:sqs"}


def output_key(key: str, fmt: str, prefix: str) -> str:
    """Where the converted ``key`` goes: ``prefix`` + the key with the output suffix.

    >>> output_key("uploads/IMG 0001 (2).HEIC", "jpeg", "converted/")
    'converted/uploads/IMG 0001 (2).jpg'
    """
    stem, _ = posixpath.splitext(key)
    return f"{prefix}{stem or key}{formats.SUFFIXES[fmt]}"


def skip_reason(obj: _Object, cfg: LambdaSettings) -> str | None:
    """Why an object must not be converted (mostly: it is one of our own outputs), or ``None``."""
    if not obj.event.startswith("ObjectCreated"):
        return f"event {obj.event} is not ObjectCreated"
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
    """Convert every object the event names; answer per record and with ``batchItemFailures``."""
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for item, objects in _objects(event):
        ok = True
        for obj in objects:
            result = _one(obj, cfg)
            results.append(result)
            ok = ok and result["status"] != "failed"
        if not ok and item not in failures:
            failures.append(item)
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failures], "results": results}


def _objects(event: dict[str, Any]) -> list[tuple[str, list[_Object]]]:
    """The objects each record names, grouped by the item a retry would resend."""
    groups: list[tuple[str, list[_Object]]] = []
    for record in event.get("Records", []):
        if record.get("eventSource") == "aws:sqs":
            item = str(record.get("messageId", ""))
            try:
                body = json.loads(record.get("body") or "{}")
            except ValueError:
                log.warning("SQS message %s is not JSON; skipped", item)
                continue
            # S3 sends an s3:TestEvent when a notification is set up; it names no object.
            inner = body.get("Records", []) if isinstance(body, dict) else []
            groups.append((item, [_object(r, item) for r in inner if r.get("eventSource") == "aws:s3"]))
        elif record.get("eventSource") == "aws:s3":
            obj = _object(record, "")
            groups.append((obj.item, [obj]))
    return groups


def _object(record: dict[str, Any], item: str) -> _Object:
    s3_part = record.get("s3", {})
    bucket = str(s3_part.get("bucket", {}).get("name", ""))
    raw_key = str(s3_part.get("object", {}).get("key", ""))
    key = unquote_plus(raw_key)  # keys arrive form-encoded: '+' is a space
    size = s3_part.get("object", {}).get("size")
    return _Object(
        item or f"{bucket}/{key}",
        bucket,
        key,
        size if isinstance(size, int) else None,
        str(record.get("eventName", "")),
    )


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
