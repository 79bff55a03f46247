"""TasteLUT: prefstyle's own model. A user's taste read from pairs in one forward pass, rendered
by an image- and user-adaptive 3D LUT at any resolution.

Personalization (no per-user training). Each reference judgment ``(s, p, n)`` (the scene's
neutral rendition when the dataset has one, the preferred and the non-preferred rendition)
becomes one token from a small trainable style encoder ``ψ`` (a 4-layer CNN on a 32-pixel
thumbnail plus colour statistics, :class:`~prefstyle.models.pps_common.StyleEncoder`): the
*direction* of the choice ``ψ(p) − ψ(n)``, both renditions relative to the source ``ψ(p) −
ψ(s)``, ``ψ(n) − ψ(s)``, and the scene ``ψ(s)`` (without a source: the mean of ``ψ(p)``,
``ψ(n)`` and zero relative terms, with a flag); ``ψ`` is joined by fixed CIELAB statistics
(:func:`taste_stats`). The tokens are pooled (``aggregator="mean"``, DeepSets, the default; or
a set Transformer with a learned ``[USER]`` token) into a learned embedding, to which the mean
statistics differences preferred − non-preferred and preferred − source are appended: that
vector ``e_u`` is the profile. No references: ``e_u`` is the population's.

Rendering. The query's own ``ψ(q)`` and ``e_u`` go through an MLP to the weights of a basis of
3D LUTs (identity + learned offset + weighted basis, as in Image-Adaptive-3DLUT); the LUT is
applied to the full-resolution image (:func:`prefstyle.imaging.lut.apply_lut`). Scene
dependence (a dark scene wants more lift) comes from ``ψ(q)``; the taste from ``e_u``.

Training from pairs only (no ground truth), on the shared trainer. A step takes a training
user's judgment ``(s, p, n)`` and ``N`` of the user's *other* judgments as context (never of the
same scene), renders the scene from each of its available renditions, and minimises

* the ideal-point choice loss (:func:`prefstyle.losses.ideal_point_choice_loss`): each output
  ``Î`` is taken as the user's ideal point, and the loss is the negative log-likelihood of the
  user's held-out choice ``p ≻ n`` under Bradley-Terry on CIELAB distances (temperature
  ``temperature``). It is a DPO-like objective: it scores the renderer by the user's own
  choices, not by regression to the chosen image, so the output can move past the renditions
  the user was shown towards where their choices point;
* a small dual-supervision anchor ``anchor·L1(Î, I_p)``, keeping the output on the image manifold
  the renditions span where the choices say little;
* consistency: the renderings of one scene from its different renditions should agree (a user's
  ideal of a scene does not depend on which rendition it starts from), ``consistency·L1``;
* the LUT smoothness and monotonicity terms of Image-Adaptive-3DLUT.

What it is not: a model of the simulator. It never reads ground truth, the style universe's
parameters or the simulated displays; it sees only images and choices, so it trains the same
way on a real pairs dataset (with or without neutral sources).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prefstyle.errors import PrefstyleError
from prefstyle.losses import ideal_point_choice_loss, lab_distance
from prefstyle.models.base import (
    PersonalizationModel,
    Profile,
    Reference,
    register_model,
)
from prefstyle.models.pps_common import (
    BasisLUT,
    LUTDecoder,
    NetModelMixin,
    PairBatch,
    PPSTaskMixin,
    StyleEncoder,
    apply_luts,
    render_lut_model,
    square_thumbs,
)

__all__ = ["TasteLUTModel", "TasteLUTNet", "TasteLUTTaskCore", "taste_batch_loss"]


def taste_stats(x: torch.Tensor) -> torch.Tensor:
    """Fixed colour-and-tone statistics ``(B, 12)`` of thumbnails ``(B,3,h,w)`` sRGB [0,1], CIELAB/10 units.

    Mean L, a, b; std of L; mean chroma; the 10/50/90 % quantiles of L; mean a and b of the
    darkest and the brightest third of the pixels (split toning). Differences of these between
    a preferred and a non-preferred rendition say, in plain numbers, which way a choice points.
    """
    from prefstyle.imaging.color import rgb_to_lab

    lab = rgb_to_lab(x.clamp(0, 1)).flatten(2)  # (B,3,P)
    L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    q = torch.quantile(L, torch.tensor([0.1, 0.5, 0.9], dtype=x.dtype, device=x.device), dim=1).T  # (B,3)
    order = L.argsort(dim=1)
    k = max(1, L.shape[1] // 3)
    lo, hi = order[:, :k], order[:, -k:]
    tone = [t.gather(1, idx).mean(1) for idx in (lo, hi) for t in (a, b)]
    chroma = (a.pow(2) + b.pow(2) + 1e-6).sqrt().mean(1)
    feats = torch.stack([L.mean(1), a.mean(1), b.mean(1), L.std(1), chroma, *q.unbind(1), *tone], dim=1)
    return feats / 10.0


N_STATS = 12


class TasteLUTNet(nn.Module):
    """The trainable network. Every image is described by ``describe``: the trainable ``ψ``
    (:class:`StyleEncoder`, ``style_dim``) and the fixed :func:`taste_stats` (``N_STATS``), so
    ``feat_dim = style_dim + N_STATS``.

    * ``describe(x (M,3,t,t)) -> (M, feat_dim)`` on ``style_size`` thumbnails, sRGB [0,1];
    * ``user(f_s, f_p, f_n (B,N,feat_dim), has_src (B,N), mask (B,N)) -> e_u (B, taste_dim)``:
      the learned embedding (``user_dim``) and, in plain numbers, the mean statistics difference
      preferred − non-preferred and preferred − source over the references (``2·N_STATS``);
    * ``luts(f_q (B,feat_dim), e_u (B,taste_dim)) -> (B,3,S,S,S)``: each query's LUT (``lut[c,b,g,r]``);
    * ``reward_logit(f_p, f_n, e_u) -> (B,)``: the user's reward model (training only).
    """

    def __init__(self, style_dim: int = 64, style_size: int = 32, thumb: int = 48, d_model: int = 128,
                 n_layers: int = 2, n_heads: int = 4, ff: int = 256, user_dim: int = 64, n_basis: int = 16,
                 lut_size: int = 17, decoder_hidden: int = 256, aggregator: str = "mean"):
        super().__init__()
        if aggregator not in ("transformer", "mean"):
            raise ValueError(f"aggregator must be 'transformer' or 'mean', got {aggregator!r}")
        self.aggregator = aggregator
        self.arch = {"aggregator": aggregator, "style_dim": style_dim, "style_size": style_size, "thumb": thumb,
                     "d_model": d_model, "n_layers": n_layers, "n_heads": n_heads, "ff": ff, "user_dim": user_dim,
                     "n_basis": n_basis, "lut_size": lut_size, "decoder_hidden": decoder_hidden}
        self.style_size, self.thumb, self.user_dim = int(style_size), int(thumb), int(user_dim)
        self.feat_dim = int(style_dim) + N_STATS
        self.taste_dim = self.user_dim + 2 * N_STATS
        self.style = StyleEncoder(style_dim)
        self.token = nn.Sequential(nn.Linear(4 * self.feat_dim + 1, d_model), nn.LeakyReLU(0.2),
                                   nn.Linear(d_model, d_model))
        self.user_token = nn.Parameter(torch.zeros(1, 1, d_model))
        if aggregator == "transformer":
            layer = nn.TransformerEncoderLayer(d_model, n_heads, ff, dropout=0.0, batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, user_dim))
        self.decoder = LUTDecoder(self.feat_dim + self.taste_dim, decoder_hidden, n_basis, lut_size)
        # a direct path from the taste to the basis weights: the same edit for every image, which
        # the MLP then adapts to the image (its gradient reaches e_u from the first steps)
        self.user_skip = nn.Linear(self.taste_dim, n_basis)
        nn.init.zeros_(self.user_skip.weight)
        nn.init.zeros_(self.user_skip.bias)
        # the user's reward model r_u(x) (training only): Bradley-Terry on held-out pairs,
        # P(p ≻ n) = σ(r_u(p) − r_u(n)); it teaches e_u to encode the taste directly
        self.reward = nn.Sequential(nn.Linear(self.feat_dim + self.taste_dim, d_model), nn.LeakyReLU(0.2),
                                    nn.Linear(d_model, 1))
        # the Bradley-Terry temperature of the choice loss (ΔE76 units), learned: training only
        self.log_temperature = nn.Parameter(torch.tensor(2.0).log())
        nn.init.normal_(self.user_token, std=0.02)

    def describe(self, thumbs: torch.Tensor) -> torch.Tensor:
        """``(M,3,t,t)`` thumbnails -> ``(M, feat_dim)``: ``[ψ(x), taste_stats(x)]``."""
        return torch.cat([self.style(thumbs), taste_stats(thumbs)], dim=1)

    def describe_images(self, img: torch.Tensor) -> torch.Tensor:
        """:meth:`describe` of images ``(B,3,H,W)`` of any size (square thumbnails of ``style_size``).

        Photos much larger than the thumbnail are first subsampled with a stride to about
        ``8·style_size`` pixels (the area resize of a 12 MP photo would read every pixel for a
        32-pixel descriptor; the statistics differ by far less than the edits they drive).
        """
        side = min(img.shape[-2:])
        stride = side // (8 * self.style_size)
        if stride > 1:
            img = img[..., ::stride, ::stride]
        return self.describe(square_thumbs(img, self.style_size))

    def user(self, f_s: torch.Tensor, f_p: torch.Tensor, f_n: torch.Tensor, has_src: torch.Tensor,
             mask: torch.Tensor | None = None) -> torch.Tensor:
        """The taste ``e_u (B, taste_dim)`` from ``N`` references (``N`` may be 0: the population's)."""
        b, n = f_p.shape[:2]
        m = (torch.ones(b, n, dtype=torch.bool, device=f_p.device) if mask is None else mask).to(f_p.dtype)
        h = has_src.to(f_p.dtype)[..., None] * m[..., None]
        s = h * f_s + (1 - h) * 0.5 * (f_p + f_n)
        feats = torch.cat([f_p - f_n, h * (f_p - f_s), h * (f_n - f_s), s, h], dim=-1)
        tok = self.token(feats)
        if self.aggregator == "mean":  # DeepSets: every reference casts one vote, e_u is their mean
            pooled = (tok * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
            learned = self.out(pooled + self.user_token[:, 0])
        else:
            x = torch.cat([self.user_token.expand(b, -1, -1), tok], dim=1)
            pad = None
            if n > 0:
                pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=f_p.device), m == 0], dim=1)
            learned = self.out(self.transformer(x, src_key_padding_mask=pad)[:, 0])
        st = slice(self.feat_dim - N_STATS, self.feat_dim)
        d_pn = ((f_p[..., st] - f_n[..., st]) * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
        d_ps = (h * (f_p[..., st] - f_s[..., st])).sum(1) / h.sum(1).clamp_min(1.0)
        return torch.cat([learned, d_pn, d_ps], dim=1)

    def reward_logit(self, f_p: torch.Tensor, f_n: torch.Tensor, e_u: torch.Tensor) -> torch.Tensor:
        """``r_u(p) − r_u(n)`` ``(B,)``: the reward model's log-odds that the user prefers ``p``."""
        r = lambda f: self.reward(torch.cat([f, e_u], dim=1))[:, 0]
        return r(f_p) - r(f_n)

    def luts(self, f_q: torch.Tensor, e_u: torch.Tensor) -> torch.Tensor:
        return self.decoder.lut(self.decoder.mlp(torch.cat([f_q, e_u], dim=1)) + self.user_skip(e_u))


@register_model("tastelut")
class TasteLUTModel(NetModelMixin, PersonalizationModel):
    """TasteLUT behind the common interface: the profile is ``e_u``; rendering is one LUT per image."""

    name = "tastelut"

    def __init__(self, net: TasteLUTNet | None = None, **arch: Any):
        self.net = (net if net is not None else TasteLUTNet(**arch)).eval()

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        net = self.net
        with torch.no_grad():
            if refs:
                thumbs = [square_thumbs(x[None], net.style_size)
                          for r in refs for x in (r.preferred, r.other, r.source if r.source is not None else r.other)]
                f = net.describe(torch.cat(thumbs)).view(len(refs), 3, -1)
                has = torch.tensor([r.source is not None for r in refs])
                e_u = net.user(f[None, :, 2], f[None, :, 0], f[None, :, 1], has[None])[0]
            else:
                z = torch.zeros(1, 0, net.feat_dim)
                e_u = net.user(z, z, z, torch.zeros(1, 0, dtype=torch.bool))[0]
        return Profile(model=self.name, user=user, model_config=self.config(), tensors={"user": e_u.contiguous()},
                       data={"n_refs": len(refs), "with_sources": sum(r.source is not None for r in refs),
                             "weights": self.fingerprint})

    def embedding(self, profile: Profile) -> torch.Tensor:
        """``e_u (user_dim,)`` of a profile made by this model (refuses others with a clear message)."""
        self.check_weights(profile)
        e = profile.tensors.get("user")
        if e is None or e.shape != (self.net.taste_dim,):
            raise PrefstyleError("tastelut profile has no user embedding of the right size (damaged or another model)")
        return e

    def luts(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        """The LUT ``(B,3,S,S,S)`` this profile applies to each image ``(B,3,H,W)``."""
        e = self.embedding(profile)
        with torch.no_grad():
            f = self.net.describe_images(img)
            return self.net.luts(f, e[None].expand(img.shape[0], -1).to(f.dtype))

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        squeeze = img.ndim == 3
        x = img[None] if squeeze else img
        out = render_lut_model(x, self.luts(x, profile))
        return out[0] if squeeze else out


def _unwrap(model: nn.Module) -> Any:
    return getattr(model, "module", model)


def taste_batch_loss(model: nn.Module, bank: Any, batch: PairBatch, temperature: float | None = None, anchor: float = 0.1,
                     consistency: float = 0.5, tv_weight: float = 1e-4, mono_weight: float = 10.0,
                     reward: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of one batch (module docstring); ``model`` may be DDP-wrapped.

    Every available rendition of the query scene (``s`` when the bank has sources, ``p``, ``n``)
    is rendered with the user's LUT at ``thumb`` pixels and scored against the held-out choice.
    """
    net = _unwrap(model)
    dev = next(net.parameters()).device
    batch = batch.to("cpu")
    j = batch.judgment
    p_rows, n_rows, s_rows = bank.pref[j], bank.other[j], bank.source[j]
    ctx = batch.context.clamp_min(0)
    cp, cn, cs_raw = bank.pref[ctx], bank.other[ctx], bank.source[ctx]
    c_has = cs_raw >= 0
    cs = torch.where(c_has, cs_raw, cn)
    q_has = s_rows >= 0
    q_s = torch.where(q_has, s_rows, n_rows)
    b, n = ctx.shape
    rows = torch.cat([q_s, p_rows, n_rows, cs.flatten(), cp.flatten(), cn.flatten()])
    uniq, inv = torch.unique(rows, return_inverse=True)
    qi_s, qi_p, qi_n = inv[:b], inv[b:2 * b], inv[2 * b:3 * b]
    ci_s, ci_p, ci_n = (inv[3 * b + k * b * n: 3 * b + (k + 1) * b * n].view(b, n) for k in range(3))
    mv = lambda t: t.to(dev)
    st = net.describe(mv(bank.thumbs[net.style_size][uniq]))  # once per distinct image
    e_u = net.user(st[mv(ci_s)], st[mv(ci_p)], st[mv(ci_n)], mv(c_has & batch.context_mask), mv(batch.context_mask))
    # queries: s (where the scene has a source), p and n, each with the user's embedding
    q_idx = torch.cat([qi_s, qi_p, qi_n])
    keep = torch.cat([q_has, torch.ones(2 * b, dtype=torch.bool)])
    owner = torch.arange(b).repeat(3)
    q_idx, owner = q_idx[keep], owner[keep]
    luts = net.luts(st[mv(q_idx)], e_u[mv(owner)])
    th = bank.thumbs[net.thumb]
    x = mv(th[torch.cat([q_s, p_rows, n_rows])[keep]])
    out = apply_luts(x, luts)
    i_p, i_n = mv(th[p_rows][owner]), mv(th[n_rows][owner])
    t = net.log_temperature.exp() if temperature is None else temperature
    d_p, d_n = lab_distance(out, i_p), lab_distance(out, i_n)
    choice = ideal_point_choice_loss(out, i_p, i_n, t, distance=_cached(out, i_p, d_p, i_n, d_n))
    anchor_l = d_p.mean()
    # consistency: each rendering against the mean rendering of its scene
    o = mv(owner)
    mean_out = torch.zeros(b, *out.shape[1:], device=dev).index_add_(0, o, out)
    counts = torch.zeros(b, device=dev).index_add_(0, o, torch.ones(len(o), device=dev))
    mean_out = mean_out / counts.view(-1, 1, 1, 1)
    consist = lab_distance(out, mean_out[o].detach()).mean()
    tv, mono = BasisLUT.regularizer(luts)
    logit = net.reward_logit(st[mv(qi_p)], st[mv(qi_n)], e_u)
    reward_l = F.softplus(-logit).mean()
    total = (choice + anchor * anchor_l + consistency * consist + tv_weight * tv + mono_weight * mono
             + reward * reward_l)
    agree = (d_p < d_n).float().mean()
    logs = {"reward": float(reward_l.detach()), "reward_acc": float((logit > 0).float().mean()), "temperature": float(t.detach() if torch.is_tensor(t) else t), "choice": float(choice.detach()), "anchor": float(anchor_l.detach()), "consistency": float(consist.detach()),
            "tv": float(tv.detach()), "mono": float(mono.detach()), "agree": float(agree)}
    return total, logs


def _cached(out: torch.Tensor, i_p: torch.Tensor, d_p: torch.Tensor, i_n: torch.Tensor, d_n: torch.Tensor) -> Any:
    """A distance function that returns the already computed ``d_p``/``d_n`` for these exact tensors."""

    def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return d_p if b is i_p else d_n if b is i_n else lab_distance(a, b)

    return dist


class TasteLUTTaskCore(PPSTaskMixin):
    """Model-specific half of the ``tastelut`` training task (see :class:`PPSTaskMixin` for ``data``).

    ``task`` keys: the :class:`TasteLUTNet` architecture; ``n_context`` (``[1, 32]``),
    ``temperature`` (``learned``, or a number in ΔE76 units), ``anchor`` (0.1), ``consistency``
    (0.5), ``tv_weight`` (1e-4), ``mono_weight`` (10), ``reward`` (1.0); configs/tastelut.yaml
    sets the values the shipped weights were trained with.
    """

    name = "tastelut"
    uses_backbone = False
    ARCH_KEYS = ("aggregator", "style_dim", "style_size", "thumb", "d_model", "n_layers", "n_heads", "ff", "user_dim", "n_basis",
                 "lut_size", "decoder_hidden")

    def build_model(self) -> TasteLUTNet:
        arch = {k: self.model_cfg[k] for k in self.ARCH_KEYS if k in self.model_cfg}
        self._model = TasteLUTNet(**arch)
        return self._model

    def bank_sizes(self) -> tuple[int, ...]:
        return (int(self.model_cfg.get("thumb", 48)), int(self.model_cfg.get("style_size", 32)))

    def n_context(self) -> int | tuple[int, int]:
        n = self.model_cfg.get("n_context", [1, 32])
        return (int(n), int(n)) if isinstance(n, int) else (int(n[0]), int(n[1]))

    def loss(self, model: nn.Module, batch: PairBatch, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.model_cfg
        t = cfg.get("temperature")
        return taste_batch_loss(model, self.bank(), batch, None if t in (None, "learned") else float(t),
                                float(cfg.get("anchor", 0.1)), float(cfg.get("consistency", 0.5)),
                                float(cfg.get("tv_weight", 1e-4)), float(cfg.get("mono_weight", 10.0)),
                                float(cfg.get("reward", 1.0)))

    def to_inference(self, model: nn.Module) -> TasteLUTModel:
        return TasteLUTModel(net=_unwrap(model))
