"""The ffmpeg backend against the floor on the jobs web applications run: wall time, CPU time, peak memory.

    python benchmarks/ffmpeg_speed.py [--runs 9] [--photo 12MP.heic] [--big 200MP.heic | --no-big]

The floor is what the fastest route without heicconv costs: libheif (pillow-heif) decodes to RGB, Pillow
encodes (libjpeg-turbo JPEG q85, ``thumbnail`` for a resize, libwebp WebP q85). The jobs:

* 12 MP JPEG q85, ``hdr="drop"`` and ``hdr="keep"`` (Ultra HDR: the floor drops the gain map in both);
* 12 MP JPEG ``max_size=1600`` (and 1024, 2048);
* 12 MP WebP q85;
* 1440x960 JPEG: the 12 MP photo's picture coded as phones code photos, a grid of 512x512 tiles;
* the 12 MP and 1440x960 JPEG again without the damage check's second reading of suspect tiles (marked
  ``*``): what that check costs; heicconv itself always runs it;
* 200 MP JPEG, each run in a fresh process: time, CPU and peak RSS (VmHWM, the interpreter included).

Every job runs in turn, round-robin, ``--runs`` times in one process (the 200 MP ones in child processes, in
the same rounds), so a noisy machine slows them alike: compare the ratios within one run. The load average
at the start and the end is printed with the table. Inputs default to $HEICCONV_CORPUS/real/pug.heic and
$HEICCONV_CORPUS/real/200MP.heic.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

Job = Callable[[bytes], bytes]


def floor(fmt: str = "jpeg", box: int | None = None) -> Job:
    """libheif's RGB, encoded by Pillow: what a web application does without heicconv."""

    def run(data: bytes) -> bytes:
        import pillow_heif

        heif = pillow_heif.open_heif(io.BytesIO(data))
        img = heif[heif.primary_index].to_pillow()
        if box is not None:
            img.thumbnail((box, box))
        buf = io.BytesIO()
        img.save(buf, fmt.upper(), quality=85)
        return buf.getvalue()

    return run


def ffmpeg(fmt: str = "jpeg", box: int | None = None, hdr: str = "drop") -> Job:
    import heicconv

    heicconv.select("ffmpeg")
    options = heicconv.Options(quality=85, max_size=box, hdr=hdr)
    return lambda data: heicconv.convert(data, fmt, options, backend="ffmpeg")


def unverified(job: Job) -> Job:
    """``job`` without the damage check's second reading of suspect tiles by libde265 (``backends._de265``): what
    that check costs, for the note. Not a setting: heicconv always reads the suspects again."""
    from unittest import mock

    from heicconv.backends import _de265

    def run(data: bytes) -> bytes:
        with mock.patch.object(_de265, "verifier", lambda *a: None):
            return job(data)

    return run


def small_grid(photo: bytes, size: tuple[int, int] = (1440, 960)) -> bytes:
    """``photo``'s picture at ``size``, coded as phones code photos: a grid of 512x512 HEVC tiles."""
    import pillow_heif

    from heicconv.testing.fixtures import make_grid

    heif = pillow_heif.open_heif(io.BytesIO(photo))
    picture = heif[heif.primary_index].to_pillow().convert("RGB").resize(size)
    return make_grid(picture, 512, quality=80)


def cases(photo: bytes) -> list[tuple[str, bytes, Job, Job]]:
    """(label, input, floor, ffmpeg) for each in-process job."""
    small = small_grid(photo)
    return [
        ("12 MP JPEG, hdr=drop", photo, floor(), ffmpeg()),
        ("12 MP JPEG, hdr=keep (Ultra HDR)", photo, floor(), ffmpeg(hdr="keep")),
        ("12 MP JPEG, max_size=1600", photo, floor(box=1600), ffmpeg(box=1600)),
        ("12 MP JPEG, max_size=1024", photo, floor(box=1024), ffmpeg(box=1024)),
        ("12 MP JPEG, max_size=2048", photo, floor(box=2048), ffmpeg(box=2048)),
        ("12 MP WebP", photo, floor("webp"), ffmpeg("webp")),
        ("1440x960 grid, JPEG", small, floor(), ffmpeg()),
        ("12 MP JPEG, hdr=drop, no second reading*", photo, floor(), unverified(ffmpeg())),
        ("1440x960 grid, JPEG, no second reading*", small, floor(), unverified(ffmpeg())),
    ]


def _timed(job: Job, data: bytes) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    job(data)
    return time.perf_counter() - t, time.process_time() - c


def _child(job: str, path: str) -> None:
    """In a fresh process: run ``job`` once on ``path``; print wall seconds, CPU seconds, peak RSS (MB: this
    process image's own, ``VmHWM``; ``ru_maxrss`` would be the benchmark's, which it inherits through ``exec``)."""
    from heicconv.bench.worker import maxrss_mb

    data = Path(path).read_bytes()
    fn = floor() if job == "floor" else ffmpeg()
    wall, cpu = _timed(fn, data)
    print(f"{wall:.3f} {cpu:.3f} {maxrss_mb():.1f}")


def _big(job: str, path: Path) -> tuple[float, float, float]:
    out = subprocess.run([sys.executable, __file__, "--child", job, str(path)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{job} on {path.name} failed: {out.stderr.strip().splitlines()[-1:]}")
    wall, cpu, rss = (float(x) for x in out.stdout.split())
    return wall, cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--photo", type=Path, help="a 12 MP HEIC with a gain map (default: the corpus's pug.heic)")
    parser.add_argument("--big", type=Path, help="a very large HEIC (default: the corpus's 200MP.heic)")
    parser.add_argument("--no-big", action="store_true", help="leave the 200 MP job out")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    corpus = Path(os.environ.get("HEICCONV_CORPUS", "")) / "real"
    photo = (args.photo or corpus / "pug.heic").read_bytes()
    big = None if args.no_big else (args.big or corpus / "200MP.heic")
    table = cases(photo)
    for _, data, a, b in table:  # warm up: imports, first-use costs
        a(data), b(data)
    wall: dict[tuple[int, str], list[float]] = {}
    cpu: dict[tuple[int, str], list[float]] = {}
    rss: dict[str, float] = {}
    load = os.getloadavg()[0]
    for _ in range(args.runs):
        for n, (_, data, a, b) in enumerate(table):
            for side, job in (("floor", a), ("ffmpeg", b)):
                w, c = _timed(job, data)
                wall.setdefault((n, side), []).append(w)
                cpu.setdefault((n, side), []).append(c)
        if big is not None:
            for side in ("floor", "ffmpeg"):
                w, c, m = _big(side, big)
                wall.setdefault((-1, side), []).append(w)
                cpu.setdefault((-1, side), []).append(c)
                rss[side] = max(rss.get(side, 0.0), m)
    import heicconv

    print(
        f"# {args.runs} rounds, medians; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); "
        f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; heicconv {heicconv.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print("| job | floor ms (wall / CPU) | ffmpeg ms (wall / CPU) | x floor (wall) | x floor (CPU) |")
    print("|---|---:|---:|---:|---:|")
    labels = [label for label, *_ in table] + ([f"{big.name} JPEG (fresh process)"] if big is not None else [])
    keys = list(range(len(table))) + ([-1] if big is not None else [])
    for key, label in zip(keys, labels, strict=True):
        fw, fc = statistics.median(wall[key, "floor"]), statistics.median(cpu[key, "floor"])
        w, c = statistics.median(wall[key, "ffmpeg"]), statistics.median(cpu[key, "ffmpeg"])
        floor_ms, ffmpeg_ms = f"{fw * 1e3:,.1f} / {fc * 1e3:,.0f}", f"{w * 1e3:,.1f} / {c * 1e3:,.0f}"
        print(f"| {label} | {floor_ms} | {ffmpeg_ms} | {fw / w:.2f} | {fc / c:.2f} |")
    print("\n*: without the damage check's second reading of the two most suspect tiles by libde265 (always on).")
    drop, keep = statistics.median(wall[0, "ffmpeg"]), statistics.median(wall[1, "ffmpeg"])
    print(f"\nhdr='keep' costs {keep / drop:.2f}x hdr='drop' (wall) on the ffmpeg backend.")
    if big is not None:
        print(f"{big.name}: peak RSS {rss['floor']:,.0f} MB (floor), {rss['ffmpeg']:,.0f} MB (ffmpeg backend).")


if __name__ == "__main__":
    main()
