"""Sphinx configuration: the site `nox -s docs` builds from these Markdown files (MyST) and the docstrings."""

from __future__ import annotations

import re
from typing import Any

import heicconv

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
# In the signature: the docstrings do not describe parameters one by one, so a "Parameters" list
# would repeat the signature's names with nothing to say about them.
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": True}


_README_DOC = re.compile(r"`docs/([\w-]+)\.md`")


def _readme_links(app: Any, relative_path: Any, parent_docname: str, content: list[str]) -> None:
    """README.md names the guides as ``docs/NAME.md`` (right on GitHub); on the site they become links."""
    if str(relative_path).endswith("README.md"):
        content[0] = _README_DOC.sub(lambda m: f"[{m.group(1)}]({m.group(1)}.md)", content[0])


def _dataclass_defaults(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None, return_annotation: str | None
) -> tuple[str | None, str | None]:
    """A dataclass field with ``default_factory`` shows as ``= <factory>``, which is not Python: Sphinx
    then prints the whole signature as raw text, without links. ``...`` parses and says the same."""
    return (signature.replace("<factory>", "...") if signature else signature), return_annotation


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-signature", _dataclass_defaults)
    app.connect("include-read", _readme_links)
    return {"parallel_read_safe": True}
