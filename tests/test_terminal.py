"""The one progress line that ``heicconv convert`` and ``heicconv bench`` rewrite on a terminal."""

from __future__ import annotations

import io

from heicconv.api.terminal import StatusLine
from heicconv.cli.report import Record, Reporter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def visible(stream: str) -> str:
    """What a terminal shows: each carriage return goes back to the line's start and overwrites."""
    lines = [""]
    col = 0
    for ch in stream:
        if ch == "\n":
            lines.append("")
            col = 0
        elif ch == "\r":
            col = 0
        else:
            line = lines[-1]
            lines[-1] = line[:col] + ch + line[col + 1 :]
            col += 1
    return "\n".join(lines)


def test_a_shorter_text_covers_a_longer_one_and_clear_blanks_it() -> None:
    err = Terminal()
    line = StatusLine(err)
    line.show("[1/12] vips photo-with-a-long-name.heic jpeg")
    line.show("[2/12] vips a.heic jpeg")
    assert visible(err.getvalue()).rstrip() == "[2/12] vips a.heic jpeg"
    line.clear()
    assert visible(err.getvalue()).strip() == "" and not line.shown
    line.clear()  # nothing shown: nothing written
    assert err.getvalue().endswith("\r")


def test_the_convert_bar_steps_aside_for_an_error_line() -> None:
    err = Terminal()
    report = Reporter(total=2, out=Terminal(), err=err)
    report.add(Record("a.heic", "a.jpg", "converted", seconds=0.1))
    assert "1/2" in visible(err.getvalue())
    report.add(Record("b.heic", None, "failed", error="DecodeError: the file is truncated"))
    shown = visible(err.getvalue()).splitlines()
    # The error is a line of its own, the bar is redrawn under it, and no bar text is left in the error line.
    assert shown[0].rstrip() == "failed b.heic: DecodeError: the file is truncated"
    assert "2/2" in shown[1]  # the last file always redraws it


def test_without_a_terminal_there_is_no_bar() -> None:
    err = io.StringIO()
    report = Reporter(total=2, out=io.StringIO(), err=err)
    report.add(Record("a.heic", "a.jpg", "converted", seconds=0.1))
    assert "\r" not in err.getvalue() and "converted a.heic -> a.jpg" in err.getvalue()


def test_a_name_cannot_break_the_status_line_or_drive_the_terminal() -> None:
    err = Terminal()
    StatusLine(err).show("[1/2] vips IMG\n0001\x1b[2J.heic jpeg")
    assert err.getvalue() == "\r[1/2] vips IMG\\n0001\\x1b[2J.heic jpeg"
    report = Reporter(total=2, out=Terminal(), err=err)
    report.add(Record("b\r.heic", None, "failed", error="DecodeError: the file is truncated"))
    assert "failed b\\r.heic: DecodeError" in err.getvalue()
