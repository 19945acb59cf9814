"""Sphinx configuration: the site `nox -s docs` builds from these Markdown files (MyST) and the docstrings."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import heicconv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

project = "heicconv"
author = "heicconv contributors"
copyright = "heicconv contributors"
release = heicconv.__version__
version = ".".join(release.split(".")[:2])

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

# The guides link to sections by their slug (deployment.md#limits).
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence", "deflist"]

html_theme = "furo"
html_title = f"heicconv {release}"
html_static_path: list[str] = []

# The reference names things by their public paths (heicconv.convert), not by the modules that
# define them today: those move, the public names do not.
add_module_names = True
python_use_unqualified_type_names = True
autodoc_member_order = "bysource"
maximum_signature_line_length = 100  # one parameter a line beyond this: Options has twenty
# In the signature: a docstring that describes its parameters does so with :param: fields (convert), and a
# "Parameters" list made from the types alone would repeat the signature's names with nothing to say about them.
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": True}


ROOT = Path(__file__).resolve().parent.parent
# The one setting for where the site's links to repository files go: pyproject.toml's [project.urls] Source,
# which a team that publishes heicconv points at its own repository browser (docs/releasing.md).
SOURCE_URL = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Source"]

# A guide named as a path (docs/errors.md, with or without backticks), not already a link's text or target.
_DOC_MENTION = re.compile(r"(?<![\[(/\w])(`?)docs/([\w-]+)\.md\1(?![\w\]])")
# A repository file or folder in backticks (`tests/test_docs.py`, `docker/`), not already a link's text.
_REPO_PATH = re.compile(r"(?<!\[)`((?:benchmarks|deploy|docker|examples|tests)/[\w./-]*)`(?!\])")


def site_links(text: str) -> str:
    """The pages' mentions of guides and repository files as links: a guide to its page, a file to
    ``SOURCE_URL`` (only paths that exist, so a glob or a removed page stays text). Fenced code is
    left alone. The Markdown files keep the plain paths, which read right in a checkout and on a forge.
    """
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            line = _DOC_MENTION.sub(
                lambda m: (
                    f"[{m.group(2)}.md]({m.group(2)}.md)"
                    if (ROOT / "docs" / f"{m.group(2)}.md").exists()
                    else m.group(0)
                ),
                line,
            )
            line = _REPO_PATH.sub(
                lambda m: f"[`{m.group(1)}`]({SOURCE_URL}{m.group(1)})" if (ROOT / m.group(1)).exists() else m.group(0),
                line,
            )
        out.append(line)
    return "\n".join(out)


def _page_links(app: Any, docname: str, content: list[str]) -> None:
    content[0] = site_links(content[0])


def _readme_links(app: Any, relative_path: Any, parent_docname: str, content: list[str]) -> None:
    """README.md names the guides as ``docs/NAME.md`` (right on GitHub); on the site they become links."""
    if str(relative_path).endswith("README.md"):
        content[0] = site_links(content[0])


def _dataclass_defaults(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None, return_annotation: str | None
) -> tuple[str | None, str | None]:
    """A dataclass field with ``default_factory`` shows as ``= <factory>``, which is not Python: Sphinx
    then prints the whole signature as raw text, without links. ``...`` parses and says the same."""
    return (signature.replace("<factory>", "...") if signature else signature), return_annotation


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-signature", _dataclass_defaults)
    app.connect("include-read", _readme_links)
    app.connect("source-read", _page_links)
    return {"parallel_read_safe": True}
