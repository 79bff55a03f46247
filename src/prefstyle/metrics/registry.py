"""The metrics by name, each with its direction made explicit.

>>> spec = get_metric("delta_e00")
>>> spec.higher_is_better
False

==========  ================  =====================================================================
name        higher_is_better  function
==========  ================  =====================================================================
delta_e00   False             :func:`prefstyle.metrics.functional.delta_e00` (mean CIEDE2000)
lpips       False             :func:`prefstyle.metrics.lpips.lpips` (v0.1, AlexNet), needs weights
lpips_vgg   False             :func:`prefstyle.metrics.lpips.lpips` (v0.1, VGG16), needs weights
psnr        True              :func:`prefstyle.metrics.functional.psnr`, capped at 100 dB
ssim        True              :func:`prefstyle.metrics.functional.ssim`
==========  ================  =====================================================================

PSNR is capped at :data:`PSNR_MAX_DB` here so that an output identical to its reference (MSE 0)
gives a finite similarity (CQS needs finite scores); the cap only bites below MSE 1e-10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from prefstyle.metrics import functional as F
from prefstyle.metrics import lpips as _lpips

__all__ = ["METRICS", "PSNR_MAX_DB", "MetricSpec", "available_metrics", "get_metric", "metric_unavailable_reason"]

PSNR_MAX_DB = 100.0

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetricSpec:
    """A full-reference metric ``fn(pred, target) -> (B,)`` on RGB images in ``[0, 1]``.

    ``higher_is_better`` is True for similarities (PSNR, SSIM) and False for distances
    (Delta E 00, LPIPS); CQS turns distances into scores by inversion (see
    :mod:`prefstyle.metrics.cqs`). ``lpips_net`` is set for metrics that need LPIPS weights.
    """

    name: str
    fn: MetricFn
    higher_is_better: bool
    label: str
    lpips_net: str | None = None

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(pred, target)

    @property
    def available(self) -> bool:
        return self.lpips_net is None or _lpips.lpips_weights_available(self.lpips_net)


METRICS: dict[str, MetricSpec] = {
    "delta_e00": MetricSpec("delta_e00", F.delta_e00, higher_is_better=False, label="ΔE00"),
    "lpips": MetricSpec(
        "lpips", partial(_lpips.lpips, net="alex"), higher_is_better=False, label="LPIPS", lpips_net="alex"
    ),
    "lpips_vgg": MetricSpec(
        "lpips_vgg", partial(_lpips.lpips, net="vgg"), higher_is_better=False, label="LPIPS-VGG", lpips_net="vgg"
    ),
    "psnr": MetricSpec("psnr", partial(F.psnr, max_db=PSNR_MAX_DB), higher_is_better=True, label="PSNR"),
    "ssim": MetricSpec("ssim", F.ssim, higher_is_better=True, label="SSIM"),
}


def get_metric(name: str | MetricSpec) -> MetricSpec:
    """The :class:`MetricSpec` called ``name`` (a spec is returned unchanged)."""
    if isinstance(name, MetricSpec):
        return name
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}") from None


def metric_unavailable_reason(name: str | MetricSpec) -> str | None:
    """None when the metric can be computed now, else the one line saying why not."""
    spec = get_metric(name)
    if spec.available:
        return None
    return _lpips.missing_weights_message(spec.lpips_net)


def available_metrics(names: list[str] | None = None) -> tuple[list[MetricSpec], list[str]]:
    """Split ``names`` (default: all) into usable specs and one-line notes for the skipped ones."""
    usable, notes = [], []
    for name in names if names is not None else list(METRICS):
        reason = metric_unavailable_reason(name)
        if reason is None:
            usable.append(get_metric(name))
        else:
            notes.append(f"skipping {name}: {reason}")
    return usable, notes
