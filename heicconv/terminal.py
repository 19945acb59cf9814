"""One line of a terminal rewritten in place: the progress shown by ``heicconv convert`` and ``heicconv bench``."""

from __future__ import annotations

import shutil
from typing import TextIO

__all__ = ["StatusLine"]


class StatusLine:
    """A line of ``stream`` that ``show`` rewrites in place and ``clear`` blanks, so that other output can be
    printed above it. The caller decides whether to use one (only when the stream is a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False
        self._length = 0  # of the text on the line now, which a shorter one must cover

    def show(self, text: str) -> None:
        text = text[: shutil.get_terminal_size().columns - 1]
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
