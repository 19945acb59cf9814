"""The queue worker's settings: the ``[worker]`` table, read by :func:`heicconv.config.tables.load`.

Each key comes from a ``heicconv worker --<key>`` flag, else ``HEICCONV_WORKER_<KEY>`` in the
environment, else the ``[worker]`` table of the config file. What is written where (format, output
bucket and prefix) is the Lambda handler's ``[lambda]`` table, read by the same code, so a pipeline
moves between the two routes with the same environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ...config import logs
from ...config.rules import choice, integer, number, text
from ...config.tables import load as load_table
from ...config.tables import setting
from ...errors import ConfigError

__all__ = ["WorkerSettings", "load"]

#: SQS's limits (SQS API reference, ReceiveMessage and ChangeMessageVisibility, checked 2026-11).
MAX_WAIT_TIME = 20
MAX_VISIBILITY_TIMEOUT = 12 * 60 * 60


@dataclass(frozen=True)
class WorkerSettings:
    """How ``heicconv worker`` reads its queue and runs conversions."""

    queue: str = setting("", text(str.strip), metavar="URL", help="the SQS queue URL (required)")
    # never more messages held than this; load() makes the CPU count the default
    jobs: int = setting(
        1, integer(1), short="-j", help="conversions at once, and messages held at most (default: CPU count)"
    )
    wait_time: int = setting(
        MAX_WAIT_TIME,
        integer(0, MAX_WAIT_TIME),
        help="long polling: seconds a receive waits, 0 to 20 (default {default})",
    )
    visibility_timeout: int = setting(
        60,
        integer(3, MAX_VISIBILITY_TIMEOUT),
        help="seconds a received message stays hidden, renewed while it is converted (default {default})",
    )
    timeout: float = setting(
        120.0, number(0.001), help="seconds one conversion may take before it is stopped (default {default:g})"
    )
    memory_mb: int = setting(1536, integer(64), help="resident MB a conversion's process may reach (default {default})")
    stop_timeout: float = setting(
        20.0,
        number(0.0),
        help="after SIGTERM, seconds conversions may take before their messages are released ({default:g})",
    )
    health_host: str = setting("127.0.0.1", text(str.strip), help="address of GET /health (default {default})")
    health_port: int = setting(
        0,
        integer(0, 65535),
        help="serve GET /health (counters as JSON) and GET /metrics (Prometheus) on this port (default: none)",
    )
    log_level: str = setting("info", choice(*logs.LEVELS))
    log_format: str = setting(
        "auto", choice(*logs.FORMATS), help="JSON lines, text, or auto: text on a terminal ({default})"
    )


def load(**overrides: Any) -> WorkerSettings:
    """The effective settings: ``overrides`` (command line) over ``[worker]`` and ``HEICCONV_WORKER_*``."""
    cpus = max(1, os.cpu_count() or 1)
    cfg = load_table(WorkerSettings, "worker", overrides, defaults={"jobs": cpus}).value
    if not cfg.queue:
        raise ConfigError("worker.queue: the SQS queue URL is required (--queue URL or HEICCONV_WORKER_QUEUE)")
    return cfg
