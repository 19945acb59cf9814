from __future__ import annotations

from collections.abc import Iterator

import pytest

import heicconv


@pytest.fixture(autouse=True)
def _clean_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test starts from defaults: no configure(), no HEICCONV_* variables but the test-control ones."""
    import os

    for name in list(os.environ):
        if name.startswith("HEICCONV_") and name not in ("HEICCONV_CORPUS", "HEICCONV_REQUIRE_BACKENDS"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # no heicconv.toml / pyproject.toml from the repo
    heicconv.config.reset()
    yield
    heicconv.config.reset()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The lowest PSNR seen per backend pair (tests/test_equivalence.py), to watch over time."""
    import sys

    module = sys.modules.get("test_equivalence") or sys.modules.get("tests.test_equivalence")
    lowest = getattr(module, "LOWEST", None)
    if not lowest:
        return
    terminalreporter.section("lowest PSNR per backend pair")
    for (a, b), (value, where) in sorted(lowest.items()):
        terminalreporter.write_line(f"{a} vs {b}: {value:.1f} dB ({where})")
