"""How the bench writes its tables and its figures in words: one writer for the report, its month sections
and docs/update_route.py, so that a figure reads the same wherever it is."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["in_words", "seconds", "table", "usd"]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (a ``|`` in a cell is escaped).

    >>> print(table(["route", "USD"], [["Lambda | ZIP", "$1.00"]]))
    | route | USD |
    |---|---|
    | Lambda \\| ZIP | $1.00 |
    """

    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def usd(x: float) -> str:
    """A bill: whole dollars from $100 up, cents below.

    >>> usd(1234.5), usd(12.345)
    ('$1,234', '$12.35')
    """
    return f"${x:,.0f}" if x >= 100 else f"${x:,.2f}"


def in_words(n: float) -> str:
    """A number in words, to a tenth of its unit.

    >>> in_words(5_000_000), in_words(12_500), in_words(950)
    ('5.0 million', '12.5 thousand', '950')
    """
    for unit, size in (("billion", 1e9), ("million", 1e6), ("thousand", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f}"


def seconds(s: float) -> str:
    """A wait: minutes from 2 minutes up, tenths from 10 s, hundredths below.

    >>> seconds(300), seconds(12.34), seconds(0.456)
    ('5 min', '12.3 s', '0.46 s')
    """
    if s >= 120:
        return f"{s / 60:.0f} min"
    return f"{s:.1f} s" if s >= 10 else f"{s:.2f} s"
