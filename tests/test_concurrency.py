"""Many threads at once give the same bytes as one thread, on every backend."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

import heicconv
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend


@pytest.mark.parametrize("backend", ["pillow", "vips", "wand"])
def test_eight_threads_times_fifty_match_the_serial_run(backend: str) -> None:
    require_backend(backend)
    inputs = [
        fixtures.make_heic((96, 64), "RGB", exif=fixtures.exif_block()),
        fixtures.make_heic((64, 64), "RGBA"),
        fixtures.make_heic((80, 48), "L", images=2, primary=1),
        fixtures.make_image("jpeg", (64, 48), exif=fixtures.exif_block(orientation=6)),
    ]
    jobs = [
        (data, fmt, heicconv.Options(max_size=40 if n % 3 == 0 else None))
        for n, (data, fmt) in enumerate((d, f) for d in inputs for f in ("jpeg", "png", "webp"))
    ]

    def digest(job: tuple[bytes, str, heicconv.Options]) -> str:
        return hashlib.sha256(heicconv.convert(job[0], job[1], job[2], backend=backend)).hexdigest()

    serial = [digest(job) for job in jobs]
    work = [jobs[i % len(jobs)] for i in range(8 * 50)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(digest, work, timeout=600))
    assert parallel == [serial[i % len(jobs)] for i in range(len(work))]
