"""The HTTP service: a Starlette app that converts in a bounded worker pool.

Routes: ``POST /convert`` (raw body or multipart field ``file``; ``?format=`` and
option parameters), ``GET /health``, ``GET /ready``, ``GET /backends``, ``GET /metrics``.
Every error is JSON, and every answer carries the request's ``X-Request-Id``.

With a token configured (:mod:`.auth`), ``/convert`` and ``/backends`` (and ``/metrics`` with
``metrics = "token"``) answer 401 without it, before any of the body is read; ``/health`` and
``/ready`` stay open for the orchestrator's probes.

A request's body is read in full first (:mod:`.uploads`): within ``body_timeout`` and at
``min_upload_rate`` or faster, ``upload_grace`` seconds to spare (else 408), within ``max_body_bytes``
(else 413), by at most ``uploads`` requests at once and ``uploads_per_client`` from one address
(else 429; when every slot is taken, a body below ``min_upload_rate`` gives its slot up to a new one);
only then does it take a conversion slot, so a slow client holds no slot. Conversions
are CPU-bound, so they never run on the event loop: at most ``workers`` run at once, at most
``queue`` more wait, and a request beyond that is answered 429 at once rather than left to time
out behind the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .. import Result
from ..api import web as api
from ..api.calls import convert_with_report, list_backends, selected_backend, share_cpus
from ..api.workers import IsolatedConverter
from ..config.logs import REQUEST_ID, request_id
from ..config.tracing import extract, span
from ..errors import HeicconvError, TimeoutError
from ..options import formats
from .auth import Tokens, parse_tokens
from .metrics import CONTENT_TYPE, ServiceMetrics
from .settings import ServerSettings, load
from .uploads import Admission, TooSlow, Uploads, read_body

__all__ = ["Outcome", "Pool", "create_app"]

log = logging.getLogger("heicconv.server")

# A stalled body will not end: close the connection rather than wait for it. (A refused body is
# drained instead: closing on a client still sending can reset the connection before it reads the answer.)
_CLOSE = {"Connection": "close"}
#: Where each request's log fields live in its ASGI scope, for the route to add to.
_FIELDS = "heicconv.log"
#: Routes that answer whoever asks: the orchestrator's probes carry no token.
_OPEN = ("/health", "/ready")


@dataclass
class Outcome:
    """A conversion's answer, and the error behind it (``None`` for a 200)."""

    reply: api.Reply
    error: BaseException | None = None


class Pool:
    """At most ``workers`` conversions run at once and ``queue`` more wait; each may take ``timeout`` seconds.

    With ``pool="process"`` each conversion runs in a worker process
    (:class:`heicconv.api.workers.IsolatedConverter`) that is killed and replaced when the
    request's time is up or its resident memory passes ``memory_mb``. With
    ``pool="thread"`` conversions run in this process: a thread cannot be stopped, so
    a timed-out conversion keeps its slot until it really ends, and nothing caps its memory.
    """

    def __init__(self, settings: ServerSettings, metrics: ServiceMetrics | None = None) -> None:
        self.workers = settings.workers
        self.capacity = settings.workers + settings.queue
        self.timeout = settings.timeout
        self.kind = settings.pool
        self.memory_mb = settings.memory_mb
        self.metrics = metrics
        self._inflight = 0
        self._running = 0
        self._lock = threading.Lock()
        self._threads = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="heicconv")
        if self.kind == "thread":  # `workers` conversions at once in this process (process workers share their own)
            share_cpus(self.workers)
        self._isolated = (
            IsolatedConverter(self.workers, timeout=self.timeout, memory_mb=self.memory_mb)
            if self.kind == "process"
            else None
        )

    @property
    def inflight(self) -> int:
        """Conversions admitted and not yet ended: running and waiting."""
        return self._inflight

    @property
    def running(self) -> int:
        return self._running

    @property
    def saturated(self) -> bool:
        """Every slot is taken: the next conversion would be answered 429."""
        return self._inflight >= self.capacity

    def try_acquire(self) -> bool:
        with self._lock:
            if self._inflight >= self.capacity:
                return False
            self._inflight += 1
            return True

    def release(self, *_: object) -> None:
        with self._lock:
            self._inflight -= 1

    async def convert(self, request: api.Request) -> Outcome:
        """Run one admitted conversion; its slot is freed when the work has really ended."""
        deadline = time.monotonic() + self.timeout
        try:
            # In the request's context: what the conversion logs carries the request id.
            future = self._threads.submit(contextvars.copy_context().run, self._run, request, deadline)
        except Exception:
            self.release()
            raise
        future.add_done_callback(self.release)  # also called when a waiting conversion is cancelled
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except asyncio.TimeoutError:  # a conversion still waiting is cancelled; a running one ends at its deadline
            late = self._timed_out()
            return Outcome(api.reply_for_error(late), late)

    def _run(self, request: api.Request, deadline: float) -> Outcome:
        with self._lock:
            self._running += 1
        try:
            if self._isolated is None:  # in this process: heicconv.convert's own span, with its children
                result = convert_with_report(request.data, request.fmt, request.options, limits=request.limits)
            else:
                result = self._in_worker(request, deadline)
        except TimeoutError as exc:  # the worker was killed at the request's deadline
            late = self._timed_out()
            outcome = Outcome(api.reply_for_error(late), late)  # logged (a 5xx) before it is counted
            self._count_restart(exc)
            return outcome
        except Exception as exc:
            outcome = Outcome(api.reply_for_error(exc), exc)
            self._count_restart(exc)
            return outcome
        finally:
            with self._lock:
                self._running -= 1
        return Outcome(api.reply_for_result(result, request))

    def _in_worker(self, request: api.Request, deadline: float) -> Result:
        """Convert in a worker process. The worker does not trace (it is not the application that configured
        OpenTelemetry): its conversion is one span here, from handing it over to the answer."""
        assert self._isolated is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out()
        attributes: dict[str, str | int] = {
            "heicconv.output_format": request.fmt,
            "heicconv.input_bytes": len(request.data),
        }
        with span("heicconv.convert", {**attributes, "heicconv.pool": "process"}) as current:
            result = self._isolated.convert_with_report(
                request.data, request.fmt, request.options, limits=request.limits, timeout=remaining
            )
            if current is not None:
                current.set_attributes(
                    {
                        "heicconv.backend": result.backend,
                        "heicconv.output_bytes": len(result.data),
                        "heicconv.image_size": f"{result.width}x{result.height}",
                    }
                )
            return result

    def _count_restart(self, exc: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.count_restart(exc)

    def _timed_out(self) -> TimeoutError:
        ended = "its worker was stopped" if self._isolated else "it runs on in its thread"
        return TimeoutError(f"the conversion took longer than {self.timeout:g} s; {ended}")

    def shutdown(self) -> None:
        """Drop waiting conversions, let running ones end (each within ``timeout``), then stop the workers."""
        self._threads.shutdown(wait=True, cancel_futures=True)
        if self._isolated is not None:
            self._isolated.close()


def _send(reply: api.Reply) -> Response:
    return Response(reply.body, reply.status, reply.headers, media_type=reply.content_type)


def _fields(request: Request) -> dict[str, Any]:
    fields: dict[str, Any] = request.scope.setdefault(_FIELDS, {})
    return fields


def create_app(settings: ServerSettings | None = None) -> Observed:
    """Build the service; ``settings`` default to :func:`heicconv.server.settings.load`."""
    cfg = settings or load()
    tokens = Tokens(parse_tokens(cfg.token, "server.token"), cfg.token_file, cfg.auth_header)  # before any worker
    metrics = ServiceMetrics()
    pool = Pool(cfg, metrics)
    admission = Admission.of(cfg)
    uploads = Uploads(cfg.uploads, cfg.uploads_per_client, admission)  # only the event loop touches it
    try:
        backend = selected_backend()[0]
    except HeicconvError:  # /health says what is wrong; the figures name no backend
        backend = "unknown"
    metrics.watch(
        {
            "heicconv_conversions_running": ("Conversions running in a worker", lambda: pool.running),
            "heicconv_conversions_waiting": (
                "Conversions admitted and waiting for a worker",
                lambda: pool.inflight - pool.running,
            ),
            "heicconv_conversion_slots": (
                "Conversions running and waiting at most (workers + queue)",
                lambda: pool.capacity,
            ),
            "heicconv_uploads_in_use": ("Request bodies being received", lambda: uploads.in_use),
            "heicconv_upload_slots": ("Request bodies received at once at most", lambda: uploads.limit),
        }
    )

    def refuse(request: Request, reason: str, reply: api.Reply) -> Response:
        metrics.refused.labels(reason).inc()
        _fields(request)["refused"] = reason
        return _send(reply)

    def unauthorised(request: Request) -> Response | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if tokens.allows(headers):
            return None
        given = "authorization" in headers or (tokens.header and tokens.header in headers)
        how = "Authorization: Bearer <token>" + (f" or {cfg.auth_header}: <token>" if cfg.auth_header else "")
        message = f"{'the token is not valid' if given else 'a token is required'}: send {how}"
        challenge = 'Bearer realm="heicconv"' + (', error="invalid_token"' if given else "")
        reply = api.error_reply(401, "unauthorized", message, {"WWW-Authenticate": challenge})
        return refuse(request, "unauthorized", reply)

    async def convert(request: Request) -> Response:
        denied = unauthorised(request)
        if denied is not None:
            return denied
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > cfg.max_body_bytes:
            return refuse(request, "too_large", _too_large(cfg.max_body_bytes))
        client = request.client.host if request.client else "unknown"
        upload = uploads.admit(client)
        if isinstance(upload, tuple):
            reason, busy = upload
            return refuse(request, reason, api.error_reply(429, "busy", busy, {"Retry-After": "1"}))
        try:
            body = await read_body(request.stream(), cfg.max_body_bytes, admission, upload)
        except TooSlow as late:
            return refuse(request, late.reason, api.error_reply(408, "body_timeout", str(late), _CLOSE))
        except ClientDisconnect:
            return _send(api.error_reply(400, "incomplete_body", "the client went away before the body ended"))
        finally:
            uploads.release(upload)
        if body is None:
            return refuse(request, "too_large", _too_large(cfg.max_body_bytes))
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            parsed = api.parse_request(dict(request.query_params), headers, body, default_format=cfg.format)
        except api.RequestRejected as exc:
            return _send(exc.reply)
        except Exception as exc:
            _fields(request)["error"] = type(exc).__name__
            return _send(api.reply_for_error(exc))
        if not pool.try_acquire():
            busy = f"all {pool.workers} workers are busy and {pool.capacity - pool.workers} requests are waiting"
            return refuse(request, "workers_busy", api.error_reply(429, "busy", busy, {"Retry-After": "1"}))
        started = time.perf_counter()
        outcome = await pool.convert(parsed)
        _record(metrics, _fields(request), backend, parsed, outcome, time.perf_counter() - started)
        return _send(outcome.reply)

    def load_figures() -> dict[str, object]:
        return {
            "pool": pool.kind,
            "workers": pool.workers,
            "inflight": pool.inflight,
            "capacity": pool.capacity,
            "uploading": uploads.in_use,
            "uploads": cfg.uploads,
            "saturated": pool.saturated or uploads.full,
        }

    async def health(request: Request) -> Response:
        """Liveness: the process answers and its backend loads (a busy service is still alive)."""
        try:
            described = await asyncio.to_thread(api.health)
        except api.RequestRejected as exc:
            return _send(exc.reply)
        except Exception as exc:
            return _send(api.reply_for_error(exc))
        return _send(api.json_reply(200, {**described, **load_figures()}))

    async def ready(request: Request) -> Response:
        """Readiness: 503 while a new conversion would be refused, so a load balancer sends it elsewhere."""
        figures = load_figures()
        if figures["saturated"]:
            return _send(api.json_reply(503, {"status": "busy", **figures}, {"Retry-After": "1"}))
        return _send(api.json_reply(200, {"status": "ready", **figures}))

    async def backends(request: Request) -> Response:
        denied = unauthorised(request)
        if denied is not None:
            return denied
        statuses = await asyncio.to_thread(list_backends)
        return _send(api.json_reply(200, {"backends": [s.to_dict() for s in statuses]}))

    async def metrics_route(request: Request) -> Response:
        if cfg.metrics == "token":
            denied = unauthorised(request)
            if denied is not None:
                return denied
        body = await asyncio.to_thread(metrics.exposition)
        return Response(body, 200, headers={"Content-Type": CONTENT_TYPE})

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        return _send(api.error_reply(status, code, str(detail)))

    async def crash(request: Request, exc: Exception) -> Response:
        return _send(api.reply_for_error(exc))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            described = await asyncio.to_thread(api.health)
            versions = described["versions"]
        except Exception:  # /health answers why; the build info still names the version
            described, versions = {"backend": backend}, {}
        metrics.describe_build(str(described["backend"]), versions)
        yield
        await asyncio.to_thread(pool.shutdown)

    routes = [
        Route("/convert", convert, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/backends", backends, methods=["GET"]),
    ]
    if cfg.metrics != "off":
        routes.append(Route("/metrics", metrics_route, methods=["GET"]))
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: crash},
        lifespan=lifespan,
    )
    app.state.pool = pool
    app.state.settings = cfg
    app.state.metrics = metrics
    app.state.uploads = uploads
    return Observed(app, metrics, {route.path for route in routes})


def _record(
    metrics: ServiceMetrics,
    fields: dict[str, Any],
    backend: str,
    request: api.Request,
    outcome: Outcome,
    seconds: float,
) -> None:
    """Count one conversion and add its figures to the request's log line."""
    source = formats.label(request.data)
    made_by = outcome.reply.headers.get("X-Heicconv-Backend", backend)
    result = "ok" if outcome.error is None else type(outcome.error).__name__
    bytes_out = len(outcome.reply.body) if outcome.error is None else None
    metrics.count_conversion(made_by, source, request.fmt, result, seconds, len(request.data), bytes_out)
    fields.update(
        backend=made_by,
        input_format=source,
        output_format=request.fmt,
        bytes_in=len(request.data),
        outcome=result,
        conversion_ms=round(seconds * 1000, 1),
    )
    if outcome.error is None:
        fields["bytes_out"] = bytes_out
        fields["image_size"] = outcome.reply.headers.get("X-Image-Size")
    else:
        fields["error"] = type(outcome.error).__name__
        event = getattr(outcome.error, "worker_event", None)
        if event:
            fields["worker_event"] = event


class Observed:
    """Around the app: the request id (the caller's ``X-Request-Id`` or a new one, returned on every answer),
    one log line per request, and the count of answers by route and status."""

    def __init__(self, app: Starlette, metrics: ServiceMetrics, routes: set[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        rid = request_id(given)
        client = scope.get("client")
        fields: dict[str, Any] = {
            "request_id": rid,
            "method": scope["method"],
            "path": scope["path"],
            "client": client[0] if client else None,
        }
        scope[_FIELDS] = fields
        current = REQUEST_ID.set(rid)
        status = [500]
        started = time.perf_counter()
        route = scope["path"] if scope["path"] in self.routes else "other"
        # The caller's trace (the http backend sends traceparent) continues here, when the service traces.
        parent = extract({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        attributes = {"http.request.method": scope["method"], "http.route": route, "heicconv.request_id": rid}
        traced = span(f"{scope['method']} {route}", attributes, kind="SERVER", context=parent)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("ascii"))]
            await send(message)

        try:
            with traced as server_span:
                await self.app(scope, receive, send_with_id)
                if server_span is not None:
                    server_span.set_attribute("http.response.status_code", status[0])
        finally:
            self.metrics.requests.labels(route, str(status[0])).inc()
            fields["status"] = status[0]
            fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            level = logging.ERROR if status[0] >= 500 else logging.DEBUG if route in _OPEN else logging.INFO
            log.log(level, "%s %s %d", scope["method"], scope["path"], status[0], extra={"fields": fields})
            REQUEST_ID.reset(current)


def _too_large(limit: int) -> api.Reply:
    return api.error_reply(413, "too_large", f"the request body is larger than {limit} bytes")
