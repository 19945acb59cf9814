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
from ..errors import ConfigError
from .auth import check_header_name, parse_tokens

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
    log_format: str = "auto"  # "json" lines, "text", or "auto": text on a terminal, JSON lines otherwise
    # The token(s) a client must send, comma-separated during a rotation; none: no check. Never in a repr.
    token: str = dataclasses.field(default="", repr=False)
    token_file: str = ""  # a file of tokens, one a line (a mounted secret), re-read when it changes
    auth_header: str = ""  # a header that carries the token as it is ("X-Api-Key"), besides Authorization: Bearer
    metrics: str = "open"  # GET /metrics: "open", "token" (needs a token, like /convert) or "off"
    header_timeout: float = 10.0  # seconds the request line and headers may take before 408 and close
    min_upload_rate: float = 8.0  # KiB/s a body must keep up, else 408; 0: no minimum
    upload_grace: float = 5.0  # seconds a body may be behind min_upload_rate (at its start, or after a stall)
    uploads_per_client: int = 8  # bodies one client address may send at once, beyond that 429; 0: no limit


_KEYS = tuple(f.name for f in dataclasses.fields(ServerSettings))


def load(**overrides: Any) -> ServerSettings:
    """The effective settings: ``overrides`` (command line) over ``[server]`` and ``HEICCONV_SERVER_*``."""
    s = Section("server", overrides)
    s.check_keys(_KEYS)
    d = ServerSettings(workers=max(1, os.cpu_count() or 1))
    cfg = ServerSettings(
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
        log_format=s.choice("log_format", d.log_format, ("auto", "json", "text")),
        token=s.string("token", d.token).strip(),
        token_file=s.string("token_file", d.token_file).strip(),
        auth_header=s.string("auth_header", d.auth_header).strip(),
        metrics=s.choice("metrics", d.metrics, ("open", "token", "off")),
        header_timeout=s.number("header_timeout", d.header_timeout, 0.001),
        min_upload_rate=s.number("min_upload_rate", d.min_upload_rate, 0.0),
        upload_grace=s.number("upload_grace", d.upload_grace, 0.1),
        uploads_per_client=s.integer("uploads_per_client", d.uploads_per_client, 0),
    )
    parse_tokens(cfg.token, s.where("token"))  # a bad token stops the start, naming where it is set
    try:
        check_header_name(cfg.auth_header)
    except ConfigError:
        raise s.fail("auth_header", "must be an HTTP header name") from None
    if cfg.metrics == "token" and not (cfg.token or cfg.token_file):
        raise s.fail("metrics", "'token' needs server.token or server.token_file")
    return cfg
