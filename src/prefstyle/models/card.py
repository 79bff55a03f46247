"""Reading a trained model's checkpoint: the JSON card beside its safetensors weights.

A checkpoint is ``model.json`` (the card: ``format`` ``"prefstyle-checkpoint"``, ``version``,
``task`` = ``{"name", "model": architecture options}``, ...) and ``model.safetensors`` side by
side; a training run folder keeps its newest resumable one under ``checkpoints/<latest>/``.
:mod:`prefstyle.train.checkpoint` writes them; inference only needs this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefstyle.errors import PrefstyleError

__all__ = [
    "CARD_FORMAT",
    "CARD_VERSION",
    "CHECKPOINTS_DIR",
    "LATEST_FILE",
    "find_checkpoint",
    "latest_checkpoint",
    "read_card",
]

CARD_FORMAT = "prefstyle-checkpoint"
CARD_VERSION = 1
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest"


def read_card(path: str | Path) -> tuple[dict[str, Any], Path]:
    """The card of the checkpoint at ``path`` (a folder, ``model.json`` or ``model.safetensors``)
    and the path of its weights."""
    folder_or_file = find_checkpoint(path)
    card_path = folder_or_file / "model.json" if folder_or_file.is_dir() else folder_or_file
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PrefstyleError(f"malformed checkpoint card: {e.msg}", path=card_path, line=e.lineno) from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise PrefstyleError("not a prefstyle checkpoint card", path=card_path)
    if card.get("version") != CARD_VERSION:
        raise PrefstyleError(f"checkpoint card version {card.get('version')} is not supported", path=card_path)
    weights = card_path.with_suffix(".safetensors")
    if not weights.is_file():
        raise PrefstyleError("checkpoint weights missing (model.safetensors beside model.json)", path=weights)
    return card, weights


def find_checkpoint(path: str | Path) -> Path:
    """Resolve a checkpoint path: a folder with ``model.json``, a run folder (its final model,
    else its latest training checkpoint), or the ``.json``/``.safetensors`` file itself."""
    p = Path(path).expanduser()
    if p.is_dir():
        if (p / "model.json").is_file():
            return p / "model.json"
        latest = latest_checkpoint(p)
        if latest is not None:
            return latest / "model.json"
        raise PrefstyleError("no checkpoint in this folder (no model.json, no checkpoints/latest)", path=p)
    if p.suffix == ".safetensors" and p.with_suffix(".json").is_file():
        return p.with_suffix(".json")
    if p.suffix == ".json" and p.is_file():
        return p
    raise PrefstyleError("checkpoint not found", path=p)


def latest_checkpoint(out: str | Path) -> Path | None:
    """The newest complete training checkpoint folder of run folder ``out``, or None."""
    ck = Path(out) / CHECKPOINTS_DIR
    marker = ck / LATEST_FILE
    if marker.is_file():
        folder = ck / marker.read_text(encoding="utf-8").strip()
        if (folder / "train_state.json").is_file():
            return folder
    candidates = sorted(d for d in ck.glob("step_*") if (d / "train_state.json").is_file()) if ck.is_dir() else []
    return candidates[-1] if candidates else None
