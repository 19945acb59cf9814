"""Logs an operator can query: one JSON object a line, with the request id, for every route.

:func:`setup_logging` sends the ``heicconv`` loggers (and uvicorn's) to stderr as JSON lines, or as
readable text when stderr is a terminal (``log_format="auto"``). A record's ``fields`` (passed as
``extra={"fields": {...}}``) become top-level keys of its JSON object, with the request id of
:data:`REQUEST_ID` when one is being handled; :func:`request_id` accepts a caller's ``X-Request-Id``
or makes one, so one id follows a photo from the caller's log to the service's: the ``http`` backend
sends :data:`REQUEST_ID` when the application has set it. Standard library only, so that every
layer may import it.

>>> record = logging.LogRecord("heicconv.server", logging.INFO, __file__, 1, "converted", (), None)
>>> record.fields = {"request_id": "abc", "status": 200}
>>> line = json.loads(JsonFormatter().format(record))
>>> line["message"], line["request_id"], line["status"], line["level"]
('converted', 'abc', 200, 'info')
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["REQUEST_ID", "JsonFormatter", "TextFormatter", "emf_line", "request_id", "setup_logging"]

#: The request being handled, for every line logged while it is (an error deep in a conversion too).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("heicconv_request_id", default=None)

#: What an ``X-Request-Id`` from a caller may be: printable, no spaces, at most 128 characters; else a new one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
#: The loggers :func:`setup_logging` routes (uvicorn's own, besides heicconv's).
LOGGERS = ("heicconv", "uvicorn", "uvicorn.error")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(getattr(record, "fields", None) or {})
    current = REQUEST_ID.get()
    if current is not None:
        fields.setdefault("request_id", current)
    return fields


def request_id(given: str | None) -> str:
    """``given`` if it is a usable request id, else a new random one (32 hex digits).

    >>> request_id("checkout-7f3a"), len(request_id(None)), len(request_id("two words"))
    ('checkout-7f3a', 32, 32)
    """
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        line: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """For a terminal: the time, level and message, then the fields as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None and v != "")
        return f"{text} {extra}" if extra else text


def setup_logging(level: str = "info", log_format: str = "auto") -> logging.Handler:
    """Route heicconv's and uvicorn's loggers to stderr in ``log_format`` (``json``, ``text`` or ``auto``)."""
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if log_format == "text" else JsonFormatter())
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    return handler


#: The units CloudWatch accepts that heicconv's figures use.
EMF_UNITS = frozenset({"Count", "Seconds", "Milliseconds", "Bytes", "None"})


def emf_line(
    namespace: str,
    dimensions: Mapping[str, str],
    metrics: Mapping[str, tuple[float | Sequence[float], str]],
    properties: Mapping[str, Any] | None = None,
    timestamp_ms: int | None = None,
) -> str:
    """One CloudWatch Embedded Metric Format log line: ``metrics`` (name -> (value, unit)) under ``dimensions``.

    A value may be a list of at most 100 numbers (EMF's limit): CloudWatch takes each as a sample, so
    one line per invocation still gives per-conversion percentiles.

    A Lambda function that prints this line to stdout gets the metrics in CloudWatch without a
    PutMetricData call; ``properties`` (a request id, sizes) are kept in the log line for Logs
    Insights but are not metrics.

    >>> line = json.loads(emf_line("heicconv", {"backend": "pillow"}, {"Conversions": (1, "Count")}, {"rid": "r1"}, 0))
    >>> line["_aws"]["CloudWatchMetrics"][0]["Metrics"], line["backend"], line["Conversions"], line["rid"]
    ([{'Name': 'Conversions', 'Unit': 'Count'}], 'pillow', 1, 'r1')
    """
    unknown = sorted({unit for _, unit in metrics.values()} - EMF_UNITS)
    if unknown:
        raise ValueError(f"CloudWatch units heicconv does not use: {', '.join(unknown)}")
    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    directive = {
        "Namespace": namespace,
        "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
    }
    record: dict[str, Any] = {**(properties or {}), "_aws": {"Timestamp": stamp, "CloudWatchMetrics": [directive]}}
    record.update(dimensions)
    record.update(
        {name: value if isinstance(value, (int, float)) else list(value) for name, (value, _) in metrics.items()}
    )
    return json.dumps(record, default=str)
