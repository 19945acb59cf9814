"""Converting the planned files, in this process (``-j 1``) or in worker processes.

Every output is written to a hidden temporary file in its target folder and moved
into place in one step, so an interrupted run leaves either the complete image or
nothing. Existing files are replaced only with ``--overwrite``; otherwise the move
is a hard link, which fails instead of replacing a file that appeared meanwhile.

The temporary file is created before the input is decoded, so a folder that cannot
be written (read-only, no permission) is found before any work is spent; that, or
a full disk, stops the whole run (``Outcome.stop``): every other file would fail too.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import BinaryIO

from ..api.calls import convert_with_report, share_cpus
from ..errors import DecodeError, HeicconvError
from ..options import Limits, Options
from .inputs import not_regular, open_regular, read_limited

__all__ = ["Item", "Outcome", "OutputError", "convert_one", "execute", "explain", "place", "temp_path"]

_TEMP_SUFFIX = ".heicconv-tmp"
# Errors that say the output folder cannot take files at all, rather than that one file is wrong.
_FOLDER_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR})


@dataclass(frozen=True)
class Item:
    """One conversion, as sent to a worker (everything it needs, nothing it must look up)."""

    source: str
    output: str
    temp: str
    fmt: str
    options: Options
    limits: Limits
    backend: str | None
    overwrite: bool
    keep_mtime: bool = True


@dataclass(frozen=True)
class Outcome:
    status: str  # converted | skipped | failed
    error: str = ""
    note: str = ""
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    backend: str = ""
    stop: bool = False  # the output folder cannot be written: converting the rest is pointless


class OutputError(OSError):
    """Writing into the output folder failed in a way that every other file would hit too."""

    def __init__(self, folder: Path, cause: OSError) -> None:
        why = cause.strerror or str(cause)
        super().__init__(cause.errno, f"cannot write to the output folder {folder}: {why}")
        self.folder = folder


def temp_path(output: Path, tag: str, name_max: int = 255) -> Path:
    """A hidden name next to ``output`` that folder scans ignore and a later run can recognise.

    The output's name is cut to fit ``name_max`` bytes (the file system's limit), on a
    character boundary, since one character can take up to four bytes:

    >>> temp_path(Path("out/a.jpg"), "42-0").as_posix()
    'out/.a.jpg.42-0.heicconv-tmp'
    >>> name = temp_path(Path("照" * 80 + ".jpg"), "42-0").name
    >>> len(os.fsencode(name)), name[-20:]
    (253, '照照.42-0.heicconv-tmp')
    """
    room = name_max - len(os.fsencode(f"..{tag}{_TEMP_SUFFIX}"))
    name = output.name
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return output.with_name(f".{name}.{tag}{_TEMP_SUFFIX}")


def explain(exc: HeicconvError) -> str:
    """The error in words for someone who has a file, not a parser: say what is wrong first."""
    if isinstance(exc, DecodeError) and str(exc).startswith("image_index"):
        return f"{exc}; 'heicconv info' lists the images"  # a wrong --image-index, not a damaged file
    if isinstance(exc, DecodeError) and not str(exc).startswith("the input is empty"):
        return f"the file is damaged or incomplete ({exc})"
    return str(exc)


def _folder_error(output: Path, exc: OSError) -> OSError:
    return OutputError(output.parent, exc) if exc.errno in _FOLDER_ERRNOS else exc


def place(data: bytes, output: Path, temp: Path, overwrite: bool, mtime_ns: tuple[int, int] | None = None) -> None:
    """Write ``data`` to ``temp``, then move it to ``output`` in one step (``FileExistsError`` if it appeared).

    ``mtime_ns`` is ``(atime, mtime)`` in nanoseconds for the output (the source's, to keep its date).
    """
    with _open_temp(output, temp) as fh:
        _write(fh, data, output)
    _finish(output, temp, overwrite, mtime_ns)


@contextlib.contextmanager
def _open_temp(output: Path, temp: Path) -> Iterator[BinaryIO]:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # whatever the reason, nothing can be written there
        raise OutputError(output.parent, exc) from exc
    try:
        # O_EXCL with the default mode (not mkstemp's 0600), so outputs get the usual permissions.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _folder_error(output, exc) from exc
    with os.fdopen(fd, "wb") as fh:
        yield fh


def _write(fh: BinaryIO, data: bytes, output: Path) -> None:
    try:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    except OSError as exc:
        raise _folder_error(output, exc) from exc


def _finish(output: Path, temp: Path, overwrite: bool, mtime_ns: tuple[int, int] | None) -> None:
    try:
        if mtime_ns is not None:
            os.utime(temp, ns=mtime_ns)
        if overwrite:
            os.replace(temp, output)
            return
        try:
            os.link(temp, output)
        except FileExistsError:
            raise
        except OSError:
            # No hard links on this file system (FAT, some network shares): check, then move.
            if os.path.lexists(output):
                raise FileExistsError(output) from None
            os.replace(temp, output)
        else:
            os.unlink(temp)
    except FileExistsError:
        raise
    except OSError as exc:
        raise _folder_error(output, exc) from exc


def convert_one(item: Item) -> Outcome:
    """Convert one file and write its output; never raises for a bad file (the batch goes on)."""
    start = time.perf_counter()
    output, temp = Path(item.output), Path(item.temp)
    try:
        with _open_temp(output, temp) as fh:  # first: a folder that cannot be written costs no decoding
            with open_regular(item.source) as (src, st):
                if src is None:  # it was a regular file when the run was planned
                    return Outcome("skipped", note=not_regular(st))
                data = read_limited(src, item.limits, st.st_size)
            result = convert_with_report(data, item.fmt, item.options, backend=item.backend, limits=item.limits)
            _write(fh, result.data, output)
        _finish(output, temp, item.overwrite, (st.st_atime_ns, st.st_mtime_ns) if item.keep_mtime else None)
    except FileExistsError:
        return Outcome("skipped", note=f"{item.output} appeared while converting; --overwrite replaces it")
    except HeicconvError as exc:
        return Outcome("failed", error=explain(exc), seconds=time.perf_counter() - start)
    except OutputError as exc:
        return Outcome("failed", error=str(exc.strerror), seconds=time.perf_counter() - start, stop=True)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return Outcome("failed", error=f"{exc.strerror or exc}{where}", seconds=time.perf_counter() - start)
    except MemoryError:
        return Outcome(
            "failed",
            error="out of memory; convert this file alone (-j 1) or with a smaller --max-size",
            seconds=time.perf_counter() - start,
        )
    except Exception as exc:  # a bug, but one file's bug must not stop the batch
        return Outcome(
            "failed",
            error=f"unexpected {type(exc).__name__}: {exc} (this is a heicconv bug; please report it)",
            seconds=time.perf_counter() - start,
        )
    finally:
        # Also runs on Ctrl-C in this process: no temporary file outlives its conversion.
        with contextlib.suppress(OSError):
            os.unlink(item.temp)
    return Outcome(
        "converted",
        seconds=time.perf_counter() - start,
        width=result.width,
        height=result.height,
        backend=result.backend,
    )


def _start_worker(jobs: int) -> None:
    # Workers leave Ctrl-C to the main process, which stops handing out work and
    # lets the conversions in progress finish, so every output is complete.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    share_cpus(jobs)  # each worker's decoders start 2 * CPUs / jobs threads, not one per CPU each


def _remove(paths: Iterable[str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)


def execute(
    items: list[Item],
    jobs: int,
    on_done: Callable[[int, Outcome], None],
    on_stopping: Callable[[int], None],
    work: Callable[[Item], Outcome] = convert_one,
) -> None:
    """Run ``work`` on each of ``items``, calling ``on_done(index, outcome)`` as each finishes.

    On Ctrl-C, no new file is started; conversions already running finish (a second
    Ctrl-C abandons them), then ``KeyboardInterrupt`` is raised again for the caller to
    report. After an outcome with ``stop`` set, no new file is started either, and
    ``execute`` returns once the running ones finish.

    However the run ends (done, stopped, interrupted, a worker crashed or was killed, as
    ``kill`` of the process group does), the temporary files of the items started are
    removed once no worker is left that could still write one.
    """
    if jobs > 1 and len(items) > 1:
        _in_workers(items, jobs, on_done, on_stopping, work)
        return
    for index, item in enumerate(items):
        try:
            outcome = work(item)
        finally:
            _remove([item.temp])
        on_done(index, outcome)
        if outcome.stop:
            return


def _in_workers(
    items: list[Item],
    jobs: int,
    on_done: Callable[[int, Outcome], None],
    on_stopping: Callable[[int], None],
    work: Callable[[Item], Outcome],
) -> None:
    context = multiprocessing.get_context("spawn")  # fork is unsafe with image libraries' threads
    todo = collections.deque(range(len(items)))
    halted = False
    while todo and not halted:
        executor = ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_start_worker, initargs=(jobs,)
        )
        # No queue beyond one file per worker: Ctrl-C has nothing to cancel, and if a worker
        # crashes, the files in flight are the ones that were really being converted.
        running: dict[Future[Outcome], int] = {}
        started: list[int] = []
        broken = False
        try:
            try:
                while True:
                    while todo and not (broken or halted) and len(running) < jobs:
                        try:
                            future = executor.submit(work, items[todo[0]])
                        except BrokenProcessPool:  # a worker died while idle: this file goes to the next pool
                            broken = True
                            break
                        started.append(todo[0])
                        running[future] = todo.popleft()
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = running.pop(future)
                        try:
                            outcome = future.result()
                        except BrokenProcessPool:
                            broken = True  # collect every running future, then start a new pool
                            outcome = Outcome(
                                "failed",
                                error="the worker process converting this file (or one converted at the same time) "
                                "crashed; convert it alone with -j 1 to see which",
                            )
                        on_done(index, outcome)
                        halted = halted or outcome.stop
            except KeyboardInterrupt:
                for future in running:
                    future.cancel()
                busy = {f: i for f, i in running.items() if not f.cancelled()}
                on_stopping(len(busy))
                try:
                    for future in wait(busy).done:
                        with contextlib.suppress(BrokenProcessPool):  # killed too (kill of the process group)
                            on_done(busy[future], future.result())
                except KeyboardInterrupt:
                    _abandon(executor)
                raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)  # every worker has exited when this returns
            _remove(items[i].temp for i in started)


def _abandon(executor: ProcessPoolExecutor) -> None:
    """Stop the workers now (SIGTERM, then SIGKILL for any still there after a few seconds) and wait for them."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    stuck = _running_after(processes, 5.0)
    for process in stuck:
        process.kill()
    _running_after(stuck, 5.0)
    executor.shutdown(wait=False, cancel_futures=True)


def _running_after(processes: list[BaseProcess], seconds: float) -> list[BaseProcess]:
    """The processes that have not exited after ``seconds`` (known from their sentinels, whoever reaps them)."""
    deadline = time.monotonic() + seconds
    left = {p.sentinel: p for p in processes}
    while left and (remaining := deadline - time.monotonic()) > 0:
        for sentinel in connection.wait(list(left), remaining):
            del left[sentinel]  # type: ignore[arg-type]
    return list(left.values())
