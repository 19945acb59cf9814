"""Worker processes with a memory cap and a timeout."""

from __future__ import annotations

import pytest

import heicconv
from heicconv.isolated import IsolatedConverter
from heicconv.testing import fixtures
from heicconv.testing.conformance import decode


@pytest.fixture(scope="module")
def pool() -> IsolatedConverter:
    with IsolatedConverter(workers=2, timeout=60, memory_mb=1024) as p:
        yield p  # type: ignore[misc]


def test_converts_and_raises_heicconv_errors(pool: IsolatedConverter) -> None:
    assert decode(pool.convert(fixtures.make_heic((40, 30)), "png")).size == (40, 30)
    with pytest.raises(heicconv.UnsupportedFormatError):
        pool.convert(b"<svg/>", "png")


@pytest.mark.parametrize("backend", ["pillow", "vips", "wand"])
def test_memory_cap_gives_limit_exceeded_and_the_pool_survives(backend: str) -> None:
    from heicconv.testing.plugin import require_backend

    require_backend(backend)
    # A worker sits at 30-70 MB after a small conversion; a 6000x4500 photo needs well over 150 MB
    # of pixels on every backend.
    big = fixtures.make_heic((6000, 4500), quality=10)
    with IsolatedConverter(workers=1, timeout=120, memory_mb=150) as small:
        assert decode(small.convert(fixtures.make_heic((40, 30)), "png", backend=backend)).size == (40, 30)
        with pytest.raises(heicconv.LimitExceededError):
            small.convert(big, "png", backend=backend)
        assert decode(small.convert(fixtures.make_heic((40, 30)), "png", backend=backend)).size == (40, 30)


def test_timeout_stops_the_worker() -> None:
    # No machine decodes and encodes 12 MP in 10 ms, so the first call times out.
    with IsolatedConverter(workers=1, timeout=0.01) as slow:
        with pytest.raises(heicconv.TimeoutError, match=r"longer than 0\.01 s"):
            slow.convert(fixtures.make_heic((4000, 3000), quality=10), "png")
        slow.timeout = 120
        assert decode(slow.convert(fixtures.make_heic((40, 30)), "png")).size == (40, 30)
