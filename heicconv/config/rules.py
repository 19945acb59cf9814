"""What a settings value may be: one rule per kind of value, and the one error text for a bad value.

A rule turns what a config file, an environment variable or a command-line flag gives (a TOML value,
or text) into the value a setting holds, or raises :class:`Invalid` with what the value must be.
The caller knows the key and where the value came from and says so with :func:`invalid`:

>>> integer(1, 100).parse(" 80 ")
80
>>> try:
...     integer(1, 100).parse("lots")
... except Invalid as exc:
...     print(invalid("cli.quality", str(exc), "lots", "heicconv.toml [cli]"))
cli.quality: must be an integer from 1 to 100, got 'lots' (in heicconv.toml [cli])
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, UnsupportedFormatError
from ..options import formats, parse_bool, parse_size

__all__ = [
    "COMMAND_LINE",
    "Invalid",
    "Rule",
    "choice",
    "flag",
    "integer",
    "invalid",
    "number",
    "output_format",
    "size",
    "text",
    "unknown_key",
]


#: Where a value given on the command line (a flag) came from, as errors and ``Loaded.where`` say it.
COMMAND_LINE = "the command line"


class Invalid(ConfigError):
    """A value that breaks its rule; the message says what it must be, not yet which key or where."""


def invalid(key: str, message: str, value: Any, where: str = "") -> ConfigError:
    """The one error text for a bad settings value: the key, what it must be, the value, where it was set."""
    return ConfigError(f"{key}: {message}, got {value!r}" + (f" (in {where})" if where else ""))


def unknown_key(key: str, where: str, known: Collection[str]) -> ConfigError:
    """The error for a key that no reader of its table knows (a typo, or a key of another table)."""
    return ConfigError(f"{key}: unknown key (in {where}); known keys: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class Rule:
    """How one setting is read: ``parse``, and how its command-line flag takes a value (argparse)."""

    parse: Callable[[Any], Any]
    arg_type: Callable[[str], Any] = str  # what argparse makes of the flag's text
    choices: tuple[str, ...] | None = None


def text(clean: Callable[[str], str] | None = None, *, required: bool = False) -> Rule:
    """A string, ``clean``-ed (``str.strip``); ``required``: not empty once cleaned."""

    def parse(value: Any) -> str:
        if not isinstance(value, str) or (required and not value.strip()):
            raise Invalid("must be a non-empty string" if required else "must be a string")
        return clean(value) if clean else value

    return Rule(parse)


def choice(*choices: str) -> Rule:
    """One of ``choices``, in any case, spaces around ignored."""

    def parse(value: Any) -> str:
        word = value.strip().lower() if isinstance(value, str) else None
        if word not in choices:
            raise Invalid(f"must be one of {', '.join(choices)}")
        return word

    return Rule(parse, choices=choices)


def integer(minimum: int = 0, maximum: int | None = None) -> Rule:
    """A whole number from ``minimum`` (to ``maximum``): a TOML integer, or text such as ``"8"`` or ``"1_000"``."""
    span = f"of at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def parse(value: Any) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip().replace("_", ""))
            except ValueError:
                raise Invalid(f"must be an integer {span}") from None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise Invalid(f"must be an integer {span}")
        if maximum is not None and value > maximum:
            raise Invalid(f"must be an integer {span}")
        return value

    return Rule(parse, arg_type=int)


def number(minimum: float = 0.0) -> Rule:
    """A number of at least ``minimum``: a TOML integer or float, or text such as ``"2.5"``."""

    def parse(value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise Invalid(f"must be a number of at least {minimum}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise Invalid(f"must be a number of at least {minimum}")
        return float(value)

    return Rule(parse, arg_type=float)


def flag() -> Rule:
    """``true``/``false`` (TOML), or ``true``, ``false``, ``1``, ``0``, ``yes``, ``no``, ``on``, ``off`` (text)."""

    def parse(value: Any) -> bool:
        checked = parse_bool(value)
        if checked is None:
            raise Invalid("must be true or false")
        return checked

    return Rule(parse)


def output_format() -> Rule:
    """An output format's name or alias (``jpg``), as its canonical name (``jpeg``)."""

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        try:
            return formats.normalize(value)
        except UnsupportedFormatError as exc:
            raise Invalid(str(exc)) from None

    return Rule(parse)


def size() -> Rule:
    """A bounding box, ``"WxH"`` or one number for a square, as ``(width, height)``."""

    def parse(value: Any) -> tuple[int, int] | None:
        try:
            return parse_size(value)
        except ConfigError:
            raise Invalid("must be 'WxH' or a number, each side at least 1") from None

    return Rule(parse)
