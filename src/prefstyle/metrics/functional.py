"""Full-reference image metrics as batched, differentiable torch functions.

Every function takes two images ``pred`` and ``target`` of the same shape: ``(B, 3, H, W)``
(or ``(3, H, W)``, treated as a batch of one), gamma-encoded sRGB floats in ``[0, 1]``, and
returns one value per image, shape ``(B,)``.

==========  ===================  ====================================================  ============
metric      direction            definition                                            reference
==========  ===================  ====================================================  ============
psnr        higher is better     10 log10(data_range^2 / MSE), MSE over C, H, W         skimage
ssim        higher is better     Gaussian SSIM, see :func:`ssim`                        skimage
delta_e00   lower is better      mean over pixels of CIEDE2000 (sRGB -> CIELAB D65)     skimage,
                                                                                        colour
==========  ===================  ====================================================  ============

The per-metric direction is recorded once, in :mod:`prefstyle.metrics.registry`. LPIPS lives in
:mod:`prefstyle.metrics.lpips` (it needs network weights).

Agreement with the reference implementations is checked in ``tests/test_metrics.py`` on random
images and on real photographs (``skimage.data``):

* :func:`psnr` equals ``skimage.metrics.peak_signal_noise_ratio(target, pred, data_range=1)``.
* :func:`ssim` equals ``skimage.metrics.structural_similarity(target, pred, data_range=1,
  channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
* :func:`delta_e00` equals the pixel mean of ``skimage.color.deltaE_ciede2000`` on
  ``skimage.color.rgb2lab`` images, and of ``colour.difference.delta_E_CIE2000``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prefstyle.imaging.color import delta_e_2000_rgb

__all__ = ["delta_e00", "mse", "psnr", "ssim"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _as_batch(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating point tensor in [0, 1], got {x.dtype}")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.ndim == 3:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    if pred.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W) or (C, H, W), got {tuple(pred.shape)}")
    dtype = torch.promote_types(pred.dtype, target.dtype)
    return pred.to(dtype), target.to(dtype)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over ``C, H, W`` -> ``(B,)``."""
    pred, target = _as_batch(pred, target)
    return (pred - target).pow(2).flatten(1).mean(dim=1)


def psnr(
    pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, max_db: float | None = None
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` per image -> ``(B,)``.

    Identical images give ``+inf`` (as skimage and torchmetrics do) unless ``max_db`` is given,
    in which case the result is clamped to at most ``max_db``.
    """
    err = mse(pred, target)
    out = 10.0 * torch.log10(data_range**2 / err)
    if max_db is not None:
        out = out.clamp(max=max_db)
    return out


def _gaussian_kernel1d(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = SSIM_WINDOW // 2
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def _blur_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of ``(N, 1, H, W)``, keeping only fully-covered pixels."""
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    return F.conv2d(x, k.view(1, 1, -1, 1))


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity per image -> ``(B,)``, Wang et al. (2004) with a Gaussian window.

    Computed on each RGB channel separately (not on luminance) and averaged over channels:
    an 11x11 Gaussian window with sigma 1.5 (truncated at 3.5 sigma, i.e. radius 5),
    ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2`` with ``R = data_range``, population (not sample)
    covariances, and the SSIM map averaged over the pixels at least 5 from the border (where the
    window lies fully inside the image). This is exactly skimage's
    ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=1, channel_axis=-1)``, whose filter output on the border band is discarded, so the
    padding mode does not matter. Images must be at least 11x11.
    """
    pred, target = _as_batch(pred, target)
    b, c, h, w = pred.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {h}x{w}")
    k = _gaussian_kernel1d(pred.dtype, pred.device)
    x = pred.reshape(b * c, 1, h, w)
    y = target.reshape(b * c, 1, h, w)
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=0)
    mu_x, mu_y, xx, yy, xy = _blur_valid(stacked, k).split(b * c, dim=0)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    smap = num / den
    return smap.reshape(b, c, -1).mean(dim=2).mean(dim=1)


def delta_e00(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 colour difference over pixels -> ``(B,)``.

    Both images are gamma-encoded sRGB in ``[0, 1]``, converted to CIELAB (D65, 2 degree
    observer) by :func:`prefstyle.imaging.color.rgb_to_lab`; the per-pixel difference is
    :func:`prefstyle.imaging.color.delta_e_2000` (kL = kC = kH = 1).
    """
    pred, target = _as_batch(pred, target)
    if pred.shape[1] != 3:
        raise ValueError(f"delta_e00 needs RGB images (3 channels), got {pred.shape[1]}")
    return delta_e_2000_rgb(pred, target).flatten(1).mean(dim=1)
