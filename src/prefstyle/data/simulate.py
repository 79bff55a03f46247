"""A simulated crowd in the pairs format, with ground truth for every user.

``simulate_dataset(config, out_dir)`` builds scenes from the content pool, renders several
renditions of each scene from the PPS source types that can be made offline, samples users
(person x device, see :mod:`prefstyle.data.crowd`), lets each answer a study session
(``main`` questions plus ``consistency`` repeats with sides swapped) and writes:

* the pairs dataset (``judgments.jsonl``, ``scenes.jsonl``, ``splits.json``, ``dataset.json``,
  ``images/<scene>/...png``), readable by :class:`prefstyle.data.pairs.PairsDataset`;
* ``ground_truth.json``: every user's taste, device and answering behaviour, and how every
  rendition was made. :func:`load_ground_truth` turns it back into :class:`SimulatedUser` objects
  whose ``ideal(img)`` gives the true ideal rendition of any image.

Source types (PPS paper naming). A: expert-like retouches sampled from the preset space.
B: camera renderings (different ISPs). D: controlled single-parameter edits of one base look
(saturation, brightness, temperature, contrast) and a professional-style look at several
strengths. E: content diversity: extra scenes cut as close-up crops from the pool, rendered
with the named preset library. C (generative, instruction-driven edits) needs models that cannot
run offline: it is *not* produced here; :class:`FolderVariants` is the hook that takes variants
made elsewhere (one folder of images per scene) as a source.

Choices are made on ``thumb``-pixel copies (distances of global colour transforms barely
depend on resolution); images are written at ``size`` pixels.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from prefstyle.data.crowd import Person, SimulatedUser, Taste, sample_device
from prefstyle.data.pairs import Judgment, Scene, write_pairs
from prefstyle.data.splits import person_of_user, split_users
from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_write_text
from prefstyle.imaging.pipeline import apply_retouch
from prefstyle.provenance import made_by
from prefstyle.styles.base import Style

GROUND_TRUTH_FILE = "ground_truth.json"
#: The simulated crowds: the slider crowd of this module and the looks crowd (prefstyle.data.looks_crowd).
TASTES = ("sliders", "looks")
DEVICE_NAMES = ("laptop", "phone", "desktop", "tablet")


@dataclass
class SimulationConfig:
    """Everything that determines a simulated dataset (same config -> same dataset)."""

    users: int = 500
    seed: int = 0
    scenes: int = 120
    renditions: int = 6
    size: int = 256
    thumb: int = 32
    main: int = 80
    consistency: int = 10
    careless_fraction: float = 0.08
    second_device_fraction: float = 0.15
    scene_dependent_fraction: float = 0.5
    look_fraction: float = 0.35
    temperature_median: float = 0.7
    temperature_sigma: float = 0.4
    origins: dict[str, float] = field(default_factory=lambda: {"A": 0.4, "B": 0.2, "D": 0.2, "E": 0.2})
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    photos: str = "bundled"  # "bundled": every installed photo; "packages": only those inside Python packages
    workers: int = 0  # processes answering sessions (0: one per CPU core); the dataset does not depend on it
    tastes: str = "sliders"  # "sliders": this module's crowd; "looks": prefstyle.data.looks_crowd
    looks: str | None = None  # looks crowd: the look library file (None: the packaged one)
    crowd: tuple[str, ...] = ()  # looks crowd: KEY=VALUE overrides of LooksCrowdConfig (data simulate --crowd)

    def __post_init__(self) -> None:
        if self.users < 1 or self.scenes < 1:
            raise PrefstyleError(f"need at least one user and one scene (got users={self.users}, scenes={self.scenes})")
        if self.renditions < 2:
            raise PrefstyleError(f"need at least 2 renditions per scene to make a pair (got {self.renditions})")
        if self.consistency > self.main:
            raise PrefstyleError(f"consistency questions ({self.consistency}) exceed main questions ({self.main})")
        if self.photos not in ("bundled", "packages"):
            raise PrefstyleError(f"photos must be 'bundled' or 'packages', got {self.photos!r}")
        if not 0 <= self.careless_fraction <= 1:
            raise PrefstyleError(f"careless_fraction must be in [0, 1], got {self.careless_fraction}")
        if self.tastes not in TASTES:
            raise PrefstyleError(f"tastes must be one of {', '.join(TASTES)}, got {self.tastes!r}")
        bad = sorted(set(self.origins) - set(ORIGINS))
        if bad or any(v < 0 for v in self.origins.values()) or sum(self.origins.values()) <= 0:
            raise PrefstyleError(
                f"origins must give non-negative shares of {', '.join(ORIGINS)} with a positive sum, got {self.origins}"
            )


#: the PPS rendition types both crowds make (docs/SIMULATOR.md)
ORIGINS = ("A", "B", "D", "E")


def parse_origins(text: str) -> dict[str, float]:
    """``"A=0.5,D=0.5"`` -> ``{"A": 0.5, "D": 0.5}`` (``data simulate --origins``); bad text raises
    :class:`~prefstyle.errors.PrefstyleError`."""
    out: dict[str, float] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if not sep or key not in ORIGINS or share < 0:
            raise PrefstyleError(f"--origins {item!r}: expected TYPE=SHARE with TYPE one of {', '.join(ORIGINS)}")
        out[key] = share
    return out


# --------------------------------------------------------------------------------------------
# Tastes and users
# --------------------------------------------------------------------------------------------


def sample_taste(rng: np.random.Generator, config: SimulationConfig | None = None) -> Taste:
    """Draw a taste from the simulator's prior (also the prior of the Bayes reference point)."""
    from prefstyle.styles.camera import sample_camera
    from prefstyle.styles.presets import PRESETS, sample_params

    cfg = config or SimulationConfig()
    params = sample_params(rng)
    base_style, base_mix = None, 0.0
    if rng.random() < cfg.look_fraction:
        if rng.random() < 0.5:
            base_style = sample_camera(rng).params()
        else:
            name = sorted(PRESETS)[int(rng.integers(len(PRESETS)))]
            base_style = PRESETS[name].style().params()
        base_mix = float(rng.uniform(0.4, 1.0))
    target, gain = None, 0.0
    if rng.random() < cfg.scene_dependent_fraction:
        target = float(rng.uniform(0.12, 0.3))
        gain = float(rng.uniform(0.3, 0.8))
    return Taste(
        params=params, base_style=base_style, base_mix=base_mix, target_brightness=target, brightness_gain=gain
    )


def sample_users(config: SimulationConfig, rng: np.random.Generator) -> list[SimulatedUser]:
    """``config.users`` users; some persons appear on two devices (same taste, other display)."""
    users: list[SimulatedUser] = []
    p = 0
    while len(users) < config.users:
        careless = bool(rng.random() < config.careless_fraction)
        person = Person(
            id=f"p{p:04d}",
            taste=sample_taste(rng, config),
            temperature=float(config.temperature_median * math.exp(rng.normal(0, config.temperature_sigma))),
            careless=careless,
            position_bias=float(rng.normal(0, 0.05 if careless else 0.1)),
            rt_median_ms=float(rng.uniform(350, 700) if careless else rng.uniform(1500, 4000)),
            rt_sigma=float(rng.uniform(0.2, 0.5)),
        )
        n_dev = 2 if rng.random() < config.second_device_fraction else 1
        names = rng.choice(len(DEVICE_NAMES), size=n_dev, replace=False)
        for k in names:
            if len(users) < config.users:
                users.append(SimulatedUser(person, sample_device(rng, DEVICE_NAMES[int(k)])))
        p += 1
    return users


# --------------------------------------------------------------------------------------------
# Rendition sources
# --------------------------------------------------------------------------------------------


class VariantSource(Protocol):
    """Makes ``k`` renditions of a scene: returns ``(images (k,3,H,W), params per rendition)``."""

    origin: str

    def render(
        self, scene: torch.Tensor, rng: np.random.Generator, k: int, scene_id: str
    ) -> tuple[torch.Tensor, list[dict]]: ...


def _apply_styles(scene: torch.Tensor, styles: Sequence[Style]) -> torch.Tensor:
    return torch.cat([s.apply(scene) for s in styles]).clamp(0, 1)


class ExpertLikeSource:
    """Type A: retouches sampled from the plausible preset space."""

    origin = "A"

    def render(self, scene, rng, k, scene_id):
        from prefstyle.styles.presets import sample_params

        params = [sample_params(rng) for _ in range(k)]
        imgs = torch.cat([apply_retouch(scene, p) for p in params])
        return imgs.clamp(0, 1), [{"kind": "params", "params": p.to_dict()} for p in params]


class CameraSource:
    """Type B: the scene as different cameras' ISPs would render it."""

    origin = "B"

    def render(self, scene, rng, k, scene_id):
        from prefstyle.styles.camera import sample_camera

        cams = [sample_camera(rng) for _ in range(k)]
        return _apply_styles(scene, cams), [c.params() for c in cams]


class ControlledEditSource:
    """Type D: one base look varied along a single parameter, or a pro look at several strengths."""

    origin = "D"
    FIELDS: ClassVar[dict[str, float]] = {"saturation": 0.6, "exposure": 0.9, "temperature": 0.6, "contrast": 0.6}

    def render(self, scene, rng, k, scene_id):
        from prefstyle.styles.presets import PRESETS, sample_params

        if rng.random() < 0.25:
            name = sorted(PRESETS)[int(rng.integers(len(PRESETS)))]
            strengths = np.linspace(0.0, 1.0, k + 1)[1:]
            styles = [PRESETS[name].style(float(s)) for s in strengths]
            return _apply_styles(scene, styles), [s.params() for s in styles]
        base = sample_params(rng, strength=0.5)
        fname = sorted(self.FIELDS)[int(rng.integers(len(self.FIELDS)))]
        span = self.FIELDS[fname]
        values = np.clip(
            getattr(base, fname) + np.linspace(-span, span, k),
            -1 if fname != "exposure" else -3,
            1 if fname != "exposure" else 3,
        )
        params = [base.replace(**{fname: float(v)}) for v in values]
        imgs = torch.cat([apply_retouch(scene, p) for p in params])
        return imgs.clamp(0, 1), [{"kind": "params", "params": p.to_dict(), "edit": fname} for p in params]


class PresetLibrarySource:
    """Type E renditions: the named preset library on content-diverse scenes."""

    origin = "E"

    def render(self, scene, rng, k, scene_id):
        from prefstyle.styles.presets import PRESETS

        names = [sorted(PRESETS)[int(i)] for i in rng.choice(len(PRESETS), size=min(k, len(PRESETS)), replace=False)]
        styles = [PRESETS[n].style() for n in names]
        return _apply_styles(scene, styles), [s.params() for s in styles]


class FolderVariants:
    """Variants made elsewhere (e.g. PPS type C, generative edits): ``root/<scene_id>/*.png|jpg``.

    Register with ``SOURCES["C"] = FolderVariants(path)`` before simulating; a scene without a
    folder falls back to type A.
    """

    origin = "C"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise PrefstyleError("variant folder does not exist", path=self.root)

    def render(self, scene, rng, k, scene_id):
        from prefstyle.imaging.io import list_images, read_image

        folder = self.root / scene_id
        files = list_images([folder]) if folder.is_dir() else []
        if len(files) < 2:
            return ExpertLikeSource().render(scene, rng, k, scene_id)
        picked = [files[int(i)] for i in rng.choice(len(files), size=min(k, len(files)), replace=False)]
        h, w = scene.shape[-2:]
        imgs = [F.interpolate(read_image(p).pixels[None], size=(h, w), mode="area") for p in picked]
        return torch.cat(imgs).clamp(0, 1), [{"kind": "external", "path": str(p)} for p in picked]


SOURCES: dict[str, VariantSource] = {
    "A": ExpertLikeSource(),
    "B": CameraSource(),
    "D": ControlledEditSource(),
    "E": PresetLibrarySource(),
}


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


@dataclass
class SimScene:
    """A scene and its renditions, in memory."""

    id: str
    origin: str
    content: str
    split: str
    source: torch.Tensor  # (1,3,size,size)
    renditions: torch.Tensor  # (R,3,size,size)
    rendition_params: list[dict]
    source_params: dict | None = None  # how the source was rendered from the pool photo (looks crowd)
    thumbs: torch.Tensor = field(init=False)  # (R,3,thumb,thumb)
    source_thumb: torch.Tensor = field(init=False)  # (1,3,thumb,thumb)

    def make_thumbs(self, thumb: int) -> None:
        self.thumbs = F.interpolate(self.renditions, size=(thumb, thumb), mode="area")
        self.source_thumb = F.interpolate(self.source, size=(thumb, thumb), mode="area")

    def rendition_path(self, k: int) -> str:
        return f"images/{self.id}/{self.origin}{k}.png"

    @property
    def source_path(self) -> str:
        return f"images/{self.id}/source.png"


def build_scenes(
    config: SimulationConfig,
    rng: np.random.Generator,
    progress: bool = True,
    sources: dict[str, VariantSource] | None = None,
    prepare: Callable[[torch.Tensor, int], tuple[torch.Tensor, dict]] | None = None,
) -> list[SimScene]:
    """Cut ``config.scenes`` scenes from the bundled content pool and render their renditions.

    ``sources``: rendition sources by origin (default :data:`SOURCES`); ``prepare(src, i)``
    turns scene ``i``'s pool crop ``(1,3,size,size)`` into its neutral source and says how
    (default: the crop as it is).

    Scenes are crops of the pool's photos (whole frames and medium crops); type-E scenes are
    close-up crops of the same photos, for content diversity. Every scene records the split of
    its photo (all crops of one photo share one split, so content never leaks across splits).
    """
    from prefstyle.data.photos import bundled_photos
    from prefstyle.data.pool import ContentPool

    photos = bundled_photos(system=config.photos == "bundled")
    per_photo = max(2, math.ceil(config.scenes / max(len(photos), 1)) + 1)
    pool = ContentPool(photos, crops_per_photo=per_photo, seed=config.seed)
    close = ContentPool(
        photos, crops_per_photo=per_photo, scale_range=(0.15, 0.35), min_crop_side=160, seed=config.seed + 1
    )
    photo_split = {
        pool.scene(sid).photo_id: name
        for name, ids in pool.split(config.split_fractions, seed=config.seed).items()
        for sid in ids
    }
    origins = sorted(config.origins)
    weights = np.array([config.origins[o] for o in origins], dtype=float)
    weights /= weights.sum()
    all_ids = pool.scene_ids
    picked = np.sort(rng.choice(len(all_ids), size=config.scenes, replace=len(all_ids) < config.scenes))
    plan: list[tuple[str, str, ContentPool]] = []  # (scene id in its pool, origin, pool)
    for j in picked:
        sid = all_ids[int(j)]
        origin = origins[int(rng.choice(len(origins), p=weights))]
        src_pool = pool
        if origin == "E":
            photo = pool.scene(sid).photo_id
            close_ids = [c for c in close.scene_ids if close.scene(c).photo_id == photo and close.scene(c).index > 0]
            if close_ids:
                sid, src_pool = close_ids[int(rng.integers(len(close_ids)))], close
        plan.append((sid, origin, src_pool))

    def render_one(i: int) -> SimScene:
        sid, origin, src_pool = plan[i]
        scene_rng = np.random.default_rng([config.seed, 2, i])
        src = src_pool.scene_image(sid, size=config.size, square=True)[None].clamp(0, 1)
        src_params, photo = None, src
        if prepare is not None:
            src, src_params = prepare(src, i)
        name = f"s{i:04d}"
        srcs = sources if sources is not None else SOURCES
        source = srcs.get(origin, srcs["A"])
        # a source that re-renders the photographed scene (other cameras) starts from the pool crop
        start = photo if getattr(source, "from_photo", False) else src
        imgs, params = source.render(start, scene_rng, config.renditions, name)
        sc = SimScene(
            id=name,
            origin=origin,
            content=sid,
            split=photo_split[src_pool.scene(sid).photo_id],
            source=src,
            renditions=imgs,
            rendition_params=params,
            source_params=src_params,
        )
        sc.make_thumbs(config.thumb)
        return sc

    scenes = parallel_map(render_one, len(plan), config.workers, progress, "render scenes")
    return scenes


def _session(
    user: SimulatedUser,
    user_index: int,
    scenes: list[SimScene],
    config: SimulationConfig,
    rng: np.random.Generator,
) -> list[Judgment]:
    """One study session: ``main`` pairs then ``consistency`` repeats mixed in, answered by ``user``."""
    n = config.main
    scene_idx = rng.choice(len(scenes), size=n, replace=len(scenes) < n)
    pairs = [tuple(int(v) for v in rng.choice(config.renditions, size=2, replace=False)) for _ in range(n)]
    order: list[tuple[int, bool]] = [(q, False) for q in range(n)]
    for q in rng.choice(n, size=config.consistency, replace=False):
        # A repeat goes somewhere after its original, unannounced.
        pos = int(rng.integers(int(q) + 1, len(order) + 1))
        pos = max(pos, next(i for i, (qq, rep) in enumerate(order) if qq == q and not rep) + 1)
        order.insert(pos, (int(q), True))

    src_thumbs = torch.cat([scenes[int(s)].source_thumb for s in scene_idx])
    with torch.no_grad():
        ideals = user.ideal(src_thumbs)
        a_idx = [pairs[q][1] if rep else pairs[q][0] for q, rep in order]
        b_idx = [pairs[q][0] if rep else pairs[q][1] for q, rep in order]
        qs = [q for q, _ in order]
        a = torch.stack([scenes[int(scene_idx[q])].thumbs[k] for q, k in zip(qs, a_idx)])
        b = torch.stack([scenes[int(scene_idx[q])].thumbs[k] for q, k in zip(qs, b_idx)])
        chose_a, rts, _ = user.choose(a, b, ideals[qs], rng)

    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=17 * user_index)
    out = []
    for (q, rep), ka, kb, ca, rt in zip(order, a_idx, b_idx, chose_a, rts):
        sc = scenes[int(scene_idx[q])]
        t += dt.timedelta(milliseconds=int(rt) + 400)
        out.append(
            Judgment(
                user=user.id,
                scene=sc.id,
                image_a=sc.rendition_path(ka),
                image_b=sc.rendition_path(kb),
                preferred="a" if ca else "b",
                kind="consistency" if rep else "main",
                response_ms=int(rt),
                person=user.person.id,
                device=user.device.name,
                time=t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            )
        )
    return out


def _write_png(path: Path, img: torch.Tensor) -> None:
    from PIL import Image

    arr = (img.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, compress_level=1)


_TASK: Callable[[int], Any] | None = None


def _run_task(i: int) -> Any:
    torch.set_num_threads(1)  # the tensors are small: one thread per process beats threads fighting
    return _TASK(i)  # type: ignore[misc]


def parallel_map(fn: Callable[[int], Any], n: int, workers: int, progress: bool, desc: str) -> list[Any]:
    """``[fn(0), ..., fn(n-1)]`` over forked worker processes (``workers`` 0: one per core).

    ``fn`` may be a closure: workers inherit it by fork. Each item must depend only on its index
    (seed per item), so results are identical for any number of workers.
    """
    import multiprocessing as mp
    import os

    global _TASK
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=n, desc=desc, disable=not progress)
    out: list[Any] = []
    _TASK = fn
    try:
        if workers <= 1 or n < 4 or "fork" not in mp.get_all_start_methods():
            threads = torch.get_num_threads()
            try:
                for i in range(n):
                    out.append(_run_task(i))
                    bar.update()
            finally:
                torch.set_num_threads(threads)
        else:
            chunk = max(1, min(8, n // (4 * workers)))
            with mp.get_context("fork").Pool(workers) as pool:
                for item in pool.imap(_run_task, range(n), chunksize=chunk):
                    out.append(item)
                    bar.update()
    finally:
        _TASK = None
        bar.close()
    return out


def _answer_sessions(
    users: list[SimulatedUser], scenes: list[SimScene], config: SimulationConfig, progress: bool
) -> list[Judgment]:
    """Every user's session. Each user has its own seed, so the result is the same for any ``workers``."""

    def one(i: int) -> list[Judgment]:
        return _session(users[i], i, scenes, config, np.random.default_rng([config.seed, 1, i]))

    return [j for js in parallel_map(one, len(users), config.workers, progress, "simulate users") for j in js]


def simulate_dataset(
    config: SimulationConfig, out_dir: str | Path, progress: bool = True, overwrite: bool = False
) -> Path:
    """Simulate a crowd and write it as a pairs dataset plus ``ground_truth.json`` into ``out_dir``.

    ``config.tastes == "looks"``: the looks crowd (:func:`prefstyle.data.looks_crowd.simulate_looks_dataset`).
    """
    if config.tastes == "looks":
        from prefstyle.data.looks_crowd import LooksCrowdConfig, simulate_looks_dataset

        crowd = LooksCrowdConfig.from_overrides(list(config.crowd))
        return simulate_looks_dataset(config, out_dir, progress=progress, overwrite=overwrite, crowd=crowd)
    if config.crowd:
        raise PrefstyleError("crowd overrides (--crowd) are for the looks crowd (--tastes looks)")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise PrefstyleError("output folder is not empty (pass --overwrite to replace it)", path=out)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    scenes = build_scenes(config, rng, progress=progress)
    users = sample_users(config, rng)

    judgments = _answer_sessions(users, scenes, config, progress)

    for sc in tqdm(scenes, desc="write images", disable=not progress):
        _write_png(out / sc.source_path, sc.source[0])
        for k in range(sc.renditions.shape[0]):
            _write_png(out / sc.rendition_path(k), sc.renditions[k])

    scene_records = [
        Scene(scene=sc.id, source=sc.source_path, origin=sc.origin, content=sc.content, extra={"split": sc.split})
        for sc in scenes
    ]
    # Split by person, so one person's devices never land in two splits.
    splits = split_users([u.id for u in users], config.split_fractions, seed=config.seed, group=person_of_user)
    write_pairs(
        out,
        judgments,
        scenes=scene_records,
        splits=splits,
        meta={
            "name": f"prefstyle simulated crowd (seed {config.seed})",
            "license": "CC-BY-4.0 for the judgments; images derive from the photos listed in docs/PHOTOS.md",
            "simulated": True,
            "ground_truth": GROUND_TRUTH_FILE,
        },
    )
    gt = {
        "format": "prefstyle-ground-truth",
        "version": 1,
        "made_by": made_by(),
        "config": _slider_config_dict(config),
        "users": [u.to_dict() for u in users],
        "renditions": {
            sc.rendition_path(k): {"scene": sc.id, "origin": sc.origin, "style": sc.rendition_params[k]}
            for sc in scenes
            for k in range(len(sc.rendition_params))
        },
    }
    atomic_write_text(out / GROUND_TRUTH_FILE, json.dumps(gt, indent=1) + "\n")
    return out


def _slider_config_dict(config: SimulationConfig) -> dict[str, Any]:
    """The slider crowd's config as written since before the looks crowd (no ``tastes``/``looks``)."""
    d = asdict(config)
    for k in ("tastes", "looks"):
        d.pop(k, None)
    return d


def load_ground_truth(root: str | Path) -> dict[str, SimulatedUser]:
    """Read ``ground_truth.json`` of a simulated dataset: user id -> :class:`SimulatedUser`."""
    path = Path(root) / GROUND_TRUTH_FILE
    if not path.is_file():
        raise PrefstyleError("no ground truth here (only simulated datasets have one)", path=path)
    try:
        gt = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PrefstyleError(f"malformed JSON: {e.msg}", path=path, line=e.lineno) from None
    if gt.get("format") != "prefstyle-ground-truth":
        raise PrefstyleError("not a prefstyle ground-truth file", path=path)
    if gt.get("tastes") == "looks":
        from prefstyle.data.looks_crowd import resolve_look_tastes

        resolve_look_tastes(gt, path.parent)
    try:
        return {d["user"]: SimulatedUser.from_dict(d) for d in gt["users"]}
    except (KeyError, TypeError, ValueError) as e:  # a hand-edited or truncated entry
        raise PrefstyleError(f"malformed user entry in the ground truth ({type(e).__name__}: {e})", path=path) from None


# Callable used by evaluation's reference points: a user's ideal for a batch of images.
IdealFn = Callable[[torch.Tensor], torch.Tensor]
