"""What a conversion request means over HTTP, independent of the transport.

The HTTP service (:mod:`heicconv.server.app`) and the Lambda handler
(:mod:`heicconv.aws_lambda`) both turn their request into query parameters,
lower-case headers and a body, and hand them to :func:`convert_request`; so the
same request gives the same answer, status code and error body on both routes.
:data:`ERRORS` is the one table from a heicconv error class to the status and
error code they answer with. This module imports only the standard library and heicconv.

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

from ..backends import registry
from ..backends.contract import Result
from ..config import settings
from ..errors import HTTP_ERRORS, ConfigError, HeicconvError, UnsupportedFormatError
from ..options import Limits, Options, field_from_text, formats
from .calls import convert_with_report, selected_backend

__all__ = [
    "ENDPOINT_DEFAULTS",
    "ERRORS",
    "Reply",
    "Request",
    "RequestRejected",
    "classify",
    "configured_backend",
    "convert_request",
    "endpoint_settings",
    "error_reply",
    "health",
    "json_reply",
    "misconfigured",
    "parse_request",
    "reply_for_error",
    "reply_for_result",
    "run",
]

log = logging.getLogger("heicconv.server")

#: Query parameters that set :class:`heicconv.Options` fields.
OPTION_PARAMS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Options))

#: The HTTP status and error code of each heicconv error class (:data:`heicconv.errors.HTTP_ERRORS`).
ERRORS: Mapping[type[HeicconvError], tuple[int, str]] = HTTP_ERRORS

#: What a request gets where the operator has configured nothing: an endpoint open to the internet
#: must not publish where a photo was taken, nor let one upload take gigabytes (docs/deployment.md).
ENDPOINT_DEFAULTS: Mapping[str, Any] = {"options.metadata": "strip-location", "limits.max_pixels": 50_000_000}


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
    limits: Limits = field(default_factory=Limits)
    negotiated: bool = False  # the format came from the Accept header


class RequestRejected(Exception):
    """Internal control flow: the request is malformed or the service misconfigured; carries the reply to send."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body.decode("utf-8", "replace"))
        self.reply = reply


def json_reply(status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))


def error_reply(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """The JSON error body every route answers with: ``{"error", "message", "status"}``."""
    return json_reply(status, {"error": code, "message": message, "status": status}, headers)


def classify(exc: BaseException) -> tuple[int, str, str]:
    """``(status, code, message)`` for an exception, from :data:`ERRORS`; an unexpected one is logged, not shown.

    >>> from heicconv.errors import DecodeError
    >>> classify(DecodeError("the file is truncated"))
    (422, 'undecodable', 'the file is truncated')
    """
    for kind in type(exc).__mro__:
        if kind in ERRORS:
            status, code = ERRORS[kind]
            if status >= 500:
                log.error("conversion failed: %s", exc, exc_info=exc)
            return status, code, str(exc)
    log.error("unexpected error", exc_info=exc)
    return 500, "internal", "internal error; see the log"


def reply_for_error(exc: BaseException) -> Reply:
    """Map an exception to its JSON error reply (see :func:`classify`)."""
    return error_reply(*classify(exc))


def misconfigured(exc: BaseException) -> Reply:
    """The reply when the operator's configuration cannot be read: a 500 that names the key, whatever the class.

    A ``ConfigError`` raised by a request's own options is the caller's mistake (400); the same class
    raised while reading the configuration is the operator's, which is why this is a separate step.
    """
    log.error("configuration error: %s", exc)
    return error_reply(500, "misconfigured", str(exc))


def configured_backend() -> tuple[str, str]:
    """:func:`heicconv.selected_backend` for ``/health``; a bad configuration raises :class:`RequestRejected`."""
    try:
        settings()
    except ConfigError as exc:
        raise RequestRejected(misconfigured(exc)) from exc
    return selected_backend()


def health() -> dict[str, Any]:
    """What ``GET /health`` answers on both routes: the backend that converts, where that choice came from,
    its library versions and its capabilities (what a remote backend plans with); a bad configuration raises
    :class:`RequestRejected`."""
    name, where = configured_backend()
    described = registry.status(name).to_dict()
    return {
        "status": "ok",
        "backend": name,
        "backend_from": where,
        "versions": _versions(name),
        "capabilities": {key: described[key] for key in ("inputs", "outputs", "features")},
    }


def _versions(backend: str) -> dict[str, str]:
    from .. import __version__

    try:
        libraries = registry.get(backend).versions()
    except HeicconvError:
        libraries = {}
    return {"heicconv": __version__, **libraries}


def endpoint_settings() -> tuple[Options, Limits]:
    """The configured options and limits, with :data:`ENDPOINT_DEFAULTS` for every field nobody configured.

    >>> options, limits = endpoint_settings()
    >>> options.metadata, limits.max_pixels
    ('strip-location', 50000000)
    """
    s = settings()
    groups: dict[str, Any] = {"options": s.options, "limits": s.limits}
    for key, value in ENDPOINT_DEFAULTS.items():
        group, _, name = key.partition(".")
        if key not in s.sources and group not in s.sources:  # set by no file, variable or configure()
            groups[group] = dataclasses.replace(groups[group], **{name: value})
    return groups["options"], groups["limits"]


def parse_request(
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    default_format: str = "jpeg",
    base: tuple[Options, Limits] | None = None,
) -> Request:
    """Read the output format, options and image from a request, or raise :class:`RequestRejected`.

    ``headers`` must have lower-case names. The format is ``?format=``, else
    ``default_format``; ``?format=auto`` picks the image type the ``Accept`` header
    prefers (``default_format`` if it names none). Options come from query
    parameters named like :class:`heicconv.Options` fields over ``base``
    (default: :func:`endpoint_settings`); a bad value raises ``ConfigError``.
    """
    unknown = sorted(set(query) - {"format", *OPTION_PARAMS})
    if unknown:
        raise _bad(f"unknown query parameter(s): {', '.join(unknown)}; known: format, {', '.join(OPTION_PARAMS)}")
    asked = query.get("format", "").strip()
    negotiated = asked.lower() == "auto"
    try:
        if negotiated:
            fmt = _from_accept(headers.get("accept", "")) or formats.normalize(default_format)
        else:
            fmt = formats.normalize(asked or default_format)
    except UnsupportedFormatError as exc:
        raise _bad(f"format: {exc} (or auto, to follow the Accept header)") from exc
    try:
        options, limits = base if base is not None else endpoint_settings()
    except ConfigError as exc:
        raise RequestRejected(misconfigured(exc)) from exc
    changes = {name: field_from_text(name, query[name]) for name in OPTION_PARAMS if name in query}
    if changes:
        options = Options.from_mapping({**_as_mapping(options), **changes}, "the query string")
    data = _image_from_body(headers.get("content-type", ""), body)
    if not data:
        raise _bad("the request has no image: send the image as the body or as multipart field 'file'")
    return Request(data, fmt, options, limits, negotiated)


def reply_for_result(result: Result, request: Request) -> Reply:
    """The 200 answer: the image, and headers that say what was done.

    ``X-Heicconv-Notes`` is the report's notes as JSON ``[[kind, detail], ...]`` and ``X-Heicconv-Versions``
    the libraries that made it, so a remote backend (``http``, ``lambda``) reports what a local one would.
    """
    headers = {"X-Heicconv-Backend": result.backend}
    if result.width and result.height:
        headers["X-Image-Size"] = f"{result.width}x{result.height}"
    headers["X-Heicconv-Notes"] = json.dumps([[n.kind, n.detail] for n in result.notes])
    headers["X-Heicconv-Versions"] = json.dumps(_versions(result.backend))
    if request.negotiated:
        headers["Vary"] = "Accept"
    return Reply(200, result.data, formats.MIME_TYPES[result.format], headers)


def run(request: Request, backend: str | None = None) -> Reply:
    """Convert a parsed request in this process; heicconv errors become their JSON error reply."""
    try:
        result = convert_with_report(request.data, request.fmt, request.options, backend=backend, limits=request.limits)
    except Exception as exc:
        return reply_for_error(exc)
    return reply_for_result(result, request)


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
    except Exception as exc:  # a bad option value (ConfigError: 400)
        return reply_for_error(exc)
    return run(request, backend)


def _bad(message: str) -> RequestRejected:
    return RequestRejected(error_reply(400, "bad_request", message))


def _as_mapping(options: Options) -> dict[str, Any]:
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(Options)}


def _from_accept(accept: str) -> str | None:
    """The format heicconv writes that the Accept header prefers (highest q, then first listed); ``None`` if none.

    >>> _from_accept("text/html,application/xhtml+xml,image/avif,image/webp,*/*;q=0.8")
    'avif'
    >>> _from_accept("image/avif;q=0.5, image/webp"), _from_accept("*/*")
    ('webp', None)
    """
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
