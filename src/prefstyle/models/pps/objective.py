"""The PPS training objective from preference pairs (CVPR 2026).

Each step feeds one image of a pair ``(I_p, I_n)`` and supervises the output ``Î`` against both:
``w·L(Î, I_p) + (1 − w)·L(Î, I_n)``, ``w`` rising from 0.5 to 1.5 over training (``w > 1`` pushes
the output away from ``I_n``). The formulas live in :mod:`prefstyle.losses`; this module picks the
distance ``L`` (:func:`image_loss`) and the schedule of ``w`` (:func:`pps_weight`).

Which ``L``: per pixel, with ``L2`` (squared error) the objective is a parabola in ``Î`` with
curvature 1 whatever ``w``, minimised at ``w·I_p + (1 − w)·I_n``: ``I_n``/``I_p`` midway at
``w = 0.5``, ``I_p`` at ``w = 1`` and *past* ``I_p``, away from ``I_n``, for ``w > 1``; that is
what the paper's curriculum says ``w > 1`` does. With ``L1`` the objective is piecewise linear and
its minimum is ``I_p`` for every ``w > 0.5``, so ``w > 1`` never pushes past ``I_p`` (it only
steepens the slope). We therefore read the paper's ``L`` as L2; ``task.loss`` chooses
(``l1``/``l2``, also ``charbonnier``, ``de00``).
"""

from __future__ import annotations

import torch

from prefstyle.errors import PrefstyleError

__all__ = ["LOSSES", "W_SCHEDULES", "image_loss", "pairwise_loss", "pps_weight"]


W_SCHEDULES = ("linear", "constant", "cosine", "uniform")


def pps_weight(
    progress: float,
    schedule: str = "linear",
    start: float = 0.5,
    end: float = 1.5,
    generator: torch.Generator | None = None,
    n: int | None = None,
) -> torch.Tensor:
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


def pairwise_loss(
    pred: torch.Tensor, i_p: torch.Tensor, i_n: torch.Tensor, w: float | torch.Tensor, kind: str = "l1"
) -> torch.Tensor:
    """PPS dual supervision ``mean_b[w·L(Î_b, I_p,b) + (1 − w)·L(Î_b, I_n,b)]`` (a scalar).

    :func:`prefstyle.losses.pairwise_preference_loss` with ``L`` = :func:`image_loss` ``kind``;
    ``w`` a number or ``(B,)``. Works on images ``(B,3,H,W)`` and on point sets ``(B,Q,3)``.
    """
    from prefstyle.losses import pairwise_preference_loss

    return pairwise_preference_loss(pred, i_p, i_n, w, loss_fn=lambda a, b: image_loss(a, b, kind))
