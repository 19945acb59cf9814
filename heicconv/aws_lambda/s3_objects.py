"""One S3 object, converted: the step every S3 route shares.

S3 notifications to the Lambda handler (:mod:`.s3_events`), S3 Batch Operations tasks
(:mod:`.batch_operations`) and the queue worker (:mod:`heicconv.aws_lambda.queue_worker`) all name objects
in their own way and then hand each one to :func:`convert_object`. It applies the loop guard
(:func:`skip_reason`), checks the size (from the event, then from a HEAD, before any byte is read),
skips an output already written from the same source, reads the object, converts it with the
configured backend, options and limits, and writes it under :func:`output_key` with the output's
Content-Type. So one photo gives the same output key and the same bytes on every route.

Every route retries: Lambda's asynchronous invocations, SQS redelivery, Batch Operations'
``TemporaryFailure``. An output records its source in its S3 metadata (:data:`SOURCE_ETAG`, the
source's ETag, and :data:`OPTIONS_DIGEST`, a digest of the format and options); when a retry finds the
output with both equal, the object is skipped rather than converted and written a second time.

The conversion itself is a parameter: the Lambda handler converts in its own process, while the
queue worker passes its :class:`heicconv.api.workers.IsolatedConverter`, so that a conversion runs
under a timeout and a memory cap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import Limits, Options, Result
from ..api.web import classify, endpoint_settings
from ..errors import LimitExceededError, TimeoutError
from ..options import formats
from .aws import s3
from .invocation import convert as counted
from .settings import LambdaSettings

__all__ = [
    "OPTIONS_DIGEST",
    "SOURCE_ETAG",
    "Convert",
    "Outcome",
    "S3Object",
    "convert_object",
    "is_transient",
    "options_digest",
    "output_key",
    "skip_reason",
]

log = logging.getLogger("heicconv.aws_lambda")

#: How an object's bytes become a :class:`heicconv.Result` (``heicconv.convert_with_report``'s arguments).
Convert = Callable[[bytes, str, Options, Limits], Result]

#: S3 error codes that say "try again later", not "this request is wrong".
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable", "InternalError"}
)
#: botocore's network errors (matched by name: botocore is imported only when S3 is used).
_NETWORK_ERRORS = frozenset(
    {"ConnectionError", "HTTPClientError", "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"}
)
#: The output's S3 metadata (``x-amz-meta-...``): the ETag of the source it was converted from ...
SOURCE_ETAG = "heicconv-source-etag"
#: ... and :func:`options_digest` of the format and options it was converted with.
OPTIONS_DIGEST = "heicconv-options"


@dataclass(frozen=True)
class S3Object:
    """An object a notification, a queue message or a Batch Operations task names."""

    item: str  # what a retry resends: the SQS messageId, the Batch Operations taskId, or bucket/key
    bucket: str
    key: str  # decoded
    size: int | None = None
    event: str = "ObjectCreated:Put"  # "ObjectCreated:*" (S3), "Object Created" (EventBridge)
    version: str | None = None  # a Batch Operations manifest may name a version


@dataclass(frozen=True)
class Outcome:
    """What became of one object: ``converted``, ``skipped`` (with a reason) or ``failed`` (with an error)."""

    bucket: str
    key: str
    status: str
    reason: str = ""
    output: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] = field(default_factory=dict)
    transient: bool = False  # a failure that may pass on its own (throttling, a timeout)
    cause: BaseException | None = field(default=None, repr=False, compare=False)  # what made it fail

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        """The record in the Lambda handler's ``results``."""
        d: dict[str, Any] = {"bucket": self.bucket, "key": self.key, "status": self.status}
        if self.reason:
            d["reason"] = self.reason
        if self.output:
            d["output"] = self.output
        if self.error:
            d["error"] = self.error
        return d


def output_key(key: str, fmt: str, prefix: str) -> str:
    """Where the converted ``key`` goes: ``prefix`` + the key with the output suffix.

    >>> output_key("uploads/IMG 0001 (2).HEIC", "jpeg", "converted/")
    'converted/uploads/IMG 0001 (2).jpg'
    """
    stem, _ = posixpath.splitext(key)
    return f"{prefix}{stem or key}{formats.SUFFIXES[fmt]}"


def skip_reason(obj: S3Object, cfg: LambdaSettings) -> str | None:
    """Why an object must not be converted (mostly: it is one of our own outputs), or ``None``.

    >>> skip_reason(S3Object("i", "photos", "converted/a.jpg"), LambdaSettings())
    "under the output prefix 'converted/'"
    """
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


def options_digest(fmt: str, options: Options) -> str:
    """A short digest of the output format and every option: an output written with others is converted again.

    >>> options_digest("jpeg", Options(quality=80)) == options_digest("jpeg", Options(quality=80))
    True
    >>> options_digest("jpeg", Options(quality=80)) == options_digest("jpeg", Options(quality=60))
    False
    """
    values = [fmt, *(f"{f.name}={getattr(options, f.name)!r}" for f in dataclasses.fields(Options))]
    return hashlib.sha256("\n".join(values).encode()).hexdigest()[:16]


def is_transient(exc: BaseException) -> bool:
    """Might the same attempt succeed later? Throttling, S3's 5xx, network errors and timeouts do; bad input does not.

    >>> from heicconv.errors import DecodeError
    >>> is_transient(TimeoutError("slow")), is_transient(DecodeError("truncated"))
    (True, False)
    """
    if isinstance(exc, (TimeoutError, ConnectionError)):  # heicconv's TimeoutError is a builtin one too
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        code = str(response.get("Error", {}).get("Code", ""))
        return code in _TRANSIENT_CODES or _status(exc) in (429, 500, 502, 503, 504)
    return any(k.__module__.startswith("botocore") and k.__name__ in _NETWORK_ERRORS for k in type(exc).__mro__)


def _status(exc: BaseException) -> int:
    """The HTTP status of botocore's ``ClientError``; 0 for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def convert_object(
    obj: S3Object,
    cfg: LambdaSettings,
    *,
    options: Options | None = None,
    convert: Convert | None = None,
) -> Outcome:
    """Convert one object and write the output; never raises, a failure is an :class:`Outcome` too.

    ``options`` default to the configured ones with the endpoint defaults
    (:func:`heicconv.api.web.endpoint_settings`); ``convert`` defaults to
    ``heicconv.convert_with_report`` in this process, counted for the Lambda invocation under way
    (:func:`.invocation.convert`).
    """
    reason = skip_reason(obj, cfg)
    if reason:
        return Outcome(obj.bucket, obj.key, "skipped", reason=reason)
    out_bucket = cfg.output_bucket or obj.bucket
    out_key = output_key(obj.key, cfg.format, cfg.output_prefix)
    try:
        configured, limits = endpoint_settings()
        options = configured if options is None else options
        if obj.size is not None:
            _check_size(obj.size, limits)
        client = s3()
        version = {"VersionId": obj.version} if obj.version else {}
        # The size before a byte is read: a Batch Operations task, or an SQS message written by hand, gives none.
        head = client.head_object(Bucket=obj.bucket, Key=obj.key, **version)
        _check_size(int(head["ContentLength"]), limits)
        stamp = {SOURCE_ETAG: _etag(head), OPTIONS_DIGEST: options_digest(cfg.format, options)}
        if _written_from(client, out_bucket, out_key, stamp):
            reason = f"already converted from this source (ETag {stamp[SOURCE_ETAG]}) with these options"
            return Outcome(obj.bucket, obj.key, "skipped", reason=reason, output={"bucket": out_bucket, "key": out_key})
        got = client.get_object(Bucket=obj.bucket, Key=obj.key, **version)
        data = got["Body"].read()
        stamp[SOURCE_ETAG] = _etag(got)  # the bytes converted, should the object have changed since the HEAD
        converted = (convert or counted)(data, cfg.format, options, limits)
        content_type = formats.MIME_TYPES[converted.format]
        client.put_object(Bucket=out_bucket, Key=out_key, Body=converted.data, ContentType=content_type, Metadata=stamp)
    except Exception as exc:
        status, code, message = classify(exc)
        if code == "internal":  # e.g. S3 access denied: the operator (not the public) reads this
            message = _s3_message(exc)
        log.error("s3://%s/%s: %s (%s)", obj.bucket, obj.key, message, code)
        error = {"error": code, "message": message, "status": status}
        return Outcome(obj.bucket, obj.key, "failed", error=error, transient=is_transient(exc), cause=exc)
    log.info("s3://%s/%s -> s3://%s/%s (%s)", obj.bucket, obj.key, out_bucket, out_key, converted.backend)
    output = {
        "bucket": out_bucket,
        "key": out_key,
        "content_type": content_type,
        "bytes": len(converted.data),
        "backend": converted.backend,
    }
    return Outcome(obj.bucket, obj.key, "converted", output=output)


def _check_size(size: int, limits: Limits) -> None:
    if size > limits.max_input_bytes:
        raise LimitExceededError(
            f"the object is {size:,} bytes, over the limit of {limits.max_input_bytes:,} (max_input_bytes)"
        )


def _etag(response: dict[str, Any]) -> str:
    return str(response.get("ETag", "")).strip('"')


def _written_from(client: Any, bucket: str, key: str, stamp: dict[str, str]) -> bool:
    """Is the output there, written from the same source with the same format and options?

    Reading it needs ``s3:GetObject`` on the output (and ``s3:ListBucket``, else a missing key answers 403, not
    404). Without them the object is converted again, as before: same key, same bytes, nothing lost.
    """
    try:
        metadata = client.head_object(Bucket=bucket, Key=key).get("Metadata") or {}
    except Exception as exc:
        if _status(exc) == 404:
            return False
        if _status(exc) == 403:
            if bucket not in _unreadable_outputs:
                _unreadable_outputs.add(bucket)
                log.warning(
                    "s3://%s/%s: cannot read the output (403): give the function s3:GetObject and s3:ListBucket "
                    "on it to skip outputs a retry finds written; until then they are converted again",
                    bucket, key,
                )  # fmt: skip
            return False
        raise
    return all(metadata.get(name) == value for name, value in stamp.items())


_unreadable_outputs: set[str] = set()  # buckets the warning above was given for, once per process


def _s3_message(exc: BaseException) -> str:
    """What the operator reads about an S3 failure; a HEAD's answer has no body, so its 404 and 403 are named here."""
    message = f"{type(exc).__name__}: {exc}"
    if _status(exc) == 404 and "NoSuchKey" not in message:
        return f"NoSuchKey: the object does not exist ({message})"
    if _status(exc) == 403 and "AccessDenied" not in message:
        hint = "the function needs s3:GetObject on it; without s3:ListBucket a missing key is 403 too"
        return f"AccessDenied: {hint} ({message})"
    return message
