"""The content pool: scenes cut from real photographs, with leak-free scene-level splits.

A :class:`ContentPool` is built from photographs (:mod:`prefstyle.data.photos`: the bundled
allow-list and/or a user folder). Every photo gives ``crops_per_photo`` **scenes**:

* scene 0 is the whole frame;
* scenes 1.. are random crops with the photo's aspect ratio, each side ``s`` times the photo's
  side, ``s`` drawn uniformly from ``scale_range`` but never so small that the crop's short side
  has fewer than ``min_crop_side`` pixels in the decoded working copy (so rendering a scene at
  that size never upsamples). A photo too small for any such crop gives only scene 0.

Rendering a crop at a fixed output size is the "rescale": a small crop of a big photo becomes a
close-up, the whole frame a wide view, which multiplies the content of a few dozen photos.

The crops are a pure function of ``(seed, photo id, photo size)`` (a per-photo RNG), so the same
seed gives the same scenes on every machine and adding a photo does not move the others' crops.
Scene ids are ``"<photo id>#<index>"``, e.g. ``"mate/Aqua#2"``.

**The neutral source rendition.** A scene's image is the photo *as shipped*, decoded to sRGB
(EXIF orientation and ICC profile applied) and cropped/resized: these files are already rendered,
display-ready sRGB photographs, so that rendition *is* the neutral, unedited source every
retouch starts from. :meth:`ContentPool.scene_image` returns it as a tensor and
:meth:`ContentPool.write_scene_images` writes it as PNG for datasets (the ``source`` of a
``scenes.jsonl`` line in the pairs format).

**Sizes.** ``scene_image(scene_id, size)`` returns the scene with its *long* side equal to
``size`` (aspect ratio kept), or with ``square=True`` the centred square of the scene's crop box
resized to ``size x size`` (convenient for training batches; note that it drops the box's ends).

**Splits.** :meth:`ContentPool.split` assigns whole *photographs* to train/val/test (every crop
of a photo lands in the same split), so no content is shared across splits.

**Speed.** Photos are decoded once per process into a downscaled working copy
(:func:`~prefstyle.data.photos.working_copy`, at most ``max_side`` px, LRU-cached); scenes are
cropped from it. Iterate scenes in pool order (grouped by photo) to decode each photo once.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from prefstyle.data.photos import (
    DEFAULT_MAX_SIDE,
    PhotoSource,
    Skipped,
    bundled_photos,
    folder_photos,
    working_copy,
)
from prefstyle.data.splits import split_scenes
from prefstyle.errors import PrefstyleError
from prefstyle.imaging.io import write_image
from prefstyle.imaging.resize import long_side_size


@dataclasses.dataclass(frozen=True)
class SceneCrop:
    """One scene of the pool: a crop box of one photo (not to be confused with
    :class:`prefstyle.data.pairs.Scene`, a line of a dataset's ``scenes.jsonl``).

    ``box`` is ``(left, top, width, height)`` in the photo's full-resolution pixels (as decoded,
    after EXIF rotation); ``photo_size`` is the photo's ``(height, width)``; ``index`` 0 is the
    whole frame.
    """

    id: str
    photo_id: str
    index: int
    box: tuple[int, int, int, int]
    photo_size: tuple[int, int]


def crop_boxes(
    height: int,
    width: int,
    n: int,
    scale_range: tuple[float, float],
    min_crop_side: float,
    rng: random.Random,
) -> list[tuple[int, int, int, int]]:
    """The whole frame, then up to ``n - 1`` random crops ``(left, top, width, height)``.

    Crops keep the photo's aspect ratio; their scale is uniform in ``scale_range`` clipped from
    below so that the short side is at least ``min_crop_side`` px. When that leaves no room below
    the whole frame, only the whole frame is returned.
    """
    boxes = [(0, 0, width, height)]
    lo, hi = scale_range
    lo = max(lo, min_crop_side / min(height, width))
    if n <= 1 or lo > hi:
        return boxes
    for _ in range(n - 1):
        s = rng.uniform(lo, hi)
        w = min(width, max(1, round(width * s)))
        h = min(height, max(1, round(height * s)))
        boxes.append((rng.randint(0, width - w), rng.randint(0, height - h), w, h))
    return boxes


def _output_size(h: int, w: int, size: int, square: bool) -> tuple[int, int]:
    if square:
        return size, size
    return long_side_size(h, w, size, upscale=True)


class ContentPool:
    """Scenes from real photographs, rendered on demand.

    Parameters
    ----------
    photos:
        The photographs (ids must be unique).
    crops_per_photo:
        Scenes per photo, the whole frame included (fewer for small photos, see module doc).
    scale_range:
        Crop side as a fraction of the photo's side, ``0 < low <= high <= 1``.
    min_crop_side:
        Smallest short side of a random crop, in pixels of the working copy (the photo at
        ``max_side``); rendering at this size or smaller never upsamples.
    seed:
        Seed of the crops (and nothing else).
    max_side:
        Long side of the decoded working copy crops are cut from (``None``: full resolution).
        At 2048 the smallest default crop (0.35) of a 16:9 photo keeps about 400 px on its short
        side; raise it for larger renders of small crops, at the cost of memory and decode time.
    skipped:
        Files left out while gathering ``photos``, kept for reporting (:attr:`skipped`).
    """

    def __init__(
        self,
        photos: Iterable[PhotoSource],
        *,
        crops_per_photo: int = 4,
        scale_range: tuple[float, float] = (0.35, 0.85),
        min_crop_side: int = 256,
        seed: int = 0,
        max_side: int | None = DEFAULT_MAX_SIDE,
        skipped: Iterable[Skipped] = (),
    ):
        lo, hi = (float(v) for v in scale_range)
        if crops_per_photo < 1:
            raise ValueError(f"crops_per_photo must be >= 1, got {crops_per_photo}")
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale_range must satisfy 0 < low <= high <= 1, got {scale_range}")
        if min_crop_side < 1:
            raise ValueError(f"min_crop_side must be >= 1, got {min_crop_side}")
        if max_side is not None and max_side < 1:
            raise ValueError(f"max_side must be >= 1 or None, got {max_side}")
        self.crops_per_photo = int(crops_per_photo)
        self.scale_range = (lo, hi)
        self.min_crop_side = int(min_crop_side)
        self.seed = int(seed)
        self.max_side = max_side
        self.skipped: list[Skipped] = list(skipped)
        self._photos: dict[str, PhotoSource] = {}
        for p in photos:
            if p.id in self._photos:
                raise ValueError(f"duplicate photo id {p.id!r} ({self._photos[p.id].origin} and {p.origin})")
            self._photos[p.id] = p
        self._scenes: dict[str, SceneCrop] = {}
        for p in self._photos.values():
            size = p.size if p.size is not None else working_copy(p, max_side).size
            # min_crop_side counts the pixels the working copy really has
            kept = 1.0 if max_side is None else min(1.0, max_side / max(size))
            rng = random.Random(f"prefstyle-pool:{self.seed}:{p.id}")
            for k, box in enumerate(
                crop_boxes(*size, self.crops_per_photo, self.scale_range, self.min_crop_side / kept, rng)
            ):
                sid = f"{p.id}#{k}"
                self._scenes[sid] = SceneCrop(sid, p.id, k, box, tuple(size))

    # ---------------------------------------------------------------- construction shortcuts

    @classmethod
    def bundled(cls, *, system: bool = True, **kwargs) -> ContentPool:
        """The pool of :func:`~prefstyle.data.photos.bundled_photos` (``system=False``: only
        the photos inside Python packages, the same on every machine)."""
        return cls(bundled_photos(system=system), **kwargs)

    @classmethod
    def from_folder(
        cls,
        root: str | Path,
        *,
        recursive: bool = True,
        prefix: str = "",
        reject_greyscale: bool = True,
        **kwargs,
    ) -> ContentPool:
        """A pool of the photographs under ``root`` (see :func:`~prefstyle.data.photos.folder_photos`).

        Files left out are in :attr:`skipped` with their reasons. Raises
        :class:`~prefstyle.errors.PrefstyleError` when ``root`` is not a folder or holds no
        usable photograph.
        """
        photos, skipped = folder_photos(
            root,
            recursive=recursive,
            prefix=prefix,
            reject_greyscale=reject_greyscale,
            max_side=kwargs.get("max_side", DEFAULT_MAX_SIDE),
        )
        if not photos:
            detail = "; ".join(str(s) for s in skipped[:3])
            more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
            raise PrefstyleError(f"no usable photograph found{': ' + detail + more if detail else ''}", path=root)
        return cls(photos, skipped=skipped, **kwargs)

    # ---------------------------------------------------------------- lookups

    @property
    def photo_ids(self) -> list[str]:
        return list(self._photos)

    @property
    def scene_ids(self) -> list[str]:
        """All scene ids, grouped by photo (the order that decodes each photo once)."""
        return list(self._scenes)

    @property
    def photos(self) -> list[PhotoSource]:
        return list(self._photos.values())

    def photo(self, photo_id: str) -> PhotoSource:
        try:
            return self._photos[photo_id]
        except KeyError:
            raise KeyError(f"no photo {photo_id!r} in this pool") from None

    def scene(self, scene_id: str) -> SceneCrop:
        try:
            return self._scenes[scene_id]
        except KeyError:
            raise KeyError(f"no scene {scene_id!r} in this pool") from None

    def __len__(self) -> int:
        return len(self._scenes)

    def __contains__(self, scene_id: object) -> bool:
        return scene_id in self._scenes

    def __repr__(self) -> str:
        return (
            f"ContentPool({len(self._photos)} photos, {len(self._scenes)} scenes, "
            f"seed={self.seed}, skipped={len(self.skipped)})"
        )

    # ---------------------------------------------------------------- rendering

    def scene_image(self, scene_id: str, size: int = 256, square: bool = False) -> torch.Tensor:
        """The scene's neutral source rendition, a ``(3, h, w)`` float32 tensor in [0, 1].

        Long side ``size`` with the crop's aspect ratio; ``square=True``: the centred square of
        the crop, ``(3, size, size)``. Resized with antialiased bilinear filtering.
        """
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        scene = self.scene(scene_id)
        x, y, bw, bh = scene.box
        if square:
            side = min(bw, bh)
            x, y, bw, bh = x + (bw - side) // 2, y + (bh - side) // 2, side, side
        wc = working_copy(self._photos[scene.photo_id], self.max_side)
        return wc.render((x, y, bw, bh), _output_size(bh, bw, size, square))

    def scene_batch(self, scene_ids: Sequence[str], size: int = 256) -> torch.Tensor:
        """Square renditions of ``scene_ids`` stacked into ``(N, 3, size, size)``."""
        return torch.stack([self.scene_image(s, size, square=True) for s in scene_ids])

    def write_scene_images(
        self,
        scene_ids: Iterable[str],
        out_dir: str | Path,
        size: int = 512,
        square: bool = False,
    ) -> dict[str, Path]:
        """Save each scene's source rendition as an 8-bit sRGB PNG under ``out_dir``.

        The file of scene ``"<photo id>#<k>"`` is ``out_dir/<photo id>/<k>.png``, written
        atomically with :func:`prefstyle.imaging.io.write_image` (an existing file is replaced).
        Unknown scene ids raise :class:`KeyError` before anything is written. Returns
        ``{scene id: path}`` in the order given. The photos' authors and licences are
        :meth:`credits`.
        """
        out_dir = Path(out_dir)
        ids = list(dict.fromkeys(scene_ids))
        scenes = [self.scene(s) for s in ids]
        order = {pid: i for i, pid in enumerate(self._photos)}
        paths: dict[str, Path] = {}
        for scene in sorted(scenes, key=lambda s: (order[s.photo_id], s.index)):  # decode each photo once
            path = out_dir / scene.photo_id / f"{scene.index}.png"
            write_image(path, self.scene_image(scene.id, size, square), bit_depth=8)
            paths[scene.id] = path
        return {s: paths[s] for s in ids}

    def credits(self, scene_ids: Iterable[str] | None = None) -> list[dict[str, str]]:
        """Where the photos behind ``scene_ids`` (default: all) come from: one dict per photo
        with ``photo``, ``origin``, ``author`` and ``licence``, in pool order. Ship it with any
        dataset made from the pool (several bundled photos are CC-BY / CC-BY-SA / GPL)."""
        wanted = None if scene_ids is None else {self.scene(s).photo_id for s in scene_ids}
        return [
            {"photo": p.id, "origin": p.origin, "author": p.author, "licence": p.licence}
            for p in self._photos.values()
            if wanted is None or p.id in wanted
        ]

    # ---------------------------------------------------------------- splits

    def split(
        self,
        fractions: Sequence[float] = (0.7, 0.15, 0.15),
        seed: int = 0,
        names: Sequence[str] = ("train", "val", "test"),
    ) -> dict[str, list[str]]:
        """Scene ids per split, whole photos at a time: all crops of a photo share one split.

        Deterministic for a seed and independent of the order photos were added
        (:func:`prefstyle.data.splits.split_scenes`, grouped by photo).
        """
        return split_scenes(self.scene_ids, fractions, seed, names, group=lambda sid: self._scenes[sid].photo_id)
