"""Facts about native libraries that their Python bindings do not expose, and loading them side by side.

A process can hold two builds of one library: pillow-heif's and Pillow's wheels
bundle their own (libheif 1.23, libwebp, ...) under hashed file names, while
libvips and ImageMagick use the system's. The hashed names keep the files apart
but not their symbols, so whichever copy is first in the process's global scope
wins every lookup. pyvips puts the system's there (libvips loads its modules,
vips-heif among them, with ``RTLD_GLOBAL``); an extension imported after that
binds to the wrong copy. :func:`import_bundled` loads an extension with
``RTLD_DEEPBIND`` in that case, so it binds to the libraries it shipped with.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import importlib
import os
import platform
import re
import sys
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import BackendConflictError

__all__ = [
    "can_isolate",
    "foreign_copies",
    "hevc_decoder",
    "import_bundled",
    "load_pillow_heif",
    "loaded_library_version",
    "mapped_libraries",
    "tiny_heic",
    "zeroed_allocations",
]

# A 16x16 HEVC-coded HEIC of one colour (200, 30, 30), written by pillow-heif 1.8.1: a constant, so
# checking a backend's HEVC decoder needs no encoder (and imports no second libheif).
_TINY_HEIC = (
    "AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAXxtZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAA"
    "ACJpbG9jAAAAAERAAAEAAQAAAAABoAABAAAAAAAAADMAAAAjaWluZgAAAAAAAQAAABVpbmZlAgAAAAABAABodmMxAAAAAA5waXRt"
    "AAAAAAABAAAA/GlwcnAAAADcaXBjbwAAAHVodmNDAQNwAAAAkAAAAAAAHvAA/P34+AAADwNgAAEAGEABDAH//wNwAAADAJAAAAMA"
    "AAMAHroCQGEAAQApQgEBA3AAAAMAkAAAAwAAAwAeoCCBBZbqrprm4CGgwIAAAAyAAAADAIRiAAEABkQBwXPBiQAAABNjb2xybmNs"
    "eAABAA0ABoAAAAAUaXNwZQAAAAAAAABAAAAAQAAAAChjbGFwAAAAEAAAAAEAAAAQAAAAAf///9AAAAAC////0AAAAAIAAAAQcGl4"
    "aQAAAAADCAgIAAAAGGlwbWEAAAAAAAAAAQABBYECAwWEAAAAO21kYXQAAAAvKAGvEyFkY0D1JyL//2q6n/rQWf9v9lhZ3K6AwVvy"
    "+sD2ZJvA86qRnoCHaacwFXg="
)
_SONAME = re.compile(r"^(lib.+?)(?:-[0-9a-f]{8})?\.so(?:\.|$)")


def mapped_libraries() -> list[str]:
    """The shared libraries this process has loaded, by path (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(None, 5)[-1].strip() for line in maps if ".so" in line}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


def loaded_library_version(stem: str) -> str:
    """The version of a shared library this process has loaded (``libheif`` -> ``1.15.1``), from its file name.

    Linux only (reads ``/proc/self/maps``); "unknown" elsewhere or when the name carries no version.
    Bundled copies with hashed names (``libheif-e72ea93c.so.1.23.6``) are not counted.
    """
    pattern = re.compile(rf"/{re.escape(stem)}\.so\.(\d+(?:\.\d+)*)$")
    versions = sorted({m.group(1) for p in mapped_libraries() if (m := pattern.search(p))}, key=len, reverse=True)
    return versions[0] if versions else "unknown"


def _stem(name: str) -> str:
    match = _SONAME.match(name)
    return match.group(1) if match else ""


def foreign_copies(libs: Path) -> list[str]:
    """Loaded libraries that are other copies of those a wheel bundles in ``libs`` (the system's, another wheel's)."""
    if not libs.is_dir():
        return []
    own = libs.resolve()
    stems = {_stem(p.name) for p in libs.iterdir()} - {""}
    return [p for p in mapped_libraries() if _stem(Path(p).name) in stems and Path(p).resolve().parent != own]


def can_isolate() -> bool:
    """Whether an extension can be made to bind to its own libraries ahead of the process's (glibc's RTLD_DEEPBIND)."""
    return sys.platform.startswith("linux") and hasattr(os, "RTLD_DEEPBIND")


def import_bundled(name: str, libs: Path) -> ModuleType:
    """Import the extension module ``name`` so that it binds to the libraries its wheel bundles in ``libs``.

    Where another copy of one of them is already loaded, the import uses ``RTLD_DEEPBIND``: the module and
    the libraries it brings look symbols up in themselves first. Only then, because a deep-bound library
    also bypasses an allocator preloaded with ``LD_PRELOAD``. A module already imported is returned as it is
    (nothing can rebind it). Without ``RTLD_DEEPBIND`` (musl, macOS) the import is a plain one.
    """
    module = sys.modules.get(name)
    if module is not None:
        return module
    if not foreign_copies(libs) or not can_isolate():
        return importlib.import_module(name)
    flags = sys.getdlopenflags()
    # Process-wide while it lasts: an extension another thread imports in this instant is deep-bound too,
    # which only makes it prefer its own libraries as well.
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        return importlib.import_module(name)
    finally:
        sys.setdlopenflags(flags)


@cache
def tiny_heic() -> bytes:
    """A 16x16 HEVC-coded HEIC, to check that a library can really decode HEIC (has an HEVC decoder)."""
    return base64.b64decode("".join(_TINY_HEIC))


def hevc_decoder() -> str:
    """The HEVC decoder the system libheif uses, as far as this process shows it (decoding was checked at load)."""
    version = loaded_library_version("libde265")
    if version != "unknown":
        return f"libde265 (soname {version})"
    return "present (decoding checked; library not identified)"


_M_PERTURB = -6  # glibc's mallopt parameter: fill what malloc returns with this byte XOR 0xFF
_zeroing = threading.Lock()
_zeroing_users = 0


@cache
def _mallopt() -> Any:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    return getattr(ctypes.CDLL(None), "mallopt", None)


@contextlib.contextmanager
def zeroed_allocations() -> Iterator[None]:
    """While a decoder runs, glibc's malloc returns memory filled with zeros (``M_PERTURB``), process-wide.

    libde265 leaves the part of a picture it did not decode as its buffer was: fresh memory (zeros, flat
    green) or what an earlier picture left in it, another photo's pixels. Zeroed, it is always the tell-tale
    ``_damage`` looks for, and no output can carry another picture's pixels. It costs a fill of each block
    allocated meanwhile (any thread's); freed blocks are filled with 0xFF. Elsewhere than glibc it does nothing.
    """
    global _zeroing_users
    mallopt = _mallopt()
    if mallopt is None:
        yield
        return
    with _zeroing:
        _zeroing_users += 1
        if _zeroing_users == 1:
            mallopt(_M_PERTURB, 0xFF)
    try:
        yield
    finally:
        with _zeroing:
            _zeroing_users -= 1
            if _zeroing_users == 0:
                mallopt(_M_PERTURB, 0)


def heif_frame(heif_file: bytes, *, deep: bool = False) -> Any:
    """The first image of ``heif_file`` as pillow-heif decodes it (``deep``: at its own bit depth, else 8 bits),
    loaded into zeroed memory (:func:`zeroed_allocations`): what libde265 leaves undecoded is the tell-tale
    ``_damage`` looks for, never another picture's pixels."""
    import io

    frame = load_pillow_heif().open_heif(io.BytesIO(heif_file), convert_hdr_to_8bit=not deep)[0]
    with zeroed_allocations():
        frame.load()
    return frame


def heif_bands16(heif_file: bytes) -> tuple[list[Any], str]:
    """The first image of ``heif_file`` decoded by pillow-heif at its own bit depth (:func:`heif_frame`), as
    ``I;16`` bands (one to four, as decoded: gray, gray and alpha, RGB, RGBA), and pillow-heif's mode; no bands if
    pillow-heif decodes it to another mode than a 16-bit one."""
    from PIL import Image

    from ..container import sixteen_bit

    frame = heif_frame(heif_file, deep=True)
    n = {"I;16": 1, "L;16": 1, "LA;16": 2, "RGB;16": 3, "RGBA;16": 4}.get(frame.mode, 0)
    if not n:
        return [], frame.mode
    (w, h), stride, raw = frame.size, frame.stride, bytes(frame.data)
    if stride != w * n * 2:
        raw = b"".join(raw[y * stride : y * stride + w * n * 2] for y in range(h))
    return [Image.frombytes("I;16", (w, h), plane) for plane in sixteen_bit.deinterleave(raw, n)], frame.mode


#: Pillow's extension modules that link libraries bundled in its wheel (pillow.libs), and that heicconv uses.
_PIL_EXTENSIONS = ("PIL._imaging", "PIL._imagingcms", "PIL._webp", "PIL._avif")


def load_pillow_heif() -> Any:
    """Import Pillow's codecs and pillow-heif bound to the libraries their wheels bundle, whatever came first.

    If a library that loads the system's libheif (and libjpeg, libwebp, ...) into the process's global
    scope was imported before (pyvips is), a plain import would bind pillow-heif to that libheif 1.15
    instead of its own, and it crashes on the first decode; Pillow's codecs would run the system's
    libwebp and libtiff. ``import_bundled`` loads them so they bind to their own. What was
    imported before heicconv cannot be rebound: that is refused here, with the reason.
    """
    from importlib.util import find_spec

    pil = find_spec("PIL")
    if pil is not None and pil.origin:
        pil_libs = Path(pil.origin).parent.parent / "pillow.libs"
        for module in _PIL_EXTENSIONS:
            try:
                import_bundled(module, pil_libs)
            except ImportError:  # a codec this Pillow build does not have
                continue
    spec = find_spec("_pillow_heif")
    if spec is None or not spec.origin:
        import pillow_heif  # not installed: raises the ImportError the registry turns into an install hint
    libs = Path(spec.origin).parent / "pillow_heif.libs" if spec and spec.origin else Path()
    bundled = sorted(p.name.split(".so.")[-1] for p in libs.glob("libheif-*.so.*")) if libs.is_dir() else []
    clash = [] if "_pillow_heif" in sys.modules or can_isolate() else foreign_copies(libs)
    if bundled and clash:
        raise BackendConflictError(
            f"pillow-heif cannot be loaded next to the libheif this process already has ({', '.join(clash)}): "
            "without RTLD_DEEPBIND (this is not glibc) it would bind to that library and crash. "
            "Load heicconv's pillow backend (heicconv.select('pillow')) before importing pyvips."
        )
    import_bundled("_pillow_heif", libs)
    import pillow_heif

    running = pillow_heif.libheif_version()
    if bundled and running not in bundled:
        raise BackendConflictError(
            f"pillow-heif is bound to libheif {running} instead of its own {bundled[0]} (it would crash on the "
            "first decode): pillow_heif was imported after a library that loads the system libheif (pyvips), "
            "and an imported extension cannot be rebound. Let heicconv import pillow_heif (it binds it to its own "
            "libheif whatever the order), or import pillow_heif before pyvips."
        )
    return pillow_heif
