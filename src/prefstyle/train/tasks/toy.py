"""``toy-affine``: the smallest complete task - learn one fixed colour transform.

A tiny per-pixel network (1×1 convolutions, residual) learns to map random colour images to a
fixed target transform of them (a 3×4 affine colour matrix, ``data.matrix``, default a warm,
contrasty look). It exercises every part of the trainer in seconds (the trainer's tests,
including the 2-process DDP test, run on it) and is the template for a new task: a cheap
``__init__``, a :class:`~prefstyle.train.data.SeededBatches` stream, a deterministic loss, a
validation metric and an inference wrapper.

model options: ``hidden`` (default 8). data options: ``size`` (image side, default 8),
``matrix`` (3×4 rows ``[r, g, b, offset]``), ``val_images`` (default 32).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prefstyle.losses import l1_loss
from prefstyle.metrics.functional import psnr
from prefstyle.models.base import PersonalizationModel, Profile, Reference
from prefstyle.models.loading import register_architecture
from prefstyle.train.data import SeededBatches
from prefstyle.train.task import TrainTask, register_task

DEFAULT_MATRIX = [[1.10, 0.05, 0.00, 0.02], [0.00, 1.00, 0.00, 0.00], [0.00, 0.00, 0.85, -0.03]]


class ToyNet(nn.Module):
    """``(B,3,H,W) -> (B,3,H,W)``: ``x + conv1x1(tanh(conv1x1(x)))``."""

    def __init__(self, hidden: int = 8):
        super().__init__()
        self.a = nn.Conv2d(3, hidden, 1)
        self.b = nn.Conv2d(hidden, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.tanh(self.a(x)))


class ToyModel(PersonalizationModel):
    """The trained toy network behind the model interface (the same look for every user)."""

    name = "toy-affine"

    def __init__(self, net: ToyNet):
        self.net = net.eval()

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        return Profile(model=self.name, user=user, model_config=self.config(), data={"n_refs": len(refs)})

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        self.check_profile(profile)
        with torch.no_grad():
            return self.net(img).clamp(0, 1)


def build_toy_net(opts: dict[str, Any]) -> ToyNet:
    """The network of a checkpoint's ``task.model`` options (what loading a checkpoint rebuilds)."""
    return ToyNet(int(opts.get("hidden", 8)))


def toy_from_net(net: nn.Module, opts: dict[str, Any]) -> PersonalizationModel:
    """The trained network behind the model interface."""
    assert isinstance(net, ToyNet)
    return ToyModel(net)


#: how ``prefstyle.models.load`` rebuilds a checkpoint of this task (a new task declares this too)
register_architecture(ToyModel.name, build_toy_net, toy_from_net)


def apply_matrix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``(B,3,H,W)`` through a ``(3,4)`` affine colour matrix."""
    return torch.einsum("ij,bjhw->bihw", m[:, :3], x) + m[:, 3].view(1, 3, 1, 1)


@register_task(ToyModel.name)
class ToyAffineTask(TrainTask):
    name = ToyModel.name

    def __init__(self, model_cfg: dict, data_cfg: dict, seed: int):
        super().__init__(model_cfg, data_cfg, seed)
        self.size = int(self.data_cfg.get("size", 8))
        self.matrix = torch.tensor(self.data_cfg.get("matrix", DEFAULT_MATRIX), dtype=torch.float32)

    def build_model(self) -> nn.Module:
        self.model_cfg.setdefault("hidden", 8)
        return build_toy_net(self.model_cfg)

    def _make(self, step: int, gen: torch.Generator, n: int, part: slice) -> dict[str, torch.Tensor]:
        x = torch.rand(n, 3, self.size, self.size, generator=gen)[part]
        return {"x": x, "y": apply_matrix(x, self.matrix)}

    def train_loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> SeededBatches:
        return SeededBatches(self._make, batch_size, seed, rank, world_size)

    def loss(self, model: nn.Module, batch: Any, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        loss = l1_loss(model(batch["x"]), batch["y"])
        return loss, {}

    def validate(self, model: nn.Module) -> dict[str, float]:
        g = torch.Generator().manual_seed(10_000 + self.seed)
        x = torch.rand(int(self.data_cfg.get("val_images", 32)), 3, self.size, self.size, generator=g)
        dev = next(model.parameters()).device
        y = apply_matrix(x, self.matrix)
        out = model(x.to(dev)).cpu()
        return {
            "psnr": float(psnr(out.clamp(0, 1), y.clamp(0, 1)).mean()),
            "psnr_identity": float(psnr(x, y.clamp(0, 1)).mean()),
        }

    def to_inference(self, model: nn.Module) -> PersonalizationModel:
        return toy_from_net(model, self.model_cfg)

    def describe_data(self) -> dict:
        return {"kind": "random colour images", "size": self.size, "matrix": self.matrix.tolist()}
