"""``heicconv serve``: run the HTTP service."""

from __future__ import annotations

import argparse
from typing import Any

from ..config.tables import add_flags, flag_values
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
    add_flags(parser, ServerSettings)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the service with the parsed flags; returns the exit status."""
    import sys

    from ..errors import HeicconvError
    from . import serve

    try:
        serve(**flag_values(args, ServerSettings))
    except HeicconvError as exc:
        print(f"heicconv serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
