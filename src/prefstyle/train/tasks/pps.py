"""Training tasks of the three PPS baselines (CVPR 2026) on the shared trainer.

The model-specific parts (network, pairwise loss, validation) live beside each model as a
``*TaskCore`` mixin in :mod:`prefstyle.models`; this module only binds them to
:class:`~prefstyle.train.task.TrainTask` and registers them, so the models layer never imports
the trainer.
"""

from __future__ import annotations

from prefstyle.models.exemplar import ExemplarTaskCore
from prefstyle.models.tastelut import TasteLUTTaskCore
from prefstyle.models.upe import UPETaskCore
from prefstyle.models.usd import USDTaskCore
from prefstyle.train.task import TrainTask, register_task

__all__ = ["ExemplarTask", "TasteLUTTask", "UPETask", "USDTask"]


@register_task("usd")
class USDTask(USDTaskCore, TrainTask):
    """The ``usd`` task: shared encoder, one LIIF decoder per training user."""

    name = "usd"
    needs_training = True


@register_task("upe")
class UPETask(UPETaskCore, TrainTask):
    """The ``upe`` task: frozen features, pair Transformer, one global conditioned decoder."""

    name = "upe"
    needs_training = True


@register_task("exemplar")
class ExemplarTask(ExemplarTaskCore, TrainTask):
    """The ``exemplar`` task: (scene, preferred, non-preferred) triplets as context for a Transformer."""

    name = "exemplar"
    needs_training = True


@register_task("tastelut")
class TasteLUTTask(TasteLUTTaskCore, TrainTask):
    """The ``tastelut`` task: prefstyle's own model, trained by the ideal-point choice likelihood."""

    name = "tastelut"
    needs_training = True
