"""Facts about native libraries that their Python bindings do not expose."""

from __future__ import annotations

import re
from functools import cache

__all__ = ["hevc_decoder", "loaded_library_version", "tiny_heic"]


def loaded_library_version(stem: str) -> str:
    """The version of a shared library this process has loaded (``libheif`` -> ``1.15.1``), from its file name.

    Linux only (reads ``/proc/self/maps``); "unknown" elsewhere or when the name carries no version.
    """
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            text = maps.read()
    except OSError:
        return "unknown"
    pattern = re.compile(rf"/{re.escape(stem)}\.so\.(\d+(?:\.\d+)*)\s*$", re.M)
    versions = sorted({m.group(1) for m in pattern.finditer(text)}, key=len, reverse=True)
    return versions[0] if versions else "unknown"


@cache
def tiny_heic() -> bytes:
    """A 16x16 HEVC-coded HEIC, to check that a library can really decode HEIC (has an HEVC decoder)."""
    from ..testing.fixtures import make_heic

    return make_heic(size=(16, 16))


def hevc_decoder() -> str:
    """The HEVC decoder the system libheif uses, as far as this process shows it (decoding was checked at load)."""
    version = loaded_library_version("libde265")
    if version != "unknown":
        return f"libde265 (soname {version})"
    return "present (decoding checked; library not identified)"
