"""``heicconv convert``: files and folders in, converted files out (and the two-path short form)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from .. import config, formats
from ..core import select
from ..errors import ConfigError, HeicconvError
from ..options import Options, parse_size
from . import settings as cli_settings
from .plan import Existing, Plan, make_plan
from .report import Record, Reporter, display
from .run import Item, Outcome, execute, temp_path

__all__ = ["add_parser", "run_convert"]

EXAMPLES = """\
examples:
  heicconv convert IMG_0001.HEIC                  writes IMG_0001.jpg next to it
  heicconv convert Photos -r -o Converted         mirrors Photos/ (and sub-folders) under Converted/
  heicconv convert Photos --to webp --quality 80 --max-size 2048x2048 --strip
  heicconv convert Photos -r --dry-run            shows what would be written, writes nothing
  heicconv convert Photos -r --json > report.jsonl

Existing outputs are never replaced unless --overwrite is given: by default they are
reported as skipped and counted in the summary; --skip-existing skips them without a note.
An output that would land on an input, or two inputs with one output name (a.heic and
a.HEIC), are reported as failures and nothing is written for them.
Defaults for every option can be set in the [cli] table of heicconv.toml (see docs/cli.md).
"""


def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 100, got {text!r}")
    return value


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def _size(text: str) -> tuple[int, int]:
    try:
        size = parse_size(text, key="--max-size", source="the command line")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(f"expected WxH such as 2048x2048, or one number, got {text!r}") from exc
    assert size is not None
    return size


def _format(text: str) -> str:
    try:
        return formats.normalize(text)
    except HeicconvError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_conversion_flags(parser: argparse.ArgumentParser) -> None:
    """Flags the two-path form shares with ``convert``."""
    parser.add_argument("--quality", type=_quality, metavar="Q", help="1-100 for JPEG, WebP, AVIF, HEIC (default 85)")
    parser.add_argument(
        "--max-size",
        type=_size,
        metavar="WxH",
        help="fit inside this box (or one number for a square), never enlarging",
    )
    parser.add_argument(
        "--strip", action=argparse.BooleanOptionalAction, default=None, help="drop EXIF and XMP metadata"
    )
    parser.add_argument("--backend", metavar="NAME", help="pillow, vips, wand or auto (see 'heicconv backends')")


def add_parser(subparsers: Any) -> None:
    """Register ``convert``."""
    parser = subparsers.add_parser(
        "convert",
        help="convert files and folders",
        description="Convert HEIC/HEIF photos (and other images heicconv reads) to JPEG, PNG, WebP, AVIF, TIFF "
        "or HEIC. Folders are searched for images; their layout is mirrored under -o.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders")
    parser.add_argument("-o", "--output-dir", metavar="OUTDIR", help="where outputs go (default: next to each input)")
    parser.add_argument("--to", type=_format, metavar="FORMAT", help="jpeg (default), png, webp, avif, tiff or heic")
    add_conversion_flags(parser)
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", default=None, help="replace outputs that exist")
    existing.add_argument(
        "--skip-existing", action="store_true", default=None, help="skip outputs that exist, without a note"
    )
    parser.add_argument("-j", "--jobs", type=_jobs, metavar="N", help="worker processes (default: number of CPUs)")
    parser.add_argument(
        "-r", "--recursive", action=argparse.BooleanOptionalAction, default=None, help="descend into sub-folders"
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would be written; write nothing")
    parser.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", default=None, help="print only failures")
    parser.set_defaults(func=run_convert)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _options(args: argparse.Namespace, cli: cli_settings.CliSettings) -> Options:
    base = config.settings().options
    changes: dict[str, Any] = {}
    quality = args.quality if args.quality is not None else cli.quality
    if quality is not None:
        changes["quality"] = quality
    max_size = args.max_size if args.max_size is not None else cli.max_size
    if max_size is not None:
        changes["max_size"] = max_size
    strip = args.strip if args.strip is not None else cli.strip
    if strip:
        changes["metadata"] = "strip"
    elif strip is False and base.metadata == "strip":
        changes["metadata"] = "keep"
    return base.replace(**changes)


def _existing(args: argparse.Namespace, cli: cli_settings.CliSettings, single: bool) -> Existing:
    if args.overwrite:
        return "overwrite"
    if getattr(args, "skip_existing", None):
        return "skip"
    if cli.overwrite:
        return "overwrite"
    if single:
        return "error"  # the user named this one output: not writing it is a failure
    return "skip" if cli.skip_existing else "keep"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so temporary files are removed."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def run_convert(args: argparse.Namespace, explicit_output: Path | None = None) -> int:
    """Run a conversion batch; return the exit status (0 ok, 1 some failed, 130 interrupted)."""
    cli = cli_settings.load()
    single = explicit_output is not None
    if single:
        assert explicit_output is not None
        try:
            fmt = formats.format_from_suffix(explicit_output.suffix)
        except HeicconvError as exc:
            raise ConfigError(str(exc)) from exc
    else:
        fmt = args.to or cli.to or "jpeg"
    options = _options(args, cli)
    limits = config.settings().limits
    backend = select(args.backend or cli.backend)  # a named backend must work: fail now, not per file
    if fmt not in backend.capabilities.outputs:
        raise ConfigError(
            f"the {backend.name} backend cannot write {fmt}; pick another with --backend (see 'heicconv backends')"
        )
    outdir_text = getattr(args, "output_dir", None) or cli.output_dir
    outdir = Path(outdir_text) if outdir_text else None
    if outdir is not None and outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"-o {outdir}: exists and is not a folder; name a folder (it is created if missing)")
    recursive = bool(args.recursive if getattr(args, "recursive", None) is not None else cli.recursive)
    jobs = getattr(args, "jobs", None) or cli.jobs or _cpu_count()
    quiet = bool(args.quiet if getattr(args, "quiet", None) is not None else cli.quiet)
    existing = _existing(args, cli, single)

    plan = make_plan(
        args.paths, fmt, outdir=outdir, recursive=recursive, existing=existing, explicit_output=explicit_output
    )
    reporter = Reporter(total=len(plan.tasks), json_lines=bool(getattr(args, "json", False)), quiet=quiet)
    extra = _ignored(plan, fmt)
    if not plan.tasks:
        if quiet:
            return 0
        reporter.say(
            "nothing to convert: no images found"
            + (" (add --recursive to search sub-folders)" if not recursive else "")
        )
        reporter.summary(extra)
        return 0

    for task in plan.tasks:
        if task.status != "pending" or getattr(args, "dry_run", False):
            status = "planned" if task.status == "pending" else task.status
            reporter.add(
                Record(str(task.source), display(task.output), status, task.error, task.note, exists=task.exists)
            )
    if getattr(args, "dry_run", False):
        reporter.summary([*extra, "dry run: nothing was written"])
        return 1 if reporter.counts["failed"] else 0

    pending = [(t, t.output) for t in plan.pending if t.output is not None]
    tag = f"{os.getpid()}"
    items = [
        Item(
            str(t.source),
            str(out),
            str(temp_path(out, f"{tag}-{i}")),
            fmt,
            options,
            limits,
            backend.name,
            existing == "overwrite",
        )
        for i, (t, out) in enumerate(pending)
    ]

    def done(index: int, outcome: Outcome) -> None:
        task = pending[index][0]
        reporter.add(
            Record(
                str(task.source),
                display(task.output),
                outcome.status,
                outcome.error,
                outcome.note,
                outcome.seconds,
                outcome.width,
                outcome.height,
                outcome.backend,
            )
        )

    def stopping(running: int) -> None:
        if running:
            reporter.say(f"stopping: letting the {running} conversion(s) in progress finish (Ctrl-C again to abandon)")

    # Signal handlers can only be set from the main thread (main() may run elsewhere, e.g. in tests).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        execute(items, min(jobs, len(items)), done, stopping)
    except KeyboardInterrupt as exc:
        left = reporter.total - reporter.done
        reporter.summary(
            [
                *extra,
                f"stopped before {left} of {reporter.total} file(s); every output written is complete. "
                + (
                    "Run the same command without --overwrite to convert the rest."
                    if existing == "overwrite"
                    else "Run the same command again to convert the rest (existing outputs are skipped)."
                ),
            ],
            interrupted=True,
        )
        return 143 if isinstance(exc, _Terminated) else 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    reporter.summary(extra)
    return 1 if reporter.counts["failed"] else 0


def _ignored(plan: Plan, fmt: str) -> list[str]:
    lines = []
    if plan.ignored_not_images:
        lines.append(f"ignored {plan.ignored_not_images} file(s) in folders whose names are not images")
    if plan.ignored_same_format:
        lines.append(f"left {plan.ignored_same_format} {fmt} file(s) in folders alone: their output would replace them")
    return lines


def short_form(argv: list[str]) -> argparse.Namespace:
    """Parse ``heicconv IN OUT [--backend NAME] [--quality Q] ...`` (the format comes from OUT's suffix)."""
    parser = argparse.ArgumentParser(
        prog="heicconv",
        usage="heicconv IN OUT [--backend NAME] [--quality Q] [--max-size WxH] [--strip] [--overwrite]",
        description="Convert one image; the output format comes from OUT's suffix. "
        "For many files and folders use 'heicconv convert'.",
    )
    parser.add_argument("input", metavar="IN")
    parser.add_argument("output", metavar="OUT")
    add_conversion_flags(parser)
    parser.add_argument("--overwrite", action="store_true", default=None, help="replace OUT if it exists")
    parser.add_argument("-q", "--quiet", action="store_true", default=None, help="print only failures")
    parser.add_argument("--json", action="store_true", help="a JSON object about the file on stdout")
    args = parser.parse_args(argv)
    args.paths = [args.input]
    return args


def is_short_form(argv: list[str], commands: set[str]) -> bool:
    """True for ``heicconv IN OUT ...``: two paths, the first not a command, the second with an image suffix.

    >>> is_short_form(["IMG_0001.HEIC", "photo.jpg", "--quality", "80"], {"convert"})
    True
    >>> is_short_form(["convert", "IMG_0001.HEIC"], {"convert"})
    False
    """
    paths = _positional(argv)
    if len(paths) != 2 or paths[0] in commands:
        return False
    try:
        formats.format_from_suffix(Path(paths[1]).suffix)
    except HeicconvError:
        return False
    return True


def _positional(argv: list[str]) -> list[str]:
    # Skip the values of the flags that take one, so "--quality 80" is not read as a path.
    takes_value = {"--backend", "--quality", "--max-size"}
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def main_short(argv: list[str]) -> int:
    args = short_form(argv)
    if Path(args.input).is_dir():
        raise ConfigError(f"{args.input} is a folder; to convert folders use 'heicconv convert {args.input} -o OUTDIR'")
    return run_convert(args, explicit_output=Path(args.output))
