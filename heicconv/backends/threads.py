"""How many threads each image library may start, so that worker processes share the CPUs instead of each taking all.

Every decoder heicconv drives starts its own threads for one image: FFmpeg's decoders (as many as
CPUs), libheif's in pillow-heif (4), libvips' (as many as CPUs) and ImageMagick's (as many as CPUs). One
conversion at a time, that is what makes it fast. Several at once (``heicconv convert -j N``, a service's
workers) and each worker still starts all of them: 16 workers on 16 CPUs run 256 FFmpeg threads.
:func:`share` makes this process one of
``workers`` converting at once; every library then gets twice its share of the CPUs, ``2 * CPUs /
workers`` threads (rounded up, at most the CPUs): a worker that waits for its next file, or for its
output to reach the disk, then leaves no CPU idle (with exactly ``CPUs / workers``, one measured -j 2
batch on 2 CPUs kept them 69% busy where the libraries' defaults kept them 88%, docs/performance.md),
and 64 workers on 64 CPUs still run 2 decoder threads each, not 64.
The CPUs are those this process may run on (:func:`cpus`): a container limited to 2 CPUs on a
64-CPU host has 2, not 64.

This is the one place that knows each library's setting. The pools heicconv starts call :func:`share`
(the batch's workers, :class:`heicconv.api.workers.IsolatedConverter`'s, ``heicconv serve``'s thread pool);
the registry calls :func:`apply` when it loads a backend, for libraries imported after :func:`share`.
A process that never calls :func:`share` (a program using ``heicconv.convert``) keeps every library's own
default: these settings are process-wide, and such a process is its owner's, not heicconv's.

An environment variable the user set (``VIPS_CONCURRENCY``, ``MAGICK_THREAD_LIMIT``) wins over the share.

The ffmpeg backend's decoder takes the share; with a share of two or more, one more thread encodes the JPEG
strips the decoder has finished (about a tenth of the work, docs/performance.md), with one, it encodes them
in turn on the decoding thread. FFmpeg's scaler (resizing, RGB) gets the share too, and so does the damage
check's second reading of suspect tiles by libde265 (``_damage.garbage``: a thread per tile, up to the share).
"""

from __future__ import annotations

import math
import os
import sys

__all__ = ["apply", "cpus", "reset", "settings", "share", "threads", "threads_for"]

#: Environment variables that the libraries read when they start: libvips, ImageMagick, OpenMP.
_ENVIRONMENT = ("VIPS_CONCURRENCY", "MAGICK_THREAD_LIMIT", "OMP_NUM_THREADS")

_threads: int | None = None  # None: no pool made this process one of several workers
_user_set: frozenset[str] = frozenset()
_before: dict[str, int] = {}  # each loaded library's own setting, before the first share changed it


def cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by a CPU quota of its cgroup (``docker --cpus``).

    >>> 1 <= cpus() <= (os.cpu_count() or 1)
    True
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(count, math.ceil(quota))) if quota else max(1, count)


def _cgroup_quota() -> float | None:
    """CPUs' worth of time the cgroup may use (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), None if unlimited."""
    for path, period_path in (
        ("/sys/fs/cgroup/cpu.max", None),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    ):
        try:
            with open(path, encoding="ascii") as fh:
                words = fh.read().split()
            if period_path is not None:
                with open(period_path, encoding="ascii") as fh:
                    words.append(fh.read().strip())
            quota, period = words[0], words[1]
            if quota in ("max", "-1"):
                return None
            return int(quota) / int(period)
        except (OSError, ValueError, IndexError, ZeroDivisionError):
            continue
    return None


def threads_for(workers: int = 1) -> int:
    """Threads for one of ``workers`` processes converting at once: twice their share of the CPUs, at most all.

    >>> threads_for(1) == cpus(), threads_for(cpus()) == min(2, cpus()), threads_for(10_000)
    (True, True, 1)
    """
    count = cpus()
    return max(1, min(count, -(-2 * count // max(1, workers))))


def threads() -> int:
    """Threads a decoder in this process may start: the share if :func:`share` was called, else every CPU it has."""
    return _threads if _threads is not None else threads_for(1)


def share(workers: int) -> int:
    """Make this process one of ``workers`` that convert at once; returns the threads each library now gets.

    Sets the environment for libraries not loaded yet and the live setting of those already loaded.
    """
    global _threads, _user_set
    if _threads is None:  # the first call: what the user set is theirs; later calls replace only our own values
        _user_set = frozenset(name for name in _ENVIRONMENT if name in os.environ)
    _threads = threads_for(workers)
    for name in _ENVIRONMENT:
        if name not in _user_set:
            os.environ[name] = str(_threads)
    apply()
    return _threads


def apply() -> None:
    """Give each image library already loaded in this process its share (nothing if :func:`share` was not called)."""
    if _threads is None:
        return
    n = _threads
    for name, value in settings().items():
        _before.setdefault(name, value)
    pillow_heif = sys.modules.get("pillow_heif")
    if pillow_heif is not None:
        pillow_heif.options.DECODE_THREADS = n  # libheif's threads for the tiles of one image
    pyvips = sys.modules.get("pyvips")
    if pyvips is not None and "VIPS_CONCURRENCY" not in _user_set:
        pyvips.concurrency_set(n)
    if "wand.api" in sys.modules and "MAGICK_THREAD_LIMIT" not in _user_set:
        from wand.resource import limits

        limits["thread"] = n


def reset() -> None:
    """Undo :func:`share`: the environment and every library's setting as they were (for tests)."""
    global _threads
    if _threads is None:
        return
    for name in _ENVIRONMENT:
        if name not in _user_set:
            os.environ.pop(name, None)
    _threads = None
    pillow_heif = sys.modules.get("pillow_heif")
    if pillow_heif is not None and "pillow_heif" in _before:
        pillow_heif.options.DECODE_THREADS = _before["pillow_heif"]
    pyvips = sys.modules.get("pyvips")
    if pyvips is not None and "libvips" in _before:
        pyvips.concurrency_set(_before["libvips"])
    if "wand.api" in sys.modules and "imagemagick" in _before:
        from wand.resource import limits

        limits["thread"] = _before["imagemagick"]
    _before.clear()


def settings() -> dict[str, int]:
    """What each loaded library is set to now, by name (for reports and tests)."""
    out = {"ffmpeg": threads()}
    pillow_heif = sys.modules.get("pillow_heif")
    if pillow_heif is not None:
        out["pillow_heif"] = int(pillow_heif.options.DECODE_THREADS)
    pyvips = sys.modules.get("pyvips")
    if pyvips is not None:
        out["libvips"] = int(pyvips.concurrency_get())
    if "wand.api" in sys.modules:
        from wand.resource import limits

        out["imagemagick"] = int(limits["thread"])
    return out
