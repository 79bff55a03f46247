"""A personalized model's taste as one 3D LUT (``prefstyle export-lut``).

Any :class:`~prefstyle.models.base.PersonalizationModel` may adapt its transform to each photo;
a ``.cube`` file holds one global mapping. :func:`profile_to_lut` renders a set of photographs
in the user's taste (by default the whole frame of every photo of the bundled content pool),
and fits the LUT that best reproduces all of those renderings at once
(:func:`prefstyle.imaging.lut_fit.fit_lut`): the average of the adaptive transform over the
pool, with colours the photos never visit continued smoothly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from prefstyle.imaging.lut_fit import fit_lut, lut_samples
from prefstyle.models.base import PersonalizationModel, Profile
from prefstyle.models.render import render_batch

__all__ = ["default_images", "profile_to_lut"]


def default_images(side: int = 192, system: bool = True) -> list[torch.Tensor]:
    """The whole frame of every bundled photograph, ``(3, h, w)`` with long side ``side``, in [0, 1]."""
    from prefstyle.data.pool import ContentPool

    pool = ContentPool.bundled(system=system)
    return [pool.scene_image(f"{pid}#0", size=side) for pid in pool.photo_ids]


def profile_to_lut(
    model: PersonalizationModel,
    profile: Profile,
    size: int = 33,
    images: Sequence[torch.Tensor] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """The ``(3, size, size, size)`` LUT that best reproduces ``model.render(·, profile)`` on ``images``.

    Args:
        model: a PersonalizationModel; ``profile`` its Profile for the user.
        size: LUT nodes per axis.
        images: ``(3,H,W)`` or ``(1,3,H,W)`` photos in [0, 1]; default :func:`default_images`.
        progress: called as ``progress(done, total)`` after each rendered image.
    Returns:
        float32 LUT in the layout of :mod:`prefstyle.imaging.lut` (write it with
        :func:`prefstyle.imaging.lut_io.write_cube`).
    """
    imgs = [im if im.dim() == 4 else im[None] for im in (images if images is not None else default_images())]
    if not imgs:
        raise ValueError("no images to export a LUT from")
    direct = per_photo_luts_mean(model, profile, imgs, size, progress)
    if direct is not None:
        return direct
    outs = []
    with torch.no_grad():
        for k, im in enumerate(imgs):
            outs.append(render_batch(model, profile, im.float()))
            if progress is not None:
                progress(k + 1, len(imgs))
    x, y = lut_samples([i[0] for i in imgs], [o[0] for o in outs])
    return fit_lut(x, y, size=size)


def per_photo_luts_mean(
    model: PersonalizationModel,
    profile: Profile,
    images: Sequence[torch.Tensor],
    size: int,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor | None:
    """For a model that renders each photo with one LUT (:meth:`~PersonalizationModel.luts`): the
    mean of those LUTs over ``images`` ``(1,3,H,W)``, resized to ``size``³ and clamped to [0, 1]
    (the single mapping closest to them all; it equals the model's LUT when the LUT does not
    depend on the photo). None for models without per-photo LUTs (then the LUT is fitted to
    their renderings)."""
    from prefstyle.imaging.lut import resize_lut

    total: torch.Tensor | None = None
    with torch.no_grad():
        for k, im in enumerate(images):
            lut = model.luts(im.float(), profile)
            if lut is None:
                return None
            total = lut[0].float() if total is None else total + lut[0].float()
            if progress is not None:
                progress(k + 1, len(images))
    assert total is not None
    mean = total / len(images)
    if mean.shape[-1] != size:
        mean = resize_lut(mean, size)
    return mean.clamp(0.0, 1.0).contiguous()
