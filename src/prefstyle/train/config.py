"""Training configs: YAML files with dotted ``key=value`` overrides, merged over defaults.

A config (``configs/*.yaml``) has these keys (defaults in :data:`DEFAULTS`)::

    task:      {name: pienet, module: null, ...}   # name + the model's own options
    data:      {...}                               # the task's data options
    optim:     {name: adam, lr: 1e-4, weight_decay: 0, betas: [0.9, 0.999], eps: 1e-8, fused: true}
    schedule:  {name: cosine, warmup: 0, min_factor: 0, restarts: [], milestones: [], gamma: 0.1}
    steps: 1000          # optimizer steps in all
    batch_size: 16       # global batch (split evenly across processes)
    amp: auto            # auto (bf16/fp16 on CUDA, off on CPU) | true | false | bf16 | fp16
    grad_clip: 1.0       # max global gradient norm, null = off
    ema: null            # EMA decay (e.g. 0.999) or null
    seed: 0
    deterministic: false # torch.use_deterministic_algorithms
    log_every: 10
    val_every: 200       # 0 = only at the end
    val_at_start: false
    ckpt_every: 200      # 0 = only at the end (and when stopped)
    keep_checkpoints: 3
    out: runs/NAME
    device: auto         # auto | cpu | cuda | cuda:1 ...
    threads: null        # torch CPU threads (null: torch's default)

``task`` keys other than ``name`` and ``module`` are the model's options (``task_model_cfg``).
Overrides use dots (``optim.lr=3e-4``, ``task.backbone=efficientnet_lite0``,
``data.crowd=null``); values are parsed as YAML scalars/flow collections (``[1, 2]``,
``{a: 1}``). Unknown top-level keys are refused (typos would silently do nothing).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from prefstyle.errors import InputFormatError, PrefstyleError

__all__ = ["DEFAULTS", "apply_overrides", "load_config", "merge", "resolve_config", "task_model_cfg"]

DEFAULTS: dict[str, Any] = {
    "task": {"name": None, "module": None},
    "data": {},
    "optim": {"name": "adam", "lr": 1e-4, "weight_decay": 0.0, "betas": [0.9, 0.999], "eps": 1e-8, "momentum": 0.9,
              "fused": True},
    "schedule": {"name": "constant", "warmup": 0, "min_factor": 0.0, "restarts": [], "milestones": [], "gamma": 0.1},
    "steps": 1000,
    "batch_size": 16,
    "amp": "auto",
    "grad_clip": None,
    "ema": None,
    "seed": 0,
    "deterministic": False,
    "log_every": 10,
    "val_every": 200,
    "val_at_start": False,
    "ckpt_every": 200,
    "keep_checkpoints": 3,
    "out": None,
    "device": "auto",
    "threads": None,
}

_SCHEDULES = ("constant", "cosine", "step", "linear")
_OPTIMS = ("adam", "adamw", "sgd")


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (``update`` wins; nested dicts merged, everything else replaced)."""
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-4`` is a number, not a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+][0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.VERBOSE),
    list("-+0123456789."),
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def _parse_value(text: str) -> Any:
    try:
        return _yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def apply_overrides(cfg: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``["a.b=1", ...]``: dotted keys, YAML values; intermediate dicts are created."""
    out = copy.deepcopy(cfg)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PrefstyleError(f"override must be KEY=VALUE (dots for nested keys), got {item!r}")
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                if p in node and node[p] is not None:
                    raise PrefstyleError(f"override {item!r}: '{p}' is not a section")
                node[p] = {}
            node = node[p]
        node[parts[-1]] = _parse_value(value)
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config (or start from ``base``), apply overrides, merge over defaults, check it."""
    doc: dict[str, Any] = dict(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise PrefstyleError("config file not found", path=path)
        try:
            loaded = _yaml(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            raise InputFormatError(f"malformed YAML: {getattr(e, 'problem', e)}", path=path,
                                   line=None if line is None else line + 1) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise InputFormatError("a config must be a YAML mapping", path=path)
        doc = merge(doc, loaded)
    doc = apply_overrides(doc, overrides)
    return resolve_config(doc, source=path)


def resolve_config(doc: dict[str, Any], source: str | Path | None = None) -> dict[str, Any]:
    """Merge ``doc`` over :data:`DEFAULTS` and validate it; returns a new dict."""
    where = {"path": source} if source is not None else {}
    unknown = sorted(set(doc) - set(DEFAULTS))
    if unknown:
        raise PrefstyleError(f"unknown config key(s): {', '.join(unknown)} (known: {', '.join(sorted(DEFAULTS))})",
                             **where)
    cfg = merge(DEFAULTS, doc)
    if not isinstance(cfg["task"], dict) or not cfg["task"].get("name"):
        raise PrefstyleError("config needs task.name (the model to train, e.g. pienet)", **where)
    for key in ("data", "optim", "schedule"):
        if not isinstance(cfg[key], dict):
            raise PrefstyleError(f"config section '{key}' must be a mapping", **where)
    ints = ("steps", "batch_size", "seed", "log_every", "val_every", "ckpt_every", "keep_checkpoints")
    for key in ints:
        try:
            cfg[key] = int(cfg[key])
        except (TypeError, ValueError):
            raise PrefstyleError(f"'{key}' must be an integer, got {cfg[key]!r}", **where) from None
    if cfg["steps"] < 1 or cfg["batch_size"] < 1:
        raise PrefstyleError("steps and batch_size must be >= 1", **where)
    if cfg["optim"]["name"] not in _OPTIMS:
        raise PrefstyleError(f"optim.name must be one of {', '.join(_OPTIMS)}, got {cfg['optim']['name']!r}", **where)
    if cfg["schedule"]["name"] not in _SCHEDULES:
        raise PrefstyleError(
            f"schedule.name must be one of {', '.join(_SCHEDULES)}, got {cfg['schedule']['name']!r}", **where)
    if cfg["amp"] not in ("auto", True, False, "bf16", "fp16"):
        raise PrefstyleError(f"amp must be auto, true, false, bf16 or fp16, got {cfg['amp']!r}", **where)
    if cfg["ema"] is not None and not 0.0 < float(cfg["ema"]) < 1.0:
        raise PrefstyleError(f"ema must be a decay in (0, 1) or null, got {cfg['ema']!r}", **where)
    if cfg["grad_clip"] is not None and float(cfg["grad_clip"]) <= 0:
        raise PrefstyleError(f"grad_clip must be positive or null, got {cfg['grad_clip']!r}", **where)
    if cfg["out"] is None:
        cfg["out"] = f"runs/{cfg['task']['name']}"
    return cfg


def task_model_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    """The model's own options: ``task`` without ``name`` and ``module``."""
    return {k: v for k, v in cfg["task"].items() if k not in ("name", "module")}
