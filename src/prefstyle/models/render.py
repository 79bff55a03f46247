"""A personalization model applied to photos: the one render path of ``enhance``, ``evaluate``,
``export-lut`` and the study app.

* :func:`render_batch` - ``(B,3,H,W)`` through ``model.render``, the shape checked, the edit
  scaled by ``strength`` (``x + s·(f(x) − x)``), clamped to [0,1];
* :func:`render_image` - one decoded photo (:class:`~prefstyle.imaging.io.ImageData`) or
  ``(3,H,W)`` tensor at full resolution. 8-bit photos on the CPU take the model's LUT fast path
  when it gives one (:meth:`~prefstyle.models.base.PersonalizationModel.luts`): the per-photo
  3D LUT, blended with the identity by ``strength`` (the same blend: trilinear interpolation is
  linear in the LUT), applied to the 8-bit pixels by :func:`~prefstyle.imaging.lut.apply_lut_uint8`;
* :func:`render_image_uint8` / :func:`render_image_pil` - the 8-bit fast path alone, uint8 end
  to end: the photo's ``(H,W,3)`` uint8 array through its LUT (:func:`photo_lut`) into a new
  uint8 array or Pillow image (``prefstyle enhance`` writes that as it is), or None when the
  fast path does not apply;
* :func:`blend` - the strength blend alone (evaluation renders once and scores several strengths).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.decode import rgb8_to_float
from prefstyle.imaging.lut import apply_lut_uint8, identity_lut
from prefstyle.imaging.lut_np import lut_input_view
from prefstyle.models.base import PersonalizationModel, Profile

if TYPE_CHECKING:
    from prefstyle.imaging.decode import ImageData

__all__ = [
    "blend",
    "lut_filtered_image",
    "photo_lut",
    "render_batch",
    "render_image",
    "render_image_pil",
    "render_image_uint8",
]


def blend(inputs: torch.Tensor, outputs: torch.Tensor, strength: float) -> torch.Tensor:
    """``x + strength·(f(x) − x)`` clamped to [0,1] (``outputs`` themselves, clamped, at 1)."""
    if strength == 1.0:
        return outputs.clamp(0, 1)
    return (inputs + strength * (outputs - inputs)).clamp(0, 1)


def render_batch(
    model: PersonalizationModel, profile: Profile, img: torch.Tensor, strength: float = 1.0
) -> torch.Tensor:
    """``img`` ``(B,3,H,W)`` sRGB [0,1] in the profile's taste, ``(B,3,H,W)`` in [0,1].

    A model that returns another shape is a :class:`~prefstyle.errors.PrefstyleError` naming it.
    """
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"expected (B,3,H,W) images, got shape {tuple(img.shape)}")
    out = model.render(img, profile)
    if tuple(out.shape) != tuple(img.shape):
        raise PrefstyleError(f"model '{model.name}' rendered shape {tuple(out.shape)} for input {tuple(img.shape)}")
    return blend(img, out, strength)


def render_image(
    model: PersonalizationModel,
    profile: Profile,
    image: ImageData | torch.Tensor,
    strength: float = 1.0,
    lut_path: bool = True,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """The retouched pixels ``(3,H,W)`` in [0,1] (on the CPU) of one photo at full resolution.

    ``image``: a decoded :class:`~prefstyle.imaging.io.ImageData` (8- or 16-bit) or a ``(3,H,W)``
    tensor in [0,1] (rendered as a 16-bit photo would be). ``strength`` in [0,1] (up to 2
    extrapolates). ``lut_path``: allow the 8-bit LUT fast path (False: always ``model.render``,
    which keeps a model's local edits).
    """
    if lut_path and not isinstance(image, torch.Tensor) and torch.device(device).type == "cpu":
        y8 = render_image_uint8(model, profile, image, strength)
        if y8 is not None:
            return torch.from_numpy(y8).permute(2, 0, 1).float().div_(255.0)
    pixels = image if isinstance(image, torch.Tensor) else image.pixels
    if pixels.ndim != 3 or pixels.shape[0] != 3:
        raise ValueError(f"expected a (3,H,W) image, got shape {tuple(pixels.shape)}")
    return render_batch(model, profile, pixels[None].to(device), strength)[0].cpu()


def photo_lut(
    model: PersonalizationModel, profile: Profile, image: ImageData, strength: float = 1.0
) -> torch.Tensor | None:
    """The ``(3,S,S,S)`` LUT that renders the 8-bit photo ``image`` (``strength``-blended with the
    identity), or None when the photo is not 8-bit or the model gives no LUT.

    The model is shown a float thumbnail of the uint8 array (every ``s``-th pixel,
    :func:`_metering_view`), not a float copy of the whole photo.
    """
    if image.bit_depth != 8:
        return None
    if image.rgb8 is None:
        pixels = image.pixels
        if pixels.ndim != 3 or pixels.shape[0] != 3:
            raise ValueError(f"expected a (3,H,W) image, got shape {tuple(pixels.shape)}")
        x = pixels[None]
    else:
        x = rgb8_to_float(_metering_view(image.rgb8, getattr(model, "meter", None) in ("mean", "log_mean")))[None]
    with torch.inference_mode():
        luts = model.luts(x, profile)
    if luts is None:
        return None
    lut = luts[0].float()
    if strength != 1.0:
        ident = identity_lut(lut.shape[-1])
        lut = ident + strength * (lut - ident)
    return lut


def render_image_uint8(
    model: PersonalizationModel, profile: Profile, image: ImageData, strength: float = 1.0, threads: int | None = None
) -> np.ndarray | None:
    """The retouched ``(H,W,3)`` uint8 pixels of an 8-bit photo through the model's LUT, or None.

    None when the photo is not 8-bit or the model gives no LUT (then :func:`render_image` takes
    ``model.render``). The LUT (:func:`photo_lut`) is applied to the uint8 array by
    :func:`~prefstyle.imaging.lut.apply_lut_uint8` in ``threads`` strips (default: torch's
    thread count). Same result as the LUT branch of :func:`render_image`.
    """
    lut = photo_lut(model, profile, image, strength)
    if lut is None:
        return None
    return apply_lut_uint8(_rgb8_of(image), lut, threads=threads)


def render_image_pil(
    model: PersonalizationModel, profile: Profile, image: ImageData, strength: float = 1.0, threads: int | None = None
) -> Image.Image | None:
    """:func:`render_image_uint8` as a Pillow ``RGB`` image (the same pixels), for writing it
    without copying it back to numpy; None where that gives None."""
    lut = photo_lut(model, profile, image, strength)
    if lut is None:
        return None
    return lut_filtered_image(_rgb8_of(image), lut, threads)


def lut_filtered_image(u8: np.ndarray, lut: torch.Tensor, threads: int | None = None) -> Image.Image:
    """``(H,W,3)`` uint8 through the ``(3,S,S,S)`` LUT by Pillow's ``Color3DLUT``, as a Pillow image:
    what :func:`~prefstyle.imaging.lut.apply_lut_uint8` computes (same filter, in ``threads``
    threads, default torch's thread count; the GIL is released while filtering), without its copy
    back to numpy.

    Photos of a megapixel or more are filtered in ``4 · threads`` strips, so that the copies in
    flight (a Pillow copy of each strip being filtered and its filtered copy) stay small: 12 MP,
    2 threads: 24 MB at a time instead of 96 MB (one thread: 12 MB instead of 96 MB). The
    pixels are the same (:func:`prefstyle.imaging.lut_np.lut_filtered_image`, which the
    torch-free path of ``enhance`` calls with a numpy LUT).
    """
    from prefstyle.imaging.lut_np import lut_filtered_image as filtered

    table = lut.detach().to("cpu", torch.float32).numpy()
    return filtered(u8, table, max(1, torch.get_num_threads() if threads is None else int(threads)))


def _rgb8_of(image: ImageData) -> np.ndarray:
    if image.rgb8 is not None:
        return image.rgb8
    return image.pixels.mul(255.0).add_(0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


#: the thumbnail ``model.luts`` is shown (:func:`prefstyle.imaging.lut_np.lut_input_view`)
_metering_view = lut_input_view
