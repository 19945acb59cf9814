"""``heicconv convert``: files and folders in, converted files out (and the two-path short form)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from .. import config
from ..api.calls import convert_with_report, select
from ..errors import ConfigError, HeicconvError
from ..options import Options, formats, parse_size
from . import settings as cli_settings
from .inputs import read_limited, read_named
from .plan import ALL_IMAGES, DEFAULT_FROM, Existing, Plan, make_plan, name_max
from .report import Record, Reporter, display
from .run import Item, Outcome, execute, explain, place, temp_path

__all__ = ["add_parser", "run_convert"]

EXAMPLES = """\
examples:
  heicconv convert IMG_0001.HEIC                  writes IMG_0001.jpg next to it
  heicconv convert Photos -r -o Converted         mirrors Photos/ (and sub-folders) under Converted/
  heicconv convert Photos --to webp --quality 80 --max-size 2048x2048 --strip-location
  heicconv convert Photos --from heic,jpeg --to webp   reads the JPEG files of Photos/ too
  heicconv convert Photos -r --dry-run            shows what would be written, writes nothing
  heicconv convert Photos -r --json > report.jsonl

Which files a folder gives: those of the --from formats, by suffix in any case (default
heic: .heic .heif .hif), except hidden files and a file named like the output of another
source in its folder (IMG_0001.jpg or IMG_0001-1.jpg next to IMG_0001.HEIC): that is an
earlier run's output and never a source. Symbolic links to folders are followed only with
--follow-links. A file named on the command line is read whatever its name. Only
regular files are read: named pipes, sockets and devices are skipped with a note, and
a file over max_input_bytes fails from its size, without being read.

Existing outputs are never replaced unless --overwrite is given: by default they are
reported as skipped and counted in the summary; --skip-existing skips them without a note.
An output that would land on an input, or two inputs with one output name (a.heic and
a.HEIC), are reported as failures and nothing is written for them. Outputs get their
source's modification time (--no-keep-mtime gives them the time they were written).
A run that writes nothing (and finds no output already there) exits with status 1; one
that cannot write its output folder (read-only, full) stops at the first file.
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


def _from(text: str) -> tuple[str, ...]:
    try:
        return cli_settings.parse_from(text, "--from")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _image_index(text: str) -> int | str:
    try:
        return cli_settings.parse_image_index(text, "--image-index")
    except ConfigError as exc:
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
    metadata = parser.add_mutually_exclusive_group()
    metadata.add_argument(
        "--strip", action=argparse.BooleanOptionalAction, default=None, help="drop EXIF and XMP metadata"
    )
    metadata.add_argument(
        "--strip-location",
        action="store_true",
        default=None,
        help="drop the GPS position from EXIF and XMP, keep the rest",
    )
    parser.add_argument(
        "--srgb", action=argparse.BooleanOptionalAction, default=None, help="convert colours to sRGB (for the web)"
    )
    parser.add_argument(
        "--hdr",
        choices=("keep", "drop"),
        default=None,
        help="keep an HDR photo's HDR as a gain map in JPEG output (Ultra HDR; the default) or drop it "
        "(the SDR picture only, a smaller file)",
    )
    parser.add_argument(
        "--image-index",
        type=_image_index,
        metavar="N|all",
        help="which image of a multi-image file (a burst): N from 0 (see 'heicconv info'), "
        "or all, written as NAME-0.jpg, NAME-1.jpg... (default: the file's primary image)",
    )
    parser.add_argument(
        "--keep-mtime",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give each output its source's modification time (default: yes)",
    )
    parser.add_argument(
        "--backend", metavar="NAME", help="ffmpeg, pillow, vips, wand or auto (see 'heicconv backends')"
    )


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
    parser.add_argument(
        "--from",
        dest="from_formats",
        type=_from,
        metavar="FORMATS",
        help="formats read from folders, by suffix: heic (default: .heic .heif .hif), avif, jpeg, png, webp, "
        "tiff, a list such as heic,jpeg (the first wins when two files share a name), or all",
    )
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
    parser.add_argument(
        "--follow-links",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with -r, descend into symbolic links to folders too (default: skip them, and say so)",
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


def _flag(args: argparse.Namespace, name: str, configured: Any) -> Any:
    """A flag's value if it was given, else the ``[cli]`` table's (flags the two-path form lacks count as not given)."""
    value = getattr(args, name, None)
    return value if value is not None else configured


def _metadata(strip: bool | None, location: bool | None) -> str | None:
    if strip:
        return "strip"
    if location:
        return "strip-location"
    return "keep" if strip is False else None


def _options(args: argparse.Namespace, cli: cli_settings.CliSettings) -> Options:
    base = config.settings().options
    changes: dict[str, Any] = {}
    quality = args.quality if args.quality is not None else cli.quality
    if quality is not None:
        changes["quality"] = quality
    max_size = args.max_size if args.max_size is not None else cli.max_size
    if max_size is not None:
        changes["max_size"] = max_size
    # --strip, --no-strip and --strip-location are one choice: a flag beats both [cli] keys.
    metadata = _metadata(args.strip, args.strip_location) or _metadata(cli.strip, cli.strip_location)
    if metadata is not None:
        changes["metadata"] = metadata
    srgb = _flag(args, "srgb", cli.srgb)
    if srgb is not None:
        changes["colour"] = "srgb" if srgb else "keep"
    hdr = _flag(args, "hdr", cli.hdr)
    if hdr is not None:
        changes["hdr"] = hdr
    index = _flag(args, "image_index", cli.image_index)
    if isinstance(index, int):
        changes["image_index"] = index
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


def _select_backend(args: argparse.Namespace, cli: cli_settings.CliSettings, fmt: str) -> Any:
    backend = select(args.backend or cli.backend)  # a named backend must work: fail now, not per file
    if fmt not in backend.capabilities.outputs:
        raise ConfigError(
            f"the {backend.name} backend cannot write {fmt}; pick another with --backend (see 'heicconv backends')"
        )
    return backend


def _suffix_format(output: Path) -> str:
    try:
        return formats.format_from_suffix(output.suffix)
    except HeicconvError as exc:
        raise ConfigError(str(exc)) from exc


def run_convert(args: argparse.Namespace, explicit_output: Path | None = None) -> int:
    """Run a conversion batch; return the exit status (0 ok, 1 some failed or nothing written, 130 interrupted)."""
    cli = cli_settings.load()
    single = explicit_output is not None
    fmt = _suffix_format(explicit_output) if explicit_output is not None else args.to or cli.to or "jpeg"
    options = _options(args, cli)
    limits = config.settings().limits
    backend = _select_backend(args, cli, fmt)
    outdir_text = getattr(args, "output_dir", None) or cli.output_dir
    outdir = Path(outdir_text) if outdir_text else None
    if outdir is not None and outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"-o {outdir}: exists and is not a folder; name a folder (it is created if missing)")
    recursive = bool(_flag(args, "recursive", cli.recursive))
    jobs = getattr(args, "jobs", None) or cli.jobs or _cpu_count()
    quiet = bool(_flag(args, "quiet", cli.quiet))
    keep_mtime = _flag(args, "keep_mtime", cli.keep_mtime) is not False
    existing = _existing(args, cli, single)
    dry_run = bool(getattr(args, "dry_run", False))

    plan = make_plan(
        args.paths,
        fmt,
        outdir=outdir,
        recursive=recursive,
        existing=existing,
        explicit_output=explicit_output,
        from_formats=_flag(args, "from_formats", cli.from_formats) or DEFAULT_FROM,
        follow_links=bool(_flag(args, "follow_links", cli.follow_links)),
        image_index=_flag(args, "image_index", cli.image_index),
        limits=limits,
    )
    reporter = Reporter(total=len(plan.tasks), json_lines=bool(getattr(args, "json", False)), quiet=quiet)
    extra = _ignored(plan, fmt)
    for task in plan.tasks:
        if task.status != "pending" or dry_run:
            status = "planned" if task.status == "pending" else task.status
            reporter.add(
                Record(str(task.source), display(task.output), status, task.error, task.note, exists=task.exists)
            )
    if dry_run or not plan.pending:
        reporter.summary([*extra, "dry run: nothing was written"] if dry_run and plan.tasks else extra)
        return _status(reporter, plan, recursive)

    pending = [(t, t.output) for t in plan.pending if t.output is not None]
    tag = f"{os.getpid()}"
    items = [
        Item(
            str(t.source),
            str(out),
            str(temp_path(out, f"{tag}-{i}", name_max(out.parent))),
            fmt,
            options if t.image_index is None else options.replace(image_index=t.image_index),
            limits,
            backend.name,
            existing == "overwrite",
            keep_mtime,
        )
        for i, (t, out) in enumerate(pending)
    ]
    stopped: list[str] = []

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
        if outcome.stop and not stopped:
            stopped.append(outcome.error)

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
    if stopped:
        left = reporter.total - reporter.done
        reporter.summary(extra)
        # Shown even with --quiet: the run did not do what was asked.
        reporter.say(
            f"stopped: {stopped[0]}; {left} file(s) were not tried. Free some space or make the folder "
            "writable, then run the same command again (the outputs written are complete and kept)."
        )
        return 1
    reporter.summary(extra)
    return _status(reporter, plan, recursive)


def _status(reporter: Reporter, plan: Plan, recursive: bool) -> int:
    """1 if a file failed, or if the run leaves nothing to show: no output written, planned or already there."""
    c = reporter.counts
    if c["failed"]:
        return 1
    if c["converted"] or c["planned"] or reporter.kept:
        return 0
    if plan.tasks:
        why = "none of the inputs is an image heicconv reads"
    else:
        hints = [] if recursive else ["--recursive searches sub-folders"]
        if plan.ignored_other_formats:
            hints.append("--from all reads every image format, not only HEIC")
        why = "no file to convert was found" + (f" ({'; '.join(hints)})" if hints else "")
    reporter.say(f"nothing written: {why}")  # shown even with --quiet, like a failure
    return 1


def _ignored(plan: Plan, fmt: str) -> list[str]:
    lines = []
    if plan.ignored_not_images:
        lines.append(f"ignored {plan.ignored_not_images} file(s) in folders whose names are not images")
    if plan.ignored_other_formats:
        lines.append(
            f"ignored {plan.ignored_other_formats} image(s) in folders of formats not in --from (--from all reads them)"
        )
    if plan.ignored_earlier_outputs:
        lines.append(
            f"left {plan.ignored_earlier_outputs} earlier output(s) alone: each is named after a source next to it"
        )
    if plan.ignored_same_format:
        lines.append(f"left {plan.ignored_same_format} {fmt} file(s) in folders alone: their output would replace them")
    if plan.linked_folders:
        names = ", ".join(str(p) for p in plan.linked_folders[:3]) + (", ..." if len(plan.linked_folders) > 3 else "")
        lines.append(
            f"skipped {len(plan.linked_folders)} symbolic link(s) to folders ({names}); --follow-links searches them"
        )
    return lines


def short_form(argv: list[str]) -> argparse.Namespace:
    """Parse ``heicconv IN OUT [--backend NAME] [--quality Q] ...`` (the format comes from OUT's suffix)."""
    parser = argparse.ArgumentParser(
        prog="heicconv",
        usage="heicconv IN OUT [--to FORMAT] [--quality Q] [--max-size WxH] [--strip | --strip-location] [--srgb]\n"
        "                [--hdr keep|drop] [--image-index N|all] [--backend NAME] [--overwrite]",
        description="Convert one image; the output format comes from OUT's suffix. IN or OUT can be - for "
        "standard input or output (then the format is --to, default jpeg); IN can be a named pipe too. "
        "For many files and folders use 'heicconv convert'.",
        epilog="examples:\n  heicconv IMG_0001.HEIC photo.jpg\n  cat IMG_0001.HEIC | heicconv - photo.webp\n"
        "  heicconv IMG_0001.HEIC - --to png > photo.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="IN")
    parser.add_argument("output", metavar="OUT")
    parser.add_argument("--to", type=_format, metavar="FORMAT", help="the format when OUT is - (default jpeg)")
    add_conversion_flags(parser)
    parser.add_argument("--overwrite", action="store_true", default=None, help="replace OUT if it exists")
    parser.add_argument("-q", "--quiet", action="store_true", default=None, help="print only failures")
    parser.add_argument("--json", action="store_true", help="a JSON object about the file on stdout")
    args = parser.parse_args(argv)
    args.paths = [args.input]
    return args


def is_short_form(argv: list[str], commands: set[str]) -> bool:
    """True for ``heicconv IN OUT ...``: two paths, the first not a command, the second with an image suffix or -.

    >>> is_short_form(["IMG_0001.HEIC", "photo.jpg", "--quality", "80"], {"convert"})
    True
    >>> is_short_form(["-", "-", "--to", "png"], {"convert"})
    True
    >>> is_short_form(["convert", "IMG_0001.HEIC"], {"convert"})
    False
    """
    paths = _positional(argv)
    if len(paths) != 2 or paths[0] in commands:
        return False
    if paths[1] == "-":
        return True
    try:
        formats.format_from_suffix(Path(paths[1]).suffix)
    except HeicconvError:
        return False
    return True


def unknown_output_suffix(argv: list[str], commands: set[str]) -> str | None:
    """For ``heicconv IN OUT`` whose OUT has a suffix heicconv does not write, the message that says so.

    >>> unknown_output_suffix(["a.heic", "out.gif"], {"convert"})[:60]
    'GIF is not an output format; choose one of JPEG (.jpg), PNG '
    >>> unknown_output_suffix(["convert", "a.heic"], {"convert"}) is None
    True
    """
    paths = _positional(argv)
    if len(paths) != 2 or paths[0] in commands:
        return None
    suffix = Path(paths[1]).suffix
    if not suffix:
        return None
    try:
        formats.format_from_suffix(suffix)
        return None
    except HeicconvError:
        pass
    choices = ", ".join(f"{formats.DISPLAY_NAMES[name]} ({formats.SUFFIXES[name]})" for name in formats.OUTPUT_FORMATS)
    return f"{suffix[1:].upper()} is not an output format; choose one of {choices}"


def _positional(argv: list[str]) -> list[str]:
    # Skip the values of the flags that take one, so "--quality 80" is not read as a path; "-" is a path.
    takes_value = {"--backend", "--quality", "--max-size", "--to", "--image-index", "--hdr"}
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif arg == "-" or not arg.startswith("-"):
            out.append(arg)
    return out


def main_short(argv: list[str]) -> int:
    args = short_form(argv)
    if Path(args.input).is_dir():
        raise ConfigError(f"{args.input} is a folder; to convert folders use 'heicconv convert {args.input} -o OUTDIR'")
    # A pipe or device named as IN ("heicconv <(curl -s URL) out.jpg") is read like standard input.
    if "-" in (args.input, args.output) or (os.path.exists(args.input) and not os.path.isfile(args.input)):
        return run_stream(args)
    output = Path(args.output)
    if args.to is not None and args.to != _suffix_format(output):
        raise ConfigError(f"--to {args.to} disagrees with the suffix of {output}; --to is for an output of -")
    return run_convert(args, explicit_output=output)


def run_stream(args: argparse.Namespace) -> int:
    """``heicconv - OUT``, ``heicconv IN -``, ``heicconv - -``: one image through standard input or output.

    Also ``heicconv PIPE OUT``: a named pipe or a device as IN is read like standard input.
    """
    cli = cli_settings.load()
    to_stdout = args.output == "-"
    output = Path(args.output)
    fmt = args.to or cli.to or "jpeg" if to_stdout else _suffix_format(output)
    if to_stdout and args.json:
        raise ConfigError("--json cannot share standard output with the image (-); name an output file")
    if to_stdout and sys.stdout.isatty():
        raise ConfigError("not writing image bytes to a terminal; redirect standard output (heicconv IN - > out.jpg)")
    if _flag(args, "image_index", cli.image_index) == ALL_IMAGES:
        if to_stdout:
            raise ConfigError("--image-index all writes one file per image; name an output file instead of -")
        raise ConfigError("--image-index all reads its input once per image; name a file as IN, not - or a pipe")
    options = _options(args, cli)
    backend = _select_backend(args, cli, fmt)
    overwrite = bool(args.overwrite or cli.overwrite)
    quiet = bool(_flag(args, "quiet", cli.quiet))
    reporter = Reporter(total=1, json_lines=args.json, quiet=quiet or to_stdout)
    name = "-" if args.input == "-" else args.input

    def fail(error: str) -> int:
        reporter.add(Record(name, None if to_stdout else str(output), "failed", error))
        return 1

    if not to_stdout and os.path.lexists(output) and not overwrite:
        return fail(f"{output} exists; add --overwrite to replace it")
    start = time.perf_counter()
    try:
        limits = config.settings().limits
        data = read_limited(sys.stdin.buffer, limits) if args.input == "-" else read_named(args.input, limits)
        result = convert_with_report(data, fmt, options, backend=backend.name, limits=limits)
        if to_stdout:
            sys.stdout.buffer.write(result.data)
            sys.stdout.buffer.flush()
        else:
            place(result.data, output, temp_path(output, str(os.getpid()), name_max(output.parent)), overwrite)
    except HeicconvError as exc:
        return fail(explain(exc))
    except FileExistsError:
        return fail(f"{output} appeared while converting; --overwrite replaces it")
    except OSError as exc:
        if exc.filename is None:
            return fail(exc.strerror or str(exc))
        return fail(f"{exc.strerror or exc}: {exc.filename}")
    out = None if to_stdout else str(output)
    seconds = time.perf_counter() - start
    reporter.add(Record(name, out, "converted", "", "", seconds, result.width, result.height, result.backend))
    return 0
