"""The ``usd`` training task (model: :mod:`prefstyle.models.usd`; shared data handling:
:mod:`prefstyle.train.tasks.pps_base`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prefstyle.errors import PrefstyleError
from prefstyle.models.pps import pairwise_loss, pps_weight
from prefstyle.models.usd import (
    USD_ARCH_KEYS,
    USD_INFER_KEYS,
    USDModel,
    USDNet,
    build_usd_net,
    coords_of,
    sample_points,
    usd_from_net,
)
from prefstyle.train.task import register_task
from prefstyle.train.tasks.pps_bank import PairBatch
from prefstyle.train.tasks.pps_base import PPSTask, unwrap

__all__ = ["USDTask"]


@register_task(USDModel.name)
class USDTask(PPSTask):
    """The ``usd`` training task: shared encoder, one LIIF decoder per training user.

    ``data`` keys: :class:`~prefstyle.train.tasks.pps_base.PPSTask`.

    ``task`` keys: the :class:`USDNet` architecture (``n_feats``, ``n_resblocks``, ``hidden``,
    ``enc_size``, ``pixel_input``, ``feat_unfold``, ``local_ensemble``, ``cell_decode``);
    training: ``target_sizes`` (``[48, 96]``: the target grid of each step is drawn from these),
    ``queries`` (pixels per image and step, 1024), ``loss`` (``l1`` or ``l2``:
    :func:`~prefstyle.models.pps.pairwise_loss`; also the default ``adapt_loss``), ``w_schedule``
    (``linear``), ``w_start``/``w_end`` (0.5/1.5), ``generic_weight`` (1.0: the generic decoder's
    share of the loss); inference: the ``adapt_*`` options and ``render_side`` of :class:`USDModel`.
    ``n_users`` is filled in from the data (the number of decoder slots - 1).
    """

    name = USDModel.name
    #: the model options of the checkpoint (the config check reads them; the rest configure training)
    MODEL_KEYS = USD_ARCH_KEYS + USD_INFER_KEYS

    def users_for_slots(self) -> list[str]:
        users = self.model_cfg.get("users")
        if users is None:
            users = self.train_users()
            self.model_cfg["users"] = list(users)
            self.model_cfg["n_users"] = len(users)
        return list(users)

    def build_model(self) -> USDNet:
        # a new user's decoder adapts with the training distance unless the config says otherwise
        self.model_cfg.setdefault("adapt_loss", self.model_cfg.get("loss", "l1"))
        if self.model_cfg.get("n_users") is None:
            self.model_cfg["n_users"] = len(self.users_for_slots())
        self._model = build_usd_net(self.model_cfg)
        return self._model

    def target_sizes(self) -> list[int]:
        return [int(s) for s in self.model_cfg.get("target_sizes", [48, 96])]

    def bank_sizes(self) -> tuple[int, ...]:
        return (int(self.model_cfg.get("enc_size", 48)), max(self.target_sizes()))

    def slot_map(self) -> torch.Tensor:
        """Bank user index -> decoder slot."""
        if getattr(self, "_slots", None) is None:
            index = {u: i + 1 for i, u in enumerate(self.users_for_slots())}
            bank = self.bank()
            missing = [u for u in bank.users if u not in index]
            if missing:
                raise PrefstyleError(
                    f"usd: {len(missing)} training users have no decoder slot (e.g. {missing[0]}); "
                    "the checkpoint was trained on other users"
                )
            self._slots = torch.tensor([index[u] for u in bank.users])
        return self._slots

    def loss(self, model: nn.Module, batch: PairBatch, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        net = unwrap(model)
        dev = next(net.parameters()).device
        bank = self.bank()
        batch = batch.to("cpu")
        j = batch.judgment
        p_rows, n_rows = bank.pref[j], bank.other[j]
        fed_rows = torch.where(batch.side, p_rows, n_rows)
        x_enc = bank.thumbs[net.enc_size][fed_rows]
        sizes = self.target_sizes()
        s = sizes[min(int(float(batch.u) * len(sizes)), len(sizes) - 1)]
        big = bank.thumbs[max(sizes)]

        def at(rows: torch.Tensor) -> torch.Tensor:
            x = big[rows]
            return x if x.shape[-1] == s else F.interpolate(x, size=(s, s), mode="area")

        fed, i_p, i_n = at(fed_rows), at(p_rows), at(n_rows)
        b = len(j)
        q = int(self.model_cfg.get("queries", 1024))
        if q >= s * s:
            idx = torch.arange(s * s)[None].expand(b, -1)
        else:
            idx = torch.stack([torch.randint(0, s * s, (q,), generator=batch.generator(i)) for i in range(b)])
        coord = coords_of(idx, s, fed.dtype)
        cell = torch.full_like(coord, 2.0 / s)
        gw = float(self.model_cfg.get("generic_weight", 1.0))
        slots = self.slot_map()[batch.user]
        tp, tn, pix = sample_points(i_p, idx), sample_points(i_n, idx), sample_points(fed, idx)
        x_enc, coord, cell, pix, slots, tp, tn = (t.to(dev) for t in (x_enc, coord, cell, pix, slots, tp, tn))
        pred, pred0 = model(x_enc, coord, cell, pix, slots, generic=gw > 0)
        w = pps_weight(
            progress,
            self.model_cfg.get("w_schedule", "linear"),
            float(self.model_cfg.get("w_start", 0.5)),
            float(self.model_cfg.get("w_end", 1.5)),
            n=b,
            generator=batch.generator(0),
        )
        w = w.to(dev)
        kind = self.model_cfg.get("loss", "l1")
        l_user = pairwise_loss(pred, tp, tn, w, kind)
        total = l_user
        logs = {"pair_user": float(l_user.detach()), "w": float(w.mean()), "target_size": float(s)}
        if pred0 is not None:
            l_gen = pairwise_loss(pred0, tp, tn, w, kind)
            total = total + gw * l_gen
            logs["pair_generic"] = float(l_gen.detach())
        with torch.no_grad():
            logs["l1_to_p"] = float((pred - tp).abs().mean())
        return total, logs

    def to_inference(self, model: nn.Module) -> USDModel:
        return usd_from_net(unwrap(model), self.model_cfg)
