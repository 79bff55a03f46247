"""The ``upe`` training task (model: :mod:`prefstyle.models.upe`; shared data handling:
:mod:`prefstyle.train.tasks.pps_base`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prefstyle.models.pps import BasisLUT, pairwise_loss, pps_weight
from prefstyle.models.upe import (
    UPE_ARCH_KEYS,
    UPEModel,
    UPENet,
    build_upe_net,
    upe_from_net,
)
from prefstyle.train.task import register_task
from prefstyle.train.tasks.pps_bank import PairBatch
from prefstyle.train.tasks.pps_base import PPSTask, unwrap

__all__ = ["UPETask", "upe_batch_loss"]


def upe_batch_loss(
    net: nn.Module,
    bank: Any,
    batch: PairBatch,
    w: float | torch.Tensor,
    loss: str = "l1",
    tv_weight: float = 1e-4,
    mono_weight: float = 10.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The pairwise training loss of one batch (bank thumbnails of size ``thumb``, cached features).

    ``net`` is a :class:`UPENet` or a wrapper (DDP) whose ``forward`` is the net's.
    """
    dev = next(unwrap(net).parameters()).device
    batch = batch.to("cpu")
    j = batch.judgment
    p_rows, n_rows = bank.pref[j], bank.other[j]
    fed_rows = torch.where(batch.side, p_rows, n_rows)
    th = bank.thumbs[unwrap(net).thumb]
    feats = bank.features
    ctx = batch.context.clamp_min(0)
    x, i_p, i_n, f_q, fp, fn, mask = (
        t.to(dev)
        for t in (
            th[fed_rows],
            th[p_rows],
            th[n_rows],
            feats[fed_rows],
            feats[bank.pref[ctx]],
            feats[bank.other[ctx]],
            batch.context_mask,
        )
    )
    if torch.is_tensor(w):
        w = w.to(dev)
    out, luts = net(x, f_q, fp, fn, mask)
    main = pairwise_loss(out, i_p, i_n, w, loss)
    tv, mono = BasisLUT.regularizer(luts)
    total = main + tv_weight * tv + mono_weight * mono
    with torch.no_grad():
        l1p = float((out - i_p).abs().mean())
    return total, {"pair": float(main.detach()), "tv": float(tv.detach()), "mono": float(mono.detach()), "l1_to_p": l1p}


@register_task(UPEModel.name)
class UPETask(PPSTask):
    """The ``upe`` training task: frozen features, pair Transformer, one global conditioned decoder.

    ``data`` keys: :class:`~prefstyle.train.tasks.pps_base.PPSTask`.

    ``task`` keys: the :class:`UPENet` architecture; ``n_context`` (``[1, 32]``: N per batch),
    ``loss`` (``l1``), ``w_schedule`` (``linear``), ``w_start`` (0.5), ``w_end`` (1.5),
    ``tv_weight`` (1e-4), ``mono_weight`` (10).
    """

    name = UPEModel.name
    #: the model options of the checkpoint (the config check reads them; the rest configure training)
    MODEL_KEYS = UPE_ARCH_KEYS
    uses_backbone = True

    def arch(self) -> dict[str, Any]:
        return {k: self.model_cfg[k] for k in UPE_ARCH_KEYS if k in self.model_cfg}

    def build_model(self) -> UPENet:
        self._model = build_upe_net(self.model_cfg)
        return self._model

    def bank_sizes(self) -> tuple[int, ...]:
        return (int(self.model_cfg.get("thumb", 48)),)

    def n_context(self) -> int | tuple[int, int]:
        n = self.model_cfg.get("n_context", [1, 32])
        return (int(n), int(n)) if isinstance(n, int) else (int(n[0]), int(n[1]))

    def _prepare(self, model: UPENet) -> Any:
        bank = self.bank(model)
        if not bool(model.scaler.fitted):
            feats = bank.require_features()
            model.scaler.fit(feats)
            diffs = feats[bank.pref] - feats[bank.other]
            model.style_scaler.fit(torch.cat([diffs, -diffs]))  # symmetric: the std of a preference difference
        return bank

    def train_loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Any:
        loader = super().train_loader(batch_size, seed, rank, world_size)
        if getattr(self, "_model", None) is not None:
            self._prepare(self._model)
        return loader

    def loss(self, model: nn.Module, batch: PairBatch, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        bank = self._prepare(unwrap(model))
        n = len(batch.judgment)
        w = pps_weight(
            progress,
            self.model_cfg.get("w_schedule", "linear"),
            float(self.model_cfg.get("w_start", 0.5)),
            float(self.model_cfg.get("w_end", 1.5)),
            n=n,
            generator=batch.generator(0),
        )
        total, logs = upe_batch_loss(
            model,
            bank,
            batch,
            w,
            self.model_cfg.get("loss", "l1"),
            float(self.model_cfg.get("tv_weight", 1e-4)),
            float(self.model_cfg.get("mono_weight", 10.0)),
        )
        logs["w"] = float(w.mean())
        return total, logs

    def to_inference(self, model: nn.Module) -> UPEModel:
        return upe_from_net(unwrap(model), self.model_cfg)
