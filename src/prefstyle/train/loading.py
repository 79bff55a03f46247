"""``load_model(name_or_path)``: one call from a checkpoint or a registered name to a usable model."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from prefstyle.errors import PrefstyleError
from prefstyle.train.checkpoint import read_card
from prefstyle.train.task import get_task

from prefstyle.train.defaults import DEFAULT_LIKED_MODEL, DEFAULT_MODEL

__all__ = ["DEFAULT_LIKED_MODEL", "DEFAULT_MODEL", "assets_dir", "export_model", "load_model", "model_from_checkpoint", "packaged_models",
           "settings_checkpoint"]


def assets_dir() -> Path:
    """``src/prefstyle/assets/models``: packaged default weights, one folder per model name."""
    return Path(__file__).resolve().parent.parent / "assets" / "models"


def _looks_like_path(s: str) -> bool:
    return "/" in s or "\\" in s or s.endswith((".json", ".safetensors")) or s.startswith(".") or Path(s).exists()


def settings_checkpoint(path: Path) -> Any:
    """The model of a profile-format ``.json`` checkpoint (what ``global-style`` and ``sliders`` save:
    fitted settings, no weights), or None when ``path`` is not one."""
    import json

    from prefstyle.models.base import PROFILE_FORMAT, create_model

    if path.suffix != ".json" or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT or not isinstance(doc.get("model"), str):
        return None
    try:
        return create_model(doc["model"], checkpoint=path)
    except TypeError:
        raise PrefstyleError(f"model '{doc['model']}' cannot be loaded from a checkpoint file", path=path) from None


def model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Any:
    """Rebuild the model a checkpoint (folder, ``model.json`` or ``model.safetensors``) holds.

    The task named in the card rebuilds the architecture from the card's ``task.model``
    options (no data, no pretrained-weight files needed), the weights are loaded strictly, and
    the task's ``to_inference`` gives the :class:`~prefstyle.models.base.PersonalizationModel`.
    The returned model carries ``card`` (the JSON card) and ``checkpoint_path``.
    """
    from safetensors.torch import load_file

    card, weights = read_card(path)
    tcfg = card.get("train", {}).get("task", {}) if isinstance(card.get("train"), dict) else {}
    task_cls = get_task(card["task"]["name"], tcfg.get("module"))
    data_cfg = card.get("train", {}).get("data", {}) if isinstance(card.get("train"), dict) else {}
    task = task_cls(dict(card["task"].get("model", {})), dict(data_cfg or {}), int(card.get("train", {}).get("seed", 0)))
    task.loading_checkpoint = True
    module = task.build_model()
    state = load_file(str(weights))
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "mismatch"
        raise PrefstyleError(f"checkpoint weights do not fit the '{task.name}' architecture ({first})",
                             path=weights) from None
    module.to(device).eval()
    model = task.to_inference(module)
    try:
        model.card = card
        model.checkpoint_path = str(weights.parent.resolve())
    except AttributeError:  # models with __slots__
        pass
    return model


def packaged_models() -> list[str]:
    """Names of the models whose trained weights ship with prefstyle, sorted."""
    root = assets_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "model.json").is_file() or (p / f"{p.name}.json").is_file())


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu") -> Any:
    """A :class:`~prefstyle.models.base.PersonalizationModel` from a checkpoint path or a registered name.

    * a path (folder with ``model.json``, a run folder, or the card/weights file): the trained
      model (:func:`model_from_checkpoint`);
    * a registered name with packaged weights under ``src/prefstyle/assets/models/<name>/``:
      those (or, for models without weights, the fitted settings ``<name>/<name>.json``);
    * a trainable model's name without packaged weights: an error that says how to train it,
      or, for tasks with ``needs_training = False``, the untrained model with a warning;
    * any other registered model name (``identity``, ``nearest-preferred``, ...): that model.
    """
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(s):
        small = settings_checkpoint(Path(s))
        return small if small is not None else model_from_checkpoint(s, device)
    packaged = assets_dir() / s
    if (packaged / "model.json").is_file():
        return model_from_checkpoint(packaged, device)
    if (packaged / f"{s}.json").is_file():  # fitted settings, no weights (``sliders``)
        return settings_checkpoint(packaged / f"{s}.json")
    try:
        task_cls = get_task(s)
    except PrefstyleError:
        task_cls = None
    if task_cls is not None:
        if task_cls.needs_training:
            raise PrefstyleError(
                f"model '{s}' needs training and no trained weights ship with prefstyle: train it with "
                f"`prefstyle train configs/{s}.yaml` (or a config of yours) and pass the run folder as --model"
            )
        warnings.warn(f"model '{s}' has no trained weights: using it untrained", stacklevel=2)
        task = task_cls({}, {}, 0)
        module = task.build_model().to(device).eval()
        return task.to_inference(module)
    from prefstyle.models.base import create_model

    return create_model(s)


def export_model(src: str | Path, dst: str | Path, half: bool = False) -> Path:
    """Copy a checkpoint's model (card + weights) into folder ``dst``, optionally as float16.

    Packaged default weights live in ``src/prefstyle/assets/models/<name>/`` (then
    ``load_model("<name>")`` finds them): ``export_model("runs/pienet_cpu",
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
