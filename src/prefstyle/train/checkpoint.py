"""Checkpoints: safetensors + JSON, written atomically, nothing pickled.

A **model checkpoint** is two files side by side:

* ``model.safetensors`` - the module's ``state_dict`` (EMA weights when EMA is on);
* ``model.json`` - the card: ``format`` ``"prefstyle-checkpoint"``, ``version``, ``id`` (unique
  per saved weights), ``task`` (``name`` + ``model``: the architecture options), ``data`` (the
  task's data description), ``train`` (the resolved training config), ``step``, ``metrics``
  (the last validation), ``prefstyle_version``, ``git_commit``, ``torch_version``, ``created``.

A **training checkpoint** (``OUT/checkpoints/step_NNNNNNN/``) adds the state to resume from:

* ``train_state.safetensors`` - optimizer tensors (``optim.<param>.<key>``), EMA shadow weights
  (``ema.<name>``), the raw (non-EMA) weights when ``model.safetensors`` holds the EMA ones
  (``raw.<name>``) and RNG states (``rng.torch``, ``rng.cuda.<i>``);
* ``train_state.json`` - step, optimizer param groups and scalar state, grad-scaler state,
  Python and NumPy RNG states, the data stream's state.

Each training checkpoint folder is written under a temporary name and renamed into place, and
``OUT/checkpoints/latest`` (the folder's name) is replaced atomically after it, so a run killed
at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefstyle import __version__
from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_path, atomic_write_text

# reading checkpoints is inference's business: it lives in the models layer
from prefstyle.models.card import (
    CARD_FORMAT,
    CARD_VERSION,
    CHECKPOINTS_DIR,
    LATEST_FILE,
    find_checkpoint,
    latest_checkpoint,
    read_card,
)
from prefstyle.provenance import git_commit

__all__ = [
    "CARD_FORMAT",
    "CARD_VERSION",
    "find_checkpoint",
    "git_commit",
    "latest_checkpoint",
    "load_train_state",
    "make_card",
    "read_card",
    "save_model",
    "save_train_checkpoint",
]


def make_card(
    task_name: str, model_cfg: dict, data: dict, train_cfg: dict, step: int, metrics: dict | None = None
) -> dict[str, Any]:
    """The JSON card of a model checkpoint (see the module docstring)."""
    return {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "id": uuid.uuid4().hex[:16],
        "task": {"name": task_name, "model": model_cfg},
        "data": data,
        "train": train_cfg,
        "step": int(step),
        "metrics": dict(metrics or {}),
        "prefstyle_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor) and o.numel() == 1:
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _dumps(doc: Any) -> str:
    return json.dumps(doc, indent=1, default=_json_default) + "\n"


def _state_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_model(folder: str | Path, state: dict[str, torch.Tensor], card: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` then ``model.json`` into ``folder`` (each atomically)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(_state_tensors(state), str(tmp), metadata={"format": CARD_FORMAT, "id": card.get("id", "")})
    atomic_write_text(folder / "model.json", _dumps(card))
    return folder


# --------------------------------------------------------------------------------------------
# training state
# --------------------------------------------------------------------------------------------


def _optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{idx}.{k}"] = v
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {
        "param_groups": sd["param_groups"],
        "scalars": scalars,
        "tensor_params": sorted({int(k.split(".")[1]) for k in tensors}),
    }


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g and isinstance(g["betas"], list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    py = random.getstate()
    npst: Any = np.random.get_state()  # the legacy tuple form (typed as a dict too)
    meta = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])],
    }
    return tensors, meta


def _restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"].to(torch.uint8))
    cuda = sorted((int(k.rsplit(".", 1)[1]), v) for k, v in tensors.items() if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([v.to(torch.uint8) for _, v in cuda][: torch.cuda.device_count()])
    if "python" in meta:
        v, st, g = meta["python"]
        random.setstate((v, tuple(st), g))
    if "numpy" in meta:
        name, keys, pos, has_g, cached = meta["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_g, cached))


def save_train_checkpoint(
    out: str | Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    card: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    ema: dict[str, torch.Tensor] | None = None,
    raw_state: dict[str, torch.Tensor] | None = None,
    scaler_state: dict[str, Any] | None = None,
    loader_state: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    keep: int = 3,
    rank_rng: dict[int, torch.Tensor] | None = None,
) -> Path:
    """Write ``out/checkpoints/step_<step>/`` atomically, point ``latest`` at it, prune old ones."""
    from safetensors.torch import save_file

    ck = Path(out) / CHECKPOINTS_DIR
    ck.mkdir(parents=True, exist_ok=True)
    name = f"step_{int(step):07d}"
    final = ck / name
    tmp = ck / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp"
    tmp.mkdir()
    try:
        save_model(tmp, model_state, card)
        opt_t, opt_meta = _optimizer_state(optimizer)
        rng_t, rng_meta = _rng_state()
        tensors = {**opt_t, **rng_t}
        if ema is not None:
            tensors.update({f"ema.{k}": v for k, v in ema.items()})
        if raw_state is not None:
            tensors.update({f"raw.{k}": v for k, v in raw_state.items()})
        for r, st in (rank_rng or {}).items():
            tensors[f"rng.torch.rank{r}"] = st
        save_file(_state_tensors(tensors), str(tmp / "train_state.safetensors"))
        meta = {
            "step": int(step),
            "optim": opt_meta,
            "rng": rng_meta,
            "scaler": scaler_state,
            "loader": loader_state,
            "ema": ema is not None,
            "extra": extra or {},
        }
        (tmp / "train_state.json").write_text(_dumps(meta), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(ck / LATEST_FILE, name + "\n")
    if keep > 0:
        olds = sorted(d for d in ck.glob("step_*") if d.is_dir() and d.name != name)
        for d in olds[: max(0, len(olds) - (keep - 1))]:
            shutil.rmtree(d, ignore_errors=True)
    for d in ck.glob(".step_*.tmp"):  # leftovers of killed runs
        if d != tmp:
            shutil.rmtree(d, ignore_errors=True)
    return final


def load_train_state(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """``(model state, train tensors, train meta)`` of a training checkpoint folder."""
    from prefstyle.fsutil import load_safetensors

    folder = Path(folder)
    model_state = load_safetensors(folder / "model.safetensors", "checkpoint weights")
    tensors = load_safetensors(folder / "train_state.safetensors", "checkpoint training state")
    meta_path = folder / "train_state.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PrefstyleError(f"checkpoint training state unreadable ({e})", path=meta_path) from None
    if not isinstance(meta, dict):
        raise PrefstyleError("checkpoint training state is not a JSON object", path=meta_path)
    return model_state, tensors, meta


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Load the optimizer state saved by :func:`save_train_checkpoint`."""
    _restore_optimizer(opt, tensors, meta["optim"])


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Restore the torch / CUDA / Python / NumPy RNG states saved by :func:`save_train_checkpoint`."""
    _restore_rng(tensors, meta["rng"])
