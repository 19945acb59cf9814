"""``heicconv info`` (what a file holds) and ``heicconv backends`` (what can convert it here)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import ImageInfo, config
from ..api.calls import list_backends, probe, selected_backend
from ..api.terminal import printable
from ..errors import ConfigError, HeicconvError, UnsupportedInputError
from .inputs import not_regular, open_regular, read_limited
from .run import explain

__all__ = ["add_backends_parser", "add_info_parser"]


def add_info_parser(subparsers: Any) -> None:
    """Register ``info``."""
    parser = subparsers.add_parser(
        "info",
        help="show what image files hold",
        description="Show what image files hold, read from their headers without decoding pixels: size, "
        "images, primary image, bit depth, alpha, colour profile, EXIF/XMP, thumbnails, depth maps, HDR gain map.",
        epilog="examples:\n  heicconv info IMG_0001.HEIC\n  heicconv info --json *.heic",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    parser.set_defaults(func=run_info)


def add_backends_parser(subparsers: Any) -> None:
    """Register ``backends``."""
    parser = subparsers.add_parser(
        "backends",
        help="list the backends, whether they work here, and which one is selected",
        description="List every backend: available or not and why, library versions, what each reads and "
        "writes, and which one the current configuration selects (and where that choice came from).",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(func=run_backends)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _describe(info: ImageInfo) -> list[tuple[str, str]]:
    sizes = ", ".join(f"{w}x{h}" for w, h in info.image_sizes) if len(info.image_sizes) > 1 else ""
    colour = {"icc": "ICC profile", "nclx": "nclx (colour parameters, no ICC profile)"}.get(info.colour, info.colour)
    thumbs = (
        f"{len(info.thumbnails)} (longest side {', '.join(map(str, info.thumbnails))})" if info.thumbnails else "none"
    )
    return [
        ("format", info.format),
        ("size", f"{info.width}x{info.height} (primary image, upright)"),
        ("images", f"{info.images}, primary is #{info.primary_index}" + (f" ({sizes})" if sizes else "")),
        ("bit depth", str(info.bit_depth)),
        ("alpha", _yes(info.alpha)),
        ("grayscale", _yes(info.grayscale)),
        ("colour", colour),
        ("EXIF", f"{info.exif_bytes} bytes" if info.exif_bytes else "none"),
        ("XMP", _yes(info.xmp)),
        ("thumbnails", thumbs),
        ("depth maps", str(info.depth_images) if info.depth_images else "none"),
        ("orientation", str(info.orientation)),
        ("HDR gain map", info.gain_map or "none"),
    ]


def run_info(args: argparse.Namespace) -> int:
    """Print what each file holds; exit 1 if any could not be read."""
    failed = shown = 0
    limits = config.settings().limits
    for name in args.files:
        try:
            with open_regular(name) as (fh, st):
                if fh is None:  # a pipe in "heicconv info *" would wait for a writer forever
                    raise UnsupportedInputError(not_regular(st, "info"))
                info = probe(read_limited(fh, limits, st.st_size))
        except (HeicconvError, OSError) as exc:
            failed += 1
            if isinstance(exc, HeicconvError):
                message = explain(exc)
            else:
                message = f"{exc.strerror}: {name}" if exc.strerror else str(exc)
            if args.json:
                print(json.dumps({"path": name, "error": message}), flush=True)
            else:
                sys.stderr.write(printable(f"heicconv info: {name}: {message}") + "\n")
            continue
        if args.json:
            print(json.dumps({"path": name, **info.to_dict()}), flush=True)
            continue
        if shown:
            print()
        shown += 1
        print(printable(name))
        for label, value in _describe(info):
            print(f"  {label:<12} {value}")
    return 1 if failed else 0


def run_backends(args: argparse.Namespace) -> int:
    """List backends; exit 1 if none can run here."""
    statuses = list_backends()
    selected: dict[str, Any] | None
    try:
        name, source = selected_backend()
        selected, problem = {"name": name, "source": source}, ""
    except ConfigError:
        raise  # a broken configuration is exit status 2, like everywhere else
    except HeicconvError as exc:
        selected, problem = None, str(exc)
    if args.json:
        print(json.dumps({"backends": [s.to_dict() for s in statuses], "selected": selected, "error": problem or None}))
        return 0 if selected else 1
    for status in statuses:
        state = "available" if status.available else "not available"
        print(f"{status.name}: {state}")
        if status.versions:
            print("  versions  " + ", ".join(f"{k} {v}" for k, v in status.versions.items()))
        caps = status.capabilities
        if caps is not None:
            print("  reads     " + ", ".join(sorted(caps.inputs)))
            print("  writes    " + ", ".join(sorted(caps.outputs)))
            print("  features  " + (", ".join(caps.features.labels()) or "none"))
        if status.reason:
            print(f"  why       {status.reason}")
    if selected:
        print(f"selected: {selected['name']} (from {selected['source']})")
        return 0
    print(f"selected: none: {problem}")
    return 1
