"""The queue worker's settings, from ``heicconv.config.section("worker")``.

Each key comes from the ``[worker]`` table of the config file, ``HEICCONV_WORKER_<KEY>`` in the
environment, or a ``heicconv worker --<key>`` flag (which wins). What is written where (format,
output bucket and prefix) is the Lambda handler's ``[lambda]`` table, read by the same code, so
a pipeline moves between the two routes with the same environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from ...config import Section
from ...errors import ConfigError

__all__ = ["WorkerSettings", "load"]

#: SQS's limits (SQS API reference, ReceiveMessage and ChangeMessageVisibility, checked 2026-11).
MAX_WAIT_TIME = 20
MAX_VISIBILITY_TIMEOUT = 12 * 60 * 60


@dataclass(frozen=True)
class WorkerSettings:
    """How ``heicconv worker`` reads its queue and runs conversions."""

    queue: str = ""  # the SQS queue URL (required)
    jobs: int = 1  # conversions at once (default: CPU count); never more messages held than this
    wait_time: int = MAX_WAIT_TIME  # long polling: seconds a receive waits for a message
    visibility_timeout: int = 60  # seconds a received message stays hidden; renewed while it is converted
    timeout: float = 120.0  # seconds one conversion may take before its worker process is stopped
    memory_mb: int = 1536  # resident memory a conversion's process may reach before it is stopped
    stop_timeout: float = 20.0  # after SIGTERM: seconds in-flight messages may take before they are released
    health_host: str = "127.0.0.1"
    health_port: int = 0  # GET /health and GET /metrics on this port; 0: neither
    log_level: str = "info"
    log_format: str = "auto"  # "json" lines, "text", or "auto": text on a terminal, JSON lines otherwise


_KEYS = tuple(f.name for f in dataclasses.fields(WorkerSettings))


def load(**overrides: Any) -> WorkerSettings:
    """The effective settings: ``overrides`` (command line) over ``[worker]`` and ``HEICCONV_WORKER_*``."""
    s = Section("worker", overrides)
    s.check_keys(_KEYS)
    d = WorkerSettings(jobs=max(1, os.cpu_count() or 1))
    cfg = WorkerSettings(
        queue=s.string("queue", d.queue).strip(),
        jobs=s.integer("jobs", d.jobs, 1),
        wait_time=s.integer("wait_time", d.wait_time, 0, MAX_WAIT_TIME),
        visibility_timeout=s.integer("visibility_timeout", d.visibility_timeout, 3, MAX_VISIBILITY_TIMEOUT),
        timeout=s.number("timeout", d.timeout, 0.001),
        memory_mb=s.integer("memory_mb", d.memory_mb, 64),
        stop_timeout=s.number("stop_timeout", d.stop_timeout, 0.0),
        health_host=s.string("health_host", d.health_host).strip(),
        health_port=s.integer("health_port", d.health_port, 0, 65535),
        log_level=s.choice("log_level", d.log_level, ("critical", "error", "warning", "info", "debug")),
        log_format=s.choice("log_format", d.log_format, ("auto", "json", "text")),
    )
    if not cfg.queue:
        raise ConfigError("worker.queue: the SQS queue URL is required (--queue URL or HEICCONV_WORKER_QUEUE)")
    return cfg
