"""A bounded, reproducible fuzz run: mutated inputs through every backend, each in its own process.

    python -m heicconv.testing.fuzz --count 20000 --seed 1 --backends pillow,vips,wand [--corpus DIR]

Inputs are generated fixtures (and small corpus files with ``--corpus``) mutated with bit flips,
truncations, corrupted box sizes, swapped ``ftyp`` brands, lying ``ispe`` sizes, inserted
bytes, zero-filled tails of the same length and runs of zeros inside the data, from a fixed seed,
so a run is repeatable. Each backend runs in the worker process of a
:class:`heicconv.api.workers.IsolatedConverter`, so a segfault is caught: the pool replaces the worker
and the run records the input. Every input must give an image or a ``HeicconvError`` within
``--timeout`` seconds and 3 GB of memory; anything else (a crash, a hang, the memory cap, another
exception) is a finding, saved under ``--out``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..api.workers import IsolatedConverter
from ..errors import HeicconvError
from ..options import Options

__all__ = ["FuzzReport", "mutate", "run", "seeds"]

_BOXES = [
    b"ftyp",
    b"meta",
    b"hdlr",
    b"pitm",
    b"iinf",
    b"infe",
    b"iloc",
    b"iref",
    b"iprp",
    b"ipco",
    b"ipma",
    b"ispe",
    b"hvcC",
    b"av1C",
    b"colr",
    b"pixi",
    b"irot",
    b"imir",
    b"clap",
    b"auxC",
    b"idat",
    b"mdat",
    b"thmb",
    b"auxl",
    b"dimg",
    b"cdsc",
]
_BRANDS = [b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis", b"hevc", b"isom", b"jpeg", b"\x00\x00\x00\x00"]


def seeds(corpus: Path | None = None, max_bytes: int = 300_000) -> list[bytes]:
    """The inputs mutations start from: generated fixtures, and small corpus files when given."""
    from PIL import Image

    from . import fixtures

    out = [
        fixtures.make_heic((32, 24)),
        fixtures.make_heic((24, 24), "RGBA"),
        fixtures.make_heic((16, 16), "L"),
        fixtures.make_heic((40, 24), images=2, primary=1, thumbnail=8, exif=fixtures.exif_block()),
        fixtures.set_heif_transform(fixtures.make_heic((24, 16), "RGBA"), 90, 0),
        fixtures.make_image("jpeg", (32, 24), exif=fixtures.exif_block(orientation=6)),
        fixtures.make_image("png", (32, 24), mode="RGBA"),
        fixtures.make_image("webp", (32, 24)),
        fixtures.make_image("tiff", (32, 24)),
    ]
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (10, 200, 30)).save(buf, "AVIF", quality=50)
    out.append(buf.getvalue())
    if corpus is not None:
        for path in sorted(corpus.rglob("*")):
            if (
                path.is_file()
                and path.suffix.lower() in (".heic", ".heif", ".hif")
                and path.stat().st_size <= max_bytes
            ):
                out.append(path.read_bytes())
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation (sometimes two) of ``data``."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2))):
        kind = rng.randrange(9)
        if not buf:
            buf = bytearray(rng.randbytes(rng.randrange(1, 64)))
            continue
        if kind == 0:  # bit flips
            for _ in range(rng.randrange(1, 9)):
                i = rng.randrange(len(buf))
                buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncation
            del buf[rng.randrange(len(buf)) :]
        elif kind == 2 or kind == 3:  # a box's size field
            found = [i - 4 for b in _BOXES for i in _find_all(buf, b) if i >= 4]
            if found:
                pos = rng.choice(found)
                size = struct.unpack_from(">I", buf, pos)[0]
                new = rng.choice((0, 1, 7, 8, size - 1, size + 1, size * 2, 0xFFFFFFFF, rng.randrange(1 << 32)))
                struct.pack_into(">I", buf, pos, new & 0xFFFFFFFF)
        elif kind == 4:  # ftyp brands
            for i in _find_all(buf, b"ftyp")[:1]:
                for off in range(4, 24, 4):
                    if i + off + 4 <= len(buf) and rng.random() < 0.5:
                        buf[i + off : i + off + 4] = rng.choice(_BRANDS)
        elif kind == 5:  # ispe sizes that lie
            for i in _find_all(buf, b"ispe"):
                if i + 16 <= len(buf) and rng.random() < 0.7:
                    w, h = rng.choice(((0, 0), (1, 1), (40000, 40000), (65535, 1), (rng.randrange(1 << 16),) * 2))
                    struct.pack_into(">II", buf, i + 8, w, h)
        elif kind == 7:  # a zero-filled tail, the length unchanged (an upload that stopped early)
            cut = rng.randrange(len(buf))
            buf[cut:] = bytes(len(buf) - cut)
        elif kind == 8:  # a run of zeros inside (a failed write)
            i = rng.randrange(len(buf))
            n = min(len(buf) - i, rng.randrange(1, 512))
            buf[i : i + n] = bytes(n)
        else:  # inserted or overwritten bytes
            i = rng.randrange(len(buf))
            junk = rng.randbytes(rng.randrange(1, 32))
            if rng.random() < 0.5:
                buf[i:i] = junk
            else:
                buf[i : i + len(junk)] = junk
    return bytes(buf)


def _find_all(buf: bytearray, needle: bytes) -> list[int]:
    out: list[int] = []
    i = buf.find(needle)
    while i >= 0 and len(out) < 64:
        out.append(i)
        i = buf.find(needle, i + 1)
    return out


@dataclass
class FuzzReport:
    backend: str
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)  # files saved under --out
    seconds: float = 0.0
    slowest: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        top = ", ".join(f"{k} {v}" for k, v in self.outcomes.most_common())
        return (
            f"{self.backend}: {self.inputs} inputs in {self.seconds:.0f} s (slowest {self.slowest:.2f} s); "
            f"{top}; findings: {len(self.findings)}"
        )


#: A worker that needs more than this is a finding: limits checked from the header should refuse first.
MEMORY_MB = 3072


def _outcome(pool: IsolatedConverter, data: bytes, backend: str) -> str:
    """``ok``, ``HeicconvError:<class>`` (both fine), or a finding: ``hang``, ``memory``, ``crash ...`` or the
    exception that escaped heicconv's errors."""
    try:
        pool.convert(data, "jpeg", Options(max_size=256), backend=backend)
    except HeicconvError as exc:
        event = exc.worker_event
        if event is None:
            return f"HeicconvError:{type(exc).__name__}"
        if event == "timeout":
            return "hang"
        if event == "died":
            return f"crash: {exc}"
        if event == "bug":
            return str(exc).removeprefix("the worker failed: ")
        return event
    return "ok"


def run(
    backend: str, count: int, seed: int, *, out: Path | None = None, timeout: float = 10.0, corpus: Path | None = None
) -> FuzzReport:
    """Fuzz one backend with ``count`` mutated inputs from ``seed``."""
    rng = random.Random(f"{seed}:{backend}")
    bases = seeds(corpus)
    report = FuzzReport(backend)
    start = time.monotonic()
    # One worker process, killed and replaced by the pool after a hang, a crash or too much memory.
    with IsolatedConverter(workers=1, timeout=timeout, memory_mb=MEMORY_MB) as pool:
        for n in range(count):
            data = mutate(rng.choice(bases), rng)
            t0 = time.monotonic()
            answer = _outcome(pool, data, backend)
            report.slowest = max(report.slowest, time.monotonic() - t0)
            report.inputs += 1
            report.outcomes[answer.split(":")[0]] += 1
            if answer.startswith(("ok", "HeicconvError")):
                continue
            name = f"{backend}-{seed}-{n}.bin"
            report.findings.append(f"{name}: {answer}")
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(data)
    report.seconds = time.monotonic() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="pillow,vips,wand")
    parser.add_argument("--count", type=int, default=20_000, help="inputs per backend")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take")
    parser.add_argument("--corpus", type=Path, default=os.environ.get("HEICCONV_CORPUS") or None)
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    reports = [
        run(b, args.count, args.seed, out=args.out, timeout=args.timeout, corpus=args.corpus)
        for b in args.backends.split(",")
    ]
    for r in reports:
        print(
            json.dumps(
                {
                    "backend": r.backend,
                    "inputs": r.inputs,
                    "outcomes": r.outcomes,
                    "findings": r.findings,
                    "seconds": round(r.seconds, 1),
                    "slowest": round(r.slowest, 3),
                }
            )
            if args.json
            else r.summary()
        )
        for f in r.findings[:20]:
            print("   ", f)
    return 0 if all(r.clean for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
