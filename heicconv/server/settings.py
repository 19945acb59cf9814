"""The HTTP service's settings, read from ``heicconv.config.section("server")``.

Each key comes from the ``[server]`` table of the config file or from
``HEICCONV_SERVER_<KEY>`` in the environment (which wins). Environment values are
strings; :class:`Section` converts them and raises ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from ..config import Section

__all__ = ["ServerSettings", "load"]


@dataclass(frozen=True)
class ServerSettings:
    """How ``heicconv serve`` runs. Defaults suit one container with a few CPUs, open to the internet."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2  # conversions running at once
    queue: int = 8  # conversions waiting for a worker; beyond that, 429
    pool: str = "process"  # "process" (a timed-out or runaway conversion is stopped) or "thread"
    memory_mb: int = 1536  # resident memory a process worker may reach before it is stopped (413)
    max_body_bytes: int = 64 * 1024 * 1024
    body_timeout: float = 60.0  # seconds a request body may take to arrive before 408
    uploads: int = 16  # request bodies being received at once; beyond that, 429
    timeout: float = 30.0  # seconds a request waits for its conversion before 504
    format: str = "jpeg"  # output format when the request names none (?format=auto follows Accept)
    log_level: str = "info"


_KEYS = tuple(f.name for f in dataclasses.fields(ServerSettings))


def load(**overrides: Any) -> ServerSettings:
    """The effective settings: ``overrides`` (command line) over ``[server]`` and ``HEICCONV_SERVER_*``."""
    s = Section("server", overrides)
    s.check_keys(_KEYS)
    d = ServerSettings(workers=max(1, os.cpu_count() or 1))
    return ServerSettings(
        host=s.string("host", d.host),
        port=s.integer("port", d.port, 0, 65535),
        workers=s.integer("workers", d.workers, 1),
        queue=s.integer("queue", d.queue, 0),
        pool=s.choice("pool", d.pool, ("thread", "process")),
        memory_mb=s.integer("memory_mb", d.memory_mb, 64),
        max_body_bytes=s.integer("max_body_bytes", d.max_body_bytes, 1),
        body_timeout=s.number("body_timeout", d.body_timeout, 0.001),
        uploads=s.integer("uploads", d.uploads, 1),
        timeout=s.number("timeout", d.timeout, 0.001),
        format=s.output_format("format", d.format),
        log_level=s.choice("log_level", d.log_level, ("critical", "error", "warning", "info", "debug")),
    )
