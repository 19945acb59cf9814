"""Which files a ``convert`` run reads and where each output goes, decided before any conversion.

Deciding everything up front lets ``--dry-run`` show the exact plan and lets
clashes (two inputs, one output; an output that would replace an input) be
reported before anything is written.

Which files in a folder are read: those whose suffix names one of the ``--from``
formats (default ``heic``: ``.heic .heif .hif`` in any case), except a file named
as heicconv names an output of another source in the same folder (``IMG.jpg`` or
``IMG-1.jpg`` next to ``IMG.HEIC``): that is an earlier run's output, never a source.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..api.calls import probe
from ..errors import HeicconvError, UnsupportedInputError
from ..options import Limits, formats
from .inputs import not_regular, open_regular, read_limited

__all__ = ["ALL_IMAGES", "DEFAULT_FROM", "Existing", "Plan", "Task", "image_suffix", "make_plan", "name_max"]

#: What to do when an output exists: report it as skipped with a note (``keep``), skip it
#: quietly (``skip``), replace it (``overwrite``), or count it as a failure (``error``: the
#: two-path form, where the user named that one output).
Existing = Literal["keep", "skip", "overwrite", "error"]

_SNIFF_BYTES = 4096
#: The formats read from folders unless ``--from`` says otherwise: what phones shoot.
DEFAULT_FROM: tuple[str, ...] = ("heic",)
#: ``--image-index all``: every top-level image, each to ``NAME-N.ext``.
ALL_IMAGES = "all"
_FALLBACK_NAME_MAX = 255


@dataclass
class Task:
    """One input: where its output goes, and whether the plan already decided its fate."""

    source: Path
    output: Path | None
    status: str = "pending"  # pending | skipped | failed
    error: str = ""
    note: str = ""
    exists: bool = False  # skipped because the output exists
    image_index: int | None = None  # set for each image of ``--image-index all``


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    ignored_not_images: int = 0  # files inside folders whose names are not images
    ignored_same_format: int = 0  # files inside folders whose output would be themselves
    ignored_other_formats: int = 0  # images in folders whose format is not one of --from
    ignored_earlier_outputs: int = 0  # files named like the output of a source next to them
    linked_folders: list[Path] = field(default_factory=list)  # symlinked sub-folders not followed

    @property
    def pending(self) -> list[Task]:
        return [t for t in self.tasks if t.status == "pending"]


def image_suffix(path: Path) -> str | None:
    """The format an input's suffix names, if heicconv reads it.

    >>> image_suffix(Path("IMG_0001.HEIC"))
    'heic'
    >>> image_suffix(Path("notes.txt")) is None
    True
    """
    try:
        fmt = formats.format_from_suffix(path.suffix)
    except HeicconvError:
        return None
    return fmt if fmt in formats.INPUT_FORMATS else None


def _not_regular(path: Path) -> str:
    """Why ``convert`` does not read ``path`` (a pipe, socket or device, through links too), or ""."""
    try:
        return not_regular(path.stat())
    except OSError:  # gone, or a dangling link: its conversion says so
        return ""


def _looks_like_image(path: Path) -> bool:
    try:
        with open_regular(str(path)) as (fh, _):
            head = fh.read(_SNIFF_BYTES) if fh is not None else b""
        formats.detect(head)
    except (OSError, HeicconvError):
        return False
    return True


def _key(path: Path) -> str:
    # Case-folded so that a.heic and a.HEIC clash on every file system, not only on
    # case-insensitive ones (macOS, Windows) where they would overwrite each other.
    return os.path.normcase(os.path.realpath(path)).casefold()


def _identity(path: Path) -> tuple[int, int] | str:
    # The file itself (through links), so an output can never land on an input under another name.
    try:
        st = path.stat()
    except OSError:
        return os.path.abspath(path)
    return (st.st_dev, st.st_ino)


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, that ``folder``'s file system takes (or would, once created)."""
    for parent in (folder, *folder.parents):
        try:
            return os.pathconf(parent, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):  # missing yet, or no pathconf (Windows)
            continue
    return _FALLBACK_NAME_MAX


def _walk(folder: Path, recursive: bool, outdir: Path | None, follow: bool, plan: Plan) -> list[Path]:
    found: list[Path] = []
    # An output folder inside the input folder is not an input: a second run would convert the outputs.
    skip = os.path.realpath(outdir) if outdir is not None else None
    seen = {os.path.realpath(folder)}  # followed links can lead back up the tree
    for root, dirs, files in os.walk(folder, followlinks=follow):
        keep = []
        # Hidden entries are skipped: macOS "._IMG.HEIC" resource forks and our own temporary files.
        for name in sorted(d for d in dirs if not d.startswith(".")):
            path = os.path.join(root, name)
            real = os.path.realpath(path)
            if not recursive or real == skip:
                continue
            if os.path.islink(path) and not follow:
                plan.linked_folders.append(Path(path))
                continue
            if real in seen:
                continue
            seen.add(real)
            keep.append(name)
        dirs[:] = keep
        found.extend(Path(root) / name for name in sorted(files) if not name.startswith("."))
    return found


_OUTPUT_SUFFIXES = frozenset(formats.SUFFIXES.values())


def _sources(files: list[Path], wanted: tuple[str, ...], plan: Plan) -> list[Path]:
    """The files of one folder that are sources: of a ``wanted`` format, and not an earlier output."""
    candidates: list[tuple[Path, str]] = []
    for path in files:
        fmt = image_suffix(path)
        if fmt is None:
            plan.ignored_not_images += 1
        elif fmt not in wanted:
            plan.ignored_other_formats += 1
        else:
            candidates.append((path, fmt))
    # The first --from format present under a name is the source; the others are its outputs.
    rank = {fmt: i for i, fmt in enumerate(wanted)}
    first: dict[str, int] = {}
    for path, fmt in candidates:
        stem = path.stem.casefold()
        first[stem] = min(first.get(stem, len(wanted)), rank[fmt])
    sources = []
    for path, fmt in candidates:
        match = re.fullmatch(r"(.*)-\d+", path.stem)  # IMG-1.jpg, from --image-index all
        bases = [path.stem.casefold(), *([match.group(1).casefold()] if match else [])]
        if path.suffix in _OUTPUT_SUFFIXES and any(rank[fmt] > first.get(b, len(wanted)) for b in bases):
            plan.ignored_earlier_outputs += 1  # IMG.jpg next to IMG.HEIC
            continue
        sources.append(path)
    return sources


def _outputs(
    source: Path, output: Path, image_index: int | str | None, limits: Limits
) -> list[tuple[Path, int | None]]:
    """One output per image asked for: ``output`` itself, or ``NAME-N.ext`` for each image with ``all``."""
    if image_index != ALL_IMAGES:
        assert not isinstance(image_index, str)
        return [(output, image_index)]
    with open_regular(str(source)) as (fh, st):
        if fh is None:
            raise UnsupportedInputError(not_regular(st))
        count = probe(read_limited(fh, limits, st.st_size)).images
    width = len(str(count - 1))
    return [(output.with_name(f"{output.stem}-{i:0{width}d}{output.suffix}"), i) for i in range(count)]


def make_plan(
    paths: list[str],
    fmt: str,
    *,
    outdir: Path | None,
    recursive: bool,
    existing: Existing,
    explicit_output: Path | None = None,
    from_formats: tuple[str, ...] = DEFAULT_FROM,
    follow_links: bool = False,
    image_index: int | str | None = None,
    limits: Limits | None = None,
) -> Plan:
    """Find the inputs under ``paths`` and decide each one's output name and fate."""
    plan = Plan()
    limits = limits or Limits()
    suffix = formats.SUFFIXES[fmt]
    seen: set[str] = set()

    def add(source: Path, output: Path | None, status: str = "pending", error: str = "", note: str = "") -> None:
        # The directory entry, not the file it leads to: two links to one photo are two inputs.
        key = os.path.join(os.path.realpath(source.parent), source.name)
        if key in seen:  # a file named twice, or a folder and a file inside it
            return
        seen.add(key)
        if output is None or status != "pending":
            plan.tasks.append(Task(source, output, status, error, note))
            return
        try:
            outputs = _outputs(source, output, image_index, limits)
        except (OSError, HeicconvError) as exc:
            plan.tasks.append(Task(source, output, "failed", f"cannot count its images: {exc}"))
            return
        plan.tasks.extend(Task(source, out, image_index=index) for out, index in outputs)

    for arg in paths:
        path = Path(arg)
        if arg == "-":
            add(path, None, status="failed", error="standard input is read by the two-path form: heicconv - OUT")
        elif path.is_dir():
            files = _walk(path, recursive, outdir, follow_links, plan)
            by_folder: dict[Path, list[Path]] = {}
            for source in files:
                by_folder.setdefault(source.parent, []).append(source)
            for folder_files in by_folder.values():
                for source in _sources(folder_files, from_formats, plan):
                    why = _not_regular(source)
                    if why:  # a pipe would hang the run, a device never ends
                        add(source, None, status="skipped", note=why)
                        continue
                    rel = source.relative_to(path)
                    folder = (outdir / rel.parent) if outdir is not None else source.parent
                    output = folder / (source.stem + suffix)
                    if outdir is None and _key(output) == _key(source):
                        plan.ignored_same_format += 1  # e.g. --to heic next to the HEIC files
                        continue
                    add(source, output)
        elif path.is_file():
            if image_suffix(path) is None and not _looks_like_image(path):
                if explicit_output is not None:  # the user named the one output: not writing it is a failure
                    add(path, None, status="failed", error="not an image heicconv reads; nothing written")
                else:
                    add(path, None, status="skipped", note="not an image heicconv reads")
                continue
            if explicit_output is not None:
                output = explicit_output
            else:
                output = (outdir if outdir is not None else path.parent) / (path.stem + suffix)
            add(path, output)
        elif path.exists():
            add(path, None, status="skipped", note=_not_regular(path))
        else:
            add(path, None, status="failed", error="no such file or folder")

    _check_names(plan)
    _find_clashes(plan)
    _check_existing(plan, existing)
    return plan


def _check_names(plan: Plan) -> None:
    for task in plan.pending:
        assert task.output is not None
        size, limit = len(os.fsencode(task.output.name)), name_max(task.output.parent)
        if size > limit:
            task.status = "failed"
            task.error = (
                f"the output name {task.output.name} is {size} bytes, longer than its folder's file system "
                f"allows ({limit}); rename the input"
            )


def _find_clashes(plan: Plan) -> None:
    inputs: dict[tuple[int, int] | str, Path] = {_key(t.source): t.source for t in plan.tasks}
    inputs.update({_identity(t.source): t.source for t in plan.tasks})
    groups: dict[str, list[Task]] = {}
    for task in plan.pending:
        assert task.output is not None
        key = _key(task.output)
        same = inputs.get(key) or (inputs.get(_identity(task.output)) if task.output.exists() else None)
        if same is not None:
            task.status = "failed"
            task.error = (
                f"the output {task.output} would replace the input {same}; choose another format (--to) or folder (-o)"
            )
            continue
        groups.setdefault(key, []).append(task)
    for group in groups.values():
        if len(group) < 2:
            continue
        names = ", ".join(str(t.source) for t in group)
        for task in group:
            task.status = "failed"
            task.error = (
                f"output conflict: {names} would all be written to {task.output}; "
                "rename one of them or convert them into different folders (-o)"
            )


def _check_existing(plan: Plan, existing: Existing) -> None:
    for task in plan.pending:
        assert task.output is not None
        if task.output.is_dir():
            task.status, task.error = "failed", f"the output {task.output} is a folder"
        elif not os.path.lexists(task.output) or existing == "overwrite":
            continue
        elif existing == "error":
            task.status, task.error = "failed", f"{task.output} exists; add --overwrite to replace it"
        else:
            task.status, task.exists = "skipped", True
            if existing == "keep":
                task.note = f"{task.output} exists"
