"""The ffmpeg backend against the decode floor: HEIC -> JPEG q85, wall time, CPU time and peak memory.

    python benchmarks/ffmpeg_speed.py [--runs 11] [--input photo.heic ...]
    python benchmarks/ffmpeg_speed.py --memory 200MP.heic

The floor is what the fastest route without heicconv costs: libheif (pillow-heif) decodes to RGB,
libjpeg-turbo (Pillow) encodes JPEG q85. Every job runs in turn, round-robin, ``--runs`` times in one
process, so a noisy machine slows them alike: compare ratios within one run. Inputs default to
$HEICCONV_CORPUS/real/pug.heic (12 MP), nokia_alpha.heic (1440x960, an overlay) and pug's picture
coded as a 1440x960 grid of 512x512 tiles.

``--memory`` runs each job once in a fresh process and reports its peak RSS (ru_maxrss), for the
whole-picture route and the strip route of the ffmpeg backend.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def floor(data: bytes) -> bytes:
    import pillow_heif

    heif = pillow_heif.open_heif(io.BytesIO(data))
    img = heif[heif.primary_index].to_pillow()
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def backend_job(name: str, strips: bool | None = None) -> Callable[[bytes], bytes]:
    import heicconv

    conv = heicconv.select(name)
    if strips is not None:
        conv.strip_pixels = 0 if strips else 1 << 62  # type: ignore[attr-defined]
    options = heicconv.Options(quality=85, hdr="drop")  # the floor drops a gain map too
    return lambda data: heicconv.convert(data, "jpeg", options, backend=name)


def jobs() -> dict[str, Callable[[bytes], bytes]]:
    return {
        "floor": floor,
        "ffmpeg": backend_job("ffmpeg"),
        "pillow": backend_job("pillow"),
        "vips": backend_job("vips"),
    }


def small_grid(photo: Path, size: tuple[int, int] = (1440, 960)) -> tuple[str, bytes]:
    """``photo``'s picture at ``size``, coded as phones code photos: a grid of 512x512 HEVC tiles (a 1440x960
    photo from a phone is usually a single image or an overlay, which the ffmpeg backend hands to libheif)."""
    import pillow_heif

    from heicconv.testing.fixtures import make_grid

    heif = pillow_heif.open_heif(io.BytesIO(photo.read_bytes()))
    picture = heif[heif.primary_index].to_pillow().convert("RGB").resize(size)
    return f"{photo.stem} as a {size[0]}x{size[1]} grid", make_grid(picture, 512, quality=80)


def speed(inputs: list[tuple[str, bytes]], runs: int) -> None:
    import heicconv

    table = jobs()
    print(f"# {runs} runs round-robin per input; {os.cpu_count()} CPUs; heicconv {heicconv.__version__}")
    print("| input | job | median ms | median CPU ms | x floor (wall) | x floor (CPU) |")
    print("|---|---|---|---|---|---|")
    for label, data in inputs:
        for job in table.values():  # warm up: imports, first-use costs
            job(data)
        wall: dict[str, list[float]] = {name: [] for name in table}
        cpu: dict[str, list[float]] = {name: [] for name in table}
        for _ in range(runs):
            for name, job in table.items():
                t, c = time.perf_counter(), time.process_time()
                job(data)
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
        fw, fc = statistics.median(wall["floor"]), statistics.median(cpu["floor"])
        for name in table:
            w, c = statistics.median(wall[name]), statistics.median(cpu[name])
            print(f"| {label} | {name} | {w * 1000:.1f} | {c * 1000:.1f} | {fw / w:.2f} | {fc / c:.2f} |")


def _one(job: str, path: str) -> None:
    """Child process: run ``job`` once on ``path``; print seconds and peak RSS."""
    data = Path(path).read_bytes()
    if job == "floor":
        fn = floor
    elif job.startswith("ffmpeg-"):
        fn = backend_job("ffmpeg", strips=job == "ffmpeg-strips")
    else:
        fn = backend_job(job)
    t = time.perf_counter()
    out = fn(data)
    print(f"{time.perf_counter() - t:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} {len(out)}")


def memory(path: Path, runs: int) -> None:
    names = ["floor", "ffmpeg-whole", "ffmpeg-strips", "pillow", "vips"]
    print(f"# {path.name}: peak RSS of one conversion per fresh process (the input's bytes included), {runs} runs")
    print("| job | median s | peak RSS MB | x floor (wall) |")
    print("|---|---|---|---|")
    results: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for _ in range(runs):
        for name in names:
            cmd = [sys.executable, __file__, "--one", name, str(path)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
            results[name].append((float(out[0]), float(out[1])))
    fw = statistics.median(s for s, _ in results["floor"])
    for name in names:
        s = statistics.median(x for x, _ in results[name])
        rss = max(m for _, m in results[name])
        print(f"| {name} | {s:.2f} | {rss:.0f} | {fw / s:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--input", action="append", type=Path)
    parser.add_argument("--memory", type=Path, help="a (large) HEIC: peak RSS per job, fresh process each")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(*args.one)
        return
    if args.memory:
        memory(args.memory, args.runs)
        return
    if args.input:
        inputs = [(path.name, path.read_bytes()) for path in args.input]
    else:
        corpus = Path(os.environ.get("HEICCONV_CORPUS", "")) / "real"
        inputs = [(name, (corpus / name).read_bytes()) for name in ("pug.heic", "nokia_alpha.heic")]
        inputs.append(small_grid(corpus / "pug.heic"))
    speed(inputs, args.runs)


if __name__ == "__main__":
    main()
