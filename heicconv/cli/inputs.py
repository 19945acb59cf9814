"""Reading an input: what a path is before it is opened, and never more bytes than the size limit allows.

A folder can hold a named pipe, a socket or a device (or a symbolic link to one) under an
image's name. Opening a pipe waits for a writer that may never come, and a device such as
``/dev/zero`` never ends, so ``heicconv convert`` reads regular files only: it checks
with ``stat`` when it plans, and again on the open file (opened without waiting), since
the entry can change in between. A regular file's size is checked from ``stat`` before
a byte is read, so a 10 GB file is refused, not loaded.

The two-path form reads what the user named, as ``cat`` would: standard input, a pipe
(``heicconv <(curl -s URL) out.jpg``) or a device, stopping after ``max_input_bytes + 1``
bytes, which is enough to know that it is over the limit.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from ..options import Limits

__all__ = ["not_regular", "open_regular", "read_limited", "read_named"]

_CHUNK = 1 << 20
_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def not_regular(st: os.stat_result, command: str = "convert") -> str:
    """Why ``heicconv convert`` (or ``command``) does not read a file: "" for a regular file.

    >>> not_regular(os.stat("/dev/null"))
    'a character device, not a regular file; heicconv convert reads regular files only'
    """
    if stat.S_ISREG(st.st_mode):
        return ""
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
    return f"{kind}, not a regular file; heicconv {command} reads regular files only"


# Not waiting for a pipe's writer (POSIX); not making a terminal ours. Windows has neither, nor the problem.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


@contextlib.contextmanager
def open_regular(path: str) -> Iterator[tuple[BinaryIO | None, os.stat_result]]:
    """Open ``path`` for reading without waiting: ``(file, stat)``, the file ``None`` unless it is regular.

    Opening a pipe this way returns at once instead of waiting for a writer; the open
    file's own ``stat`` then says what it is, whatever the path was when the run was planned.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        st = os.fstat(fd)
        regular = stat.S_ISREG(st.st_mode)
        if regular and _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        yield (fh if regular else None), st


def read_limited(fh: BinaryIO, limits: Limits, size: int | None = None) -> bytes:
    """All of ``fh``, or ``LimitExceededError`` after reading at most ``max_input_bytes + 1`` bytes.

    ``size`` is the file's size from ``stat`` for a regular file: one over the limit is
    refused before anything is read, and the read asks for that many bytes (plus one, to
    see whether it grew) in one call. Without it (a stream), the read goes by chunks.
    """
    limit = limits.max_input_bytes
    if size is not None:
        limits.check_input_bytes(size)
    chunks: list[bytes] = []
    total = 0
    want = size + 1 if size is not None else _CHUNK
    while total <= limit:
        chunk = fh.read(min(want, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        want = _CHUNK
    limits.check_input_bytes(total, at_least=True)
    return b"".join(chunks)


def read_named(path: str, limits: Limits) -> bytes:
    """The input the two-path form names: a regular file (its size checked first), a pipe or a device."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        return read_limited(fh, limits, st.st_size if stat.S_ISREG(st.st_mode) else None)
