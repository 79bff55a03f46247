"""No model or reference-point name is written as a string above the models layer.

The CLI, training, evaluation and the app reach every model through its interface
(:mod:`prefstyle.models.base`) and :func:`prefstyle.models.load`; a name spelled out in their
code is a special case waiting to go stale. User-facing text (help, messages, docstrings) may
name models: only string constants that *are* a name count. The allowlist below is explicit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import prefstyle
from prefstyle.models import list_models

ROOT = Path(prefstyle.__file__).parent
LAYERS_ABOVE_MODELS = ("train", "eval", "cli", "app")

#: (file relative to src/prefstyle, the string) -> why it may stay
ALLOWED: dict[tuple[str, str], str] = {
    ("train/tasks/pienet.py", "pienet"): "the name of PieNet's second training phase (logged), not a model lookup",
    ("cli/data_cmd.py", "sliders"): "a kind of simulated crowd (data simulate --tastes), not a model",
    ("cli/data_cmd.py", "looks"): "a kind of simulated crowd (data simulate --tastes), not a model",
    ("cli/demo_cmd.py", "looks"): "a kind of simulated crowd (demo --tastes), not a model",
    ("cli/demo_cmd.py", "sliders"): "a kind of simulated crowd (demo --tastes), not a model",
    # the study app's helper switches it to prefstyle.models.load / DEFAULT_MODEL; until then its
    # fallback model for a tree without packaged weights is spelled out:
    ("app/state.py", "nearest-preferred"): "app fallback, until the app helper switches to prefstyle.models",
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _name_strings(path: Path, names: set[str]) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in names
        and id(node) not in skip
    ]


def test_no_model_name_literals_above_the_models_layer():
    names = set(list_models())
    assert {"identity", "sliders", "pienet"} <= names  # the scan looks for real names
    found = []
    for layer in LAYERS_ABOVE_MODELS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            found += [
                f"{rel}:{line}: {value!r}" for line, value in _name_strings(path, names) if (rel, value) not in ALLOWED
            ]
    assert not found, (
        "model names spelled out above prefstyle.models (use the model's interface, "
        "prefstyle.models.load or a constant declared in models):\n" + "\n".join(found)
    )


def test_allowlist_entries_are_still_needed():
    names = set(list_models())
    stale = [
        f"{rel}: {value!r}"
        for rel, value in ALLOWED
        if (ROOT / rel).is_file() and value not in {v for _, v in _name_strings(ROOT / rel, names)}
    ]
    assert not stale, "allowlisted names no longer in the code (drop them from ALLOWED):\n" + "\n".join(stale)


def test_the_scan_finds_a_name(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('"""Docstrings may say identity."""\nMODEL = "identity"\nHELP = "use identity"\n')
    assert _name_strings(probe, {"identity"}) == [(2, "identity")]
