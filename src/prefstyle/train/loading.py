"""Training-side names for loading models; loading itself lives in :mod:`prefstyle.models.loading`.

:func:`load_model` is :func:`prefstyle.models.load` after the built-in training tasks are
imported (a task defined only here, such as the trainer's ``toy-affine`` template, declares its
architecture when imported). :func:`export_model` copies a trained checkpoint into a folder,
e.g. the packaged models. ``DEFAULT_MODEL``, ``packaged_models`` and friends are re-exported
for code that still imports them from here; new code imports them from :mod:`prefstyle.models`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from prefstyle.models.base import PersonalizationModel
from prefstyle.models.card import read_card
from prefstyle.models.defaults import DEFAULT_LIKED_MODEL, DEFAULT_MODEL
from prefstyle.models.loading import (
    assets_dir,
    load,
    model_from_checkpoint,
    packaged_models,
    settings_checkpoint,
)

__all__ = [
    "DEFAULT_LIKED_MODEL",
    "DEFAULT_MODEL",
    "assets_dir",
    "export_model",
    "load_model",
    "model_from_checkpoint",
    "packaged_models",
    "settings_checkpoint",
]


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu") -> PersonalizationModel:
    """:func:`prefstyle.models.load`, with the architectures of the built-in training tasks declared."""
    from prefstyle.train.task import list_tasks

    list_tasks()  # imports prefstyle.train.tasks.*
    return load(name_or_path, device)


def export_model(src: str | Path, dst: str | Path, half: bool = False) -> Path:
    """Copy a checkpoint's model (card + weights) into folder ``dst``, optionally as float16.

    Packaged default weights live in ``src/prefstyle/assets/models/<name>/`` (then
    ``prefstyle.models.load("<name>")`` finds them): ``export_model("runs/pienet_cpu",
    "src/prefstyle/assets/models/pienet", half=True)``. Float16 halves the size; the weights are
    cast back to float32 on loading.
    """
    from safetensors.torch import load_file

    from prefstyle.train.checkpoint import save_model

    card, weights = read_card(src)
    state = load_file(str(weights))
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    card = {**card, "exported_from": str(weights.parent.resolve()), "dtype": "float16" if half else "float32"}
    return save_model(dst, state, card)
