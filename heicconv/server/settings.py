"""The HTTP service's settings: the ``[server]`` table, read by :func:`heicconv.config.tables.load`.

Each key comes from a ``heicconv serve --<key>`` flag, else ``HEICCONV_SERVER_<KEY>`` in the
environment, else the ``[server]`` table of the config file (a profile's over the top level's).
A bad value raises ``ConfigError`` naming the key and where it was set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..config import logs
from ..config.rules import choice, integer, number, output_format, text
from ..config.tables import load as load_table
from ..config.tables import setting
from ..errors import ConfigError
from .auth import check_header_name, parse_tokens

__all__ = ["ServerSettings", "load"]


@dataclass(frozen=True)
class ServerSettings:
    """How ``heicconv serve`` runs. Defaults suit one container with a few CPUs, open to the internet."""

    host: str = setting("127.0.0.1", help="address to listen on (default {default})")
    port: int = setting(8000, integer(0, 65535), help="port to listen on (default {default})")
    # conversions running at once; load() makes the CPU count the default
    workers: int = setting(2, integer(1), help="conversions running at once (default: CPU count)")
    queue: int = setting(8, help="conversions waiting for a worker before 429 (default {default})")
    # "process" (a timed-out or runaway conversion is stopped) or "thread"
    pool: str = setting("process", choice("process", "thread"), help="worker pool kind (default {default})")
    memory_mb: int = setting(
        1536, integer(64), help="resident MB a process worker may reach before it is stopped ({default})"
    )
    max_body_bytes: int = setting(
        64 * 1024 * 1024, integer(1), help="largest request body, else 413 (default {default})"
    )
    body_timeout: float = setting(
        60.0, number(0.001), help="seconds a request body may take to arrive, else 408 ({default:g})"
    )
    uploads: int = setting(16, integer(1), help="request bodies received at once before 429 (default {default})")
    timeout: float = setting(
        30.0, number(0.001), help="seconds a request waits for its conversion, else 504 ({default:g})"
    )
    format: str = setting("jpeg", output_format(), help="output format when a request names none (default {default})")
    log_level: str = setting("info", choice(*logs.LEVELS))
    log_format: str = setting(
        "auto", choice(*logs.FORMATS), help="JSON lines, text, or auto: text on a terminal ({default})"
    )
    # The token(s) a client must send, comma-separated during a rotation; none: no check. Never in a repr.
    token: str = setting(
        "",
        text(str.strip),
        help="token(s) a client must send, comma-separated; prefer HEICCONV_SERVER_TOKEN or --token-file, "
        "since a flag shows in the process list",
        repr=False,
    )
    token_file: str = setting(
        "", text(str.strip), help="a file of tokens, one a line (a mounted secret), re-read when it changes"
    )
    auth_header: str = setting(
        "",
        text(str.strip),
        help="a header that carries the token as it is (X-Api-Key), besides Authorization: Bearer",
    )
    metrics: str = setting(
        "open", choice("open", "token", "off"), help="GET /metrics: open, token, or off (default {default})"
    )
    header_timeout: float = setting(
        10.0, number(0.001), help="seconds the request headers may take, else 408 ({default:g})"
    )
    min_upload_rate: float = setting(
        8.0,
        number(0.0),
        help="KiB/s a body must keep up, --upload-grace seconds to spare, else 408; 0: off ({default:g})",
    )
    upload_grace: float = setting(5.0, number(0.1), help="seconds a body may be behind --min-upload-rate ({default:g})")
    uploads_per_client: int = setting(
        8, integer(0), help="bodies one client address may send at once, else 429; 0: no limit ({default})"
    )


def load(**overrides: Any) -> ServerSettings:
    """The effective settings: ``overrides`` (command line) over ``[server]`` and ``HEICCONV_SERVER_*``."""
    loaded = load_table(ServerSettings, "server", overrides, defaults={"workers": max(1, os.cpu_count() or 1)})
    cfg = loaded.value
    parse_tokens(cfg.token, loaded.where("token"))  # a bad token stops the start, naming where it is set
    try:
        check_header_name(cfg.auth_header)
    except ConfigError:
        raise loaded.fail("auth_header", "must be an HTTP header name") from None
    if cfg.metrics == "token" and not (cfg.token or cfg.token_file):
        raise loaded.fail("metrics", "'token' needs server.token or server.token_file")
    return cfg
