"""Tiny data and configs for the PieNet, trainer and personalize/enhance tests (built in < 1 s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prefstyle.data.pairs import Judgment, Scene, write_pairs
from prefstyle.imaging.io import write_image
from prefstyle.imaging.pipeline import apply_retouch
from prefstyle.styles.presets import sample_params

TINY_ARCH = {
    "backbone": "resnet18",
    "embed_backbone": "resnet18",
    "width": 4,
    "dim": 8,
    "embed_size": 32,
    "decoder": [8, 8, 8, 8],
    "pref_channels": 4,
    "head_channels": 4,
    "render_size": 48,
    "wiring": "paper",
}

TINY_STYLES = ["warm-film", "cool-matte", "sepia", "gamma", "faded", "bw-classic", "vintage"]


def photo(i: int, size: int) -> torch.Tensor:
    """A scikit-image photograph (or a crop of one) as ``(1,3,size,size)``."""
    from skimage import data

    arr = [data.astronaut, data.chelsea, data.coffee, data.rocket][i % 4]()
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float()[None] / 255.0
    if i >= 4:
        h, w = t.shape[-2:]
        t = t[:, :, h // 4 :, w // 4 :]
    return F.interpolate(t, size=(size, size), mode="area").clamp(0, 1)


def make_pairs_dataset(
    root: Path, users: int = 3, scenes: int = 5, renditions: int = 3, size: int = 32, seed: int = 0
) -> Path:
    """A small pairs dataset with sources and a train split; user ``u<k>@laptop`` prefers brighter images."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    recs, judgments = [], []
    means = {}
    for s in range(scenes):
        src = photo(s, size)
        sid = f"s{s}"
        write_image(root / f"images/{sid}/source.png", src[0])
        for k in range(renditions):
            im = apply_retouch(src, sample_params(rng)).clamp(0, 1)
            write_image(root / f"images/{sid}/r{k}.png", im[0])
            means[(s, k)] = float(im.mean())
        recs.append(Scene(sid, source=f"images/{sid}/source.png", origin="A"))
    for u in range(users):
        for s in range(scenes):
            for a, b in [(0, 1), (1, 2)][: max(1, renditions - 1)]:
                pref = "a" if (means[(s, a)] > means[(s, b)]) == (u % 2 == 0) else "b"
                judgments.append(
                    Judgment(
                        user=f"u{u}@laptop",
                        scene=f"s{s}",
                        image_a=f"images/s{s}/r{a}.png",
                        image_b=f"images/s{s}/r{b}.png",
                        preferred=pref,
                        person=f"u{u}",
                        device="laptop",
                    )
                )
    names = [f"u{u}@laptop" for u in range(users)]
    write_pairs(
        root, judgments, scenes=recs, splits={"train": names[:-1], "test": names[-1:]}, meta={"name": "tiny test pairs"}
    )
    return root


def tiny_pienet_config(out: Path, crowd: Path | None = None, steps: int = 6, **extra) -> dict:
    """A complete training config for a tiny PieNet on packaged photos (no cache, 1 thread)."""
    from prefstyle.train import load_config

    doc = {
        "task": {"name": "pienet", **TINY_ARCH, "objective": {"embed_fraction": 0.5, "crowd_fraction": 0.5}},
        "data": {
            "size": 32,
            "photos": "packages",
            "crops_per_photo": 2,
            "styles": TINY_STYLES,
            "val_refs": 3,
            "val_scenes": 3,
            "val_seen_users": 1,
            "cache": None,
            "crowd": {"path": str(crowd)} if crowd is not None else None,
        },
        "steps": steps,
        "batch_size": 4,
        "threads": 1,
        "log_every": 2,
        "val_every": 0,
        "ckpt_every": 0,
        "optim": {"lr": 1e-3},
        "out": str(out),
    }
    for k, v in extra.items():
        doc[k] = v
    return load_config(None, None, base=doc)
