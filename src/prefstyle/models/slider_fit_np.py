"""The ten-slider edit closest to a colour look, in numpy (no torch): what a preset of a look holds.

A raw editor's preset holds slider values, not a 3D LUT. To export a ``looks`` taste as a preset,
:func:`closest_slider_edit` finds the edit of the ten sliders of
:data:`prefstyle.models.slider_personalize_np.PRIOR_WIDTHS` whose rendering of the RGB cube is
closest to the look's, and how close (mean CIEDE2000): the best of 128 prior edits by mean ΔE76
on a 5³ cube, then SciPy's L-BFGS-B (each slider within its range) on the mean ΔE00 over a 6³
cube, with gradients by one-sided differences of all ten sliders rendered in one pass (0.09 s;
the torch version with L-BFGS through autograd it replaced took 0.25 s and was 0.06 ΔE00 further
from 28 of 30 library looks). The slider pipeline is :mod:`prefstyle.imaging.retouch_np`, colours
:mod:`prefstyle.imaging.color_np`. ``LookTasteModel`` and the torch-free ``export-preset`` both
call it, so a preset is the same whichever path wrote it.
"""

from __future__ import annotations

import numpy as np

from prefstyle.imaging import lut_np
from prefstyle.imaging.color_np import delta_e_2000_values, rgb_to_lab
from prefstyle.imaging.params import NEUTRAL, SCALAR_FIELDS, RetouchParams
from prefstyle.imaging.retouch_np import apply_vectors
from prefstyle.models.slider_personalize_np import PRIOR_WIDTHS, prior_vectors

__all__ = ["closest_slider_edit", "look_preset_notes"]

_FIELDS = {name: (i, lo, hi) for i, (name, lo, hi, _) in enumerate(SCALAR_FIELDS)}
SLIDERS = tuple(PRIOR_WIDTHS)
#: forward-difference step of the gradient, in slider fractions (the pipeline is float32: 1e-8 steps give noise)
EPS = 3e-4


def _cube(look: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n³`` nodes of the RGB cube ``(1,3,n,n²)`` and the look's rendering of them in CIELAB ``(3,n,n²)``."""
    grid = lut_np.identity_grid(n)
    target = np.clip(lut_np.sample_table(look, grid), 0.0, 1.0).reshape(3, n, n * n)
    return grid.reshape(1, 3, n, n * n), rgb_to_lab(target)


def closest_slider_edit(lut: np.ndarray, side: int = 6, max_iter: int = 60) -> tuple[RetouchParams, float]:
    """``(params, mean ΔE00)``: the slider edit closest to the look ``lut`` ``(3,S,S,S)`` in [0, 1]
    over the ``side³`` colours of the RGB cube, and its mean CIEDE2000 there (what an editor preset
    of the look leaves out: split toning, hue shifts, channel curves...)."""
    from scipy.optimize import minimize

    look = np.asarray(lut, dtype=np.float32)
    idx = np.array([_FIELDS[n][0] for n in SLIDERS])
    lo = np.array([_FIELDS[n][1] for n in SLIDERS], dtype=np.float64)
    hi = np.array([_FIELDS[n][2] for n in SLIDERS], dtype=np.float64)

    coarse, coarse_target = _cube(look, 5)
    cands = prior_vectors(128, 1.0, seed=0)
    rendered = np.clip(apply_vectors(np.broadcast_to(coarse, (len(cands), *coarse.shape[1:])), cands), 0.0, 1.0)
    lab = rgb_to_lab(np.moveaxis(rendered, 1, 0))  # (3,K,5,25)
    d76 = np.sqrt(np.square(lab - coarse_target[:, None]).sum(0)).reshape(len(cands), -1).mean(1)
    base = cands[int(np.argmin(d76))].astype(np.float32)

    grid, target = _cube(look, side)

    def losses(us: np.ndarray) -> np.ndarray:
        """Mean ΔE00 ``(M,)`` of the edits at slider fractions ``us`` ``(M,10)``, rendered together."""
        vecs = np.repeat(base[None], len(us), axis=0)
        vecs[:, idx] = (lo + (hi - lo) * us).astype(np.float32)
        out = np.clip(apply_vectors(np.broadcast_to(grid, (len(us), *grid.shape[1:])), vecs), 0.0, 1.0)
        d = delta_e_2000_values(rgb_to_lab(np.moveaxis(out, 1, 0)), target[:, None])
        return d.reshape(len(us), -1).astype(np.float64).mean(1)

    def loss_and_grad(u: np.ndarray) -> tuple[float, np.ndarray]:
        # one-sided differences (inward at the bounds), all eleven edits in one pass
        step = np.where(u + EPS <= 1.0, EPS, -EPS)
        f = losses(np.vstack([u, u + np.diag(step)]))
        return float(f[0]), (f[1:] - f[0]) / step

    u0 = np.clip((base[idx] - lo) / (hi - lo), 0.0, 1.0)
    res = minimize(
        loss_and_grad, u0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(idx), options={"maxiter": max_iter}
    )
    u = np.clip(res.x, 0.0, 1.0)
    err = float(losses(u[None])[0])
    if err > float(losses(u0[None])[0]):
        u, err = u0, float(losses(u0[None])[0])
    vals = lo + (hi - lo) * u
    return NEUTRAL.replace(**{n: float(v) for n, v in zip(SLIDERS, vals, strict=True)}), err


def look_preset_notes(err: float) -> list[str]:
    """What ``export-preset`` says of a look's preset whose slider edit is ``err`` mean ΔE00 from it."""
    return [
        f"a preset holds the slider edit closest to this look: {err:.1f} dE00 from it on average over "
        "the colour cube (a .cube from `prefstyle export-lut` holds the look itself)"
    ]
