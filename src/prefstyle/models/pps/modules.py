"""Small trainable modules of the PPS models and the LUT rendering they share.

* :class:`StyleEncoder`: a thumbnail's colour and tone (trainable, small);
* :class:`BasisLUT` / :class:`LUTDecoder`: a 3D LUT as identity + a learned combination of basis
  LUTs (Image-Adaptive-3DLUT), the resolution-agnostic output of UPE and the exemplar model;
* :func:`apply_luts` (batched, differentiable; training) and :func:`render_lut_model` (full
  resolution; inference);
* :class:`FeatureScaler`: fixed standardisation of frozen features.

Images are ``(B,3,H,W)`` float32 sRGB in [0,1]; LUTs ``(B,3,S,S,S)`` indexed ``lut[c,b,g,r]``.
"""

from __future__ import annotations

import itertools
from typing import Generic, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from prefstyle.imaging.lut import apply_lut, identity_lut

__all__ = [
    "BasisLUT",
    "FeatureScaler",
    "LUTDecoder",
    "StyleEncoder",
    "Unregistered",
    "apply_luts",
    "colour_stats",
    "render_lut_model",
]


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

    identity: torch.Tensor

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


class FeatureScaler(nn.Module):
    """Fixed standardisation of frozen features: ``(x − mean) / std`` per dimension.

    ``mean``/``std`` are buffers (saved with the weights), set once from the training images
    by :meth:`fit` (identity until then).
    """

    mean: torch.Tensor
    std: torch.Tensor
    fitted: torch.Tensor

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
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, n_basis),
        )
        self.lut = BasisLUT(n_basis, lut_size)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.lut(self.mlp(cond))


ModuleT = TypeVar("ModuleT", bound=nn.Module)


class Unregistered(Generic[ModuleT]):
    """Holds a module outside its owner's parameter tree (not saved, not trained, not moved by ``.to``)."""

    def __init__(self, module: ModuleT):
        self.module = module


def render_lut_model(img: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """Apply per-image LUTs to full-resolution images ``(B,3,H,W)`` -> ``(B,3,H,W)`` in [0,1]."""
    with torch.no_grad():
        return apply_lut(img, luts.to(img.dtype)).clamp(0, 1)
