"""``GET /metrics``: what the service has done, in Prometheus's text format (``prometheus-client``).

The figures the queue worker counts too (conversions, their seconds and bytes, worker restarts,
build info) are :class:`heicconv.api.metrics.ConversionMetrics`; the service adds its answers by route and
status, its refusals, and gauges of its slots.

Every figure is recorded in the service process: a conversion that runs in a worker process of the
pool is counted by the thread that sent it there and got its answer (or saw its worker killed), so
the one registry of the service process is complete without prometheus-client's multiprocess mode
(which a server with several processes behind one port would need; ``heicconv serve`` is one
process per container). The gauges (conversions running and waiting, upload slots) are read from
the pool and the upload slots when Prometheus scrapes, so they cannot drift.
"""

from __future__ import annotations

from prometheus_client import Counter

from ..api.metrics import CONTENT_TYPE, ConversionMetrics

__all__ = ["CONTENT_TYPE", "ServiceMetrics"]


class ServiceMetrics(ConversionMetrics):
    """The service's metrics in a registry of their own (a test may build several services in one process)."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.requests = Counter(
            "heicconv_http_requests", "HTTP requests answered, by route and status", ("route", "status"), registry=r
        )
        self.refused = Counter(
            "heicconv_uploads_refused",
            "Requests refused before conversion, by reason (uploads_full, per_client, workers_busy, too_slow, "
            "evicted, body_timeout, header_timeout, too_large, unauthorized)",
            ("reason",),
            registry=r,
        )
