"""The HTTP service: a Starlette app that converts in a bounded worker pool.

Routes: ``POST /convert`` (raw body or multipart field ``file``; ``?format=`` and
option parameters), ``GET /health``, ``GET /ready``, ``GET /backends``. Every error is JSON.

A request's body is read in full first, within ``body_timeout`` (else 408) and
``max_body_bytes`` (else 413), by at most ``uploads`` requests at once; only then
does it take a conversion slot, so a slow client holds no slot. Conversions are
CPU-bound, so they never run on the event loop: at most ``workers`` run at once,
at most ``queue`` more wait, and a request beyond that is answered 429 at once
rather than left to time out behind the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .. import webapi as api
from ..core import list_backends, share_cpus
from ..errors import TimeoutError
from ..isolated import IsolatedConverter
from .settings import ServerSettings, load

__all__ = ["Pool", "create_app"]

log = logging.getLogger("heicconv.server")

# A stalled body will not end: close the connection rather than wait for it.
_CLOSE = {"Connection": "close"}


class Pool:
    """At most ``workers`` conversions run at once and ``queue`` more wait; each may take ``timeout`` seconds.

    With ``pool="process"`` each conversion runs in a worker process
    (:class:`heicconv.isolated.IsolatedConverter`) that is killed and replaced when the
    request's time is up or its resident memory passes ``memory_mb``. With
    ``pool="thread"`` conversions run in this process: a thread cannot be stopped, so
    a timed-out conversion keeps its slot until it really ends, and nothing caps its memory.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.workers = settings.workers
        self.capacity = settings.workers + settings.queue
        self.timeout = settings.timeout
        self.kind = settings.pool
        self.memory_mb = settings.memory_mb
        self._inflight = 0
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
        return self._inflight

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

    async def convert(self, request: api.Request) -> api.Reply:
        """Run one admitted conversion; its slot is freed when the work has really ended."""
        deadline = time.monotonic() + self.timeout
        try:
            future = self._threads.submit(self._run, request, deadline)
        except Exception:
            self.release()
            raise
        future.add_done_callback(self.release)  # also called when a waiting conversion is cancelled
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except asyncio.TimeoutError:  # a conversion still waiting is cancelled; a running one ends at its deadline
            return api.reply_for_error(self._timed_out())

    def _run(self, request: api.Request, deadline: float) -> api.Reply:
        if self._isolated is None:
            return api.run(request)
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise self._timed_out()
            result = self._isolated.convert_with_report(
                request.data, request.fmt, request.options, limits=request.limits, timeout=remaining
            )
        except TimeoutError:  # the worker was killed at the request's deadline
            return api.reply_for_error(self._timed_out())
        except Exception as exc:
            return api.reply_for_error(exc)
        return api.reply_for_result(result, request)

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


def create_app(settings: ServerSettings | None = None) -> Starlette:
    """Build the service; ``settings`` default to :func:`heicconv.server.settings.load`."""
    cfg = settings or load()
    pool = Pool(cfg)
    uploading = [0]  # bodies being received; only the event loop touches it

    async def convert(request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > cfg.max_body_bytes:
            return _send(_too_large(cfg.max_body_bytes))
        if uploading[0] >= cfg.uploads:
            busy = f"{cfg.uploads} request bodies are being received; retry shortly"
            return _send(api.error_reply(429, "busy", busy, {"Retry-After": "1"}))
        uploading[0] += 1
        try:
            body = await asyncio.wait_for(_read_body(request, cfg.max_body_bytes), cfg.body_timeout)
        except asyncio.TimeoutError:
            late = f"the request body did not arrive within {cfg.body_timeout:g} s"
            return _send(api.error_reply(408, "body_timeout", late, _CLOSE))
        except ClientDisconnect:
            return _send(api.error_reply(400, "incomplete_body", "the client went away before the body ended"))
        finally:
            uploading[0] -= 1
        if body is None:
            return _send(_too_large(cfg.max_body_bytes))
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            parsed = api.parse_request(dict(request.query_params), headers, body, default_format=cfg.format)
        except api.RequestRejected as exc:
            return _send(exc.reply)
        except Exception as exc:
            return _send(api.reply_for_error(exc))
        if not pool.try_acquire():
            busy = f"all {pool.workers} workers are busy and {pool.capacity - pool.workers} requests are waiting"
            return _send(api.error_reply(429, "busy", busy, {"Retry-After": "1"}))
        return _send(await pool.convert(parsed))

    def load_figures() -> dict[str, object]:
        return {
            "pool": pool.kind,
            "workers": pool.workers,
            "inflight": pool.inflight,
            "capacity": pool.capacity,
            "uploading": uploading[0],
            "uploads": cfg.uploads,
            "saturated": pool.saturated or uploading[0] >= cfg.uploads,
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
        statuses = await asyncio.to_thread(list_backends)
        return _send(api.json_reply(200, {"backends": [s.to_dict() for s in statuses]}))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        return _send(api.error_reply(status, code, str(detail)))

    async def crash(request: Request, exc: Exception) -> Response:
        return _send(api.reply_for_error(exc))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(pool.shutdown)

    app = Starlette(
        routes=[
            Route("/convert", convert, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/backends", backends, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: crash},
        lifespan=lifespan,
    )
    app.state.pool = pool
    app.state.settings = cfg
    return app


def _too_large(limit: int) -> api.Reply:
    return api.error_reply(413, "too_large", f"the request body is larger than {limit} bytes")


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it passes ``limit`` bytes (never buffered past it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
