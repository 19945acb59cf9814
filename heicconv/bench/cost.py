"""What a measured workload would cost per 1,000,000 conversions on Lambda and on a container.

The model, in one place so the report and the tests agree:

* Lambda bills each request plus GB-seconds, the duration rounded up to 1 ms. CPU share is
  proportional to memory (1,769 MB buys one vCPU, up to 6 vCPUs), so a conversion that keeps one
  core busy for ``t`` seconds takes ``t * 1769 / memory`` below one vCPU and no less than its
  measured wall time above it. A fraction of requests are cold: they also pay the measured
  start-up (import and first-conversion overhead), since Lambda bills the INIT phase.
* A container (Fargate-style) bills vCPU-hours and GB-hours whether busy or not; at utilisation
  ``u`` it does ``u * vcpus * 3600 / t`` conversions an hour.
* Break-even utilisation: the container's cost per conversion at 100% busy divided by Lambda's.
  Above it the container is cheaper; above 100% it never is.

>>> w = Workload("pillow", wall_s=0.7, cpu_s=0.7, peak_rss_mb=300.0)
>>> round(lambda_cost(w, 1769, "x86_64", CostModel()).per_million, 2)
20.35
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .prices import LambdaLimits, Prices

__all__ = [
    "ARCHS",
    "HOURS_PER_MONTH",
    "ContainerEstimate",
    "CostModel",
    "LambdaEstimate",
    "Projection",
    "Workload",
    "billed_ms",
    "break_even_utilisation",
    "container_cost",
    "lambda_cost",
    "lambda_duration_s",
    "project",
]

ARCHS: tuple[str, ...] = ("x86_64", "arm64")
#: AWS's convention for a month of an always-on resource.
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Workload:
    """One backend's measured cost of a conversion, averaged over the images and formats measured."""

    backend: str
    wall_s: float  # median wall time of a warm conversion
    cpu_s: float  # CPU time of that conversion, all threads
    peak_rss_mb: float  # the largest peak resident memory of a worker process
    cold_extra_s: float = 0.0  # what a fresh process adds: interpreter, imports, first-use set-up
    max_input_bytes: int = 0
    max_output_bytes: int = 0
    conversions: int = 1  # how many (image, format) measurements this summarises

    @property
    def busy_s(self) -> float:
        """Seconds of one vCPU a conversion needs (CPU time if it used several threads)."""
        return max(self.wall_s, self.cpu_s)


@dataclass(frozen=True)
class CostModel:
    """The knobs of a projection besides the prices."""

    memory_mb: tuple[int, ...] = (512, 1024, 1769, 3008)
    archs: tuple[str, ...] = ARCHS
    cold_start_fraction: float = 0.01
    memory_headroom: float = 1.5  # Lambda memory below this times peak RSS is flagged as failing
    container_vcpu: float = 1.0
    container_memory_gb: float = 2.0
    utilisation: float = 0.5
    prices: Prices = field(default_factory=Prices)
    limits: LambdaLimits = field(default_factory=LambdaLimits)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["prices"] = self.prices.rows()
        out["limits"] = {**asdict(self.limits), "sync_image_bytes": self.limits.sync_image_bytes}
        return out


@dataclass(frozen=True)
class LambdaEstimate:
    """One Lambda configuration's cost for a workload."""

    arch: str
    memory_mb: int
    duration_s: float  # estimated warm duration at this memory size
    billed_ms: int  # warm, rounded up
    billed_ms_cold: int  # a cold request: start-up plus the conversion, rounded up
    requests_cost: float  # USD per 1M conversions
    duration_cost: float  # USD per 1M conversions
    flags: tuple[str, ...] = ()  # why this configuration would fail, in words

    @property
    def per_million(self) -> float:
        return self.requests_cost + self.duration_cost

    @property
    def label(self) -> str:
        return f"Lambda {self.arch} {self.memory_mb} MB"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "per_million": self.per_million, "label": self.label}


@dataclass(frozen=True)
class ContainerEstimate:
    """An always-on container's cost for a workload at one utilisation."""

    arch: str
    vcpu: float
    memory_gb: float
    utilisation: float
    hourly: float  # USD per task-hour
    per_hour_capacity: float  # conversions an hour at 100% busy
    per_million: float  # USD per 1M conversions at ``utilisation``
    flags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"Container {self.arch} {self.vcpu:g} vCPU {self.memory_gb:g} GB @ {self.utilisation:.0%}"

    @property
    def monthly(self) -> float:
        """USD for one task running all month."""
        return self.hourly * HOURS_PER_MONTH

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label, "monthly": self.monthly}


def billed_ms(duration_s: float) -> int:
    """Milliseconds Lambda bills for ``duration_s``: rounded up to 1 ms.

    >>> billed_ms(0.7), billed_ms(0.7001), billed_ms(0.0)
    (700, 701, 0)
    """
    # round() first, so 2.007 s (2007.0000000000002 ms in floating point) is billed as 2007 ms, not 2008
    return math.ceil(round(duration_s * 1000, 6))


def lambda_duration_s(wall_s: float, cpu_s: float, memory_mb: int, limits: LambdaLimits | None = None) -> float:
    """How long a conversion measured at ``wall_s`` / ``cpu_s`` would take with ``memory_mb`` of Lambda.

    >>> lambda_duration_s(0.7, 0.7, 1769), lambda_duration_s(0.7, 0.7, 3008), lambda_duration_s(0.5, 0.5, 884.5)
    (0.7, 0.7, 1.0)
    """
    limits = limits or LambdaLimits()
    vcpus = min(memory_mb / limits.one_vcpu_mb, limits.max_vcpus)
    return max(wall_s, max(wall_s, cpu_s) / vcpus)


def lambda_cost(workload: Workload, memory_mb: int, arch: str, model: CostModel) -> LambdaEstimate:
    """The cost per 1M conversions of ``workload`` on Lambda with ``memory_mb`` on ``arch``."""
    limits = model.limits
    duration = lambda_duration_s(workload.wall_s, workload.cpu_s, memory_mb, limits)
    warm_ms = billed_ms(duration)
    cold_ms = billed_ms(duration + workload.cold_extra_s)
    f = model.cold_start_fraction
    mean_billed_s = ((1 - f) * warm_ms + f * cold_ms) / 1000
    gb = memory_mb / 1024
    duration_cost = mean_billed_s * gb * model.prices.gb_second(arch) * 1_000_000
    flags = []
    if memory_mb < model.memory_headroom * workload.peak_rss_mb:
        flags.append(f"memory: {memory_mb} MB < {model.memory_headroom:g} x peak RSS {workload.peak_rss_mb:.0f} MB")
    if not limits.memory_min_mb <= memory_mb <= limits.memory_max_mb:
        flags.append(f"memory: Lambda allows {limits.memory_min_mb} to {limits.memory_max_mb} MB")
    if duration + workload.cold_extra_s > limits.timeout_s:
        flags.append(f"timeout: {duration + workload.cold_extra_s:.0f} s > {limits.timeout_s:.0f} s")
    return LambdaEstimate(
        arch,
        memory_mb,
        duration,
        warm_ms,
        cold_ms,
        model.prices.lambda_requests_per_million,
        duration_cost,
        tuple(flags),
    )


def container_cost(
    workload: Workload, arch: str, model: CostModel, utilisation: float | None = None
) -> ContainerEstimate:
    """The cost per 1M conversions of ``workload`` on an always-on container at ``utilisation``."""
    u = model.utilisation if utilisation is None else utilisation
    per_vcpu, per_gb = model.prices.fargate(arch)
    hourly = model.container_vcpu * per_vcpu + model.container_memory_gb * per_gb
    capacity = model.container_vcpu * 3600 / workload.busy_s if workload.busy_s > 0 else math.inf
    per_million = hourly / (u * capacity) * 1_000_000 if u > 0 else math.inf
    flags = []
    # One worker process per vCPU, each reaching the measured peak.
    workers = max(1, round(model.container_vcpu))
    need_mb = workers * workload.peak_rss_mb * model.memory_headroom
    if need_mb > model.container_memory_gb * 1024:
        flags.append(
            f"memory: {workers} worker(s) x {model.memory_headroom:g} x peak RSS {workload.peak_rss_mb:.0f} MB"
            f" > {model.container_memory_gb:g} GB"
        )
    return ContainerEstimate(
        arch, model.container_vcpu, model.container_memory_gb, u, hourly, capacity, per_million, tuple(flags)
    )


def break_even_utilisation(container: ContainerEstimate, lam: LambdaEstimate) -> float:
    """The utilisation above which ``container`` is cheaper than ``lam`` (above 1.0: never)."""
    at_full = container.hourly / container.per_hour_capacity * 1_000_000
    return at_full / lam.per_million if lam.per_million > 0 else math.inf


@dataclass(frozen=True)
class Projection:
    """Every route's cost for one backend's workload."""

    workload: Workload
    lambdas: tuple[LambdaEstimate, ...]
    containers: tuple[ContainerEstimate, ...]

    def container(self, arch: str) -> ContainerEstimate:
        return next(c for c in self.containers if c.arch == arch)

    def break_even(self, lam: LambdaEstimate) -> float:
        """Break-even utilisation of the container of the same architecture against ``lam``."""
        return break_even_utilisation(self.container(lam.arch), lam)

    def cheapest_lambda(self) -> LambdaEstimate | None:
        """The cheapest Lambda configuration that would not fail, if any."""
        ok = [e for e in self.lambdas if not e.flags]
        # Below one vCPU the cost barely moves with memory: on a tie, the faster one.
        return min(ok, key=lambda e: (round(e.per_million, 6), e.duration_s)) if ok else None

    def fastest_lambda(self, within: float = 0.05) -> LambdaEstimate | None:
        """The quickest Lambda configuration that would not fail, costing at most ``within`` more than the cheapest.

        Below one vCPU, more memory buys speed at almost no cost; this finds that size.
        """
        cheapest = self.cheapest_lambda()
        if cheapest is None:
            return None
        ok = [e for e in self.lambdas if not e.flags and e.per_million <= cheapest.per_million * (1 + within)]
        return min(ok, key=lambda e: (round(e.duration_s, 6), e.per_million))

    def cheapest_container(self) -> ContainerEstimate:
        return min(self.containers, key=lambda c: c.per_million)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": {**asdict(self.workload), "busy_s": self.workload.busy_s},
            "lambda": [{**e.to_dict(), "break_even_utilisation": self.break_even(e)} for e in self.lambdas],
            "container": [c.to_dict() for c in self.containers],
        }


def project(workload: Workload, model: CostModel) -> Projection:
    """Every Lambda configuration and container of ``model`` for ``workload``."""
    lambdas = tuple(lambda_cost(workload, m, a, model) for a in model.archs for m in model.memory_mb)
    containers = tuple(container_cost(workload, a, model) for a in model.archs)
    return Projection(workload, lambdas, containers)
