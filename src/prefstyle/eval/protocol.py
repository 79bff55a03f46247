"""The PPS evaluation protocol: personalize on N judgments, score on M held-out pairs with CQS.

For every evaluated user (default: the dataset's ``test`` split; all users when it has none):

1. The user's ``main`` judgments are put in a seeded order (:meth:`PairsDataset.split_user_judgments`).
   The first ``n_refs`` are the *references*; the *evaluation pairs* are the next ``n_evals``,
   skipping any whose scene is among the references (a model is never scored on a scene it was
   shown). With ``eval_after=K`` the evaluation pairs are chosen as if ``K`` references had been
   drawn, so runs with different ``n_refs <= K`` share the same evaluation pairs (the N
   ablation) and their references are nested.
2. Every model builds a profile from the references (``personalize``) and renders both images
   of every evaluation pair: ``Î_p`` from ``I_p`` and ``Î_n`` from ``I_n``.
3. For every metric the four cross-distances ``d(Î_p, I_p)``, ``d(Î_n, I_p)``, ``d(Î_p, I_n)``,
   ``d(Î_n, I_n)`` are measured (:func:`prefstyle.metrics.cqs.cqs_pair`), giving ``d̄_p`` and
   ``d̄_n`` per pair.
4. CQS is pooled per user (the user's mean ``d̄_p``, ``d̄_n`` -> s_p, s_n, BFS, CMR, CQS) and
   then averaged over users with equal weight (:func:`prefstyle.metrics.cqs.aggregate_cqs`,
   ``mode="pooled"``). The raw ``d̄_p``/``d̄_n`` in the tables are the same user averages.
5. Beside CQS, for every model: CQS relative to identity's in the same run (``cqs_rel``; the
   identity outputs are the inputs themselves, measured whether or not ``identity`` is among
   the models; reported for ΔE00, LPIPS and SSIM, not PSNR, whose identity value is the
   100 dB cap), and the preference win rate (the fraction of outputs closer to ``I_p`` than to
   ``I_n``, ties 1/2; per user, then averaged over users).
6. With ground truth (simulated data): every model renders the neutral source ``x`` of each
   evaluation scene, and the output is compared with the user's true ideal ``ideal(x)``:
   mean ΔE00 and PSNR (capped at 100 dB) per scene, averaged per user, then over users.

Images are used at their stored size, or downscaled so that the longer side is at most
``size`` (antialiased bilinear) when ``size`` is given.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from prefstyle import __version__
from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_write_text
from prefstyle.imaging.resize import resize_long_side
from prefstyle.metrics.cqs import aggregate_cqs, cqs_pair
from prefstyle.metrics.registry import available_metrics, get_metric
from prefstyle.models.base import PersonalizationModel, Profile, Reference
from prefstyle.models.reference import ALL_REFERENCE_POINTS, IdentityModel, OracleModel
from prefstyle.models.render import blend, render_batch

if TYPE_CHECKING:
    from prefstyle.data.crowd import SimulatedUser
    from prefstyle.data.pairs import Judgment, PairsDataset

__all__ = [
    "DEFAULT_METRICS",
    "REL_CQS_METRICS",
    "ImageCache",
    "PPSConfig",
    "PPSEvaluation",
    "Results",
    "Sample",
    "ablate_n_refs",
    "ablate_training_users",
    "evaluate_pps",
    "flip_references",
    "load_references",
    "summarize_ablation",
]

RESULTS_FORMAT = "prefstyle-results"
RESULTS_VERSION = 1
DEFAULT_METRICS: tuple[str, ...] = ("delta_e00", "lpips", "ssim", "psnr")
#: metrics whose CQS is also reported relative to identity's (identity's PSNR is the 100 dB cap)
REL_CQS_METRICS: frozenset[str] = frozenset({"delta_e00", "lpips", "lpips_vgg", "ssim"})
IDEAL_METRICS: tuple[str, ...] = ("delta_e00", "psnr")
SAMPLE_SIDE = 160
RENDER_BATCH = 16
#: the rows every table is measured against: the input itself, and the simulated user's true ideal
IDENTITY = IdentityModel.name
ORACLE = OracleModel.name


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------


def _fit_side(img: torch.Tensor, size: int | None) -> torch.Tensor:
    """``(3,H,W)`` downscaled so the longer side is at most ``size`` (unchanged when smaller)."""
    return img if size is None else resize_long_side(img, size).clamp(0, 1)


class ImageCache:
    """Loads a dataset's images once: ``cache.get(rel) -> (3,H,W)`` float32 sRGB [0,1]."""

    def __init__(self, dataset: PairsDataset, size: int | None = None, max_items: int = 4096):
        self.dataset, self.size, self.max_items = dataset, size, max_items
        self._items: dict[str, torch.Tensor] = {}

    def get(self, rel: str) -> torch.Tensor:
        from prefstyle.imaging.io import load_image

        if rel not in self._items:
            if len(self._items) >= self.max_items:
                self._items.pop(next(iter(self._items)))
            self._items[rel] = _fit_side(load_image(self.dataset.image_path(rel))[0], self.size)
        return self._items[rel]

    def source_of(self, scene: str) -> torch.Tensor | None:
        sc = self.dataset.scenes.get(scene)
        return self.get(sc.source) if sc is not None and sc.source else None


def _same_size(img: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if img.shape[-2:] == like.shape[-2:]:
        return img
    return F.interpolate(img[None], size=like.shape[-2:], mode="bilinear", antialias=True, align_corners=False)[0]


def load_references(
    dataset: PairsDataset, judgments: Iterable[Judgment], cache: ImageCache | None = None
) -> list[Reference]:
    """:class:`Reference` objects for judgments of a pairs dataset (images loaded, sources when listed).

    ``meta`` carries ``preferred_side`` (``"a"``/``"b"``), the two image paths and the judgment's line.
    """
    cache = cache or ImageCache(dataset)
    refs = []
    for j in judgments:
        pref = cache.get(j.preferred_image)
        other = _same_size(cache.get(j.other_image), pref)
        src = cache.source_of(j.scene)
        refs.append(
            Reference(
                scene=j.scene,
                preferred=pref,
                other=other,
                source=None if src is None else _same_size(src, pref),
                meta={
                    "preferred_side": j.preferred,
                    "preferred_image": j.preferred_image,
                    "other_image": j.other_image,
                    "line": j.line,
                    "user": j.user,
                },
            )
        )
    return refs


def flip_references(refs: list[Reference], fraction: float, seed: int, user: str) -> list[Reference]:
    """Reverse the answer of ``round(fraction·len(refs))`` references (chosen by ``seed`` and ``user``)."""
    if not 0.0 <= fraction <= 1.0:
        raise PrefstyleError(f"flip must be in [0, 1] (got {fraction})")
    k = round(fraction * len(refs))
    if k == 0:
        return refs
    chosen = set(random.Random(f"{seed}:{user}:flip").sample(range(len(refs)), k))
    return [
        Reference(
            scene=r.scene, preferred=r.other, other=r.preferred, source=r.source, meta={**r.meta, "flipped": True}
        )
        if i in chosen
        else r
        for i, r in enumerate(refs)
    ]


def _render(model: PersonalizationModel, profile: Profile, imgs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Render images of any sizes (:func:`~prefstyle.models.render.render_batch`): batches of equal
    shape, at most :data:`RENDER_BATCH` at a time."""
    out: list[torch.Tensor | None] = [None] * len(imgs)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, im in enumerate(imgs):
        groups[tuple(im.shape)].append(i)
    with torch.no_grad():
        for idx in groups.values():
            for k in range(0, len(idx), RENDER_BATCH):
                part = idx[k : k + RENDER_BATCH]
                res = render_batch(model, profile, torch.stack([imgs[i] for i in part]))
                for i, r in zip(part, res):
                    out[i] = r
    return out  # type: ignore[return-value]


def _by_shape(*lists: Sequence[torch.Tensor]) -> list[list[int]]:
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, im in enumerate(lists[0]):
        groups[tuple(im.shape)].append(i)
    return list(groups.values())


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """Images for the report's grid of one user (all ``(3,h,w)``, longer side <= 160 px).

    ``input`` is the scene's neutral source (``input_kind="source"``) or, without one, the
    non-preferred image of the first evaluation pair (``"non-preferred"``); ``outputs`` are the
    models' renditions of it; ``refs`` the preferred images of the first references.
    """

    user: str
    scene: str
    input: torch.Tensor
    input_kind: str
    refs: list[torch.Tensor]
    outputs: dict[str, torch.Tensor]
    ideal: torch.Tensor | None = None


def _finite(x: Any) -> Any:
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


@dataclass
class Results:
    """What :func:`evaluate_pps` measured; :meth:`to_json` is the ``results.json`` document.

    ``tables[metric][model]``: ``cqs, cqs_rel, win_rate, bfs, cmr, s_p, s_n, d_p, d_n, n_pairs, n_users``.
    ``ideal[model]`` (simulated data): ``delta_e00``, ``psnr``, ``n_users``, ``n_images``.
    ``per_user``: one row per (user, model). ``samples`` (images for the report) is not saved.
    """

    config: dict[str, Any]
    dataset: dict[str, Any]
    models: dict[str, dict[str, Any]]
    tables: dict[str, dict[str, dict[str, Any]]]
    ideal: dict[str, dict[str, Any]] | None
    per_user: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    ablations: dict[str, Any] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def model_names(self) -> list[str]:
        return list(self.models)

    @property
    def metrics(self) -> list[str]:
        return list(self.tables)

    def to_json(self) -> dict[str, Any]:
        return _finite(
            {
                "format": RESULTS_FORMAT,
                "version": RESULTS_VERSION,
                "protocol": "pps",
                "prefstyle_version": __version__,
                "created": self.created,
                "config": self.config,
                "dataset": self.dataset,
                "models": self.models,
                "tables": self.tables,
                "distance_to_ideal": self.ideal,
                "checks": self.checks,
                "notes": self.notes,
                "ablations": self.ablations,
                "per_user": self.per_user,
            }
        )

    def save(self, path: str | Path) -> Path:
        """Write ``results.json`` (a folder gets ``results.json`` inside it). Atomic."""
        import json

        path = Path(path)
        if path.suffix != ".json":
            path = path / "results.json"
        atomic_write_text(path, json.dumps(self.to_json(), indent=1, ensure_ascii=False, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Results:
        """Rebuild from a ``results.json`` document (without the sample images)."""
        if doc.get("format") != RESULTS_FORMAT:
            raise PrefstyleError("not a prefstyle results file")
        return cls(
            config=doc["config"],
            dataset=doc["dataset"],
            models=doc["models"],
            tables=doc["tables"],
            ideal=doc.get("distance_to_ideal"),
            per_user=doc.get("per_user", []),
            notes=doc.get("notes", []),
            checks=doc.get("checks", {}),
            ablations=doc.get("ablations", {}),
            created=doc.get("created", ""),
        )

    @classmethod
    def load(cls, path: str | Path) -> Results:
        import json

        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as e:
            raise PrefstyleError(f"cannot read results: {e}", path=path) from None


# --------------------------------------------------------------------------------------------
# the protocol
# --------------------------------------------------------------------------------------------


def _thumb(img: torch.Tensor) -> torch.Tensor:
    return _fit_side(img, SAMPLE_SIDE).clone()


def default_users(dataset: PairsDataset, split: str | None = "test") -> list[str]:
    """The users to evaluate: the named split (``"all"`` or None: everyone); everyone when the
    dataset has no such split (an empty split is an error)."""
    if split in (None, "all"):
        return dataset.users()
    if split not in dataset.splits:
        if dataset.splits:
            raise PrefstyleError(
                f"the dataset has no split {split!r} (has {', '.join(dataset.splits)})", path=dataset.root
            )
        return dataset.users()
    users = dataset.splits[split]
    if not users:
        raise PrefstyleError(f"split {split!r} has no users", path=dataset.root)
    return sorted(dict.fromkeys(users))


@dataclass(frozen=True)
class PPSConfig:
    """The knobs of one PPS run (the module docstring says what each does).

    ``n_refs``: references per user (>= 0); ``n_evals``: evaluation pairs per user (>= 1);
    ``seed``: the order of each user's judgments; ``metrics``: registry names (those that cannot
    run here, e.g. LPIPS without weights, are skipped with a note); ``size``: longer image side
    (None: as stored); ``eval_after``: choose evaluation pairs as if this many references had been
    drawn (the N ablation); ``keep_samples``: users whose images are kept for the report's grids;
    ``flip``: the fraction of each user's references whose answer is reversed (``round(flip·N)``,
    seeded per user; evaluation pairs are never flipped); ``eval_scenes``: score only pairs on
    these scenes, personalize only from pairs on others (the held-out-photos protocol);
    ``strengths``: also score every model but identity at these strengths of its edit, as rows
    ``"name@s"``: ``x + s·(f(x) − x)`` (1.0 is the model itself and is dropped; each in [0, 2]).
    """

    n_refs: int = 16
    n_evals: int = 16
    seed: int = 0
    metrics: Sequence[str] = DEFAULT_METRICS
    size: int | None = None
    eval_after: int | None = None
    keep_samples: int = 6
    flip: float = 0.0
    eval_scenes: Collection[str] | None = None
    strengths: Sequence[float] = ()

    def __post_init__(self) -> None:
        if self.n_refs < 0 or self.n_evals < 1:
            raise PrefstyleError(f"need n_refs >= 0 and n_evals >= 1 (got {self.n_refs}, {self.n_evals})")
        strengths = [float(x) for x in self.strengths if float(x) != 1.0]
        if any(not 0.0 <= x <= 2.0 for x in strengths):
            raise PrefstyleError(f"strengths must lie in [0, 2], got {strengths}")
        object.__setattr__(self, "strengths", tuple(strengths))

    def to_json(self, metrics: Sequence[str], n_users: int) -> dict[str, Any]:
        """The ``config`` part of ``results.json`` (``metrics``: those that ran)."""
        return {
            "protocol": "pps",
            "n_refs": self.n_refs,
            "flip": self.flip,
            "eval_scenes": None if self.eval_scenes is None else len(set(self.eval_scenes)),
            "strengths": list(self.strengths),
            "n_evals": self.n_evals,
            "eval_after": self.eval_after,
            "seed": self.seed,
            "metrics": list(metrics),
            "size": self.size,
            "cqs_aggregation": "pooled per user, then mean over users",
            "users": n_users,
        }


#: the row of the inputs themselves (always measured; shown as identity when identity did not run)
_INPUTS = "\x00identity"


class _PairScores:
    """Per-pair distances per (row, metric): ``d̄_p``, ``d̄_n`` and the pair's user; wins per user."""

    def __init__(self) -> None:
        self.d_p: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.d_n: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.users: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.wins: dict[tuple[str, str, str], list[float]] = defaultdict(list)

    def add(self, row: str, metric: str, user: str, r: Mapping[str, list[float]]) -> None:
        """One :func:`~prefstyle.metrics.cqs.cqs_pair` result of ``user``'s pairs for ``row``."""
        self.d_p[(row, metric)] += r["d_p"]
        self.d_n[(row, metric)] += r["d_n"]
        self.users[(row, metric)] += [user] * len(r["d_p"])
        self.wins[(row, metric, user)] += [w / 2 for w in r["wins"]]

    def aggregate(self, row: str, spec: Any) -> dict[str, Any] | None:
        """CQS pooled per user (None where undefined)."""
        key = (row, spec.name)
        return _aggregate(self.d_p[key], self.d_n[key], spec, self.users[key])

    def user_wins(self, row: str, metric: str) -> dict[str, float]:
        """``{user: win rate}`` of ``row`` on ``metric``."""
        return {u: sum(v) / len(v) for (n, m, u), v in self.wins.items() if n == row and m == metric}


@dataclass
class _UserPairs:
    """One user's references and evaluation pairs, loaded (images ``(3,H,W)`` in [0,1])."""

    user: str
    refs: list[Reference]
    evals: list[Any]
    i_p: list[torch.Tensor]
    i_n: list[torch.Tensor]
    scenes: list[str]
    sources: dict[str, torch.Tensor]
    ideals: dict[str, torch.Tensor]
    groups: list[list[int]]


class PPSEvaluation:
    """The PPS protocol as an accumulator (torchmetrics style): :meth:`update` with one user at a
    time, :meth:`compute` the :class:`Results`.

    ``models``: ``{name: model}``; ``config``: :class:`PPSConfig`; ``users``: whom
    :meth:`run` evaluates (default: the ``test`` split, else everyone); ``ground_truth``:
    ``{user: SimulatedUser}`` for the distance to the true ideal (simulated data); ``cache``:
    an :class:`ImageCache` to share between runs.
    """

    def __init__(
        self,
        dataset: PairsDataset,
        models: Mapping[str, PersonalizationModel],
        config: PPSConfig | None = None,
        users: Sequence[str] | None = None,
        ground_truth: Mapping[str, SimulatedUser] | None = None,
        cache: ImageCache | None = None,
    ):
        self.config = config = config or PPSConfig()
        if not models:
            raise PrefstyleError("no models to evaluate")
        self.specs, notes = available_metrics(list(config.metrics))
        if not self.specs:
            raise PrefstyleError("none of the requested metrics can be computed here: " + "; ".join(notes))
        self.dataset, self.models, self.ground_truth = dataset, models, ground_truth
        self.notes: list[str] = list(notes)
        self.users = list(users) if users is not None else default_users(dataset)
        self.cache = cache or ImageCache(dataset, config.size)
        #: per model: its rows, ``(row name, strength)``, the model itself first
        self.variants = {
            name: [(name, 1.0)] + ([] if m.name == IDENTITY else [(f"{name}@{x:g}", x) for x in config.strengths])
            for name, m in models.items()
        }
        self.scores = _PairScores()
        self.ideal_rows: dict[tuple[str, str], dict[str, float]] = {}
        self.user_info: dict[str, dict[str, Any]] = {}
        self.seconds: dict[str, float] = defaultdict(float)
        self.samples: list[Sample] = []

    # -- update ------------------------------------------------------------------------------

    def run(self, progress: bool = False) -> Results:
        """:meth:`update` every user of :attr:`users`, then :meth:`compute`. ``progress``: a bar of
        ``users x models`` steps, one per model personalized and scored on a user, that names the
        user and model at work."""
        if not progress:
            for user in self.users:
                self.update(user)
            return self.compute()
        from tqdm.auto import tqdm

        n_users, n_models = len(self.users), len(self.models)
        with tqdm(total=n_users * n_models, desc="evaluate", unit="step") as bar:
            for k, user in enumerate(self.users):

                def step(name: str, done: bool, k: int = k, user: str = user) -> None:
                    if done:
                        bar.update(1)
                    else:
                        bar.set_postfix_str(f"user {k + 1}/{n_users} {user}: {name}")

                bar.set_postfix_str(f"user {k + 1}/{n_users} {user}: loading")
                self.update(user, step=step)
                bar.update((k + 1) * n_models - bar.n)  # a skipped user's steps
        return self.compute()

    def update(self, user: str, step: Callable[[str, bool], None] | None = None) -> None:
        """Personalize every model on ``user``'s references and score its evaluation pairs;
        ``step(model name, done)`` is called before (``done`` False) and after each model (progress)."""
        pairs = self._load_user(user)
        if pairs is None:
            return
        kept = self._start_sample(pairs) if len(self.samples) < self.config.keep_samples else None
        if pairs.ideals:
            self.ideal_rows[(_INPUTS, user)] = _ideal_row(
                [pairs.sources[s] for s in pairs.ideals], list(pairs.ideals.values())
            )
        for spec in self.specs:
            for g in pairs.groups:
                P = torch.stack([pairs.i_p[i] for i in g])
                N = torch.stack([pairs.i_n[i] for i in g])
                self.scores.add(_INPUTS, spec.name, user, cqs_pair(P, N, P, N, spec))
        for name, model in self.models.items():
            if step is not None:
                step(name, False)
            self._score_model(name, model, pairs, kept)
            if step is not None:
                step(name, True)
        if kept is not None:
            self.samples.append(kept[0])

    def _load_user(self, user: str) -> _UserPairs | None:
        cfg, ds, cache = self.config, self.dataset, self.cache
        draw = max(cfg.n_refs, cfg.eval_after or 0)
        refs_j, evals_j = ds.split_user_judgments(user, draw, cfg.n_evals, seed=cfg.seed, eval_scenes=cfg.eval_scenes)
        refs_j = refs_j[: cfg.n_refs]
        if not evals_j:
            self.notes.append(f"user {user}: no evaluation pairs left after {len(refs_j)} references; skipped")
            return None
        refs = flip_references(load_references(ds, refs_j, cache), cfg.flip, cfg.seed, user)
        i_p = [cache.get(j.preferred_image) for j in evals_j]
        i_n = [_same_size(cache.get(j.other_image), p) for j, p in zip(evals_j, i_p)]
        truth = self.ground_truth.get(user) if self.ground_truth is not None else None
        if self.ground_truth is not None and truth is None:
            self.notes.append(f"user {user}: not in the ground truth; no distance to the ideal")
        scenes = list(dict.fromkeys(j.scene for j in evals_j))
        sources = {s: src for s in scenes if (src := cache.source_of(s)) is not None}
        ideals: dict[str, torch.Tensor] = {}
        if truth is not None and sources:
            with torch.no_grad():
                ideals = {s: truth.ideal(x[None])[0].clamp(0, 1) for s, x in sources.items()}
        self.user_info[user] = {"n_refs": len(refs), "n_evals": len(evals_j), "n_ideal_scenes": len(ideals)}
        return _UserPairs(
            user=user,
            refs=refs,
            evals=evals_j,
            i_p=i_p,
            i_n=i_n,
            scenes=scenes,
            sources=sources,
            ideals=ideals,
            groups=_by_shape(i_p),
        )

    def _start_sample(self, pairs: _UserPairs) -> tuple[Sample, torch.Tensor]:
        """The report's grid row of this user, and the full-size input the models render for it."""
        s0 = next((s for s in pairs.scenes if s in pairs.sources), None)
        inp, kind = (pairs.sources[s0], "source") if s0 is not None else (pairs.i_n[0], "non-preferred")
        sample = Sample(
            user=pairs.user,
            scene=s0 or pairs.evals[0].scene,
            input=_thumb(inp),
            input_kind=kind,
            refs=[_thumb(r.preferred) for r in pairs.refs[:4]],
            outputs={},
            ideal=_thumb(pairs.ideals[s0]) if s0 in pairs.ideals else None,
        )
        return sample, inp

    def _score_model(
        self, name: str, model: PersonalizationModel, pairs: _UserPairs, kept: tuple[Sample, torch.Tensor] | None
    ) -> None:
        t0 = time.perf_counter()
        profile = model.personalize(pairs.refs, pairs.user)
        out_p = _render(model, profile, pairs.i_p)
        out_n = _render(model, profile, pairs.i_n)
        src_keys = list(pairs.ideals)
        src_imgs = [pairs.sources[s] for s in src_keys]
        outs_src = _render(model, profile, src_imgs) if src_keys else []
        if kept is not None:
            kept[0].outputs[name] = _thumb(_render(model, profile, [kept[1]])[0])
        self.seconds[name] += time.perf_counter() - t0
        i_p, i_n = pairs.i_p, pairs.i_n
        for vname, x in self.variants[name]:
            vp, vn, vsrc = (_blend(outs, ins, x) for outs, ins in ((out_p, i_p), (out_n, i_n), (outs_src, src_imgs)))
            for spec in self.specs:
                for g in pairs.groups:
                    r = cqs_pair(
                        torch.stack([vp[i] for i in g]),
                        torch.stack([vn[i] for i in g]),
                        torch.stack([i_p[i] for i in g]),
                        torch.stack([i_n[i] for i in g]),
                        spec,
                    )
                    self.scores.add(vname, spec.name, pairs.user, r)
            if src_keys:
                self.ideal_rows[(vname, pairs.user)] = _ideal_row(vsrc, [pairs.ideals[s] for s in src_keys])

    # -- compute -----------------------------------------------------------------------------

    def _row_names(self) -> list[str]:
        """Every table row: the models' variants, and identity (the inputs) when it did not run."""
        return [v for name in self.models for v, _ in self.variants[name]] + (
            [] if IDENTITY in self.models else [IDENTITY]
        )

    def _key(self, name: str) -> str:
        """The scores behind row ``name`` (identity's are the inputs' when identity did not run)."""
        return _INPUTS if name == IDENTITY and IDENTITY not in self.models else name

    def compute(self) -> Results:
        """The :class:`Results` of every user updated so far."""
        if not self.user_info:
            cfg = self.config
            raise PrefstyleError(
                f"no user has evaluation pairs ({len(self.users)} users, {cfg.n_refs} references, "
                f"{cfg.n_evals} evaluation pairs)",
                path=self.dataset.root,
            )
        notes = list(self.notes)
        tables, per_user_rows = self._tables(notes)
        ideal = self._ideal_table(per_user_rows)
        model_info = self._model_info()
        order = _table_order(list(model_info))
        model_info = {k: model_info[k] for k in order}
        tables = {m: {k: t[k] for k in order if k in t} for m, t in tables.items()}
        results = Results(
            config=self.config.to_json([s.name for s in self.specs], len(self.users)),
            dataset=describe_dataset(self.dataset, self.users, self.ground_truth is not None),
            models=model_info,
            tables=tables,
            ideal=ideal,
            per_user=[per_user_rows[k] for k in sorted(per_user_rows, key=lambda k: (k[1], order.index(k[0])))],
            notes=notes,
            samples=list(self.samples),
        )
        results.checks = compute_checks(results)
        return results

    def _tables(
        self, notes: list[str]
    ) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[tuple[str, str], dict[str, Any]]]:
        """``{metric: {row: values}}`` and the per-user rows ``{(row, user): ...}`` (appends to ``notes``)."""
        tables: dict[str, dict[str, dict[str, Any]]] = {}
        per_user_rows: dict[tuple[str, str], dict[str, Any]] = {}
        for spec in self.specs:
            tables[spec.name] = {}
            agg_id = self.scores.aggregate(_INPUTS, spec)
            id_cqs = agg_id["cqs"] if agg_id else None
            for name in self._row_names():
                key = self._key(name)
                agg = self.scores.aggregate(key, spec)
                if agg is None:
                    notes.append(f"{name} / {spec.name}: CQS undefined (a user's mean distance is 0); left empty")
                    agg = {"per_user": {}}
                user_wins = self.scores.user_wins(key, spec.name)
                row: dict[str, Any] = {
                    k: agg.get(k) for k in ("cqs", "bfs", "cmr", "s_p", "s_n", "d_p", "d_n", "n_pairs", "n_users")
                }
                row["win_rate"] = sum(user_wins.values()) / len(user_wins) if user_wins else None
                rel_ok = spec.name in REL_CQS_METRICS and id_cqs and row["cqs"] is not None
                row["cqs_rel"] = row["cqs"] / id_cqs if rel_ok else None
                tables[spec.name][name] = row
                for u, pu in agg["per_user"].items():
                    pr = per_user_rows.setdefault(
                        (name, u), {"user": u, "model": name, **self.user_info[u], "metrics": {}}
                    )
                    pr["metrics"][spec.name] = {
                        "cqs": pu["cqs"],
                        "cmr": pu["cmr"],
                        "bfs": pu["bfs"],
                        "d_p": pu["d_p"],
                        "d_n": pu["d_n"],
                        "win_rate": user_wins.get(u),
                    }
        return tables, per_user_rows

    def _ideal_table(self, per_user_rows: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
        """Distance to the true ideal per row (None without ground truth); adds it to the per-user rows."""
        if not self.ideal_rows:
            return None
        ideal: dict[str, dict[str, Any]] = {}
        names = self._row_names()
        for name in names:
            rows = [r for (n, _), r in self.ideal_rows.items() if n == self._key(name)]
            if rows:
                ideal[name] = {m: sum(r[m] for r in rows) / len(rows) for m in IDEAL_METRICS}
                ideal[name]["n_users"] = len(rows)
                ideal[name]["n_images"] = sum(r["n_images"] for r in rows)
        for name in names:
            for (n, u), r in self.ideal_rows.items():
                if n == self._key(name) and (name, u) in per_user_rows:
                    per_user_rows[(name, u)]["ideal"] = {m: r[m] for m in IDEAL_METRICS}
        return ideal

    def _model_info(self) -> dict[str, dict[str, Any]]:
        info: dict[str, dict[str, Any]] = {}
        for name, model in self.models.items():
            info[name] = {
                "registered_name": model.name,
                "reference_point": model.reference_point or model.name in ALL_REFERENCE_POINTS,
                "config": _finite(model.config()),
                "seconds": self.seconds.get(name, 0.0),
            }
            for vname, x in self.variants[name][1:]:
                info[vname] = {**info[name], "strength": x, "seconds": 0.0}
        if IDENTITY not in self.models:
            info[IDENTITY] = {
                "registered_name": IDENTITY,
                "reference_point": True,
                "config": {"name": IDENTITY, "note": "measured from the inputs"},
                "seconds": 0.0,
            }
        return info


def evaluate_pps(
    dataset: PairsDataset,
    models: Mapping[str, PersonalizationModel],
    n_refs: int = 16,
    n_evals: int = 16,
    users: Sequence[str] | None = None,
    seed: int = 0,
    ground_truth: Mapping[str, SimulatedUser] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    size: int | None = None,
    eval_after: int | None = None,
    keep_samples: int = 6,
    progress: bool = False,
    cache: ImageCache | None = None,
    flip: float = 0.0,
    eval_scenes: Collection[str] | None = None,
    strengths: Sequence[float] = (),
) -> Results:
    """Run the PPS protocol (module docstring) for ``models`` (``{name: model}``) on a pairs dataset.

    A shorthand for ``PPSEvaluation(dataset, models, PPSConfig(...), users, ground_truth,
    cache).run(progress)``; the options are :class:`PPSConfig`'s and :class:`PPSEvaluation`'s.
    Returns :class:`Results`.
    """
    config = PPSConfig(
        n_refs=n_refs,
        n_evals=n_evals,
        seed=seed,
        metrics=tuple(metrics),
        size=size,
        eval_after=eval_after,
        keep_samples=keep_samples,
        flip=flip,
        eval_scenes=eval_scenes,
        strengths=tuple(strengths),
    )
    return PPSEvaluation(dataset, models, config, users=users, ground_truth=ground_truth, cache=cache).run(progress)


def _blend(outputs: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor], strength: float) -> list[torch.Tensor]:
    """``x + strength·(f(x) − x)`` per image, clamped to [0, 1] (:func:`~prefstyle.models.render.blend`)."""
    if strength == 1.0:
        return list(outputs)
    return [blend(x, o, strength) for o, x in zip(outputs, inputs)]


def _ideal_row(outputs: Sequence[torch.Tensor], ideals: Sequence[torch.Tensor]) -> dict[str, float]:
    """Mean ΔE00 and PSNR (capped at 100 dB) of outputs against the true ideals, over images."""
    row: dict[str, float] = {}
    for mname in IDEAL_METRICS:
        m = get_metric(mname)
        vals = [float(m(o[None], t[None])[0]) for o, t in zip(outputs, ideals)]
        row[mname] = sum(vals) / len(vals)
    row["n_images"] = len(outputs)
    return row


def _aggregate(dp: list[float], dn: list[float], spec: Any, users: list[str]) -> dict[str, Any] | None:
    try:
        return aggregate_cqs(dp, dn, spec.higher_is_better, users=users, mode="pooled")
    except ValueError:
        return None


def _table_order(names: list[str]) -> list[str]:
    refs = [n for n in ALL_REFERENCE_POINTS if n in names]
    return refs + [n for n in names if n not in refs]


def describe_dataset(dataset: PairsDataset, users: Sequence[str], simulated: bool) -> dict[str, Any]:
    """The dataset part of ``results.json``."""
    return {
        "root": str(dataset.root),
        "name": dataset.meta.get("name"),
        "license": dataset.meta.get("license"),
        "simulated": bool(simulated or dataset.meta.get("simulated", False)),
        "ground_truth": bool(simulated),
        "users": len(dataset.users()),
        "judgments": len(dataset.judgments),
        "scenes": len({j.scene for j in dataset.judgments}),
        "splits": {k: len(v) for k, v in dataset.splits.items()},
        "evaluated_users": len(users),
    }


def compute_checks(results: Results) -> dict[str, Any]:
    """Sanity facts stated beside every table (booleans per metric).

    ``identity_cmr_zero``: identity's CMR is 0 (by construction; up to 1e-6 of float rounding).
    ``oracle_above_identity``: whether CQS ranks the oracle (the true ideal) above identity;
    ``oracle_above_identity_rel`` the same for relative CQS. Present when the oracle ran.
    """
    checks: dict[str, Any] = {}
    checks["identity_cmr_zero"] = {
        m: (t.get(IDENTITY, {}).get("cmr") is not None and abs(t[IDENTITY]["cmr"]) < 1e-6)
        for m, t in results.tables.items()
    }
    if ORACLE in results.models:
        checks["oracle_above_identity"] = {
            m: (None if t.get(ORACLE, {}).get("cqs") is None else t[ORACLE]["cqs"] > t[IDENTITY]["cqs"])
            for m, t in results.tables.items()
        }
        checks["oracle_win_rate"] = {m: t.get(ORACLE, {}).get("win_rate") for m, t in results.tables.items()}
    if results.ideal and ORACLE in results.ideal and IDENTITY in results.ideal:
        checks["oracle_closer_to_ideal_than_identity"] = (
            results.ideal[ORACLE]["delta_e00"] < results.ideal[IDENTITY]["delta_e00"]
        )
    return checks


# --------------------------------------------------------------------------------------------
# ablations
# --------------------------------------------------------------------------------------------


def summarize_ablation(parameter: str, runs: Mapping[int, Results]) -> dict[str, Any]:
    """One ablation for ``results.json``: per model, per metric, the values at each setting.

    ``{"parameter", "values": [...], "models": {name: {"cqs": {metric: [...]}, "cqs_rel": {...},
    "win_rate": {...}, "ideal_delta_e00": [...], "ideal_psnr": [...]}}}`` (None where absent).
    """
    values = sorted(runs)
    names: list[str] = []
    for v in values:
        names += [n for n in runs[v].models if n not in names]
    out: dict[str, Any] = {"parameter": parameter, "values": values, "models": {}}
    for name in names:
        entry: dict[str, Any] = {"cqs": {}, "cqs_rel": {}, "win_rate": {}}
        metrics = sorted({m for v in values for m in runs[v].tables})
        for m in metrics:
            for key in ("cqs", "cqs_rel", "win_rate"):
                entry[key][m] = [runs[v].tables.get(m, {}).get(name, {}).get(key) for v in values]
        for m in IDEAL_METRICS:
            entry[f"ideal_{m}"] = [((runs[v].ideal or {}).get(name) or {}).get(m) for v in values]
        out["models"][name] = entry
    return _finite(out)


def ablate_n_refs(
    dataset: PairsDataset,
    models: Mapping[str, PersonalizationModel],
    ns: Sequence[int] = (4, 16, 32),
    progress: bool = False,
    **kwargs: Any,
) -> tuple[dict[str, Any], dict[int, Results]]:
    """Evaluate with N references for each N in ``ns``, on the same evaluation pairs (``eval_after=max(ns)``).

    ``kwargs`` go to :func:`evaluate_pps`. Returns ``(summary, {N: Results})``.
    """
    if not ns:
        raise ValueError("ns is empty")
    kwargs.setdefault("keep_samples", 0)
    kwargs.pop("n_refs", None)
    kwargs.pop("eval_after", None)
    runs = {}
    for n in ns:
        if progress:
            print(f"ablation: N = {n} references")
        runs[int(n)] = evaluate_pps(dataset, models, n_refs=int(n), eval_after=max(ns), progress=progress, **kwargs)
    return summarize_ablation("n_refs", runs), runs


def ablate_training_users(
    dataset: PairsDataset,
    make_model: Callable[[list[str]], PersonalizationModel],
    ks: Sequence[int],
    train_users: Sequence[str] | None = None,
    name: str | None = None,
    seed: int = 0,
    progress: bool = False,
    **kwargs: Any,
) -> tuple[dict[str, Any], dict[int, Results]]:
    """Train a model on k users for each k in ``ks`` and evaluate it (the paper's training-users ablation).

    ``make_model(users)`` trains and returns a model on those users. The k users are the first
    k of a seeded shuffle of ``train_users`` (default: the train split, else every user not
    evaluated), so the sets are nested. ``kwargs`` go to :func:`evaluate_pps` (same seed).
    Returns ``(summary, {k: Results})``.
    """
    eval_users = kwargs.get("users") or default_users(dataset)
    if train_users is None:
        train_users = dataset.splits.get("train") or [u for u in dataset.users() if u not in set(eval_users)]
    pool = sorted(train_users)
    if not pool:
        raise PrefstyleError("no training users for the training-users ablation", path=dataset.root)
    random.Random(seed).shuffle(pool)
    kwargs.setdefault("keep_samples", 0)
    runs = {}
    for k in ks:
        k = int(k)
        if not 1 <= k <= len(pool):
            raise PrefstyleError(f"cannot train on {k} users: there are {len(pool)} training users")
        model = make_model(pool[:k])
        label = name or model.name
        if progress:
            print(f"ablation: {label} trained on {k} users")
        runs[k] = evaluate_pps(dataset, {label: model}, seed=seed, progress=progress, **kwargs)
    return summarize_ablation("train_users", runs), runs
