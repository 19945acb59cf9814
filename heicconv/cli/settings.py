"""The command line's own settings: the ``[cli]`` table, read by :func:`heicconv.config.tables.load`.

Values come from ``[cli]`` in the config file, or ``HEICCONV_CLI_<KEY>`` in the environment
(strings); command-line flags win over both (``heicconv convert`` applies them over this table).
``backend``, ``quality``, ``max_size``, ``strip``, ``strip_location``, ``srgb`` and ``image_index``
are the command line's names for general settings (``config.SAME_SETTING``) and take their place in
the one precedence: ``HEICCONV_QUALITY`` beats a ``[cli] quality`` in the file, which beats
``[options] quality`` there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .. import config
from ..config import tables
from ..config.rules import Invalid, Rule, choice, flag, integer, invalid, output_format, size, text
from ..errors import ConfigError, UnsupportedFormatError
from ..options import formats

__all__ = ["KEYS", "CliSettings", "load", "parse_from", "parse_image_index"]


def _input_formats(value: Any) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else None
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise Invalid("expected format names such as 'heic,jpeg' or 'all'")
    if [n.strip().lower() for n in names] == ["all"]:
        return formats.INPUT_FORMATS
    found: list[str] = []
    for name in names:
        try:
            fmt = formats.normalize(name)
        except UnsupportedFormatError as exc:
            raise Invalid(str(exc)) from None
        if fmt not in formats.INPUT_FORMATS:
            raise Invalid(f"heicconv does not read {fmt}")
        if fmt not in found:
            found.append(fmt)
    return tuple(found)


def _image_index(value: Any) -> int | str:
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise Invalid("expected a number from 0 (the first image) or 'all'")


def _jobs(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None  # the number of CPUs, as when the key is not set
    try:
        number: int = integer(1).parse(value)
    except Invalid:
        raise Invalid("must be an integer of at least 1, or 'auto'") from None
    return number


def parse_from(value: Any, key: str = "from", source: str = "") -> tuple[str, ...]:
    """The formats a folder search reads, in order of preference.

    >>> parse_from("heic, JPG")
    ('heic', 'jpeg')
    >>> parse_from("all")
    ('heic', 'avif', 'jpeg', 'png', 'webp', 'tiff')
    """
    try:
        return _input_formats(value)
    except Invalid as exc:
        raise invalid(key, str(exc), value, source) from None


def parse_image_index(value: Any, key: str = "image_index", source: str = "") -> int | str:
    """A number (0 is the first image) or ``"all"``.

    >>> parse_image_index("2"), parse_image_index("ALL")
    (2, 'all')
    """
    try:
        return _image_index(value)
    except Invalid as exc:
        raise invalid(key, str(exc), value, source) from None


def _key(rule: Rule, meaning: str, **more: Any) -> Any:
    return tables.setting(None, rule, help=meaning, **more)


@dataclass(frozen=True)
class CliSettings:
    """The ``[cli]`` table after checking; ``None`` means "not set"; each field's help is the key's meaning.

    A key that names a general setting (``config.SAME_SETTING``) is also ``None`` when a
    stronger source sets that setting: the general setting then applies, as it should.
    """

    to: str | None = _key(output_format(), "output format: jpeg, png, webp, avif, tiff or heic")
    quality: int | None = _key(integer(1, 100), "1-100 for JPEG, WebP, AVIF and HEIC")
    max_size: tuple[int, int] | None = _key(size(), "fit outputs inside this box: 'WxH' or a number")
    strip: bool | None = _key(flag(), "drop EXIF and XMP metadata (true/false)")
    backend: str | None = _key(
        text(str.strip, required=True),
        "backend name (ffmpeg, pillow, vips, wand, auto); wins over the top-level 'backend' for the command line",
    )
    jobs: int | None = _key(Rule(_jobs), "worker processes; a number or 'auto' (the number of CPUs)")
    recursive: bool | None = _key(flag(), "descend into sub-folders (true/false)")
    overwrite: bool | None = _key(flag(), "replace existing outputs (true/false)")
    skip_existing: bool | None = _key(flag(), "skip existing outputs without a note (true/false)")
    output_dir: str | None = _key(text(str.strip, required=True), "folder for outputs (default: next to each input)")
    quiet: bool | None = _key(flag(), "print only failures (true/false)")
    from_formats: tuple[str, ...] | None = _key(
        Rule(_input_formats),
        "formats read from folders: 'heic' (default), a list such as 'heic,jpeg', or 'all'",
        key="from",
    )
    follow_links: bool | None = _key(flag(), "search symbolic links to folders too (true/false)")
    image_index: int | str | None = _key(
        Rule(_image_index), "which image of a multi-image file: a number (0 is the first), or 'all'"
    )
    keep_mtime: bool | None = _key(flag(), "give each output its source's modification time (true/false; default true)")
    srgb: bool | None = _key(flag(), "convert colours to sRGB (true/false)")
    strip_location: bool | None = _key(flag(), "drop the GPS position from the metadata, keep the rest (true/false)")
    hdr: str | None = _key(
        choice("keep", "drop"), "keep (default) an HDR photo's HDR as a gain map in JPEG output, or drop it"
    )


#: Every key the ``[cli]`` table accepts, with what it means (docs/cli.md lists the same).
KEYS: dict[str, str] = dict(sorted(tables.keys(CliSettings).items()))

#: Keys of which at most one may be true.
_EXCLUSIVE = (("overwrite", "skip_existing"), ("strip", "strip_location"))


def load() -> CliSettings:
    """Read and check the ``[cli]`` table; raise ``ConfigError`` naming the key and where it came from."""
    loaded = tables.load(CliSettings, "cli")
    cfg = loaded.value
    for one, other in _EXCLUSIVE:
        if getattr(cfg, one) and getattr(cfg, other):
            raise ConfigError(
                f"cli.{one} (in {loaded.where(one)}), cli.{other} (in {loaded.where(other)}): "
                "only one of them may be true"
            )
    outranked = config.settings().outranked
    # SAME_SETTING's [cli] keys are the fields' names
    return dataclasses.replace(cfg, **{key[4:]: None for key in outranked if key.startswith("cli.")})
