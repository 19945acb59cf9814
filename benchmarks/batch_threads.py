"""Batch throughput: ``heicconv convert -j 1`` and ``-j 2`` on 48 photos, files/s and CPU utilisation, before and after.

    python benchmarks/batch_threads.py [--photos 48] [--before main] [--backends pillow,vips,wand,ffmpeg]

"Before" is the code of a git revision (``--before``, extracted with ``git archive`` into a temporary
folder), "after" is this checkout; both run as ``python -m heicconv convert`` in a fresh process with
that code first on ``PYTHONPATH``. The runs are interleaved (each round runs every backend, -j and tree
once, in turn), so a busy machine slows them alike: compare ratios within one run.

CPU utilisation is the CPU time of the command and its workers (``os.times`` of waited-for children:
user + system) divided by wall time times the CPUs: 100% is every core busy for the whole batch. On a
machine shared with other work it cannot reach 100%, and the scheduler gives a process with more
threads a larger share of a contended CPU, which favours oversubscription; so the table also gives
CPU time per file, which contention hardly changes, and the load average seen before the runs.
The input is ``$HEICCONV_CORPUS/real/pug.heic`` (12 MP), linked ``--photos`` times (``--input`` for another).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def extract(revision: str, into: Path) -> Path:
    """The ``heicconv`` package as it was at ``revision``, in ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "heicconv"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run_batch(tree: Path, photos: Path, out: Path, backend: str, jobs: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this command and its workers) of one batch."""
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEICCONV_", "VIPS_", "MAGICK_", "OMP_"))}
    env["PYTHONPATH"] = str(tree)
    cmd = [sys.executable, "-m", "heicconv", "convert", str(photos), "-o", str(out), "--backend", backend]
    cmd += ["-j", str(jobs), "-q"]
    before = os.times()
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, cwd=out.parent)  # no heicconv.toml of the checkout
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--input", type=Path, help="the photo to convert (default: the corpus's real/pug.heic)")
    parser.add_argument("--before", default="main", help="git revision for 'before' (default main)")
    parser.add_argument("--backends", default="pillow,vips,wand,ffmpeg")
    parser.add_argument("--jobs", default="1,2", help="comma-separated -j values (default 1,2)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians are reported")
    args = parser.parse_args(argv)
    photo = args.input or Path(os.environ.get("HEICCONV_CORPUS", "/work/shared/corpus"), "real", "pug.heic")
    cpus = os.cpu_count() or 1
    jobs = [int(j) for j in args.jobs.split(",")]
    backends = args.backends.split(",")
    results: dict[tuple[str, int, str], list[tuple[float, float]]] = {}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="heicconv-batch-") as tmp:
        work = Path(tmp)
        trees = {"before": extract(args.before, work / "before"), "after": ROOT}
        photos = work / "photos"
        photos.mkdir()
        for i in range(args.photos):
            (photos / f"IMG_{i:04d}.heic").symlink_to(photo.resolve())
        for _ in range(args.rounds):
            for backend in backends:
                for j in jobs:
                    for label, tree in trees.items():
                        loads.append(os.getloadavg()[0])
                        runs = results.setdefault((backend, j, label), [])
                        runs.append(run_batch(tree, photos, work / "out", backend, j))
                        wall, cpu = runs[-1]
                        print(f"  {backend} -j {j} {label}: {wall:.1f} s, CPU {cpu:.1f} s", file=sys.stderr, flush=True)
    rev = ["git", "-C", str(ROOT), "rev-parse", "--short", args.before]
    commit = subprocess.run(rev, capture_output=True, text=True)
    before = f"{args.before} ({commit.stdout.strip()})"
    print(f"{args.photos} x {photo.name} to JPEG; {cpus} CPUs; before = {before}, after = this checkout; ")
    print(
        f"medians of {args.rounds} interleaved round(s); 1-minute load average before a run: "
        f"{min(loads):.1f} to {max(loads):.1f}"
    )
    print()
    print(
        "| backend | -j | before files/s | before CPU use | before CPU ms/file "
        "| after files/s | after CPU use | after CPU ms/file | after / before (files/s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rate: dict[tuple[str, int, str], float] = {}
    for backend in backends:
        for j in jobs:
            cells = []
            for label in trees:
                runs = results[(backend, j, label)]
                wall = statistics.median(w for w, _ in runs)
                cpu = statistics.median(c for _, c in runs)
                rate[(backend, j, label)] = args.photos / wall
                cells += [f"{args.photos / wall:.2f}", f"{cpu / (wall * cpus):.0%}", f"{cpu * 1000 / args.photos:.0f}"]
            gain = rate[(backend, j, "after")] / rate[(backend, j, "before")]
            print(f"| {backend} | {j} | {' | '.join(cells)} | {gain:.2f}x |")
    if len(jobs) > 1:
        low, high = min(jobs), max(jobs)
        print()
        print(f"| backend | -j {high} / -j {low}, before | -j {high} / -j {low}, after |")
        print("|---|---:|---:|")
        for backend in backends:
            ratios = [rate[(backend, high, label)] / rate[(backend, low, label)] for label in ("before", "after")]
            print(f"| {backend} | {ratios[0]:.2f}x | {ratios[1]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
