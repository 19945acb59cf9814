"""Simulate a month of traffic on Lambda and on an autoscaled container fleet, minute by minute.

One pass over the minutes (43,200 in a month) whatever the volume, so 100 million requests a month
take as long as 10,000. Within a minute requests are spread evenly; between minutes the state
carries over: warm Lambda environments, tasks running and starting, requests still waiting. A traffic
of a day or more starts after a pre-roll of its own last :data:`PREROLL_MIN` minutes.

**Lambda.** A request takes the duration :func:`heicconv.bench.cost.lambda_duration_s` gives for
the memory size. A minute that serves ``n`` requests keeps ``ceil(n * duration / 60 s)``
environments busy. Environments used in the last ``keep_warm_min`` minutes (and provisioned ones)
are warm; each one more is a cold start: that request also waits, and pays for, the measured
cold-start overhead (Lambda bills the INIT phase). Above the concurrency limit requests are
throttled; an S3 event is retried (asynchronous invocation), so they wait in a queue for the next
minute's capacity. Billing: requests, plus each request's duration rounded up to 1 ms times its
GB; provisioned environments are billed all the time and the requests they serve at the lower
duration price.

**Container.** A task of ``vcpu`` vCPUs runs ``workers`` conversions at once; each takes
``max(wall, busy * workers / vcpu)``. Requests wait in a queue (SQS, or the service's backlog) for
a free worker. Once a minute the autoscaler computes the tasks it wants: on ``cpu`` (ECS target
tracking) the busy share of the fleet over ``scale_target``, which can at most grow the fleet by
``1 / scale_target`` a step while the queue grows, because a busy task is at 100 %; on ``queue`` (KEDA's
SQS scaler) the waiting requests plus those served in the minute (in flight) over what a task does
in a minute at ``scale_target``. Tasks asked for serve ``scale_out_delay_min`` minutes later and are billed from the
request; the fleet shrinks only after ``scale_in_min`` minutes of wanting fewer, never below
``min_tasks``. Billing: per task-minute (Fargate bills per second with a one-minute minimum).

>>> from heicconv.bench.cost import CostModel, Workload
>>> from heicconv.bench.traffic import from_counts
>>> w = Workload("pillow", wall_s=0.5, cpu_s=0.5, peak_rss_mb=200.0)
>>> out = simulate_lambda(from_counts([120] * 60), w, "x86_64", 1769, Fleet(), CostModel())
>>> out.requests, out.cold_starts, out.peak, out.p99_s
(7200, 1, 1, 0.5)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError
from .cost import CostModel, Projection, Workload, billed_ms, lambda_cost, lambda_duration_s
from .prices import LAMBDA_PACKAGES, LambdaLimits
from .traffic import Traffic

__all__ = [
    "PREROLL_MIN",
    "SCALE_ON",
    "SWEEP_VOLUMES",
    "Fleet",
    "Outcome",
    "break_even",
    "chart_routes",
    "container_service_s",
    "keeps_up",
    "lambda_package",
    "percentile",
    "rerun",
    "simulate_container",
    "simulate_lambda",
    "simulate_projection",
    "sweep",
]

SCALE_ON = ("cpu", "queue")


@dataclass(frozen=True)
class Fleet:
    """How each route scales: the settings of the simulation besides the measured workload and the prices."""

    keep_warm_min: int = 10  # minutes an idle Lambda environment stays warm (AWS does not document it)
    concurrency_limit: int = 1000  # the account's default Lambda concurrency per region
    provisioned: int = 0  # Lambda environments kept initialised all month
    workers: int = 0  # conversions a task runs at once; 0: one per vCPU
    min_tasks: int = 1
    max_tasks: int = 1000
    scale_on: str = "cpu"  # "cpu": ECS target tracking; "queue": KEDA's SQS queue-length scaler
    scale_target: float = 0.7  # the CPU share, or the share of a task's capacity, the autoscaler aims at
    scale_out_delay_min: int = 3  # minutes from the metric crossing the target to a new task serving
    scale_in_min: int = 15  # minutes of wanting fewer tasks before the fleet shrinks

    def __post_init__(self) -> None:
        whole = {
            "keep_warm_min": (0, 24 * 60),
            "concurrency_limit": (1, 1_000_000),
            "provisioned": (0, 1_000_000),
            "workers": (0, 1024),
            "min_tasks": (0, 100_000),
            "max_tasks": (1, 100_000),
            "scale_out_delay_min": (0, 24 * 60),
            "scale_in_min": (1, 24 * 60),
        }
        for key, (low, high) in whole.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{key}: expected a whole number from {low} to {high}, got {value!r}")
        if self.min_tasks > self.max_tasks:
            raise ConfigError(f"min_tasks ({self.min_tasks}) is above max_tasks ({self.max_tasks})")
        if self.scale_on not in SCALE_ON:
            raise ConfigError(f"scale_on: expected one of {', '.join(SCALE_ON)}, got {self.scale_on!r}")
        if not (isinstance(self.scale_target, (int, float)) and 0 < self.scale_target <= 1):
            raise ConfigError(f"scale_target: expected a number > 0 and <= 1, got {self.scale_target!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    """What one route did with one traffic: its cost, what users waited, how far it scaled."""

    backend: str
    kind: str  # "lambda" or "container"
    arch: str
    label: str  # "Lambda arm64 1769 MB", "Container arm64 1 vCPU 2 GB"
    requests: int
    months: float  # how many 30-day months the traffic spans
    cost: float  # USD over the traffic's span
    p50_s: float  # time from the upload to the converted object
    p95_s: float
    p99_s: float
    max_s: float
    cold_starts: int
    waited: int  # requests that queued (throttled on Lambda, no free worker on a container)
    peak: int  # Lambda: environments at once; container: tasks running
    package: str = ""  # Lambda: "ZIP", "container image" or "package unknown"
    memory_mb: int = 0  # Lambda's memory size
    flags: tuple[str, ...] = ()  # why the route would fail, in words

    @property
    def monthly(self) -> float:
        """USD for a 30-day month."""
        return self.cost / self.months if self.months else 0.0

    @property
    def cold_share(self) -> float:
        return self.cold_starts / self.requests if self.requests else 0.0

    @property
    def waited_share(self) -> float:
        return self.waited / self.requests if self.requests else 0.0

    @property
    def route(self) -> str:
        """The label with the Lambda package: ``Lambda arm64 1769 MB (ZIP)``."""
        return f"{self.label} ({self.package})" if self.package else self.label

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "monthly": self.monthly,
            "cold_share": self.cold_share,
            "waited_share": self.waited_share,
            "route": self.route,
        }


def percentile(histogram: dict[int, int], q: float) -> float:
    """The ``q`` quantile (0 to 1), in seconds, of a histogram of milliseconds -> requests.

    >>> percentile({100: 98, 900: 2}, 0.5), percentile({100: 98, 900: 2}, 0.99)
    (0.1, 0.9)
    """
    total = sum(histogram.values())
    if not total:
        return 0.0
    need, seen = q * total, 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= need:
            return ms / 1000
    return max(histogram) / 1000


class _Queue:
    """Requests waiting, oldest first, as (arrival minute, count); serves a minute's capacity and keeps the waits."""

    def __init__(self) -> None:
        self.cohorts: deque[list[int]] = deque()
        self.length = 0

    def serve(self, minute: int, arrivals: int, capacity: float) -> list[tuple[float, int]]:
        """Add ``arrivals`` and serve up to ``capacity`` requests: ``[(seconds waited, requests), ...]``.

        A request that finds no queue ahead of it and room in the minute does not wait. Otherwise
        it waits from the middle of the minute it arrived in to the middle of its slice of the
        minute that serves it (requests spread evenly over both minutes).
        """
        if not self.length and arrivals <= capacity:
            return [(0.0, arrivals)] if arrivals else []  # the common case: nobody waits
        if arrivals:
            self.cohorts.append([minute, arrivals])
            self.length += arrivals
        budget = min(self.length, int(capacity))
        served: list[tuple[float, int]] = []
        done = 0
        while budget and self.cohorts:
            cohort = self.cohorts[0]
            take = min(cohort[1], budget)
            if cohort[0] == minute and done == 0:
                wait = 0.0
            else:
                mid = (done + take / 2) / capacity * 60
                wait = max(0.0, (minute - cohort[0]) * 60 + mid - 30)
            served.append((wait, take))
            done += take
            budget -= take
            cohort[1] -= take
            if not cohort[1]:
                self.cohorts.popleft()
        self.length -= done
        return served


def lambda_package(backend: str, arch: str, limits: LambdaLimits | None = None) -> str:
    """How ``backend`` deploys on Lambda for ``arch``: ``ZIP`` only where its measured package fits.

    >>> lambda_package("pillow", "arm64"), lambda_package("wand", "arm64"), lambda_package("mine", "x86_64")
    ('ZIP', 'container image', 'package unknown')
    """
    limits = limits or LambdaLimits()
    package = LAMBDA_PACKAGES.get(backend)
    if package is None:
        return "package unknown"
    if package.kind == "zip" and package.unzipped_mb.get(arch, math.inf) <= limits.package_unzipped_mb:
        return "ZIP"
    return "container image"


def _summary(histogram: dict[int, int]) -> tuple[float, float, float, float]:
    if not histogram:
        return 0.0, 0.0, 0.0, 0.0
    return (
        percentile(histogram, 0.50),
        percentile(histogram, 0.95),
        percentile(histogram, 0.99),
        max(histogram) / 1000,
    )


def _add(histogram: dict[int, int], seconds: float, n: int) -> None:
    if n > 0:
        ms = round(seconds * 1000)
        histogram[ms] = histogram.get(ms, 0) + n


#: A traffic of at least a day is simulated after a pre-roll of its own last hours, as if the month followed
#: another like it: the warm environments, the fleet and any queue start as its end left them, not empty.
PREROLL_MIN = 6 * 60


def _minutes(traffic: Traffic) -> Iterable[tuple[int, int]]:
    """``(minute, requests)`` from the pre-roll (negative minutes) through the traffic."""
    pre = traffic.counts[traffic.minutes - PREROLL_MIN :] if traffic.minutes >= max(PREROLL_MIN, 24 * 60) else ()
    return enumerate((*pre, *traffic.counts), start=-len(pre))


@dataclass
class _Tally:
    """What a simulation counts over the recorded minutes (not the pre-roll), and the outcome it makes of them."""

    requests: int = 0
    waited: int = 0
    peak: int = 0
    cold_starts: int = 0
    histogram: dict[int, int] = field(default_factory=dict)  # milliseconds from the upload -> requests

    def outcome(
        self,
        workload: Workload,
        kind: str,
        arch: str,
        label: str,
        traffic: Traffic,
        cost: float,
        *,
        package: str = "",
        memory_mb: int = 0,
        flags: tuple[str, ...] = (),
    ) -> Outcome:
        p50, p95, p99, top = _summary(self.histogram)
        return Outcome(
            workload.backend,
            kind,
            arch,
            label,
            self.requests,
            traffic.months,
            cost,
            p50,
            p95,
            p99,
            top,
            self.cold_starts,
            self.waited,
            self.peak,
            package=package,
            memory_mb=memory_mb,
            flags=flags,
        )


def _count(served: list[tuple[float, int]]) -> tuple[int, int]:
    """The requests a minute served, and how many of them had waited."""
    if len(served) == 1 and not served[0][0]:
        return served[0][1], 0  # the common case: this minute's requests, nobody waiting
    return sum(take for _, take in served), sum(take for wait, take in served if wait > 0)


def simulate_lambda(
    traffic: Traffic,
    workload: Workload,
    arch: str,
    memory_mb: int,
    fleet: Fleet,
    model: CostModel,
    *,
    latency: bool = True,
) -> Outcome:
    """``traffic`` on Lambda with ``memory_mb`` on ``arch`` (see the module's description of the model).

    ``latency=False`` skips the waits (the percentiles are then 0): for cost alone, faster.
    """
    duration = lambda_duration_s(workload.wall_s, workload.cpu_s, memory_mb, model.limits)
    cold_duration = duration + workload.cold_extra_s
    gb = memory_mb / 1024
    provisioned = min(fleet.provisioned, fleet.concurrency_limit)
    per_env = 60 / max(duration, 1e-6)  # requests one environment serves in a minute
    environments = _Environments(per_env, fleet.concurrency_limit, fleet.keep_warm_min, provisioned)
    bill = _LambdaBill(billed_ms(duration) / 1000 * gb, billed_ms(cold_duration) / 1000 * gb, provisioned)
    queue, tally = _Queue(), _Tally()
    for minute, arrivals in _minutes(traffic):
        record = minute >= 0
        if record:
            tally.requests += arrivals
        if not arrivals and not queue.length:
            continue
        served = queue.serve(minute, arrivals, environments.capacity)
        n, waited = _count(served)
        busy, cold = environments.serve(minute, n)
        if not record:
            continue
        tally.waited += waited
        tally.peak = max(tally.peak, busy)
        tally.cold_starts += cold
        if latency:
            _add_lambda_waits(tally.histogram, served, cold, cold_duration, duration)
        bill.add(n, busy, cold)
    cost = bill.usd(tally.requests, arch, gb, traffic.minutes, model)
    flags = lambda_cost(workload, memory_mb, arch, model).flags
    if queue.length:
        flags += (f"throttled: {queue.length:,} requests still waiting at the end",)
    label = f"Lambda {arch} {memory_mb} MB"
    package = lambda_package(workload.backend, arch, model.limits)
    return tally.outcome(
        workload, "lambda", arch, label, traffic, cost, package=package, memory_mb=memory_mb, flags=flags
    )


class _Environments:
    """Lambda's execution environments, minute by minute: how many are busy, and how many of those start cold.

    Environments used in the last ``keep`` minutes, and the ``provisioned`` ones, are warm.
    """

    def __init__(self, per_env: float, limit: int, keep: int, provisioned: int) -> None:
        self.per_env, self.limit, self.keep, self.provisioned = per_env, limit, keep, provisioned
        self.capacity = limit * per_env  # requests all of them serve in a minute
        self.recent: deque[tuple[int, int]] = deque()  # (minute, environments) with falling environments: a window max

    def serve(self, minute: int, n: int) -> tuple[int, int]:
        """Environments busy serving ``n`` requests in ``minute``, and how many of them start cold."""
        busy = min(self.limit, math.ceil(n / self.per_env)) if n else 0
        recent = self.recent
        while recent and recent[0][0] < minute - self.keep:
            recent.popleft()
        warm = max(self.provisioned, recent[0][1] if recent else 0)
        cold = min(n, max(0, busy - warm))
        while recent and recent[-1][1] <= busy:
            recent.pop()
        recent.append((minute, busy))
        return busy, cold


def _add_lambda_waits(
    histogram: dict[int, int], served: list[tuple[float, int]], cold: int, cold_duration: float, duration: float
) -> None:
    """The first requests served meet the new environments; each slice keeps its own wait."""
    left = cold
    for wait, take in served:
        c = min(left, take)
        left -= c
        _add(histogram, wait + cold_duration, c)
        _add(histogram, wait + duration, take - c)


@dataclass
class _LambdaBill:
    """GB-seconds of duration billed at the on-demand and at the provisioned price."""

    warm_gb_s: float  # one request's on a warm environment
    cold_gb_s: float  # one request's that starts an environment (Lambda bills the INIT phase)
    provisioned: int
    on_demand_gb_s: float = 0.0
    provisioned_gb_s: float = 0.0

    def add(self, n: int, busy: int, cold: int) -> None:
        # Requests on provisioned environments pay the lower duration price (never a cold start).
        on_pc = n * min(1.0, self.provisioned / busy) if busy else 0.0
        self.provisioned_gb_s += on_pc * self.warm_gb_s
        self.on_demand_gb_s += (n - on_pc - cold) * self.warm_gb_s + cold * self.cold_gb_s

    def usd(self, requests: int, arch: str, gb: float, minutes: int, model: CostModel) -> float:
        """The requests, the duration, and the provisioned environments kept all the ``minutes``."""
        kept_price, provisioned_gb_s = model.prices.provisioned(arch)
        return (
            requests * model.prices.lambda_requests_per_million / 1e6
            + self.on_demand_gb_s * model.prices.gb_second(arch)
            + self.provisioned_gb_s * provisioned_gb_s
            + self.provisioned * gb * minutes * 60 * kept_price
        )


def container_service_s(workload: Workload, vcpu: float, workers: int) -> float:
    """Seconds one conversion takes on a task of ``vcpu`` vCPUs running ``workers`` at once.

    >>> w = Workload("x", wall_s=0.5, cpu_s=0.5, peak_rss_mb=100.0)
    >>> container_service_s(w, 1.0, 1), container_service_s(w, 1.0, 2)
    (0.5, 1.0)
    """
    return max(workload.wall_s, workload.busy_s * workers / vcpu)


def simulate_container(
    traffic: Traffic, workload: Workload, arch: str, fleet: Fleet, model: CostModel, *, latency: bool = True
) -> Outcome:
    """``traffic`` on an autoscaled fleet of ``model``'s container tasks (see the module's description)."""
    vcpu, memory_gb = model.container_vcpu, model.container_memory_gb
    workers = fleet.workers or max(1, round(vcpu))
    service = container_service_s(workload, vcpu, workers)
    per_task = workers * 60 / max(service, 1e-6)  # requests a task serves in a minute
    tasks = _Tasks(fleet)
    queue, tally = _Queue(), _Tally()
    task_minutes = 0
    for minute, arrivals in _minutes(traffic):
        record = minute >= 0
        tasks.start_due(minute)
        if record:
            tally.peak = max(tally.peak, tasks.running)
            task_minutes += tasks.running + tasks.pending
            tally.requests += arrivals
        capacity = tasks.running * per_task
        served = queue.serve(minute, arrivals, capacity)
        n, waited = _count(served)
        if record:
            tally.waited += waited
            if latency:
                for wait, take in served:
                    _add(tally.histogram, wait + service, take)
        # The autoscaler looks at this minute's metric.
        tasks.scale(minute, _desired_tasks(fleet, tasks.running, queue.length, n, capacity, per_task))
    per_vcpu, per_gb = model.prices.fargate(arch)
    cost = task_minutes * ((vcpu * per_vcpu + memory_gb * per_gb) / 60)
    flags = _container_flags(workload, workers, model, fleet, queue.length, tally)
    label = f"Container {arch} {vcpu:g} vCPU {memory_gb:g} GB"
    return tally.outcome(workload, "container", arch, label, traffic, cost, flags=flags)


class _Tasks:
    """A container fleet minute by minute: tasks running, tasks asked for and still starting, and scaling in."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.running = fleet.min_tasks
        self.pending = 0
        self.starting: deque[tuple[int, int]] = deque()  # (minute it serves from, tasks)
        self.wanted: deque[int] = deque(maxlen=fleet.scale_in_min)

    def start_due(self, minute: int) -> None:
        """Tasks asked for earlier that serve from ``minute`` on join the running ones."""
        while self.starting and self.starting[0][0] <= minute:
            started = self.starting.popleft()[1]
            self.running += started
            self.pending -= started

    def scale(self, minute: int, desired: int) -> None:
        """Ask for tasks at once when ``desired`` is above the fleet; shrink after wanting fewer for a while."""
        self.wanted.append(desired)
        if desired > self.running + self.pending:
            delay = self.fleet.scale_out_delay_min
            self.starting.append((minute + 1 + delay, desired - self.running - self.pending))
            self.pending = desired - self.running
        elif not self.pending and len(self.wanted) == self.wanted.maxlen and max(self.wanted) < self.running:
            self.running = max(self.wanted)


def _desired_tasks(fleet: Fleet, running: int, waiting: int, n: int, capacity: float, per_task: float) -> int:
    """The tasks the autoscaler asks for after a minute that served ``n`` requests and left ``waiting``."""
    if fleet.scale_on == "cpu":
        busy_share = n / capacity if capacity else (1.0 if waiting else 0.0)
        desired = math.ceil(round(max(running, 1 if waiting else 0) * busy_share / fleet.scale_target, 9))
    else:
        # KEDA's SQS scaler: messages waiting plus those in flight, over what a task should carry.
        desired = math.ceil(round((waiting + n) / (per_task * fleet.scale_target), 9))
    return min(fleet.max_tasks, max(fleet.min_tasks, desired))


def _container_flags(
    workload: Workload, workers: int, model: CostModel, fleet: Fleet, waiting: int, tally: _Tally
) -> tuple[str, ...]:
    """Why the container route would fail: too little memory, a backlog left at the end, waits at max_tasks."""
    flags: tuple[str, ...] = ()
    memory_gb = model.container_memory_gb
    need_mb = workers * workload.peak_rss_mb * model.memory_headroom
    if need_mb > memory_gb * 1024:
        flags += (
            f"memory: {workers} worker(s) x {model.memory_headroom:g} x peak RSS {workload.peak_rss_mb:.0f} MB"
            f" > {memory_gb:g} GB",
        )
    if waiting:
        flags += (f"backlog: {waiting:,} requests still waiting at the end",)
    if tally.peak >= fleet.max_tasks and tally.waited:
        flags += (f"scaling: requests waited with the fleet at max_tasks ({fleet.max_tasks})",)
    return flags


def simulate_projection(projection: Projection, traffic: Traffic, fleet: Fleet, model: CostModel) -> list[Outcome]:
    """Every Lambda size and architecture of ``projection``, then its containers, on ``traffic``."""
    w = projection.workload
    out = [simulate_lambda(traffic, w, e.arch, e.memory_mb, fleet, model) for e in projection.lambdas]
    out += [simulate_container(traffic, w, c.arch, fleet, model) for c in projection.containers]
    return out


def chart_routes(outcomes: Sequence[Outcome]) -> tuple[Outcome | None, Outcome | None]:
    """One backend's two routes for the charts: its cheapest Lambda that would not fail (the quickest of those
    within 5 % of that cost), and the container of the same architecture (else the cheapest container)."""
    lams = [o for o in outcomes if o.kind == "lambda" and not o.flags]
    lam = None
    if lams:
        # Below one vCPU more memory costs about the same and runs faster: the quickest within 5 % of the cheapest.
        cheapest = min(o.cost for o in lams)
        lam = min((o for o in lams if o.cost <= cheapest * 1.05), key=lambda o: (o.p95_s, o.cost))
    boxes = [o for o in outcomes if o.kind == "container"]
    same = [o for o in boxes if lam is not None and o.arch == lam.arch]
    box = same[0] if same else (min(boxes, key=lambda o: o.cost) if boxes else None)
    return lam, box


#: Monthly volumes of the cost-against-volume chart: two a decade from 10 thousand to 1 billion.
SWEEP_VOLUMES: tuple[float, ...] = tuple(round(10 ** (4 + i / 2)) for i in range(11))

#: Flags of a route that fell behind its traffic: its cost at that volume is not a price you can pay for it.
_BEHIND = ("throttled", "backlog", "scaling")


def rerun(route: Outcome, traffic: Traffic, workload: Workload, fleet: Fleet, model: CostModel) -> Outcome:
    """``route`` (an earlier outcome) again on other ``traffic``, for its cost only."""
    if route.kind == "lambda":
        return simulate_lambda(traffic, workload, route.arch, route.memory_mb, fleet, model, latency=False)
    return simulate_container(traffic, workload, route.arch, fleet, model, latency=False)


def keeps_up(outcome: Outcome) -> bool:
    """Whether the route served its traffic without falling behind (at the concurrency limit or max_tasks)."""
    return not any(f.startswith(_BEHIND) for f in outcome.flags)


def sweep(
    traffic: Traffic,
    routes: Sequence[tuple[Workload, Outcome]],
    fleet: Fleet,
    model: CostModel,
    volumes: Sequence[float] = SWEEP_VOLUMES,
) -> list[list[tuple[float, float, bool]]]:
    """For each ``(workload, route)``, its monthly cost at each of ``volumes`` with ``traffic``'s shape scaled:
    ``[(volume, USD a month, kept up), ...]``."""
    scaled = [traffic.at_volume(v) for v in volumes]
    out = []
    for workload, route in routes:
        points = []
        for volume, t in zip(volumes, scaled, strict=True):
            o = rerun(route, t, workload, fleet, model)
            points.append((volume, o.monthly, keeps_up(o)))
        out.append(points)
    return out


def break_even(
    traffic: Traffic,
    workload: Workload,
    lam: Outcome,
    box: Outcome,
    fleet: Fleet,
    model: CostModel,
    volumes: Sequence[float] = SWEEP_VOLUMES,
    *,
    steps: int = 8,
    lines: tuple[Sequence[tuple[float, float, bool]], Sequence[tuple[float, float, bool]]] | None = None,
) -> float | None:
    """The monthly volume above which ``box`` (a container) costs less than ``lam`` (a Lambda route), with
    ``traffic``'s shape: the first crossing over ``volumes`` (or over ``lines``, their :func:`sweep`), narrowed
    by ``steps`` bisections on a log scale. ``None`` if the container costs more at every volume, or less at
    the lowest."""

    def gap(volume: float) -> float:
        t = traffic.at_volume(volume)
        return rerun(box, t, workload, fleet, model).monthly - rerun(lam, t, workload, fleet, model).monthly

    if lines is not None:
        gaps = [(v, b - a) for (v, a, _), (_, b, _) in zip(lines[0], lines[1], strict=True)]
    else:
        gaps = [(v, gap(v)) for v in volumes]
    for i, (volume, g) in enumerate(gaps):
        if g <= 0:
            if i == 0:
                return None
            lo, hi = gaps[i - 1][0], volume
            for _ in range(steps):
                mid = math.sqrt(lo * hi)
                lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
            return hi
    return None
