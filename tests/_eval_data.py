"""Tiny simulated pairs datasets for the evaluation tests, built in about a second.

The real simulator (:func:`prefstyle.data.simulate.simulate_dataset`) renders scenes from the
bundled photo pool and takes tens of seconds even for a tiny config on a shared 2-core machine;
the evaluation tests only need the same *kind* of data, so this builds it from the same parts
(the simulator's taste prior ``sample_taste``, ``SimulatedUser.choose``, ``write_pairs``, the
``ground_truth.json`` layout that ``load_ground_truth`` reads) on a few small photos.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prefstyle.data.crowd import Person, SimulatedUser, sample_device
from prefstyle.data.pairs import Judgment, Scene, write_pairs
from prefstyle.data.simulate import SimulationConfig, sample_taste
from prefstyle.imaging.io import write_image
from prefstyle.imaging.pipeline import apply_retouch
from prefstyle.styles.presets import sample_params

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


def _photo(i: int, size: int) -> torch.Tensor:
    """Scene ``i``: a whole photo or a crop of one, as ``(1,3,size,size)``."""
    import skimage
    from PIL import Image

    path = Path(skimage.__file__).parent / "data" / PHOTOS[i % len(PHOTOS)]
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    t = torch.from_numpy(arr).permute(2, 0, 1)[None]
    rounds = i // len(PHOTOS)
    if rounds:
        h, w = t.shape[-2:]
        s = 0.75**rounds
        ch, cw = int(h * s), int(w * s)
        y0 = (h - ch) * (rounds % 2)
        t = t[:, :, y0 : y0 + ch, :cw]
    return F.interpolate(t, size=(size, size), mode="area").clamp(0, 1)


def make_sim_dataset(
    root: Path,
    users: int = 6,
    scenes: int = 6,
    renditions: int = 3,
    size: int = 32,
    main: int = 14,
    seed: int = 0,
    temperature: float | None = None,
    test_users: int = 2,
    with_sources: bool = True,
) -> Path:
    """Write a small simulated pairs dataset (with ``ground_truth.json``) into ``root``.

    ``temperature``: every person's Bradley-Terry temperature (None: the simulator's prior).
    The last ``test_users`` users form the test split, the rest the train split.
    """
    root = Path(root)
    cfg = SimulationConfig(
        users=users,
        scenes=scenes,
        renditions=renditions,
        size=size,
        thumb=size,
        main=main,
        consistency=0,
        seed=seed,
        careless_fraction=0.0,
    )
    rng = np.random.default_rng(seed)
    scene_recs, srcs, rends = [], [], []
    for s in range(scenes):
        src = _photo(s, size)
        imgs = [apply_retouch(src, sample_params(rng)).clamp(0, 1) for _ in range(renditions)]
        sid = f"s{s:02d}"
        write_image(root / f"images/{sid}/source.png", src[0])
        for k, im in enumerate(imgs):
            write_image(root / f"images/{sid}/r{k}.png", im[0])
        scene_recs.append(Scene(sid, source=f"images/{sid}/source.png" if with_sources else None, origin="A"))
        srcs.append(src)
        rends.append(torch.cat(imgs))
    sim_users = []
    for u in range(users):
        t = temperature if temperature is not None else float(cfg.temperature_median * np.exp(rng.normal(0, 0.4)))
        person = Person(id=f"p{u:02d}", taste=sample_taste(rng, cfg), temperature=t)
        sim_users.append(SimulatedUser(person, sample_device(rng, "laptop")))
    judgments = []
    for user in sim_users:
        sc = rng.integers(0, scenes, size=main)
        pairs = [rng.choice(renditions, size=2, replace=False) for _ in range(main)]
        with torch.no_grad():
            ideals = user.ideal(torch.cat([srcs[int(s)] for s in sc]))
            a = torch.stack([rends[int(s)][int(p[0])] for s, p in zip(sc, pairs)])
            b = torch.stack([rends[int(s)][int(p[1])] for s, p in zip(sc, pairs)])
            chose_a, rts, _ = user.choose(a, b, ideals, rng)
        for s, p, ca, rt in zip(sc, pairs, chose_a, rts):
            sid = f"s{int(s):02d}"
            judgments.append(
                Judgment(
                    user=user.id,
                    scene=sid,
                    image_a=f"images/{sid}/r{int(p[0])}.png",
                    image_b=f"images/{sid}/r{int(p[1])}.png",
                    preferred="a" if ca else "b",
                    response_ms=int(rt),
                    person=user.person.id,
                    device=user.device.name,
                )
            )
    ids = [u.id for u in sim_users]
    splits = {"train": ids[: users - test_users], "test": ids[users - test_users :]}
    write_pairs(
        root,
        judgments,
        scenes=scene_recs,
        splits=splits,
        meta={"name": "tiny simulated crowd (tests)", "simulated": True, "ground_truth": "ground_truth.json"},
    )
    gt = {
        "format": "prefstyle-ground-truth",
        "version": 1,
        "config": asdict(cfg),
        "users": [u.to_dict() for u in sim_users],
    }
    (root / "ground_truth.json").write_text(json.dumps(gt, indent=1))
    return root
