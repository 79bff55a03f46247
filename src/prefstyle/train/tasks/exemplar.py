"""The ``exemplar`` training task (model: :mod:`prefstyle.models.exemplar`; shared data handling:
:mod:`prefstyle.train.tasks.pps_base`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prefstyle.models.exemplar import (
    EXEMPLAR_ARCH_KEYS,
    ExemplarModel,
    ExemplarNet,
    build_exemplar_net,
    exemplar_from_net,
)
from prefstyle.models.pps import BasisLUT, apply_luts, pairwise_loss, pps_weight
from prefstyle.train.task import register_task
from prefstyle.train.tasks.pps_bank import PairBatch
from prefstyle.train.tasks.pps_base import PPSTask, unwrap

__all__ = ["ExemplarTask", "exemplar_batch_loss"]


def exemplar_batch_loss(
    model: nn.Module,
    bank: Any,
    batch: PairBatch,
    w: float | torch.Tensor,
    loss: str = "l1",
    aux_weight: float = 0.5,
    tv_weight: float = 1e-4,
    mono_weight: float = 10.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of one batch (see the module docstring); ``model`` may be DDP-wrapped."""
    net = unwrap(model)
    dev = next(net.parameters()).device
    batch = batch.to("cpu")
    j = batch.judgment
    p_rows, n_rows = bank.pref[j], bank.other[j]
    q_rows = torch.where(batch.side, p_rows, n_rows)
    ctx = batch.context.clamp_min(0)
    cp, cn = bank.pref[ctx], bank.other[ctx]
    cs = torch.where(bank.source[ctx] >= 0, bank.source[ctx], cn)  # no neutral source: s := n
    rows = torch.cat([q_rows, cs.flatten(), cp.flatten(), cn.flatten()])
    uniq, inv = torch.unique(rows, return_inverse=True)
    b, n = ctx.shape
    q_idx = inv[:b]
    s_idx, p_idx, n_idx = (inv[b + k * b * n : b + (k + 1) * b * n].view(b, n) for k in range(3))
    feats = bank.require_features()
    aux_idx = None
    if aux_weight > 0 and n > 0:
        # one real context triplet per sample, from its noise seed (samples without context: masked below)
        counts = batch.context_mask.sum(1).clamp_min(1)
        aux_idx = (batch.noise % counts).clamp_max(n - 1)

    def mv(t: torch.Tensor) -> torch.Tensor:
        return t.to(dev)

    _, luts, aux = model(
        mv(bank.thumbs[net.style_size][uniq]),
        mv(q_idx),
        mv(s_idx),
        mv(p_idx),
        mv(n_idx),
        mv(batch.context_mask),
        mv(feats[q_rows]),
        mv(feats[cs]),
        None if aux_idx is None else mv(aux_idx),
    )
    th = bank.thumbs[net.thumb]
    x, i_p, i_n = mv(th[q_rows]), mv(th[p_rows]), mv(th[n_rows])
    if torch.is_tensor(w):
        w = w.to(dev)
    out = apply_luts(x, luts)
    main = pairwise_loss(out, i_p, i_n, w, loss)
    tv, mono = BasisLUT.regularizer(luts)
    total = main + tv_weight * tv + mono_weight * mono
    logs = {"pair": float(main.detach()), "tv": float(tv.detach()), "mono": float(mono.detach())}
    if aux is not None:
        r = torch.arange(b)
        has = mv(batch.context_mask[r, aux_idx].float())
        src = mv(th[cs[r, aux_idx]])
        aux_out = apply_luts(torch.cat([src, src]), aux)
        target = mv(torch.cat([th[cp[r, aux_idx]], th[cn[r, aux_idx]]]))
        per = (aux_out - target).abs().flatten(1).mean(1) * torch.cat([has, has])
        aux_loss = per.sum() / (2 * has.sum()).clamp_min(1)
        total = total + aux_weight * aux_loss
        logs["aux"] = float(aux_loss.detach())
    with torch.no_grad():
        logs["l1_to_p"] = float((out - i_p).abs().mean())
    return total, logs


@register_task(ExemplarModel.name)
class ExemplarTask(PPSTask):
    """The ``exemplar`` training task: (scene, preferred, non-preferred) triplets as context for a Transformer.

    ``data`` keys: :class:`~prefstyle.train.tasks.pps_base.PPSTask`.

    ``task`` keys: the :class:`ExemplarNet` architecture; ``n_context`` (``[1, 32]``), ``loss``
    (``l1``), ``w_schedule`` (``linear``), ``w_start``/``w_end`` (0.5/1.5), ``aux_weight`` (0.5),
    ``tv_weight`` (1e-4), ``mono_weight`` (10).
    """

    name = ExemplarModel.name
    #: the model options of the checkpoint (the config check reads them; the rest configure training)
    MODEL_KEYS = EXEMPLAR_ARCH_KEYS
    uses_backbone = True

    def build_model(self) -> ExemplarNet:
        self._model = build_exemplar_net(self.model_cfg)
        return self._model

    def bank_sizes(self) -> tuple[int, ...]:
        return (int(self.model_cfg.get("thumb", 48)), int(self.model_cfg.get("style_size", 32)))

    def n_context(self) -> int | tuple[int, int]:
        n = self.model_cfg.get("n_context", [1, 32])
        return (int(n), int(n)) if isinstance(n, int) else (int(n[0]), int(n[1]))

    def _prepare(self, model: ExemplarNet) -> Any:
        bank = self.bank(model)
        if not bool(model.scaler.fitted):
            model.scaler.fit(bank.require_features())
        return bank

    def train_loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Any:
        loader = super().train_loader(batch_size, seed, rank, world_size)
        if getattr(self, "_model", None) is not None:
            self._prepare(self._model)
        return loader

    def loss(self, model: nn.Module, batch: PairBatch, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        bank = self._prepare(unwrap(model))
        w = pps_weight(
            progress,
            self.model_cfg.get("w_schedule", "linear"),
            float(self.model_cfg.get("w_start", 0.5)),
            float(self.model_cfg.get("w_end", 1.5)),
            n=len(batch.judgment),
            generator=batch.generator(0),
        )
        total, logs = exemplar_batch_loss(
            model,
            bank,
            batch,
            w,
            self.model_cfg.get("loss", "l1"),
            float(self.model_cfg.get("aux_weight", 0.5)),
            float(self.model_cfg.get("tv_weight", 1e-4)),
            float(self.model_cfg.get("mono_weight", 10.0)),
        )
        logs["w"] = float(w.mean())
        return total, logs

    def to_inference(self, model: nn.Module) -> ExemplarModel:
        return exemplar_from_net(unwrap(model), self.model_cfg)
