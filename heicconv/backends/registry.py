"""Which backends exist, by name, without importing them.

Built-in backends live in one table of names to dotted paths; third-party ones
arrive through the ``heicconv.backends`` entry-point group, read as strings, so
listing backends imports no image library, or through :func:`register_backend`.
A backend is built on first use and checked against the contract
(``heicconv.backends.contract.Backend``); when it cannot run here, the reason is
kept, so ``auto`` does not probe it again on every call.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .. import config
from ..errors import (
    BackendConflictError,
    BackendConflictWarning,
    BackendUnavailableError,
    ConfigError,
    HeicconvError,
)

if TYPE_CHECKING:
    from .contract import Backend, Capabilities, Feature

__all__ = [
    "BUILTIN",
    "BackendStatus",
    "get",
    "is_remote",
    "known_names",
    "register_backend",
    "registry",
    "status",
    "unregister_backend",
    "who_can",
]

ENTRY_POINT_GROUP = "heicconv.backends"


@dataclass(frozen=True)
class Entry:
    """Where a backend lives and what installs it."""

    target: str | Callable[[], Backend]  # "module:Class", or a class or factory given to register_backend
    extra: str = ""  # pip extra
    system: str = ""  # system packages (Debian/Ubuntu names)
    remote: bool = False  # converts elsewhere (a heicconv service, a Lambda function): never chosen by `auto`


#: The built-in backends, sorted by name.
BUILTIN: MappingProxyType[str, Entry] = MappingProxyType(
    {
        "ffmpeg": Entry("heicconv.backends.ffmpeg:FfmpegBackend", "ffmpeg", ""),
        "pillow": Entry("heicconv.backends.pillow:PillowBackend", "", ""),
        "http": Entry("heicconv.backends.remotes:http_backend", remote=True),
        "lambda": Entry("heicconv.backends.remotes:lambda_backend", "lambda", remote=True),
        "vips": Entry(
            "heicconv.backends.vips:VipsBackend",
            "vips",
            "libvips42 built with libheif, and an HEVC decoder for libheif "
            "(Debian 12: libheif1 libde265-0; Debian 13 / Ubuntu 24.04: libheif-plugin-libde265)",
        ),
        "wand": Entry(
            "heicconv.backends.wand:WandBackend",
            "wand",
            "ImageMagick's MagickWand with its HEIC coder "
            "(Debian/Ubuntu: libmagickwand-6.q16-6 libmagickcore-6.q16-6-extra libheif1 libde265-0)",
        ),
    }
)


@dataclass(frozen=True)
class BackendStatus:
    """What ``heicconv.list_backends()`` says about one backend."""

    name: str
    available: bool
    reason: str = ""  # why not, in words a user can act on
    versions: dict[str, str] = field(default_factory=dict)
    capabilities: Capabilities | None = None
    target: str = ""

    def to_dict(self) -> dict[str, Any]:
        caps = self.capabilities
        return {
            "name": self.name,
            "available": self.available,
            "reason": self.reason,
            "versions": dict(self.versions),
            "inputs": sorted(caps.inputs) if caps else [],
            "outputs": sorted(caps.outputs) if caps else [],
            "features": caps.features.labels() if caps else [],
            "target": self.target,
        }


_lock = threading.Lock()  # guards the tables below, never held while a backend is built
_building: dict[str, threading.Lock] = {}  # one per name: a slow probe of one backend does not stall another
_instances: dict[str, Backend] = {}
_unavailable: dict[str, BackendUnavailableError] = {}  # why a backend cannot run here, found once
_registered: dict[str, Entry] = {}
_entry_points: dict[str, Entry] | None = None
_warned: set[str] = set()


def entry_points(group: str) -> Any:
    """The installed entry points of ``group`` (importlib.metadata costs ~16 ms: loaded on first lookup only)."""
    from importlib import metadata

    return metadata.entry_points(group=group)


def _third_party() -> dict[str, Entry]:
    global _entry_points
    if _entry_points is None:
        _entry_points = {
            ep.name: Entry(ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN
        }
    return _entry_points


def registry() -> MappingProxyType[str, Entry]:
    """Every known backend name and where it lives (read-only)."""
    return MappingProxyType({**dict(BUILTIN), **_third_party(), **_registered})


def known_names() -> tuple[str, ...]:
    return tuple(sorted(registry()))


def register_backend(
    name: str,
    target: str | Callable[[], Backend],
    *,
    replace: bool = False,
    extra: str = "",
    system: str = "",
) -> None:
    """Make a backend available as ``name``: ``target`` is ``"module:Class"`` (imported on first use), or a
    class or factory. It is built and checked against the contract when first selected.

    A name already known (built-in, an entry point, or registered) is refused unless ``replace``;
    ``extra`` and ``system`` are the install hint shown when it cannot be imported.

    >>> import heicconv
    >>> heicconv.register_backend("mine", "mypackage.backend:MyBackend")
    >>> "mine" in [b.name for b in heicconv.list_backends()]
    True
    >>> heicconv.unregister_backend("mine")
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"register_backend: the name must be an identifier such as 'mine', not {name!r}")
    if name == "auto":
        raise ConfigError("register_backend: 'auto' means 'the first available backend' and cannot be registered")
    if isinstance(target, str):
        if ":" not in target:
            raise ConfigError(f"register_backend: target {target!r} must be 'module:Class'")
    elif not callable(target):
        raise ConfigError(f"register_backend: target must be 'module:Class', a class or a factory, not {target!r}")
    with _lock:
        if name in registry() and not replace:
            raise ConfigError(f"register_backend: backend {name!r} exists; pass replace=True to replace it")
        _registered[name] = Entry(target, extra, system)
        _forget(name)


def unregister_backend(name: str) -> None:
    """Remove a backend added with :func:`register_backend` (a built-in one it replaced comes back)."""
    with _lock:
        if _registered.pop(name, None) is None:
            raise ConfigError(f"unregister_backend: {name!r} was not registered with register_backend")
        _forget(name)


def _forget(name: str) -> None:
    _instances.pop(name, None)
    _unavailable.pop(name, None)
    _warned.discard(name)


def reset() -> None:
    """Forget every built backend and every reason found (after installing a library in a running process)."""
    global _entry_points
    with _lock:
        _instances.clear()
        _unavailable.clear()
        _warned.clear()
        _entry_points = None


def install_hint(name: str) -> str:
    entry = registry().get(name)
    if entry is None or not (entry.extra or entry.system):
        return ""
    parts = []
    if entry.extra:
        parts.append(f"pip install 'heicconv[{entry.extra}]'")
    if entry.system:
        parts.append(f"and the system packages: {entry.system}")
    return "; install it with " + " ".join(parts)


def get(name: str) -> Backend:
    """The backend called ``name``, built on first use; raises ``BackendUnavailableError`` if it cannot run here.

    The reason is remembered: asking again raises it again without probing the library again.
    """
    backend = _instances.get(name)
    if backend is not None:
        return backend
    entry = registry().get(name)
    if entry is None:
        raise ConfigError(f"backend: unknown backend {name!r}; known: {', '.join(known_names())}")
    if entry.remote:  # built from settings that may change: its factory keeps one per settings, nothing is kept here
        return _build(name, entry)
    with _lock:
        building = _building.setdefault(name, threading.Lock())
    with building:
        backend = _instances.get(name)
        if backend is not None:
            return backend
        known = _unavailable.get(name)
        if known is not None:
            raise type(known)(str(known)) from known.__cause__
        try:
            backend = _build(name, entry)
        except BackendUnavailableError as exc:
            if isinstance(exc, BackendConflictError):
                _warn_conflict(name, exc)
            with _lock:
                if registry().get(name) is entry:  # not replaced meanwhile
                    _unavailable[name] = exc
            raise
        with _lock:
            if registry().get(name) is entry:
                _instances[name] = backend
    return backend


def _build(name: str, entry: Entry) -> Backend:
    from . import threads
    from .contract import missing_from_contract

    factory: Callable[[], Any]
    if isinstance(entry.target, str):
        module_name, _, attr = entry.target.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            if exc.name == module_name:  # heicconv's own module, or the plugin's, not the library it wraps
                where = "reinstall heicconv" if name in BUILTIN else "is its package installed?"
                raise BackendUnavailableError(f"backend {name!r}: module {module_name} is missing; {where}") from exc
            raise BackendUnavailableError(f"backend {name!r} cannot be imported ({exc}){install_hint(name)}") from exc
        except AttributeError as exc:
            raise BackendUnavailableError(f"backend {name!r}: {entry.target} does not exist ({exc})") from exc
    else:
        factory = entry.target
    try:
        backend = factory()
    except BackendConflictError:
        raise
    except BackendUnavailableError as exc:  # the library is missing or lacks HEIF: say what installs it
        hint = install_hint(name)
        if not hint or hint in str(exc):
            raise
        raise type(exc)(f"{exc}{hint}") from exc.__cause__
    except ImportError as exc:
        raise BackendUnavailableError(f"backend {name!r} cannot load its library ({exc}){install_hint(name)}") from exc
    except Exception as exc:  # a plugin that fails to build must not break `auto` or `heicconv backends`
        raise BackendUnavailableError(f"backend {name!r} failed to start: {type(exc).__name__}: {exc}") from exc
    missing = missing_from_contract(backend)
    if missing:
        raise BackendUnavailableError(
            f"backend {name!r} does not satisfy the backend contract (docs/backends.md): it lacks {', '.join(missing)}"
        )
    if backend.name != name:  # registered under another name than its class says: that name is what users see
        try:
            backend.name = name
        except AttributeError as exc:
            raise BackendUnavailableError(
                f"backend {name!r}: its name is {backend.name!r} and cannot be set to the registered name ({exc})"
            ) from exc
    threads.apply()  # a library loaded just now gets this process's share of the CPUs, if a pool set one
    return backend


def who_can(fmt: str | None = None, feature: Feature | None = None, *, reads: str | None = None) -> str:
    """Which available backends write ``fmt`` with ``feature`` (or read ``reads``), as a clause for an error message.

    Derived from the backends' capabilities, so a hint never names a backend that cannot do it.
    """
    able = []
    for name in known_names():
        if is_remote(name):  # a hint names what can run here; asking a remote would cost a round trip
            continue
        try:
            caps = get(name).capabilities
        except HeicconvError:
            continue
        if fmt is not None and fmt not in caps.outputs:
            continue
        if reads is not None and reads not in caps.inputs:
            continue
        if feature is not None and feature not in caps.features:
            continue
        able.append(name)
    if not able:
        return ""
    return "; " + (f"the {able[0]} backend can" if len(able) == 1 else f"backends that can: {', '.join(able)}")


def _warn_conflict(name: str, exc: BackendConflictError) -> None:
    """Say once, loudly, that an installed backend cannot run here: 'auto' then picks another one."""
    if name in _warned:
        return
    _warned.add(name)
    warnings.warn(
        f"heicconv backend {name!r} is installed but cannot run in this process: {exc} "
        "Backend 'auto' skips it and uses the next one in its order; `heicconv backends` shows the reason.",
        BackendConflictWarning,
        stacklevel=_outside_heicconv(),
    )


def _outside_heicconv() -> int:
    """The ``stacklevel`` of the first caller outside heicconv, so a warning names the application's line."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # heicconv/, above backends/
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def is_remote(name: str) -> bool:
    """Whether backend ``name`` converts elsewhere (``http``, ``lambda``): ``auto`` never picks it."""
    entry = registry().get(name)
    return entry is not None and (entry.remote or bool(getattr(entry.target, "remote", False)))


def capabilities_table() -> str:
    """A Markdown table of every available backend's capabilities (``docs/backends.md`` embeds it)."""
    from ..options.formats import INPUT_FORMATS, OUTPUT_FORMATS
    from .contract import Feature

    statuses = [status(n) for n in known_names() if not is_remote(n)]
    ready = [s for s in statuses if s.available and s.capabilities is not None]
    rows = ["| | " + " | ".join(f"`{s.name}`" for s in ready) + " |", "|---|" + "---|" * len(ready)]
    for label, names, attr in (("reads", INPUT_FORMATS, "inputs"), ("writes", OUTPUT_FORMATS, "outputs")):
        for name in names:
            marks = ["yes" if name in getattr(s.capabilities, attr) else "no" for s in ready]
            rows.append(f"| {label} {name} | " + " | ".join(marks) + " |")
    for feature in Feature:
        marks = ["yes" if feature in s.capabilities.features else "no" for s in ready if s.capabilities]
        rows.append(f"| feature {feature.label} | " + " | ".join(marks) + " |")
    return "\n".join(rows)


def status(name: str) -> BackendStatus:
    """Whether ``name`` works here, and if not, why, in words a user can act on."""
    target = registry()[name].target
    if not isinstance(target, str):
        target = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"
    try:
        backend = get(name)
        # A remote backend answers these from the remote, so this also says whether it answers now.
        versions, capabilities = backend.versions(), backend.capabilities
    except BackendUnavailableError as exc:
        return BackendStatus(name, False, str(exc), target=target)
    except HeicconvError as exc:  # a remote that answers, but not as a heicconv service
        return BackendStatus(name, False, str(exc), target=target)
    return BackendStatus(name, True, "", versions, capabilities, target)


config.know_backends(known_names, is_remote)
