"""Square thumbnails: the same preprocessing for training banks and inference references.

Images are ``(B,3,H,W)`` float32 sRGB in [0,1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["center_square", "square_thumbs"]


def center_square(img: torch.Tensor) -> torch.Tensor:
    """The largest centred square crop of ``(B,3,H,W)`` (unchanged when already square)."""
    h, w = img.shape[-2:]
    if h == w:
        return img
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return img[..., y0 : y0 + s, x0 : x0 + s]


def square_thumbs(img: torch.Tensor, size: int) -> torch.Tensor:
    """``(B,3,H,W)`` or ``(3,H,W)`` -> ``(B,3,size,size)``: centred square crop, area resize.

    The training thumbnails of the PPS baselines; inference uses the same function on
    references, so both see identical preprocessing.
    """
    x = img[None] if img.ndim == 3 else img
    x = center_square(x)
    if x.shape[-1] == size:
        return x.clone()
    if x.shape[-1] > size:
        return F.interpolate(x, size=(size, size), mode="area").clamp(0, 1)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
