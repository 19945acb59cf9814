"""The AWS Lambda handler: ``heicconv.aws_lambda.handler`` (``pip install 'heicconv[lambda]'``).

One function answers four kinds of event:

- S3 "object created" notifications, straight from S3 or through SNS, SQS or
  EventBridge: each object is converted and written under ``HEICCONV_LAMBDA_OUTPUT_PREFIX``;
  a failed object is listed in ``batchItemFailures`` (SQS) or fails the invocation (any other
  sender), so that it is retried, and a retry skips the outputs already written;
- S3 Batch Operations tasks (schema 1.0 and 2.0): the same conversion for every object of a
  manifest, answered with a ``resultCode`` per task for the job's completion report;
- API Gateway REST, HTTP API and Function URL requests with the image as the
  body: the answer is the converted image, base64-encoded;
- ``GET .../health`` and ``GET .../backends`` through the same HTTP routes.

Everything is configured by environment variables (see ``docs/deployment.md``).
boto3 is imported only when an event needs S3, and the image library only when
the first image is converted, so a cold start pays for neither until it must. What
the start does check is that the package was built for this Python (:mod:`.package`).
"""

from __future__ import annotations

import logging
from typing import Any

from ..config import settings as core_settings
from ..errors import BackendUnavailableError, HeicconvError
from .batch_operations import handle_batch, is_batch_event
from .invocation import handling
from .package import build_mismatch
from .s3_events import handle_records, is_notification_event
from .settings import LambdaSettings, load
from .web_events import handle_http, is_http_event

__all__ = ["BUILD_MISMATCH", "LambdaSettings", "handler"]

#: Why the deployment package cannot run here (built for another Python or CPU), found at init; or ``None``.
BUILD_MISMATCH = build_mismatch()
if BUILD_MISMATCH:
    logging.getLogger("heicconv.aws_lambda").error("%s", BUILD_MISMATCH)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point (set the function's handler to ``heicconv.aws_lambda.handler``).

    Every line logged meanwhile carries ``context.aws_request_id`` as its ``request_id``; once the
    invocation has converted, its figures are printed as CloudWatch EMF (:mod:`.invocation`).

    >>> handler({"httpMethod": "POST", "queryStringParameters": {"format": "bmp"}})["statusCode"]
    400
    """
    with handling(context, _metrics_settings):
        return _handle(event)


def _metrics_settings() -> tuple[bool, str]:
    cfg = load()
    return cfg.metrics, cfg.metrics_namespace


def _handle(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise HeicconvError(f"unrecognised event: expected a JSON object, got {type(event).__name__}")
    if is_http_event(event):
        from ..api import web as api

        if BUILD_MISMATCH:
            return _json_answer(api.reply_for_error(BackendUnavailableError(BUILD_MISMATCH)))
        try:
            cfg = load()
        except Exception as exc:  # a misconfigured function still answers HTTP with JSON, and says what is wrong
            return _json_answer(api.misconfigured(exc))
        return handle_http(event, cfg)
    batch = is_batch_event(event)
    if batch or is_notification_event(event):
        if BUILD_MISMATCH:
            raise BackendUnavailableError(BUILD_MISMATCH)
        # A bad configuration raises: the invocation fails loudly and S3/SQS retry it after a fix.
        core_settings()
        return handle_batch(event, load()) if batch else handle_records(event, load())
    raise HeicconvError(
        "unrecognised event: expected an S3 notification (straight from S3, or through SNS, SQS or EventBridge), "
        f"an S3 Batch Operations task, or an API Gateway / Function URL request; got keys {sorted(event)[:8]}"
    )


def _json_answer(reply: Any) -> dict[str, Any]:
    return {"statusCode": reply.status, "headers": reply.all_headers(), "body": reply.body.decode()}
