"""A bounded load run against the real service, per backend: 200 requests from 8 client threads.

Figures (throughput, p50, p95 latency) are printed (``pytest -s``) and, when
``HEICCONV_LOAD_REPORT`` names a file, written there as JSON. Nothing is asserted
about speed: only that every request succeeded. ``HEICCONV_LOAD_POOLS=thread,process``
also measures the process pool (default: thread only, to keep the suite fast).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from typing import Any

import pytest
from test_server import start_server, stop_server

from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_backend

REQUESTS = 200
CLIENTS = 8
POOLS = [p.strip() for p in os.environ.get("HEICCONV_LOAD_POOLS", "thread").split(",") if p.strip()]
# Read at import: the suite's conftest clears HEICCONV_* variables around each test.
REPORT = os.environ.get("HEICCONV_LOAD_REPORT")
_figures: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def photo() -> bytes:
    return make_heic(size=(640, 480))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("backend", ["pillow", "vips", "wand"])
def test_load_run(backend: str, pool: str, photo: bytes) -> None:
    require_backend(backend)
    workers = max(1, os.cpu_count() or 1)
    srv = start_server(
        {"HEICCONV_BACKEND": backend}, "--workers", str(workers), "--queue", str(CLIENTS * 2), "--pool", pool
    )
    latencies: list[float] = []
    codes: list[int] = []
    lock = threading.Lock()
    todo = iter(range(REQUESTS))

    def client() -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            t0 = time.perf_counter()
            code, _, _ = srv.post("/convert?format=jpeg&quality=85", photo)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                codes.append(code)

    try:
        srv.post("/convert?format=jpeg", photo)  # warm-up: first use imports the backend
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        wall = time.perf_counter() - started
    finally:
        stop_server(srv)
    assert codes.count(200) == REQUESTS, sorted(set(codes))
    figures = {
        "backend": backend,
        "pool": pool,
        "workers": workers,
        "requests": REQUESTS,
        "clients": CLIENTS,
        "image": "640x480 HEIC -> JPEG q85",
        "throughput_rps": round(REQUESTS / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * _percentile(latencies, 0.95), 1),
    }
    _figures.append(figures)
    print(
        f"\nload {backend}/{pool}: {figures['throughput_rps']} req/s, p50 {figures['p50_ms']} ms, "
        f"p95 {figures['p95_ms']} ms ({workers} workers, {CLIENTS} clients)"
    )
    if REPORT:
        with open(REPORT, "w", encoding="utf-8") as fh:
            json.dump(_figures, fh, indent=2)
