"""Training PieNet (:mod:`prefstyle.models.pienet`) on the embedded default data or on FiveK.

Users
-----
* **Method users** (PieNet's "expanded" users): every named style of :mod:`prefstyle.styles`
  (presets, classical methods, camera profiles) is a user whose retouch of any scene is known,
  so it gives input → target pairs: the content pool's neutral scene → the style applied to it.
  The styles are split (seeded) into training, validation and test users; ``sampled_users``
  adds that many sampled looks (``sample:SEED``) and sampled camera renderings
  (``camera:sample:SEED``) to the training users only (a denser style space to learn the
  embedding from). The content pool's scenes are split by photograph (no content shared across
  splits). Training uses training users × training scenes only.
* **Crowd users**: the ``train`` users of a pairs dataset (a simulated crowd from
  :func:`prefstyle.data.simulate.simulate_dataset`, made and cached on the fly, or any pairs
  folder) who pass the PPS paper's quality filters (``data.crowd.quality_filter``: on by default,
  as for the PPS baselines; ``false`` or a :class:`~prefstyle.data.filters.FilterConfig` mapping).
  They have (preferred, non-preferred) pairs but no targets.
* **FiveK's experts** (``data.fivek``, instead of both; :data:`FIVEK_DEFAULTS`): the paper's
  Table 1 settings, experts A–E (``protocol: multi``) or C alone (``single``) as the training
  users, the photos of FiveK's train split as the scenes (:func:`build_fivek_data`).

Two phases (``objective.embed_fraction`` of the steps, or the first ``objective.embed_steps``
steps at a global batch of ``objective.embed_batch_size``, as the paper's 25k × 64; then the rest):

1. **Preference embedding**: the embedding network and one preference vector per training user,
   by the triplet loss (squared Euclidean, margin 0.2) of (user, preferred, non-preferred), each
   preferred image against ``objective.negatives`` (3) non-preferred ones: for a method user,
   another user's rendition of the same scene or the neutral scene; for a crowd user, the other
   image of the judgment and the non-preferred images of other judgments of theirs. rot90 +
   flip augmentation.
2. **PieNet**, embedding and vectors frozen, conditioned on the learned preference vectors f_k
   (``objective.condition: vector``, the paper) or on each training user's scheme-2 vector
   (``centroid``: the normalised mean embedding of 20 of the user's preferred images, what a new
   user gets): method users' pairs with ``L1 + 0.4·Lp + 0.01·Lt``, where Lp is the squared
   distance of the output's and the target's preference embeddings (``perceptual_on: maps``:
   L1 over the embedding backbone's four feature maps) and Lt the edge-aware TV of the delta
   image ΔI = output − input (``tv_on: output``: of the output); crowd pairs with the PPS
   pairwise objective ``w·L(Î, I_p) + (1 − w)·L(Î, I_n)`` (the same ``L``, ``w`` 0.5 → 1.5 by
   default) fed one side of the pair (``objective.crowd_input: pair``) or the scene's neutral
   source (``source``); preference vectors perturbed by noise of norm 0.1.

Validation (:meth:`PieNetTask.validate`): validation method users, personalized by scheme 2 from
``val_refs`` preferred images (their renditions of training scenes), rendered on validation
scenes: mean PSNR (``val_mpsnr``) beside the identity's, the mean-preference render's and the
seen users' own (``seen_mpsnr``, with ``seen_mpsnr_identity``: for FiveK, every expert on the
held-out training photos); and the embedding's triplet accuracy on those users.

Options: ``task`` keys are :class:`~prefstyle.models.pienet.PieNetConfig` fields plus
``objective`` (see :data:`OBJECTIVE_DEFAULTS`); ``data`` keys are :data:`DATA_DEFAULTS`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import random
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prefstyle import __version__
from prefstyle.errors import PrefstyleError
from prefstyle.losses import (
    edge_aware_tv,
    l1_loss,
    perceptual_loss,
    preference_weight,
    triplet_loss,
)
from prefstyle.metrics.functional import psnr
from prefstyle.models.pienet import (
    PieNetConfig,
    PieNetModel,
    PieNetSystem,
    build_pienet_system,
    perturb_preference,
)
from prefstyle.train.data import SeededBatches
from prefstyle.train.task import TrainTask, register_task

log = logging.getLogger(__name__)

__all__ = ["DATA_DEFAULTS", "OBJECTIVE_DEFAULTS", "MethodData", "PieNetTask", "method_user_splits", "render_style"]

OBJECTIVE_DEFAULTS: dict[str, Any] = {
    "embed_fraction": 0.3,  # share of the steps spent on the embedding phase
    "embed_steps": None,  # or: the embedding phase's length in steps (the paper: 25k); overrides embed_fraction
    "embed_batch_size": None,  # global batch of the embedding phase (the paper: 64; None: batch_size)
    "embed_lr": None,  # base learning rate of the embedding phase (None: optim.lr)
    "margin": 0.2,  # triplet margin
    "negatives": 3,  # non-preferred images per preferred one in the embedding triplets (the paper: 3)
    "perceptual": 0.4,  # weight of Lp
    "perceptual_on": "embedding",  # Lp on: embedding (the preference embeddings, as the paper) | maps
    # (L1 over the embedding backbone's four intermediate feature maps: this package's first version)
    "tv": 0.01,  # weight of Lt, the edge-aware TV
    "tv_on": "delta",  # Lt on: delta (ΔI = output − input, as the paper) | output (first version)
    "noise": 0.1,  # norm of the noise added to preference vectors
    "crowd_fraction": 0.25,  # share of crowd samples per batch (when a crowd is configured)
    "source_negative": 0.25,  # method triplets: probability the negative is the neutral scene
    "w_schedule": "linear",  # PPS pairwise weight schedule: linear | cosine | constant | uniform
    "w_low": 0.5,
    "w_high": 1.5,
    "crowd_input": "pair",  # pair: I_p or I_n at random (PPS); source: the scene's neutral source
    "condition": "vector",  # PieNet phase conditioned on: vector (the learned preference vectors f_k, as
    # the paper) | centroid (each user's scheme-2 vector, as a new user gets)
    "centroid_refs": 20,  # preferred images per training user for its centroid
}

DATA_DEFAULTS: dict[str, Any] = {
    "size": 128,  # training image side (square thumbnails)
    "fivek": None,  # null | {root: DIR, protocol: multi|single, ...}: train on MIT-Adobe FiveK (FIVEK_DEFAULTS)
    "photos": "bundled",  # bundled | packages | a folder of photographs
    "crops_per_photo": 4,
    "pool_seed": 0,
    "scene_split": [0.7, 0.15, 0.15],
    "styles": "all",  # all | a list of style names
    "exclude_styles": [],
    "user_split": [0.7, 0.15, 0.15],
    "user_split_seed": 0,
    "train_users": None,  # explicit lists override the seeded split
    "val_users": None,
    "test_users": None,
    "sampled_users": 0,  # extra training method users: sampled looks / camera renderings
    "sampled_seed": 1000,
    "crowd": None,  # null | {path: DIR} | {simulate: {users: .., ...}}; quality_filter: true (default) | false | {FilterConfig}
    "crowd_max_users": None,
    "val_refs": 20,  # preferred images per validation user (scheme 2)
    "val_scenes": 12,  # validation scenes rendered per validation user
    "val_seen_users": 4,  # training users also scored on validation scenes
    "cache": "default",  # default (~/.cache/prefstyle or $PREFSTYLE_CACHE) | null | a folder
}

#: ``data.fivek``: MIT-Adobe FiveK as the training users (the paper's Table 1 protocols)
FIVEK_DEFAULTS: dict[str, Any] = {
    "root": None,  # a FiveK folder in any layout prefstyle.data.fivek reads
    "protocol": "multi",  # multi: experts A–E, one learned vector each | single: expert C only
    "experts": None,  # override the protocol's experts (e.g. "ABCDE", "C")
    "train_count": 4500,  # train part of a flat folder (the paper's split: the first 4,500 by name; the rest test)
    "val_photos": 50,  # last photos of the train split held out for validation (never the test split)
    "max_photos": None,  # use only the first N training photos (quick runs)
}
FIVEK_PREFIX = "fivek:"
METHOD_PREFIX = "method:"
#: PSNR of identical images is infinite; validation caps it at 50 dB (below one 8-bit level everywhere)
PSNR_CAP = 50.0
CROWD_PREFIX = "crowd:"


def _cache_root(spec: Any) -> Path | None:
    if spec is None or spec is False:
        return None
    if spec == "default":
        return Path(os.environ.get("PREFSTYLE_CACHE", Path.home() / ".cache" / "prefstyle"))
    return Path(spec).expanduser()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def render_style(name: str, imgs: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Style ``name`` applied to ``imgs`` ``(N,3,H,W)``; global, image-independent styles are
    baked into a 33³ LUT first (same result to LUT precision, much faster)."""
    from prefstyle.imaging.lut import apply_lut
    from prefstyle.styles.registry import get_style

    style = get_style(name)
    out = torch.empty_like(imgs)
    with torch.no_grad():
        if style.is_global and not style.image_dependent:
            lut = style.to_lut(33)
            for i in range(0, len(imgs), chunk):
                out[i : i + chunk] = apply_lut(imgs[i : i + chunk], lut).clamp(0, 1)
        else:
            for i in range(0, len(imgs), chunk):
                out[i : i + chunk] = style.apply(imgs[i : i + chunk]).clamp(0, 1)
    return out


def method_user_splits(data_cfg: dict[str, Any]) -> dict[str, list[str]]:
    """Style names per split (``train``/``val``/``test``): explicit lists or a seeded split."""
    from prefstyle.styles.registry import style_names

    cfg = {**DATA_DEFAULTS, **data_cfg}
    names = style_names() if cfg["styles"] == "all" else [str(s) for s in cfg["styles"]]
    names = [n for n in names if n not in set(cfg["exclude_styles"] or [])]
    explicit = {k: cfg[f"{k}_users"] for k in ("train", "val", "test")}
    if any(v is not None for v in explicit.values()):
        out = {k: [str(s) for s in (v or [])] for k, v in explicit.items()}
        if not out["train"]:
            out["train"] = [n for n in names if n not in set(out["val"]) | set(out["test"])]
    else:
        order = sorted(names)
        random.Random(f"pienet-users:{cfg['user_split_seed']}").shuffle(order)
        fr = [float(f) for f in cfg["user_split"]]
        n = len(order)
        n_val = max(1, round(n * fr[1] / sum(fr))) if n >= 3 else 0
        n_test = max(1, round(n * fr[2] / sum(fr))) if n >= 3 else 0
        out = {
            "train": sorted(order[: n - n_val - n_test]),
            "val": sorted(order[n - n_val - n_test : n - n_test]),
            "test": sorted(order[n - n_test :]),
        }
    # sampled looks and camera renderings: more training users, never validation or test users
    base = int(cfg["sampled_seed"])
    out["train"] += [
        f"sample:{base + k}" if k % 2 == 0 else f"camera:sample:{base + k}"
        for k in range(int(cfg["sampled_users"] or 0))
    ]
    return out


def _pool(cfg: dict[str, Any]) -> Any:
    from prefstyle.data.pool import ContentPool

    photos = cfg["photos"]
    kw: dict[str, Any] = {"crops_per_photo": int(cfg["crops_per_photo"]), "seed": int(cfg["pool_seed"])}
    if photos == "bundled":
        return ContentPool.bundled(system=True, **kw)
    if photos == "packages":
        return ContentPool.bundled(system=False, **kw)
    return ContentPool.from_folder(photos, **kw)


def _to_u8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)


def _to_f(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0)


@dataclass
class MethodData:
    """Method users' images at the training size, as uint8 ``(…,3,T,T)``.

    scenes: training scenes ``(S,3,T,T)``; targets: training users × training scenes
    ``(U,S,3,T,T)``; val_sources ``(V,3,T,T)`` validation scenes; val_targets ``(Uv,V,3,T,T)``;
    val_refs ``(Uv,R,3,T,T)``: validation users' renditions of training scenes (their references);
    seen_targets ``(Us,V,3,T,T)``: the first ``val_seen_users`` training users' renditions of the
    validation scenes.
    """

    train_users: list[str]
    val_users: list[str]
    train_scenes: list[str]
    val_scenes: list[str]
    ref_scenes: list[str]
    scenes: torch.Tensor
    targets: torch.Tensor
    val_sources: torch.Tensor
    val_targets: torch.Tensor
    val_refs: torch.Tensor
    seen_targets: torch.Tensor

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "scenes": self.scenes,
            "targets": self.targets,
            "val_sources": self.val_sources,
            "val_targets": self.val_targets,
            "val_refs": self.val_refs,
            "seen_targets": self.seen_targets,
        }

    def meta(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), list)}


def build_method_data(cfg: dict[str, Any], progress: bool = True) -> MethodData:
    """Render (or read from the cache) the method users' training and validation images."""
    from tqdm.auto import tqdm

    cfg = {**DATA_DEFAULTS, **cfg}
    size = int(cfg["size"])
    pool = _pool(cfg)
    split = pool.split(tuple(cfg["scene_split"]), seed=int(cfg["pool_seed"]))
    users = method_user_splits(cfg)
    rnd = random.Random(f"pienet-val:{cfg['pool_seed']}")
    train_scenes = list(split["train"])
    val_scenes = list(split["val"])
    if int(cfg["val_scenes"]) and len(val_scenes) > int(cfg["val_scenes"]):
        val_scenes = sorted(rnd.sample(val_scenes, int(cfg["val_scenes"])))
    ref_scenes = sorted(rnd.sample(train_scenes, min(int(cfg["val_refs"]), len(train_scenes))))
    key = {
        "v": 3,
        "prefstyle": __version__,
        "photos": pool.photo_ids,
        "cfg": {
            k: cfg[k]
            for k in (
                "size",
                "photos",
                "crops_per_photo",
                "pool_seed",
                "scene_split",
                "val_refs",
                "val_scenes",
                "val_seen_users",
            )
        },
        "users": users,
        "scenes": [train_scenes, val_scenes, ref_scenes],
    }
    root = _cache_root(cfg["cache"])
    path = None if root is None else root / PieNetModel.name / f"methods-{_digest(key)}.safetensors"
    if path is not None and path.is_file():
        from safetensors.torch import load_file

        t = load_file(str(path))
        return MethodData(users["train"], users["val"], train_scenes, val_scenes, ref_scenes, **t)

    def scene_batch(ids: list[str]) -> torch.Tensor:
        return (
            torch.stack([pool.scene_image(s, size, square=True) for s in ids]) if ids else torch.zeros(0, 3, size, size)
        )

    src = scene_batch(train_scenes)
    vsrc = scene_batch(val_scenes)
    ref_idx = [train_scenes.index(s) for s in ref_scenes]
    it = tqdm(users["train"] + users["val"], desc="pienet: render method users", disable=not progress)
    targets: list[torch.Tensor] = []
    vt: list[torch.Tensor] = []
    vr: list[torch.Tensor] = []
    seen: list[torch.Tensor] = []
    n_seen = min(int(cfg["val_seen_users"]), len(users["train"]))
    for name in it:
        if name in users["train"]:
            targets.append(_to_u8(render_style(name, src)))
            if len(seen) < n_seen:
                seen.append(_to_u8(render_style(name, vsrc)))
        else:
            vt.append(_to_u8(render_style(name, vsrc)))
            vr.append(_to_u8(render_style(name, src[ref_idx])))
    empty = torch.zeros(0, 0, 3, size, size, dtype=torch.uint8)
    data = MethodData(
        users["train"],
        users["val"],
        train_scenes,
        val_scenes,
        ref_scenes,
        scenes=_to_u8(src),
        targets=torch.stack(targets) if targets else empty,
        val_sources=_to_u8(vsrc),
        val_targets=torch.stack(vt) if vt else empty,
        val_refs=torch.stack(vr) if vr else empty,
        seen_targets=torch.stack(seen) if seen else empty,
    )
    if path is not None:
        from safetensors.torch import save_file

        from prefstyle.fsutil import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in data.tensors().items()}, str(tmp))
    return data


def fivek_options(spec: Any) -> dict[str, Any]:
    """``data.fivek`` with defaults filled in and checked; ``experts`` as a string of letters."""
    from prefstyle.data.fivek import normalize_expert, parse_experts

    if not isinstance(spec, dict):
        raise PrefstyleError("data.fivek must be a mapping with at least 'root' (a FiveK folder)")
    unknown = sorted(set(spec) - set(FIVEK_DEFAULTS))
    if unknown:
        raise PrefstyleError(f"unknown data.fivek option(s): {', '.join(unknown)} (known: {', '.join(FIVEK_DEFAULTS)})")
    o = {**FIVEK_DEFAULTS, **spec}
    if not o["root"]:
        raise PrefstyleError("data.fivek.root is not set: point it at a MIT-Adobe FiveK folder")
    if o["protocol"] not in ("multi", "single"):
        raise PrefstyleError(f"data.fivek.protocol must be multi or single, got {o['protocol']!r}")
    experts = o["experts"] or ("ABCDE" if o["protocol"] == "multi" else "C")
    if isinstance(experts, str):
        experts = parse_experts(experts)
    o["experts"] = "".join(dict.fromkeys(normalize_expert(e) for e in experts))
    return o


def build_fivek_data(cfg: dict[str, Any], progress: bool = True) -> MethodData:
    """FiveK's experts as the training users (see :data:`FIVEK_DEFAULTS`), read at the training size.

    Train split (the paper's: the first ``train_count`` photos by name of a flat folder, or the
    ``train/`` folder of a pre-split one) minus its last ``val_photos``: training scenes, each
    expert's rendition a target. The held-out photos validate every expert as a *seen* user
    (conditioned on its learned vector). The test split is never read here: it is what
    :mod:`prefstyle.eval.pienet_protocols` scores. Cached like the method users' images.
    """
    from tqdm.auto import tqdm

    from prefstyle.data.fivek import FiveKDataset, load_square

    cfg = {**DATA_DEFAULTS, **cfg}
    o = fivek_options(cfg["fivek"])
    size = int(cfg["size"])
    ds = FiveKDataset(o["root"], experts=o["experts"], split="train", train_count=int(o["train_count"]))
    items = list(ds)
    n_val = min(int(o["val_photos"]), max(0, len(items) - 1))
    train_items, val_items = items[: len(items) - n_val], items[len(items) - n_val :]
    if o["max_photos"]:
        train_items = train_items[: int(o["max_photos"])]
    experts = list(ds.experts)
    files = [(str(it.input), os.path.getsize(it.input), os.path.getmtime(it.input)) for it in items]
    key = {"v": 1, "prefstyle": __version__, "size": size, "experts": experts, "files": files, "n_val": n_val}
    key["train"] = [it.name for it in train_items]
    root = _cache_root(cfg["cache"])
    path = None if root is None else root / PieNetModel.name / f"fivek-{_digest(key)}.safetensors"
    users = [f"expert{e}" for e in experts]
    names = ([it.name for it in train_items], [it.name for it in val_items])
    if path is not None and path.is_file():
        from safetensors.torch import load_file

        return MethodData(users, [], names[0], names[1], [], **load_file(str(path)))
    total = (len(train_items) + len(val_items)) * (1 + len(experts))
    bar = tqdm(total=total, desc="pienet: read FiveK", unit="img", disable=not progress)

    def read(its: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        src, tgt = [], []
        for it in its:
            src.append(load_square(it.input, size))
            tgt.append(torch.stack([load_square(it.targets[e], size) for e in experts]))
            bar.update(1 + len(experts))
        empty = torch.zeros(0, 3, size, size, dtype=torch.uint8)
        if not its:
            return empty, torch.zeros(len(experts), 0, 3, size, size, dtype=torch.uint8)
        return torch.stack(src), torch.stack(tgt, 1)

    scenes, targets = read(train_items)
    vsrc, vtgt = read(val_items)
    bar.close()
    none = torch.zeros(0, 0, 3, size, size, dtype=torch.uint8)
    data = MethodData(
        users, [], names[0], names[1], [], scenes, targets, vsrc, none, none.clone(), vtgt if n_val else none.clone()
    )
    if path is not None:
        from safetensors.torch import save_file

        from prefstyle.fsutil import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in data.tensors().items()}, str(tmp))
    return data


@dataclass
class CrowdData:
    """Crowd users' main judgments: image indices into ``images`` ``(N,3,T,T)`` uint8."""

    users: list[str]
    user: torch.Tensor  # (J,) index into users
    pref: torch.Tensor  # (J,)
    other: torch.Tensor  # (J,)
    source: torch.Tensor  # (J,) index, -1 when the scene has no source
    images: torch.Tensor
    root: str
    n_judgments: int
    filters: dict[str, Any] | str = "off"  # the quality filters' counts (data.filters.filter_summary)


def _crowd_path(spec: dict[str, Any], cache: Path | None, progress: bool) -> Path:
    if "path" in spec:
        p = Path(spec["path"]).expanduser()
        if not (p / "judgments.jsonl").is_file():
            raise PrefstyleError("crowd dataset not found (no judgments.jsonl)", path=p)
        return p
    if "simulate" not in spec:
        raise PrefstyleError("data.crowd needs 'path' (a pairs dataset) or 'simulate' (a SimulationConfig)")
    from prefstyle.data.simulate import SimulationConfig, simulate_dataset

    sim = dict(spec["simulate"] or {})
    try:
        sc = SimulationConfig(**sim)
    except TypeError as e:
        raise PrefstyleError(f"data.crowd.simulate: {e}") from None
    if cache is None:
        raise PrefstyleError("data.crowd.simulate needs a cache folder (data.cache) to write the dataset into")
    from dataclasses import asdict

    out = cache / "crowd" / f"sim-{_digest({'v': 1, 'prefstyle': __version__, **asdict(sc)})}"
    if not (out / "judgments.jsonl").is_file() or not (out / "ground_truth.json").is_file():
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        simulate_dataset(sc, tmp, progress=progress)
        if out.exists():
            import shutil

            shutil.rmtree(out)
        os.replace(tmp, out)
    return out


def build_crowd_data(cfg: dict[str, Any], progress: bool = True) -> CrowdData | None:
    """Load the crowd's training users' main judgments at the training size (None without a crowd)."""
    from prefstyle.data.filters import apply_filter_setting, summary_line
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.imaging.io import load_image
    from prefstyle.models.backbones import resize_to

    cfg = {**DATA_DEFAULTS, **cfg}
    spec = cfg["crowd"]
    if not spec:
        return None
    root = _crowd_path(dict(spec), _cache_root(cfg["cache"]), progress)
    ds = PairsDataset.load(root)
    # the PPS paper's filters, as the PPS baselines' training applies them (pps_base)
    ds, counts = apply_filter_setting(ds, dict(spec).get("quality_filter", True), "data.crowd.quality_filter")
    if counts is not None:
        log.info("pienet crowd: %s", summary_line(counts))
    users = list(
        ds.splits.get("train")
        or [u for u in ds.users() if u not in set(ds.splits.get("val", []) + ds.splits.get("test", []))]
    )
    if cfg["crowd_max_users"]:
        users = sorted(users)[: int(cfg["crowd_max_users"])]
    size = int(cfg["size"])
    index: dict[str, int] = {}
    imgs: list[torch.Tensor] = []

    def idx(rel: str) -> int:
        if rel not in index:
            index[rel] = len(imgs)
            imgs.append(_to_u8(resize_to(load_image(ds.image_path(rel)), size)[0]))
        return index[rel]

    u_i, p_i, o_i, s_i = [], [], [], []
    from tqdm.auto import tqdm

    for k, user in enumerate(tqdm(sorted(users), desc="pienet: load crowd", disable=not progress)):
        for j in ds.by_user(user):
            if j.kind != "main":
                continue
            u_i.append(k)
            p_i.append(idx(j.preferred_image))
            o_i.append(idx(j.other_image))
            sc = ds.scenes.get(j.scene)
            s_i.append(idx(sc.source) if sc is not None and sc.source else -1)
    if not u_i:
        raise PrefstyleError("the crowd dataset has no main judgments of training users", path=root)
    return CrowdData(
        users=sorted(users),
        user=torch.tensor(u_i),
        pref=torch.tensor(p_i),
        other=torch.tensor(o_i),
        source=torch.tensor(s_i),
        images=torch.stack(imgs),
        root=str(root),
        n_judgments=len(u_i),
        filters=counts if counts is not None else "off",
    )


def _augment(x: torch.Tensor, k: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Per-sample rot90 (``k`` quarter turns) and horizontal flip of ``(B,3,T,T)``."""
    out = x.clone()
    for i in range(x.shape[0]):
        y = x[i]
        if bool(flip[i]):
            y = y.flip(-1)
        if int(k[i]):
            y = torch.rot90(y, int(k[i]), dims=(-2, -1))
        out[i] = y
    return out


@register_task(PieNetModel.name)
class PieNetTask(TrainTask):
    """PieNet on method users and a crowd (see the module docstring)."""

    name = PieNetModel.name

    def __init__(self, model_cfg: dict, data_cfg: dict, seed: int):
        super().__init__(model_cfg, data_cfg, seed)
        unknown = sorted(set(self.data_cfg) - set(DATA_DEFAULTS))
        if unknown:
            raise PrefstyleError(f"unknown pienet data option(s): {', '.join(unknown)}")
        self.data = {**DATA_DEFAULTS, **self.data_cfg}
        if self.data["fivek"]:
            self.data["fivek"] = fivek_options(self.data["fivek"])
            if self.data["crowd"]:
                raise PrefstyleError("data.fivek and data.crowd cannot be combined (FiveK's experts are the users)")
        obj = dict(self.model_cfg.get("objective") or {})
        unknown = sorted(set(obj) - set(OBJECTIVE_DEFAULTS))
        if unknown:
            raise PrefstyleError(f"unknown pienet objective option(s): {', '.join(unknown)}")
        self.obj = {**OBJECTIVE_DEFAULTS, **obj}
        self.model_cfg["objective"] = dict(self.obj)
        # new runs get the paper's decoder unless the config says otherwise; the card records it
        self.model_cfg.setdefault("wiring", "paper")
        self._methods: MethodData | None = None
        self._crowd: CrowdData | None = None
        self._crowd_loaded = False
        self._rows: list[torch.Tensor] | None = None
        self.progress_bars = True
        for key, allowed in (("perceptual_on", ("embedding", "maps")), ("tv_on", ("delta", "output"))):
            if self.obj[key] not in allowed:
                raise PrefstyleError(f"objective.{key} must be one of {', '.join(allowed)}, got {self.obj[key]!r}")
        if self.obj["condition"] not in ("vector", "centroid"):
            raise PrefstyleError(f"objective.condition must be vector or centroid, got {self.obj['condition']!r}")

    # -- data ----------------------------------------------------------------------------

    @property
    def methods(self) -> MethodData:
        """The users with targets: method users, or FiveK's experts under ``data.fivek``."""
        if self._methods is None:
            if self.data["fivek"]:
                self._methods = build_fivek_data(self.data, progress=self.progress_bars)
            else:
                self._methods = build_method_data(self.data, progress=self.progress_bars)
        return self._methods

    @property
    def crowd(self) -> CrowdData | None:
        if self.data["fivek"]:
            return None
        if not self._crowd_loaded:
            self._crowd = build_crowd_data(self.data, progress=self.progress_bars)
            self._crowd_loaded = True
        return self._crowd

    def arch(self) -> PieNetConfig:
        known = {f.name for f in fields(PieNetConfig)}
        return PieNetConfig.from_dict({k: v for k, v in self.model_cfg.items() if k in known})

    def build_model(self) -> nn.Module:
        if not self.arch().users:
            m = self.methods
            prefix = FIVEK_PREFIX if self.data["fivek"] else METHOD_PREFIX
            users = [prefix + u for u in m.train_users]
            if self.crowd is not None:
                users += [CROWD_PREFIX + u for u in self.crowd.users]
            self.model_cfg["users"] = users
        return build_pienet_system(self.model_cfg, pretrained=True)

    def _make_batch(self, step: int, gen: torch.Generator, n: int, part: slice) -> dict[str, torch.Tensor]:
        m = self.methods
        crowd = self.crowd
        n_methods_users = len(m.train_users)
        dim = int(self.arch().dim)
        frac = float(self.obj["crowd_fraction"]) if crowd is not None else 0.0
        is_crowd = torch.rand(n, generator=gen) < frac
        if n_methods_users == 0:
            is_crowd[:] = True
        # every random decision for the global batch first (ranks take their slice)
        mu = torch.randint(0, max(1, n_methods_users), (n,), generator=gen)
        ms = torch.randint(0, max(1, m.scenes.shape[0]), (n,), generator=gen)
        n_neg = max(1, int(self.obj["negatives"]))
        mneg = torch.randint(0, max(1, n_methods_users - 1), (n, n_neg), generator=gen)
        mneg = mneg + (mneg >= mu[:, None]).long()  # another user
        use_src = torch.rand(n, n_neg, generator=gen) < float(self.obj["source_negative"])
        cneg = torch.randint(0, 2**31 - 1, (n, n_neg), generator=gen)
        cj = torch.randint(0, crowd.n_judgments if crowd is not None else 1, (n,), generator=gen)
        side = torch.rand(n, generator=gen) < 0.5
        k = torch.randint(0, 4, (n,), generator=gen)
        flip = torch.rand(n, generator=gen) < 0.5
        noise = torch.randn(n, dim, generator=gen)
        w_u = torch.rand(n, generator=gen)
        sl = range(n)[part]
        A, P, N, U = [], [], [], []
        Ns: list[torch.Tensor] = []  # the extra negatives (n_neg − 1 per sample) of the embedding triplets
        for i in sl:
            if bool(is_crowd[i]) and crowd is not None:
                j = int(cj[i])
                pref, other = crowd.images[int(crowd.pref[j])], crowd.images[int(crowd.other[j])]
                src_i = int(crowd.source[j])
                if self.obj["crowd_input"] == "source" and src_i >= 0:
                    a = crowd.images[src_i]
                else:
                    a = pref if bool(side[i]) else other
                A.append(a)
                P.append(pref)
                N.append(other)
                U.append(n_methods_users + int(crowd.user[j]))
                if n_neg > 1:  # the user's non-preferred images of other judgments
                    rows = self._crowd_rows[int(crowd.user[j])]
                    picks = rows[cneg[i, 1:] % len(rows)]
                    Ns.append(crowd.images[crowd.other[picks]])
            else:
                u, s = int(mu[i]), int(ms[i])
                A.append(m.scenes[s])
                P.append(m.targets[u, s])
                negs = [
                    m.scenes[s] if (bool(use_src[i, q]) or n_methods_users < 2) else m.targets[int(mneg[i, q]), s]
                    for q in range(n_neg)
                ]
                N.append(negs[0])
                U.append(u)
                if n_neg > 1:
                    Ns.append(torch.stack(negs[1:]))
        kk, ff = k[part], flip[part]
        batch = {
            "input": _augment(_to_f(torch.stack(A)), kk, ff),
            "preferred": _augment(_to_f(torch.stack(P)), kk, ff),
            "other": _augment(_to_f(torch.stack(N)), kk, ff),
            "user": torch.tensor(U),
            "crowd": is_crowd[part].clone(),
            "noise": noise[part].clone(),
            "w_uniform": w_u[part].clone(),
            "step": torch.tensor(step),
        }
        if Ns:
            extra = torch.stack(Ns)  # (B, n_neg − 1, 3, T, T)
            b, q = extra.shape[:2]
            flat = _augment(_to_f(extra.flatten(0, 1)), kk.repeat_interleave(q), ff.repeat_interleave(q))
            batch["others"] = flat.view(b, q, *flat.shape[1:])
        if self.obj["embed_steps"] is not None:
            batch["phase"] = torch.tensor(0 if step < int(self.obj["embed_steps"]) else 1)
        return batch

    @property
    def _crowd_rows(self) -> list[torch.Tensor]:
        """Each crowd user's judgment rows (for the extra negatives)."""
        if self._rows is None:
            crowd = self.crowd
            self._rows = (
                [] if crowd is None else [(crowd.user == u).nonzero().squeeze(1) for u in range(len(crowd.users))]
            )
        return self._rows

    def train_loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> SeededBatches:
        _ = self.methods, self.crowd  # prepare the data before the first step
        eb, es = self.obj["embed_batch_size"], self.obj["embed_steps"]
        if eb is None:
            return SeededBatches(self._make_batch, batch_size, seed, rank, world_size)
        if es is None:
            raise PrefstyleError(
                "objective.embed_batch_size needs objective.embed_steps (the embedding phase's length)"
            )
        if int(eb) % world_size:
            raise PrefstyleError(f"objective.embed_batch_size {eb} is not divisible by {world_size} processes")
        per = int(eb) // world_size

        def make(step: int, gen: torch.Generator, n: int, part: slice) -> dict[str, torch.Tensor]:
            if step < int(es):
                return self._make_batch(step, gen, per * world_size, slice(rank * per, (rank + 1) * per))
            return self._make_batch(step, gen, n, part)

        return SeededBatches(make, batch_size, seed, rank, world_size)

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]] | None:
        """Embedding + preference vectors at ``objective.embed_lr``; PieNet at ``optim.lr``."""
        assert isinstance(model, PieNetSystem)
        if self.obj.get("embed_lr") is None:
            return None
        return [
            {"params": [*model.embedding.parameters(), model.user_vectors], "lr": float(self.obj["embed_lr"])},
            {"params": list(model.net.parameters())},
        ]

    # -- loss ----------------------------------------------------------------------------

    @torch.no_grad()
    def compute_centroids(self, model: PieNetSystem) -> torch.Tensor:
        """Each training user's scheme-2 vector ``(U, dim)`` from ``centroid_refs`` preferred images
        (a seeded choice): method users' renditions of training scenes, crowd users' preferred images."""
        m, crowd = self.methods, self.crowd
        k = int(self.obj["centroid_refs"])
        dev = next(model.parameters()).device
        g = torch.Generator().manual_seed(self.seed + 77)
        out = []
        was_training = model.embedding.training
        model.embedding.eval()
        for u in range(len(m.train_users)):
            idx = torch.randperm(m.targets.shape[1], generator=g)[:k]
            out.append(model.embedding(_to_f(m.targets[u, idx]).to(dev)).mean(0))
        if crowd is not None:
            for u in range(len(crowd.users)):
                rows = (crowd.user == u).nonzero().squeeze(1)
                rows = rows[torch.randperm(len(rows), generator=g)[:k]]
                out.append(model.embedding(_to_f(crowd.images[crowd.pref[rows]]).to(dev)).mean(0))
        model.embedding.train(was_training)
        return F.normalize(torch.stack(out), dim=1)

    def _phase(self, progress: float) -> str:
        return "embed" if progress < float(self.obj["embed_fraction"]) else "pienet"

    @staticmethod
    def _set_trainable(model: PieNetSystem, phase: str) -> None:
        emb = phase == "embed"
        for p in model.embedding.parameters():
            p.requires_grad_(emb)
        model.user_vectors.requires_grad_(emb)
        for p in model.net.parameters():
            p.requires_grad_(not emb)

    def _phase_of(self, batch: Any, progress: float) -> str:
        if "phase" in batch:
            return "embed" if int(batch["phase"]) == 0 else "pienet"
        return self._phase(progress)

    def _embed_fraction(self, batch: Any, progress: float) -> float:
        """The share of the run spent on the embedding phase (exact also under ``embed_steps``)."""
        es = self.obj["embed_steps"]
        if es is None or progress <= 0:
            return float(self.obj["embed_fraction"])
        return float(es) * progress / max(1.0, float(batch["step"]))

    def _embed_loss(self, model: PieNetSystem, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Triplet loss of the learned preference vectors against each preferred image and its negatives."""
        model.embedding.train()
        negs = [batch["other"]]
        if "others" in batch:
            negs += list(batch["others"].unbind(1))
        b, k = batch["preferred"].shape[0], len(negs)
        emb = model.embedding(torch.cat([batch["preferred"], *negs]))
        pos, neg = emb[:b], emb[b:]
        anchor = model.preference(batch["user"])
        a, pk = anchor.repeat(k, 1), pos.repeat(k, 1)
        loss = triplet_loss(a, pk, neg, margin=float(self.obj["margin"]))
        with torch.no_grad():
            acc = ((a - pk).pow(2).sum(1) < (a - neg).pow(2).sum(1)).float().mean()
        return loss, {"triplet": float(loss.detach()), "triplet_acc": float(acc), "phase": 0.0}

    def loss(self, model: nn.Module, batch: Any, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        assert isinstance(model, PieNetSystem)
        phase = self._phase_of(batch, progress)
        self._set_trainable(model, phase)
        users = batch["user"]
        if phase == "embed":
            return self._embed_loss(model, batch)
        model.embedding.eval()
        if self.obj["condition"] == "centroid" and not bool(model.centroids_ready > 0):
            model.user_centroids.copy_(self.compute_centroids(model))
            model.centroids_ready.fill_(1.0)
        with torch.no_grad():
            p = model.conditioning(users) if self.obj["condition"] == "centroid" else model.preference(users)
        p = perturb_preference(p, batch["noise"], float(self.obj["noise"]))
        x = batch["input"]
        delta = model.net.delta(x, p)
        out = x + delta
        lam = float(self.obj["perceptual"])
        on_maps = self.obj["perceptual_on"] == "maps"
        crowd = batch["crowd"]
        ci = crowd.nonzero().squeeze(1)

        def feats(img: torch.Tensor) -> Any:
            """Lp's features: the four intermediate maps, or the preference embedding ``(B, dim)``."""
            return model.embedding.features(img) if on_maps else model.embedding(img)

        with torch.no_grad():
            tgt_p = feats(batch["preferred"]) if lam > 0 else None
            tgt_n = feats(batch["other"][ci]) if lam > 0 and len(ci) else None
        out_f = feats(out) if lam > 0 else None

        def rec(rows: torch.Tensor | None, target: torch.Tensor, tf: Any) -> torch.Tensor:
            """Per-sample L1 + λ·Lp of the output (rows ``rows``, all when None) to ``target``."""
            o = out if rows is None else out[rows]
            r = l1_loss(o, target, reduction="none")
            if tf is not None and out_f is not None:
                if on_maps:
                    of = out_f if rows is None else [f[rows] for f in out_f]
                    r = r + lam * perceptual_loss(of, tf, reduction="none")
                else:  # squared Euclidean distance in the preference embedding (the triplet loss's metric)
                    oe = out_f if rows is None else out_f[rows]
                    r = r + lam * (oe - tf).pow(2).sum(1)
            return r

        lp = rec(None, batch["preferred"], tgt_p)
        per = lp
        logs: dict[str, float] = {"phase": 1.0}
        if len(ci):
            ln = rec(ci, batch["other"][ci], tgt_n)
            sched = str(self.obj["w_schedule"])
            lo, hi = float(self.obj["w_low"]), float(self.obj["w_high"])
            if sched == "uniform":
                w = (lo + (hi - lo) * batch["w_uniform"][ci]).to(lp)
            else:
                # the PPS schedule runs over the PieNet phase
                ef = self._embed_fraction(batch, progress)
                w = preference_weight((progress - ef) / max(1e-9, 1.0 - ef), sched, lo, hi).to(lp)
            pair = w * lp[ci] + (1.0 - w) * ln
            per = lp.index_put((ci,), pair)
            logs["w"] = float(torch.as_tensor(w).float().mean())
            logs["pair_loss"] = float(pair.mean().detach())
        if bool((~crowd).any()):
            logs["method_l1"] = float(l1_loss(out[~crowd], batch["preferred"][~crowd]).detach())
        loss = per.mean()
        if float(self.obj["tv"]) > 0:
            tv = edge_aware_tv(delta if self.obj["tv_on"] == "delta" else out, x)
            loss = loss + float(self.obj["tv"]) * tv
            logs["tv"] = float(tv.detach())
        return loss, logs

    # -- validation ----------------------------------------------------------------------

    def validate(self, model: nn.Module) -> dict[str, float]:
        assert isinstance(model, PieNetSystem)
        m = self.methods
        dev = next(model.parameters()).device
        res: dict[str, float] = {}
        if m.val_sources.shape[0] == 0:
            return res
        src = _to_f(m.val_sources).to(dev)
        if m.val_users:
            res.update(self._validate_new_users(model, src))
        n_seen = m.seen_targets.shape[0]
        if n_seen:
            seen, seen_id = [], []
            for u in range(n_seen):
                idx = torch.tensor([u], device=dev)
                tgt = _to_f(m.seen_targets[u]).to(dev)
                out = model.net(src, model.conditioning(idx).expand(src.shape[0], -1)).clamp(0, 1)
                seen.append(psnr(out, tgt).clamp(max=PSNR_CAP).mean())
                seen_id.append(psnr(src, tgt).clamp(max=PSNR_CAP).mean())
            res["seen_mpsnr"] = float(torch.stack(seen).mean())
            res["seen_mpsnr_identity"] = float(torch.stack(seen_id).mean())
        return res

    def _validate_new_users(self, model: PieNetSystem, src: torch.Tensor) -> dict[str, float]:
        """Validation method users personalized by scheme 2 from their ``val_refs``."""
        m = self.methods
        dev = src.device
        res: dict[str, float] = {}
        ps, id_ps, mean_ps, accs = [], [], [], []
        mean_p = model.mean_preference()
        tgt_emb = [model.embedding(_to_f(m.val_targets[u]).to(dev)) for u in range(len(m.val_users))]
        for u in range(len(m.val_users)):
            refs = _to_f(m.val_refs[u]).to(dev)
            p = F.normalize(model.embedding(refs).mean(0), dim=0)
            tgt = _to_f(m.val_targets[u]).to(dev)
            out = model.net(src, p.expand(src.shape[0], -1)).clamp(0, 1)
            ps.append(psnr(out, tgt).clamp(max=PSNR_CAP).mean())
            id_ps.append(psnr(src, tgt).clamp(max=PSNR_CAP).mean())
            out_m = model.net(src, mean_p.expand(src.shape[0], -1)).clamp(0, 1)
            mean_ps.append(psnr(out_m, tgt).clamp(max=PSNR_CAP).mean())
            d_own = (p - tgt_emb[u]).pow(2).sum(1)
            for v in range(len(m.val_users)):
                if v != u:
                    accs.append((d_own < (p - tgt_emb[v]).pow(2).sum(1)).float().mean())
        res["val_mpsnr"] = float(torch.stack(ps).mean())
        res["val_mpsnr_identity"] = float(torch.stack(id_ps).mean())
        res["val_mpsnr_mean_user"] = float(torch.stack(mean_ps).mean())
        if accs:
            res["val_triplet_acc"] = float(torch.stack(accs).mean())
        return res

    # -- inference and card --------------------------------------------------------------

    def to_inference(self, model: nn.Module) -> PieNetModel:
        assert isinstance(model, PieNetSystem)
        system = copy.deepcopy(model).eval()
        dev = next(system.parameters()).device
        return PieNetModel(system=system, device=str(dev))

    def describe_data(self) -> dict:
        m = self._methods
        desc: dict[str, Any] = {"options": dict(self.data.items())}
        if m is not None and self.data["fivek"]:
            desc["fivek"] = {
                "experts": m.train_users,
                "train_photos": len(m.train_scenes),
                "val_photos": m.val_scenes,
            }
        elif m is not None:
            desc["method_users"] = method_user_splits(self.data)
            desc["scenes"] = {"train": m.train_scenes, "val": m.val_scenes, "val_refs": m.ref_scenes}
        if self._crowd is not None:
            desc["crowd"] = {
                "root": self._crowd.root,
                "users": len(self._crowd.users),
                "judgments": self._crowd.n_judgments,
                "filters": self._crowd.filters,
            }
        return desc
