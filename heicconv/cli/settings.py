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

from .. import config
from ..errors import ConfigError, UnsupportedFormatError
from ..options import formats, parse_bool, parse_size

__all__ = ["KEYS", "CliSettings", "load", "parse_from", "parse_image_index"]

#: Every key the ``[cli]`` table accepts, with what it means (docs/cli.md lists the same).
KEYS: dict[str, str] = {
    "backend": "backend name (ffmpeg, pillow, vips, wand, auto); wins over the top-level 'backend' for the command "
    "line",
    "follow_links": "search symbolic links to folders too (true/false)",
    "from": "formats read from folders: 'heic' (default), a list such as 'heic,jpeg', or 'all'",
    "hdr": "keep (default) an HDR photo's HDR as a gain map in JPEG output, or drop it",
    "image_index": "which image of a multi-image file: a number (0 is the first), or 'all'",
    "jobs": "worker processes; a number or 'auto' (the number of CPUs)",
    "keep_mtime": "give each output its source's modification time (true/false; default true)",
    "max_size": "fit outputs inside this box: 'WxH' or a number",
    "output_dir": "folder for outputs (default: next to each input)",
    "overwrite": "replace existing outputs (true/false)",
    "quality": "1-100 for JPEG, WebP, AVIF and HEIC",
    "quiet": "print only failures (true/false)",
    "recursive": "descend into sub-folders (true/false)",
    "skip_existing": "skip existing outputs without a note (true/false)",
    "srgb": "convert colours to sRGB (true/false)",
    "strip": "drop EXIF and XMP metadata (true/false)",
    "strip_location": "drop the GPS position from the metadata, keep the rest (true/false)",
    "to": "output format: jpeg, png, webp, avif, tiff or heic",
}
_BOOLS = {
    "follow_links", "keep_mtime", "overwrite", "quiet", "recursive", "skip_existing", "srgb", "strip", "strip_location",
}  # fmt: skip


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
    from_formats: tuple[str, ...] | None = None  # the key "from"
    follow_links: bool | None = None
    image_index: int | str | None = None
    keep_mtime: bool | None = None
    srgb: bool | None = None
    strip_location: bool | None = None
    hdr: str | None = None


def _where(key: str) -> str:
    return config.where("cli", key)


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


def parse_from(value: Any, key: str = "from", source: str = "") -> tuple[str, ...]:
    """The formats a folder search reads, in order of preference.

    >>> parse_from("heic, JPG")
    ('heic', 'jpeg')
    >>> parse_from("all")
    ('heic', 'avif', 'jpeg', 'png', 'webp', 'tiff')
    """
    names = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else None
    where = f" (in {source})" if source else ""
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"{key}: expected format names such as 'heic,jpeg' or 'all', got {value!r}{where}")
    if [n.strip().lower() for n in names] == ["all"]:
        return formats.INPUT_FORMATS
    found: list[str] = []
    for name in names:
        try:
            fmt = formats.normalize(name)
        except UnsupportedFormatError as exc:
            raise ConfigError(f"{key}: {exc}{where}") from exc
        if fmt not in formats.INPUT_FORMATS:
            raise ConfigError(f"{key}: heicconv does not read {fmt}{where}")
        if fmt not in found:
            found.append(fmt)
    return tuple(found)


def parse_image_index(value: Any, key: str = "image_index", source: str = "") -> int | str:
    """A number (0 is the first image) or ``"all"``.

    >>> parse_image_index("2"), parse_image_index("ALL")
    (2, 'all')
    """
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    where = f" (in {source})" if source else ""
    raise ConfigError(f"{key}: expected a number from 0 (the first image) or 'all', got {value!r}{where}")


def load() -> CliSettings:
    """Read and check the ``[cli]`` table; raise ``ConfigError`` naming the key and where it came from."""
    table = config.section("cli")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in KEYS:
            raise ConfigError(f"{key}: unknown key (in {_where(key)}); known keys: {', '.join(sorted(KEYS))}")
        if key in _BOOLS:
            values[key] = _bool(key, raw)
        elif key == "from":
            values["from_formats"] = parse_from(raw, key, _where(key))
        elif key == "image_index":
            values[key] = parse_image_index(raw, key, _where(key))
        elif key == "hdr":
            if raw not in ("keep", "drop"):
                raise ConfigError(f"hdr: must be keep or drop, got {raw!r} (in {_where(key)})")
            values[key] = raw
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
    if values.get("strip") and values.get("strip_location"):
        raise ConfigError(f"strip, strip_location: only one of them may be true (in {_where('strip')})")
    outranked = config.settings().outranked
    return CliSettings(**{key: value for key, value in values.items() if f"cli.{key}" not in outranked})
