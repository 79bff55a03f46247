"""``prefstyle export-lut`` for LUT-form profiles without torch (``looks``, ``sliders``, and PieNet once
its network is cached).

:func:`prefstyle.eval.lut_export.profile_to_lut` exports a model that renders each photo with one
LUT as the mean of those LUTs over the bundled photographs (192-px thumbnails, cached as one 8-bit
``.npz``). For a profile :func:`~prefstyle.models.lut_forms.torch_free_lut_profile` reads, this
module computes the same mean with numpy from the cached thumbnails: :func:`cached_photos_u8`
(None when the cache is missing or stale: the torch path then decodes the photos and writes it),
:func:`mean_lut` and :func:`export_notes`. The LUT agrees with the torch path's to float32
rounding (``tests/test_export_lut_torch_free.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prefstyle.imaging import lut_np
from prefstyle.models.lut_forms import LutProfile, SliderLutProfile, TorchFreeProfile
from prefstyle.models.pienet_lut_np import NetworkLutProfile

__all__ = ["PHOTO_SIDE", "cache_path", "cached_photos_u8", "export_notes", "mean_lut"]

#: long side of the thumbnails the LUT is averaged over (``default_images``' default)
PHOTO_SIDE = 192


def cache_path(side: int, paths: Sequence[Path | None]) -> Path | None:
    """Where the ``side``-px thumbnails of the photos at ``paths`` are cached (keyed by ``side`` and every
    file's path, size and modification time): ``$PREFSTYLE_CACHE/lut-photos/`` (default
    ``~/.cache/prefstyle``); None when a photo has no file or cannot be read."""
    ids: list[object] = [side]
    for p in paths:
        if p is None:
            return None
        try:
            st = p.stat()
        except OSError:
            return None
        ids.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
    from prefstyle.fsutil import cache_root

    return cache_root() / "lut-photos" / f"{hashlib.sha1(repr(ids).encode()).hexdigest()[:20]}.npz"


def cached_photos_u8(side: int = PHOTO_SIDE, system: bool = True) -> list[np.ndarray] | None:
    """The bundled photographs' cached thumbnails as ``(h, w, 3)`` uint8 arrays, or None when there is
    no readable cache for the photos as they are now."""
    from prefstyle.data.photo_list import bundled_photo_paths

    paths = bundled_photo_paths(system=system)
    path = cache_path(side, paths)
    if not paths or path is None or not path.is_file():
        return None
    try:
        with np.load(path) as z:
            arrs = [z[f"arr_{i}"] for i in range(len(paths))]
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if any(a.dtype != np.uint8 or a.ndim != 3 or a.shape[0] != 3 for a in arrs):
        return None
    return [np.ascontiguousarray(a.transpose(1, 2, 0)) for a in arrs]


def mean_lut(form: TorchFreeProfile | NetworkLutProfile, photos: Sequence[np.ndarray], size: int) -> np.ndarray:
    """``(3, size, size, size)`` float32 in [0, 1]: the mean over ``photos`` (``(h, w, 3)`` uint8) of each
    photo's LUT, resampled (trilinear) to ``size`` nodes and clamped, as ``per_photo_luts_mean`` does."""
    if not photos:
        raise ValueError("no photos to export a LUT from")
    total = np.zeros((3, form.lut_size, form.lut_size, form.lut_size), dtype=np.float32)
    for u8 in photos:
        total += form.photo_lut(u8)
    mean = total / np.float32(len(photos))
    if form.lut_size != size:
        mean = lut_np.sample_table(mean, lut_np.identity_grid(size)).reshape(3, size, size, size)
    return np.clip(mean, 0.0, 1.0).astype(np.float32)


def export_notes(form: TorchFreeProfile | NetworkLutProfile) -> list[str]:
    """What one global LUT cannot hold of this taste: the model's ``export_notes``, from the profile
    (PieNet has none)."""
    if isinstance(form, LutProfile):
        return look_export_notes(form.gain)
    if isinstance(form, SliderLutProfile):
        return sliders_export_notes(form.adaptive)
    return []


def look_export_notes(gain: float) -> list[str]:
    """``LookTasteModel.export_notes`` for a profile of adaptive-brightness gain ``gain``."""
    if gain >= 0.05:
        return [
            f"this taste sets the brightness per photo ({100 * gain:.0f} % adaptive); a .cube holds one mapping "
            "for every photo (the look at the photos' typical brightness); `prefstyle enhance` adapts"
        ]
    return []


def sliders_export_notes(adaptive: float) -> list[str]:
    """``SliderTasteModel.export_notes`` for a profile whose adaptive brightness is ``adaptive``."""
    if adaptive < 0.05:
        return []
    return [
        f"this taste sets the brightness per photo ({100 * adaptive:.0f} % adaptive); a .cube holds one "
        "mapping for every photo, the best single fit over those photos; `prefstyle enhance` adapts"
    ]
