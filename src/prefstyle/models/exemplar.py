"""Exemplar-based inference, baseline (c) of the PPS paper (CVPR 2026).

In the manner of PIE-MSM's contextual style prediction (Kosugi & Yamasaki, "Personalized Image
Enhancement Featuring Masked Style Modeling", 2023): the user's ``N`` reference judgments are
given as triplets ``(s, p, n)``: the scene's neutral rendition ``s``, the preferred rendition
``p`` and the non-preferred one ``n``. Each becomes one context token built from

* the content of the scene, ``φ_c(s)`` (a frozen feature extractor),
* the *preferred direction* ``ψ_s(p) − ψ_s(s)`` and
* the *non-preferred direction* ``ψ_s(n) − ψ_s(s)`` (``ψ_s`` a trainable style encoder).

The query image ``q`` becomes a token of its content ``φ_c(q)`` and its current style
``ψ_s(q)`` with the style *to apply* masked (a learned mask embedding, as in masked style
modelling); a Transformer reads the query token with the context tokens and predicts, at the
query's position, the direction ``ẑ`` the user would move ``q`` in. A decoder turns
``(ψ_s(q), ẑ)`` into a colour transform of ``q``. New users need no training: their triplets
are encoded once (the profile) and every query is one forward pass.

Training from pairs (see :mod:`prefstyle.models.pps_common`): the query is ``I_p`` or ``I_n``
of a training user's judgment (at random), the context ``N`` of the user's other judgments
(never of the query's scene), and the output is supervised with ``w·L1(Î, I_p) +
(1 − w)·L1(Î, I_n)``, ``w`` rising 0.5 → 1.5. An auxiliary term (``aux_weight``) trains the
decoder and ``ψ_s`` to be consistent: the decoder, given a context triplet's source style
``ψ_s(s)`` and its true preferred (non-preferred) direction, must reproduce ``p`` (``n``) from
``s``, as PIE-MSM's style encoder/enhancer pair reproduces a known style.

Where this departs from the texts:

* ``φ_c`` is the frozen :class:`~prefstyle.models.pps_common.FrozenBackbone` (EfficientNet-Lite0
  ImageNet weights offline; DINOv2 from local weights when given); PIE-MSM uses its own
  pre-trained content encoder.
* The decoder predicts a 3D LUT (identity + weighted basis LUTs) applied to the full-resolution
  image, not PIE-MSM's enhancement network; any resolution, full detail.
* Datasets without the scenes' neutral renditions: ``s`` is replaced by the non-preferred
  image, so the preferred direction becomes ``ψ_s(p) − ψ_s(n)`` and the non-preferred one 0.
* The style encoder sees ``style_size``-pixel thumbnails (32 by default, for the CPU).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prefstyle.errors import PrefstyleError
from prefstyle.models.base import (
    PersonalizationModel,
    Profile,
    Reference,
    register_model,
)
from prefstyle.models.loading import register_architecture
from prefstyle.models.pps_common import (
    BasisLUT,
    FeatureScaler,
    FrozenBackbone,
    LUTDecoder,
    NetModelMixin,
    PairBatch,
    PPSTaskMixin,
    StyleEncoder,
    _Frozen,
    apply_luts,
    embed_images,
    pairwise_loss,
    pps_weight,
    render_lut_model,
    square_thumbs,
)

__all__ = ["ExemplarModel", "ExemplarNet"]


class ExemplarNet(nn.Module):
    """The trainable exemplar model (the frozen ``φ_c`` is held beside it, outside its state dict).

    * ``style(x (B,3,t,t)) -> (B, style_dim)``: ``ψ_s``;
    * ``predict(c_q (B,D), st_q (B,sd), c_ctx (B,N,D), dp (B,N,sd), dn (B,N,sd), mask (B,N)) -> ẑ (B,sd)``;
    * ``luts(st (B,sd), z (B,sd)) -> (B,3,S,S,S)``: the decoder.
    """

    def __init__(self, backbone: str = "efficientnet_lite0", backbone_weights: str | None = None,
                 backbone_size: int = 224, backbone_stats: bool = True, d_model: int = 128, n_layers: int = 2,
                 n_heads: int = 4, ff: int = 256, style_dim: int = 64, style_size: int = 32, thumb: int = 48,
                 n_basis: int = 16, lut_size: int = 17, decoder_hidden: int = 256,
                 backbone_module: FrozenBackbone | None = None):
        super().__init__()
        fb = backbone_module or FrozenBackbone(backbone, backbone_weights, backbone_size, backbone_stats)
        self._backbone = _Frozen(fb)
        d = fb.dim
        self.arch = {"backbone": fb.name, "backbone_size": fb.input_size, "backbone_stats": fb.stats,
                     "d_model": d_model, "n_layers": n_layers, "n_heads": n_heads, "ff": ff, "style_dim": style_dim,
                     "style_size": style_size, "thumb": thumb, "n_basis": n_basis, "lut_size": lut_size,
                     "decoder_hidden": decoder_hidden}
        self.style_size, self.thumb, self.style_dim = int(style_size), int(thumb), int(style_dim)
        self.scaler = FeatureScaler(d)
        self.style = StyleEncoder(style_dim)
        self.in_content = nn.Linear(d, d_model)
        self.in_dir_p = nn.Linear(style_dim, d_model)
        self.in_dir_n = nn.Linear(style_dim, d_model)
        self.in_style_q = nn.Linear(style_dim, d_model)
        self.mask_token = nn.Parameter(torch.zeros(d_model))
        self.type_embed = nn.Parameter(torch.zeros(2, d_model))  # 0: query, 1: context
        layer = nn.TransformerEncoderLayer(d_model, n_heads, ff, dropout=0.0, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, style_dim))
        self.decoder = LUTDecoder(2 * style_dim, decoder_hidden, n_basis, lut_size)
        nn.init.normal_(self.type_embed, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    @property
    def backbone(self) -> FrozenBackbone:
        return self._backbone.module

    def context_tokens(self, c_ctx: torch.Tensor, dp: torch.Tensor, dn: torch.Tensor) -> torch.Tensor:
        return (self.in_content(self.scaler(c_ctx)) + self.in_dir_p(dp) + self.in_dir_n(dn)
                + self.type_embed[1])

    def predict(self, c_q: torch.Tensor, st_q: torch.Tensor, c_ctx: torch.Tensor, dp: torch.Tensor,
                dn: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The masked style direction ``ẑ (B, style_dim)`` of each query given its context (N may be 0)."""
        b = c_q.shape[0]
        q = self.in_content(self.scaler(c_q)) + self.in_style_q(st_q) + self.mask_token + self.type_embed[0]
        x = torch.cat([q[:, None], self.context_tokens(c_ctx, dp, dn)], dim=1)
        pad = None
        if mask is not None and c_ctx.shape[1] > 0:
            pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=mask.device), ~mask], dim=1)
        return self.out(self.transformer(x, src_key_padding_mask=pad)[:, 0])

    def luts(self, st: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([st, z], dim=1))

    def style_of(self, img: torch.Tensor) -> torch.Tensor:
        """``ψ_s`` of images ``(B,3,H,W)`` of any size (square thumbnail of ``style_size``)."""
        return self.style(square_thumbs(img, self.style_size))

    def forward(self, style_imgs: torch.Tensor, q_idx: torch.Tensor, s_idx: torch.Tensor, p_idx: torch.Tensor,
                n_idx: torch.Tensor, mask: torch.Tensor, c_q: torch.Tensor, c_ctx: torch.Tensor,
                aux_idx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Training forward over a batch whose distinct images are ``style_imgs (M,3,t,t)``.

        ``q_idx (B,)``: the query's row in ``style_imgs``; ``s_idx``, ``p_idx``, ``n_idx (B,N)``:
        the context triplets' rows; ``c_q (B,D)``, ``c_ctx (B,N,D)``: content features. Returns
        (``ẑ (B,sd)``, the query's LUTs ``(B,3,S,S,S)``, and with ``aux_idx (B,)`` (a context
        position per sample) the LUTs for (``s → p``, ``s → n``) stacked ``(2B,3,S,S,S)``).
        """
        st = self.style(style_imgs)  # (M, sd): ψ_s once per distinct image
        dp = st[p_idx] - st[s_idx]
        dn = st[n_idx] - st[s_idx]
        z = self.predict(c_q, st[q_idx], c_ctx, dp, dn, mask)
        luts = self.luts(st[q_idx], z)
        aux = None
        if aux_idx is not None:
            r = torch.arange(len(aux_idx), device=aux_idx.device)
            st_s = st[s_idx[r, aux_idx]]
            aux = self.luts(torch.cat([st_s, st_s]), torch.cat([dp[r, aux_idx], dn[r, aux_idx]]))
        return z, luts, aux


@register_model("exemplar")
class ExemplarModel(NetModelMixin, PersonalizationModel):
    """Exemplar-based inference behind the common interface (training-free for new users).

    ``personalize`` encodes the references' triplets (content of the scene, preferred and
    non-preferred directions) into the profile; ``render`` predicts each image's style from
    them and applies the decoder's LUT at full resolution.
    """

    name = "exemplar"

    def __init__(self, net: ExemplarNet | None = None, **arch: Any):
        self.net = net if net is not None else ExemplarNet(**arch).eval()

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        net = self.net
        sd = net.style_dim
        with torch.no_grad():
            srcs = [r.source if r.source is not None else r.other for r in refs]
            content = embed_images(net.backbone, srcs)
            if refs:
                st_s = torch.cat([net.style_of(x[None]) for x in srcs])
                st_p = torch.cat([net.style_of(r.preferred[None]) for r in refs])
                st_n = torch.cat([net.style_of(r.other[None]) for r in refs])
                dp, dn = st_p - st_s, st_n - st_s
            else:
                dp = dn = torch.zeros(0, sd)
        return Profile(model=self.name, user=user, model_config=self.config(),
                       tensors={"content": content.contiguous(), "dir_p": dp.contiguous(), "dir_n": dn.contiguous()},
                       data={"n_refs": len(refs), "with_sources": sum(r.source is not None for r in refs),
                             "weights": self.fingerprint})

    def context(self, profile: Profile) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.check_weights(profile)
        t = profile.tensors
        if not {"content", "dir_p", "dir_n"} <= set(t):
            raise PrefstyleError("exemplar profile is missing its context tensors (damaged or another model)")
        c, dp, dn = t["content"], t["dir_p"], t["dir_n"]
        if c.ndim != 2 or c.shape[1] != self.net.backbone.dim or dp.shape != (c.shape[0], self.net.style_dim):
            raise PrefstyleError("exemplar profile tensors do not fit this model (another backbone or size)")
        return c, dp, dn

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        c, dp, dn = self.context(profile)
        squeeze = img.ndim == 3
        x = img[None] if squeeze else img
        b = x.shape[0]
        net = self.net
        with torch.no_grad():
            c_q = net.backbone(x)
            st_q = net.style_of(x)
            z = net.predict(c_q, st_q, c[None].expand(b, -1, -1), dp[None].expand(b, -1, -1),
                            dn[None].expand(b, -1, -1))
            luts = net.luts(st_q, z)
        out = render_lut_model(x, luts)
        return out[0] if squeeze else out


def _unwrap(model: nn.Module) -> Any:
    return getattr(model, "module", model)


def exemplar_batch_loss(model: nn.Module, bank: Any, batch: PairBatch, w: float | torch.Tensor, loss: str = "l1",
                        aux_weight: float = 0.5, tv_weight: float = 1e-4,
                        mono_weight: float = 10.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of one batch (see the module docstring); ``model`` may be DDP-wrapped."""
    net = _unwrap(model)
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
    feats = bank.features
    aux_idx = None
    if aux_weight > 0 and n > 0:
        # one real context triplet per sample, from its noise seed (samples without context: masked below)
        counts = batch.context_mask.sum(1).clamp_min(1)
        aux_idx = (batch.noise % counts).clamp_max(n - 1)
    mv = lambda t: None if t is None else t.to(dev)
    _, luts, aux = model(mv(bank.thumbs[net.style_size][uniq]), mv(q_idx), mv(s_idx), mv(p_idx), mv(n_idx),
                         mv(batch.context_mask), mv(feats[q_rows]), mv(feats[cs]), mv(aux_idx))
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


class ExemplarTaskCore(PPSTaskMixin):
    """Model-specific half of the ``exemplar`` training task (see :class:`PPSTaskMixin` for ``data``).

    ``task`` keys: the :class:`ExemplarNet` architecture; ``n_context`` (``[1, 32]``), ``loss``
    (``l1``), ``w_schedule`` (``linear``), ``w_start``/``w_end`` (0.5/1.5), ``aux_weight`` (0.5),
    ``tv_weight`` (1e-4), ``mono_weight`` (10).
    """

    name = "exemplar"
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
            model.scaler.fit(bank.features)
        return bank

    def train_loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Any:
        loader = super().train_loader(batch_size, seed, rank, world_size)
        if getattr(self, "_model", None) is not None:
            self._prepare(self._model)
        return loader

    def loss(self, model: nn.Module, batch: PairBatch, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        bank = self._prepare(_unwrap(model))
        w = pps_weight(progress, self.model_cfg.get("w_schedule", "linear"), float(self.model_cfg.get("w_start", 0.5)),
                       float(self.model_cfg.get("w_end", 1.5)), n=len(batch.judgment), generator=batch.generator(0))
        total, logs = exemplar_batch_loss(model, bank, batch, w, self.model_cfg.get("loss", "l1"),
                                          float(self.model_cfg.get("aux_weight", 0.5)),
                                          float(self.model_cfg.get("tv_weight", 1e-4)),
                                          float(self.model_cfg.get("mono_weight", 10.0)))
        logs["w"] = float(w.mean())
        return total, logs

    def to_inference(self, model: nn.Module) -> ExemplarModel:
        return exemplar_from_net(_unwrap(model), self.model_cfg)


#: the ``task.model`` options that shape the network (the rest configure training)
EXEMPLAR_ARCH_KEYS = ("backbone", "backbone_weights", "backbone_size", "backbone_stats", "d_model", "n_layers",
                      "n_heads", "ff", "style_dim", "style_size", "thumb", "n_basis", "lut_size", "decoder_hidden")


def build_exemplar_net(opts: dict[str, Any]) -> ExemplarNet:
    """The untrained :class:`ExemplarNet` of a checkpoint's ``task.model`` options."""
    return ExemplarNet(**{k: opts[k] for k in EXEMPLAR_ARCH_KEYS if k in opts})


def exemplar_from_net(net: nn.Module, opts: dict[str, Any]) -> ExemplarModel:
    """The trained network behind the model interface."""
    assert isinstance(net, ExemplarNet)
    return ExemplarModel(net=net)


register_architecture(ExemplarModel.name, build_exemplar_net, exemplar_from_net)
