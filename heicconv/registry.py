"""Which backends exist, by name, without importing them.

Built-in backends live in one table of names to dotted paths; third-party ones
arrive through the ``heicconv.backends`` entry-point group, read as strings, so
listing backends imports no image library.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import BackendConflictError, BackendConflictWarning, BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from .backends.base import Capabilities, Converter

__all__ = ["BUILTIN", "BackendStatus", "get", "known_names", "registry", "status"]

ENTRY_POINT_GROUP = "heicconv.backends"


@dataclass(frozen=True)
class Entry:
    """Where a backend lives and what installs it."""

    target: str  # "module:Class"
    extra: str = ""  # pip extra
    system: str = ""  # system packages (Debian/Ubuntu names)


#: The built-in backends, sorted by name.
BUILTIN: MappingProxyType[str, Entry] = MappingProxyType(
    {
        "ffmpeg": Entry("heicconv.backends.ffmpeg:FfmpegBackend", "ffmpeg", ""),
        "pillow": Entry("heicconv.backends.pillow:PillowBackend", "", ""),
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
            "features": sorted(caps.features) if caps else [],
            "target": self.target,
        }


_lock = threading.Lock()
_instances: dict[str, Converter] = {}
_plugins: dict[str, Entry] | None = None
_warned: set[str] = set()


def entry_points(group: str) -> Any:
    """The installed entry points of ``group`` (importlib.metadata costs ~16 ms: loaded on first lookup only)."""
    from importlib import metadata

    return metadata.entry_points(group=group)


def _third_party() -> dict[str, Entry]:
    global _plugins
    if _plugins is None:
        found = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in BUILTIN:
                found[ep.name] = Entry(ep.value, "", "")
        _plugins = found
    return _plugins


def registry() -> MappingProxyType[str, Entry]:
    """Every known backend name and where it lives (read-only)."""
    return MappingProxyType({**dict(BUILTIN), **_third_party()})


def known_names() -> tuple[str, ...]:
    return tuple(sorted(registry()))


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


def get(name: str) -> Converter:
    """The backend called ``name``, imported on first use; raises if it cannot run here."""
    backend = _instances.get(name)
    if backend is not None:
        return backend
    entry = registry().get(name)
    if entry is None:
        raise ConfigError(f"backend: unknown backend {name!r}; known: {', '.join(known_names())}")
    with _lock:
        backend = _instances.get(name)
        if backend is None:
            module_name, _, attr = entry.target.partition(":")
            try:
                module = importlib.import_module(module_name)
                factory = getattr(module, attr)
            except ImportError as exc:
                if exc.name == module_name:  # heicconv's own module, not the library it wraps
                    where = "reinstall heicconv" if name in BUILTIN else "is its package installed?"
                    raise BackendUnavailableError(
                        f"backend {name!r}: module {module_name} is missing; {where}"
                    ) from exc
                raise BackendUnavailableError(
                    f"backend {name!r} cannot be imported ({exc}){install_hint(name)}"
                ) from exc
            try:
                backend = factory()
            except BackendConflictError as exc:
                _warn_conflict(name, exc)
                raise
            _instances[name] = backend
    return backend


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
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def capabilities_table() -> str:
    """A Markdown table of every available backend's capabilities (``docs/backends.md`` embeds it)."""
    from .backends.base import FEATURES
    from .formats import INPUT_FORMATS, OUTPUT_FORMATS

    statuses = [status(n) for n in known_names()]
    ready = [s for s in statuses if s.available and s.capabilities is not None]
    rows = ["| | " + " | ".join(f"`{s.name}`" for s in ready) + " |", "|---|" + "---|" * len(ready)]
    for label, names, attr in (
        ("reads", INPUT_FORMATS, "inputs"),
        ("writes", OUTPUT_FORMATS, "outputs"),
        ("feature", FEATURES, "features"),
    ):
        for name in names:
            marks = ["yes" if name in getattr(s.capabilities, attr) else "no" for s in ready]
            rows.append(f"| {label} {name} | " + " | ".join(marks) + " |")
    return "\n".join(rows)


def status(name: str) -> BackendStatus:
    """Whether ``name`` works here, and if not, why, in words a user can act on."""
    target = registry()[name].target
    try:
        backend = get(name)
    except BackendUnavailableError as exc:
        return BackendStatus(name, False, str(exc), target=target)
    return BackendStatus(name, True, "", backend.versions(), backend.capabilities, target)
