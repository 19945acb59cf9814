"""The shape issue 22 gave the package, kept: at most twelve entries under heicconv/, no function over 60 lines.

docs/architecture.md explains the twelve; the import contracts in pyproject.toml (``lint-imports``) keep the roles.
A function may be longer only with a comment on the line above its ``def`` that says why (``# long: ...``).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "heicconv"
NOT_COUNTED = {"__init__.py", "__main__.py", "py.typed", "__pycache__"}


def test_at_most_twelve_entries_under_the_package() -> None:
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name not in NOT_COUNTED and not p.name.startswith("."))
    assert len(entries) <= 12, entries


def test_no_function_is_longer_than_60_lines_without_saying_why() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                said_why = first >= 2 and lines[first - 2].strip().startswith("# long:")
                if node.end_lineno is not None and node.end_lineno - node.lineno + 1 > 60 and not said_why:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert not long, long
