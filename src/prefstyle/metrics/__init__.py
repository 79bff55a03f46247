"""Image metrics (PSNR, SSIM, CIEDE2000, LPIPS) and the PPS comparative quality score (CQS).

* :mod:`.functional` — ``psnr``, ``ssim``, ``delta_e00``: batched torch functions ``-> (B,)``.
* :mod:`.lpips` — LPIPS v0.1 (AlexNet / VGG16) with the real weights from the set-up cache.
* :mod:`.registry` — ``get_metric(name) -> MetricSpec(name, fn, higher_is_better, ...)``.
* :mod:`.cqs` — CQS (BFS, CMR), its aggregation, the identity reference and the win rate.
"""

from prefstyle.metrics.cqs import (
    CQSAccumulator,
    aggregate_cqs,
    cqs_from_distances,
    cqs_pair,
    preference_win_rate,
    relative_cqs,
)
from prefstyle.metrics.functional import delta_e00, mse, psnr, ssim
from prefstyle.metrics.lpips import LPIPS, lpips, lpips_weights_available
from prefstyle.metrics.registry import (
    METRICS,
    MetricSpec,
    available_metrics,
    get_metric,
    metric_unavailable_reason,
)

__all__ = [
    "LPIPS",
    "METRICS",
    "CQSAccumulator",
    "MetricSpec",
    "aggregate_cqs",
    "available_metrics",
    "cqs_from_distances",
    "cqs_pair",
    "delta_e00",
    "get_metric",
    "lpips",
    "lpips_weights_available",
    "metric_unavailable_reason",
    "mse",
    "preference_win_rate",
    "psnr",
    "relative_cqs",
    "ssim",
]
