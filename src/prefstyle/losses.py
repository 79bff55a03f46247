"""Training losses shared by the models: reconstruction, perceptual, smoothness, metric learning,
and the PPS pairwise dual-supervision objective.

Every function works on batches and returns a **per-sample** loss ``(B,)`` when
``reduction="none"``, or its mean (``"mean"``, the default) or sum (``"sum"``). Images are
``(B,C,H,W)`` float tensors (sRGB-encoded, values in [0,1] for image losses); embeddings are
``(B,D)``. All functions are differentiable in their first argument (and in every argument where
that makes sense: the triplet loss in all three).

* :func:`l1_loss` - mean absolute error per sample.
* :func:`perceptual_loss` - distance between lists of feature maps (e.g. the PieNet embedding
  network's intermediate features of the output and of the target).
* :func:`edge_aware_tv` - total variation weighted by ``exp(-|∇I|)`` of a guide image, so
  edges of the guide are allowed and flat regions are smoothed (PieNet).
* :func:`triplet_loss` - ``max(0, ‖a−p‖² − ‖a−n‖² + margin)``, squared Euclidean (PieNet: margin 0.2).
* :func:`pairwise_preference_loss` - ``w·L(Î, I_p) + (1−w)·L(Î, I_n)`` (PPS dual supervision), with
  :func:`preference_weight` giving ``w`` by schedule (``"linear"``: 0.5 → 1.5 over training, the
  PPS paper's; ``"constant"``; ``"uniform"``: drawn per pair in [low, high]; ``"cosine"``).
* :func:`ideal_point_choice_loss` - the negative log-likelihood of a pairwise choice when the
  output is the user's ideal point: Bradley-Terry on its distances to the two renditions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from prefstyle.imaging.color import rgb_to_lab

__all__ = [
    "W_SCHEDULES",
    "edge_aware_tv",
    "ideal_point_choice_loss",
    "l1_loss",
    "lab_distance",
    "mse_loss",
    "pairwise_preference_loss",
    "perceptual_loss",
    "preference_weight",
    "reduce",
    "triplet_loss",
]

#: the schedules :func:`preference_weight` knows
W_SCHEDULES: tuple[str, ...] = ("linear", "constant", "uniform", "cosine")


def reduce(per_sample: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Reduce a per-sample loss ``(B,)``: ``"mean"``, ``"sum"`` or ``"none"``."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.ndim < 2:
        raise ValueError(f"expected a batch (B, ...), got shape {tuple(pred.shape)}")


def l1_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error over all but the batch dimension: ``(B,...)`` x2 -> ``(B,)`` or scalar."""
    _check_pair(pred, target)
    return reduce((pred - target).abs().flatten(1).mean(1), reduction)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error over all but the batch dimension: ``(B,...)`` x2 -> ``(B,)`` or scalar."""
    _check_pair(pred, target)
    return reduce((pred - target).pow(2).flatten(1).mean(1), reduction)


def perceptual_loss(
    pred_feats: Sequence[torch.Tensor],
    target_feats: Sequence[torch.Tensor],
    weights: Sequence[float] | None = None,
    distance: str = "l1",
    reduction: str = "mean",
) -> torch.Tensor:
    """Feature-space distance: the weighted mean over levels of the per-sample ``distance``.

    ``pred_feats``/``target_feats``: equal-length lists of feature maps ``(B,C_k,H_k,W_k)`` (or
    vectors ``(B,D_k)``), e.g. from ``PreferenceEmbedding.features``. Targets are normally
    computed without gradient. ``distance``: ``"l1"`` or ``"l2"`` (mean squared). ``weights``
    default to equal weights summing to 1.
    """
    if len(pred_feats) != len(target_feats) or not pred_feats:
        raise ValueError("need the same, non-zero number of feature levels for prediction and target")
    if weights is None:
        weights = [1.0 / len(pred_feats)] * len(pred_feats)
    if len(weights) != len(pred_feats):
        raise ValueError("one weight per feature level")
    fn = {"l1": l1_loss, "l2": mse_loss}.get(distance)
    if fn is None:
        raise ValueError(f"distance must be 'l1' or 'l2', got {distance!r}")
    total = sum(w * fn(p, t, reduction="none") for w, p, t in zip(weights, pred_feats, target_feats))
    return reduce(total, reduction)  # type: ignore[arg-type]


def edge_aware_tv(img: torch.Tensor, guide: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Edge-aware total variation of ``img`` ``(B,C,H,W)`` guided by ``guide`` ``(B,C',H,W)``.

    ``mean(|∂x img|·exp(−|∂x guide|)) + mean(|∂y img|·exp(−|∂y guide|))``, where the guide's
    gradient magnitude is averaged over its channels (the guide is not differentiated through:
    it is the input image). Images smaller than 2 pixels along an axis contribute 0 on that axis.
    """
    if img.ndim != 4 or guide.ndim != 4 or img.shape[0] != guide.shape[0] or img.shape[-2:] != guide.shape[-2:]:
        raise ValueError(f"img {tuple(img.shape)} and guide {tuple(guide.shape)} must be (B,C,H,W) of one size")
    g = guide.detach()
    out = img.new_zeros(img.shape[0])
    if img.shape[-1] > 1:
        wx = torch.exp(-(g[..., :, 1:] - g[..., :, :-1]).abs().mean(1, keepdim=True))
        out = out + ((img[..., :, 1:] - img[..., :, :-1]).abs() * wx).flatten(1).mean(1)
    if img.shape[-2] > 1:
        wy = torch.exp(-(g[..., 1:, :] - g[..., :-1, :]).abs().mean(1, keepdim=True))
        out = out + ((img[..., 1:, :] - img[..., :-1, :]).abs() * wy).flatten(1).mean(1)
    return reduce(out, reduction)


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float = 0.2,
    reduction: str = "mean",
) -> torch.Tensor:
    """``max(0, ‖a−p‖² − ‖a−n‖² + margin)`` with squared Euclidean distances; ``(B,D)`` x3.

    ``anchor`` may also be ``(D,)`` (one vector against a batch of pairs, as when a new user's
    preference vector is optimised).
    """
    if anchor.ndim == 1:
        anchor = anchor.expand_as(positive)
    if not (anchor.shape == positive.shape == negative.shape) or anchor.ndim != 2:
        raise ValueError(
            f"expected (B,D) embeddings of one shape, got {tuple(anchor.shape)}, {tuple(positive.shape)}, "
            f"{tuple(negative.shape)}"
        )
    d_pos = (anchor - positive).pow(2).sum(1)
    d_neg = (anchor - negative).pow(2).sum(1)
    return reduce(F.relu(d_pos - d_neg + margin), reduction)


def preference_weight(
    progress: float | torch.Tensor,
    schedule: str = "linear",
    low: float = 0.5,
    high: float = 1.5,
    batch: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The weight ``w`` of the preferred image in :func:`pairwise_preference_loss`.

    ``progress`` in [0,1] is the fraction of training done. Schedules:

    * ``"linear"`` (PPS default): ``low + (high − low)·progress``, 0.5 → 1.5;
    * ``"cosine"``: the same range along a half cosine (slow start and end);
    * ``"constant"``: ``high`` throughout (e.g. 1.0 with ``high=1``: plain supervision by ``I_p``);
    * ``"uniform"``: drawn per pair from U(low, high), independent of progress (the
      ``global-style`` reference point's choice).

    Returns a scalar tensor, or ``(batch,)`` for ``"uniform"`` (``batch`` required).
    """
    p = torch.as_tensor(progress, dtype=torch.float32).clamp(0.0, 1.0)
    if schedule == "linear":
        return low + (high - low) * p
    if schedule == "cosine":
        return low + (high - low) * 0.5 * (1.0 - torch.cos(torch.pi * p))
    if schedule == "constant":
        return torch.as_tensor(float(high))
    if schedule == "uniform":
        if batch is None:
            raise ValueError("the 'uniform' schedule needs batch=")
        return low + (high - low) * torch.rand(batch, generator=generator)
    raise ValueError(f"unknown w schedule {schedule!r}; choose from {', '.join(W_SCHEDULES)}")


def pairwise_preference_loss(
    output: torch.Tensor,
    preferred: torch.Tensor,
    non_preferred: torch.Tensor,
    w: float | torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """PPS dual supervision: ``w·L(Î, I_p) + (1 − w)·L(Î, I_n)`` per pair.

    ``output`` Î, ``preferred`` I_p and ``non_preferred`` I_n are ``(B,3,H,W)``; ``w`` a scalar or
    ``(B,)`` (see :func:`preference_weight`; ``w > 1`` pushes Î away from I_n). ``loss_fn(pred,
    target) -> (B,)`` is the per-sample distance ``L`` (default :func:`l1_loss` per sample).
    """
    if loss_fn is None:

        def loss_fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return l1_loss(a, b, reduction="none")

    lp = loss_fn(output, preferred)
    ln = loss_fn(output, non_preferred)
    w_t = torch.as_tensor(w, dtype=lp.dtype, device=lp.device)
    if w_t.ndim not in (0, 1) or (w_t.ndim == 1 and w_t.shape[0] != lp.shape[0]):
        raise ValueError(f"w must be a scalar or (B,), got shape {tuple(w_t.shape)}")
    return reduce(w_t * lp + (1.0 - w_t) * ln, reduction)


def ideal_point_choice_loss(
    output: torch.Tensor,
    preferred: torch.Tensor,
    non_preferred: torch.Tensor,
    temperature: float | torch.Tensor = 2.0,
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """``−log σ((d(Î, I_n) − d(Î, I_p)) / T)`` per pair: how unlikely the user's choice is if Î is their ideal.

    The unfolding (ideal-point) model of pairwise choice: a person prefers the rendition closer
    to their ideal, with Bradley-Terry noise of temperature ``T`` (in units of ``d``). Minimising
    it over many pairs places Î where the choices agree, also outside the renditions' span,
    unlike dual supervision, which regresses towards the preferred images. ``d(pred, target) ->
    (B,)`` defaults to the mean CIELAB Euclidean distance (ΔE76) per pixel; images ``(B,3,H,W)``
    sRGB in [0,1].
    """
    if distance is None:
        distance = lab_distance
    dp = distance(output, preferred)
    dn = distance(output, non_preferred)
    return reduce(F.softplus((dp - dn) / temperature), reduction)


def lab_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean per-pixel CIELAB Euclidean distance (ΔE76) ``(B,)`` of sRGB images ``(B,3,H,W)`` in [0,1]."""
    _check_pair(a, b)
    d = rgb_to_lab(a.clamp(0, 1)) - rgb_to_lab(b.clamp(0, 1))
    return (d.pow(2).sum(1) + eps).sqrt().flatten(1).mean(1)
