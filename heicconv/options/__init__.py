"""What a conversion should do (``Options``) and what input it accepts (``Limits``).

Both are frozen dataclasses validated when they are built, so a bad value fails
where it was written, not deep inside a backend. Both remember which fields the
caller set (``explicit``): only those override configuration.

>>> Options(quality=80, max_size=1024).max_size
(1024, 1024)
>>> Options(quality=0)
Traceback (most recent call last):
...
heicconv.errors.ConfigError: quality: must be an integer from 1 to 100, got 0 (in Options)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any, Literal, TypeVar, cast

from ..errors import ConfigError, LimitExceededError

__all__ = ["Limits", "Options", "field_from_text", "field_to_text", "parse_bool", "parse_colour", "parse_size"]

MetadataPolicy = Literal["keep", "strip", "strip-location"]
ColourPolicy = Literal["keep", "srgb"]
HdrPolicy = Literal["keep", "drop"]
_METADATA_POLICIES = ("keep", "strip", "strip-location")
_COLOUR_POLICIES = ("keep", "srgb")
_HDR_POLICIES = ("keep", "drop")
T = TypeVar("T")
E = TypeVar("E", bound="_Explicit")


def _fail(key: str, message: str, source: str) -> ConfigError:
    return ConfigError(f"{key}: {message} (in {source})")


def parse_size(value: Any, *, key: str = "max_size", source: str = "Options") -> tuple[int, int] | None:
    """Read a bounding box: ``None``, an int (a square), ``(w, h)`` or ``"WxH"``."""
    if value is None:
        return None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", value)
        if not match:
            raise _fail(key, f"expected 'WxH' or a number, got {value!r}", source)
        w = int(match.group(1))
        h = int(match.group(2) or w)
    elif isinstance(value, bool):
        raise _fail(key, f"expected a size, got {value!r}", source)
    elif isinstance(value, int):
        w = h = value
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        w, h = value
    else:
        raise _fail(key, f"expected an int, (width, height) or 'WxH', got {value!r}", source)
    if w < 1 or h < 1:
        raise _fail(key, f"width and height must be at least 1, got {w}x{h}", source)
    return (w, h)


def parse_colour(value: Any, *, key: str = "background", source: str = "Options") -> tuple[int, int, int]:
    """Read an RGB colour: ``(r, g, b)`` with 0-255 values, or ``"#rrggbb"``."""
    if isinstance(value, str):
        match = re.fullmatch(r"#?([0-9a-fA-F]{6})", value.strip())
        if not match:
            raise _fail(key, f"expected '#rrggbb' or (r, g, b), got {value!r}", source)
        h = match.group(1)
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    if (
        isinstance(value, (tuple, list))
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    ):
        return (value[0], value[1], value[2])
    raise _fail(key, f"expected '#rrggbb' or (r, g, b) with values 0-255, got {value!r}", source)


class _Unset:
    """A field's built-in default, standing in until ``__post_init__`` notes that the caller left it unset."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:  # what help() and inspect.signature show as the default
        return repr(self.value)


def _default(value: T) -> T:
    return cast(T, _Unset(value))


def _built_in(f: dataclasses.Field[Any]) -> Any:
    return f.default.value if isinstance(f.default, _Unset) else f.default


@dataclass(frozen=True, eq=False, repr=False)
class _Explicit:
    """What ``Options`` and ``Limits`` share: they remember which fields the caller set.

    Only those fields override configuration; the rest read as the built-in default
    and give way to ``configure()``, the environment and the config file.
    """

    # Carries ``explicit`` through ``dataclasses.replace``, which passes every field's value.
    _explicit: InitVar[frozenset[str] | None] = field(default=None, kw_only=True)

    def __post_init__(self, _explicit: frozenset[str] | None) -> None:
        explicit = set()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, _Unset):
                object.__setattr__(self, f.name, value.value)
            # Through dataclasses.replace, a field keeps its state unless it gets a new value.
            elif _explicit is None or f.name in _explicit or value != _built_in(f):
                explicit.add(f.name)
        object.__setattr__(self, "_explicit", frozenset(explicit))
        self._validate(type(self).__name__)

    def _validate(self, source: str) -> None:
        raise NotImplementedError

    @property
    def explicit(self) -> frozenset[str]:
        """The fields the caller set; the others come from configuration when converting.

        >>> sorted(Options(quality=70, metadata="keep").explicit)
        ['metadata', 'quality']
        """
        return cast("frozenset[str]", self.__dict__["_explicit"])

    def _values(self, names: Iterable[str]) -> dict[str, Any]:
        return {name: getattr(self, name) for name in names}

    def replace(self: E, **changes: Any) -> E:
        """A copy with ``changes`` set (validated again); the fields it does not name keep their state.

        >>> Options(quality=70).replace(metadata="keep")
        Options(quality=70, metadata='keep')
        """
        return type(self)(**{**self._values(self.explicit), **changes})

    def over(self: E, base: E) -> E:
        """The fields set here, the others as ``base`` has them: how a call's options meet configuration.

        >>> Options(quality=70).over(Options(quality=90, metadata="strip"))
        Options(quality=70, metadata='strip')
        """
        return type(self)(**{**base._values(base.explicit), **self._values(self.explicit)})

    @classmethod
    def from_mapping(cls: type[E], values: Mapping[str, Any], source: str) -> E:
        """Build from a mapping that sets its keys; a bad key or value raises ``ConfigError`` naming ``source``."""
        fields = dataclasses.fields(cls)
        names = {f.name for f in fields}
        for key in values:
            if key not in names:
                raise ConfigError(f"{key}: unknown key (in {source}); known keys: {', '.join(sorted(names))}")
        obj = object.__new__(cls)
        for f in fields:
            object.__setattr__(obj, f.name, values[f.name] if f.name in values else _built_in(f))
        object.__setattr__(obj, "_explicit", frozenset(values))
        obj._validate(source)
        return obj

    def __eq__(self, other: object) -> bool:
        # Equal only if they set the same fields: Options(quality=85) pins the quality, Options() does not.
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Explicit)
        return self.explicit == other.explicit and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self.explicit, self._key()))

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def __repr__(self) -> str:
        # Only the fields set, so the repr rebuilds an equal object.
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.name in self.explicit
        )
        return f"{type(self).__name__}({shown})"


@dataclass(frozen=True, eq=False, repr=False)
class Options(_Explicit):
    """How to convert. Every field has a default that suits web output.

    A field you do not set is taken from configuration (``configure()``, the environment,
    the config file), else its default; ``explicit`` names the fields you set. See
    docs/configuration.md.

    - ``quality``: 1-100, for JPEG, WebP, AVIF and HEIC (ignored by PNG and TIFF).
    - ``lossless``: lossless WebP, AVIF or HEIC; PNG and TIFF always are; JPEG cannot be.
    - ``max_size``: fit inside this box (an int for a square, ``(w, h)`` or ``"WxH"``),
      keeping the aspect ratio and never enlarging.
    - ``metadata``: ``"keep"`` EXIF and XMP (default), ``"strip"`` them, or
      ``"strip-location"`` to keep them without GPS.
    - ``colour``: ``"keep"`` the source's colour profile (default) or convert to ``"srgb"``.
    - ``background``: colour that transparent pixels are flattened onto for JPEG.
    - ``image_index``: which top-level image of a multi-image file; ``None`` is the
      file's primary image, which is not always the first.
    - ``bit_depth``: 8, or 16 to keep high bit depth in PNG and TIFF output.
    - ``use_thumbnail``: when ``max_size`` is no larger than an embedded thumbnail,
      resize from the thumbnail instead of decoding the full image (much faster).
    - ``hdr``: ``"keep"`` an HDR photo's gain map (default: JPEG output becomes Ultra HDR, which
      shows the same SDR picture in every other viewer) or ``"drop"`` it (a plain JPEG). A PQ or HLG
      photo, which has no gain map, is tone mapped to SDR either way; with ``"keep"`` its JPEG gets a
      gain map heicconv computes.
    """

    quality: int = _default(85)
    lossless: bool = _default(False)
    max_size: tuple[int, int] | int | str | None = _default(None)
    metadata: MetadataPolicy = _default("keep")  # noqa: RUF009 - a marker object, made once like any default
    colour: ColourPolicy = _default("keep")  # noqa: RUF009
    background: tuple[int, int, int] | str = _default((255, 255, 255))
    image_index: int | None = _default(None)
    bit_depth: int = _default(8)
    use_thumbnail: bool = _default(False)
    hdr: HdrPolicy = _default("keep")  # noqa: RUF009

    def _validate(self, source: str) -> None:
        set_ = object.__setattr__
        q = self.quality
        if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 100:
            raise _fail("quality", f"must be an integer from 1 to 100, got {q!r}", source)
        for flag in ("lossless", "use_thumbnail"):
            if not isinstance(getattr(self, flag), bool):
                raise _fail(flag, f"must be true or false, got {getattr(self, flag)!r}", source)
        set_(self, "max_size", parse_size(self.max_size, source=source))
        if self.metadata not in _METADATA_POLICIES:
            raise _fail("metadata", f"must be one of {', '.join(_METADATA_POLICIES)}, got {self.metadata!r}", source)
        if self.colour not in _COLOUR_POLICIES:
            raise _fail("colour", f"must be one of {', '.join(_COLOUR_POLICIES)}, got {self.colour!r}", source)
        if self.hdr not in _HDR_POLICIES:
            raise _fail("hdr", f"must be one of {', '.join(_HDR_POLICIES)}, got {self.hdr!r}", source)
        set_(self, "background", parse_colour(self.background, source=source))
        idx = self.image_index
        if idx is not None and (isinstance(idx, bool) or not isinstance(idx, int) or idx < 0):
            raise _fail("image_index", f"must be a non-negative integer or None, got {idx!r}", source)
        if self.bit_depth not in (8, 16) or isinstance(self.bit_depth, bool):
            raise _fail("bit_depth", f"must be 8 or 16, got {self.bit_depth!r}", source)

    @property
    def box(self) -> tuple[int, int] | None:
        """``max_size`` as a ``(width, height)`` tuple (validated)."""
        return self.max_size  # type: ignore[return-value]

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        """``background`` as an ``(r, g, b)`` tuple (validated)."""
        return self.background  # type: ignore[return-value]


@dataclass(frozen=True, eq=False, repr=False)
class Limits(_Explicit):
    """What input is accepted, checked from the header before any pixel is decoded.

    The defaults accept every real phone photo (a 200 MP frame is 12240x16320)
    and refuse decompression bombs. As with ``Options``, a limit you do not set is
    taken from configuration.

    - ``max_input_bytes``: the size of the input file (256 MiB).
    - ``max_pixels``: width x height of the image to decode (300,000,000).
    - ``max_width``, ``max_height``: each side of the image to decode (65,535).

    Over any of them, ``LimitExceededError`` names the limit, before a pixel is decoded.
    """

    max_input_bytes: int = _default(256 * 1024 * 1024)
    max_pixels: int = _default(300_000_000)
    max_width: int = _default(65_535)
    max_height: int = _default(65_535)

    def _validate(self, source: str) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise _fail(f.name, f"must be a positive integer, got {v!r}", source)

    def check_input_bytes(self, size: int, *, at_least: bool = False) -> None:
        """Raise ``LimitExceededError`` if an input of ``size`` bytes is over ``max_input_bytes``.

        ``at_least``: ``size`` is what was read of a stream stopped there, not its whole length.

        >>> Limits(max_input_bytes=1000).check_input_bytes(1001, at_least=True)
        Traceback (most recent call last):
        ...
        heicconv.errors.LimitExceededError: the input is at least 1,001 bytes, over the limit of 1,000 (max_input_bytes)
        """
        if size > self.max_input_bytes:
            many = f"at least {size:,}" if at_least else f"{size:,}"
            raise LimitExceededError(
                f"the input is {many} bytes, over the limit of {self.max_input_bytes:,} (max_input_bytes)"
            )


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(value: Any) -> bool | None:
    """``True``/``False`` for a bool or a yes/no word (``"on"``, ``"0"``, ``"false"``...), else ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    return None


def field_to_text(name: str, value: Any) -> str:
    """The text :func:`field_from_text` reads back as ``value`` (a validated field), for a query string.

    >>> o = Options(max_size=(800, 600), background="#102030", lossless=True)
    >>> [field_to_text(n, getattr(o, n)) for n in ("max_size", "background", "lossless", "image_index")]
    ['800x600', '#102030', 'true', 'primary']
    >>> field_from_text("max_size", field_to_text("max_size", None)) is None
    True
    """
    if value is None:
        return "primary" if name == "image_index" else "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if name == "max_size" and isinstance(value, tuple):
        return "{}x{}".format(*value)
    if name == "background" and isinstance(value, tuple):
        return "#{:02x}{:02x}{:02x}".format(*value)
    return str(value)


def field_from_text(name: str, text: str) -> Any:
    """Turn a text value (an environment variable, a query parameter) into what an Options or Limits field takes.

    Only the type is converted here; the value is validated when the Options or Limits is built.

    >>> field_from_text("quality", " 80 "), field_from_text("lossless", "yes"), field_from_text("max_size", "800x600")
    (80, True, '800x600')
    """
    text = text.strip()
    if name in ("lossless", "use_thumbnail"):
        flag = parse_bool(text)
        return text if flag is None else flag
    if name == "image_index" and text.lower() in ("", "none", "primary"):
        return None
    if name == "max_size" and text.lower() in ("", "none"):
        return None
    if name in ("max_size", "metadata", "colour", "background", "hdr"):
        return text
    try:
        return int(text)
    except ValueError:
        return text
