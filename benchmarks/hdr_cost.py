"""What keeping the HDR gain map costs: JPEG size and conversion time with ``hdr="keep"`` against ``hdr="drop"``.

    HEICCONV_CORPUS=../shared/corpus python benchmarks/hdr_cost.py [--repeat 5] [--max-size 2048]

For each gain-map photo of the corpus (without HEICCONV_CORPUS: a generated 1024x768 one) and each backend
installed: median wall time of ``repeat`` conversions and the output size, both ways. Prints a Markdown table.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-size", default=None, help="also resize, e.g. 2048")
    args = parser.parse_args()
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
