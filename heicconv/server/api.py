"""What a conversion request means over HTTP, independent of the transport.

The HTTP service (:mod:`heicconv.server.app`) and the Lambda handler
(:mod:`heicconv.aws_lambda`) both turn their request into query parameters,
lower-case headers and a body, and hand them to :func:`convert_request`; so the
same request gives the same answer, status code and error body on both routes.
This module imports only the standard library and heicconv.

>>> reply = convert_request({"format": "bmp"}, {}, b"")
>>> reply.status, json.loads(reply.body)["error"]
(400, 'bad_request')
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import formats
from ..config import settings
from ..core import convert_with_report
from ..errors import (
    BackendUnavailableError,
    ConfigError,
    DecodeError,
    EncodeError,
    LimitExceededError,
    TimeoutError,
    UnsupportedFormatError,
)
from ..options import Options, field_from_text

__all__ = [
    "Reply",
    "Request",
    "RequestRejected",
    "classify",
    "convert_request",
    "error_reply",
    "json_reply",
    "parse_request",
    "reply_for_error",
    "run",
]

log = logging.getLogger("heicconv.server")

#: Query parameters that set :class:`heicconv.Options` fields.
OPTION_PARAMS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Options))

# (status, error code) for each heicconv error, most specific first.
_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (LimitExceededError, 413, "too_large"),
    (UnsupportedFormatError, 415, "unsupported_format"),
    (DecodeError, 422, "undecodable"),
    (BackendUnavailableError, 503, "backend_unavailable"),
    (TimeoutError, 504, "timeout"),
    (EncodeError, 500, "encode_failed"),
    (ConfigError, 500, "misconfigured"),
)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)

    def all_headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, **self.headers}


@dataclass(frozen=True)
class Request:
    """A validated conversion request."""

    data: bytes
    fmt: str
    options: Options


class RequestRejected(Exception):
    """Internal control flow: the request is malformed; carries the reply to send."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body.decode("utf-8", "replace"))
        self.reply = reply


def json_reply(status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))


def error_reply(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """The JSON error body every route answers with: ``{"error", "message", "status"}``."""
    return json_reply(status, {"error": code, "message": message, "status": status}, headers)


def classify(exc: BaseException) -> tuple[int, str, str]:
    """``(status, code, message)`` for an exception; an unexpected one is logged and its details kept out.

    >>> classify(DecodeError("truncated"))
    (422, 'undecodable', 'truncated')
    """
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            if status >= 500:
                log.error("conversion failed: %s", exc, exc_info=exc)
            return status, code, str(exc)
    log.error("unexpected error", exc_info=exc)
    return 500, "internal", "internal error; see the log"


def reply_for_error(exc: BaseException) -> Reply:
    """Map an exception to its JSON error reply (see :func:`classify`)."""
    return error_reply(*classify(exc))


def parse_request(
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    default_format: str = "jpeg",
    base: Options | None = None,
) -> Request:
    """Read the output format, options and image from a request, or raise :class:`RequestRejected`.

    ``headers`` must have lower-case names. The format comes from ``?format=``,
    else the ``Accept`` header, else ``default_format``; options from query
    parameters named like :class:`heicconv.Options` fields over ``base``
    (default: the configured options).
    """
    unknown = sorted(set(query) - {"format", *OPTION_PARAMS})
    if unknown:
        raise _bad(f"unknown query parameter(s): {', '.join(unknown)}; known: format, {', '.join(OPTION_PARAMS)}")
    try:
        fmt = formats.normalize(query["format"]) if "format" in query else _from_accept(headers.get("accept", ""))
        fmt = fmt or formats.normalize(default_format)
    except UnsupportedFormatError as exc:
        raise _bad(f"format: {exc}") from exc
    options = base if base is not None else settings().options
    changes = {name: field_from_text(name, query[name]) for name in OPTION_PARAMS if name in query}
    if changes:
        try:
            options = Options.from_mapping({**_as_mapping(options), **changes}, "the query string")
        except ConfigError as exc:
            raise _bad(str(exc)) from exc
    data = _image_from_body(headers.get("content-type", ""), body)
    if not data:
        raise _bad("the request has no image: send the image as the body or as multipart field 'file'")
    return Request(data, fmt, options)


def run(request: Request, backend: str | None = None) -> Reply:
    """Convert a parsed request; heicconv errors become their JSON error reply."""
    try:
        result = convert_with_report(request.data, request.fmt, request.options, backend=backend)
    except Exception as exc:
        return reply_for_error(exc)
    headers = {"X-Heicconv-Backend": result.backend}
    if result.width and result.height:
        headers["X-Image-Size"] = f"{result.width}x{result.height}"
    return Reply(200, result.data, formats.MIME_TYPES[result.format], headers)


def convert_request(
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    default_format: str = "jpeg",
    backend: str | None = None,
) -> Reply:
    """Parse and convert in one call (what both routes do for ``POST /convert``)."""
    try:
        request = parse_request(query, headers, body, default_format=default_format)
    except RequestRejected as exc:
        return exc.reply
    except Exception as exc:  # e.g. a bad configuration file
        return reply_for_error(exc)
    return run(request, backend)


def _bad(message: str) -> RequestRejected:
    return RequestRejected(error_reply(400, "bad_request", message))


def _as_mapping(options: Options) -> dict[str, Any]:
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(Options)}


def _from_accept(accept: str) -> str | None:
    """The first format heicconv writes that the Accept header asks for, by q-value; ``None`` if none."""
    by_mime = {mime: fmt for fmt, mime in formats.MIME_TYPES.items()}
    choices: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept.split(",")):
        mime, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        fmt = by_mime.get(mime.lower())
        if fmt is not None and q > 0:
            choices.append((-q, position, fmt))
    return min(choices)[2] if choices else None


def _image_from_body(content_type: str, body: bytes) -> bytes:
    """The raw body, or the ``file`` field of a multipart/form-data body."""
    mime, _, params = content_type.partition(";")
    if mime.strip().lower() != "multipart/form-data":
        return body
    boundary = ""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        raise _bad("multipart/form-data without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if _field_name(head.decode("latin-1")) == "file":
            # The part ends with the CRLF that precedes the next delimiter.
            return content[:-2] if content.endswith(b"\r\n") else content
    raise _bad("multipart/form-data body has no field named 'file'")


def _field_name(head: str) -> str | None:
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() != "content-disposition":
            continue
        for param in value.split(";")[1:]:
            key, _, val = param.strip().partition("=")
            if key.lower() == "name":
                return val.strip().strip('"')
    return None
