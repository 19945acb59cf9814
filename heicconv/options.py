"""What a conversion should do (``Options``) and what input it accepts (``Limits``).

Both are frozen dataclasses validated when they are built, so a bad value fails
where it was written, not deep inside a backend.

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
from dataclasses import dataclass
from typing import Any, Literal, cast

from .errors import ConfigError

__all__ = ["Limits", "Options", "field_from_text", "parse_colour", "parse_size"]

MetadataPolicy = Literal["keep", "strip", "strip-location"]
ColourPolicy = Literal["keep", "srgb"]
_METADATA_POLICIES = ("keep", "strip", "strip-location")
_COLOUR_POLICIES = ("keep", "srgb")


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


@dataclass(frozen=True)
class Options:
    """How to convert. Every field has a default that suits web output.

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
    """

    quality: int = 85
    lossless: bool = False
    max_size: tuple[int, int] | int | str | None = None
    metadata: MetadataPolicy = "keep"
    colour: ColourPolicy = "keep"
    background: tuple[int, int, int] | str = (255, 255, 255)
    image_index: int | None = None
    bit_depth: int = 8
    use_thumbnail: bool = False

    def __post_init__(self) -> None:
        self._validate("Options")

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

    def replace(self, **changes: Any) -> Options:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str) -> Options:
        """Build from a config mapping; unknown keys raise ``ConfigError`` naming ``source``."""
        return cast(Options, _from_mapping(cls, values, source))


@dataclass(frozen=True)
class Limits:
    """What input is accepted, checked from the header before any pixel is decoded.

    The defaults accept every real phone photo (a 200 MP frame is 12240x16320)
    and refuse decompression bombs.
    """

    max_input_bytes: int = 256 * 1024 * 1024
    max_pixels: int = 300_000_000
    max_width: int = 65_535
    max_height: int = 65_535

    def __post_init__(self) -> None:
        self._validate("Limits")

    def _validate(self, source: str) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise _fail(f.name, f"must be a positive integer, got {v!r}", source)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str) -> Limits:
        """Build from a config mapping; unknown keys raise ``ConfigError`` naming ``source``."""
        return cast(Limits, _from_mapping(cls, values, source))


def _from_mapping(cls: Any, values: dict[str, Any], source: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise ConfigError(f"{key}: unknown key (in {source}); known keys: {', '.join(sorted(names))}")
    obj = object.__new__(cls)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        object.__setattr__(obj, f.name, values.get(f.name, default))
    obj._validate(source)
    return obj


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def field_from_text(name: str, text: str) -> Any:
    """Turn a text value (an environment variable, a query parameter) into what an Options or Limits field takes.

    Only the type is converted here; the value is validated when the Options or Limits is built.

    >>> field_from_text("quality", " 80 "), field_from_text("lossless", "yes"), field_from_text("max_size", "800x600")
    (80, True, '800x600')
    """
    text = text.strip()
    if name in ("lossless", "use_thumbnail"):
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else text
    if name == "image_index" and text.lower() in ("", "none", "primary"):
        return None
    if name in ("max_size", "metadata", "colour", "background"):
        return text
    try:
        return int(text)
    except ValueError:
        return text
