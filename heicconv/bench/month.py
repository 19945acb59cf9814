"""The month in the report: each measured backend's routes simulated on a traffic, the tables and the charts.

:func:`simulate_month` runs :mod:`heicconv.bench.simulate` for every backend and route on one traffic,
sweeps the monthly volume for the cost chart and finds each backend's break-even volume;
the rest turns that into Markdown, SVG and JSON for :func:`heicconv.bench.report.write_report`.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .charts import PALETTE, Mark, Series, bar_chart, line_chart, short_number
from .cost import CostModel, Projection
from .markdown import in_words, seconds, table, usd
from .simulate import (
    SWEEP_VOLUMES,
    Fleet,
    Outcome,
    break_even,
    chart_routes,
    simulate_projection,
    sweep,
)
from .traffic import Traffic

__all__ = [
    "ASSUMPTIONS",
    "ROUTE_HEADERS",
    "Month",
    "month_charts",
    "month_markdown",
    "month_verdict",
    "route_rows",
    "simulate_month",
]


@dataclass
class Month:
    """One traffic simulated on every route of every measured backend."""

    traffic: Traffic
    fleet: Fleet
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)  # backend -> every route
    chosen: dict[str, tuple[Outcome | None, Outcome | None]] = field(default_factory=dict)  # backend -> charted
    lines: dict[str, list[tuple[float, float, bool]]] = field(default_factory=dict)  # "backend route" -> sweep
    break_evens: dict[str, float | None] = field(default_factory=dict)  # backend -> volume
    seconds: float = 0.0  # how long the simulation took

    @property
    def slug(self) -> str:
        """The traffic's label as a file-name part."""
        return re.sub(r"[^a-z0-9]+", "-", self.traffic.label.lower()).strip("-") or "traffic"

    def to_dict(self) -> dict[str, Any]:
        return {
            "traffic": {
                "label": self.traffic.label,
                "source": self.traffic.source,
                "minutes": self.traffic.minutes,
                "requests": self.traffic.total,
                "per_month": self.traffic.per_month,
            },
            "fleet": self.fleet.to_dict(),
            "outcomes": {b: [o.to_dict() for o in outs] for b, outs in self.outcomes.items()},
            "cost_by_volume": {
                key: [{"per_month": v, "monthly": c, "keeps_up": ok} for v, c, ok in line]
                for key, line in self.lines.items()
            },
            "break_even_per_month": self.break_evens,
            "seconds": self.seconds,
        }


def _line_key(route: Outcome) -> str:
    return f"{route.backend} {route.route}"


def simulate_month(
    projs: Sequence[Projection],
    traffic: Traffic,
    fleet: Fleet,
    model: CostModel,
    volumes: Sequence[float] = SWEEP_VOLUMES,
) -> Month:
    """Every route of every projection on ``traffic``, the cost sweep over ``volumes`` and the break-evens."""
    started = time.perf_counter()
    month = Month(traffic, fleet)
    pairs = []
    for p in projs:
        outs = simulate_projection(p, traffic, fleet, model)
        month.outcomes[p.workload.backend] = outs
        lam, box = chart_routes(outs)
        month.chosen[p.workload.backend] = (lam, box)
        pairs += [(p.workload, r) for r in (lam, box) if r is not None]
    if volumes:
        for (_, route), line in zip(pairs, sweep(traffic, pairs, fleet, model, volumes), strict=True):
            month.lines[_line_key(route)] = line
        for p in projs:
            lam, box = month.chosen[p.workload.backend]
            if lam is not None and box is not None:
                lines = (month.lines[_line_key(lam)], month.lines[_line_key(box)])
                month.break_evens[p.workload.backend] = break_even(
                    traffic, p.workload, lam, box, fleet, model, volumes, steps=6, lines=lines
                )
    month.seconds = time.perf_counter() - started
    return month


def month_verdict(month: Month) -> list[str]:
    """Per backend, in words: which route is cheaper for this traffic, what users wait on each, the break-even."""
    t = month.traffic
    lines = []
    for backend, (lam, box) in month.chosen.items():
        if box is None:
            continue
        if lam is None:
            lines.append(
                f"**{backend}**: no Lambda size tried holds it; {box.route} costs {usd(box.monthly)} a month, "
                f"p95 {seconds(box.p95_s)}."
            )
            continue
        cheaper, dearer = (lam, box) if lam.monthly <= box.monthly else (box, lam)
        text = (
            f"**{backend}**: at {in_words(t.per_month)} a month, **{cheaper.route}** is cheaper "
            f"({usd(cheaper.monthly)} against {usd(dearer.monthly)} a month). Users wait p50 "
            f"{seconds(lam.p50_s)} / p95 {seconds(lam.p95_s)} / p99 {seconds(lam.p99_s)} on Lambda "
            f"({lam.cold_share:.2%} cold starts"
            + (f", {lam.waited_share:.1%} throttled at the concurrency limit" if lam.waited else "")
            + f"), p50 {seconds(box.p50_s)} / p95 {seconds(box.p95_s)} / p99 "
            f"{seconds(box.p99_s)} on the container (peak {box.peak} tasks"
            + (f", {box.waited_share:.1%} of requests queued" if box.waited else "")
            + ")."
        )
        volume = month.break_evens.get(backend)
        if volume is not None:
            text += f" With this shape, the container is cheaper above about {in_words(volume)} a month."
        elif month.lines:
            text += " With this shape, Lambda is cheaper at every volume charted (10 thousand to 1 billion a month)."
        lines.append(text)
    return lines


ROUTE_HEADERS = (
    "backend: route",
    "USD a month",
    "p50",
    "p95",
    "p99",
    "cold starts",
    "queued",
    "peak",
    "notes",
)


def _notes(o: Outcome) -> list[str]:
    throttled = o.kind == "lambda" and o.waited > 0  # Lambda queues only at the concurrency limit
    return [*o.flags, *(["throttled at the concurrency limit: the queued requests waited"] if throttled else [])]


def route_rows(month: Month) -> list[list[str]]:
    """Every route of every backend on this traffic: the full table (the charts show two a backend)."""
    rows = []
    for backend, outs in month.outcomes.items():
        for o in outs:
            rows.append(
                [
                    f"{backend}: {o.route}",
                    usd(o.monthly),
                    seconds(o.p50_s),
                    seconds(o.p95_s),
                    seconds(o.p99_s),
                    f"{o.cold_share:.2%}" if o.kind == "lambda" else "–",
                    f"{o.waited_share:.1%}",
                    f"{o.peak} {'at once' if o.kind == 'lambda' else 'tasks'}",
                    "; ".join(_notes(o)),
                ]
            )
    return rows


def month_charts(month: Month) -> dict[str, str]:
    """The three charts for one traffic: cost against volume, latency per route, the traffic itself."""
    backends = list(month.chosen)
    colour = {b: PALETTE[i % len(PALETTE)] for i, b in enumerate(backends)}
    series: list[Series] = []
    for backend, (lam, box) in month.chosen.items():
        for route in (lam, box):
            if route is None:
                continue
            points = [(v, c) for v, c, ok in month.lines.get(_line_key(route), []) if ok]
            name = f"{backend}: {route.route}"
            series.append((name, colour[backend], route.kind == "container", points))
    marks: list[Mark] = []
    for backend, volume in month.break_evens.items():
        lam, box = month.chosen[backend]
        line = month.lines.get(_line_key(box)) if box is not None else None
        if volume is None or not line:
            continue
        cost = _interpolate(line, volume)
        marks.append((volume, cost, f"{backend}: {short_number(volume)} a month", colour[backend]))
    t = month.traffic
    charts = {}
    if series and any(pts for *_, pts in series):
        charts[f"cost_by_volume-{month.slug}.svg"] = line_chart(
            f"Monthly cost against monthly volume, {t.label} traffic",
            "requests a month (the shape scaled; log scale)",
            "USD a month (log scale)",
            series,
            marks=marks,
            log_x=True,
            log_y=True,
            y_label=lambda y: "$" + short_number(y),
            marks_title="Break-even: the container is cheaper above",
            note="Solid: Lambda (its cheapest size that holds the workload); dashed: the container, autoscaled.\n"
            "A line ends where the route falls behind (concurrency limit or max_tasks).",
        )
    groups = []
    for backend, (lam, box) in month.chosen.items():
        for route in (lam, box):
            if route is not None:
                groups.append(
                    (f"{backend}: {route.route}", [("p50", route.p50_s), ("p95", route.p95_s), ("p99", route.p99_s)])
                )
    if groups:
        charts[f"latency-{month.slug}.svg"] = bar_chart(
            f"Time to the converted object: {t.label}, {in_words(t.per_month)} a month",
            "s",
            groups,
            ["p50", "p95", "p99"],
            log=True,
        )
    charts[f"traffic-{month.slug}.svg"] = _traffic_chart(t)
    return charts


def _interpolate(line: Sequence[tuple[float, float, bool]], x: float) -> float:
    for (x0, y0, _), (x1, y1, _) in itertools.pairwise(line):
        if x0 <= x <= x1 and y0 > 0 and y1 > 0:
            f = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return math.exp(math.log(y0) + f * (math.log(y1) - math.log(y0)))
    return line[-1][1]


def _traffic_chart(t: Traffic) -> str:
    """Requests a minute over the traffic's span: each hour's busiest minute and its mean."""
    peak, mean = [], []
    for h in range(0, t.minutes, 60):
        hour = t.counts[h : h + 60]
        day = h / 1440
        peak.append((day, float(max(hour))))
        mean.append((day, sum(hour) / len(hour)))
    return line_chart(
        f"The traffic: {t.label}, {t.total:,} requests in {t.minutes / 1440:.0f} days",
        "day",
        "requests a minute",
        [("busiest minute of each hour", "#9ecae1", False, peak), ("mean of each hour", PALETTE[0], False, mean)],
        x_label=lambda x: f"{x:g}",
        note=t.source,
    )


#: What the simulation assumes, for the report (one screen).
ASSUMPTIONS = (
    "Minutes: the month is 43,200 one-minute steps (30 days); within a minute requests are spread evenly, "
    "so queueing inside a minute that has room is not modelled. Named shapes draw each minute's count from "
    "a Poisson distribution around the shape (fixed seed); a CSV is used as given.",
    "Time to the converted object: the measured warm conversion at the route's CPU share, plus a cold start "
    "where one happens, plus any wait in a queue. S3's event delivery, the download and the upload are not "
    "included.",
    "Lambda: a minute serving n requests keeps ceil(n x duration / 60 s) environments busy; environments "
    "used in the last `keep_warm_min` minutes are warm (AWS does not document the idle lifetime: 5 to 15 "
    "minutes are reported), each one more is a cold start that also pays the measured cold-start overhead "
    "(billed: INIT is billed since 2025-08-01). That overhead is this machine's process start, import and "
    "first conversion; a container image's INIT on Lambda is usually longer.",
    "Lambda throttling: above `concurrency_limit` environments an S3 event's asynchronous invoke is retried, "
    "modelled as a queue served by the next minutes' capacity. Provisioned environments never start cold "
    "and are billed all month.",
    "Container: a task runs `workers` conversions at once (default one a vCPU), each taking the measured "
    "time scaled to its CPU share; requests queue for a worker. The autoscaler decides once a minute on "
    "`cpu` (target tracking: busy share / `scale_target`, so a saturated fleet grows at most "
    "1 / `scale_target` a step) or "
    "`queue` (waiting plus in flight over a task's minute at `scale_target`); new tasks serve after "
    "`scale_out_delay_min` and are billed from the decision; the fleet shrinks after `scale_in_min` minutes "
    "of wanting fewer, never below `min_tasks` nor above `max_tasks`.",
    "Start: a traffic of a day or more is simulated after its own last 6 hours, as if the month followed "
    "one like it: warm environments, the fleet and any queue start as that left them (a shorter one starts "
    "cold, with `min_tasks`).",
    "Prices: the first pricing tier, no free tier, no Savings Plans; no API Gateway, S3, SQS, data transfer "
    "or load balancer costs (a container behind an ALB pays for it; an S3 event to Lambda does not).",
)


def month_markdown(month: Month, charts: Sequence[str]) -> list[str]:
    """The report's section for one traffic."""
    t = month.traffic
    f = month.fleet
    out = [
        f"## A month of {t.label} traffic",
        "",
        f"{t.source[:1].upper() + t.source[1:]}. Simulated minute by minute on every route in {month.seconds:.1f} s. "
        f"Lambda: {f.keep_warm_min} min keep-warm, concurrency limit {f.concurrency_limit:,}, "
        f"{f.provisioned} provisioned. Containers: "
        f"{f'{f.workers} conversions at once a task' if f.workers else 'one conversion at once a vCPU'}, "
        f"{f.min_tasks} to {f.max_tasks} tasks, scaling on {f.scale_on} at "
        f"{f.scale_target:.0%}, {f.scale_out_delay_min} min to scale out, {f.scale_in_min} min before scaling in.",
        "",
        *[f"- {line}" for line in month_verdict(month)],
        "",
    ]
    out += [f"![{c.rsplit('.', 1)[0].replace('_', ' ')}]({c})\n" for c in charts]
    out += [
        "Every route, this traffic (cold starts and queued: shares of the requests; peak: Lambda environments "
        "at once, or container tasks):",
        "",
        table(ROUTE_HEADERS, route_rows(month)),
        "",
    ]
    return out
