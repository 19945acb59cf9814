"""Every documented public path imports, whatever the layout inside heicconv/ (issue 22).

Deployed functions name ``heicconv.aws_lambda.handler``, containers run ``heicconv serve`` and ``python -m
heicconv``, backend authors import ``heicconv.testing``, and applications import the names of
``heicconv.__all__`` and the modules documented in docs/api.md. A move inside the package must keep them.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import heicconv

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
MODULES = (
    "heicconv.aws_lambda",
    "heicconv.server",
    "heicconv.testing",
    "heicconv.testing.plugin",
    "heicconv.testing.fixtures",
    "heicconv.testing.conformance",
    "heicconv.testing.damage",
    "heicconv.formats",
    "heicconv.errors",
    "heicconv.config",
    "heicconv.options",
    "heicconv.bench",
    "heicconv.cli",
)


@pytest.mark.parametrize("name", heicconv.__all__)
def test_every_exported_name_is_there(name: str) -> None:
    assert getattr(heicconv, name) is not None


@pytest.mark.parametrize("module", MODULES)
def test_every_documented_module_imports(module: str) -> None:
    assert importlib.import_module(module).__name__ in (module, "heicconv.options.formats")


def test_the_lambda_handler_is_where_deployed_functions_name_it() -> None:
    from heicconv.aws_lambda import handler

    assert callable(handler)
    template = (ROOT / "deploy" / "aws" / "heicconv.yaml").read_text(encoding="utf-8")
    assert "heicconv.aws_lambda.handler" in template


def test_heicconv_formats_is_one_module_by_both_paths() -> None:
    from heicconv.formats import detect

    from heicconv.options import formats

    assert heicconv.formats is formats
    assert detect is formats.detect


def test_the_console_script_and_the_entry_point_group_are_the_documented_ones() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    module, _, function = project["scripts"]["heicconv"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    from heicconv.backends.registry import ENTRY_POINT_GROUP

    assert ENTRY_POINT_GROUP == "heicconv.backends"


def test_python_dash_m_heicconv_runs_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "heicconv", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert heicconv.__version__ in done.stdout


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("heicconv.isolated", "heicconv.api.workers", "IsolatedConverter"),
        ("heicconv.registry", "heicconv.backends.registry", "reset"),
    ],
)
def test_a_module_the_0_2_reference_named_still_imports_with_a_deprecation_warning(
    old: str, new: str, name: str
) -> None:
    code = (
        "import warnings, importlib\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        f"    from {old} import {name} as thing\n"
        f"new = importlib.import_module({new!r})\n"
        "assert thing is getattr(new, thing.__name__), thing\n"
        f"assert new.__spec__.name == {new!r}, new.__spec__\n"
        "print([str(w.message) for w in seen if w.category is DeprecationWarning])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"{old} moved to {new} in heicconv 0.3" in done.stdout
