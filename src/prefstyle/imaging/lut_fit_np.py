"""The least-squares 3D LUT fit of :mod:`prefstyle.imaging.lut_fit` on numpy arrays (no torch).

:func:`fit_lut_np` is the solver itself: :func:`prefstyle.imaging.lut_fit.fit_lut` converts its
tensors and calls it, and torch-free renderers (``prefstyle enhance`` of a PieNet profile through
its ONNX network, :mod:`prefstyle.models.pienet_lut_np`) call it directly, so both give the same
LUT for the same samples. See :mod:`prefstyle.imaging.lut_fit` for the objective.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from prefstyle.imaging.lut_np import identity_grid

__all__ = ["bin_samples_np", "fit_lut_np"]


def bin_samples_np(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average samples that fall in the same cell of a ``bins^3`` grid over the input cube.

    ``x``, ``y``: ``(N,3)`` input and output RGB (``x`` in [0,1]). Returns ``(x_mean (M,3),
    y_mean (M,3), count (M,))`` float64, cells in ascending key order (blue slowest, red fastest).
    """
    q = (np.clip(x, 0.0, 1.0) * (bins - 1) + 0.5).astype(np.int64)
    key = (q[:, 2] * bins + q[:, 1]) * bins + q[:, 0]
    _, inv = np.unique(key, return_inverse=True)
    inv = inv.reshape(-1)
    count = np.bincount(inv).astype(np.float64)
    m = len(count)
    xs = np.stack([np.bincount(inv, weights=x[:, c], minlength=m) for c in range(3)], axis=1) / count[:, None]
    ys = np.stack([np.bincount(inv, weights=y[:, c], minlength=m) for c in range(3)], axis=1) / count[:, None]
    return xs, ys, count


def _interp_matrix(x: np.ndarray, size: int) -> Any:
    """Sparse ``(N, S^3)`` matrix of trilinear weights: row ``i`` applied to a flattened LUT channel
    (index ``(b * S + g) * S + r``, the layout of :mod:`prefstyle.imaging.lut`) gives its value at ``x[i]``."""
    import scipy.sparse as sp

    p = x.astype(np.float64) * (size - 1)
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


@functools.lru_cache(maxsize=8)
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


def fit_lut_np(
    x: np.ndarray,
    y: np.ndarray,
    size: int = 33,
    smoothness: float = 1e-4,
    weights: np.ndarray | None = None,
    bins: int | None = None,
) -> np.ndarray:
    """The ``(3, size, size, size)`` float32 LUT that maps ``x`` ``(N,3)`` to ``y`` ``(N,3)``.

    Arguments as :func:`prefstyle.imaging.lut_fit.fit_lut` (``x`` is clamped to [0,1]; ``y`` may
    leave it); ``bins`` (default ``4 * (size - 1)``, 0: none) averages the samples per input cell
    first when no ``weights`` are given.
    """
    import scipy.sparse.linalg as spla

    if not 2 <= size <= 65:
        raise ValueError(f"size must be in 2..65, got {size}")
    if x.ndim != 2 or x.shape[1] != 3 or x.shape != y.shape or len(x) == 0:
        raise ValueError(f"x and y must both be (N, 3) with N > 0; got {tuple(x.shape)} and {tuple(y.shape)}")
    x = np.clip(x.astype(np.float32), 0.0, 1.0)
    y = y.astype(np.float32)
    bins = 4 * (size - 1) if bins is None else int(bins)
    if bins > 0 and weights is None:
        x, y, weights = bin_samples_np(x, y, bins)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / max(float(w.sum()), 1e-12)
    a = _interp_matrix(x, size)
    aw = a.T.multiply(w[None, :]).tocsr()  # A^T W, with W normalised to a weighted mean
    system = (aw @ a + smoothness * float((size - 1) ** 2) * _difference_gram(size)).tocsc()
    # trilinear interpolation reproduces the identity lattice exactly, so the displacement fits y - x
    rhs = aw @ (y.astype(np.float64) - x.astype(np.float64))
    # Conjugate gradients with a Jacobi preconditioner: a direct factorisation of this 3-D
    # stencil fills in badly (tens of seconds at 33^3), CG takes well under a second.
    inv_diag = 1.0 / system.diagonal()
    jacobi = spla.LinearOperator(system.shape, matvec=lambda v: inv_diag * v)
    disp = np.stack([_cg(system, rhs[:, c], jacobi) for c in range(3)])
    return identity_grid(size).reshape(3, size, size, size) + disp.reshape(3, size, size, size).astype(np.float32)


def _cg(system: Any, b: np.ndarray, precond: Any) -> np.ndarray:
    import scipy.sparse.linalg as spla

    # rtol 1e-7: the LUT is float32 (1e-10 took 40 % more iterations for changes below 2e-7)
    sol, info = spla.cg(system, b, rtol=1e-7, atol=0.0, maxiter=20 * system.shape[0], M=precond)
    if info != 0:  # not converged within the budget: fall back to the exact (slow) direct solve
        sol = spla.spsolve(system.tocsc(), b)
    return sol
