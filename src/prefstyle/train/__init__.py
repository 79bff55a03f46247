"""One trainer for every trainable model (see :mod:`prefstyle.train.trainer`).

* :class:`~prefstyle.train.task.TrainTask` / :func:`~prefstyle.train.task.register_task` - what a
  model tells the trainer (the contract is in :mod:`prefstyle.train.task`);
* :func:`~prefstyle.train.config.load_config` - YAML configs with dotted overrides;
* :class:`~prefstyle.train.trainer.Trainer` - the loop (AMP, clipping, LR schedules, EMA,
  seeding, progress bar, JSONL/TensorBoard logs, validation, checkpoints, ``--resume``, DDP);
* :func:`~prefstyle.train.loading.load_model` - :func:`prefstyle.models.load` (a model from a
  checkpoint path or a name) with the built-in tasks' architectures declared;
* :func:`train` - load a config and run it (models declaring a closed-form fit, see
  :func:`prefstyle.models.loading.register_fit_without_gradients`, are fitted without the Trainer).

Run from the shell: ``prefstyle train CONFIG.yaml key=value ...`` or, for several processes,
``torchrun --nproc_per_node=N -m prefstyle.train CONFIG.yaml key=value ...``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainTask": "task",
    "register_task": "task",
    "get_task": "task",
    "list_tasks": "task",
    "load_config": "config",
    "apply_overrides": "config",
    "Trainer": "trainer",
    "TrainResult": "trainer",
    "EMA": "trainer",
    "lr_factor": "trainer",
    "seed_everything": "trainer",
    "load_model": "loading",
    "model_from_checkpoint": "loading",
    "export_model": "loading",
    "SeededBatches": "data",
    "MetricsLogger": "logger",
    "read_metrics": "logger",
    "read_card": "checkpoint",
}

__all__ = [  # noqa: RUF022 - grouped by module
    "TrainTask",
    "register_task",
    "get_task",
    "list_tasks",
    "load_config",
    "apply_overrides",
    "Trainer",
    "TrainResult",
    "EMA",
    "lr_factor",
    "seed_everything",
    "load_model",
    "model_from_checkpoint",
    "export_model",
    "SeededBatches",
    "MetricsLogger",
    "read_metrics",
    "read_card",
    "train",
]


def train(
    config: Any,
    overrides: list[str] | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> Any:
    """Load ``config`` (a YAML path, or a dict) with ``overrides`` and run it; returns a ``TrainResult``."""
    from prefstyle.models.loading import fit_without_gradients
    from prefstyle.train.config import load_config
    from prefstyle.train.trainer import Trainer

    cfg = load_config(None, overrides, base=config) if isinstance(config, dict) else load_config(config, overrides)
    task = cfg.get("task") or {}
    fit = fit_without_gradients(str(task.get("name", "")))
    if fit is not None:  # a closed-form fit (no weights, no gradient steps): writes a settings checkpoint
        from prefstyle.train.trainer import TrainResult

        path, info = fit(cfg, progress)
        return TrainResult(
            out=path.parent,
            step=1,
            steps=1,
            finished=True,
            model_path=path,
            seconds=info["seconds"],
            metrics={k: v for k, v in info.items() if k != "seconds"},
        )
    return Trainer(cfg, resume=resume, stop_after=stop_after, progress=progress).run()


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'prefstyle.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"prefstyle.train.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
