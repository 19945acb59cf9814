"""The command line's own settings: the ``[cli]`` config table, checked and typed.

Values come from ``[cli]`` in the config file, or ``HEICCONV_CLI_<KEY>`` in the
environment (strings); command-line flags win over both. ``backend``, ``quality``,
``max_size`` and ``strip`` are the command line's names for general settings and take
their place in the one precedence (``heicconv.config``): ``HEICCONV_QUALITY`` beats a
``[cli] quality`` in the file, which beats ``[options] quality`` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import config, formats
from ..errors import ConfigError, UnsupportedFormatError
from ..options import parse_bool, parse_size

__all__ = ["KEYS", "CliSettings", "load"]

#: Every key the ``[cli]`` table accepts, with what it means (docs/cli.md lists the same).
KEYS: dict[str, str] = {
    "backend": "backend name (pillow, vips, wand, auto); wins over the top-level 'backend' for the command line",
    "jobs": "worker processes; a number or 'auto' (the number of CPUs)",
    "max_size": "fit outputs inside this box: 'WxH' or a number",
    "output_dir": "folder for outputs (default: next to each input)",
    "overwrite": "replace existing outputs (true/false)",
    "quality": "1-100 for JPEG, WebP, AVIF and HEIC",
    "quiet": "print only failures (true/false)",
    "recursive": "descend into sub-folders (true/false)",
    "skip_existing": "skip existing outputs without a note (true/false)",
    "strip": "drop EXIF and XMP metadata (true/false)",
    "to": "output format: jpeg, png, webp, avif, tiff or heic",
}


@dataclass(frozen=True)
class CliSettings:
    """The ``[cli]`` table after checking; ``None`` means "not set".

    A key that names a general setting (``config.SAME_SETTING``) is also ``None`` when a
    stronger source sets that setting: the general setting then applies, as it should.
    """

    to: str | None = None
    quality: int | None = None
    max_size: tuple[int, int] | None = None
    strip: bool | None = None
    backend: str | None = None
    jobs: int | None = None
    recursive: bool | None = None
    overwrite: bool | None = None
    skip_existing: bool | None = None
    output_dir: str | None = None
    quiet: bool | None = None


def _where(key: str) -> str:
    return config.settings().where(f"cli.{key}")


def _bool(key: str, value: Any) -> bool:
    flag = parse_bool(value)
    if flag is None:
        raise ConfigError(f"{key}: must be true or false, got {value!r} (in {_where(key)})")
    return flag


def _int(key: str, value: Any, low: int, high: int | None = None) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    if number is None or number < low or (high is not None and number > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigError(f"{key}: must be an integer {span}, got {value!r} (in {_where(key)})")
    return number


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: must be a non-empty string, got {value!r} (in {_where(key)})")
    return value.strip()


def load() -> CliSettings:
    """Read and check the ``[cli]`` table; raise ``ConfigError`` naming the key and where it came from."""
    table = config.section("cli")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in KEYS:
            raise ConfigError(f"{key}: unknown key (in {_where(key)}); known keys: {', '.join(sorted(KEYS))}")
        if key in {"strip", "recursive", "overwrite", "skip_existing", "quiet"}:
            values[key] = _bool(key, raw)
        elif key == "quality":
            values[key] = _int(key, raw, 1, 100)
        elif key == "jobs":
            values[key] = None if isinstance(raw, str) and raw.strip().lower() == "auto" else _int(key, raw, 1)
        elif key == "max_size":
            values[key] = parse_size(raw, key=key, source=_where(key))
        elif key == "to":
            try:
                values[key] = formats.normalize(_str(key, raw))
            except UnsupportedFormatError as exc:
                raise ConfigError(f"to: {exc} (in {_where(key)})") from exc
        else:
            values[key] = _str(key, raw)
    if values.get("overwrite") and values.get("skip_existing"):
        raise ConfigError(f"overwrite, skip_existing: only one of them may be true (in {_where('overwrite')})")
    outranked = config.settings().outranked
    return CliSettings(**{key: value for key, value in values.items() if f"cli.{key}" not in outranked})
