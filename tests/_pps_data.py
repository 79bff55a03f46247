"""A micro pairs dataset for the PPS baseline tests (usd, upe, exemplar), written in well under a second.

Scenes are crops of scikit-image photos; each has a neutral source and ``renditions`` edits of
increasing exposure. Every user has a fixed taste: even users prefer the brighter image of a
pair, odd users the darker one, so the data carries a learnable, user-dependent signal. The
folder follows the pairs format (judgments, scenes with sources, train/val/test splits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prefstyle.data.pairs import Judgment, Scene, write_pairs
from prefstyle.imaging.io import write_image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def _photo(i: int, size: int) -> torch.Tensor:
    from skimage import data

    arr = getattr(data, PHOTOS[i % len(PHOTOS)])()
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div(255.0)[None]
    k = i // len(PHOTOS)
    if k:
        h, w = t.shape[-2:]
        t = t[:, :, (h // 4) * (k % 2) : (h // 4) * (k % 2) + h // 2, (w // 4) * (k % 3) : (w // 4) * (k % 3) + w // 2]
    return F.interpolate(t, size=(size, size), mode="area").clamp(0, 1)


def make_pairs_dataset(
    root: str | Path,
    users: int = 8,
    scenes: int = 6,
    renditions: int = 3,
    size: int = 32,
    main: int = 10,
    seed: int = 0,
    scene_splits: list[str] | None = None,
) -> Path:
    """Write the micro dataset into ``root``; users ``u0..``; splits: the last two users are val, test.

    ``scene_splits``: the ``split`` of each scene in ``scenes.jsonl`` (as the simulator writes it)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    gains = np.linspace(0.6, 1.5, renditions)
    recs = []
    for s in range(scenes):
        src = _photo(s, size)
        sid = f"s{s}"
        write_image(root / f"images/{sid}/source.png", src[0])
        for k, g in enumerate(gains):
            write_image(root / f"images/{sid}/r{k}.png", (src[0] * float(g)).clamp(0, 1) ** (1.0 / float(g) ** 0.3))
        recs.append(
            Scene(
                sid,
                source=f"images/{sid}/source.png",
                origin="A",
                extra={"split": scene_splits[s]} if scene_splits else {},
            )
        )
    judgments = []
    for u in range(users):
        for _ in range(main):
            s = int(rng.integers(scenes))
            a, b = (int(v) for v in rng.choice(renditions, size=2, replace=False))
            brighter_a = a > b
            pref_a = brighter_a if u % 2 == 0 else not brighter_a
            judgments.append(
                Judgment(
                    user=f"u{u}",
                    scene=f"s{s}",
                    image_a=f"images/s{s}/r{a}.png",
                    image_b=f"images/s{s}/r{b}.png",
                    preferred="a" if pref_a else "b",
                )
            )
    ids = [f"u{u}" for u in range(users)]
    write_pairs(
        root,
        judgments,
        scenes=recs,
        splits={"train": ids[:-2], "val": [ids[-2]], "test": [ids[-1]]},
        meta={"name": "micro pairs dataset (tests)"},
    )
    return root


def references(root: str | Path, user: str, n: int):
    """``n`` :class:`~prefstyle.models.base.Reference` objects of ``user`` (images loaded)."""
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.models.pps import references_from_judgments

    ds = PairsDataset.load(root)
    return references_from_judgments(ds, ds.references(user, n))


def tiny_config(task: dict, root: str | Path, out: str | Path, steps: int = 3, batch_size: int = 4) -> dict:
    """A resolved trainer config for a few steps on the micro dataset (validation on one user)."""
    from prefstyle.train.config import load_config

    return load_config(
        base={
            "task": task,
            "data": {"path": str(root), "val_users": 1, "val_refs": 4, "val_evals": 2, "val_side": 32},
            "optim": {"lr": 1e-3},
            "steps": steps,
            "batch_size": batch_size,
            "val_every": 0,
            "ckpt_every": 0,
            "log_every": 1,
            "out": str(out),
            "device": "cpu",
            "seed": 0,
        }
    )
