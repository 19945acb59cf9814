"""``GET /metrics``: what the service has done, in Prometheus's text format (``prometheus-client``).

Every figure is recorded in the service process: a conversion that runs in a worker process of the
pool is counted by the thread that sent it there and got its answer (or saw its worker killed), so
the one registry of the service process is complete without prometheus-client's multiprocess mode
(which a server with several processes behind one port would need; ``heicconv serve`` is one
process per container). The gauges (conversions running and waiting, upload slots) are read from
the pool and the upload slots when Prometheus scrapes, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "ServiceMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Seconds: a thumbnail takes tens of milliseconds, a 48 MP photo a few seconds, the timeout 30 s by default.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Gauges(Collector):
    """Gauges read when scraped: ``name -> (help, reader)``."""

    def __init__(self, readers: Mapping[str, tuple[str, Callable[[], float]]]) -> None:
        self.readers = dict(readers)

    def collect(self) -> Iterable[Metric]:
        for name, (help_text, read) in self.readers.items():
            yield GaugeMetricFamily(name, help_text, value=float(read()))


class ServiceMetrics:
    """The service's metrics in a registry of their own (a test may build several services in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "heicconv_http_requests", "HTTP requests answered, by route and status", ("route", "status"), registry=r
        )
        self.conversions = Counter(
            "heicconv_conversions",
            "Conversions that ran, by backend, input and output format, and outcome (ok or the heicconv error class)",
            ("backend", "input_format", "output_format", "outcome"),
            registry=r,
        )
        self.seconds = Histogram(
            "heicconv_conversion_seconds",
            "Seconds from taking a conversion slot to the answer (waiting for a worker included)",
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
        self.refused = Counter(
            "heicconv_uploads_refused",
            "Requests refused before conversion, by reason (uploads_full, per_client, workers_busy, too_slow, "
            "evicted, body_timeout, header_timeout, too_large, unauthorized)",
            ("reason",),
            registry=r,
        )
        self.build = Info(
            "heicconv_build", "heicconv's version, the backend that converts and its libraries", registry=r
        )

    def watch(self, readers: Mapping[str, tuple[str, Callable[[], float]]]) -> None:
        """Gauges read at each scrape: ``{"heicconv_uploads_in_use": ("help", reader)}``."""
        self.registry.register(_Gauges(readers))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
