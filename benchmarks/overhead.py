"""What heicconv costs over calling each library directly: HEIC 12 MP -> JPEG q85.

    python benchmarks/overhead.py [--runs 9] [--input photo.heic]

Without --input it uses $HEICCONV_CORPUS/real/pug.heic (a 12 MP iPhone-style photo) when
HEICCONV_CORPUS is set, else a generated 4032x3024 HEIC. Each backend's direct job is
what a user would write without heicconv: decode the primary image, encode JPEG at
quality 85 keeping the ICC profile and EXIF (heicconv with ``hdr="drop"``, as the direct calls
drop a gain map). Runs alternate between the two so drift
on a noisy machine hits both alike; the table shows medians of wall time and of the process's
CPU time (every thread's), which moves far less than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import heicconv


def _input(path: str | None) -> tuple[str, bytes]:
    if path:
        return path, Path(path).read_bytes()
    corpus = os.environ.get("HEICCONV_CORPUS")
    if corpus and (Path(corpus) / "real" / "pug.heic").is_file():
        p = Path(corpus) / "real" / "pug.heic"
        return str(p), p.read_bytes()
    from heicconv.testing.fixtures import make_heic

    return "generated 4032x3024", make_heic(size=(4032, 3024), quality=80)


def direct_pillow(data: bytes) -> bytes:
    import pillow_heif

    heif = pillow_heif.open_heif(io.BytesIO(data))
    frame = heif[heif.primary_index]
    img = frame.to_pillow()
    buf = io.BytesIO()
    params = {}
    if frame.info.get("icc_profile"):
        params["icc_profile"] = frame.info["icc_profile"]
    img.save(buf, "JPEG", quality=85, **params)
    return buf.getvalue()


def direct_vips(data: bytes) -> bytes:
    import pyvips

    out: bytes = pyvips.Image.heifload_buffer(data, access="sequential").jpegsave_buffer(Q=85)
    return out


def direct_wand(data: bytes) -> bytes:
    from wand.image import Image

    with Image(blob=data, format="heic") as img:
        img.format = "jpeg"
        img.compression_quality = 85
        out: bytes = img.make_blob()
        return out


DIRECT: dict[str, Callable[[bytes], bytes]] = {"pillow": direct_pillow, "vips": direct_vips, "wand": direct_wand}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--input")
    parser.add_argument("--backends", default="pillow,vips,wand")
    args = parser.parse_args(argv)
    name, data = _input(args.input)
    info = heicconv.probe(data)
    print(f"input: {name} ({info.width}x{info.height}, {len(data):,} bytes), JPEG q85, median of {args.runs} runs")
    print()
    print("| backend | direct (ms) | heicconv (ms) | overhead | direct CPU (ms) | heicconv CPU (ms) | CPU overhead |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    # The same work as the direct calls: they drop an HDR gain map, so heicconv does too here
    # (benchmarks/hdr_cost.py measures what keeping it costs).
    options = heicconv.Options(quality=85, hdr="drop")
    for backend in args.backends.split(","):
        try:
            heicconv.select(backend)  # loads pillow-heif before pyvips, as heicconv always does
        except heicconv.BackendUnavailableError as exc:
            print(f"| {backend} | unavailable: {exc} | | |")
            continue
        direct = DIRECT[backend]
        direct(data)
        heicconv.convert(data, "jpeg", options, backend=backend)  # warm-up
        wall: tuple[list[float], list[float]] = ([], [])
        cpu: tuple[list[float], list[float]] = ([], [])
        for _ in range(args.runs):
            for n in (0, 1):
                start, start_cpu = time.perf_counter(), time.process_time()
                if n == 0:
                    direct(data)
                else:
                    heicconv.convert(data, "jpeg", options, backend=backend)
                wall[n].append(time.perf_counter() - start)
                cpu[n].append(time.process_time() - start_cpu)
        d, o = (statistics.median(times) * 1000 for times in wall)
        dc, oc = (statistics.median(times) * 1000 for times in cpu)
        row = [f"{d:.1f}", f"{o:.1f}", f"{100 * (o - d) / d:+.1f}%"]
        row += [f"{dc:.1f}", f"{oc:.1f}", f"{100 * (oc - dc) / dc:+.1f}%"]
        print(f"| {backend} | " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
