"""A personalization model applied to photos: the one render path of ``enhance``, ``evaluate``,
``export-lut`` and the study app.

* :func:`render_batch` - ``(B,3,H,W)`` through ``model.render``, the shape checked, the edit
  scaled by ``strength`` (``x + s·(f(x) − x)``), clamped to [0,1];
* :func:`render_image` - one decoded photo (:class:`~prefstyle.imaging.io.ImageData`) or
  ``(3,H,W)`` tensor at full resolution. 8-bit photos on the CPU take the model's LUT fast path
  when it gives one (:meth:`~prefstyle.models.base.PersonalizationModel.luts`): the per-photo
  3D LUT, blended with the identity by ``strength`` (the same blend: trilinear interpolation is
  linear in the LUT), applied to the 8-bit pixels by :func:`~prefstyle.imaging.lut.apply_lut_uint8`;
* :func:`blend` - the strength blend alone (evaluation renders once and scores several strengths).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.lut import apply_lut_uint8, identity_lut
from prefstyle.models.base import PersonalizationModel, Profile

if TYPE_CHECKING:
    from prefstyle.imaging.io import ImageData

__all__ = ["blend", "render_batch", "render_image"]


def blend(inputs: torch.Tensor, outputs: torch.Tensor, strength: float) -> torch.Tensor:
    """``x + strength·(f(x) − x)`` clamped to [0,1] (``outputs`` themselves, clamped, at 1)."""
    if strength == 1.0:
        return outputs.clamp(0, 1)
    return (inputs + strength * (outputs - inputs)).clamp(0, 1)


def render_batch(model: PersonalizationModel, profile: Profile, img: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """``img`` ``(B,3,H,W)`` sRGB [0,1] in the profile's taste, ``(B,3,H,W)`` in [0,1].

    A model that returns another shape is a :class:`~prefstyle.errors.PrefstyleError` naming it.
    """
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"expected (B,3,H,W) images, got shape {tuple(img.shape)}")
    out = model.render(img, profile)
    if tuple(out.shape) != tuple(img.shape):
        raise PrefstyleError(f"model '{model.name}' rendered shape {tuple(out.shape)} for input {tuple(img.shape)}")
    return blend(img, out, strength)


def render_image(model: PersonalizationModel, profile: Profile, image: ImageData | torch.Tensor,
                 strength: float = 1.0, lut_path: bool = True, device: str | torch.device = "cpu") -> torch.Tensor:
    """The retouched pixels ``(3,H,W)`` in [0,1] (on the CPU) of one photo at full resolution.

    ``image``: a decoded :class:`~prefstyle.imaging.io.ImageData` (8- or 16-bit) or a ``(3,H,W)``
    tensor in [0,1] (rendered as a 16-bit photo would be). ``strength`` in [0,1] (up to 2
    extrapolates). ``lut_path``: allow the 8-bit LUT fast path (False: always ``model.render``,
    which keeps a model's local edits).
    """
    pixels = image if isinstance(image, torch.Tensor) else image.pixels
    if pixels.ndim != 3 or pixels.shape[0] != 3:
        raise ValueError(f"expected a (3,H,W) image, got shape {tuple(pixels.shape)}")
    x = pixels[None].to(device)
    eight_bit = not isinstance(image, torch.Tensor) and image.bit_depth == 8
    if lut_path and eight_bit and x.device.type == "cpu":
        luts = model.luts(x, profile)
        if luts is not None:
            lut = luts[0].float()
            if strength != 1.0:
                ident = identity_lut(lut.shape[-1])
                lut = ident + strength * (lut - ident)
            u8 = image.rgb8  # type: ignore[union-attr]
            if u8 is None:
                u8 = pixels.mul(255.0).add_(0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
            y8 = apply_lut_uint8(u8, lut)
            return torch.from_numpy(y8).permute(2, 0, 1).float().div_(255.0)
    return render_batch(model, profile, x, strength)[0].cpu()
