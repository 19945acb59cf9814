"""What a ``convert`` run tells its user: a progress bar on a terminal, plain lines otherwise, JSON on request.

Nothing here writes escape codes: the bar is redrawn with a carriage return, so
logs and pipes never receive terminal control sequences. Every line goes through
``terminal.printable``, so a file name with a newline or an escape sequence in it
is shown escaped (``IMG\\n1.heic``) and cannot split a line or drive the terminal;
the JSON lines keep names exact (JSON escapes them itself).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..api.terminal import StatusLine, printable

__all__ = ["Record", "Reporter"]


@dataclass(frozen=True)
class Record:
    """One input's result, as ``--json`` prints it."""

    path: str
    output: str | None
    status: str  # converted | skipped | failed | planned (--dry-run)
    error: str = ""
    note: str = ""
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    backend: str = ""
    exists: bool = False  # skipped because the output exists (the summary says how to replace them)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "output": self.output,
            "status": self.status,
            "error": self.error or None,
            "note": self.note or None,
            "seconds": round(self.seconds, 4),
            "width": self.width or None,
            "height": self.height or None,
            "backend": self.backend or None,
        }


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class Reporter:
    """Collects results and shows them as the chosen mode asks."""

    total: int
    json_lines: bool = False
    quiet: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    existing: int = 0  # outputs that existed, reported with a note
    kept: int = 0  # outputs that existed, with or without a note
    counts: dict[str, int] = field(default_factory=lambda: {"converted": 0, "skipped": 0, "failed": 0, "planned": 0})
    started: float = field(default_factory=time.perf_counter)
    _last_draw: float = 0.0
    _status: StatusLine | None = None

    @property
    def bar(self) -> bool:
        return not self.quiet and self.err.isatty()

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def add(self, record: Record) -> None:
        self.counts[record.status] = self.counts.get(record.status, 0) + 1
        if record.exists:
            self.kept += 1
            self.existing += bool(record.note)
        if self.json_lines:
            if self.out.isatty():
                self._clear()  # stdout and stderr share the terminal: the bar must not run into the JSON
            self.out.write(json.dumps(record.to_dict()) + "\n")
            self.out.flush()
        line = self._line(record)
        if line:
            self.say(line)
        if self.bar:
            self._draw()

    def _line(self, r: Record) -> str:
        if r.status == "failed":
            return f"failed {r.path}: {r.error}"  # shown even with --quiet: errors are never hidden
        if self.quiet or (self.json_lines and not self.bar):
            return ""
        if r.status == "skipped":
            # Without a note (--skip-existing) a skip is only counted in the summary; on a
            # terminal, existing outputs are summed up at the end rather than scrolling the bar.
            if not r.note or (self.bar and r.exists):
                return ""
            return f"skipped {r.path}: {r.note}"
        if self.bar:
            return ""  # the bar shows progress; a line per converted file would scroll it away
        if r.status == "planned":
            return f"would convert {r.path} -> {r.output}"
        size = f"{r.width}x{r.height}, " if r.width else ""
        return f"converted {r.path} -> {r.output} ({size}{r.seconds:.2f} s)"

    def say(self, message: str) -> None:
        """Print a line on stderr, above the progress bar if there is one."""
        self._clear()
        self.err.write(printable(message) + "\n")
        self.err.flush()

    def _clear(self) -> None:
        if self._status is not None:
            self._status.clear()

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1 and self.done < self.total:
            return
        self._last_draw = now
        elapsed = now - self.started
        done = self.done
        rate = done / elapsed if elapsed > 0 else 0.0
        left = self.total - done
        eta = _duration(left / rate) if rate > 0 and left > 0 else ("0:00" if left <= 0 else "-:--")
        width = shutil.get_terminal_size().columns
        text = f" {done}/{self.total}  {rate:.1f} files/s  ETA {eta}"
        room = max(10, min(40, width - len(text) - 4))
        filled = room * done // self.total if self.total else room
        if self._status is None:
            self._status = StatusLine(self.err)
        self._status.show(f"[{'#' * filled}{'.' * (room - filled)}]{text}")

    def summary(self, extra: list[str], interrupted: bool = False) -> None:
        """The last words of a run: counts and time (always on stderr, never with --quiet)."""
        self._clear()
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.started
        c = self.counts
        if c["planned"]:
            parts = [f"would convert {c['planned']}"]
        else:
            rate = c["converted"] / elapsed if elapsed > 0 else 0.0
            parts = [f"converted {c['converted']}"]
            if c["converted"]:
                parts[0] += f" ({rate:.1f} files/s)"
        parts += [f"skipped {c['skipped']}", f"failed {c['failed']}"]
        head = "interrupted: " if interrupted else ""
        lines = [f"{head}{', '.join(parts)} in {elapsed:.1f} s"]
        if self.existing:
            lines.append(
                f"{self.existing} output(s) existed and were kept: --overwrite replaces them, "
                "--skip-existing skips them without this note"
            )
        self.err.write("".join(printable(line) + "\n" for line in [*lines, *extra]))
        self.err.flush()


def display(path: Path | None) -> str | None:
    return None if path is None else str(path)
