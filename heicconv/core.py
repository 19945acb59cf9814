"""The one place that decides which backend runs, and the public calls built on it."""

from __future__ import annotations

import dataclasses

from . import formats, registry
from .backends.base import Converter, PipelineBackend, Result, plan
from .config import effective, settings
from .errors import (
    BackendUnavailableError,
    DecodeError,
    EncodeError,
    HeicconvError,
    UnsupportedFormatError,
)
from .info import ImageInfo, inspect
from .options import Limits, Options

__all__ = ["convert", "convert_with_report", "list_backends", "probe", "select", "selected_backend"]


def select(backend: str | None = None) -> Converter:
    """The backend a call would use: ``backend`` if given, else the configured one.

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

    ``options`` and ``limits`` default to the configured ones; ``backend`` to the
    configured backend (see ``heicconv.config``).

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

    >>> import heicconv
    >>> from heicconv.testing.fixtures import make_heic
    >>> result = heicconv.convert_with_report(make_heic(size=(32, 24)), "png", heicconv.Options(quality=70))
    >>> (result.width, result.height, result.backend in heicconv.config.DEFAULT_ORDER)
    (32, 24, True)
    >>> result.sources["options.quality"], result.sources["options.metadata"], result.sources["backend"]
    ("the call's options", 'default', 'default (auto)')
    """
    fmt = formats.normalize(fmt)
    options, limits, sources = effective(options, limits)
    sources["backend"] = "the call's backend" if backend is not None else settings().where("backend")
    conv = select(backend)
    if fmt not in conv.capabilities.outputs:
        raise UnsupportedFormatError(f"backend {conv.name!r} cannot write {fmt}{_who_can(fmt)}")
    if isinstance(conv, PipelineBackend):
        return dataclasses.replace(conv.run(plan(data, fmt, options, limits, conv.capabilities)), sources=sources)
    source = inspect(data, options.image_index, limits)
    if source.info.format not in conv.capabilities.inputs:
        raise UnsupportedFormatError(f"backend {conv.name!r} cannot read {source.info.format}")
    try:
        out = conv.convert(source.data, fmt, options)
    except HeicconvError:
        raise
    except Exception as exc:  # a third-party backend's own error never escapes
        raise EncodeError(f"backend {conv.name!r} failed: {exc}") from exc
    try:
        written = inspect(out)
        width, height = written.width, written.height
    except HeicconvError:  # a format heicconv does not read back: leave the size unknown
        width = height = 0
    return Result(out, fmt, width, height, conv.name, source.info, (f"backend: {conv.name}",), sources=sources)


def probe(data: bytes, *, backend: str | None = None) -> ImageInfo:
    """Read what ``data`` holds without decoding pixels (see :class:`ImageInfo`).

    >>> import heicconv
    >>> from heicconv.testing.fixtures import make_heic
    >>> heicconv.probe(make_heic(size=(40, 30))).width
    40
    """
    if backend is None:
        from .info import probe as read

        return read(data)
    try:
        return select(backend).probe(data)
    except HeicconvError:
        raise
    except Exception as exc:
        raise DecodeError(f"cannot read the header: {exc}") from exc


def list_backends() -> list[registry.BackendStatus]:
    """Every known backend: available or not and why, versions and capabilities.

    >>> import heicconv
    >>> "pillow" in [b.name for b in heicconv.list_backends()]
    True
    """
    return [registry.status(name) for name in registry.known_names()]


def _who_can(fmt: str) -> str:
    able = []
    for name in registry.known_names():
        try:
            if fmt in registry.get(name).capabilities.outputs:
                able.append(name)
        except HeicconvError:
            continue
    return f"; backends that can: {', '.join(able)}" if able else ""
