"""The API reference (docs/api.md) documents every public name, by its public path."""

from __future__ import annotations

import re
from pathlib import Path

import heicconv

DOCS = Path(__file__).resolve().parent.parent / "docs"
DIRECTIVE = re.compile(r"^\.\. auto(?:function|class|exception|data|module):: (heicconv[\w.]*)$", re.MULTILINE)


def test_every_public_name_is_documented_by_its_public_path() -> None:
    documented = set(DIRECTIVE.findall((DOCS / "api.md").read_text(encoding="utf-8")))
    public = {f"heicconv.{name}" for name in heicconv.__all__}
    # heicconv.config and heicconv.formats are modules: documented by the functions the page names.
    missing = {n for n in public - documented if not any(d.startswith(n + ".") for d in documented)}
    assert not missing, f"add them to docs/api.md: {sorted(missing)}"
    for testing in ("heicconv.testing", "heicconv.testing.fixtures", "heicconv.testing.conformance.ConformanceSuite"):
        assert testing in documented
    # Nothing by the path of an internal module (heicconv.core, heicconv.backends.contract...): those may move.
    assert not [d for d in documented if d.startswith(("heicconv.core", "heicconv.backends", "heicconv.errors"))]
