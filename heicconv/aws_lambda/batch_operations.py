"""S3 Batch Operations: a bucket-wide backfill, one ``LambdaInvoke`` task per object of a manifest.

Amazon S3 User Guide, "Invoke AWS Lambda function" (checked 2026-11):

- schema ``1.0``: ``{"invocationSchemaVersion": "1.0", "invocationId", "job": {"id"},
  "tasks": [{"taskId", "s3Key", "s3VersionId", "s3BucketArn"}]}``;
- schema ``2.0``: the bucket as ``s3Bucket`` (a name, not an ARN) and ``job.userArguments``, at most
  10 string pairs set when the job is created; heicconv reads the output ``format``, the
  ``output_bucket`` and ``output_prefix``, and any :class:`heicconv.Options` field (``quality``,
  ``max_size``, ``metadata``, ...) from them;
- the answer: ``{"invocationSchemaVersion", "treatMissingKeysAs", "invocationId",
  "results": [{"taskId", "resultCode", "resultString"}]}``, where ``resultCode`` is
  ``Succeeded``, ``TemporaryFailure`` (Batch Operations tries the task again) or ``PermanentFailure``;
  ``resultString`` goes into the job's completion report.

Keys arrive URL-encoded, as in S3's notifications, and are decoded the same way. Each object then
takes the one path every S3 route shares (:func:`.s3_objects.convert_object`), so a backfilled
photo gets the same output key and bytes as one converted on upload.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import unquote_plus

from .. import Options
from ..api.web import endpoint_settings
from ..errors import ConfigError, HeicconvError, UnsupportedFormatError
from ..options import field_from_text, formats
from .s3_objects import Outcome, S3Object, convert_object
from .settings import LambdaSettings

__all__ = ["SCHEMA_VERSIONS", "USER_ARGUMENTS", "handle_batch", "is_batch_event"]

SCHEMA_VERSIONS = ("1.0", "2.0")
_OPTION_FIELDS = tuple(f.name for f in dataclasses.fields(Options))
#: The ``userArguments`` keys heicconv reads (schema 2.0); any other is a ``PermanentFailure``, never ignored.
USER_ARGUMENTS = ("format", "output_bucket", "output_prefix", *_OPTION_FIELDS)


def is_batch_event(event: dict[str, Any]) -> bool:
    return "invocationSchemaVersion" in event and "tasks" in event


def handle_batch(event: dict[str, Any], cfg: LambdaSettings) -> dict[str, Any]:
    """Convert each task's object; answer one result per task in the shape Batch Operations reads.

    >>> answer = handle_batch({"invocationSchemaVersion": "3.0", "invocationId": "i", "tasks": [{"taskId": "t"}]},
    ...                       LambdaSettings())
    >>> answer["results"][0]["resultCode"], answer["results"][0]["resultString"][:40]
    ('PermanentFailure', 'unsupported invocationSchemaVersion 3.0:')
    """
    version = str(event.get("invocationSchemaVersion", ""))
    tasks = [t for t in event.get("tasks") or [] if isinstance(t, dict)]
    try:
        if version not in SCHEMA_VERSIONS:
            raise HeicconvError(
                f"unsupported invocationSchemaVersion {version}: heicconv reads {' and '.join(SCHEMA_VERSIONS)}"
            )
        job = event.get("job")
        cfg, options = _with_arguments(cfg, (job.get("userArguments") if isinstance(job, dict) else None) or {})
    except HeicconvError as exc:  # every task fails the same way, and the report says why
        results = [_result(t, "PermanentFailure", str(exc)) for t in tasks]
    else:
        results = [_run(task, version, cfg, options) for task in tasks]
    return {
        "invocationSchemaVersion": version,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event.get("invocationId", ""),
        "results": results,
    }


def _with_arguments(cfg: LambdaSettings, arguments: Any) -> tuple[LambdaSettings, Options | None]:
    """The settings and options a job's ``userArguments`` ask for over the function's own; raises ``ConfigError``."""
    if not isinstance(arguments, dict):
        raise ConfigError("job.userArguments must be a JSON object of strings")
    where = "the job's userArguments"
    unknown = sorted(set(arguments) - set(USER_ARGUMENTS))
    if unknown:
        raise ConfigError(
            f"unknown userArguments {', '.join(unknown)} (in {where}); known: {', '.join(USER_ARGUMENTS)}"
        )
    text = {str(k): str(v) for k, v in arguments.items()}
    changes: dict[str, Any] = {}
    if "format" in text:
        try:
            changes["format"] = formats.normalize(text["format"])
        except UnsupportedFormatError as exc:
            raise ConfigError(f"format: {exc} (in {where})") from exc
    if "output_bucket" in text:
        changes["output_bucket"] = text["output_bucket"].strip()
    if "output_prefix" in text:
        changes["output_prefix"] = text["output_prefix"].lstrip("/")
    options: Options | None = None
    asked = {name: field_from_text(name, text[name]) for name in _OPTION_FIELDS if name in text}
    if asked:
        base = endpoint_settings()[0]
        options = Options.from_mapping({**{f: getattr(base, f) for f in _OPTION_FIELDS}, **asked}, where)
    return dataclasses.replace(cfg, **changes), options


def _run(task: dict[str, Any], version: str, cfg: LambdaSettings, options: Options | None) -> dict[str, Any]:
    if version == "1.0":
        bucket = str(task.get("s3BucketArn", "")).rpartition(":::")[2]
    else:
        bucket = str(task.get("s3Bucket", ""))
    key = unquote_plus(str(task.get("s3Key", "")))
    if not bucket or not key:
        return _result(task, "PermanentFailure", "the task names no bucket or no key")
    obj = S3Object(str(task.get("taskId", "")), bucket, key, version=task.get("s3VersionId") or None)
    outcome = convert_object(obj, cfg, options=options)
    code = "PermanentFailure"
    if not outcome.failed:
        code = "Succeeded"
    elif outcome.transient:
        code = "TemporaryFailure"
    return _result(task, code, _describe(outcome))


def _describe(outcome: Outcome) -> str:
    """The ``resultString``: the outcome as compact JSON (the report already names bucket and key)."""
    d = outcome.to_dict()
    del d["bucket"], d["key"]
    return json.dumps(d, separators=(",", ":"))


def _result(task: dict[str, Any], code: str, text: str) -> dict[str, Any]:
    return {"taskId": task.get("taskId", ""), "resultCode": code, "resultString": text}
