"""Where settings come from, in one documented order.

For each setting the first source that sets it wins:

1. the call's own argument (``backend=...``, ``options=...``),
2. ``heicconv.configure(...)``,
3. the environment (``HEICCONV_BACKEND``, ``HEICCONV_QUALITY``, ...),
4. a config file: the one ``HEICCONV_CONFIG`` names, else ``heicconv.toml`` in the
   working directory, else ``[tool.heicconv]`` in ``pyproject.toml`` there,
5. the built-in defaults (backend ``auto``).

A config file may hold named profiles (``[profiles.lambda]``, ``[profiles.container]``)
chosen by ``HEICCONV_PROFILE`` (or ``configure(profile=...)``), so one file serves
several deployments. Adapters (command line, HTTP service, Lambda) keep their own
tables (``[cli]``, ``[server]``, ``[lambda]``) read through :func:`section`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .options import Limits, Options, field_from_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["Settings", "configure", "reset", "section", "settings"]

ENV_PREFIX = "HEICCONV_"
DEFAULT_ORDER: tuple[str, ...] = ("pillow", "vips", "wand")
_TOP_KEYS = frozenset({"backend", "backends", "options", "limits", "profiles", "profile"})
_ADAPTER_SECTIONS = frozenset({"cli", "server", "lambda", "bench"})
_OPTION_FIELDS = {f.name for f in dataclasses.fields(Options)}
_LIMIT_FIELDS = {f.name for f in dataclasses.fields(Limits)}


@dataclass(frozen=True)
class Settings:
    """The effective configuration, and where each part came from."""

    backend: str = "auto"
    order: tuple[str, ...] = DEFAULT_ORDER
    options: Options = field(default_factory=Options)
    limits: Limits = field(default_factory=Limits)
    profile: str | None = None
    file: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where it came from
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)


_lock = threading.Lock()
_configured: dict[str, Any] = {}
_cache: tuple[Any, Settings] | None = None


def configure(
    *,
    backend: str | None = None,
    backends: list[str] | tuple[str, ...] | None = None,
    options: Options | dict[str, Any] | None = None,
    limits: Limits | dict[str, Any] | None = None,
    profile: str | None = None,
) -> Settings:
    """Set process-wide defaults; they win over the environment and config files.

    >>> import heicconv
    >>> heicconv.configure(backend="pillow").backend
    'pillow'
    >>> heicconv.config.reset()
    """
    global _cache
    with _lock:
        new = dict(_configured)
        if backend is not None:
            new["backend"] = backend
        if backends is not None:
            new["backends"] = list(backends)
        if options is not None:
            new["options"] = options
        if limits is not None:
            new["limits"] = limits
        if profile is not None:
            new["profile"] = profile
        # Validate before anything is kept, so a bad call changes nothing.
        _resolve(new, _environ_key())
        _configured.clear()
        _configured.update(new)
        _cache = None
    return settings()


def reset() -> None:
    """Forget everything set by :func:`configure` (the environment and files still apply)."""
    global _cache
    with _lock:
        _configured.clear()
        _cache = None


def settings() -> Settings:
    """The effective settings for this process, re-read when the environment or file changes."""
    global _cache
    key = _environ_key()
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        resolved = _resolve(dict(_configured), key)
        _cache = (key, resolved)
    return resolved


def section(name: str) -> dict[str, Any]:
    """An adapter's table (``cli``, ``server``, ``lambda``, ``bench``) merged with its environment.

    ``HEICCONV_SERVER_PORT=9000`` overrides ``[server] port``; values from the
    environment are strings (adapters convert and validate them).
    """
    if name not in _ADAPTER_SECTIONS:
        raise ConfigError(f"unknown config section {name!r}; known: {', '.join(sorted(_ADAPTER_SECTIONS))}")
    return dict(settings().sections.get(name, {}))


def _environ_key() -> tuple[Any, ...]:
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)))
    path = _config_path(dict(env))
    try:
        mtime = path.stat().st_mtime_ns if path else None
    except OSError:
        mtime = None
    return (env, os.getcwd(), str(path), mtime)


def _config_path(env: dict[str, str]) -> Path | None:
    named = env.get("HEICCONV_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"HEICCONV_CONFIG: no such file {named!r} (in the environment)")
        return path
    for candidate in (Path("heicconv.toml"), Path("pyproject.toml")):
        if candidate.is_file():
            return candidate
    return None


def _read_file(path: Path) -> tuple[dict[str, Any], str]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("heicconv", {})
        return (table if isinstance(table, dict) else {}), f"{path} [tool.heicconv]"
    return data, str(path)


def _check_table(table: dict[str, Any], where: str, allowed: frozenset[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{key}: unknown key (in {where}); known keys: {', '.join(sorted(allowed))}")


def _resolve(configured: dict[str, Any], key: tuple[Any, ...]) -> Settings:
    from .registry import known_names

    env = dict(key[0])
    sources: dict[str, str] = {}
    path = _config_path(env)
    file_table: dict[str, Any] = {}
    file_where = ""
    if path is not None:
        file_table, file_where = _read_file(path)
        _check_table(file_table, file_where, _TOP_KEYS | _ADAPTER_SECTIONS)

    profile = configured.get("profile") or env.get("HEICCONV_PROFILE") or file_table.get("profile")
    layers: list[tuple[dict[str, Any], str]] = []  # lowest precedence first
    if file_table:
        layers.append(({k: v for k, v in file_table.items() if k != "profiles"}, file_where))
    if profile:
        profiles = file_table.get("profiles", {})
        if profile not in profiles:
            raise ConfigError(
                f"profile: no profile {profile!r} (in {file_where or 'no config file'}); "
                f"defined: {', '.join(sorted(profiles)) or 'none'}"
            )
        where = f"{file_where} [profiles.{profile}]"
        _check_table(profiles[profile], where, (_TOP_KEYS - {"profiles", "profile"}) | _ADAPTER_SECTIONS)
        layers.append((profiles[profile], where))

    backend, order = "auto", DEFAULT_ORDER
    option_values: dict[str, Any] = {}
    limit_values: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for table, where in layers:
        if "backend" in table:
            backend, sources["backend"] = table["backend"], where
        if "backends" in table:
            order, sources["backends"] = _order(table["backends"], where, known_names()), where
        for name, values, fields in (
            ("options", option_values, _OPTION_FIELDS),
            ("limits", limit_values, _LIMIT_FIELDS),
        ):
            sub = table.get(name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"{name}: must be a table (in {where})")
            _check_table(sub, f"{where} [{name}]", frozenset(fields))
            values.update(sub)
            sources.update({f"{name}.{k}": where for k in sub})
        for name in _ADAPTER_SECTIONS & table.keys():
            sections.setdefault(name, {}).update(table[name])

    # The environment.
    if "HEICCONV_BACKEND" in env:
        backend, sources["backend"] = env["HEICCONV_BACKEND"], "the environment (HEICCONV_BACKEND)"
    if "HEICCONV_BACKENDS" in env:
        names = [n.strip() for n in env["HEICCONV_BACKENDS"].split(",") if n.strip()]
        order = _order(names, "the environment (HEICCONV_BACKENDS)", known_names())
        sources["backends"] = "the environment (HEICCONV_BACKENDS)"
    for fields, values, kind in ((_OPTION_FIELDS, option_values, "options"), (_LIMIT_FIELDS, limit_values, "limits")):
        for name in fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = field_from_text(name, raw)
                sources[f"{kind}.{name}"] = f"the environment ({ENV_PREFIX}{name.upper()})"
    for name in _ADAPTER_SECTIONS:
        prefix = f"{ENV_PREFIX}{name.upper()}_"
        for var, raw in env.items():
            if var.startswith(prefix):
                sections.setdefault(name, {})[var[len(prefix) :].lower()] = raw

    # configure().
    if "backend" in configured:
        backend, sources["backend"] = configured["backend"], "heicconv.configure()"
    if "backends" in configured:
        order = _order(configured["backends"], "heicconv.configure()", known_names())
        sources["backends"] = "heicconv.configure()"
    options_where = ", ".join(sorted({sources[k] for k in sources if k.startswith("options.")})) or "defaults"
    limits_where = ", ".join(sorted({sources[k] for k in sources if k.startswith("limits.")})) or "defaults"
    options = Options.from_mapping(option_values, options_where)
    limits = Limits.from_mapping(limit_values, limits_where)
    if "options" in configured:
        opt = configured["options"]
        options = (
            opt if isinstance(opt, Options) else Options.from_mapping(dict(opt), "heicconv.configure(options=...)")
        )
        sources["options"] = "heicconv.configure()"
    if "limits" in configured:
        lim = configured["limits"]
        limits = lim if isinstance(lim, Limits) else Limits.from_mapping(dict(lim), "heicconv.configure(limits=...)")
        sources["limits"] = "heicconv.configure()"

    if not isinstance(backend, str) or (backend != "auto" and backend not in known_names()):
        raise ConfigError(
            f"backend: unknown backend {backend!r} (in {sources.get('backend', 'defaults')}); "
            f"known: auto, {', '.join(known_names())}"
        )
    sources.setdefault("backend", "default (auto)")
    return Settings(backend, tuple(order), options, limits, profile, path, sources, sections)


def _order(names: Any, where: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"backends: must be a non-empty list of backend names (in {where})")
    for n in names:
        if n not in known:
            raise ConfigError(f"backends: unknown backend {n!r} (in {where}); known: {', '.join(known)}")
    return tuple(names)
