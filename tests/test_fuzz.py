"""A short, fixed-seed fuzz run per backend (the long one is ``nox -s fuzz``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from plugin_backends import faulty_backend_env

from heicconv.testing import fuzz
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_backend

COUNT = int(os.environ.get("HEICCONV_FUZZ_COUNT", "400"))


@pytest.mark.parametrize("backend", ["ffmpeg", "pillow", "vips", "wand"])
def test_mutated_inputs_give_images_or_heicconv_errors(backend: str, tmp_path: Path) -> None:
    require_backend(backend)
    corpus = os.environ.get("HEICCONV_CORPUS")
    report = fuzz.run(backend, COUNT, seed=7, out=tmp_path, timeout=20, corpus=Path(corpus) if corpus else None)
    print(report.summary())
    assert report.inputs == COUNT
    assert report.clean, report.findings
    assert report.outcomes["ok"] > 0 and report.outcomes["HeicconvError"] > 0  # the mutations reach both ends


def test_mutations_are_reproducible() -> None:
    import random

    base = fuzz.seeds()[0]
    a = [fuzz.mutate(base, rng) for rng in [random.Random("x")] for _ in range(20)]
    b = [fuzz.mutate(base, rng) for rng in [random.Random("x")] for _ in range(20)]
    assert a == b and len(set(a)) > 10


@pytest.mark.parametrize(
    ("fault", "finding"), [("crash", "crash: the conversion's worker died (exit code -11)"), ("60", "hang")]
)
def test_a_crash_or_a_hang_is_a_finding_and_the_run_goes_on(
    fault: str, finding: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backend that crashes or hangs on photos 1000 pixels wide or more, in the pool's worker process.
    for key, value in faulty_backend_env(tmp_path, fault).items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(tmp_path))  # a spawned worker starts with its parent's sys.path
    monkeypatch.setattr(fuzz, "seeds", lambda corpus=None: [make_heic(size=(1200, 900))])
    report = fuzz.run("faulty", 6, seed=1, out=tmp_path / "findings", timeout=2)
    # The mutated inputs whose header still reads as a whole photo at least 1000 pixels wide reach the fault.
    assert report.inputs == 6 and len(report.findings) == _reaching_the_backend("1:faulty", 6) > 0
    assert all(f.split(": ", 1)[1].startswith(finding) for f in report.findings), report.findings
    # Each finding's input is saved, and inputs that fail as heicconv errors (or that the mutation shrank)
    # are answered between them by the replacement workers.
    assert sorted(p.name for p in (tmp_path / "findings").iterdir()) == sorted(f.split(":")[0] for f in report.findings)
    assert len(report.findings) + report.outcomes["HeicconvError"] + report.outcomes["ok"] == 6


def _reaching_the_backend(seed: str, count: int) -> int:
    """How many of the ``count`` inputs ``fuzz.run`` makes from ``seed`` pass the header checks at full width."""
    import random

    from heicconv.container.info import read_source
    from heicconv.errors import HeicconvError
    from heicconv.options import Limits

    rng = random.Random(seed)
    bases = fuzz.seeds()
    reaching = 0
    for _ in range(count):
        data = fuzz.mutate(rng.choice(bases), rng)
        with contextlib.suppress(HeicconvError):
            reaching += read_source(data, limits=Limits()).width >= 1000
    return reaching
