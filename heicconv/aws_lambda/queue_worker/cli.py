"""``heicconv worker``: the command-line entry of the queue worker."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

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
    d = WorkerSettings()
    add = parser.add_argument
    add("--queue", metavar="URL", help="the SQS queue URL (required)")
    add("-j", "--jobs", type=int, help="conversions at once, and messages held at most (default: CPU count)")
    add("--drain", action="store_true", help="exit once the queue is empty (batch jobs and tests)")
    add("--wait-time", type=int, help=f"long polling: seconds a receive waits, 0 to 20 (default {d.wait_time})")
    add(
        "--visibility-timeout",
        type=int,
        help=f"seconds a received message stays hidden, renewed while it is converted (default {d.visibility_timeout})",
    )
    add("--timeout", type=float, help=f"seconds one conversion may take before it is stopped (default {d.timeout:g})")
    add("--memory-mb", type=int, help=f"resident MB a conversion's process may reach (default {d.memory_mb})")
    add(
        "--stop-timeout",
        type=float,
        help=f"after SIGTERM, seconds conversions may take before their messages are released ({d.stop_timeout:g})",
    )
    add("--health-host", help=f"address of GET /health (default {d.health_host})")
    add(
        "--health-port",
        type=int,
        help="serve GET /health (counters as JSON) and GET /metrics (Prometheus) on this port (default: none)",
    )
    add("--log-level", choices=("critical", "error", "warning", "info", "debug"))
    add("--log-format", choices=("auto", "json", "text"), help="JSON lines, text, or auto: text on a terminal (auto)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the worker with the parsed flags; returns the exit status."""
    import logging
    import sys

    from ...errors import HeicconvError
    from . import work

    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(WorkerSettings)}
    level = (args.log_level or "info").upper()
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(max(logging.WARNING, logging.getLogger().level))  # credentials chatter
    try:
        return work(drain=args.drain, **overrides)
    except HeicconvError as exc:
        print(f"heicconv worker: {exc}", file=sys.stderr)
        return 2
