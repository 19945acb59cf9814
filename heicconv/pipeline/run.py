"""One conversion against one backend: the one path of every call, blocking (:func:`convert`) or on asyncio
(:func:`convert_async`).

Plan (the header read, the limits and the backend's capabilities checked, the output decided into a
``Job``), tone map a PQ or HLG source, run the backend, carry the gain map; a backend's own exception
becomes ``EncodeError`` in one place (:func:`_guarded`). A backend whose capabilities say ``remote``
runs the whole conversion elsewhere, the HDR steps included, so only the plan and the run happen here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

from ..backends import registry
from ..backends.contract import AsyncBackend, Backend, Job, Result
from ..errors import EncodeError, HeicconvError
from ..options import Limits, Options
from . import hdr
from .planner import plan

__all__ = ["convert", "convert_async"]

#: Runs a blocking step off the event loop: ``await in_pool(function, *arguments)``.
InPool = Callable[..., Awaitable[Any]]


def convert(backend: Backend, data: bytes, fmt: str, options: Options, limits: Limits) -> Result:
    """Convert ``data`` to ``fmt`` (a canonical name) with ``backend``, ``options`` and ``limits`` in effect."""
    return _ran(backend, _prepared(backend, data, fmt, options, limits))


async def convert_async(
    backend: Backend, data: bytes, fmt: str, options: Options, limits: Limits, in_pool: InPool
) -> Result:
    """:func:`convert` on an event loop: the blocking steps run through ``in_pool``; a backend whose
    capabilities say ``asynchronous`` is awaited here, so waiting for it holds no thread."""
    job: Job = await in_pool(_prepared, backend, data, fmt, options, limits)
    # Read once the job is planned: a remote's capabilities come from the remote, and are known by then.
    if not backend.capabilities.asynchronous:
        ran: Result = await in_pool(_ran, backend, job)
        return ran
    with _guarded(backend):
        result = await cast(AsyncBackend, backend).run_async(job)
    finished: Result = await in_pool(_finished, backend, job, result)
    return finished


def _prepared(backend: Backend, data: bytes, fmt: str, options: Options, limits: Limits) -> Job:
    """The job (header read and limits checked here, for remote backends too), its PQ or HLG source tone mapped."""
    caps = backend.capabilities
    job = plan(data, fmt, options, limits, caps, registry.who_can, backend.name)
    if job.tone_map and not caps.remote:
        hdr.tone_map(job, caps.inputs)  # a PQ or HLG source rendered SDR: the backend converts that
    return job


def _ran(backend: Backend, job: Job) -> Result:
    # The source's gain map is made in a thread meanwhile, where the output keeps it (Ultra HDR JPEG).
    early = None if backend.capabilities.remote else hdr.start(job)
    try:
        with _guarded(backend):
            result = backend.run(job)
        return _finished(backend, job, result, early)
    finally:
        if early is not None:
            early.settle()


def _finished(backend: Backend, job: Job, result: Result, early: hdr.Early | None = None) -> Result:
    if backend.capabilities.remote:  # a remote heicconv has carried the gain map already
        return result
    # The gain map (the source's, or one computed for a PQ or HLG source): Ultra HDR JPEG, or reported dropped.
    tone_mapped = job.tone_map if job.original is not None else 0
    source = job.original or job.source
    result = hdr.attach(source, result, job.options, job.computed_gain_map, tone_mapped, early)
    # The name it was selected by, even when a third-party backend writes its class's own name into its Result.
    return dataclasses.replace(result, backend=backend.name)


@contextlib.contextmanager
def _guarded(backend: Backend) -> Iterator[None]:
    """A backend's own exception never escapes: it becomes ``EncodeError``, naming the backend."""
    try:
        yield
    except HeicconvError:
        raise
    except Exception as exc:
        raise EncodeError(f"backend {backend.name!r} failed: {exc}") from exc
