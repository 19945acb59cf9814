"""``heicconv worker``: the command-line entry of the queue worker."""

from __future__ import annotations

import argparse
from typing import Any

from ...config.tables import add_flags, flag_values
from .settings import WorkerSettings

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``worker`` on the ``heicconv`` command line's sub-parsers: one flag per ``[worker]`` key."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "worker",
        help="convert the S3 notifications an SQS queue receives",
        description="Convert the photos named by the S3 notifications an SQS queue receives, as the Lambda handler "
        "does (same output keys and bytes). Flags override the [worker] table of the config file and "
        "HEICCONV_WORKER_* variables; the output format, bucket and prefix are HEICCONV_LAMBDA_FORMAT, "
        "HEICCONV_LAMBDA_OUTPUT_BUCKET and HEICCONV_LAMBDA_OUTPUT_PREFIX. Exit status: 0 done or stopped by "
        "SIGTERM, 1 --drain left messages for redelivery, 2 configuration error or unreadable queue.",
    )
    add_flags(parser, WorkerSettings)
    parser.add_argument("--drain", action="store_true", help="exit once the queue is empty (batch jobs and tests)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the worker with the parsed flags; returns the exit status."""
    import logging
    import sys

    from ...errors import HeicconvError
    from . import work

    level = (args.log_level or "info").upper()
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(max(logging.WARNING, logging.getLogger().level))  # credentials chatter
    try:
        return work(drain=args.drain, **flag_values(args, WorkerSettings))
    except HeicconvError as exc:
        print(f"heicconv worker: {exc}", file=sys.stderr)
        return 2
