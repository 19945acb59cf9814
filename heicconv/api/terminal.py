"""What the commands print on a terminal: one line rewritten in place (the progress of ``heicconv convert`` and
``heicconv bench``), and text made safe to print (``printable``)."""

from __future__ import annotations

import re
import shutil
from typing import TextIO

__all__ = ["StatusLine", "printable"]

# C0 and C1 controls and DEL; line and paragraph separators; the bidirectional overrides and isolates,
# which reorder what follows them; lone surrogates (the bytes of a file name that are not UTF-8).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that is not UTF-8: show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character escaped, so that a file name can neither break a line of
    output nor drive the terminal (a newline, an escape sequence, a right-to-left override).

    >>> print(printable("IMG\\n1.heic \\x1b[2J \\u202egpj.heic \\udcff.heic"))
    IMG\\n1.heic \\x1b[2J \\u202egpj.heic \\xff.heic
    """
    return _UNSAFE.sub(_escape, text)


class StatusLine:
    """A line of ``stream`` that ``show`` rewrites in place and ``clear`` blanks, so that other output can be
    printed above it. The caller decides whether to use one (only when the stream is a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False
        self._length = 0  # of the text on the line now, which a shorter one must cover

    def show(self, text: str) -> None:
        text = printable(text)[: shutil.get_terminal_size().columns - 1]  # a newline in a name would break the line
        self.stream.write("\r" + text.ljust(self._length))
        self.stream.flush()
        self._length = len(text)
        self.shown = True

    def clear(self) -> None:
        """Blank the line and put the cursor at its start (nothing happens if nothing is shown)."""
        if self.shown:
            self.stream.write("\r" + " " * self._length + "\r")
            self.stream.flush()
            self._length = 0
            self.shown = False
