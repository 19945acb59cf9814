"""The HTTP service: a Starlette app that converts in a bounded worker pool.

Routes: ``POST /convert`` (raw body or multipart field ``file``; ``?format=`` and
option parameters), ``GET /health``, ``GET /backends``. Every error is JSON.

Conversions are CPU-bound, so they never run on the event loop: at most
``workers`` run at once in a thread or process pool, at most ``queue`` more
wait, and a request beyond that is answered 429 at once rather than left to
time out behind the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import list_backends, selected_backend
from . import api
from .settings import ServerSettings, load

__all__ = ["Pool", "create_app"]

log = logging.getLogger("heicconv.server")


class Pool:
    """A worker pool that admits at most ``workers + queue`` conversions at a time."""

    def __init__(self, settings: ServerSettings) -> None:
        self.workers = settings.workers
        self.capacity = settings.workers + settings.queue
        self.timeout = settings.timeout
        self.kind = settings.pool
        self._inflight = 0
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> concurrent.futures.Executor:
        if self.kind == "process":
            # spawn: a fork of a process running an event loop and library threads is unsafe.
            context = multiprocessing.get_context("spawn")
            return concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context)
        return concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="heicconv")

    def _replace_broken(self, broken: concurrent.futures.Executor) -> None:
        """A worker process died (a crash in a native library): start a fresh pool once."""
        with self._lock:
            if self._executor is broken:
                log.error("a conversion worker process died; starting a new pool")
                self._executor = self._new_executor()
                broken.shutdown(wait=False, cancel_futures=True)

    @property
    def inflight(self) -> int:
        return self._inflight

    def try_acquire(self) -> bool:
        with self._lock:
            if self._inflight >= self.capacity:
                return False
            self._inflight += 1
            return True

    def release(self, *_: Any) -> None:
        with self._lock:
            self._inflight -= 1

    async def convert(self, request: api.Request, work: Callable[[api.Request], api.Reply] = api.run) -> api.Reply:
        """Run one admitted conversion; the slot is freed when the work ends, even after a timeout."""
        executor = self._executor
        try:
            try:
                future = executor.submit(work, request)
            except BrokenProcessPool:
                self._replace_broken(executor)
                executor = self._executor
                future = executor.submit(work, request)
        except Exception:
            self.release()
            raise
        # A worker cannot be interrupted, so the slot stays taken until it really finishes.
        future.add_done_callback(self.release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except asyncio.TimeoutError:
            return api.error_reply(504, "timeout", f"the conversion took longer than {self.timeout:g} s")
        except BrokenProcessPool:
            self._replace_broken(executor)
            return api.error_reply(500, "worker_crashed", "the worker process crashed; the request was not converted")

    def shutdown(self) -> None:
        """Drop queued work and wait for running conversions.

        Waiting matters for the process pool: its workers exit on the executor's
        sentinel, not when the server process dies, so they would otherwise linger.
        """
        self._executor.shutdown(wait=True, cancel_futures=True)


def _send(reply: api.Reply) -> Response:
    return Response(reply.body, reply.status, reply.headers, media_type=reply.content_type)


def create_app(settings: ServerSettings | None = None) -> Starlette:
    """Build the service; ``settings`` default to :func:`heicconv.server.settings.load`."""
    cfg = settings or load()
    pool = Pool(cfg)

    async def convert(request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > cfg.max_body_bytes:
            return _send(_too_large(cfg.max_body_bytes))
        if not pool.try_acquire():
            busy = f"all {pool.workers} workers are busy and {pool.capacity - pool.workers} requests are waiting"
            return _send(api.error_reply(429, "busy", busy, {"Retry-After": "1"}))
        try:
            body = await _read_body(request, cfg.max_body_bytes)
            if body is None:
                pool.release()
                return _send(_too_large(cfg.max_body_bytes))
            headers = {k.lower(): v for k, v in request.headers.items()}
            parsed = api.parse_request(dict(request.query_params), headers, body, default_format=cfg.format)
        except api.RequestRejected as exc:
            pool.release()
            return _send(exc.reply)
        except Exception as exc:
            pool.release()
            return _send(api.reply_for_error(exc))
        return _send(await pool.convert(parsed))

    async def health(request: Request) -> Response:
        try:
            name, where = await asyncio.to_thread(selected_backend)
        except Exception as exc:
            return _send(api.reply_for_error(exc))
        return _send(
            api.json_reply(
                200,
                {
                    "status": "ok",
                    "backend": name,
                    "backend_from": where,
                    "pool": pool.kind,
                    "workers": pool.workers,
                    "inflight": pool.inflight,
                    "capacity": pool.capacity,
                },
            )
        )

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
