"""Bar and line charts written as plain SVG, so the report needs no plotting library."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

__all__ = ["PALETTE", "Bar", "Mark", "Series", "bar_chart", "line_chart", "short_number"]

#: ``(series, value)``, or ``(series, value, warning)``: a bar with a warning is drawn faded, the warning beside it.
Bar = tuple[str, float] | tuple[str, float, str]

#: Colours for the series, in order (readable on white, distinct for common colour blindness).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")

_ROW, _BAR, _LABEL_W, _BAR_W, _PAD = 22, 16, 110, 520, 10


def bar_chart(
    title: str,
    unit: str,
    groups: Sequence[tuple[str, Sequence[Bar]]],
    series: Sequence[str] | None = None,
    *,
    log: bool = False,
    label_width: int = _LABEL_W,
) -> str:
    """An SVG document: for each ``(group label, [bar, ...])`` one bar per series (see :data:`Bar`).

    ``log``: bar lengths on a log scale from the decade below the smallest value (for values that span
    several orders of magnitude, such as latencies with and without a queue); the values are written beside.

    >>> svg = bar_chart("Peak memory", "MB", [("pug.heic", [("pillow", 250.0), ("vips", 120.0)])])
    >>> svg.startswith("<svg") and "pillow" in svg
    True
    """
    names = list(series) if series is not None else list(dict.fromkeys(b[0] for _, bars in groups for b in bars))
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    top = max((b[1] for _, bars in groups for b in bars), default=0.0) or 1.0
    positive = [b[1] for _, bars in groups for b in bars if b[1] > 0]
    floor = 10 ** math.floor(math.log10(min(positive))) if log and positive else 0.0
    if log and top <= floor:
        top = floor * 10

    def length(value: float) -> float:
        if not log:
            return max(0.0, value) / top * bar_w
        if value <= floor:
            return 0.0
        return (math.log10(value) - math.log10(floor)) / (math.log10(top) - math.log10(floor)) * bar_w

    legend_h = _ROW if len(names) > 1 else 0
    height = 40 + legend_h + sum((len(bars) + 1) * _ROW + _PAD for _, bars in groups) + 10
    warned = any(len(b) == 3 and b[2] for _, bars in groups for b in bars)
    bar_w = _BAR_W - (label_width - _LABEL_W) // 2  # wider labels take half their room from the bars
    width = label_width + bar_w + (260 if warned else 80)  # room for the value, and a warning beside it
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)} ({escape(unit)}'
        f"{', log scale' if log else ''})</text>",
    ]
    y = 40
    if legend_h:
        x = 10
        for name in names:
            parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour[name]}"/>')
            parts.append(f'<text x="{x + 16}" y="{y + 11}">{escape(name)}</text>')
            x += 30 + 8 * len(name)
        y += legend_h
    for label, bars in groups:
        # The group's label on a line of its own, so long route names never run into the bars.
        parts.append(f'<text x="10" y="{y + _BAR - 3}" font-weight="bold">{escape(label)}</text>')
        y += _ROW
        for bar in bars:
            name, value, warning = bar if len(bar) == 3 else (bar[0], bar[1], "")
            w = length(value)
            parts.append(f'<text x="{label_width - 6}" y="{y + _BAR - 3}" text-anchor="end">{escape(name)}</text>')
            faded = ' fill-opacity="0.35" stroke="#d55e00" stroke-dasharray="3,2"' if warning else ""
            parts.append(
                f'<rect x="{label_width}" y="{y}" width="{w:.1f}" height="{_BAR}" fill="{colour.get(name, PALETTE[0])}"'
                f"{faded}><title>{escape(name)}: {value:.4g} {escape(unit)}</title></rect>"
            )
            text = f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
            if warning:
                text += f" ⚠ {warning}"
            parts.append(f'<text x="{label_width + w + 4:.1f}" y="{y + _BAR - 3}">{escape(text)}</text>')
            y += _ROW
        y += _PAD
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


#: ``(name, colour, dashed, [(x, y), ...])``: one line of a :func:`line_chart`.
Series = tuple[str, str, bool, Sequence[tuple[float, float]]]
#: ``(x, y, label, colour)``: a point marked with a circle, its label listed in the plot's top-left corner.
Mark = tuple[float, float, str, str]

_W, _LEFT, _RIGHT, _TOP, _PLOT_H = 800, 72, 24, 58, 330


def _ticks(low: float, high: float, log: bool) -> list[float]:
    """Round values for an axis from ``low`` to ``high``: decades on a log axis, 1-2-5 steps on a linear one."""
    if log:
        return [10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]
    span = high - low or 1.0
    raw = span / 5
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    first = math.floor(low / step) * step
    return [first + i * step for i in range(math.ceil((high - first) / step) + 1)]


def short_number(x: float) -> str:
    """``1500000`` -> ``1.5M``: axis labels.

    >>> short_number(10_000), short_number(2_500_000), short_number(1e9), short_number(0.5)
    ('10k', '2.5M', '1B', '0.5')
    """
    for suffix, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def line_chart(
    title: str,
    x_title: str,
    y_title: str,
    series: Sequence[Series],
    *,
    marks: Sequence[Mark] = (),
    log_x: bool = False,
    log_y: bool = False,
    x_label: Callable[[float], str] = short_number,
    y_label: Callable[[float], str] = short_number,
    marks_title: str = "",
    note: str = "",
) -> str:
    """An SVG line chart 800 px wide, the legend under the plot in two columns (``note``: lines of text
    under it, split at newlines).

    >>> svg = line_chart("Cost", "requests a month", "USD", [("pillow", PALETTE[0], False, [(1e4, 1.0), (1e6, 50.0)])],
    ...                  log_x=True, log_y=True, marks=[(1e5, 10.0, "break-even", "black")])
    >>> svg.startswith("<svg") and "break-even" in svg and "<polyline" in svg
    True
    """
    points = [p for _, _, _, pts in series for p in pts] + [(x, y) for x, y, _, _ in marks]
    if log_x or log_y:
        points = [(x, y) for x, y in points if (x > 0 or not log_x) and (y > 0 or not log_y)]
    xs, ys = [p[0] for p in points] or [1.0], [p[1] for p in points] or [1.0]
    x_ticks = _ticks(min(xs), max(xs), log_x)
    y_ticks = _ticks(0.0 if not log_y else min(ys), max(ys), log_y)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    plot_w = _W - _LEFT - _RIGHT

    def fx(x: float) -> float:
        f = (math.log10(x) - math.log10(x0)) / (math.log10(x1) - math.log10(x0)) if log_x else (x - x0) / (x1 - x0)
        return _LEFT + f * plot_w

    def fy(y: float) -> float:
        if log_y:
            f = (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0))
        else:
            f = (y - y0) / ((y1 - y0) or 1.0)
        return _TOP + (1 - f) * _PLOT_H

    legend_rows = math.ceil(len(series) / 2)
    notes = note.splitlines() if note else []
    height = _TOP + _PLOT_H + 46 + legend_rows * 20 + 20 * len(notes) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" font-family="sans-serif" font-size="13">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{_W}" height="{height}" fill="white"/>',
        f'<text x="10" y="24" font-size="16" font-weight="bold">{escape(title)}</text>',
        f'<text x="10" y="{_TOP - 12}" fill="#444">{escape(y_title)}</text>',
    ]
    for t in x_ticks:
        x = fx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + _PLOT_H}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{_TOP + _PLOT_H + 17}" text-anchor="middle">{escape(x_label(t))}</text>')
    for t in y_ticks:
        y = fy(t)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_label(t))}</text>')
    parts.append(
        f'<text x="{_LEFT + plot_w / 2:.0f}" y="{_TOP + _PLOT_H + 36}" text-anchor="middle" fill="#444">'
        f"{escape(x_title)}</text>"
    )
    parts.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{_PLOT_H}" fill="none" stroke="#888"/>')
    for name, colour, dashed, pts in series:
        shown = [(x, y) for x, y in pts if (x > 0 or not log_x) and (y > 0 or not log_y)]
        if not shown:
            continue
        dash = ' stroke-dasharray="7,4"' if dashed else ""
        coords = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in shown)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2.2"{dash}>'
            f"<title>{escape(name)}</title></polyline>"
        )
    if marks:
        box_h = 22 + 18 * len(marks)
        box_w = 16 + 7.5 * max(len(label) for _, _, label, _ in marks)
        parts.append(
            f'<rect x="{_LEFT + 8}" y="{_TOP + 8}" width="{box_w:.0f}" height="{box_h}" fill="white" '
            'fill-opacity="0.9" stroke="#bbb"/>'
        )
        parts.append(f'<text x="{_LEFT + 16}" y="{_TOP + 24}" font-weight="bold">{escape(marks_title)}</text>')
    for i, (x, y, label, colour) in enumerate(marks):
        cx, cy = fx(x), fy(y)
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="white" stroke="{colour}" stroke-width="3">'
            f"<title>{escape(label)}</title></circle>"
        )
        ly = _TOP + 24 + 18 * (i + 1)
        parts.append(f'<circle cx="{_LEFT + 22}" cy="{ly - 4}" r="5" fill="white" stroke="{colour}" stroke-width="3"/>')
        parts.append(f'<text x="{_LEFT + 34}" y="{ly}">{escape(label)}</text>')
    y = _TOP + _PLOT_H + 56
    for i, (name, colour, dashed, _) in enumerate(series):
        lx = 10 + (i % 2) * (_W // 2)
        ly = y + (i // 2) * 20
        dash = ' stroke-dasharray="7,4"' if dashed else ""
        parts.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 28}" y2="{ly - 4}" stroke="{colour}" stroke-width="2.5"{dash}/>'
        )
        parts.append(f'<text x="{lx + 34}" y="{ly}">{escape(name)}</text>')
    for i, line in enumerate(notes):
        parts.append(f'<text x="10" y="{y + legend_rows * 20 + 6 + 20 * i}" fill="#444">{escape(line)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
