"""Conversions in worker processes with a memory cap and a wall-clock timeout.

A pathological upload then costs one worker, replaced at once, and the caller gets a clean
``LimitExceededError`` or ``heicconv.TimeoutError`` instead of a dead service.

Workers are started with ``spawn``: each first imports the main program, so a script must create
the pool under ``if __name__ == "__main__":``. A worker that dies before it is ready raises
``ConfigError`` saying so (the program's setup is wrong, not the input). Workers also apply the
caller's ``heicconv.configure()`` settings, which a new process would not otherwise have.

The memory cap is on resident memory, checked every 20 ms while a conversion runs (Linux's
``/proc``; elsewhere only the timeout applies). An address-space limit (``RLIMIT_AS``) would be
simpler but misjudges multi-threaded libraries: libvips reserves about 700 MB of virtual memory
for its thread arenas before it decodes anything. Use it where one
process serves many users (the container route); on AWS Lambda the function's own memory size
and timeout play that role.

>>> import heicconv
>>> from heicconv.api.workers import IsolatedConverter
>>> from heicconv.testing.fixtures import make_heic
>>> with IsolatedConverter(workers=1, timeout=60) as pool:
...     pool.convert(make_heic(), "png")[:4]
b'\\x89PNG'
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import config
from ..backends.contract import Result
from ..errors import ConfigError, DecodeError, HeicconvError, LimitExceededError, TimeoutError
from ..options import Limits, Options

__all__ = ["IsolatedConverter", "cap_malloc_arenas"]

#: How long a new worker may take to import heicconv and say it is ready (about 0.2 s on an idle machine).
_START_TIMEOUT = 60.0


def _rss(pid: int) -> int:
    """Resident memory of a process in bytes (Linux); 0 where /proc is not there."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _serve(conn: multiprocessing.connection.Connection, memory_bytes: int, workers: int) -> None:
    """Worker loop: say it is ready, then convert what arrives until the pipe closes."""
    import heicconv
    from heicconv.api.calls import share_cpus

    share_cpus(workers)  # one of `workers` processes converting at once: its decoders get their share of the CPUs

    conn.send(("ready", None))  # the parent's proof that this process started (see _cannot_start)
    applied: dict[str, Any] = {}
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        data, fmt, options, backend, limits, configured = request
        try:
            if configured != applied:  # the caller's configure() settings, which a new process does not inherit
                heicconv.config.reset()
                applied = {}
                heicconv.configure(**configured)
                applied = configured
            result = heicconv.convert_with_report(data, fmt, options, backend=backend, limits=limits)
            conn.send(("ok", result))
        except MemoryError:
            conn.send(
                (
                    "error",
                    _event(LimitExceededError(f"the conversion needed more than {memory_bytes >> 20} MB"), "memory"),
                )
            )
        except HeicconvError as exc:
            conn.send(("error", exc))
        except Exception as exc:  # heicconv wraps library errors; anything else is a bug worth seeing
            conn.send(("error", _event(DecodeError(f"the worker failed: {type(exc).__name__}: {exc}"), "bug")))


E = TypeVar("E", bound=HeicconvError)


def _event(error: E, event: str) -> E:
    """``error``, marked as one the pool raises about its worker (``HeicconvError.worker_event``)."""
    error.worker_event = event
    return error


def _cannot_start(code: int | None) -> ConfigError:
    """What to change when a worker died (or hung) before it said "ready": how the program is set up, not the input."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    path = getattr(main, "__file__", None)
    what = f"exited (code {code})" if code is not None else f"did not start within {_START_TIMEOUT:g} s"
    head = (
        f"IsolatedConverter: a worker process {what} before it was ready; no conversion was tried. "
        "A worker is a new Python process that first imports your main program (the 'spawn' start method)"
    )
    guard = 'create the IsolatedConverter (and do all other work) under `if __name__ == "__main__":`'
    if spec is None and path and not os.path.isfile(path):
        return ConfigError(f"{head}, and a program read from {path} cannot be imported: save it as a .py file, {guard}")
    if spec is not None or path:
        name = f"module {spec.name}" if spec is not None else f"script {path}"
        return ConfigError(
            f"{head}, and importing the {name} failed or hung there: {guard}; the worker's error is on stderr"
        )
    return ConfigError(f"{head}; the worker's error is on stderr")


@dataclass
class _Worker:
    process: Any
    conn: multiprocessing.connection.Connection
    ready: bool = False


class IsolatedConverter:
    """A pool of worker processes that run ``heicconv.convert`` under a memory cap and a timeout.

    ``workers`` processes (default: CPU count) are each stopped past ``memory_mb`` of resident memory;
    a call that runs past ``timeout`` seconds kills its worker and raises ``heicconv.TimeoutError``;
    a worker that dies (out of memory, or a crash in a native library) is replaced and the call
    raises ``LimitExceededError`` or ``DecodeError``. Workers that cannot start at all (a script
    without the ``__main__`` guard) raise ``ConfigError`` here, where the pool is made.
    Thread-safe: many threads may call ``convert``.
    """

    def __init__(self, workers: int | None = None, *, timeout: float = 30.0, memory_mb: int = 3072) -> None:
        if timeout <= 0 or memory_mb < 64:
            raise ValueError("timeout must be positive and memory_mb at least 64")
        self.timeout = timeout
        self.memory_bytes = memory_mb * 1024 * 1024
        self._ctx = multiprocessing.get_context("spawn")  # no inherited locks or library state
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.workers = workers or os.cpu_count() or 1
        started = [self._start() for _ in range(self.workers)]
        try:
            for worker in started:  # fail here, where the pool is made, if workers cannot start at all
                self._await_ready(worker)
        except ConfigError:
            self.close()
            raise
        for worker in started:
            self._idle.put(worker)

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_serve, args=(child, self.memory_bytes, self.workers), daemon=True)
        process.start()
        child.close()
        worker = _Worker(process, parent)
        with self._lock:
            self._all.append(worker)
        return worker

    def _await_ready(self, worker: _Worker) -> None:
        """Wait for a new worker's "ready"; one that dies or hangs first is a setup mistake, not the input's fault."""
        try:
            if worker.conn.poll(_START_TIMEOUT):
                worker.conn.recv()
                worker.ready = True
                return
        except (EOFError, OSError):
            pass
        worker.process.join(1)
        code = worker.process.exitcode
        self._retire(worker)
        raise _cannot_start(code)

    def _retire(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)

    def convert(
        self,
        data: bytes,
        fmt: str,
        options: Options | None = None,
        *,
        backend: str | None = None,
        limits: Limits | None = None,
    ) -> bytes:
        """Like ``heicconv.convert``, in a worker process."""
        return self.convert_with_report(data, fmt, options, backend=backend, limits=limits).data

    def convert_with_report(
        self,
        data: bytes,
        fmt: str,
        options: Options | None = None,
        *,
        backend: str | None = None,
        limits: Limits | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Like ``heicconv.convert_with_report`` in a worker process; ``timeout`` replaces the pool's for this call."""
        if self._closed:
            raise RuntimeError("this IsolatedConverter is closed")
        worker = self._idle.get()
        if not worker.ready:  # a replacement for a worker that was stopped
            try:
                self._await_ready(worker)
            except ConfigError:
                self._idle.put(self._start())
                raise
        failure: HeicconvError | None = None
        try:
            failure = self._exchange(
                worker,
                (bytes(data), fmt, options, backend, limits, config.configured()),
                self.timeout if timeout is None else timeout,
            )
            if failure is None:
                status, payload = worker.conn.recv()
        except (EOFError, OSError) as exc:  # the worker died: a crash in a native library, or the OOM killer
            worker.process.join(1)
            code = worker.process.exitcode
            if code in (-9, 137):
                failure = _event(LimitExceededError("the conversion's worker was killed (out of memory)"), "died")
            else:
                died = f"the conversion's worker died (exit code {code}); the input may be hostile"
                failure = _event(DecodeError(died), "died")
            failure.__cause__ = exc
        if failure is not None:
            self._retire(worker)
            if not self._closed:  # a pool closed meanwhile (a worker shutting down) starts no new process
                self._idle.put(self._start())
            raise failure
        self._idle.put(worker)
        if status == "ok":
            out: Result = payload
            return out
        raise payload

    def _exchange(self, worker: _Worker, request: tuple[Any, ...], timeout: float) -> HeicconvError | None:
        """Send a request and wait for its answer, watching the clock and the worker's memory."""
        worker.conn.send(request)
        deadline = time.monotonic() + timeout
        while not worker.conn.poll(0.02):
            if time.monotonic() > deadline:
                return _event(
                    TimeoutError(f"the conversion took longer than {timeout:g} s; its worker was stopped"), "timeout"
                )
            if _rss(worker.process.pid) > self.memory_bytes:
                return _event(
                    LimitExceededError(
                        f"the conversion needed more than {self.memory_bytes >> 20} MB; its worker was stopped"
                    ),
                    "memory",
                )
        return None

    def close(self) -> None:
        """Stop every worker."""
        self._closed = True
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            self._retire(worker)

    def __enter__(self) -> IsolatedConverter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: glibc's arenas a long-running process may use; MALLOC_ARENA_MAX in the environment wins.
MALLOC_ARENAS = 2


def cap_malloc_arenas() -> int | None:
    """Keep glibc from giving each conversion thread its own heap arena; returns the cap, or ``None`` off glibc.

    Freed image buffers stay in per-thread arenas, so a threaded service's RSS climbs for hundreds of
    requests (docs/deployment.md has the measurements). Capping the arenas here covers this process;
    exporting ``MALLOC_ARENA_MAX`` covers the worker processes it starts, which read it when they start.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        cap = int(os.environ.setdefault("MALLOC_ARENA_MAX", str(MALLOC_ARENAS)))
        libc = ctypes.CDLL("libc.so.6")
        m_arena_max = -8  # from glibc's malloc.h
        if libc.mallopt(m_arena_max, cap) != 1:
            return None
    except (OSError, AttributeError, ValueError):  # not glibc (musl has no arenas), or a bad MALLOC_ARENA_MAX
        return None
    return cap
