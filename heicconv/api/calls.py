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
from ..backends.contract import Backend, Result
from ..config import effective, settings
from ..config.tracing import span
from ..container.info import ImageInfo
from ..container.info import probe as read_header
from ..errors import BackendUnavailableError, UnsupportedInputError
from ..options import Limits, Options, formats
from ..pipeline import run

__all__ = [
    "backend_names",
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
        chosen, fmt, options, limits, sources = _selected(fmt, options, limits, backend)
        result = dataclasses.replace(run.convert(chosen, data, fmt, options, limits), sources=sources)
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


def _selected(
    fmt: str, options: Options | None, limits: Limits | None, backend: str | None
) -> tuple[Backend, str, Options, Limits, dict[str, str]]:
    """The backend, the format's canonical name, the options and limits in effect, and where each came from."""
    fmt = formats.normalize(fmt)
    options, limits, sources = effective(options, limits)
    sources["backend"] = "the call's backend" if backend is not None else settings().where("backend")
    return select(backend), fmt, options, limits, sources


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
        chosen, fmt, options, limits, sources = await in_pool(_selected, fmt, options, limits, backend)
        result = await run.convert_async(chosen, data, fmt, options, limits, in_pool)
        result = dataclasses.replace(result, sources=sources)
        if current is not None:
            _describe(current, result)
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


def backend_names(*, remote: bool | None = None) -> tuple[str, ...]:
    """Every known backend's name, sorted, without building any: with ``remote=False`` only those that convert
    in this process, with ``remote=True`` only those that send the image elsewhere (``http``, ``lambda``).

    >>> import heicconv.api.calls as calls
    >>> "pillow" in calls.backend_names(remote=False), "http" in calls.backend_names(remote=False)
    (True, False)
    """
    return tuple(n for n in registry.known_names() if remote is None or registry.is_remote(n) == remote)


def list_backends() -> list[registry.BackendStatus]:
    """Every known backend: available or not and why, versions and capabilities.

    >>> import heicconv
    >>> "pillow" in [b.name for b in heicconv.list_backends()]
    True
    """
    return [registry.status(name) for name in registry.known_names()]
