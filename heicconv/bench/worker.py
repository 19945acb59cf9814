"""One measurement in a fresh process: started by :mod:`heicconv.bench.measure`, never imported by users.

The parent runs :data:`heicconv.bench.measure.BOOTSTRAP`, which notes the time, imports
heicconv, notes the time again and calls :func:`main` with the job as JSON in ``sys.argv[1]``.
The result is written as JSON to the file the job names, so nothing a backend's C library
prints on stdout can corrupt it.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "maxrss_mb", "median"]


def median(values: list[float]) -> float:
    """The median (not ``statistics.median``: its imports would count towards the cold start).

    >>> median([3.0, 1.0, 2.0]), median([4.0, 1.0, 2.0, 3.0])
    (2.0, 2.5)
    """
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def maxrss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    On Linux ``VmHWM`` (/proc/self/status): ``ru_maxrss`` survives ``exec``, so a worker started by a
    large process (a test runner, an application) would report its parent's peak as its own.
    Elsewhere ``ru_maxrss`` (macOS reports bytes, others KiB).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(started: float, imported: float) -> int:
    """Run the job in ``sys.argv[1]``; ``started``/``imported`` are ``time.time()`` at start and after the import."""
    import heicconv

    job: dict[str, Any] = json.loads(sys.argv[1])
    spawned = float(job["spawned"])
    out: dict[str, Any] = {
        "python_s": started - spawned,
        "import_s": imported - started,
        "base_rss_mb": maxrss_mb(),
    }
    try:
        path = Path(job["path"])
        heicconv.Limits().check_input_bytes(path.stat().st_size)  # refused before it is read, as convert would
        data = path.read_bytes()
        fmt, backend, runs = job["format"], job["backend"], int(job["runs"])
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = heicconv.convert_with_report(data, fmt, backend=backend)
        out["first_s"] = time.perf_counter() - wall0
        out["first_cpu_s"] = time.process_time() - cpu0
        # From the parent's spawn to the first conversion's end: what a cold request waits.
        out["cold_start_s"] = time.time() - spawned
        walls, cpus = [], []
        for _ in range(runs):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            heicconv.convert(data, fmt, backend=backend)
            walls.append(time.perf_counter() - wall0)
            cpus.append(time.process_time() - cpu0)
        out["peak_rss_mb"] = maxrss_mb()
        info = heicconv.probe(data)
        chosen = heicconv.select(backend)
        out.update(
            walls_s=walls,
            cpus_s=cpus,
            wall_s=median(walls),
            cpu_s=median(cpus),
            input_bytes=len(data),
            output_bytes=len(result.data),
            width=info.width,
            height=info.height,
            versions=chosen.versions(),
        )
        if chosen.capabilities.remote:  # the times are round trips: say to where
            out["remote"] = str(getattr(chosen, "where", "") or backend)
    except heicconv.HeicconvError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["unavailable"] = isinstance(exc, heicconv.BackendUnavailableError)
    except OSError as exc:
        out["error"] = f"cannot read {job['path']}: {exc.strerror or exc}"
    out.setdefault("peak_rss_mb", maxrss_mb())  # a failed measurement's peak too: what reading it cost
    Path(job["result"]).write_text(json.dumps(out), encoding="utf-8")
    return 0
