"""Prometheus metrics shared by the routes that run for long: ``heicconv serve`` and ``heicconv worker``.

:class:`ConversionMetrics` holds what both count the same way (conversions by backend, formats and
outcome, their seconds, bytes in and out, worker processes restarted by cause, build info) in a
registry of its own; :mod:`heicconv.server.metrics` and :mod:`heicconv.aws_lambda.queue_worker.worker` add their
own figures to it. ``prometheus-client`` comes with the ``server`` and ``worker`` extras; importing this
module imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from ..errors import HeicconvError, LimitExceededError

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "ConversionMetrics", "restart_cause"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Seconds: a thumbnail takes tens of milliseconds, a 48 MP photo a few seconds, the timeout 30 s by default.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: A figure read when Prometheus scrapes: ``name -> (help, reader)``.
Readers = Mapping[str, tuple[str, Callable[[], float]]]


def restart_cause(exc: BaseException) -> str | None:
    """Why a worker process was stopped and replaced (``timeout``, ``memory``, ``crash``), or ``None``.

    >>> from heicconv.errors import DecodeError, TimeoutError
    >>> late = TimeoutError("slow"); late.worker_event = "timeout"
    >>> restart_cause(late), restart_cause(DecodeError("cut"))
    ('timeout', None)
    """
    event = exc.worker_event if isinstance(exc, HeicconvError) else None
    if event == "died":  # killed by the kernel's OOM killer, or a crash in a native library
        return "memory" if isinstance(exc, LimitExceededError) else "crash"
    return event if event in ("timeout", "memory") else None


class _Read(Collector):
    """Figures read when scraped, as gauges or (monotonic ones) counters."""

    def __init__(self, readers: Readers, *, counters: bool) -> None:
        self.readers = dict(readers)
        self.counters = counters

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily if self.counters else GaugeMetricFamily
        for name, (help_text, read) in self.readers.items():
            yield family(name, help_text, value=float(read()))


class ConversionMetrics:
    """The figures every long-running route shares, in a registry of its own (a test may build several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.conversions = Counter(
            "heicconv_conversions",
            "Conversions that ran, by backend, input and output format, and outcome (ok or the heicconv error class)",
            ("backend", "input_format", "output_format", "outcome"),
            registry=r,
        )
        self.seconds = Histogram(
            "heicconv_conversion_seconds",
            "Seconds a conversion took (the service: from taking a conversion slot to the answer, waiting included)",
            ("backend", "output_format"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bytes_in = Counter("heicconv_input_bytes", "Bytes of images received for conversion", registry=r)
        self.bytes_out = Counter("heicconv_output_bytes", "Bytes of converted images sent", registry=r)
        self.restarts = Counter(
            "heicconv_worker_restarts",
            "Worker processes stopped and replaced, by cause (timeout, memory, crash)",
            ("cause",),
            registry=r,
        )
        self.build = Info(
            "heicconv_build", "heicconv's version, the backend that converts and its libraries", registry=r
        )

    def count_conversion(
        self,
        backend: str,
        input_format: str,
        output_format: str,
        outcome: str,
        seconds: float,
        bytes_in: int,
        bytes_out: int | None,
    ) -> None:
        """One conversion: ``outcome`` is ``ok`` or the error class; ``bytes_out`` is ``None`` when it failed."""
        self.conversions.labels(backend, input_format, output_format, outcome).inc()
        self.seconds.labels(backend, output_format).observe(seconds)
        self.bytes_in.inc(bytes_in)
        if bytes_out is not None:
            self.bytes_out.inc(bytes_out)

    def count_restart(self, exc: BaseException) -> None:
        """A worker process stopped and replaced because of ``exc`` (nothing when ``exc`` says no worker was)."""
        cause = restart_cause(exc)
        if cause is not None:
            self.restarts.labels(cause).inc()

    def describe_build(self, backend: str, versions: Mapping[str, str]) -> None:
        """``heicconv_build_info``: this heicconv's version, the backend, and its libraries' versions."""
        from .. import __version__

        libraries = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "heicconv")
        self.build.info({"version": __version__, "backend": backend, "libraries": libraries})

    def watch(self, readers: Readers, *, counters: bool = False) -> None:
        """Figures read at each scrape: ``{"heicconv_uploads_in_use": ("help", reader)}`` (``counters``: monotonic)."""
        self.registry.register(_Read(readers, counters=counters))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
