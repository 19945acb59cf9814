"""Rewrite the generated parts of docs/ from the code: ``python docs/update_tables.py``."""

from __future__ import annotations

import re
from pathlib import Path

from heicconv.backends import registry

DOCS = Path(__file__).resolve().parent


def main() -> None:
    path = DOCS / "backends.md"
    text = path.read_text(encoding="utf-8")
    text = re.sub(
        r"(<!-- capabilities:.*?-->\n).*?(<!-- /capabilities -->)",
        lambda m: m.group(1) + registry.capabilities_table() + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    example = (DOCS.parent / "examples" / "minimal_backend.py").read_text(encoding="utf-8")
    text = re.sub(
        r"(<!-- example: examples/minimal_backend.py -->\n```python\n).*?(```)",
        lambda m: m.group(1) + example + m.group(2),
        text,
        flags=re.S,
    )
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
