"""The training data of the PPS models: a pairs dataset's judgments with their images in memory.

* :class:`PairBank`: every image a training judgment names, as small square thumbnails
  (:func:`~prefstyle.models.pps.thumbs.square_thumbs`) and, optionally, frozen-backbone features;
* :class:`PairBatchLoader`: resumable batches of :class:`PairBatch` (query pairs plus ``N``
  context reference pairs of the same user, never of the query's scene).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from prefstyle.data.batches import SeededBatches
from prefstyle.errors import PrefstyleError
from prefstyle.models.pps.backbone import FrozenBackbone
from prefstyle.models.pps.thumbs import square_thumbs

if TYPE_CHECKING:
    from prefstyle.data.pairs import PairsDataset

__all__ = ["PairBank", "PairBatch", "PairBatchLoader"]


@dataclass
class PairBatch:
    """One training batch as indices into a :class:`PairBank` (everything a step needs at random).

    ``judgment (B,)``: the query judgments; ``user (B,)``: their users' indices in
    ``bank.users``; ``side (B,)``: True where ``I_p`` is fed, False where ``I_n`` is; ``context
    (B, N)``: the users' other judgments (context reference pairs; padded with -1) and
    ``context_mask (B, N)`` (True where real); ``noise (B,)``: a seed per sample for any further
    randomness of the loss (query pixels, ...); ``u ()``: a uniform number shared by the whole
    global batch (e.g. the target size of the step). ``N`` is 0 for models without context.
    """

    judgment: torch.Tensor
    user: torch.Tensor
    side: torch.Tensor
    context: torch.Tensor
    context_mask: torch.Tensor
    noise: torch.Tensor
    u: torch.Tensor

    FIELDS = ("judgment", "user", "side", "context", "context_mask", "noise", "u")

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(*(getattr(self, f).to(device) for f in self.FIELDS))

    def generator(self, i: int) -> torch.Generator:
        """A CPU generator for sample ``i`` (seeded from ``noise[i]``)."""
        return torch.Generator().manual_seed(int(self.noise[i]))


class PairBank:
    """The training judgments of a pairs dataset with all their images in memory.

    ``users``: whose ``kind`` judgments to use (users with fewer than ``min_judgments`` are
    dropped); ``scenes``: only judgments on these scenes (default: all). Every image a judgment names (and each scene's neutral source, when listed) is
    read once and kept as ``sizes`` thumbnails (:func:`square_thumbs`): ``thumbs[s]`` is
    ``(M,3,s,s)``. With ``backbone``, ``features`` holds ``backbone(image) (M, D)`` computed
    from the full image as stored (the same preprocessing the models use at inference).

    Per judgment ``j``: ``pref[j]``, ``other[j]``, ``source[j]`` (image rows; ``source`` is -1
    without a neutral source), ``user_of[j]`` (index into ``users``) and ``scene_of[j]``.
    """

    def __init__(
        self,
        dataset: PairsDataset,
        users: Sequence[str],
        sizes: Sequence[int] = (64,),
        backbone: FrozenBackbone | None = None,
        kind: str = "main",
        min_judgments: int = 2,
        progress: bool = False,
        max_images_in_flight: int = 32,
        scenes: Collection[str] | None = None,
    ):
        from prefstyle.data.pairs import normalize_relpath
        from prefstyle.imaging.io import load_image

        self.dataset = dataset
        self.sizes = tuple(sorted({int(s) for s in sizes}))
        keep = None if scenes is None else set(scenes)
        js_by_user = {
            u: [j for j in dataset.by_user(u) if j.kind == kind and (keep is None or j.scene in keep)]
            for u in sorted(set(users))
        }
        self.users = [u for u, js in js_by_user.items() if len(js) >= min_judgments]
        if not self.users:
            raise PrefstyleError(
                f"no training users with at least {min_judgments} {kind} judgments", path=getattr(dataset, "root", None)
            )
        rows: dict[str, int] = {}
        order: list[str] = []

        def row(rel: str) -> int:
            key = normalize_relpath(rel)
            if key not in rows:
                rows[key] = len(order)
                order.append(key)
            return rows[key]

        pref: list[int] = []
        other: list[int] = []
        source: list[int] = []
        user_of: list[int] = []
        scene_names: list[str] = []
        self.by_user: list[np.ndarray] = []
        for ui, u in enumerate(self.users):
            start = len(pref)
            for j in js_by_user[u]:
                pref.append(row(j.preferred_image))
                other.append(row(j.other_image))
                sc = dataset.scenes.get(j.scene)
                source.append(row(sc.source) if sc is not None and sc.source else -1)
                user_of.append(ui)
                scene_names.append(j.scene)
            self.by_user.append(np.arange(start, len(pref)))
        self.pref = torch.tensor(pref)
        self.other = torch.tensor(other)
        self.source = torch.tensor(source)
        self.user_of = torch.tensor(user_of)
        scene_ids = {s: i for i, s in enumerate(dict.fromkeys(scene_names))}
        self.scene_of = torch.tensor([scene_ids[s] for s in scene_names])
        self.paths = order
        self.thumbs = {s: torch.empty(len(order), 3, s, s) for s in self.sizes}
        self.features: torch.Tensor | None = None
        feats: list[torch.Tensor] = []
        pending: list[torch.Tensor] = []
        t0 = time.perf_counter()
        it: Any = order
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(order, desc="load training images", unit="img")
        for i, rel in enumerate(it):
            img = load_image(dataset.image_path(rel))
            for s in self.sizes:
                self.thumbs[s][i] = square_thumbs(img, s)[0]
            if backbone is not None:
                pending.append(
                    F.interpolate(
                        img, size=(backbone.input_size,) * 2, mode="bilinear", antialias=True, align_corners=False
                    ).clamp(0, 1)
                    if img.shape[-2:] != (backbone.input_size,) * 2
                    else img
                )
                if len(pending) >= max_images_in_flight:
                    feats.append(backbone(torch.cat(pending)))
                    pending = []
        if backbone is not None:
            if pending:
                feats.append(backbone(torch.cat(pending)))
            self.features = torch.cat(feats)
        self.load_seconds = time.perf_counter() - t0

    def __len__(self) -> int:
        return len(self.pref)

    _SAVED = (
        "users",
        "sizes",
        "pref",
        "other",
        "source",
        "user_of",
        "scene_of",
        "paths",
        "thumbs",
        "features",
        "by_user",
        "load_seconds",
    )

    def save(self, path: str | Path) -> None:
        """Write the bank (images as thumbnails, features, indices) to one file, atomically."""
        from prefstyle.fsutil import atomic_path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save({k: getattr(self, k) for k in self._SAVED}, tmp)

    @classmethod
    def load(cls, path: str | Path, dataset: PairsDataset) -> PairBank:
        """A bank written by :meth:`save` (for the same dataset)."""
        state = torch.load(path, map_location="cpu", weights_only=False)
        bank = cls.__new__(cls)
        bank.dataset = dataset
        for k in cls._SAVED:
            setattr(bank, k, state[k])
        return bank

    def require_features(self) -> torch.Tensor:
        """:attr:`features` ``(M, D)``, which a bank built without a backbone does not have."""
        if self.features is None:
            raise PrefstyleError("this pair bank was built without backbone features")
        return self.features

    @property
    def has_sources(self) -> bool:
        return bool((self.source >= 0).any())

    def describe(self) -> dict[str, Any]:
        return {
            "users": len(self.users),
            "judgments": len(self),
            "images": len(self.paths),
            "sizes": list(self.sizes),
            "with_sources": self.has_sources,
            "features": None if self.features is None else list(self.features.shape),
        }

    def context_for(self, q: int, n_context: int, seed: int) -> np.ndarray:
        """Up to ``n_context`` other judgments of judgment ``q``'s user, none of its scene (seeded draw)."""
        pool = self.by_user[int(self.user_of[q])]
        pool = pool[self._scene_np[pool] != self._scene_np[q]]
        take = min(n_context, len(pool))
        if take <= 0:
            return np.zeros(0, dtype=np.int64)
        return np.random.default_rng(seed).choice(pool, size=take, replace=False)

    @property
    def _scene_np(self) -> np.ndarray:
        if getattr(self, "_scene_cache", None) is None:
            self._scene_cache = self.scene_of.numpy()
        return self._scene_cache


class PairBatchLoader(SeededBatches):
    """Infinite, resumable batches of :class:`PairBatch` for one of ``world_size`` processes.

    Batch ``t`` is a pure function of ``(seed, t)`` (:class:`prefstyle.data.batches.SeededBatches`
    semantics, implemented here since models sit below the trainer): the global batch of
    ``batch_size × world_size`` judgments is drawn without replacement, uniformly over the
    training judgments, with random sides, one ``N`` per batch (uniform in ``n_context``, an
    int or ``(lo, hi)``), a per-sample noise seed and a shared uniform ``u``; this rank keeps
    its slice. Context pairs come from the noise seeds, so they do not depend on the split.
    """

    def __init__(
        self,
        bank: PairBank,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        n_context: int | Sequence[int] = 0,
    ):
        super().__init__(self._make, batch_size, seed, rank, world_size)
        self.bank = bank
        self.n_context = (
            (int(n_context), int(n_context))
            if isinstance(n_context, (int, np.integer))
            else tuple(int(v) for v in n_context)
        )

    def _make(self, step: int, gen: torch.Generator, n: int, part: slice) -> PairBatch:
        total = len(self.bank)
        judg = torch.randperm(total, generator=gen)[:n] if n <= total else torch.randint(total, (n,), generator=gen)
        side = torch.rand(n, generator=gen) < 0.5
        lo, hi = self.n_context
        n_ctx = int(torch.randint(lo, hi + 1, (), generator=gen)) if hi > 0 else 0
        noise = torch.randint(0, 2**62, (n,), generator=gen)
        u = torch.rand((), generator=gen)
        judg, side, noise = judg[part], side[part], noise[part]
        ctx = torch.full((len(judg), n_ctx), -1, dtype=torch.long)
        for r, (q, z) in enumerate(zip(judg.tolist(), noise.tolist())):
            c = self.bank.context_for(q, n_ctx, z)
            ctx[r, : len(c)] = torch.from_numpy(c)
        return PairBatch(
            judgment=judg, user=self.bank.user_of[judg], side=side, context=ctx, context_mask=ctx >= 0, noise=noise, u=u
        )
