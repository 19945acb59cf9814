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
    # Nothing by the path of an internal module (heicconv.api.calls, heicconv.backends.contract...): those may move.
    # (heicconv.errors.HTTP_ERRORS is the one name of heicconv.errors that heicconv itself does not export, and
    # heicconv.backends.registry.reset the one of the registry: a plugin's tests call it.)
    internal = ("heicconv.api.calls", "heicconv.backends", "heicconv.errors")
    exceptions = ("heicconv.errors.HTTP_ERRORS", "heicconv.backends.registry.reset")
    assert not [d for d in documented if d.startswith(internal) and d not in exceptions]


def test_every_function_the_guides_call_is_in_the_reference() -> None:
    """A guide that tells users to call heicconv.x.y() sends them to a function this page documents.

    architecture.md and hardening.md describe the internals, for contributors, and may name anything.
    """
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(DIRECTIVE.findall(api))
    modules = set(re.findall(r"^\.\. automodule:: (heicconv[\w.]*)$", api, re.MULTILINE))
    called = set()
    for page in DOCS.glob("*.md"):
        if page.name not in ("architecture.md", "hardening.md", "changelog.md"):
            called |= set(re.findall(r"`(heicconv\.[a-z_]+\.[\w.]+)\(", page.read_text(encoding="utf-8")))
    missing = {name for name in called if name not in documented and name.rpartition(".")[0] not in modules}
    assert not missing, f"document them in docs/api.md or do not send users to them: {sorted(missing)}"


def test_options_and_limits_describe_every_field_with_its_default() -> None:
    import dataclasses

    for cls in (heicconv.Options, heicconv.Limits):
        doc = cls.__doc__ or ""
        for f in dataclasses.fields(cls):
            assert f"``{f.name}``" in doc, f"{cls.__name__}'s docstring does not describe {f.name}"
    limits = heicconv.Limits()
    doc = heicconv.Limits.__doc__ or ""
    assert f"({limits.max_pixels:,})" in doc and f"({limits.max_width:,})" in doc
    assert f"({limits.max_input_bytes // 2**20} MiB)" in doc
