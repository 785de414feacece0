"""No labctl module over 500 lines without a reason: a long module is where a newcomer stops reading,
so one that stays long says why in its docstring, after the fixed phrase below."""

from __future__ import annotations

import ast
from pathlib import Path

LIMIT = 500
MARKER = "Over 500 lines because"
PACKAGE = Path(__file__).resolve().parents[2] / "labctl"


def test_every_long_module_gives_its_reason() -> None:
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        lines = text.count("\n")
        if lines > LIMIT and MARKER not in (ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{path.relative_to(PACKAGE.parent)} ({lines} lines)")
    assert not unexplained, (
        f"split these along a seam, or say why not in the module docstring ('{MARKER} ...'): "
        + ", ".join(unexplained)
    )
