"""A short, fixed-seed fuzz run per backend (the long one is ``nox -s fuzz``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from heicconv.testing import fuzz
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
