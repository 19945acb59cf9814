"""The documentation states what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from heicconv import registry
from heicconv.testing.plugin import required_backends

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_capability_table_matches_the_backends() -> None:
    text = (DOCS / "backends.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- capabilities:.*?-->\n(.*?)<!-- /capabilities -->", text, re.S)
    assert match, "docs/backends.md lost its capabilities table"
    documented = match.group(1).strip()
    live = registry.capabilities_table()
    if {"ffmpeg", "pillow", "vips", "wand"} <= required_backends() or live.count("`") == documented.count("`"):
        assert live == documented, "regenerate the table with heicconv.registry.capabilities_table()"


def test_readme_commands_name_files_that_exist() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "python -m heicconv examples/sample.heic sample.jpg" in readme
    assert (DOCS.parent / "examples" / "sample.heic").is_file()
    for doc in re.findall(r"`(docs/[\w.-]+\.md)`", readme):
        assert (DOCS.parent / doc).is_file(), doc
