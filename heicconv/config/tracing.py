"""OpenTelemetry spans, when the application traces; nothing at all when it does not.

heicconv never imports OpenTelemetry itself. An application that traces has imported
``opentelemetry.trace`` and set a tracer provider (``trace.set_tracer_provider(...)``, or
``opentelemetry-instrument``); then :func:`span` opens a span of the ``heicconv`` tracer. Otherwise
(``opentelemetry-api`` not installed, not imported, or no provider set) :func:`span` returns a
context manager that does nothing, and :func:`inject` and :func:`extract` do nothing: no import,
no span objects. Install with ``pip install 'heicconv[otel]'``.

The spans: ``heicconv.convert`` (one conversion), inside it ``heicconv.decode``, ``heicconv.transform``
and ``heicconv.encode`` for the pillow, vips and wand backends, and ``heicconv.transport`` for each
attempt of the ``http`` backend, which sends the trace context (``traceparent``) to the service;
``heicconv serve`` continues it. Standard library only (OpenTelemetry is found, not imported), so that
every layer may use it.

>>> with span("heicconv.convert", {"heicconv.output_format": "jpeg"}) as current:
...     current is None or current.is_recording()
True
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

__all__ = ["extract", "inject", "span", "tracing"]

#: What an attribute may be: OpenTelemetry's primitive types.
Attributes = Mapping[str, str | bool | int | float]

_cached: tuple[Any, Any] = (None, None)  # (provider, its heicconv tracer)


def _tracer() -> Any:
    """The ``heicconv`` tracer of the provider the application set, or ``None``."""
    global _cached
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    if _cached[0] is not provider:
        version = getattr(sys.modules.get("heicconv"), "__version__", None)  # imported: this module's package
        _cached = (provider, provider.get_tracer("heicconv", version))
    return _cached[1]


def tracing() -> bool:
    """Whether the application traces (OpenTelemetry imported and a tracer provider set)."""
    return _tracer() is not None


@contextlib.contextmanager
def _open(tracer: Any, name: str, attributes: Attributes | None, kind: str, context: Any) -> Iterator[Any]:
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(
        name, context=context, kind=getattr(SpanKind, kind), attributes=dict(attributes or {})
    ) as current:
        yield current


def span(
    name: str, attributes: Attributes | None = None, *, kind: str = "INTERNAL", context: Any = None
) -> contextlib.AbstractContextManager[Any]:
    """A span ``name`` (made current) while the ``with`` block runs, or ``None`` when the application does not trace.

    ``kind`` is an OpenTelemetry ``SpanKind`` name (``SERVER``, ``CLIENT``); ``context`` a parent from
    :func:`extract`. An exception raised in the block is recorded on the span, which is marked as an error.
    """
    tracer = _tracer()
    if tracer is None:
        return contextlib.nullcontext()
    return _open(tracer, name, attributes, kind, context)


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (``traceparent``, ``tracestate``) to outgoing ``headers``, when tracing."""
    if _tracer() is None:
        return
    from opentelemetry import propagate

    propagate.inject(headers)


def extract(headers: Mapping[str, str]) -> Any:
    """The trace context a caller sent in ``headers`` (lower-case names), for a span's ``context``; else ``None``."""
    if _tracer() is None:
        return None
    from opentelemetry import propagate

    return propagate.extract(headers)
