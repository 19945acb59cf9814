"""Skips that CI turns into failures (for the conformance suite and heicconv's own tests).

``HEICCONV_REQUIRE_BACKENDS=pillow,wand,vips`` makes a test that would skip
because one of those backends is missing fail instead, and
``HEICCONV_REQUIRE_EXTRAS=server,lambda,test,deploy`` does the same for a module of a
pip extra; so nothing passes by skipping where it must be present.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

import heicconv
from heicconv.errors import BackendUnavailableError

__all__ = ["require_backend", "require_module", "required_backends", "required_extras"]


def required_backends() -> set[str]:
    return _names("HEICCONV_REQUIRE_BACKENDS")


def required_extras() -> set[str]:
    return _names("HEICCONV_REQUIRE_EXTRAS")


def _names(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


def require_module(name: str, extra: str) -> ModuleType:
    """Import ``name``, which ``pip install 'heicconv[extra]'`` brings; skip the calling test module (or test)
    if it is missing, or fail if ``HEICCONV_REQUIRE_EXTRAS`` names ``extra``."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if extra in required_extras():
            pytest.fail(f"{name} (heicconv[{extra}]) is required by HEICCONV_REQUIRE_EXTRAS but missing: {exc}")
        pytest.skip(f"{name} is missing: pip install 'heicconv[{extra}]'", allow_module_level=True)


def require_backend(name: str) -> None:
    """Skip the calling test if backend ``name`` is unavailable, or fail if the environment requires it."""
    try:
        heicconv.select(name)
    except BackendUnavailableError as exc:
        if name in required_backends():
            pytest.fail(f"backend {name!r} is required by HEICCONV_REQUIRE_BACKENDS but unavailable: {exc}")
        pytest.skip(f"backend {name!r} is unavailable: {exc}")
