"""A month of uploads, minute by minute: named shapes with a monthly volume, or a CSV of real counts.

The simulator (:mod:`heicconv.bench.simulate`) works on whole requests per minute. A named shape
gives the *expected* requests of each minute, and its counts are drawn from a Poisson
distribution around them with a fixed seed (arrivals of independent uploads are close to Poisson,
and a quiet function's cold starts come from its gaps, which an even spread would hide). A CSV
gives the counts themselves.

>>> t = shape("office-hours", 1_000_000)
>>> t.minutes, round(t.per_month, -4), max(t.counts) > 10 * min(t.counts)
(43200, 1000000.0, True)
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError

__all__ = [
    "CSV_COLUMNS",
    "MINUTES_PER_MONTH",
    "SHAPES",
    "Traffic",
    "from_counts",
    "parse_spec",
    "poisson_counts",
    "read_csv",
    "shape",
]

#: A month as the simulator counts it: 30 days of minutes. Every monthly figure is scaled to it.
MINUTES_PER_MONTH = 30 * 24 * 60

#: Each named shape, its parameters (with defaults) and what it means.
SHAPES: dict[str, tuple[dict[str, float], str]] = {
    "steady": ({}, "the same expected rate every minute of the month"),
    "office-hours": (
        {"start": 9, "end": 17, "off": 0.05},
        "weekdays from `start` to `end` o'clock (UTC) at full rate; nights and weekends at `off` times that rate",
    ),
    "nightly-backfill": (
        {"start": 1, "end": 3, "share": 0.8},
        "`share` of each day's uploads in a batch job from `start` to `end` o'clock, the rest spread evenly",
    ),
    "bursty": (
        {"bursts": 1, "minutes": 10, "share": 0.5, "seed": 7},
        "an even base load plus `bursts` bursts a day (at random minutes, `seed`), each `minutes` long, "
        "together carrying `share` of the uploads: a campaign, an event, a client syncing its backlog",
    ),
}

#: The CSV's columns (case-insensitive; other columns are ignored): a time and a count per row.
CSV_COLUMNS = {
    "time": ("timestamp", "time", "datetime", "date"),
    "requests": ("requests", "count", "sum", "invocations"),
}


@dataclass(frozen=True)
class Traffic:
    """Requests per minute: ``rates`` the expected count of each minute, ``counts`` those simulated."""

    label: str
    rates: tuple[float, ...]
    counts: tuple[int, ...]
    source: str = ""  # where it came from, in words, for the report
    seed: int = 0

    @property
    def minutes(self) -> int:
        return len(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def months(self) -> float:
        """How many 30-day months the traffic spans."""
        return self.minutes / MINUTES_PER_MONTH

    @property
    def per_month(self) -> float:
        """The requests of a 30-day month at this traffic's rate."""
        return self.total / self.months if self.minutes else 0.0

    def at_volume(self, per_month: float) -> Traffic:
        """The same shape carrying ``per_month`` requests a month (counts drawn again, same seed).

        >>> from_counts([1, 2, 3]).at_volume(2 * 43200 / 3 * 1000).rates
        (333.3333333333333, 666.6666666666666, 1000.0)
        """
        expected = sum(self.rates)
        if expected <= 0:
            raise ConfigError(f"traffic {self.label}: no requests to scale")
        factor = per_month * self.months / expected
        rates = tuple(r * factor for r in self.rates)
        return Traffic(self.label, rates, poisson_counts(rates, self.seed), self.source, self.seed)


def poisson_counts(rates: Sequence[float], seed: int = 0) -> tuple[int, ...]:
    """A whole number of requests for each minute, Poisson-distributed around its expected count.

    Reproducible: the same rates and seed give the same counts.

    >>> counts = poisson_counts([0.0, 2.5, 1e6], seed=1)
    >>> counts[0], counts == poisson_counts([0.0, 2.5, 1e6], seed=1), abs(counts[2] - 1e6) < 5000
    (0, True, True)
    """
    rng = random.Random(seed)
    out = []
    for lam in rates:
        if lam <= 0:
            out.append(0)
        elif lam < 30:
            # Knuth's method: multiply uniforms until the product falls below e^-lam.
            limit, k, p = math.exp(-lam), 0, rng.random()
            while p > limit:
                k += 1
                p *= rng.random()
            out.append(k)
        else:
            # Above about 30 the normal approximation is within a fraction of a percent.
            out.append(max(0, round(rng.gauss(lam, math.sqrt(lam)))))
    return tuple(out)


def from_counts(counts: Iterable[int], label: str = "given", source: str = "") -> Traffic:
    """Exactly these requests per minute (no sampling): for tests and hand-worked cases."""
    counts = tuple(int(c) for c in counts)
    if any(c < 0 for c in counts):
        raise ConfigError(f"traffic {label}: a minute cannot have a negative number of requests")
    return Traffic(label, tuple(float(c) for c in counts), counts, source or "given counts per minute")


def _profile(name: str, p: dict[str, float]) -> list[float]:
    """The relative weight of each minute of a 30-day month (day 0 a Monday)."""
    day = 24 * 60
    if name == "steady":
        return [1.0] * MINUTES_PER_MONTH
    if name == "office-hours":
        start, end = p["start"] * 60, p["end"] * 60
        return [1.0 if (m // day) % 7 < 5 and start <= m % day < end else p["off"] for m in range(MINUTES_PER_MONTH)]
    if name == "nightly-backfill":
        start, end = p["start"] * 60, p["end"] * 60
        window = end - start
        # Per day: the window's minutes share `share`, every minute shares the rest.
        inside = p["share"] / window
        base = (1 - p["share"]) / day
        return [base + (inside if start <= m % day < end else 0.0) for m in range(MINUTES_PER_MONTH)]
    # bursty
    rng = random.Random(int(p["seed"]))
    length, bursts = int(p["minutes"]), int(p["bursts"])
    weights = [(1 - p["share"]) / day] * MINUTES_PER_MONTH
    each = p["share"] / max(1, bursts) / length
    for d in range(30):
        for _ in range(bursts):
            start = d * day + rng.randrange(day - length)
            for m in range(start, start + length):
                weights[m] += each
    return weights


def shape(name: str, per_month: float, **params: float) -> Traffic:
    """A named shape (one of :data:`SHAPES`) carrying ``per_month`` requests in a 30-day month.

    >>> shape("nightly-backfill", 43_200 * 10).label
    'nightly-backfill'
    """
    if name not in SHAPES:
        raise ConfigError(f"traffic: unknown shape {name!r}; known: {', '.join(SHAPES)} (or a CSV file)")
    defaults, _ = SHAPES[name]
    for key in params:
        if key not in defaults:
            known = ", ".join(defaults) or "none"
            raise ConfigError(f"traffic {name}: unknown parameter {key!r}; its parameters: {known}")
    p = {**defaults, **params}
    _check_params(name, p)
    if not (math.isfinite(per_month) and per_month > 0):
        raise ConfigError(f"traffic {name}: the monthly volume must be a number > 0, got {per_month!r}")
    weights = _profile(name, p)
    scale = per_month / sum(weights)
    rates = tuple(w * scale for w in weights)
    described = ", ".join(f"{k}={v:g}" for k, v in p.items())
    source = f"the {name} shape" + (f" ({described})" if described else "") + f", {per_month:,.0f} requests a month"
    return Traffic(name, rates, poisson_counts(rates), source)


def _check_params(name: str, p: dict[str, float]) -> None:
    def bad(what: str) -> ConfigError:
        return ConfigError(f"traffic {name}: {what}, got {', '.join(f'{k}={v:g}' for k, v in p.items())}")

    if name in ("office-hours", "nightly-backfill") and not 0 <= p["start"] < p["end"] <= 24:
        raise bad("expected 0 <= start < end <= 24 (hours)")
    if name == "office-hours" and not 0 <= p["off"] <= 1:
        raise bad("expected 0 <= off <= 1")
    if name in ("nightly-backfill", "bursty") and not 0 <= p["share"] <= 1:
        raise bad("expected 0 <= share <= 1")
    if name == "bursty" and not (1 <= p["minutes"] <= 1440 and 1 <= p["bursts"] <= 100):
        raise bad("expected 1 <= minutes <= 1440 and 1 <= bursts <= 100")


def parse_spec(spec: str, per_month: float) -> Traffic:
    """``--traffic``: a shape name with optional parameters (``bursty:share=0.3,minutes=5``) or a CSV file.

    >>> parse_spec("bursty:share=0.3", 1e6).source.startswith("the bursty shape (bursts=1, minutes=10, share=0.3")
    True
    """
    name, _, raw = spec.partition(":")
    if name in SHAPES:
        params: dict[str, float] = {}
        for item in filter(None, (s.strip() for s in raw.split(","))):
            key, sep, value = item.partition("=")
            try:
                params[key.strip()] = float(value) if sep else math.nan
            except ValueError:
                params[key.strip()] = math.nan
            if not math.isfinite(params[key.strip()]):
                raise ConfigError(f"traffic {name}: expected KEY=NUMBER, got {item!r}")
        return shape(name, per_month, **params)
    path = Path(spec)
    if path.is_file():
        return read_csv(path)
    raise ConfigError(f"traffic: {spec!r} is neither a shape ({', '.join(SHAPES)}) nor a CSV file")


def _timestamp(text: str, where: str) -> float:
    text = text.strip()
    try:
        return float(int(text))  # Unix seconds
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ConfigError(
            f"{where}: time {text!r} is neither ISO 8601 (2026-11-02T09:00:00Z) nor Unix seconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # a time without a zone is read as UTC
    return when.timestamp()


def _column(header: list[str], role: str, path: Path) -> int:
    names = [h.strip().lower() for h in header]
    for alias in CSV_COLUMNS[role]:
        if alias in names:
            return names.index(alias)
    raise ConfigError(
        f"{path}, line 1: no {role} column; expected a header naming one of {', '.join(CSV_COLUMNS[role])} "
        f"(got {', '.join(header) or 'nothing'})"
    )


def read_csv(path: str | Path) -> Traffic:
    """Requests per minute or per hour from a CSV file (a CloudWatch, ALB or S3 access-log export).

    The first row names the columns: a time (``timestamp``, ``time``, ``datetime`` or ``date``: ISO 8601,
    UTC when no zone is given, or Unix seconds) and a count (``requests``, ``count``, ``sum`` or
    ``invocations``: a whole number >= 0). Rows are in time order, one a minute or one an hour (the
    smallest step between rows decides; an hour's count is spread evenly over its minutes); a row that
    is missing counts as no requests. Anything else is refused with the line it is on.
    """
    path = Path(path)
    points = _csv_points(path, _csv_rows(path))
    counts, per_row = _per_minute(points, path)
    if not sum(counts):
        raise ConfigError(f"{path}: every row counts 0 requests: nothing to simulate")
    if len(counts) > 400 * 24 * 60:
        raise ConfigError(f"{path}: spans {len(counts) / 1440:.0f} days; at most 400 can be simulated")
    resolution = "minute" if per_row == 1 else "hour"
    return Traffic(
        path.stem,
        tuple(float(c) for c in counts),
        tuple(counts),
        f"{path.name}: {len(points):,} rows, one a {resolution}, {len(counts) / 1440:.1f} days, "
        f"{sum(counts):,} requests",
    )


def _csv_rows(path: Path) -> list[list[str]]:
    """The file's rows, the header first (refused if there is none)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the traffic CSV ({exc})") from exc
    rows = list(csv.reader(text.splitlines()))
    if not rows or not any(c.strip() for c in rows[0]):
        raise ConfigError(f"{path}: empty; expected a header row (timestamp,requests) and one row a minute or hour")
    return rows


def _csv_points(path: Path, rows: list[list[str]]) -> list[tuple[float, int]]:
    """``(Unix seconds, requests)`` of each row that is not blank, checked and in time order."""
    t_col, n_col = _column(rows[0], "time", path), _column(rows[0], "requests", path)
    points: list[tuple[float, int]] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        where = f"{path}, line {line}"
        if len(row) <= max(t_col, n_col):
            raise ConfigError(f"{where}: expected {len(rows[0])} columns, got {len(row)}")
        when = _timestamp(row[t_col], where)
        raw = row[n_col].strip()
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0 or number != int(number):
            raise ConfigError(f"{where}: requests must be a whole number >= 0, got {raw!r}")
        if points and when <= points[-1][0]:
            raise ConfigError(f"{where}: the rows must be in time order, each time once ({row[t_col].strip()!r})")
        points.append((when, int(number)))
    if not points:
        raise ConfigError(f"{path}: no rows after the header")
    return points


def _per_minute(points: list[tuple[float, int]], path: Path) -> tuple[list[int], int]:
    """Requests a minute from the first row's minute to the last's, and the minutes a row covers (1 or 60)."""
    steps = [b[0] - a[0] for a, b in itertools.pairwise(points)]
    step = min(steps) if steps else 60.0
    if step not in (60.0, 3600.0):
        raise ConfigError(f"{path}: rows must be one a minute or one an hour; the smallest step is {step:g} s")
    for (t0, _), (t1, _) in itertools.pairwise(points):
        if (t1 - t0) % step:
            raise ConfigError(f"{path}: a row at {t1:.0f} is not a whole number of {step:g} s after the one before")
    per_row = int(step // 60)
    counts = [0] * (int((points[-1][0] - points[0][0]) // 60) + per_row)
    for when, n in points:
        first = int((when - points[0][0]) // 60)
        q, r = divmod(n, per_row)
        for i in range(per_row):
            counts[first + i] = q + (1 if i < r else 0)
    return counts, per_row
