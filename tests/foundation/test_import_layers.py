"""The data flow shows in the imports: `labctl.otlp` at the bottom, `contract` above it, `proxy` on top.

Every import statement is read from the source (function-level and TYPE_CHECKING imports included, since
a lazy import is still a dependency), so a cycle dodged by importing inside a function is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

LABCTL = Path(__file__).resolve().parents[2] / "labctl"
LAYERS = ("otlp", "contract", "proxy")  # each may import only the ones before it


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LABCTL.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every labctl module or package `path` imports, resolved to absolute names."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # `from pkg import submodule`
    return {m for m in found if m == "labctl" or m.startswith("labctl.")}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def edges() -> set[tuple[str, str, str]]:
    """(importing layer, imported layer, importing file) across the three layers."""
    out = set()
    for path in LABCTL.rglob("*.py"):
        src = _layer(_module_name(path))
        if src is None:
            continue
        for target in _imports(path):
            dst = _layer(target)
            if dst is not None and dst != src:
                out.add((src, dst, str(path.relative_to(LABCTL.parent))))
    return out


def test_each_layer_imports_only_the_layers_below_it() -> None:
    upward = sorted(e for e in edges() if LAYERS.index(e[1]) > LAYERS.index(e[0]))
    assert not upward, "imports against the data flow (otlp < contract < proxy): " + ", ".join(
        f"{f} imports labctl.{dst}" for _src, dst, f in upward
    )


def test_the_walk_sees_the_imports_that_exist() -> None:
    # The walker itself, so the test above cannot pass by seeing nothing: the proxy runs contracts and
    # speaks OTLP (both edges found), and an import inside a method counts.
    assert {dst for src, dst, _f in edges() if src == "proxy"} == {"otlp", "contract"}
    assert {dst for src, dst, _f in edges() if src == "contract"} == {"otlp"}
    assert "labctl.otlp.codec" in _imports(LABCTL / "proxy" / "http_receiver.py")
    assert "labctl.contract.drift" in _imports(LABCTL / "proxy" / "inspect" / "__init__.py")  # in a method
