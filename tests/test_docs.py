"""The documentation states what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from heicconv import registry
from heicconv.testing.plugin import require_backend

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_capability_table_matches_the_backends() -> None:
    text = (DOCS / "backends.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- capabilities:.*?-->\n(.*?)<!-- /capabilities -->", text, re.S)
    assert match, "docs/backends.md lost its capabilities table"
    documented = match.group(1).strip()
    for name in ("ffmpeg", "pillow", "vips", "wand"):  # the table documents all four: skip (or fail in CI) without one
        require_backend(name)
    assert registry.capabilities_table() == documented, "regenerate it: python docs/update_tables.py"


def test_readme_commands_name_files_that_exist() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "python -m heicconv examples/sample.heic sample.jpg" in readme
    assert (DOCS.parent / "examples" / "sample.heic").is_file()
    for doc in re.findall(r"`(docs/[\w.-]+\.md)`", readme):
        assert (DOCS.parent / doc).is_file(), doc
