"""What ImageMagick lets this process do, read through MagickCore: its policy, resource limits and native coders.

ImageMagick's policy and resource limits are process-wide: whatever heicconv set
there would also bind the application's own ImageMagick work. So heicconv sets
nothing there. It reads what is in force, refuses up front, with the true
reason, a picture those limits would refuse, and checks that every coder it uses
is built in (never a delegate program). ``policy.xml`` next to this file is
heicconv's own policy, for processes where heicconv is ImageMagick's only user
(its containers): point ``MAGICK_CONFIGURE_PATH`` at :data:`POLICY_DIR`.

Needs Wand imported (its ``wand.api`` loads MagickCore).
"""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import LimitExceededError

__all__ = ["POLICY_DIR", "Policy", "check_fits", "current_limits", "native_coders", "pixel_bytes", "policy"]

#: heicconv's own policy: only its coders, no delegates, ceilings that admit a 200 MP photo.
POLICY_DIR = Path(__file__).parent

_SIZES = ("width", "height", "area", "memory", "map", "disk")


@dataclass(frozen=True)
class Policy:
    """The policy files ImageMagick loaded, and the resource limits in force now."""

    files: tuple[str, ...]  # in the order ImageMagick searched them (the first to set a key wins)
    settings: dict[str, tuple[str, str]]  # resource name -> (value as written, the file it is from)
    limits: dict[str, int]  # resource name -> current limit (pixels or bytes)

    def describe(self) -> str:
        """One line for ``heicconv backends``."""
        files = ", ".join(self.files) or "none"
        limits = ", ".join(f"{k} {_human(k, v)}" for k, v in self.limits.items())
        return f"{files} (limits: {limits})"

    def source(self, key: str) -> str:
        """Where the limit ``key`` comes from, in words."""
        if key not in self.settings:
            return f"no policy file sets it: the default, MAGICK_{key.upper()}_LIMIT or a call in this process"
        value, path = self.settings[key]
        where = f'{path} sets <policy domain="resource" name="{key}" value="{value}"/>'
        if _parse(value) not in (None, self.limits[key]):
            where += f"; MAGICK_{key.upper()}_LIMIT or a call in this process lowered it further"
        return where


def _libraries() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    from wand.api import libc, libmagick

    libmagick.AcquireExceptionInfo.restype = ctypes.c_void_p
    libmagick.DestroyExceptionInfo.argtypes = [ctypes.c_void_p]
    libmagick.ListPolicyInfo.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    libmagick.GetPolicyValue.argtypes = [ctypes.c_char_p]
    libmagick.GetPolicyValue.restype = ctypes.c_void_p
    libmagick.RelinquishMagickMemory.argtypes = [ctypes.c_void_p]
    libmagick.RelinquishMagickMemory.restype = ctypes.c_void_p
    libmagick.GetMagickInfo.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    libmagick.GetMagickInfo.restype = ctypes.c_void_p
    libmagick.GetImageDecoder.argtypes = [ctypes.c_void_p]
    libmagick.GetImageDecoder.restype = ctypes.c_void_p
    libmagick.GetImageEncoder.argtypes = [ctypes.c_void_p]
    libmagick.GetImageEncoder.restype = ctypes.c_void_p
    libc.tmpfile.restype = ctypes.c_void_p
    libc.fflush.argtypes = [ctypes.c_void_p]
    libc.fileno.argtypes = [ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    return libmagick, libc


def _policy_listing() -> str:
    """``ListPolicyInfo``'s text (what ``identify -list policy`` prints): the public way to see the policy."""
    libmagick, libc = _libraries()
    exception = libmagick.AcquireExceptionInfo()
    stream = libc.tmpfile()
    if not stream:
        libmagick.DestroyExceptionInfo(exception)
        return ""
    try:
        libmagick.ListPolicyInfo(stream, exception)
        libc.fflush(stream)
        fd = libc.fileno(stream)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        libc.fclose(stream)
        libmagick.DestroyExceptionInfo(exception)


def policy() -> Policy:
    """The policy in force in this process, now."""
    libmagick, _ = _libraries()
    declared: dict[str, dict[str, str]] = {}  # file -> resource -> value
    path = domain = name = ""
    for raw in _policy_listing().splitlines():
        key, _, value = raw.strip().partition(": ")
        if key == "Path":
            path = value.strip()
            if not path.startswith("["):  # "[built-in]" is no file
                declared.setdefault(path, {})
        elif key == "Policy":
            domain, name = value.strip().lower(), ""
        elif key == "name":
            name = value.strip()
        elif key == "value" and domain == "resource" and name and path in declared:
            declared[path].setdefault(name, value.strip())
    files = _search_order(list(declared))
    settings = {}
    for key in _SIZES:
        pointer = libmagick.GetPolicyValue(f"resource:{key}".encode())
        if not pointer:
            continue
        value = ctypes.string_at(pointer).decode("utf-8", "replace")
        libmagick.RelinquishMagickMemory(pointer)
        # GetPolicyValue gives the first file's value, in ImageMagick's search order.
        settings[key] = (value, next((f for f in files if declared[f].get(key) == value), "a policy file"))
    return Policy(tuple(files), settings, current_limits())


def _search_order(files: list[str]) -> list[str]:
    """Policy files in the order ImageMagick searched them: MAGICK_CONFIGURE_PATH's folders come first.

    (ImageMagick's own listing sorts them otherwise.)
    """
    folders = [str(Path(d).resolve()) for d in os.environ.get("MAGICK_CONFIGURE_PATH", "").split(os.pathsep) if d]

    def rank(file: str) -> int:
        folder = str(Path(file).resolve().parent)
        return folders.index(folder) if folder in folders else len(folders)

    return sorted(files, key=rank)


def native_coders(names: list[str]) -> dict[str, tuple[bool, bool]]:
    """For each coder name: whether ImageMagick decodes and encodes it itself (not through a delegate program)."""
    libmagick, _ = _libraries()
    exception = libmagick.AcquireExceptionInfo()
    try:
        found = {}
        for name in names:
            info = libmagick.GetMagickInfo(name.upper().encode(), exception)
            found[name] = (
                bool(info and libmagick.GetImageDecoder(info)),
                bool(info and libmagick.GetImageEncoder(info)),
            )
        return found
    finally:
        libmagick.DestroyExceptionInfo(exception)


def pixel_bytes() -> int:
    """Bytes ImageMagick's pixel cache holds per pixel: four channels of one quantum each."""
    from wand.version import QUANTUM_DEPTH, configure_options

    quantum = int(QUANTUM_DEPTH) // 8
    if "HDRI" in str(configure_options("FEATURES").get("FEATURES", "")):
        quantum = max(4, quantum)  # floating-point samples
    return 4 * quantum


def check_fits(width: int, height: int) -> None:
    """Raise ``LimitExceededError``, naming the limit, if ImageMagick's limits would refuse such an image.

    ImageMagick 6 reports some of these refusals as no error at all (Wand then guesses
    "a delegate is missing"), so heicconv asks first. The rule is ImageMagick's own: the
    sides within ``width`` and ``height``; the pixel cache in memory (within ``area`` and
    ``memory``) or else on disk (within ``disk``).
    """
    limits = current_limits()
    pixels, cache = width * height, width * height * pixel_bytes()
    side = next((k for k, n in (("width", width), ("height", height)) if n > limits[k]), "")
    if not side and ((pixels <= limits["area"] and cache <= limits["memory"]) or cache <= limits["disk"]):
        return
    p = policy()  # only now: reading the policy files costs more than the check
    if side:
        refusal, keys = f"its {side} limit is {limits[side]} pixels ({p.source(side)})", side
    else:
        refusal = (
            f"its {_human('memory', cache)} pixel cache fits neither in memory (area limit {limits['area']} "
            f"pixels: {p.source('area')}; memory limit {_human('memory', limits['memory'])}: {p.source('memory')}) "
            f"nor on disk (disk limit {_human('disk', limits['disk'])}: {p.source('disk')})"
        )
        keys = "disk, or area and memory,"
    raise LimitExceededError(
        f"ImageMagick's policy limits refuse this {width}x{height} image: {refusal}. Raise {keys} in the "
        "policy file; or, in a process where heicconv is ImageMagick's only user, start it with "
        f"MAGICK_CONFIGURE_PATH={POLICY_DIR} (heicconv's policy, whose ceilings admit a 200 MP photo); "
        "or convert with another backend."
    )


def current_limits() -> dict[str, int]:
    """ImageMagick's resource limits in this process now: pixels for the sides and area, bytes for the rest."""
    from wand.resource import limits as magick

    return {key: int(magick[key]) for key in _SIZES}


_SI = re.compile(r"^\s*([\d.]+)\s*([KMGTPE]?)(i?)([BP]?)\s*$", re.IGNORECASE)


def _parse(value: str) -> int | None:
    """A policy value (``16KP``, ``256MiB``, ``1GP``) as a number, the way ImageMagick reads it."""
    match = _SI.match(value)
    if not match:
        return None
    number, prefix, binary, _ = match.groups()
    power = "KMGTPE".find(prefix.upper()) + 1 if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


def _human(key: str, value: int) -> str:
    """A limit as ImageMagick's policy writes it: pixels in SI units (16KP, 128MP), bytes in binary ones (256MiB)."""
    if value >= 2**62:
        return "unlimited"
    pixels = key in ("width", "height", "area")
    step, number, unit = (1000 if pixels else 1024), float(value), ""
    for prefix in ("K", "M", "G", "T"):
        if number < step:
            break
        number, unit = number / step, prefix
    if pixels:
        return f"{number:.4g}{unit}P"
    return f"{number:.4g}{unit}iB" if unit else f"{value}B"
