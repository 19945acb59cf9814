"""The one place that decides which backend runs, and the public calls built on it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import functools
import os
import threading
from typing import Any

from ..backends import registry, threads
from ..backends.contract import Backend, Job, Result, is_remote
from ..config import effective, settings
from ..config.tracing import span
from ..container.info import ImageInfo
from ..container.info import probe as read_header
from ..errors import BackendUnavailableError, EncodeError, HeicconvError, UnsupportedInputError
from ..options import Limits, Options, formats
from ..pipeline import hdr, plan

__all__ = [
    "convert",
    "convert_async",
    "convert_with_report",
    "convert_with_report_async",
    "list_backends",
    "probe",
    "select",
    "selected_backend",
    "share_cpus",
]


def select(backend: str | None = None) -> Backend:
    """The backend a call would use: ``backend`` if given, else the configured one.

    :param backend: a backend's name or ``auto``; ``None`` is the configured one.

    A named backend must work or raise ``BackendUnavailableError``; only ``auto``
    falls back, in the configured order.
    """
    name = backend if backend is not None else settings().backend
    if name != "auto":
        return registry.get(name)
    reasons = []
    for candidate in settings().order:
        try:
            return registry.get(candidate)
        except BackendUnavailableError as exc:
            reasons.append(f"{candidate}: {exc}")
    raise BackendUnavailableError("no backend is available: " + "; ".join(reasons))


def share_cpus(workers: int) -> int:
    """Make this process one of ``workers`` converting at once: each image library gets ``2 * CPUs / workers`` threads.

    For the worker processes of a pool (heicconv's own pools call it); returns the threads per library. The
    settings are process-wide, so a process that converts one image at a time should not call it.
    """
    return threads.share(workers)


def selected_backend() -> tuple[str, str]:
    """The name of the backend ``convert()`` would use now, and where that choice came from."""
    s = settings()
    return select().name, s.sources.get("backend", "default (auto)")


def convert(
    data: bytes,
    fmt: str,
    options: Options | None = None,
    *,
    backend: str | None = None,
    limits: Limits | None = None,
) -> bytes:
    """Convert an image (HEIC, HEIF, AVIF, JPEG, PNG, WebP, TIFF) to ``fmt``.

    :param data: the whole input file; its format is read from its bytes, never from a name.
    :param fmt: the output format: ``jpeg`` (or ``jpg``), ``png``, ``webp``, ``avif``, ``tiff`` (``tif``) or
        ``heic`` (``heif``); anything else raises ``UnsupportedOutputError``.
    :param options: how to convert (:class:`Options`); a field it does not set comes from the configuration
        (``configure()``, the environment, the config file), else its default.
    :param backend: a backend's name (``pillow``, ``vips``, ``http``, a plugin's...) or ``auto``; ``None`` is
        the configured one. A named backend that cannot run raises ``BackendUnavailableError``.
    :param limits: what input is accepted (:class:`Limits`), configured like ``options``.
    :returns: the output file's bytes.
    :raises HeicconvError: a subclass saying what went wrong (docs/errors.md); nothing else escapes.

    >>> import heicconv
    >>> from heicconv.testing.fixtures import make_heic
    >>> jpeg = heicconv.convert(make_heic(size=(32, 24)), "jpeg", heicconv.Options(quality=85))
    >>> jpeg[:3] == b"\\xff\\xd8\\xff"
    True
    """
    return convert_with_report(data, fmt, options, backend=backend, limits=limits).data


def convert_with_report(
    data: bytes,
    fmt: str,
    options: Options | None = None,
    *,
    backend: str | None = None,
    limits: Limits | None = None,
) -> Result:
    """Like :func:`convert`, but return a :class:`Result`: the bytes, what was done, and where each setting came from.

    The parameters and errors are :func:`convert`'s.

    >>> import heicconv
    >>> from heicconv.testing.fixtures import make_heic
    >>> result = heicconv.convert_with_report(make_heic(size=(32, 24)), "png", heicconv.Options(quality=70))
    >>> (result.width, result.height, result.backend in heicconv.config.DEFAULT_ORDER)
    (32, 24, True)
    >>> result.sources["options.quality"], result.sources["options.metadata"], result.sources["backend"]
    ("the call's options", 'default', 'default (auto)')
    """
    with span("heicconv.convert", {"heicconv.output_format": fmt, "heicconv.input_bytes": len(data)}) as current:
        chosen, job, sources = _planned(data, fmt, options, limits, backend)
        result = _finished(chosen, job, _run_guarded(chosen, job), sources)
        if current is not None:
            _describe(current, result)
        return result


def _describe(current: Any, result: Result) -> None:
    """The span's figures of a conversion that ended (its attributes, as the service's log fields)."""
    current.set_attributes(
        {
            "heicconv.backend": result.backend,
            "heicconv.output_format": result.format,
            "heicconv.output_bytes": len(result.data),
            "heicconv.image_size": f"{result.width}x{result.height}",
        }
    )


def _planned(
    data: bytes, fmt: str, options: Options | None, limits: Limits | None, backend: str | None
) -> tuple[Backend, Job, dict[str, str]]:
    """The backend, the job (header read and limits checked here, for remote backends too) and the sources."""
    fmt = formats.normalize(fmt)
    options, limits, sources = effective(options, limits)
    sources["backend"] = "the call's backend" if backend is not None else settings().where("backend")
    chosen = select(backend)
    return chosen, plan(data, fmt, options, limits, chosen.capabilities, registry.who_can, chosen.name), sources


def _finished(chosen: Backend, job: Job, result: Result, sources: dict[str, str]) -> Result:
    if not is_remote(chosen):  # a remote heicconv has carried the gain map already
        # The gain map (the source's, or one computed for a PQ or HLG source): Ultra HDR JPEG, or reported dropped.
        tone_mapped = job.tone_map if job.original is not None else 0
        result = hdr.attach(job.original or job.source, result, job.options, job.computed_gain_map, tone_mapped)
        # The name it was selected by, even when a third-party backend writes its class's own name into its Result.
        return dataclasses.replace(result, backend=chosen.name, sources=sources)
    return dataclasses.replace(result, sources=sources)


async def convert_async(
    data: bytes,
    fmt: str,
    options: Options | None = None,
    *,
    backend: str | None = None,
    limits: Limits | None = None,
) -> bytes:
    """:func:`convert` for asyncio applications: the same result and errors, without blocking the event loop.

    >>> import asyncio, heicconv
    >>> from heicconv.testing.fixtures import make_heic
    >>> asyncio.run(heicconv.convert_async(make_heic(size=(32, 24)), "png"))[1:4]
    b'PNG'
    """
    return (await convert_with_report_async(data, fmt, options, backend=backend, limits=limits)).data


async def convert_with_report_async(
    data: bytes,
    fmt: str,
    options: Options | None = None,
    *,
    backend: str | None = None,
    limits: Limits | None = None,
) -> Result:
    """:func:`convert_with_report` for asyncio applications.

    A local backend converts in heicconv's bounded thread pool (one thread per CPU: the image libraries
    release the GIL, and more threads than CPUs would only queue); a remote backend
    (``http``, ``lambda``) reads the header and checks the limits in that pool, then waits for the remote
    with non-blocking I/O, so waiting conversions hold no thread (``lambda`` signs its request in a
    thread first, a few milliseconds).
    """
    loop = asyncio.get_running_loop()

    def in_pool(*call: Any) -> Any:  # in this task's context: the pool's spans are children of its span
        return loop.run_in_executor(_executor(), functools.partial(contextvars.copy_context().run, *call))

    with span("heicconv.convert", {"heicconv.output_format": fmt, "heicconv.input_bytes": len(data)}) as current:
        chosen, job, sources = await in_pool(_planned, data, fmt, options, limits, backend)
        run_async = getattr(chosen, "run_async", None)
        if run_async is None:
            result = await in_pool(_run_guarded, chosen, job)
        else:
            result = await _guarded(chosen, run_async(job))
        finished: Result = await in_pool(_finished, chosen, job, result, sources)
        if current is not None:
            _describe(current, finished)
        return finished


def _run_guarded(chosen: Backend, job: Job) -> Result:
    if job.tone_map and not is_remote(chosen):
        hdr.tone_map(job, chosen.capabilities.inputs)  # a PQ or HLG source rendered SDR: the backend converts that
    try:
        return chosen.run(job)
    except HeicconvError:
        raise
    except Exception as exc:  # a third-party backend's own error never escapes
        raise EncodeError(f"backend {chosen.name!r} failed: {exc}") from exc


async def _guarded(chosen: Backend, pending: Any) -> Result:
    try:
        result: Result = await pending
    except HeicconvError:
        raise
    except Exception as exc:
        raise EncodeError(f"backend {chosen.name!r} failed: {exc}") from exc
    return result


_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    """The bounded pool of the async API, made on first use: one thread per CPU."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="heicconv-async")
        return _pool


def probe(data: bytes, *, backend: str | None = None) -> ImageInfo:
    """Read what ``data`` holds without decoding pixels (see :class:`ImageInfo`).

    heicconv reads the header itself, so every backend sees the same ``ImageInfo``; with ``backend``,
    that backend must also be available and read the format (``UnsupportedInputError`` if not).

    >>> import heicconv
    >>> from heicconv.testing.fixtures import make_heic
    >>> heicconv.probe(make_heic(size=(40, 30))).width
    40
    """
    info = read_header(data)
    if backend is not None:  # the header is read the same way for every backend; check that this one reads it
        chosen = select(backend)
        if info.format not in chosen.capabilities.inputs:
            raise UnsupportedInputError(
                f"backend {chosen.name!r} cannot read {info.format}{registry.who_can(reads=info.format)}"
            )
    return info


def list_backends() -> list[registry.BackendStatus]:
    """Every known backend: available or not and why, versions and capabilities.

    >>> import heicconv
    >>> "pillow" in [b.name for b in heicconv.list_backends()]
    True
    """
    return [registry.status(name) for name in registry.known_names()]
