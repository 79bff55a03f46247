"""Fit a 3D LUT to example colour mappings (input image -> retouched image).

A content-adaptive retoucher changes colours differently from photo to photo; a LUT is one
global mapping. :func:`fit_lut` finds the LUT ``L`` that, applied with trilinear interpolation,
best reproduces the examples in the least-squares sense, with a smoothness prior on the
*displacement* ``L - identity``:

    minimise  mean_i |T_L(x_i) - y_i|^2  +  smoothness * sum_axes mean |diff(L - I)|^2

Colours the examples never visit (saturated greens in a set of portraits, say) get the
smooth continuation of the nearby displacement rather than a jump back to identity, which is
what a colourist would expect of an exported "look". The problem is linear least squares in
``L``: its sparse normal equations (27-point stencil) are solved for the three channels by SciPy
(:func:`prefstyle.imaging.lut_fit_np.fit_lut_np`, the numpy solver this module's tensors go to).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["bin_samples", "fit_lut", "lut_samples"]


def lut_samples(
    inputs: Iterable[torch.Tensor], outputs: Iterable[torch.Tensor], max_per_image: int = 65536, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Matched colour samples from image pairs.

    Args:
        inputs, outputs: images ``(3,H,W)`` or ``(1,3,H,W)`` in [0, 1], pairwise the same size.
        max_per_image: pixels drawn per image (without replacement, seeded) when it has more.
    Returns:
        ``(x, y)``: two ``(N, 3)`` float32 tensors of input and output RGB.
    """
    g = torch.Generator().manual_seed(int(seed))
    xs, ys = [], []
    for k, (a, b) in enumerate(zip(inputs, outputs, strict=True)):
        a = a.reshape(3, -1) if a.dim() == 3 else a.reshape(a.shape[-3], -1)
        b = b.reshape(3, -1) if b.dim() == 3 else b.reshape(b.shape[-3], -1)
        if a.shape != b.shape:
            raise ValueError(f"image pair {k}: input {tuple(a.shape)} and output {tuple(b.shape)} differ in size")
        n = a.shape[1]
        if n > max_per_image:
            idx = torch.randperm(n, generator=g)[:max_per_image]
            a, b = a[:, idx], b[:, idx]
        xs.append(a.t().float())
        ys.append(b.t().float())
    if not xs:
        raise ValueError("no image pairs to fit a LUT to")
    return torch.cat(xs).clamp(0, 1), torch.cat(ys)


def bin_samples(x: torch.Tensor, y: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Average samples that fall in the same cell of a ``bins^3`` grid over the input cube.

    The least-squares fit only needs, per small input cell, the mean input, mean output and
    count, so this shrinks hundreds of thousands of photo pixels to a few thousand samples
    with almost no loss (cells are far smaller than the LUT's node spacing).

    Returns ``(x_mean (M,3), y_mean (M,3), count (M,))``.
    """
    q = (x.clamp(0, 1) * (bins - 1) + 0.5).long()
    key = (q[:, 2] * bins + q[:, 1]) * bins + q[:, 0]
    uniq, inv = torch.unique(key, return_inverse=True)
    m = uniq.numel()
    count = torch.zeros(m).index_add_(0, inv, torch.ones(len(key)))
    xs = torch.zeros(m, 3).index_add_(0, inv, x) / count[:, None]
    ys = torch.zeros(m, 3).index_add_(0, inv, y) / count[:, None]
    return xs, ys, count


def fit_lut(
    x: torch.Tensor,
    y: torch.Tensor,
    size: int = 33,
    smoothness: float = 1e-4,
    weights: torch.Tensor | None = None,
    bins: int | None = None,
) -> torch.Tensor:
    """The ``(3, size, size, size)`` LUT (layout of :mod:`prefstyle.imaging.lut`) that maps ``x`` to ``y``.

    Args:
        x: ``(N, 3)`` input RGB in [0, 1].
        y: ``(N, 3)`` output RGB (values outside [0, 1] are kept: LUTs may produce them).
        size: nodes per axis, 2..65.
        smoothness: weight of the displacement's squared finite differences (per axis, mean
            over the lattice, times ``(size-1)^2`` so the prior does not change with ``size``).
            Must be > 0 unless the samples visit every lattice cell.
        weights: optional ``(N,)`` non-negative sample weights.
        bins: average the samples per cell of a ``bins^3`` input grid first (as :func:`bin_samples`);
            default ``4 * (size - 1)``; 0 fits every sample as it is.
    Returns:
        The fitted LUT, float32.
    """
    from prefstyle.imaging.lut_fit_np import fit_lut_np

    w = None if weights is None else weights.double().numpy()
    return torch.from_numpy(fit_lut_np(x.float().numpy(), y.float().numpy(), size, smoothness, w, bins))
