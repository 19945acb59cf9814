"""One Lambda invocation's figures and logs: its request id, its conversions, and one EMF line at its end.

:func:`handling` wraps the handler: it puts the Lambda request id (``context.aws_request_id``) in
:data:`heicconv.config.logs.REQUEST_ID`, so every line heicconv logs meanwhile carries it, and collects
what :func:`convert` counts. At the end it prints the figures to stdout as CloudWatch Embedded Metric
Format (:func:`heicconv.config.logs.emf_line`), one line per backend and output format converted with
(in practice one line: an invocation uses one backend and, but for an HTTP request naming another, one
format), so CloudWatch has them without a ``PutMetricData`` call. ``[lambda] metrics = false``
(``HEICCONV_LAMBDA_METRICS=false``) turns the line off. An invocation that converted nothing (a
health check, only skipped objects, a refused request) writes none.

The line has the shape AWS Lambda Powertools' ``Metrics`` writes (``_aws.CloudWatchMetrics`` with a
namespace, dimension names and metric names, the values at the top level), so dashboards and alarms
built for one read the other; heicconv does not use Powertools itself (see docs/operations.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import Limits, Options, Result, convert_with_report
from ..api.calls import selected_backend
from ..config.logs import REQUEST_ID, emf_line, setup_logging
from ..errors import HeicconvError
from ..options import formats

__all__ = ["Invocation", "convert", "handling", "log_fields"]

log = logging.getLogger("heicconv.aws_lambda")

#: EMF's limit of values in one metric's array.
_MAX_VALUES = 100


@dataclass(frozen=True)
class _Conversion:
    backend: str
    output_format: str
    seconds: float
    bytes_in: int
    bytes_out: int | None  # None: it failed


@dataclass
class Invocation:
    """What one invocation converted, and the log fields of its last conversion."""

    conversions: list[_Conversion] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    def lines(self, namespace: str, properties: dict[str, Any], timestamp_ms: int | None = None) -> list[str]:
        """The EMF lines: one per backend and output format (and per 100 conversions of them)."""
        groups: dict[tuple[str, str], list[_Conversion]] = {}
        for c in self.conversions:
            groups.setdefault((c.backend, c.output_format), []).append(c)
        lines = []
        for (backend, fmt), done in groups.items():
            for start in range(0, len(done), _MAX_VALUES):
                chunk = done[start : start + _MAX_VALUES]
                metrics: dict[str, tuple[float | list[float], str]] = {
                    "Conversions": (len(chunk), "Count"),
                    "ConversionFailures": (sum(c.bytes_out is None for c in chunk), "Count"),
                    "ConversionSeconds": ([round(c.seconds, 4) for c in chunk], "Seconds"),
                    "InputBytes": (sum(c.bytes_in for c in chunk), "Bytes"),
                    "OutputBytes": (sum(c.bytes_out or 0 for c in chunk), "Bytes"),
                }
                dimensions = {"backend": backend, "output_format": fmt}
                lines.append(emf_line(namespace, dimensions, metrics, properties, timestamp_ms))
        return lines


_CURRENT: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("heicconv_invocation", default=None)
_cold = True
_logging_ready = False


def convert(data: bytes, fmt: str, options: Options, limits: Limits) -> Result:
    """``heicconv.convert_with_report`` in this process, counted for the invocation under way (if any)."""
    current = _CURRENT.get()
    if current is None:
        return convert_with_report(data, fmt, options, limits=limits)
    source = formats.label(data)
    started = time.perf_counter()
    try:
        result = convert_with_report(data, fmt, options, limits=limits)
    except Exception as exc:
        seconds = time.perf_counter() - started
        current.conversions.append(_Conversion(_backend(), fmt, seconds, len(data), None))
        current.fields.update(_figures(_backend(), source, fmt, len(data), seconds), outcome=type(exc).__name__)
        current.fields["error"] = type(exc).__name__
        raise
    seconds = time.perf_counter() - started
    current.conversions.append(_Conversion(result.backend, fmt, seconds, len(data), len(result.data)))
    current.fields.update(_figures(result.backend, source, fmt, len(data), seconds), outcome="ok")
    current.fields["bytes_out"] = len(result.data)
    return result


def log_fields() -> dict[str, Any]:
    """The log fields of the invocation's last conversion (``{}`` outside an invocation, or before one)."""
    current = _CURRENT.get()
    return dict(current.fields) if current is not None else {}


def _figures(backend: str, source: str, fmt: str, size: int, seconds: float) -> dict[str, Any]:
    """The log fields of a conversion, named as the service names them."""
    return {
        "backend": backend,
        "input_format": source,
        "output_format": fmt,
        "bytes_in": size,
        "conversion_ms": round(seconds * 1000, 1),
    }


def _backend() -> str:
    """The backend a failed conversion was given to (a result names its own)."""
    try:
        return selected_backend()[0]
    except HeicconvError:
        return "unknown"


@contextlib.contextmanager
def handling(context: Any, metrics: Callable[[], tuple[bool, str]]) -> Iterator[Invocation]:
    """Around one invocation: the request id set, its conversions counted, the EMF line(s) printed at the end.

    ``metrics()`` says, once the invocation has run, whether to print them and under which namespace.
    """
    global _cold
    _setup_logging()
    request_id = getattr(context, "aws_request_id", None)
    current = Invocation()
    token = _CURRENT.set(current)
    rid = REQUEST_ID.set(str(request_id)) if request_id else None
    cold, _cold = _cold, False
    try:
        yield current
    finally:
        _CURRENT.reset(token)
        try:
            _emit(current, context, cold, metrics)
        finally:
            if rid is not None:
                REQUEST_ID.reset(rid)


def _emit(current: Invocation, context: Any, cold: bool, metrics: Callable[[], tuple[bool, str]]) -> None:
    if not current.conversions:
        return
    try:
        enabled, namespace = metrics()
    except Exception:  # a misconfigured [lambda] table: the invocation says so; the figures still count
        enabled, namespace = True, "heicconv"
    if not enabled:
        return
    properties: dict[str, Any] = {
        "request_id": REQUEST_ID.get(),
        "function_name": getattr(context, "function_name", None) or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "cold_start": cold,
    }
    for line in current.lines(namespace, {k: v for k, v in properties.items() if v is not None}):
        print(line, file=sys.stdout, flush=True)


def _setup_logging() -> None:
    """On Lambda, heicconv logs JSON lines to stderr (CloudWatch Logs), once per execution environment."""
    global _logging_ready
    if _logging_ready or not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    given = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "info").lower()  # Lambda's own advanced logging control
    level = {"trace": "debug", "warn": "warning", "fatal": "critical"}.get(given, given)
    if level not in ("critical", "error", "warning", "info", "debug"):
        level = "info"
    setup_logging(level, "json")
    _logging_ready = True
