"""The AWS Lambda handler: ``heicconv.aws_lambda.handler`` (``pip install 'heicconv[lambda]'``).

One function answers three kinds of event:

- S3 ObjectCreated notifications (directly, or through SQS): each object is
  converted and written under ``HEICCONV_LAMBDA_OUTPUT_PREFIX``;
- API Gateway REST, HTTP API and Function URL requests with the image as the
  body: the answer is the converted image, base64-encoded;
- ``GET .../health`` and ``GET .../backends`` through the same HTTP routes.

Everything is configured by environment variables (see ``docs/deployment.md``).
boto3 is imported only when an event needs S3, and the image library only when
the first image is converted, so a cold start pays for neither until it must.
"""

from __future__ import annotations

from typing import Any

from ..config import settings as core_settings
from ..errors import HeicconvError
from .s3_events import handle_records, is_s3_event
from .settings import LambdaSettings, load
from .web_events import handle_http, is_http_event

__all__ = ["LambdaSettings", "handler"]


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point (set the function's handler to ``heicconv.aws_lambda.handler``).

    >>> handler({"httpMethod": "POST", "queryStringParameters": {"format": "bmp"}})["statusCode"]
    400
    """
    if not isinstance(event, dict):
        raise HeicconvError(f"unrecognised event: expected a JSON object, got {type(event).__name__}")
    if is_http_event(event):
        try:
            cfg = load()
        except Exception as exc:
            # A misconfigured function still answers HTTP with JSON, and says what is wrong.
            from ..server import api

            reply = api.misconfigured(exc)
            return {"statusCode": reply.status, "headers": reply.all_headers(), "body": reply.body.decode()}
        return handle_http(event, cfg)
    if is_s3_event(event):
        # A bad configuration raises: the invocation fails loudly and S3/SQS retry it after a fix.
        core_settings()
        return handle_records(event, load())
    raise HeicconvError(
        "unrecognised event: expected an S3 notification (Records), an SQS batch of them, or an API Gateway / "
        f"Function URL request; got keys {sorted(event)[:8]}"
    )
