"""Workers share the CPUs: each of N workers' image libraries gets CPUs // N threads (issue 13, item 4).

Speed is measured by benchmarks/batch_threads.py and recorded in docs/performance.md, never asserted here;
these tests check the mechanism: what each library is set to in a worker of a pool.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import heicconv
from heicconv.api.workers import IsolatedConverter
from heicconv.backends import registry, threads
from heicconv.cli.run import Item, Outcome, execute
from heicconv.errors import BackendUnavailableError
from heicconv.options import Limits, Options
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

LIBRARIES = {"pillow": "pillow_heif", "vips": "libvips", "wand": "imagemagick", "ffmpeg": "ffmpeg"}


@pytest.fixture(autouse=True)
def _unshared() -> Iterator[None]:
    threads.reset()
    yield
    threads.reset()


def report_threads(item: Item) -> Outcome:
    """A batch's work that loads every backend it can and reports each library's thread setting (in a worker)."""
    for name in LIBRARIES:
        with contextlib.suppress(BackendUnavailableError):
            registry.get(name)
    return Outcome("converted", note=json.dumps({"cpus": threads.cpus(), "settings": threads.settings()}))


def _items(tmp_path: Path, count: int) -> list[Item]:
    return [
        Item(str(tmp_path / f"{i}.heic"), str(tmp_path / f"{i}.jpg"), "", "jpeg", Options(), Limits(), None, False)
        for i in range(count)
    ]


@pytest.mark.parametrize("workers", [2, 4])
def test_each_worker_of_a_batch_gives_every_library_its_share(tmp_path: Path, workers: int) -> None:
    outcomes: dict[int, Outcome] = {}
    execute(_items(tmp_path, workers), workers, outcomes.__setitem__, lambda _: None, work=report_threads)
    assert len(outcomes) == workers
    for outcome in outcomes.values():
        said = json.loads(outcome.note)
        share = min(said["cpus"], -(-2 * said["cpus"] // workers))  # twice a worker's share, at most every CPU
        assert said["settings"]["ffmpeg"] == share
        loaded = {LIBRARIES[n] for n in LIBRARIES if registry.status(n).available}
        assert {k: v for k, v in said["settings"].items() if k in loaded} == dict.fromkeys(loaded, share)
        assert os.environ.get("VIPS_CONCURRENCY") is None  # the parent process's environment is untouched


def test_an_isolated_worker_decodes_with_its_share_of_the_cpus() -> None:
    require_backend("ffmpeg")
    with IsolatedConverter(workers=2, timeout=60) as pool:
        result = pool.convert_with_report(fixtures.make_heic((128, 96)), "jpeg", backend="ffmpeg")
    route = next(n for n in result.notes if n.startswith("decoded by FFmpeg"))
    assert f"1 tile(s), {threads.threads_for(2)} thread(s))" in route


def test_share_sets_loaded_libraries_and_the_environment_for_later_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend("pillow")
    heicconv.select("pillow")  # pillow_heif loaded
    import pillow_heif

    before = pillow_heif.options.DECODE_THREADS
    monkeypatch.setattr(threads, "cpus", lambda: 8)
    monkeypatch.delenv("MAGICK_THREAD_LIMIT", raising=False)
    monkeypatch.setenv("VIPS_CONCURRENCY", "3")  # the user's own setting wins
    assert threads.share(4) == 4  # twice each worker's 2 CPUs
    assert pillow_heif.options.DECODE_THREADS == 4 and threads.threads() == 4
    assert os.environ["MAGICK_THREAD_LIMIT"] == "4" and os.environ["VIPS_CONCURRENCY"] == "3"
    assert threads.share(16) == 1 and pillow_heif.options.DECODE_THREADS == 1
    threads.reset()
    assert (pillow_heif.options.DECODE_THREADS, threads.threads()) == (before, 8)
    assert "MAGICK_THREAD_LIMIT" not in os.environ and os.environ["VIPS_CONCURRENCY"] == "3"


def test_the_ffmpeg_backend_follows_the_share_unless_given_a_count(monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend("ffmpeg")
    ffmpeg = heicconv.select("ffmpeg")
    monkeypatch.setattr(threads, "cpus", lambda: 6)
    threads.share(4)
    result = heicconv.convert_with_report(fixtures.make_heic((128, 96)), "jpeg", backend="ffmpeg")
    assert any("1 tile(s), 3 thread(s))" in n for n in result.notes)
    monkeypatch.setattr(ffmpeg, "threads", 5)
    result = heicconv.convert_with_report(fixtures.make_heic((128, 96)), "jpeg", backend="ffmpeg")
    assert any("1 tile(s), 5 thread(s))" in n for n in result.notes)


@pytest.mark.parametrize(("quota", "expected"), [(None, 64), (1.5, 2), (0.2, 1), (100.0, 64)])
def test_a_cgroup_cpu_quota_caps_the_cpus(monkeypatch: pytest.MonkeyPatch, quota: float | None, expected: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)), raising=False)
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: quota)  # docker run --cpus 1.5 gives 1.5
    assert threads.cpus() == expected
    assert threads.threads_for(4) == min(expected, -(-2 * expected // 4))
    assert threads.threads_for(1) == expected
