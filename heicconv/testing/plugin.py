"""Backend skips that CI turns into failures (for the conformance suite and heicconv's own tests).

``HEICCONV_REQUIRE_BACKENDS=pillow,wand,vips`` makes a test that would skip
because one of those backends is missing fail instead, so nothing passes by
skipping where the backends must be present.
"""

from __future__ import annotations

import os

import pytest

import heicconv
from heicconv.errors import BackendUnavailableError

__all__ = ["require_backend", "required_backends"]


def required_backends() -> set[str]:
    raw = os.environ.get("HEICCONV_REQUIRE_BACKENDS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def require_backend(name: str) -> None:
    """Skip the calling test if backend ``name`` is unavailable, or fail if the environment requires it."""
    try:
        heicconv.select(name)
    except BackendUnavailableError as exc:
        if name in required_backends():
            pytest.fail(f"backend {name!r} is required by HEICCONV_REQUIRE_BACKENDS but unavailable: {exc}")
        pytest.skip(f"backend {name!r} is unavailable: {exc}")
