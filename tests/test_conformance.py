"""The shipped conformance suite, run against every built-in backend."""

from __future__ import annotations

import pytest

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
