"""Which files a ``convert`` run reads and where each output goes, decided before any conversion.

Deciding everything up front lets ``--dry-run`` show the exact plan and lets
clashes (two inputs, one output; an output that would replace an input) be
reported before anything is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .. import formats
from ..errors import HeicconvError

__all__ = ["Existing", "Plan", "Task", "image_suffix", "make_plan"]

#: What to do when an output exists: report it as skipped with a note (``keep``), skip it
#: quietly (``skip``), replace it (``overwrite``), or count it as a failure (``error``: the
#: two-path form, where the user named that one output).
Existing = Literal["keep", "skip", "overwrite", "error"]

_SNIFF_BYTES = 4096


@dataclass
class Task:
    """One input: where its output goes, and whether the plan already decided its fate."""

    source: Path
    output: Path | None
    status: str = "pending"  # pending | skipped | failed
    error: str = ""
    note: str = ""
    exists: bool = False  # skipped because the output exists


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    ignored_not_images: int = 0  # files inside folders whose names are not images
    ignored_same_format: int = 0  # files inside folders whose output would be themselves

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


def _looks_like_image(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
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


def _walk(folder: Path, recursive: bool, outdir: Path | None) -> list[Path]:
    found: list[Path] = []
    # An output folder inside the input folder is not an input: a second run would convert the outputs.
    skip = os.path.realpath(outdir) if outdir is not None else None
    for root, dirs, files in os.walk(folder):
        # Hidden entries are skipped: macOS "._IMG.HEIC" resource forks and our own temporary files.
        keep = (d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) != skip)
        dirs[:] = sorted(keep) if recursive else []
        found.extend(Path(root) / name for name in sorted(files) if not name.startswith("."))
    return found


def make_plan(
    paths: list[str],
    fmt: str,
    *,
    outdir: Path | None,
    recursive: bool,
    existing: Existing,
    explicit_output: Path | None = None,
) -> Plan:
    """Find the inputs under ``paths`` and decide each one's output name and fate."""
    plan = Plan()
    suffix = formats.SUFFIXES[fmt]
    seen: set[str] = set()

    def add(source: Path, output: Path | None, status: str = "pending", error: str = "", note: str = "") -> None:
        # The directory entry, not the file it leads to: two links to one photo are two inputs.
        key = os.path.join(os.path.realpath(source.parent), source.name)
        if key in seen:  # a file named twice, or a folder and a file inside it
            return
        seen.add(key)
        plan.tasks.append(Task(source, output, status, error, note))

    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            for source in _walk(path, recursive, outdir):
                if image_suffix(source) is None:
                    plan.ignored_not_images += 1
                    continue
                rel = source.relative_to(path)
                folder = (outdir / rel.parent) if outdir is not None else source.parent
                output = folder / (source.stem + suffix)
                if outdir is None and _key(output) == _key(source):
                    plan.ignored_same_format += 1  # e.g. the .jpg files an earlier run wrote
                    continue
                add(source, output)
        elif path.is_file():
            if image_suffix(path) is None and not _looks_like_image(path):
                add(path, None, status="skipped", note="not an image heicconv reads")
                continue
            if explicit_output is not None:
                output = explicit_output
            else:
                output = (outdir if outdir is not None else path.parent) / (path.stem + suffix)
            add(path, output)
        elif path.exists():
            add(path, None, status="skipped", note="not a regular file or folder")
        else:
            add(path, None, status="failed", error="no such file or folder")

    _find_clashes(plan)
    _check_existing(plan, existing)
    return plan


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
