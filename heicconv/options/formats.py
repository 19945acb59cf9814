"""Format names, and detection of an input's format from its bytes.

The name of a file is never trusted: ``detect`` looks at magic numbers and, for
ISOBMFF files (HEIC, HEIF, AVIF), at the ``ftyp`` brands.

>>> detect(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
'png'
>>> normalize("JPG")
'jpeg'
"""

from __future__ import annotations

import struct

from ..errors import DecodeError, UnsupportedInputError, UnsupportedOutputError

__all__ = [
    "DISPLAY_NAMES",
    "INPUT_FORMATS",
    "MIME_TYPES",
    "OUTPUT_FORMATS",
    "SUFFIXES",
    "detect",
    "format_from_suffix",
    "label",
    "normalize",
]

#: Formats heicconv can write, in the order docs list them.
OUTPUT_FORMATS: tuple[str, ...] = ("jpeg", "png", "webp", "avif", "tiff", "heic")
#: Formats heicconv reads (detected from bytes).
INPUT_FORMATS: tuple[str, ...] = ("heic", "avif", "jpeg", "png", "webp", "tiff")

#: How the docs and messages spell each format.
DISPLAY_NAMES: dict[str, str] = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WebP",
    "avif": "AVIF",
    "tiff": "TIFF",
    "heic": "HEIC",
}

MIME_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "tiff": "image/tiff",
    "heic": "image/heic",
}
#: The suffix heicconv gives an output file of each format.
SUFFIXES: dict[str, str] = {
    "jpeg": ".jpg",
    "png": ".png",
    "webp": ".webp",
    "avif": ".avif",
    "tiff": ".tiff",
    "heic": ".heic",
}
_ALIASES: dict[str, str] = {
    "jpg": "jpeg",
    "jpe": "jpeg",
    "tif": "tiff",
    "heif": "heic",
    "hif": "heic",
}
_SUFFIX_FORMATS: dict[str, str] = {
    **{f".{name}": name for name in OUTPUT_FORMATS},
    **{f".{alias}": name for alias, name in _ALIASES.items()},
}

# ftyp brands. HEIF image brands first; 'mif1'/'msf1' are the generic HEIF
# brands that AVIF files also carry, so AVIF's own brands are checked first.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1", b"mif2", b"heif"}
)


def normalize(fmt: str) -> str:
    """Return the canonical name of an output format, or raise ``UnsupportedOutputError``."""
    if not isinstance(fmt, str):
        raise UnsupportedOutputError(f"format must be a string such as 'jpeg', not {type(fmt).__name__}")
    name = fmt.strip().lower().lstrip(".")
    name = _ALIASES.get(name, name)
    if name not in OUTPUT_FORMATS:
        raise UnsupportedOutputError(f"unknown output format {fmt!r}; heicconv writes {', '.join(OUTPUT_FORMATS)}")
    return name


def format_from_suffix(suffix: str) -> str:
    """Map a file suffix (``.jpg``, ``.HEIC``) to a format name, or raise ``UnsupportedOutputError``."""
    name = _SUFFIX_FORMATS.get(suffix.lower())
    if name is None:
        raise UnsupportedOutputError(
            f"cannot tell the output format from the suffix {suffix!r}; use one of {', '.join(sorted(_SUFFIX_FORMATS))}"
        )
    return name


def _ftyp_brands(data: bytes) -> tuple[bytes, set[bytes]] | None:
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    size = struct.unpack_from(">I", data, 0)[0]
    if size < 16 or size > min(len(data), 4096) or size % 4:
        return None
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, size, 4)}
    return major, compatible | {major}


def detect(data: bytes) -> str:
    """Return the format of ``data`` from its content, or raise ``UnsupportedInputError``.

    Recognises HEIC/HEIF, AVIF, JPEG, PNG, WebP and TIFF. Anything else (SVG,
    PostScript, ImageMagick scripts, text) is rejected before a backend sees it.
    """
    head = bytes(data[:64])
    brands = _ftyp_brands(bytes(data[:4096]))
    if brands is not None:
        major, all_brands = brands
        if major == b"mif3":  # low-overhead HEIF: the codec brand is the minor version (heicconv.container.mini)
            all_brands = all_brands | {head[12:16]}
        if major in _AVIF_BRANDS or (all_brands & _AVIF_BRANDS and major not in _HEIC_BRANDS - {b"mif1", b"msf1"}):
            return "avif"
        if all_brands & _HEIC_BRANDS:
            return "heic"
    elif head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    elif head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if not data:
        raise DecodeError("the input is empty (0 bytes)")
    if head[4:8] == b"ftyp" and brands is None:
        raise DecodeError("the input starts like an ISOBMFF (HEIF/AVIF) file but its 'ftyp' box is malformed")
    raise UnsupportedInputError(
        f"the input is not an image heicconv reads (starts with {head[:12]!r}); "
        f"supported inputs: {', '.join(INPUT_FORMATS)}"
    )


def label(data: bytes) -> str:
    """The format of ``data`` as a log field or metric label: what :func:`detect` says, or ``"unknown"``.

    >>> label(b"\\x89PNG\\r\\n\\x1a\\n"), label(b"hello")
    ('png', 'unknown')
    """
    try:
        return detect(data)
    except (DecodeError, UnsupportedInputError):
        return "unknown"
