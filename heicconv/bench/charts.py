"""Bar and line charts written as plain SVG, so the report needs no plotting library."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    bar_w = _BAR_W - (label_width - _LABEL_W) // 2  # wider labels take half their room from the bars
    scale = _BarScale.fit([b[1] for _, bars in groups for b in bars], log, bar_w)
    legend_h = _ROW if len(names) > 1 else 0
    height = 40 + legend_h + sum((len(bars) + 1) * _ROW + _PAD for _, bars in groups) + 10
    warned = any(len(b) == 3 and b[2] for _, bars in groups for b in bars)
    width = label_width + bar_w + (260 if warned else 80)  # room for the value, and a warning beside it
    parts = _svg_start(width, height, 12, title)
    parts.append(
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)} ({escape(unit)}'
        f"{', log scale' if log else ''})</text>"
    )
    y = 40
    if legend_h:
        parts += _bar_legend(names, colour, y)
        y += legend_h
    for label, bars in groups:
        # The group's label on a line of its own, so long route names never run into the bars.
        parts.append(f'<text x="10" y="{y + _BAR - 3}" font-weight="bold">{escape(label)}</text>')
        y += _ROW
        for bar in bars:
            parts += _bar(bar, y, scale, colour.get(bar[0], PALETTE[0]), unit, label_width)
            y += _ROW
        y += _PAD
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_start(width: int, height: int, font_size: int, title: str) -> list[str]:
    """The opening of a chart's SVG document: its size, its title for screen readers, a white background."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{font_size}">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]


@dataclass(frozen=True)
class _BarScale:
    """Maps a value to a bar's length in pixels, linearly from 0 or logarithmically from ``floor``."""

    top: float
    floor: float
    log: bool
    width: int

    @classmethod
    def fit(cls, values: list[float], log: bool, width: int) -> _BarScale:
        top = max(values, default=0.0) or 1.0
        positive = [v for v in values if v > 0]
        floor = 10 ** math.floor(math.log10(min(positive))) if log and positive else 0.0
        if log and top <= floor:
            top = floor * 10
        return cls(top, floor, log, width)

    def length(self, value: float) -> float:
        if not self.log:
            return max(0.0, value) / self.top * self.width
        if value <= self.floor:
            return 0.0
        return (
            (math.log10(value) - math.log10(self.floor)) / (math.log10(self.top) - math.log10(self.floor)) * self.width
        )


def _bar_legend(names: list[str], colour: dict[str, str], y: int) -> list[str]:
    """One coloured square and name per series, in a row."""
    parts = []
    x = 10
    for name in names:
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour[name]}"/>')
        parts.append(f'<text x="{x + 16}" y="{y + 11}">{escape(name)}</text>')
        x += 30 + 8 * len(name)
    return parts


def _bar(bar: Bar, y: int, scale: _BarScale, fill: str, unit: str, label_width: int) -> list[str]:
    """One bar at ``y``: its series' name, the bar (faded if it carries a warning), its value and warning."""
    name, value, warning = bar if len(bar) == 3 else (bar[0], bar[1], "")
    w = scale.length(value)
    faded = ' fill-opacity="0.35" stroke="#d55e00" stroke-dasharray="3,2"' if warning else ""
    text = f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if warning:
        text += f" ⚠ {warning}"
    return [
        f'<text x="{label_width - 6}" y="{y + _BAR - 3}" text-anchor="end">{escape(name)}</text>',
        f'<rect x="{label_width}" y="{y}" width="{w:.1f}" height="{_BAR}" fill="{fill}"'
        f"{faded}><title>{escape(name)}: {value:.4g} {escape(unit)}</title></rect>",
        f'<text x="{label_width + w + 4:.1f}" y="{y + _BAR - 3}">{escape(text)}</text>',
    ]


#: ``(name, colour, dashed, [(x, y), ...])``: one line of a :func:`line_chart`.
Series = tuple[str, str, bool, Sequence[tuple[float, float]]]
#: ``(x, y, label, colour)``: a point marked with a circle, its label listed in the plot's top-left corner.
Mark = tuple[float, float, str, str]

_W, _LEFT, _RIGHT, _TOP, _PLOT_H = 800, 72, 24, 58, 330
_PLOT_W = _W - _LEFT - _RIGHT


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
    axes = _Axes.fit(series, marks, log_x, log_y)
    legend_rows = math.ceil(len(series) / 2)
    notes = note.splitlines() if note else []
    height = _TOP + _PLOT_H + 46 + legend_rows * 20 + 20 * len(notes) + 10
    parts = _svg_start(_W, height, 13, title)
    parts.append(f'<text x="10" y="24" font-size="16" font-weight="bold">{escape(title)}</text>')
    parts.append(f'<text x="10" y="{_TOP - 12}" fill="#444">{escape(y_title)}</text>')
    parts += _grid(axes, x_label, y_label)
    parts.append(
        f'<text x="{_LEFT + _PLOT_W / 2:.0f}" y="{_TOP + _PLOT_H + 36}" text-anchor="middle" fill="#444">'
        f"{escape(x_title)}</text>"
    )
    parts.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{_PLOT_W}" height="{_PLOT_H}" fill="none" stroke="#888"/>')
    parts += _lines(series, axes)
    parts += _marks(marks, axes, marks_title)
    parts += _line_legend(series, notes, _TOP + _PLOT_H + 56)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class _Axes:
    """A line chart's axes: their ticks (the first and last are the plot's edges) and how values map to pixels."""

    x_ticks: list[float]
    y_ticks: list[float]
    log_x: bool
    log_y: bool

    @classmethod
    def fit(cls, series: Sequence[Series], marks: Sequence[Mark], log_x: bool, log_y: bool) -> _Axes:
        """Axes that hold every point of ``series`` and every mark (what a log axis can show of them)."""
        points = [p for _, _, _, pts in series for p in pts] + [(x, y) for x, y, _, _ in marks]
        if log_x or log_y:
            points = [(x, y) for x, y in points if cls.can_show(x, y, log_x, log_y)]
        xs, ys = [p[0] for p in points] or [1.0], [p[1] for p in points] or [1.0]
        x_ticks = _ticks(min(xs), max(xs), log_x)
        y_ticks = _ticks(0.0 if not log_y else min(ys), max(ys), log_y)
        return cls(x_ticks, y_ticks, log_x, log_y)

    @staticmethod
    def can_show(x: float, y: float, log_x: bool, log_y: bool) -> bool:
        return (x > 0 or not log_x) and (y > 0 or not log_y)

    def fx(self, x: float) -> float:
        x0, x1 = self.x_ticks[0], self.x_ticks[-1]
        if self.log_x:
            return _LEFT + (math.log10(x) - math.log10(x0)) / (math.log10(x1) - math.log10(x0)) * _PLOT_W
        return _LEFT + (x - x0) / (x1 - x0) * _PLOT_W

    def fy(self, y: float) -> float:
        y0, y1 = self.y_ticks[0], self.y_ticks[-1]
        if self.log_y:
            f = (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0))
        else:
            f = (y - y0) / ((y1 - y0) or 1.0)
        return _TOP + (1 - f) * _PLOT_H


def _grid(axes: _Axes, x_label: Callable[[float], str], y_label: Callable[[float], str]) -> list[str]:
    """A grid line and a label at each tick of both axes."""
    parts = []
    for t in axes.x_ticks:
        x = axes.fx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + _PLOT_H}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{_TOP + _PLOT_H + 17}" text-anchor="middle">{escape(x_label(t))}</text>')
    for t in axes.y_ticks:
        y = axes.fy(t)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_label(t))}</text>')
    return parts


def _lines(series: Sequence[Series], axes: _Axes) -> list[str]:
    """One polyline a series, through the points the axes can show (a series with none is left out)."""
    parts = []
    for name, colour, dashed, pts in series:
        shown = [(x, y) for x, y in pts if axes.can_show(x, y, axes.log_x, axes.log_y)]
        if not shown:
            continue
        dash = ' stroke-dasharray="7,4"' if dashed else ""
        coords = " ".join(f"{axes.fx(x):.1f},{axes.fy(y):.1f}" for x, y in shown)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2.2"{dash}>'
            f"<title>{escape(name)}</title></polyline>"
        )
    return parts


def _marks(marks: Sequence[Mark], axes: _Axes, marks_title: str) -> list[str]:
    """A circle at each mark, and a box in the plot's top-left corner that lists their labels."""
    parts = []
    if marks:
        box_h = 22 + 18 * len(marks)
        box_w = 16 + 7.5 * max(len(label) for _, _, label, _ in marks)
        parts.append(
            f'<rect x="{_LEFT + 8}" y="{_TOP + 8}" width="{box_w:.0f}" height="{box_h}" fill="white" '
            'fill-opacity="0.9" stroke="#bbb"/>'
        )
        parts.append(f'<text x="{_LEFT + 16}" y="{_TOP + 24}" font-weight="bold">{escape(marks_title)}</text>')
    for i, (x, y, label, colour) in enumerate(marks):
        cx, cy = axes.fx(x), axes.fy(y)
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="white" stroke="{colour}" stroke-width="3">'
            f"<title>{escape(label)}</title></circle>"
        )
        ly = _TOP + 24 + 18 * (i + 1)
        parts.append(f'<circle cx="{_LEFT + 22}" cy="{ly - 4}" r="5" fill="white" stroke="{colour}" stroke-width="3"/>')
        parts.append(f'<text x="{_LEFT + 34}" y="{ly}">{escape(label)}</text>')
    return parts


def _line_legend(series: Sequence[Series], notes: list[str], y: int) -> list[str]:
    """The legend from ``y`` down, two series a row, then the notes."""
    parts = []
    for i, (name, colour, dashed, _) in enumerate(series):
        lx = 10 + (i % 2) * (_W // 2)
        ly = y + (i // 2) * 20
        dash = ' stroke-dasharray="7,4"' if dashed else ""
        parts.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 28}" y2="{ly - 4}" stroke="{colour}" stroke-width="2.5"{dash}/>'
        )
        parts.append(f'<text x="{lx + 34}" y="{ly}">{escape(name)}</text>')
    legend_rows = math.ceil(len(series) / 2)
    for i, line in enumerate(notes):
        parts.append(f'<text x="10" y="{y + legend_rows * 20 + 6 + 20 * i}" fill="#444">{escape(line)}</text>')
    return parts
