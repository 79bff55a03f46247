"""Fit a 3D LUT to example colour mappings (input image -> retouched image).

A content-adaptive retoucher changes colours differently from photo to photo; a LUT is one
global mapping. :func:`fit_lut` finds the LUT ``L`` that, applied with trilinear interpolation,
best reproduces the examples in the least-squares sense, with a smoothness prior on the
*displacement* ``L - identity``:

    minimise  mean_i |T_L(x_i) - y_i|^2  +  smoothness * sum_axes mean |diff(L - I)|^2

Colours the examples never visit (saturated greens in a set of portraits, say) get the
smooth continuation of the nearby displacement rather than a jump back to identity, which is
what a colourist would expect of an exported "look". The problem is linear least squares in
``L``: its sparse normal equations (27-point stencil) are factorised once with SciPy's sparse LU
and solved exactly for the three channels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from prefstyle.imaging.lut import identity_lut

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


def _interp_matrix(x: torch.Tensor, size: int) -> Any:
    """Sparse ``(N, S^3)`` matrix of trilinear weights: row ``i`` applied to a flattened LUT channel
    (index ``(b * S + g) * S + r``, the layout of :mod:`prefstyle.imaging.lut`) gives its value at ``x[i]``."""
    import scipy.sparse as sp

    p = x.double().numpy() * (size - 1)
    i0 = np.clip(np.floor(p), 0, size - 2).astype(np.int64)
    f = p - i0
    n = len(p)
    cols, vals = [], []
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                vals.append(
                    (f[:, 2] if db else 1 - f[:, 2])
                    * (f[:, 1] if dg else 1 - f[:, 1])
                    * (f[:, 0] if dr else 1 - f[:, 0])
                )
                cols.append(((i0[:, 2] + db) * size + (i0[:, 1] + dg)) * size + (i0[:, 0] + dr))
    rows = np.tile(np.arange(n), 8)
    return sp.csr_matrix((np.concatenate(vals), (rows, np.concatenate(cols))), shape=(n, size**3))


def _difference_gram(size: int) -> Any:
    """``sum_axes D_a^T D_a / rows(D_a)``: Gram matrix of the per-axis mean squared finite differences."""
    import scipy.sparse as sp

    d1 = sp.diags([-np.ones(size - 1), np.ones(size - 1)], [0, 1], shape=(size - 1, size))
    eye = sp.identity(size)
    gram = None
    for d in (sp.kron(sp.kron(eye, eye), d1), sp.kron(sp.kron(eye, d1), eye), sp.kron(sp.kron(d1, eye), eye)):
        g = (d.T @ d) / d.shape[0]
        gram = g if gram is None else gram + g
    return gram


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
        bins: average the samples per cell of a ``bins^3`` input grid first (:func:`bin_samples`);
            default ``4 * (size - 1)``; 0 fits every sample as it is.
    Returns:
        The fitted LUT, float32.
    """
    import scipy.sparse.linalg as spla

    if not 2 <= size <= 65:
        raise ValueError(f"size must be in 2..65, got {size}")
    if x.ndim != 2 or x.shape[1] != 3 or x.shape != y.shape or len(x) == 0:
        raise ValueError(f"x and y must both be (N, 3) with N > 0; got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.float().clamp(0, 1), y.float()
    bins = 4 * (size - 1) if bins is None else int(bins)
    if bins > 0 and weights is None:
        x, y, weights = bin_samples(x, y, bins)
    w = np.ones(len(x)) if weights is None else weights.double().numpy()
    w = w / max(float(w.sum()), 1e-12)
    a = _interp_matrix(x, size)
    aw = a.T.multiply(w[None, :]).tocsr()  # A^T W, with W normalised to a weighted mean
    system = (aw @ a + smoothness * float((size - 1) ** 2) * _difference_gram(size)).tocsc()
    # trilinear interpolation reproduces the identity lattice exactly, so the displacement fits y - x
    rhs = aw @ (y.double().numpy() - x.double().numpy())
    # Conjugate gradients with a Jacobi preconditioner: a direct factorisation of this 3-D
    # stencil fills in badly (tens of seconds at 33^3), CG takes well under a second.
    inv_diag = 1.0 / system.diagonal()
    jacobi = spla.LinearOperator(system.shape, matvec=lambda v: inv_diag * v)
    disp = np.stack([_cg(system, rhs[:, c], jacobi) for c in range(3)])
    return identity_lut(size) + torch.from_numpy(disp.reshape(3, size, size, size)).float()


def _cg(system: Any, b: np.ndarray, precond: Any) -> np.ndarray:
    import scipy.sparse.linalg as spla

    sol, info = spla.cg(system, b, rtol=1e-10, atol=0.0, maxiter=20 * system.shape[0], M=precond)
    if info != 0:  # not converged within the budget: fall back to the exact (slow) direct solve
        sol = spla.spsolve(system.tocsc(), b)
    return sol
