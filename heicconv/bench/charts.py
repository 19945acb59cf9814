"""Horizontal bar charts written as plain SVG, so the report needs no plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["PALETTE", "Bar", "bar_chart"]

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
) -> str:
    """An SVG document: for each ``(group label, [bar, ...])`` one bar per series (see :data:`Bar`).

    >>> svg = bar_chart("Peak memory", "MB", [("pug.heic", [("pillow", 250.0), ("vips", 120.0)])])
    >>> svg.startswith("<svg") and "pillow" in svg
    True
    """
    names = list(series) if series is not None else list(dict.fromkeys(b[0] for _, bars in groups for b in bars))
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    top = max((b[1] for _, bars in groups for b in bars), default=0.0) or 1.0
    legend_h = _ROW if len(names) > 1 else 0
    height = 40 + legend_h + sum((len(bars) + 1) * _ROW + _PAD for _, bars in groups) + 10
    warned = any(len(b) == 3 and b[2] for _, bars in groups for b in bars)
    width = _LABEL_W + _BAR_W + (260 if warned else 80)  # room for the value, and a warning beside it
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)} ({escape(unit)})</text>',
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
            w = max(0.0, value) / top * _BAR_W
            parts.append(f'<text x="{_LABEL_W - 6}" y="{y + _BAR - 3}" text-anchor="end">{escape(name)}</text>')
            faded = ' fill-opacity="0.35" stroke="#d55e00" stroke-dasharray="3,2"' if warning else ""
            parts.append(
                f'<rect x="{_LABEL_W}" y="{y}" width="{w:.1f}" height="{_BAR}" fill="{colour.get(name, PALETTE[0])}"'
                f"{faded}><title>{escape(name)}: {value:.4g} {escape(unit)}</title></rect>"
            )
            text = f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
            if warning:
                text += f" ⚠ {warning}"
            parts.append(f'<text x="{_LABEL_W + w + 4:.1f}" y="{y + _BAR - 3}">{escape(text)}</text>')
            y += _ROW
        y += _PAD
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
