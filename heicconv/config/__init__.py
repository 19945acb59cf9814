"""Where settings come from, in one documented order.

For each key the first source that sets it wins:

1. the call's own argument (``backend=...``, the fields an ``Options`` or ``Limits`` sets),
2. ``heicconv.configure(...)``,
3. the environment (``HEICCONV_BACKEND``, ``HEICCONV_QUALITY``, ``HEICCONV_CLI_JOBS``, ...),
4. a config file: the one ``HEICCONV_CONFIG`` names, else ``heicconv.toml`` in the
   working directory, else ``[tool.heicconv]`` in ``pyproject.toml`` there; a profile's
   tables (``[profiles.lambda]``, chosen by ``HEICCONV_PROFILE``) over the file's top level,
5. the built-in defaults (backend ``auto``).

The order holds key by key: ``Options(quality=70)`` sets the quality and nothing else, so
an operator's ``HEICCONV_METADATA=strip`` still applies. Adapters (command line, HTTP
service, Lambda, queue worker, bench) keep their own tables (``[cli]``, ``[server]``, ``[lambda]``,
``[worker]``, ``[bench]``, and ``HEICCONV_<TABLE>_<KEY>``) merged by :func:`section` in the same order,
and read as typed dataclasses by :func:`heicconv.config.tables.load`.
An adapter key that is its own name for a general setting (``[cli] quality``) competes with
that setting at its own level: it beats ``[options] quality`` in the same file and loses to
``HEICCONV_QUALITY``. ``settings().sources`` says where every key came from.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..options import E, Limits, Options, field_from_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["Settings", "configure", "configured", "effective", "reset", "section", "settings", "where"]

ENV_PREFIX = "HEICCONV_"
DEFAULT_ORDER: tuple[str, ...] = ("ffmpeg", "pillow", "vips", "wand")  # ffmpeg: pillow, faster for HEIC -> JPEG
_TOP_KEYS = frozenset({"backend", "backends", "options", "limits", "profiles", "profile"})
# ``[http]`` and ``[lambda]`` also hold the remote backends' keys (the ``lambda`` backend's and its handler's).
_ADAPTER_SECTIONS = frozenset({"cli", "server", "lambda", "bench", "worker", "http"})
_KINDS: tuple[tuple[str, type[Options] | type[Limits]], ...] = (("options", Options), ("limits", Limits))

#: Adapter keys that are the adapter's own name for a general setting; see the module's docstring.
SAME_SETTING: dict[str, str] = {
    "cli.backend": "backend",
    "cli.max_size": "options.max_size",
    "cli.quality": "options.quality",
    "cli.strip": "options.metadata",
    "cli.strip_location": "options.metadata",
    "cli.srgb": "options.colour",
    "cli.image_index": "options.image_index",
}

#: One source's keys: ``"backend"``, ``"options.quality"``, ``"cli.jobs"`` -> (value, where it is set).
_Layer = dict[str, tuple[Any, str]]


@dataclass(frozen=True)
class Settings:
    """The effective configuration, and where each part came from."""

    backend: str = "auto"
    order: tuple[str, ...] = DEFAULT_ORDER
    options: Options = field(default_factory=Options)  # ``explicit`` names the configured fields
    limits: Limits = field(default_factory=Limits)
    profile: str | None = None
    file: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)  # key -> where it came from, for every key set
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    outranked: frozenset[str] = frozenset()  # SAME_SETTING keys whose general setting a stronger source sets

    def where(self, key: str) -> str:
        """Where ``key`` (``"backend"``, ``"options.quality"``, ``"cli.jobs"``) came from.

        >>> Settings().where("options.quality")
        'default'
        """
        if key in self.sources:
            return self.sources[key]
        table = key.partition(".")[0]
        if table in _ADAPTER_SECTIONS:
            return f"[{table}]"
        return "default (auto)" if key == "backend" else "default"


_lock = threading.Lock()


@dataclass(frozen=True)
class _BackendNames:
    """Which backend names exist and which of them convert remotely, for checking ``backend(s)`` keys."""

    known: Callable[[], tuple[str, ...]] = tuple
    remote: Callable[[str], bool] = bool


_backends = _BackendNames()


def know_backends(known: Callable[[], tuple[str, ...]], remote: Callable[[str], bool]) -> None:
    """Called once, by :mod:`heicconv.backends.registry` when it is imported (``import heicconv`` does).

    The registry sits above the settings (a backend reads its own settings section), so it hands its
    two look-ups down here instead of being imported from here.
    """
    global _backends
    _backends = _BackendNames(known, remote)


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

    ``options`` and ``limits`` set only the fields they name (an ``Options``'
    ``explicit`` fields, or a dict's keys), on top of earlier ``configure()`` calls;
    the other fields still come from the environment and the config file.

    >>> import heicconv
    >>> heicconv.configure(backend="pillow").backend
    'pillow'
    >>> heicconv.configure(options=heicconv.Options(quality=70)).sources["options.quality"]
    'heicconv.configure()'
    >>> heicconv.config.reset()
    """
    global _cache
    with _lock:
        new = dict(_configured)
        if backend is not None:
            new["backend"] = backend
        if backends is not None:
            new["backends"] = list(backends)
        for kind, given in (
            ("options", _checked(Options, options, kind="options")),
            ("limits", _checked(Limits, limits, kind="limits")),
        ):
            if given is not None:
                new[kind] = {**new.get(kind, {}), **{name: getattr(given, name) for name in given.explicit}}
        if profile is not None:
            new["profile"] = profile
        # Validate before anything is kept, so a bad call changes nothing.
        _resolve(new, _environ_key())
        _configured.clear()
        _configured.update(new)
        _cache = None
    return settings()


def configured() -> dict[str, Any]:
    """What :func:`configure` has set, as its keyword arguments: to repeat it in a worker process.

    >>> import heicconv
    >>> _ = heicconv.configure(options={"metadata": "strip"})
    >>> heicconv.config.configured()
    {'options': {'metadata': 'strip'}}
    >>> heicconv.config.reset()
    """
    with _lock:
        return {k: dict(v) if isinstance(v, dict) else v for k, v in _configured.items()}


def effective(options: Options | None = None, limits: Limits | None = None) -> tuple[Options, Limits, dict[str, str]]:
    """A call's ``options`` and ``limits`` over the configured ones, field by field, and where each field came from.

    >>> import heicconv
    >>> _ = heicconv.configure(options={"metadata": "strip"})
    >>> options, limits, sources = heicconv.config.effective(heicconv.Options(quality=70))
    >>> options.quality, options.metadata, options.colour
    (70, 'strip', 'keep')
    >>> sources["options.quality"], sources["options.metadata"], sources["options.colour"]
    ("the call's options", 'heicconv.configure()', 'default')
    >>> heicconv.config.reset()
    """
    s = settings()
    sources: dict[str, str] = {}
    for (kind, cls), given in zip(_KINDS, (options, limits), strict=True):
        if given is not None and not isinstance(given, cls):
            raise ConfigError(f"{kind}: expected heicconv.{cls.__name__}, got {type(given).__name__}")
        for f in dataclasses.fields(cls):
            key = f"{kind}.{f.name}"
            sources[key] = f"the call's {kind}" if given is not None and f.name in given.explicit else s.where(key)
    return (
        s.options if options is None else options.over(s.options),
        s.limits if limits is None else limits.over(s.limits),
        sources,
    )


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
    """An adapter's table (``cli``, ``server``, ``lambda``, ``bench``): each key from its strongest source.

    ``HEICCONV_SERVER_PORT=9000`` overrides ``[server] port``; values from the
    environment are strings (adapters convert and validate them).
    ``settings().where("server.port")`` says where a key came from.
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


def _checked(cls: type[E], given: E | dict[str, Any] | None, *, kind: str) -> E | None:
    if given is None or isinstance(given, cls):
        return given
    if not isinstance(given, dict):
        raise ConfigError(f"{kind}: expected heicconv.{cls.__name__} or a dict, got {type(given).__name__}")
    return cls.from_mapping(given, f"heicconv.configure({kind}=...)")


def _read_file(path: Path) -> tuple[dict[str, Any], str]:
    """The file's heicconv table, and that table's name in the file ("" for the top level)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("heicconv", {})
        return (table if isinstance(table, dict) else {}), "tool.heicconv"
    return data, ""


def _where(path: Path, *table: str) -> str:
    name = ".".join(part for part in table if part)
    return f"{path} [{name}]" if name else str(path)


def _check_table(table: dict[str, Any], where: str, allowed: frozenset[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{key}: unknown key (in {where}); known keys: {', '.join(sorted(allowed))}")


def _resolve(configured: dict[str, Any], key: tuple[Any, ...]) -> Settings:
    """Every source's keys, lowest precedence first, merged key by key: the one place the order is applied."""
    known = _backends.known()
    env = dict(key[0])
    path = _config_path(env)
    layers: list[_Layer] = []
    profile, profile_where = configured.get("profile"), "heicconv.configure()"
    if not profile and env.get("HEICCONV_PROFILE"):
        profile, profile_where = env["HEICCONV_PROFILE"], "the environment (HEICCONV_PROFILE)"
    if path is not None:
        table, root = _read_file(path)
        _check_table(table, _where(path, root), _TOP_KEYS | _ADAPTER_SECTIONS)
        if not profile and table.get("profile"):
            profile, profile_where = table["profile"], _where(path, root)
        layers.append(
            _file_layer({k: v for k, v in table.items() if k not in ("profile", "profiles")}, path, root, known)
        )
        if profile:
            profiles = table.get("profiles", {})
            if profile not in profiles:
                raise ConfigError(
                    f"profile: no profile {profile!r} (in {_where(path, root)}); "
                    f"defined: {', '.join(sorted(profiles)) or 'none'}"
                )
            at = _where(path, root, "profiles", profile)
            _check_table(profiles[profile], at, (_TOP_KEYS - {"profiles", "profile"}) | _ADAPTER_SECTIONS)
            layers.append(_file_layer(profiles[profile], path, f"{root}.profiles.{profile}".lstrip("."), known))
    elif profile:
        raise ConfigError(f"profile: no profile {profile!r} (in no config file); defined: none")
    layers.append(_environment_layer(env, known))
    layers.append(_configured_layer(configured, known))

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    level: dict[str, int] = {}
    for rank, layer in enumerate(layers):
        for name, (value, where) in layer.items():
            values[name], sources[name], level[name] = value, where, rank
    if profile:
        sources["profile"] = profile_where
    outranked = frozenset(k for k, general in SAME_SETTING.items() if level.get(general, -1) > level.get(k, -1) >= 0)
    sections: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        table_name, _, sub = name.partition(".")
        if table_name in _ADAPTER_SECTIONS:
            sections.setdefault(table_name, {})[sub] = value
    fields = {
        kind: {k.partition(".")[2]: v for k, v in values.items() if k.startswith(kind + ".")} for kind, _ in _KINDS
    }
    options = Options.from_mapping(fields["options"], "configuration")  # each value was checked where it was read
    limits = Limits.from_mapping(fields["limits"], "configuration")
    sources.setdefault("backend", "default (auto)")
    order = values.get("backends", DEFAULT_ORDER)
    return Settings(values.get("backend", "auto"), order, options, limits, profile, path, sources, sections, outranked)


def _file_layer(table: dict[str, Any], path: Path, at: str, known: tuple[str, ...]) -> _Layer:
    where = _where(path, at)
    layer = _backend_keys(table, where, known)
    for kind, cls in _KINDS:
        if kind in table:
            sub, sub_where = table[kind], _where(path, at, kind)
            if not isinstance(sub, dict):
                raise ConfigError(f"{kind}: must be a table (in {where})")
            checked = cls.from_mapping(sub, sub_where)
            layer.update({f"{kind}.{k}": (getattr(checked, k), sub_where) for k in sub})
    for name in sorted(_ADAPTER_SECTIONS & table.keys()):
        sub, sub_where = table[name], _where(path, at, name)
        if not isinstance(sub, dict):
            raise ConfigError(f"{name}: must be a table (in {where})")
        layer.update({f"{name}.{k}": (v, sub_where) for k, v in sub.items()})
    return layer


def _environment_layer(env: dict[str, str], known: tuple[str, ...]) -> _Layer:
    layer: _Layer = {}
    if "HEICCONV_BACKEND" in env:
        where = "the environment (HEICCONV_BACKEND)"
        layer["backend"] = (_backend(env["HEICCONV_BACKEND"], where, known), where)
    if "HEICCONV_BACKENDS" in env:
        where = "the environment (HEICCONV_BACKENDS)"
        names = [n.strip() for n in env["HEICCONV_BACKENDS"].split(",") if n.strip()]
        layer["backends"] = (_order(names, where, known), where)
    for kind, cls in _KINDS:
        for f in dataclasses.fields(cls):
            var = ENV_PREFIX + f.name.upper()
            if var in env:
                where = f"the environment ({var})"
                checked = cls.from_mapping({f.name: field_from_text(f.name, env[var])}, where)
                layer[f"{kind}.{f.name}"] = (getattr(checked, f.name), where)
    for name in sorted(_ADAPTER_SECTIONS):
        prefix = f"{ENV_PREFIX}{name.upper()}_"
        for var, raw in sorted(env.items()):
            if var.startswith(prefix):
                layer[f"{name}.{var[len(prefix) :].lower()}"] = (raw, f"the environment ({var})")
    return layer


def _configured_layer(configured: dict[str, Any], known: tuple[str, ...]) -> _Layer:
    where = "heicconv.configure()"
    layer = _backend_keys(configured, where, known)
    for kind, _ in _KINDS:
        layer.update({f"{kind}.{k}": (v, where) for k, v in configured.get(kind, {}).items()})
    return layer


def _backend_keys(table: dict[str, Any], where: str, known: tuple[str, ...]) -> _Layer:
    layer: _Layer = {}
    if "backend" in table:
        layer["backend"] = (_backend(table["backend"], where, known), where)
    if "backends" in table:
        layer["backends"] = (_order(table["backends"], where, known), where)
    return layer


def _backend(name: Any, where: str, known: tuple[str, ...]) -> str:
    if not isinstance(name, str) or (name != "auto" and name not in known):
        raise ConfigError(f"backend: unknown backend {name!r} (in {where}); known: auto, {', '.join(known)}")
    return name


def _order(names: Any, where: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"backends: must be a non-empty list of backend names (in {where})")
    for n in names:
        if n not in known:
            raise ConfigError(f"backends: unknown backend {n!r} (in {where}); known: {', '.join(known)}")
        if _backends.remote(n):
            raise ConfigError(
                f"backends: {n!r} converts remotely and 'auto' never sends an image away (in {where}); "
                f"choose it by name: backend = {n!r}"
            )
    return tuple(names)


def where(table: str, key: str) -> str:
    """Where ``[table] key`` was set: "the environment (HEICCONV_SERVER_PORT)", "heicconv.toml", "default"."""
    return settings().where(f"{table}.{key}")
