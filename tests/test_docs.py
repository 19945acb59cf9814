"""The documentation states what the code does."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from heicconv import registry
from heicconv.testing.plugin import require_backend

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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


def test_the_package_summary_names_every_output_format_and_backend() -> None:
    """pyproject.toml's description (the wheel's summary) is the CLI's --help sentence, and it stays complete."""
    from heicconv.cli import DESCRIPTION
    from heicconv.formats import DISPLAY_NAMES, OUTPUT_FORMATS

    project = tomllib.loads((DOCS.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["description"] == DESCRIPTION
    for fmt in OUTPUT_FORMATS:
        assert DISPLAY_NAMES[fmt] in DESCRIPTION, fmt
    libraries = {"ffmpeg": "FFmpeg", "pillow": "Pillow", "vips": "libvips", "wand": "ImageMagick"}
    libraries |= {"http": "heicconv service", "lambda": "Lambda"}
    assert set(libraries) == set(registry.BUILTIN), "name the new built-in backend's library in the description"
    for library in libraries.values():
        assert library in DESCRIPTION, library
