"""Resizing so that the long side is at most N pixels, the one helper every thumbnail uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # torch is imported where it is used: long_side_size serves torch-free callers
    import torch

__all__ = ["long_side_size", "resize_long_side"]


def long_side_size(h: int, w: int, side: int, upscale: bool = False) -> tuple[int, int]:
    """``(h', w')``: ``(h, w)`` scaled so that the long side is ``side`` (aspect kept, at least 1 px).

    Sizes whose long side is already at most ``side`` are kept unless ``upscale``.
    """
    if side < 1:
        raise ValueError(f"side must be >= 1, got {side}")
    s = side / max(h, w)
    if s >= 1 and not upscale:
        return h, w
    return max(1, round(h * s)), max(1, round(w * s))


def resize_long_side(
    img: torch.Tensor, side: int, mode: Literal["bilinear", "area"] = "bilinear", upscale: bool = False
) -> torch.Tensor:
    """``img`` ``(3,H,W)`` or ``(B,C,H,W)`` resized so that its long side is at most ``side``.

    ``mode``: ``"bilinear"`` (antialiased) or ``"area"`` (box averaging, the cheapest clean
    downscale). Images already small enough come back unchanged (the same tensor) unless
    ``upscale``. Values in [0,1] stay in [0,1]; the result has ``img``'s number of dimensions.
    """
    import torch.nn.functional as F

    if img.ndim not in (3, 4):
        raise ValueError(f"expected (3,H,W) or (B,C,H,W), got shape {tuple(img.shape)}")
    h, w = img.shape[-2:]
    hw = long_side_size(h, w, side, upscale=upscale)
    if hw == (h, w):
        return img
    x = img[None] if img.ndim == 3 else img
    if mode == "area" and hw[0] <= h and hw[1] <= w:
        y = F.interpolate(x, size=hw, mode="area")
    else:
        y = F.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False)
    return y[0] if img.ndim == 3 else y
