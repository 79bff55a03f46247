""":class:`~prefstyle.models.base.Reference` objects from a pairs dataset's judgments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from prefstyle.imaging.resize import resize_long_side
from prefstyle.models.base import Reference

if TYPE_CHECKING:
    from prefstyle.data.pairs import Judgment, PairsDataset

__all__ = ["references_from_judgments"]


def references_from_judgments(
    dataset: PairsDataset,
    judgments: Sequence[Judgment],
    cache: dict[str, torch.Tensor] | None = None,
    max_side: int | None = None,
) -> list[Reference]:
    """:class:`Reference` objects for judgments (images loaded, ``(3,H,W)``; sources when listed)."""
    from prefstyle.imaging.io import load_image

    cache = {} if cache is None else cache

    def get(rel: str) -> torch.Tensor:
        if rel not in cache:
            img = load_image(dataset.image_path(rel))
            cache[rel] = (resize_long_side(img, max_side, mode="area").clamp(0, 1) if max_side else img)[0]
        return cache[rel]

    out = []
    for j in judgments:
        sc = dataset.scenes.get(j.scene)
        out.append(
            Reference(
                scene=j.scene,
                preferred=get(j.preferred_image),
                other=get(j.other_image),
                source=get(sc.source) if sc is not None and sc.source else None,
                meta={"user": j.user, "preferred_side": j.preferred},
            )
        )
    return out
