"""Every backend's output on the corpus, as digests: proof that a refactor changed no byte.

    python benchmarks/output_digests.py > before.json      # on the old tree
    python benchmarks/output_digests.py > after.json       # on the new tree
    python benchmarks/output_digests.py --compare before.json after.json

For each file under $HEICCONV_CORPUS (``real``, ``synthetic``, ``corrupted``), each local backend and
each job (JPEG, PNG, WebP, AVIF, TIFF at default options; JPEG with ``max_size=1024``; JPEG with
``metadata="strip"``), it records the SHA-256 of the output, or the error's class and message. Files
above 50 MP run the JPEG jobs only (a PNG of 200 MP says nothing more and takes minutes), and files
above 4 MP skip AVIF and TIFF (AVIF encodes a 12 MP photo in seconds; the small files cover both
writers). Jobs run in ``--jobs`` processes; the output is sorted, so two runs compare line by line.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import sys
from pathlib import Path

BACKENDS = ("pillow", "vips", "wand", "ffmpeg")
JOBS: dict[str, tuple[str, dict[str, object]]] = {
    "jpeg": ("jpeg", {}),
    "png": ("png", {}),
    "webp": ("webp", {}),
    "avif": ("avif", {}),
    "tiff": ("tiff", {}),
    "jpeg-1024": ("jpeg", {"max_size": 1024}),
    "jpeg-strip": ("jpeg", {"metadata": "strip"}),
}
BIG = 50_000_000
LARGE = 4_000_000


def run_one(path: str, backend: str, job: str) -> tuple[str, str]:
    import heicconv

    fmt, fields = JOBS[job]
    key = f"{Path(path).parent.name}/{Path(path).name} {backend} {job}"
    try:
        out = heicconv.convert(Path(path).read_bytes(), fmt, heicconv.Options(**fields), backend=backend)  # type: ignore[arg-type]
    except heicconv.HeicconvError as exc:
        return key, f"{type(exc).__name__}: {exc}"
    return key, hashlib.sha256(out).hexdigest()


def cases(corpus: Path) -> list[tuple[str, str, str]]:
    import heicconv

    found = []
    for folder in ("real", "synthetic", "corrupted"):
        for path in sorted((corpus / folder).glob("*")):
            try:
                info = heicconv.probe(path.read_bytes())
                pixels = info.width * info.height
            except heicconv.HeicconvError:
                pixels = 0
            for backend in BACKENDS:
                for job in JOBS:
                    if (pixels > BIG and not job.startswith("jpeg")) or (pixels > LARGE and job in ("avif", "tiff")):
                        continue
                    found.append((str(path), backend, job))
    return found


def compare(before: Path, after: Path) -> int:
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    for key in changed:
        print(f"{key}\n  before: {old.get(key)}\n  after:  {new.get(key)}")
    print(f"{len(old)} outputs before, {len(new)} after, {len(changed)} differ")
    return 1 if changed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    corpus = Path(os.environ.get("HEICCONV_CORPUS", ""))
    if not (corpus / "manifest.json").is_file():
        parser.error("set HEICCONV_CORPUS to the corpus folder (the one with manifest.json)")
    todo = cases(corpus)
    with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        results = dict(pool.map(run_one, *zip(*todo, strict=True), chunksize=4))
    json.dump(dict(sorted(results.items())), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
