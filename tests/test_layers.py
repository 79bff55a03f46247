"""The package keeps its layers (README.md, "What is here"): a module imports only from its own layer or below."""

from __future__ import annotations

import ast
from pathlib import Path

import prefstyle

ROOT = Path(prefstyle.__file__).parent

#: top-level sub-package/module -> layer (higher may import lower, never the reverse)
LAYERS = {
    "errors": 0,
    "fsutil": 0,
    "provenance": 0,
    "_version": 0,
    "__init__": 0,
    "imaging": 1,
    "styles": 2,
    "data": 3,
    "losses": 4,
    "metrics": 4,
    "models": 5,
    "train": 6,
    "eval": 7,
    "cli": 8,
    "app": 8,
    "__main__": 8,
}


def _layer_of(parts: tuple[str, ...]) -> int:
    top = parts[0].removesuffix(".py")
    assert top in LAYERS, (
        f"prefstyle.{top} has no layer in tests/test_layers.py (add it, and to README.md's layer table)"
    )
    return LAYERS[top]


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return [m for m in out if m == "prefstyle" or m.startswith("prefstyle.")]


def test_no_module_imports_from_a_higher_layer():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).parts
        # a package's __main__ is a command-line entry point (torchrun -m prefstyle.train): user-facing
        own = LAYERS["cli"] if rel[-1] == "__main__.py" else _layer_of(rel)
        for mod in _imports(path):
            parts = tuple(mod.split(".")[1:]) or ("__init__",)
            if _layer_of(parts) > own:
                bad.append(f"{'/'.join(rel)} imports {mod}")
    assert not bad, "layer violations:\n" + "\n".join(bad)
