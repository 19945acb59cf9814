"""The API reference (docs/api.md) documents every public name, by its public path."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import heicconv

DOCS = Path(__file__).resolve().parent.parent / "docs"
DIRECTIVE = re.compile(r"^\.\. auto(?:function|class|exception|data|module):: (heicconv[\w.]*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("heicconv_docs_conf", DOCS / "conf.py")
    assert spec and spec.loader
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_is_documented_by_its_public_path() -> None:
    documented = set(DIRECTIVE.findall((DOCS / "api.md").read_text(encoding="utf-8")))
    public = {f"heicconv.{name}" for name in heicconv.__all__}
    # heicconv.config and heicconv.formats are modules: documented by the functions the page names.
    missing = {n for n in public - documented if not any(d.startswith(n + ".") for d in documented)}
    assert not missing, f"add them to docs/api.md: {sorted(missing)}"
    for testing in ("heicconv.testing", "heicconv.testing.fixtures", "heicconv.testing.conformance.ConformanceSuite"):
        assert testing in documented
    # Nothing by the path of a module that is being moved (heicconv.core, heicconv.backends.base...).
    assert not [d for d in documented if d.startswith(("heicconv.core", "heicconv.backends", "heicconv.errors"))]


def test_a_pending_name_is_a_placeholder_until_it_exists(conf: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    (name,) = conf.PENDING
    page = [f"Before.\n\n.. autofunction:: {name}\n\n.. autofunction:: heicconv.convert\n"]
    if not hasattr(heicconv, name.rpartition(".")[2]):
        placeholder = list(page)
        conf._pending_placeholders(None, "api", placeholder)
        assert f".. admonition:: Pending: {name}" in placeholder[0]
        assert f".. autofunction:: {name}" not in placeholder[0]
        assert ".. autofunction:: heicconv.convert" in placeholder[0]  # names that exist are left alone
        monkeypatch.setattr(heicconv, name.rpartition(".")[2], lambda: None, raising=False)
    landed = list(page)
    conf._pending_placeholders(None, "api", landed)
    assert landed == page  # once the name exists, the reference documents it
