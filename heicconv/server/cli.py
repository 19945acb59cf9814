"""``heicconv serve``: run the HTTP service."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .settings import ServerSettings

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``serve`` on the ``heicconv`` command line's sub-parsers: one flag per ``[server]`` key."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the HTTP conversion service",
        description="Run the HTTP service (POST /convert, GET /health, GET /ready, GET /backends, GET /metrics). "
        "Flags override "
        "the [server] table of the config file and HEICCONV_SERVER_* environment variables.",
    )
    d = ServerSettings()
    add = parser.add_argument
    add("--host", help=f"address to listen on (default {d.host})")
    add("--port", type=int, help=f"port to listen on (default {d.port})")
    add("--workers", type=int, help="conversions running at once (default: CPU count)")
    add("--queue", type=int, help=f"conversions waiting for a worker before 429 (default {d.queue})")
    add("--pool", choices=("process", "thread"), help=f"worker pool kind (default {d.pool})")
    add("--memory-mb", type=int, help=f"resident MB a process worker may reach before it is stopped ({d.memory_mb})")
    add("--max-body-bytes", type=int, help=f"largest request body, else 413 (default {d.max_body_bytes})")
    add("--body-timeout", type=float, help=f"seconds a request body may take to arrive, else 408 ({d.body_timeout:g})")
    add("--uploads", type=int, help=f"request bodies received at once before 429 (default {d.uploads})")
    add("--timeout", type=float, help=f"seconds a request waits for its conversion, else 504 ({d.timeout:g})")
    add("--format", help=f"output format when a request names none (default {d.format})")
    add("--log-level", choices=("critical", "error", "warning", "info", "debug"))
    add("--log-format", choices=("auto", "json", "text"), help="JSON lines, text, or auto: text on a terminal (auto)")
    add(
        "--token",
        help="token(s) a client must send, comma-separated; prefer HEICCONV_SERVER_TOKEN or --token-file, "
        "since a flag shows in the process list",
    )
    add("--token-file", help="a file of tokens, one a line (a mounted secret), re-read when it changes")
    add("--auth-header", help="a header that carries the token as it is (X-Api-Key), besides Authorization: Bearer")
    add("--metrics", choices=("open", "token", "off"), help=f"GET /metrics: open, token, or off (default {d.metrics})")
    add("--header-timeout", type=float, help=f"seconds the request headers may take, else 408 ({d.header_timeout:g})")
    add(
        "--min-upload-rate",
        type=float,
        help=f"KiB/s a body must keep up, --upload-grace seconds to spare, else 408; 0: off ({d.min_upload_rate:g})",
    )
    add("--upload-grace", type=float, help=f"seconds a body may be behind --min-upload-rate ({d.upload_grace:g})")
    add(
        "--uploads-per-client",
        type=int,
        help=f"bodies one client address may send at once, else 429; 0: no limit ({d.uploads_per_client})",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the service with the parsed flags; returns the exit status."""
    import sys

    from ..errors import HeicconvError
    from . import serve

    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(ServerSettings)}
    try:
        serve(**overrides)
    except HeicconvError as exc:
        print(f"heicconv serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
