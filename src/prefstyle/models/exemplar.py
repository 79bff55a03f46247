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

Training from pairs (see :mod:`prefstyle.models.pps`): the query is ``I_p`` or ``I_n``
of a training user's judgment (at random), the context ``N`` of the user's other judgments
(never of the query's scene), and the output is supervised with ``w·L(Î, I_p) +
(1 − w)·L(Î, I_n)``, ``w`` rising 0.5 → 1.5 (``L``: ``task.loss``, L1 by default; the paper's,
in our reading, is L2: :mod:`prefstyle.models.pps.objective`). An auxiliary term (``aux_weight``) trains the
decoder and ``ψ_s`` to be consistent: the decoder, given a context triplet's source style
``ψ_s(s)`` and its true preferred (non-preferred) direction, must reproduce ``p`` (``n``) from
``s``, as PIE-MSM's style encoder/enhancer pair reproduces a known style.

Where this departs from the texts:

* ``φ_c`` is the frozen :class:`~prefstyle.models.pps.FrozenBackbone` (EfficientNet-Lite0
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
from prefstyle.models.pps import (
    FeatureScaler,
    FrozenBackbone,
    LUTDecoder,
    NetModelMixin,
    StyleEncoder,
    Unregistered,
    embed_images,
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
        style_size: int = 32,
        thumb: int = 48,
        n_basis: int = 16,
        lut_size: int = 17,
        decoder_hidden: int = 256,
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
            "style_size": style_size,
            "thumb": thumb,
            "n_basis": n_basis,
            "lut_size": lut_size,
            "decoder_hidden": decoder_hidden,
        }
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
        return self.in_content(self.scaler(c_ctx)) + self.in_dir_p(dp) + self.in_dir_n(dn) + self.type_embed[1]

    def predict(
        self,
        c_q: torch.Tensor,
        st_q: torch.Tensor,
        c_ctx: torch.Tensor,
        dp: torch.Tensor,
        dn: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
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

    def forward(
        self,
        style_imgs: torch.Tensor,
        q_idx: torch.Tensor,
        s_idx: torch.Tensor,
        p_idx: torch.Tensor,
        n_idx: torch.Tensor,
        mask: torch.Tensor,
        c_q: torch.Tensor,
        c_ctx: torch.Tensor,
        aux_idx: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
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

    net: ExemplarNet

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
        return Profile(
            model=self.name,
            user=user,
            model_config=self.config(),
            tensors={"content": content.contiguous(), "dir_p": dp.contiguous(), "dir_n": dn.contiguous()},
            data={
                "n_refs": len(refs),
                "with_sources": sum(r.source is not None for r in refs),
                "weights": self.fingerprint,
            },
        )

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
            z = net.predict(
                c_q, st_q, c[None].expand(b, -1, -1), dp[None].expand(b, -1, -1), dn[None].expand(b, -1, -1)
            )
            luts = net.luts(st_q, z)
        out = render_lut_model(x, luts)
        return out[0] if squeeze else out


#: the ``task.model`` options that shape the network (the rest configure training)
EXEMPLAR_ARCH_KEYS = (
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
    "style_size",
    "thumb",
    "n_basis",
    "lut_size",
    "decoder_hidden",
)


def build_exemplar_net(opts: dict[str, Any]) -> ExemplarNet:
    """The untrained :class:`ExemplarNet` of a checkpoint's ``task.model`` options."""
    return ExemplarNet(**{k: opts[k] for k in EXEMPLAR_ARCH_KEYS if k in opts})


def exemplar_from_net(net: nn.Module, opts: dict[str, Any]) -> ExemplarModel:
    """The trained network behind the model interface."""
    assert isinstance(net, ExemplarNet)
    return ExemplarModel(net=net)


register_architecture(ExemplarModel.name, build_exemplar_net, exemplar_from_net)
