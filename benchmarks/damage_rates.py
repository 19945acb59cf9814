"""What each backend does with HEICs whose tile data has bytes changed: refused, invisible, or a visible picture.

    HEICCONV_CORPUS=/work/shared/corpus python benchmarks/damage_rates.py [--cases 10] [--backends pillow,vips]
    python benchmarks/damage_rates.py --cost photo.heic [--runs 7]

Each case XORs ``--bytes`` bytes (default 32) with 0xFF at a seeded random place in the middle of one seeded
random HEVC tile's data (``heicconv.testing.damage.changed_bytes``), converts the file to JPEG on every backend
and compares the result with the undamaged file's conversion on the same backend: ``refused`` (a
``heicconv.DecodeError``), ``invisible`` (PSNR >= 30 dB) or ``VISIBLE`` (accepted, PSNR < 30 dB). Inputs: the
corpus photos named by ``--files`` and a generated 1536x1024 grid of 512-pixel tiles (``fixtures.make_grid``).

Before and after in one run: a case refused is converted again with libde265's second reading of the suspect
tiles switched off (``backends._de265``), so the table shows what it adds (``before``: refused or invisible
without it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import heicconv
from heicconv.testing import damage, fixtures

THRESHOLD_DB = damage.INVISIBLE_DB


def inputs(names: list[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    corpus = os.environ.get("HEICCONV_CORPUS")
    for name in names:
        path = Path(corpus or ".", "real", name)
        if corpus and path.is_file():
            found[name] = path.read_bytes()
    from PIL import Image

    picture = Image.open(io.BytesIO(fixtures.make_image("png", (1536, 1024)))).convert("RGB")
    found["generated-grid"] = fixtures.make_grid(picture, tile=512, quality=85)
    return found


def cost(data: bytes, backends: list[str], runs: int) -> None:
    """Median conversion time to JPEG with heicconv's damage checks and with them switched off."""
    import statistics
    from unittest import mock

    from heicconv.backends import _de265, _hevc, contract, pillow, vips, wand

    off = [
        mock.patch.object(contract.PipelineBackend, "_check_damage", lambda *a: None),
        mock.patch.object(_de265, "verifier", lambda *a: None),
        mock.patch.object(_hevc, "_untouched", lambda *a: None),
        mock.patch.object(_hevc._Corners, "stale", lambda *a: None),
        *(mock.patch.object(m, "zeroed_allocations", contextlib.nullcontext) for m in (pillow, vips, wand)),
    ]
    print("| backend | with the checks (ms) | without (ms) | difference |")
    print("|---|---|---|---|")
    for backend in backends:
        times: dict[bool, list[float]] = {True: [], False: []}
        heicconv.convert(data, "jpeg", backend=backend)
        for _ in range(runs):
            for checked in (True, False):
                with contextlib.ExitStack() as stack:
                    if not checked:
                        for patch in off:
                            stack.enter_context(patch)
                    t0 = time.perf_counter()
                    heicconv.convert(data, "jpeg", backend=backend)
                    times[checked].append(1000 * (time.perf_counter() - t0))
        on, without = statistics.median(times[True]), statistics.median(times[False])
        print(
            f"| {backend} | {on:.0f} | {without:.0f} | {on - without:+.0f} ({100 * (on - without) / without:+.1f} %) |"
        )


def outcome(bad: bytes, reference: bytes, backend: str, verify: bool = True) -> tuple[str, float, str]:
    """What ``backend`` makes of ``bad``: ("refused", 0, message), ("invisible" or "VISIBLE", PSNR, ""), or
    ("other error (...)", 0, message); ``verify`` False: without libde265's reading of suspect tiles."""
    from unittest import mock

    from heicconv.backends import _de265

    with mock.patch.object(_de265, "verifier", lambda *a: None) if not verify else contextlib.nullcontext():
        try:
            out = heicconv.convert(bad, "jpeg", backend=backend)
        except heicconv.DecodeError as exc:
            return "refused", 0.0, str(exc)
        except heicconv.HeicconvError as exc:
            return f"other error ({type(exc).__name__})", 0.0, str(exc)
    db = damage.psnr(reference, out)
    return ("invisible" if db >= THRESHOLD_DB else "VISIBLE"), db, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10, help="cases per input")
    parser.add_argument("--bytes", type=int, default=32)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--backends", default="pillow,vips,wand,ffmpeg")
    parser.add_argument("--files", default="pug.heic,xiaomi.heic,arrow.heic")
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    parser.add_argument("--cost", metavar="HEIC", help="instead: time converting this file with and without the checks")
    parser.add_argument("--runs", type=int, default=7, help="with --cost")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    if args.cost:
        cost(Path(args.cost).read_bytes(), backends, args.runs)
        return 0
    totals: dict[str, Counter[str]] = {b: Counter() for b in backends}
    before: dict[str, Counter[str]] = {b: Counter() for b in backends}
    worst: dict[str, list[float]] = {b: [] for b in backends}
    seconds: dict[str, float] = dict.fromkeys(backends, 0.0)
    for name, data in inputs(args.files.split(",")).items():
        rng = random.Random(f"{args.seed}:{name}")
        cases = [(damage.changed_bytes(data, rng, args.bytes), f"case {n + 1}") for n in range(args.cases)]
        for backend in backends:
            reference = heicconv.convert(data, "jpeg", backend=backend)
            for bad, where in cases:
                t0 = time.perf_counter()
                kind, db, why = outcome(bad, reference, backend)
                seconds[backend] += time.perf_counter() - t0
                totals[backend][kind] += 1
                if kind == "VISIBLE":
                    worst[backend].append(db)
                old = outcome(bad, reference, backend, verify=False) if kind == "refused" else (kind, db, why)
                before[backend][old[0]] += 1
                if args.verbose or kind.startswith("other"):
                    was = f" (without libde265's reading: {old[0]} {old[1]:.1f} dB)" if old[0] != kind else ""
                    print(f"{name} {where} {backend}: {kind} {db:.1f} dB {why[:110]}{was}")
            sys.stdout.flush()
    print()
    print(
        f"| backend | cases | refused | invisible (>= {THRESHOLD_DB:.0f} dB) | visible, accepted | visible PSNR "
        "| refused or invisible | before | s/case |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for backend in backends:
        t, b = totals[backend], before[backend]
        n = sum(t.values())
        ok = t["refused"] + t["invisible"]
        was = b["refused"] + b["invisible"]
        dbs = ", ".join(f"{d:.0f}" for d in sorted(worst[backend])[:6])
        print(
            f"| {backend} | {n} | {t['refused']} | {t['invisible']} "
            f"| {t['VISIBLE']} ({100 * t['VISIBLE'] / max(n, 1):.0f} %)"
            f" | {dbs} | {100 * ok / max(n, 1):.1f} % | {100 * was / max(n, 1):.1f} % ({b['refused']} refused)"
            f" | {seconds[backend] / max(n, 1):.2f} |"
        )
        others = [f"{k}: {v}" for k, v in t.items() if "other" in k]
        if others:
            print("  ", *others)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
