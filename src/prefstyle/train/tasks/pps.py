"""Training tasks of the three PPS baselines (CVPR 2026) on the shared trainer.

The model-specific parts (network, pairwise loss, validation) live beside each model as a
``*TaskCore`` mixin in :mod:`prefstyle.models`; this module only binds them to
:class:`~prefstyle.train.task.TrainTask` and registers them under the model's name, so the
models layer never imports the trainer.
"""

from __future__ import annotations

from prefstyle.models.exemplar import ExemplarModel, ExemplarTaskCore
from prefstyle.models.upe import UPEModel, UPETaskCore
from prefstyle.models.usd import USDModel, USDTaskCore
from prefstyle.train.task import TrainTask, register_task

__all__ = ["ExemplarTask", "UPETask", "USDTask"]


@register_task(USDModel.name)
class USDTask(USDTaskCore, TrainTask):
    """Shared encoder, one LIIF decoder per training user."""

    name = USDModel.name


@register_task(UPEModel.name)
class UPETask(UPETaskCore, TrainTask):
    """Frozen features, pair Transformer, one global conditioned decoder."""

    name = UPEModel.name


@register_task(ExemplarModel.name)
class ExemplarTask(ExemplarTaskCore, TrainTask):
    """(scene, preferred, non-preferred) triplets as context for a Transformer."""

    name = ExemplarModel.name
