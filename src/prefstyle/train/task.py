"""What a model must tell the trainer: the :class:`TrainTask` contract and the task registry.

A task holds everything model-specific about training; :class:`prefstyle.train.Trainer` does
the rest (optimizer, schedule, AMP, clipping, EMA, seeding, logging, validation, checkpoints,
resume, multi-process training). Register a task under the model's name::

    from prefstyle.train.task import TrainTask, register_task

    @register_task("mymodel")
    class MyTask(TrainTask):
        name = "mymodel"
        def build_model(self): ...
        def train_loader(self, batch_size, seed, rank=0, world_size=1): ...
        def loss(self, model, batch, progress): ...
        def validate(self, model): ...
        def to_inference(self, model): ...
        def describe_data(self): ...

Rules the trainer relies on:

* ``__init__(model_cfg, data_cfg, seed)`` is cheap: it must not load data.
  ``build_model`` may resolve things from the data (e.g. the list of training users) and must
  then record them in ``self.model_cfg``: the checkpoint stores ``model_cfg`` as it is when
  saving, and :func:`prefstyle.models.load` rebuilds the network from it, without the data and
  without this package, through the architecture the model declares in the models layer
  (:func:`prefstyle.models.loading.register_architecture`; see :mod:`prefstyle.train.tasks.toy`).
* ``train_loader(batch_size, seed, rank, world_size)``: ``batch_size`` is the **per-process**
  batch (the global batch is ``batch_size × world_size``); the iterable must give each rank its
  own share. It may be infinite; a finite one is restarted (with ``seed + epoch``) when
  exhausted. For an exact ``--resume`` the iterable may implement ``state_dict()`` /
  ``load_state_dict(state)`` (see :class:`prefstyle.train.data.SeededBatches`); otherwise the
  trainer replays the consumed batches.
* ``loss(model, batch, progress)``: ``model`` is the plain module (never a DDP wrapper: the
  trainer averages gradients across processes itself), in train mode; ``progress`` in [0,1]
  is ``step / steps``. Returns the scalar loss and floats to log. Randomness belongs in the
  batch where possible (then 1-process and N-process runs with the same global batch agree).
* ``validate(model)`` runs in eval mode under ``torch.no_grad`` on rank 0 only, with the EMA
  weights when EMA is on; returns floats (higher or lower is the task's business; the card
  records them).
* ``param_groups(model)`` (optional): optimizer groups with their own base learning rates.
* ``to_inference(model)`` returns a :class:`prefstyle.models.base.PersonalizationModel` (the
  declared architecture's ``to_model``, so that a trained and a loaded model are the same).

Models fitted in closed form (no weights, no gradient steps) declare their fit instead
(:func:`prefstyle.models.loading.register_fit_without_gradients`); :func:`prefstyle.train.train`
runs it without the Trainer.
"""

from __future__ import annotations

import abc
import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from prefstyle.errors import PrefstyleError

__all__ = ["TrainTask", "get_task", "list_tasks", "register_task"]


class TrainTask(abc.ABC):
    """Everything model-specific about training; the Trainer does the rest."""

    name: str = "task"

    def __init__(self, model_cfg: dict, data_cfg: dict, seed: int):
        self.model_cfg: dict[str, Any] = dict(model_cfg or {})
        self.data_cfg: dict[str, Any] = dict(data_cfg or {})
        self.seed = int(seed)

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The trainable module (all parameters)."""

    @abc.abstractmethod
    def train_loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Iterable[Any]:
        """An iterable of batches for this rank (``batch_size`` per process)."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: Any, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss of one batch and the values to log."""

    @abc.abstractmethod
    def validate(self, model: nn.Module) -> dict[str, float]:
        """Protocol metrics on a small validation set."""

    @abc.abstractmethod
    def to_inference(self, model: nn.Module) -> Any:
        """The trained module behind the :class:`~prefstyle.models.base.PersonalizationModel` interface."""

    @abc.abstractmethod
    def describe_data(self) -> dict:
        """JSON-able description of the training data (for the checkpoint's card)."""

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]] | None:
        """Optional optimizer parameter groups (e.g. ``[{"params": [...], "lr": 1e-4}, ...]``).

        ``None`` (the default): one group with every trainable parameter at ``optim.lr``. A
        group's ``lr`` is its base rate, which the schedule scales like ``optim.lr``; the groups
        must list every trainable parameter exactly once.
        """
        return None

    def batch_to(self, batch: Any, device: torch.device) -> Any:
        """Move a batch to ``device`` (tensors inside dicts, lists and tuples); override for other types."""
        return _to_device(batch, device)


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


_TASKS: dict[str, type[TrainTask]] = {}


def register_task(name: str) -> Callable[[type[TrainTask]], type[TrainTask]]:
    """Class decorator: make a :class:`TrainTask` available to ``get_task(name)`` and configs."""

    def deco(cls: type[TrainTask]) -> type[TrainTask]:
        _TASKS[name] = cls
        return cls

    return deco


def _load_builtin_tasks() -> None:
    import prefstyle.train.tasks as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"prefstyle.train.tasks.{mod.name}")


def list_tasks() -> list[str]:
    """Registered task names, sorted."""
    _load_builtin_tasks()
    return sorted(_TASKS)


def get_task(name: str, module: str | None = None) -> type[TrainTask]:
    """The task class registered as ``name``.

    Built-in tasks (``prefstyle.train.tasks.*``) are imported on first use; ``module`` names an
    extra module to import first (a config's ``task.module``: tasks defined outside prefstyle).
    """
    if module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise PrefstyleError(f"cannot import task module {module!r}: {e}") from None
    if name not in _TASKS:
        _load_builtin_tasks()
    if name not in _TASKS:
        from prefstyle.models.base import _load_builtin_models

        _load_builtin_models()  # models may register their task beside the model
    if name not in _TASKS:
        import difflib

        close = difflib.get_close_matches(name, _TASKS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(sorted(_TASKS)) or 'none'})"
        raise PrefstyleError(f"unknown training task '{name}'{hint}")
    return _TASKS[name]
