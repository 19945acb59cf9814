"""The ``heicconv`` command line: ``convert``, ``info``, ``backends``; ``bench``, ``serve``, ``worker`` when used.

``heicconv IN OUT`` (two paths, the second with an image suffix) is short for
converting one file, with the format taken from OUT's suffix.

Exit status: 0 everything succeeded, 1 some files failed or nothing was written,
2 a usage or configuration error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from ..api.terminal import printable
from ..errors import BackendUnavailableError, ConfigError, HeicconvError
from . import convert, describe

__all__ = ["main"]

#: Subcommands other modules provide, imported only when used: name -> (module, help).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("heicconv.bench.cli", "measure the backends on your files"),
    "serve": ("heicconv.server.cli", "run the HTTP conversion service"),
    "worker": ("heicconv.aws_lambda.queue_worker.cli", "convert the S3 notifications an SQS queue receives"),
}
#: What installs a lazy subcommand's own dependencies (pip extras in pyproject.toml).
LAZY_EXTRAS: dict[str, str] = {"serve": "server", "worker": "worker"}
COMMANDS = ("convert", "info", "backends", *LAZY_COMMANDS)

# The same sentence as pyproject.toml's description (tests/test_docs.py checks it against the formats and backends).
DESCRIPTION = (
    "Convert HEIC/HEIF photos to JPEG, PNG, WebP, AVIF, TIFF or HEIC through interchangeable backends "
    "(FFmpeg, Pillow, libvips, ImageMagick, a heicconv service or Lambda function, or your own)."
)

EXAMPLES = """\
examples:
  heicconv IMG_0001.HEIC photo.jpg                convert one file (format from the suffix)
  cat IMG_0001.HEIC | heicconv - - --to png > a.png   standard input to standard output
  heicconv convert Photos -r -o Converted         convert a folder tree, mirrored under Converted/
  heicconv convert *.heic --to webp --quality 80
  heicconv info IMG_0001.HEIC                     what the file holds
  heicconv backends                               which backends work here, and which is used

'heicconv IN OUT --help' describes the one-file form, 'heicconv COMMAND --help' each command.
Exit status: 0 all succeeded, 1 some files failed or nothing was written, 2 usage or
configuration error, 130 interrupted.
"""


def _import_lazy(name: str) -> tuple[Any, str]:
    """Import the module behind a lazy subcommand: ``(module, "")`` or ``(None, why it is unavailable)``."""
    module_name = LAZY_COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            return None, f"{module_name} is not part of it"
        extra = LAZY_EXTRAS.get(name)
        hint = f"; install it with pip install 'heicconv[{extra}]'" if extra else ""
        return None, f"{module_name} needs something that is missing ({exc}){hint}"
    if not callable(getattr(module, "add_parser", None)):
        return None, f"{module_name} has no add_parser()"
    return module, ""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``command`` names the lazy subcommand to import, if any."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="heicconv",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"heicconv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    convert.add_parser(subparsers)
    describe.add_info_parser(subparsers)
    describe.add_backends_parser(subparsers)
    for name, (_, help_text) in LAZY_COMMANDS.items():
        module = _import_lazy(name)[0] if name == command else None
        if module is not None:
            module.add_parser(subparsers)
        else:
            # Listed in --help without importing the module (and whatever it imports).
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def _first_word(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if convert.is_short_form(args_list, set(COMMANDS)):
            return convert.main_short(args_list)
        command = _first_word(args_list)
        wrong_suffix = convert.unknown_output_suffix(args_list, set(COMMANDS))
        if wrong_suffix is not None:  # "heicconv a.heic out.gif": say what is wrong with OUT, not "unknown command"
            sys.stderr.write(f"heicconv: error: {wrong_suffix}\n")
            return 2
        if command is not None and command not in COMMANDS:
            hint = ""
            if os.path.exists(command) or "." in command:
                hint = (
                    "; to convert files use 'heicconv convert PATH...', "
                    "or 'heicconv IN OUT' with an image suffix on OUT (e.g. photo.jpg)"
                )
            sys.stderr.write(f"heicconv: error: unknown command {command!r}{hint}; commands: {', '.join(COMMANDS)}\n")
            return 2
        if command in LAZY_COMMANDS:
            why = _import_lazy(command)[1]
            if why:
                sys.stderr.write(f"heicconv: error: 'heicconv {command}' is not available in this installation: ")
                sys.stderr.write(why + "\n")
                return 2
        parser = build_parser(command)
        args = parser.parse_args(args_list)
        if args.command is None or not hasattr(args, "func"):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args))
    except SystemExit as exc:  # argparse: --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except (ConfigError, BackendUnavailableError) as exc:
        sys.stderr.write(f"heicconv: error: {printable(str(exc))}\n")
        return 2
    except HeicconvError as exc:
        sys.stderr.write(f"heicconv: error: {printable(str(exc))}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("heicconv: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. "| head"): stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
