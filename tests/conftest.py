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
