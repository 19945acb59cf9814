"""``heicconv serve``: run the HTTP service."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register ``serve`` on the ``heicconv`` command line's sub-parsers."""
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP conversion service",
        description="Run the HTTP service (POST /convert, GET /health, GET /backends). Flags override the "
        "[server] table of the config file and HEICCONV_SERVER_* environment variables.",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--workers", type=int, help="conversions running at once (default: CPU count)")
    parser.add_argument("--queue", type=int, help="conversions waiting for a worker before 429 (default 8)")
    parser.add_argument("--pool", choices=("thread", "process"), help="worker pool kind (default thread)")
    parser.add_argument("--timeout", type=float, help="seconds a request waits for its conversion (default 30)")
    parser.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the service with the parsed flags; returns the exit status."""
    import sys

    from ..errors import HeicconvError
    from . import serve

    overrides = {
        key: getattr(args, key, None) for key in ("host", "port", "workers", "queue", "pool", "timeout", "log_level")
    }
    try:
        serve(**overrides)
    except HeicconvError as exc:
        print(f"heicconv serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
