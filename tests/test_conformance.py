"""The shipped conformance suite, run against every built-in backend."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import heicconv
from heicconv.testing.conformance import ConformanceSuite


class TestFfmpeg(ConformanceSuite):
    @pytest.fixture
    def backend_name(self) -> str:
        return "ffmpeg"


class TestPillow(ConformanceSuite):
    @pytest.fixture
    def backend_name(self) -> str:
        return "pillow"


class TestVips(ConformanceSuite):
    @pytest.fixture
    def backend_name(self) -> str:
        return "vips"


class TestWand(ConformanceSuite):
    @pytest.fixture
    def backend_name(self) -> str:
        return "wand"


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def minimal_backend() -> Iterator[str]:
    """The docs' minimal third-party backend, registered as an application would."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        heicconv.register_backend("minimal", "minimal_backend:MinimalBackend")
        yield "minimal"
    finally:
        heicconv.unregister_backend("minimal")
        sys.path.remove(str(EXAMPLES))
        sys.modules.pop("minimal_backend", None)


class TestMinimalThirdPartyBackend(ConformanceSuite):
    """examples/minimal_backend.py (shown in docs/backends.md) meets the same contract as the built-in ones."""

    @pytest.fixture
    def backend_name(self, minimal_backend: str) -> str:
        return minimal_backend


def test_the_docs_show_the_minimal_backend_that_is_tested() -> None:
    docs = (EXAMPLES.parent / "docs" / "backends.md").read_text(encoding="utf-8")
    code = (EXAMPLES / "minimal_backend.py").read_text(encoding="utf-8")
    assert f"```python\n{code}```" in docs


def test_a_backend_registered_under_another_name_is_known_by_that_name(minimal_backend: str) -> None:
    from heicconv.testing.fixtures import make_heic

    heicconv.register_backend("minimal2", "minimal_backend:MinimalBackend")  # the class says name = "minimal"
    try:
        result = heicconv.convert_with_report(make_heic(size=(32, 24)), "png", backend="minimal2")
        assert result.backend == "minimal2"
        with pytest.raises(heicconv.UnsupportedOutputError, match=r"^the 'minimal2' backend cannot write avif"):
            heicconv.convert(make_heic(size=(32, 24)), "avif", backend="minimal2")
    finally:
        heicconv.unregister_backend("minimal2")


def test_a_failing_backend_is_told_what_was_expected() -> None:
    from heicconv.backends.pillow import PillowBackend

    class NoResize(PillowBackend):  # a broken backend: ignores the size heicconv decided
        def resize(self, img: Any, size: tuple[int, int]) -> Any:
            return img

    heicconv.register_backend("noresize", NoResize)
    try:
        with pytest.raises(AssertionError, match=r"noresize: .*max_size=60.*expected \(60, 40\), got \(120, 80\)"):
            ConformanceSuite().test_max_size_fits_inside_and_never_enlarges("noresize")
    finally:
        heicconv.unregister_backend("noresize")
