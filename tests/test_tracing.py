"""OpenTelemetry spans (heicconv.config.tracing): present when the application sets a tracer provider, absent otherwise.

The spans are read with opentelemetry-sdk's in-memory exporter (the ``test`` extra). The provider is set
for one test at a time and the API's global state put back after, so no other test traces.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import heicconv
from heicconv.config import tracing
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module

require_module("opentelemetry.sdk", "test")

PHOTO = make_heic(size=(64, 48))


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A tracer provider that keeps every finished span in memory; the exporter's ``get_finished_spans()``."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util._once import Once

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    trace.set_tracer_provider(provider)
    monkeypatch.setenv("HEICCONV_BACKEND", "pillow")
    heicconv.config.reset()
    yield exporter
    provider.shutdown()
    heicconv.config.reset()


def by_name(finished: Any) -> dict[str, Any]:
    return {s.name: s for s in finished}


def test_without_a_provider_nothing_is_traced_nor_imported() -> None:
    code = (
        "import sys, heicconv\n"
        "from heicconv.testing.fixtures import make_heic\n"
        "heicconv.convert(make_heic(size=(32, 24)), 'png', backend='pillow')\n"
        "from heicconv.config import tracing\n"
        "assert not tracing.tracing()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
    # Imported but no provider set (the API's proxy): still nothing.
    import opentelemetry.trace  # noqa: F401

    with tracing.span("heicconv.convert") as current:
        assert current is None


def test_a_conversion_is_a_span_with_decode_transform_and_encode(spans: Any) -> None:
    from opentelemetry import trace

    with trace.get_tracer("app").start_as_current_span("upload") as app_span:
        result = heicconv.convert_with_report(PHOTO, "webp")
    found = by_name(spans.get_finished_spans())
    convert = found["heicconv.convert"]
    assert convert.parent.span_id == app_span.get_span_context().span_id
    assert convert.attributes["heicconv.backend"] == "pillow"
    assert convert.attributes["heicconv.output_format"] == "webp"
    assert convert.attributes["heicconv.input_bytes"] == len(PHOTO)
    assert convert.attributes["heicconv.output_bytes"] == len(result.data)
    assert convert.attributes["heicconv.image_size"] == "64x48"
    for step in ("heicconv.decode", "heicconv.transform", "heicconv.encode"):
        assert found[step].parent.span_id == convert.context.span_id, step
        assert found[step].attributes["heicconv.backend"] == "pillow"
    assert found["heicconv.decode"].end_time <= found["heicconv.encode"].start_time


def test_a_failed_conversion_is_an_error_span(spans: Any) -> None:
    from opentelemetry.trace import StatusCode

    with pytest.raises(heicconv.DecodeError):
        heicconv.convert(PHOTO[:300], "jpeg")
    convert = by_name(spans.get_finished_spans())["heicconv.convert"]
    assert convert.status.status_code == StatusCode.ERROR
    assert [e.attributes["exception.type"] for e in convert.events] == ["heicconv.errors.DecodeError"]


def test_async_conversions_keep_the_parent(spans: Any) -> None:
    import asyncio

    asyncio.run(heicconv.convert_async(PHOTO, "png"))
    found = by_name(spans.get_finished_spans())
    assert found["heicconv.encode"].parent.span_id == found["heicconv.convert"].context.span_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(params=["thread", "process"])
def service(request: pytest.FixtureRequest, spans: Any) -> Iterator[tuple[str, str]]:
    """``heicconv serve``'s app in this process (so that it traces to the same exporter): (url, pool)."""
    require_module("uvicorn", "server")
    import uvicorn

    from heicconv.server.app import create_app
    from heicconv.server.settings import ServerSettings

    pool = request.param
    port = _free_port()
    app = create_app(ServerSettings(port=port, workers=1, pool=pool))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", pool
    server.should_exit = True
    thread.join(60)


def test_the_http_backend_carries_the_trace_to_the_service(
    service: tuple[str, str], spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    url, pool = service
    monkeypatch.setenv("HEICCONV_HTTP_URL", url)
    heicconv.config.reset()
    with trace.get_tracer("app").start_as_current_span("upload") as app_span:
        heicconv.convert(PHOTO, "jpeg", backend="http")
    # The service ends its span after the answer has gone out, so the caller can be back first: wait for it.
    deadline = time.monotonic() + 10
    while not any(s.name == "POST /convert" for s in spans.get_finished_spans()) and time.monotonic() < deadline:
        time.sleep(0.01)
    finished = spans.get_finished_spans()
    trace_id = app_span.get_span_context().trace_id
    assert {s.context.trace_id for s in finished} == {trace_id}  # one trace, caller and service
    transport = next(s for s in finished if s.name == "heicconv.transport")
    assert transport.kind == SpanKind.CLIENT and transport.attributes["http.response.status_code"] == 200
    served = next(s for s in finished if s.name == "POST /convert")
    assert served.kind == SpanKind.SERVER and served.parent.span_id == transport.context.span_id
    assert served.attributes["http.response.status_code"] == 200
    converted = [s for s in finished if s.name == "heicconv.convert" and s.parent.span_id == served.context.span_id]
    assert len(converted) == 1 and converted[0].attributes["heicconv.backend"] == "pillow"
    steps = {s.name for s in finished if s.parent is not None and s.parent.span_id == converted[0].context.span_id}
    if pool == "thread":  # converted in the service's process: its steps are spans too
        assert steps == {"heicconv.decode", "heicconv.transform", "heicconv.encode"}
    else:  # in a worker process, which does not trace: one span around the call
        assert steps == set() and converted[0].attributes["heicconv.pool"] == "process"
