"""The one typed settings loader: a dataclass per table, filled in the one precedence, each value's source kept.

A table (``[server]``, ``[worker]``, ``[lambda]``, ``[cli]``, ``[http]``) is a frozen dataclass whose
fields are its keys. :func:`setting` gives a field its rule (what a value may be,
:mod:`heicconv.config.rules`) and, for a command that takes flags, its help; a plain field takes the
rule of its type (``str``, ``int`` of at least 0, ``float`` of at least 0, ``bool``). :func:`load`
fills the dataclass: the command line's values (``overrides``) over ``HEICCONV_<TABLE>_<KEY>``, then
the profile's and the file's table (:func:`heicconv.config.section`), then the field's default. A bad
value, or an unknown key, raises one ``ConfigError`` text that names the key and where it was set:

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Http:
...     url: str = setting("", text(str.strip))
...     retries: int = setting(3, integer(0, 10))
>>> loaded = load(Http, "http", {"retries": "2"})
>>> loaded.value, loaded.where("retries"), loaded.where("url")
(Http(url='', retries=2), 'the command line', 'default')
>>> load(Http, "http", {"retries": 11}).value
Traceback (most recent call last):
...
heicconv.errors.ConfigError: http.retries: must be an integer from 0 to 10, got 11 (in the command line)

:func:`add_flags` and :func:`flag_values` turn the same fields into a command's flags and back
(``heicconv serve``, ``heicconv worker``): one flag per key, ``--memory-mb`` for ``memory_mb``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import ConfigError
from . import section, where
from .rules import COMMAND_LINE, Invalid, Rule, flag, integer, invalid, number, text, unknown_key

__all__ = ["Loaded", "add_flags", "flag_values", "keys", "load", "setting"]

T = TypeVar("T")

_SPEC = "heicconv.setting"
_BY_TYPE: dict[Any, Rule] = {"str": text(), "int": integer(), "float": number(), "bool": flag()}
_BY_TYPE.update({str: _BY_TYPE["str"], int: _BY_TYPE["int"], float: _BY_TYPE["float"], bool: _BY_TYPE["bool"]})


@dataclass(frozen=True)
class _Spec:
    rule: Rule | None = None
    key: str | None = None  # the key in the table, when it is not the field's name ("from")
    help: str | None = None  # the flag's help; "{default}" is the field's default
    short: str | None = None  # a short flag ("-j")
    metavar: str | None = None


def setting(
    default: T,
    rule: Rule | None = None,
    *,
    key: str | None = None,
    help: str | None = None,
    short: str | None = None,
    metavar: str | None = None,
    repr: bool = True,
) -> T:
    """A table's field: its default, its rule (else its type's), its key if not its name, its flag's help."""
    spec = _Spec(rule, key, help, short, metavar)
    return dataclasses.field(default=default, repr=repr, metadata={_SPEC: spec})


@dataclass(frozen=True)
class _Key:
    key: str
    name: str  # the field's
    rule: Rule
    spec: _Spec
    default: Any


def _keys(cls: type[Any]) -> Iterator[_Key]:
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        spec = f.metadata.get(_SPEC, _Spec())
        rule = spec.rule or _BY_TYPE.get(f.type)
        if rule is None:
            raise TypeError(f"{cls.__name__}.{f.name}: a {f.type} field needs a rule: setting(default, rule)")
        yield _Key(spec.key or f.name, f.name, rule, spec, f.default)


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """A filled table: ``value`` (the dataclass), what each source gave and where each key came from."""

    table: str
    value: T
    given: dict[str, Any]  # key -> the value as its source gave it, before its rule
    sources: dict[str, str]  # key -> "the command line", "the environment (HEICCONV_...)", "FILE [table]"

    def where(self, key: str) -> str:
        """Where ``key`` came from; ``"default"`` for a key no source sets."""
        return self.sources.get(key, "default")

    def fail(self, key: str, message: str) -> ConfigError:
        """The error for a value that its rule allows but the table as a whole does not."""
        value = self.given[key] if key in self.given else getattr(self.value, key, None)
        return invalid(f"{self.table}.{key}", message, value, self.where(key))


def load(
    cls: type[T],
    table: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    others: Collection[str] = (),
    check_keys: bool = True,
) -> Loaded[T]:
    """Fill ``cls`` from ``[table]``: ``overrides`` (the command line; ``None`` values are unset) first.

    ``defaults`` replace fields' declared defaults when loading (``workers``: the CPU count); ``others``
    are keys of the same table that another reader reads (the ``lambda`` backend's, in ``[lambda]``);
    ``check_keys=False`` leaves unknown keys to that other reader.
    """
    flags = {key: value for key, value in (overrides or {}).items() if value is not None}
    given = {**section(table), **flags}
    sources = {key: COMMAND_LINE if key in flags else where(table, key) for key in given}
    keys = list(_keys(cls))
    if check_keys:
        known = {k.key for k in keys} | set(others)
        for key in given:
            if key not in known:
                raise unknown_key(f"{table}.{key}", sources[key], known)
    values = dict(defaults or {})
    for k in keys:
        if k.key in given:
            try:
                values[k.name] = k.rule.parse(given[k.key])
            except Invalid as exc:
                raise invalid(f"{table}.{k.key}", str(exc), given[k.key], sources[k.key]) from None
    return Loaded(table, cls(**values), given, sources)


def keys(cls: type[Any]) -> dict[str, str]:
    """A table's keys, in the order of its fields, with their help ("" for none): for listings and docs checks."""
    return {k.key: k.spec.help or "" for k in _keys(cls)}


def add_flags(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """One flag per field of ``cls``: ``--memory-mb`` for ``memory_mb``, typed and with choices as its rule says."""
    for k in _keys(cls):
        names = [k.spec.short] if k.spec.short else []
        names.append("--" + k.key.replace("_", "-"))
        parser.add_argument(
            *names,
            dest=k.key,
            type=k.rule.arg_type,
            choices=k.rule.choices,
            metavar=k.spec.metavar,
            help=None if k.spec.help is None else k.spec.help.format(default=k.default),
        )


def flag_values(args: argparse.Namespace, cls: type[Any]) -> dict[str, Any]:
    """The flags :func:`add_flags` added, as ``overrides`` for :func:`load` (``None``: not given)."""
    return {k.key: getattr(args, k.key, None) for k in _keys(cls)}
