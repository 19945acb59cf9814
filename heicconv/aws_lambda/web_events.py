"""HTTP requests through API Gateway REST (payload 1.0), HTTP API and Function URLs (2.0).

The body arrives base64-encoded and is decoded here with ``base64.b64decode``
(a decoder that assumes UTF-8 text would corrupt image bytes). The request is
answered by the same code as the HTTP service (:mod:`heicconv.api.web`), then
wrapped in the proxy response shape; a response too large for Lambda is
answered 413 or, if configured, stored in S3 and answered with a presigned URL.

A direct Invoke from heicconv's ``lambda`` backend may carry staged objects
(:data:`heicconv.backends.remote.STAGING_KEY`): a presigned URL to read the
input from, and one to write an output to that is too large to answer with.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from ..api import web as api
from ..api.calls import list_backends
from ..backends.remote import STAGING_KEY
from ..options import formats
from .aws import s3
from .invocation import convert, log_fields
from .settings import LambdaSettings

__all__ = ["handle_http", "is_http_event"]

log = logging.getLogger("heicconv.aws_lambda")

STAGED_IO_TIMEOUT = 60.0  # seconds for reading a staged input or writing a staged output


def is_http_event(event: dict[str, Any]) -> bool:
    return "httpMethod" in event or (event.get("version") == "2.0" and "requestContext" in event)


def handle_http(event: dict[str, Any], cfg: LambdaSettings) -> dict[str, Any]:
    """Answer one proxy request; never raises, errors are JSON replies. Logs one line, as the service does."""
    method, path = _method_path(event)
    try:
        reply = _route(event, cfg, method, path)
    except api.RequestRejected as exc:
        reply = exc.reply
    except Exception as exc:
        reply = api.reply_for_error(exc)
    fields = {"method": method, "path": path, **log_fields(), "status": reply.status}
    if reply.status == 200 and "bytes_out" in fields:
        fields["image_size"] = reply.headers.get("X-Image-Size")
    level = logging.ERROR if reply.status >= 500 else logging.INFO
    log.log(level, "%s %s %d", method, path, reply.status, extra={"fields": fields})
    return _respond(reply, cfg)


def _method_path(event: dict[str, Any]) -> tuple[str, str]:
    if event.get("version") == "2.0":
        method = str(event.get("requestContext", {}).get("http", {}).get("method", ""))
        path = str(event.get("rawPath") or "/")
    else:
        method = str(event.get("httpMethod", ""))
        path = str(event.get("path") or "/")
    return method.upper(), path


def _route(event: dict[str, Any], cfg: LambdaSettings, method: str, path: str) -> api.Reply:
    if method == "GET" and path.rstrip("/").endswith("/health"):
        return api.json_reply(200, api.health())
    if method == "GET" and path.rstrip("/").endswith("/backends"):
        return api.json_reply(200, {"backends": [s.to_dict() for s in list_backends()]})
    if method != "POST":
        return api.error_reply(405, "method_not_allowed", f"{method} {path}: POST an image to convert it")
    headers = _headers(event)
    query = {str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()}
    body = event.get("body") or ""
    staging = _staging(event)
    if "input" in staging:
        data = _staged_input(staging["input"])
    elif event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return api.error_reply(400, "bad_request", "the body is marked isBase64Encoded but is not valid base64")
    else:
        # Without binaryMediaTypes, API Gateway passes text: an image sent this way is already damaged.
        data = body.encode("utf-8") if isinstance(body, str) else b""
    try:
        request = api.parse_request(query, headers, data, default_format=cfg.format)
    except api.RequestRejected as exc:
        return exc.reply
    except Exception as exc:  # a bad option value (ConfigError: 400)
        return api.reply_for_error(exc)
    try:
        result = convert(request.data, request.fmt, request.options, request.limits)
    except Exception as exc:
        return api.reply_for_error(exc)
    reply = api.reply_for_result(result, request)
    if reply.status == 200 and _size(reply) > cfg.max_response_bytes:
        if "output" in staging:
            return _staged_output(reply, staging["output"])
        return _oversize(reply, cfg)
    return reply


def _staging(event: dict[str, Any]) -> dict[str, str]:
    """The presigned URLs a direct Invoke gave (only http and https: never a local file)."""
    raw = event.get(STAGING_KEY)
    if raw is None:
        return {}
    urls = {k: v for k, v in raw.items() if k in ("input", "output")} if isinstance(raw, dict) else {}
    if not urls or not all(isinstance(u, str) and u.startswith(("https://", "http://")) for u in urls.values()):
        raise api.RequestRejected(
            api.error_reply(400, "bad_request", f"{STAGING_KEY}: expected presigned http(s) URLs for input and output")
        )
    return urls


def _staged_input(url: str) -> bytes:
    from ..backends.wire import Endpoint, exchange, target_of  # only a staged request imports the HTTP client

    answer = exchange(Endpoint.of(url), "GET", target_of(url), None, {}, STAGED_IO_TIMEOUT)
    if answer.status != 200:
        raise api.RequestRejected(
            api.error_reply(400, "bad_request", f"the staged input could not be read: S3 answered {answer.status}")
        )
    return answer.body


def _staged_output(reply: api.Reply, url: str) -> api.Reply:
    """Write the image to the caller's presigned URL and answer where it is."""
    from ..backends.wire import Endpoint, exchange, target_of

    put = exchange(Endpoint.of(url), "PUT", target_of(url), reply.body, {}, STAGED_IO_TIMEOUT)
    if not 200 <= put.status < 300:
        text = put.body[:200].decode("utf-8", "replace")
        return api.error_reply(
            502, "staging_failed", f"the output could not be staged: S3 answered {put.status} {text}"
        )
    payload = {"staged": "output", "bytes": len(reply.body), "content_type": reply.content_type}
    return api.json_reply(200, payload, reply.headers)


def _headers(event: dict[str, Any]) -> dict[str, str]:
    """Lower-case header names; payload 1.0 may only have multiValueHeaders."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if str(name).lower() not in headers and values:
            headers[str(name).lower()] = ", ".join(str(v) for v in values)
    return headers


def _size(reply: api.Reply) -> int:
    """Bytes of the proxy response once the body is base64 (4 per 3) and wrapped in JSON."""
    envelope = len(json.dumps({"statusCode": reply.status, "headers": reply.all_headers(), "isBase64Encoded": True}))
    return envelope + 16 + 4 * ((len(reply.body) + 2) // 3)


def _oversize(reply: api.Reply, cfg: LambdaSettings) -> api.Reply:
    size = len(reply.body)
    if cfg.oversize != "s3":
        return api.error_reply(
            413,
            "response_too_large",
            f"the converted image is {size} bytes, too large for a Lambda response of at most "
            f"{cfg.max_response_bytes} bytes once base64-encoded; ask for a smaller one (max_size=..., a lower "
            "quality, format=webp or avif), or set HEICCONV_LAMBDA_OVERSIZE=s3 to receive a download URL",
        )
    import uuid  # only here: it pulls in `platform`, a cost every cold start would pay

    bucket = cfg.oversize_bucket or cfg.output_bucket
    fmt = next(f for f, mime in formats.MIME_TYPES.items() if mime == reply.content_type)
    key = f"{cfg.oversize_prefix}{uuid.uuid4().hex}{formats.SUFFIXES[fmt]}"
    client = s3()
    client.put_object(Bucket=bucket, Key=key, Body=reply.body, ContentType=reply.content_type)
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=cfg.url_expires)
    payload = {
        "url": url,
        "expires_in": cfg.url_expires,
        "bucket": bucket,
        "key": key,
        "content_type": reply.content_type,
        "bytes": size,
    }
    return api.json_reply(200, payload, {**reply.headers, "Location": url})


def _respond(reply: api.Reply, cfg: LambdaSettings) -> dict[str, Any]:
    if reply.content_type == "application/json":
        return {"statusCode": reply.status, "headers": reply.all_headers(), "body": reply.body.decode()}
    return {
        "statusCode": reply.status,
        "headers": reply.all_headers(),
        "body": base64.b64encode(reply.body).decode("ascii"),
        "isBase64Encoded": True,
    }
