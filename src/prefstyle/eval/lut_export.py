"""A personalized model's taste as one 3D LUT (``prefstyle export-lut``).

Any :class:`~prefstyle.models.base.PersonalizationModel` may adapt its transform to each photo;
a ``.cube`` file holds one global mapping. :func:`profile_to_lut` renders a set of photographs
in the user's taste (by default the whole frame of every photo of the bundled content pool),
and fits the LUT that best reproduces all of those renderings at once
(:func:`prefstyle.imaging.lut_fit.fit_lut`): the average of the adaptive transform over the
pool, with colours the photos never visit continued smoothly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from prefstyle.imaging.lut_fit import fit_lut, lut_samples
from prefstyle.models.base import PersonalizationModel, Profile
from prefstyle.models.render import render_batch

__all__ = ["default_images", "draft_thumbnail", "profile_to_lut"]

#: EXIF tag of the orientation
ORIENTATION_TAG = 0x0112


def default_images(side: int = 192, system: bool = True, cache: bool = True) -> list[torch.Tensor]:
    """The whole frame of every bundled photograph, ``(3, h, w)`` with long side ``side``, in [0, 1]
    (steps of 1/255).

    JPEGs are decoded at a reduced DCT scale (:func:`draft_thumbnail`), the rest through the content
    pool's full decode. With ``cache`` the thumbnails are kept in ``$PREFSTYLE_CACHE/lut-photos/``
    (default ``~/.cache/prefstyle``; one 8-bit ``.npz`` of about 3 MB, keyed by ``side`` and every
    file's path, size and modification time), so a later ``export-lut`` decodes nothing.
    """
    from prefstyle.data.pool import ContentPool

    pool = ContentPool.bundled(system=system)
    photos = [pool.photo(pid) for pid in pool.photo_ids]
    path = _cache_path(side, [p.path for p in photos]) if cache else None
    if path is not None and path.is_file():
        hit = _read_cache(path, len(photos))
        if hit is not None:
            return hit
    from concurrent.futures import ThreadPoolExecutor

    def one(photo: Any) -> torch.Tensor:
        fast = draft_thumbnail(photo.path, side) if photo.path is not None else None
        img = fast if fast is not None else pool.scene_image(f"{photo.id}#0", size=side)
        return (img.clamp(0, 1) * 255).round() / 255  # the cache's 8 bits, cached or not

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as ex:  # Pillow decodes without the GIL
        out = list(ex.map(one, photos))
    if path is not None:
        _write_cache(path, out)
    return out


def _cache_path(side: int, paths: Sequence[Path | None]) -> Path | None:
    from prefstyle.models.lut_export_np import cache_path  # shared with the torch-free export

    return cache_path(side, paths)


def _read_cache(path: Path, n: int) -> list[torch.Tensor] | None:
    import numpy as np

    try:
        with np.load(path) as z:
            arrs = [z[f"arr_{i}"] for i in range(n)]
    except (OSError, ValueError, KeyError, EOFError):
        return None  # unreadable: decode again (and rewrite it)
    return [torch.from_numpy(a.astype(np.float32) / 255.0) for a in arrs]


def _write_cache(path: Path, images: Sequence[torch.Tensor]) -> None:
    import numpy as np

    from prefstyle.fsutil import atomic_path

    arrs = [(im * 255).round().to(torch.uint8).numpy() for im in images]  # saved as arr_0, arr_1, ...
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, *arrs)
    except OSError:
        pass  # a read-only home: no cache, the same result


def draft_thumbnail(path: Path, side: int) -> torch.Tensor | None:
    """``(3, h, w)`` float32 in [0, 1], long side ``side``, of an RGB JPEG decoded at a reduced DCT
    scale (Pillow's draft mode: 1/2 to 1/8 of the pixels per side), converted to sRGB from its ICC
    profile when it has one (LittleCMS, on the small image), then area-averaged to size. None when
    the file is not an RGB JPEG without EXIF rotation (then it is decoded fully)."""
    import io

    import numpy as np
    from PIL import Image, ImageCms

    from prefstyle.data.photos import long_side_size

    if path.suffix.lower() not in (".jpg", ".jpeg"):
        return None
    try:
        with Image.open(path) as im:
            if im.format != "JPEG" or im.mode != "RGB" or im.getexif().get(ORIENTATION_TAG, 1) != 1:
                return None
            icc = im.info.get("icc_profile")
            h, w = long_side_size(im.height, im.width, side, upscale=True)
            im.draft("RGB", (w, h))
            small = im.convert("RGB")
        if icc:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(small, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is None:
                return None
            small = converted
        small = small.resize((w, h), Image.Resampling.BOX)
    except (OSError, ValueError, ImageCms.PyCMSError):
        return None  # the full decoder gives the one-line error
    arr = np.asarray(small, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thumbnails and one LUT at a time: more threads only wait on each other
    try:
        with torch.no_grad():
            for k, im in enumerate(images):
                lut = model.luts(im.float(), profile)
                if lut is None:
                    return None
                total = lut[0].float() if total is None else total + lut[0].float()
                if progress is not None:
                    progress(k + 1, len(images))
    finally:
        torch.set_num_threads(threads)
    assert total is not None
    mean = total / len(images)
    if mean.shape[-1] != size:
        mean = resize_lut(mean, size)
    return mean.clamp(0.0, 1.0).contiguous()
