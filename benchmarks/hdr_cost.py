"""What keeping the HDR gain map costs: JPEG size and conversion time with ``hdr="keep"`` against ``hdr="drop"``.

    HEICCONV_CORPUS=../shared/corpus python benchmarks/hdr_cost.py [--repeat 5] [--max-size 2048]
    python benchmarks/hdr_cost.py --tone-map [--size 4032x3024] [--repeat 3]

For each gain-map photo of the corpus (without HEICCONV_CORPUS: a generated 1024x768 one) and each backend
installed: median wall time of ``repeat`` conversions and the output size, both ways. Prints a Markdown table.

``--tone-map``: what PQ and HLG sources cost (issue 14, item 5). Generated 10-bit HEICs of ``--size`` (a
ramp from black to 1,000 cd/m² with colour across it, coded lossy as a camera would), converted to JPEG with
``hdr="drop"`` (tone mapping only) and ``"keep"`` (plus the computed gain map), against the same pixels
signalled as SDR (BT.709 transfer: no tone mapping), which is what every such file cost before.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import heicconv
from heicconv.testing import fixtures

PHOTOS = ("pug.heic", "iphone16promax_ios18.heic", "iphone15pro_ios26.heic", "aux_YCbCr.heic")


def _ramp_heic(size: tuple[int, int], transfer: int) -> bytes:
    """A 10-bit HEIC: signal rising left to right (to PQ 1000 cd/m² or HLG 100 %), hue changing top to bottom."""
    import io

    import numpy as np
    import pillow_heif

    w, h = size
    top = 0.7518 if transfer == 16 else 1.0  # PQ signal of 1000 cd/m², or HLG's peak
    x = np.linspace(0.0, top, w, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    rgb = np.stack([x * (0.6 + 0.4 * y), x * (1.0 - 0.3 * y), x * (0.7 + 0.3 * (1 - y))], axis=2)
    rng = np.random.default_rng(1)
    rgb = np.clip(rgb + rng.normal(0, 0.004, rgb.shape).astype(np.float32), 0, 1)  # sensor-like noise
    codes = (np.round(rgb * 1023).astype(np.uint16) << 6).astype("<u2")
    heif = pillow_heif.HeifFile()
    heif.add_frombytes("RGB;16", size, codes.tobytes())
    heif[0].info["nclx_profile"] = {
        "color_primaries": 9,
        "transfer_characteristics": transfer,
        "matrix_coefficients": 9,
        "full_range_flag": 1,
    }
    out = io.BytesIO()
    heif.save(out, quality=90)
    return out.getvalue()


def tone_map_cost(size: tuple[int, int], repeat: int) -> None:
    print(f"PQ and HLG sources, {size[0]}x{size[1]}, 10-bit, to JPEG (quality 85); medians of {repeat}")
    print()
    print("| source | backend | SDR-signalled (before) | hdr=drop (tone mapped) | hdr=keep (+ gain map) |")
    print("|---|---|---|---|---|")
    sources = {name: _ramp_heic(size, transfer) for name, transfer in (("PQ", 16), ("HLG", 18), ("SDR", 1))}
    for name in ("PQ", "HLG"):
        for backend in ("pillow", "vips", "wand", "ffmpeg"):
            try:
                heicconv.select(backend)
            except heicconv.BackendUnavailableError:
                continue
            cells = []
            for data, hdr in ((sources["SDR"], "drop"), (sources[name], "drop"), (sources[name], "keep")):
                runs = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    out = heicconv.convert(data, "jpeg", heicconv.Options(hdr=hdr), backend=backend)
                    runs.append(time.perf_counter() - start)
                cells.append(f"{statistics.median(runs):.2f} s, {len(out) / 1e3:,.0f} kB")
            print(f"| {name} | {backend} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-size", default=None, help="also resize, e.g. 2048")
    parser.add_argument("--tone-map", action="store_true", help="measure PQ and HLG sources instead")
    parser.add_argument("--size", default="4032x3024", help="with --tone-map: the generated photos' size")
    args = parser.parse_args()
    if args.tone_map:
        width, height = (int(v) for v in args.size.lower().split("x"))
        tone_map_cost((width, height), args.repeat)
        return
    corpus = os.environ.get("HEICCONV_CORPUS")
    photos = (
        {name: (Path(corpus) / "real" / name).read_bytes() for name in PHOTOS}
        if corpus
        else {"generated 1024x768": fixtures.make_hdr_heic((1024, 768))}
    )
    print("| photo | backend | JPEG (drop) | JPEG (keep) | larger by | time (drop) | time (keep) | slower by |")
    print("|---|---|---|---|---|---|---|---|")
    for name, data in photos.items():
        for backend in ("pillow", "vips", "wand"):
            try:
                heicconv.select(backend)
            except heicconv.BackendUnavailableError:
                continue
            sizes, times = {}, {}
            for hdr in ("drop", "keep"):
                options = heicconv.Options(hdr=hdr, max_size=args.max_size)
                runs = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    out = heicconv.convert(data, "jpeg", options, backend=backend)
                    runs.append(time.perf_counter() - start)
                sizes[hdr], times[hdr] = len(out), statistics.median(runs)
            print(
                f"| {name} | {backend} | {sizes['drop'] / 1e3:,.0f} kB | {sizes['keep'] / 1e3:,.0f} kB"
                f" | {100 * (sizes['keep'] / sizes['drop'] - 1):.1f}% | {times['drop']:.2f} s | {times['keep']:.2f} s"
                f" | {100 * (times['keep'] / times['drop'] - 1):.0f}% |"
            )


if __name__ == "__main__":
    main()
