"""Building LookTaste's taste space and fitting its prior by empirical Bayes.

:func:`build_space` turns example looks (the look library's, raw-editor slider edits) into a
basis and a set of candidate tastes; :func:`fit_look_taste` adds the looks of the training data's
renditions, then sets the choice model's temperature and lapse, the population's prior weights
(EM on the training people's answers) and the prior's floor and user mass (marginal likelihood
of the validation people's answers). See :mod:`prefstyle.models.look_taste`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.lut import identity_lut, resize_lut
from prefstyle.imaging.pipeline import apply_retouch_vector
from prefstyle.models.loading import register_fit_without_gradients
from prefstyle.models.look_space import GAINS, fit_basis, project

__all__ = ["build_space", "fit_from_config", "fit_look_taste", "slider_displacements"]

#: the basis and the library's looks live at this LUT size
SPACE_LUT_SIZE = 17


def slider_displacements(n: int, size: int = SPACE_LUT_SIZE, seed: int = 0) -> torch.Tensor:
    """``(n,3,S,S,S)`` displacements (LUT − identity) of raw-editor slider edits drawn around neutral
    (:func:`prefstyle.models.slider_taste.prior_vectors`, widths at scale 1)."""
    from prefstyle.models.slider_taste import prior_vectors

    vecs = prior_vectors(n, 1.0, seed)
    grid = identity_lut(size).reshape(1, 3, size, size * size)
    with torch.no_grad():
        out = apply_retouch_vector(grid.expand(n, -1, -1, -1).contiguous(), vecs, exact=True).clamp(0, 1)
    return out.reshape(n, 3, size, size, size) - identity_lut(size)[None]


def build_space(
    library: Any | None,
    n_sliders: int = 1024,
    n_blends: int = 512,
    max_dim: int = 64,
    extra: torch.Tensor | None = None,
    seed: int = 0,
    n_gaussian: int = 0,
) -> dict[str, Any]:
    """The basis and shared particles from a look library (or None: slider edits only).

    Particles (each with a gain drawn uniformly from ``GAINS``): the identity; every look at
    strengths 0.5 and 1; ``n_blends`` even blends of two looks and ``n_blends`` looks with a half
    slider edit added; ``n_sliders`` slider edits; ``extra`` coefficients ``(M,D)`` if given (they
    must be in this basis: pass them on a second call with the same library and seed); and
    ``n_gaussian`` looks drawn from a Gaussian with the mean and covariance of the library looks'
    coefficients: looks between and around the library's that no example holds.
    Returns ``{"basis", "coeffs", "gains", "names", "look_coeffs", "info"}``.
    """
    counts = {"n_sliders": n_sliders, "n_blends": n_blends, "n_gaussian": n_gaussian}
    bad = [f"{k}={v!r}" for k, v in counts.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if bad:
        raise PrefstyleError(f"looks: {', '.join(bad)}: the taste space's counts must be whole numbers >= 0")
    s = SPACE_LUT_SIZE
    sliders = slider_displacements(n_sliders, s, seed)
    if library is not None and len(library):
        tables = library.tables if library.size == s else torch.stack([resize_lut(t, s) for t in library.tables])
        looks = tables.float() - identity_lut(s)[None]
        names = library.names()
    else:
        looks, names = torch.zeros(0, 3, s, s, s), []
    basis, info = fit_basis(torch.cat([looks, sliders]), max_dim=max_dim)
    look_c, slider_c = project(looks, basis), project(sliders, basis)
    rng = np.random.default_rng(seed)
    parts = [torch.zeros(1, basis.shape[0]), slider_c]
    if len(look_c):
        parts += [0.5 * look_c, look_c]
        if len(look_c) > 1:
            i, j = rng.integers(0, len(look_c), size=(2, n_blends))
            parts.append(0.5 * (look_c[i] + look_c[j]))
            k = rng.integers(0, len(slider_c), size=n_blends)
            parts.append(look_c[i] + 0.5 * slider_c[k])
    if extra is not None and len(extra):
        parts.append(extra.float())
    if n_gaussian > 0 and len(look_c) > 1:
        parts.append(_gaussian_looks(look_c, n_gaussian, seed))
    coeffs = torch.cat(parts)
    gains = torch.tensor(GAINS)[torch.from_numpy(rng.integers(0, len(GAINS), size=len(coeffs)))].float()
    gains[0] = 0.0  # the identity stays the identity
    info = {**info, "looks": len(names), "sliders": n_sliders, "particles": len(coeffs)}
    if n_gaussian > 0:
        info["gaussian"] = n_gaussian
    return {"basis": basis, "coeffs": coeffs, "gains": gains, "names": names, "look_coeffs": look_c, "info": info}


def _gaussian_looks(look_c: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """``(n,D)`` coefficients drawn from the Gaussian of the looks ``look_c`` ``(L,D)`` (their mean
    and covariance), with a generator of its own (the other particles stay as without them)."""
    x = look_c.double().numpy()
    rng = np.random.default_rng([seed, 1])
    cov = np.cov(x.T) + 1e-9 * np.eye(x.shape[1])
    return torch.from_numpy(rng.multivariate_normal(x.mean(0), cov, size=n, method="cholesky")).float()


def _split_users(dataset: Any, split: str) -> list[str]:
    users = dataset.splits.get(split) or []
    return sorted(users)


def _declared_families(dataset: Any) -> dict[str, list[str]]:
    """The look families a looks-crowd dataset assigns to each split (``dataset.json``), or {}."""
    meta = getattr(dataset, "meta", None) or {}
    fam = meta.get("look_families") if isinstance(meta, dict) else None
    return fam if isinstance(fam, dict) else {}


def _crowd_people(dataset: Any, n_refs: int, max_users: int, quality_filter: bool) -> dict[str, Any]:
    """One crowd's training and validation people as reference lists, after the quality filters,
    and the look families it holds out (``{"train", "val", "val_is_train", "held", "filtered", "root"}``)."""
    from prefstyle.models.pps_common import references_from_judgments

    filtered: dict[str, int] = {}
    if quality_filter:
        from prefstyle.data.filters import filter_users

        before = len(dataset.users())
        dataset, report = filter_users(dataset)
        filtered = {"users": before, "kept": len(report.kept)}
    fams = _declared_families(dataset)
    train_users = _split_users(dataset, "train")[:max_users] or sorted(dataset.users())[:max_users]
    val_users = _split_users(dataset, "val")[:max_users] or train_users
    cache: dict[str, torch.Tensor] = {}
    train = [references_from_judgments(dataset, dataset.references(u, n_refs), cache, 128) for u in train_users]
    val = (
        train
        if val_users == train_users
        else [references_from_judgments(dataset, dataset.references(u, n_refs), cache, 128) for u in val_users]
    )
    return {
        "train": train,
        "val": val,
        "val_is_train": val_users == train_users,
        "held": set(fams.get("val", [])) | set(fams.get("test", [])),
        "filtered": filtered,
        "root": str(getattr(dataset, "root", "")),
    }


def _rendition_looks(model: Any, refs_by_user: Sequence[Sequence[Any]], limit: int = 1500) -> torch.Tensor:
    """Coefficients ``(M,D)`` of the looks of the distinct renditions in the training answers."""
    seen: dict[str, torch.Tensor] = {}
    for refs in refs_by_user:
        for r in refs:
            if r.source is None:
                continue
            _, sc = model.scene(r.source)
            for img in (r.preferred, r.other):
                key = f"{r.scene}/{hash(img.numpy().tobytes())}"
                if key not in seen and len(seen) < limit:
                    seen[key] = model.fit_rendition(sc, img)
    d = model.basis.shape[0]
    return torch.stack(list(seen.values())) if seen else torch.zeros(0, d)


def _gaps(
    model: Any, refs_by_user: Sequence[Sequence[Any]], progress: bool, desc: str
) -> list[tuple[torch.Tensor, int]]:
    """Per user: ``(gaps (K+Ku,N), Ku)``."""
    it: Iterable[Any] = refs_by_user
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(refs_by_user, desc=desc, unit="person")
    out = []
    for refs in it:
        gaps, uc, _, _ = model.evidence(refs)
        out.append((gaps, len(uc)))
    return out


def _log_marginal(
    model: Any,
    gaps: Sequence[tuple[torch.Tensor, int]],
    pop_log_prior: torch.Tensor,
    t: float,
    e: float,
    floor: float,
    user_mass: float,
) -> tuple[float, torch.Tensor]:
    """``Σ_u log p(answers_u)`` and the ``(U,K)`` posterior responsibilities of the shared particles."""
    k = len(model.coeffs)
    pop = pop_log_prior.exp().double()
    pop = pop / pop.sum()
    shared = ((1 - floor) * pop + floor / k).clamp_min(1e-300).log()
    total, resp = 0.0, []
    for g, ku in gaps:
        ll = model.log_likelihood(g, t, e)
        lp = shared + (math.log(1 - user_mass) if ku else 0.0)
        if ku:
            lp = torch.cat(
                [lp, torch.full((ku,), math.log(user_mass / ku) if user_mass > 0 else -1e300, dtype=torch.float64)]
            )
        joint = ll + lp
        z = torch.logsumexp(joint, 0)
        total += float(z)
        resp.append((joint[:k] - z).exp())
    return total, torch.stack(resp) if resp else torch.zeros(0, k, dtype=torch.float64)


def fit_look_taste(
    dataset: Any | Sequence[Any],
    library: Any | None = None,
    n_refs: int = 16,
    max_users: int = 150,
    temperatures: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
    lapses: Sequence[float] = (0.05, 0.1, 0.2),
    floors: Sequence[float] = (0.05, 0.2, 0.5, 1.0),
    user_masses: Sequence[float] = (0.0, 0.05, 0.2, 0.5),
    em_iters: int = 50,
    n_sliders: int = 1024,
    n_blends: int = 512,
    n_gaussian: int = 0,
    seed: int = 0,
    quality_filter: bool = True,
    max_rendition_looks: int = 1500,
    progress: bool = True,
) -> Any:
    """A fitted :class:`~prefstyle.models.look_taste.LookTasteModel` (module docstring).

    ``dataset``: one pairs dataset or several (crowds made differently, e.g. the looks crowd and
    the slider crowd): each gives up to ``max_users`` training and validation people and up to
    ``max_rendition_looks / len(datasets)`` rendition looks, and the prior is fitted on all of them.
    The library's looks of the families any looks-crowd dataset declares for validation or test
    are left out of the taste space. Train: a dataset's ``train`` split; validation: its ``val``
    split (the training people when it has none). With ``quality_filter`` the people who fail
    the PPS quality filters (:mod:`prefstyle.data.filters`: inconsistent or too fast answers) are
    left out first, as the PPS paper does before training.
    """
    from prefstyle.models.look_taste import LookTasteModel

    t0 = time.perf_counter()
    datasets = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    if not datasets:
        raise PrefstyleError("looks: no dataset to fit on")
    crowds = [_crowd_people(ds, n_refs, max_users, quality_filter) for ds in datasets]
    held = set().union(*(c["held"] for c in crowds))
    if library is not None and held:
        library = library.subset([f for f in library.families() if f not in held])
    train_refs = [r for c in crowds for r in c["train"]]
    val_refs = [r for c in crowds for r in c["val"]]
    same_people = all(c["val_is_train"] for c in crowds)

    space = build_space(library, n_sliders=n_sliders, n_blends=n_blends, seed=seed)  # the basis, for the renditions
    model = LookTasteModel.from_space(space)
    per_crowd = max(1, max_rendition_looks // len(crowds))
    extra = torch.cat([_rendition_looks(model, c["train"], per_crowd) for c in crowds])
    space = build_space(library, n_sliders=n_sliders, n_blends=n_blends, seed=seed, extra=extra, n_gaussian=n_gaussian)
    model = LookTasteModel.from_space(space)

    tr = _gaps(model, train_refs, progress, "looks: training people")
    flat = torch.zeros(len(model.coeffs))
    table: dict[str, float] = {}
    best = None
    for t in temperatures:
        for e in lapses:
            ml, _ = _log_marginal(model, tr, flat, t, e, floor=1.0, user_mass=0.1)
            table[f"T={t:g}/lapse={e:g}"] = round(ml, 2)
            if best is None or ml > best[0]:
                best = (ml, t, e)
    assert best is not None
    _, t_best, e_best = best
    pop = torch.full((len(model.coeffs),), 1.0 / len(model.coeffs), dtype=torch.float64)
    for _ in range(em_iters):  # EM for the mixing weights: π ← mean posterior responsibility
        _, resp = _log_marginal(model, tr, pop.log(), t_best, e_best, floor=0.0, user_mass=0.1)
        pop = resp.sum(0) / resp.sum().clamp_min(1e-300)
        pop = pop.clamp_min(1e-12)
    va = tr if same_people else _gaps(model, val_refs, progress, "looks: validation people")
    best2 = None
    for fl in floors:
        for um in user_masses:
            ml, _ = _log_marginal(model, va, pop.log(), t_best, e_best, fl, um)
            table[f"floor={fl:g}/user_mass={um:g}"] = round(ml, 2)
            if best2 is None or ml > best2[0]:
                best2 = (ml, fl, um)
    assert best2 is not None
    _, fl_best, um_best = best2
    model.temperature, model.lapse, model.floor, model.user_mass = (
        float(t_best),
        float(e_best),
        float(fl_best),
        float(um_best),
    )
    model.pop_log_prior = pop.log().float()
    model.clear_cache()
    model.fit_info = {
        "dataset": ", ".join(c["root"] for c in crowds),
        "train_users": len(train_refs),
        "val_users": len(val_refs),
        "crowds": [
            {"dataset": c["root"], "train_users": len(c["train"]), "val_users": len(c["val"]), "filter": c["filtered"]}
            for c in crowds
        ],
        "n_refs": n_refs,
        "space": space["info"],
        "rendition_looks": len(extra),
        "held_out_families": sorted(held),
        "population_effective_particles": round(float(1.0 / (pop**2).sum()), 1),
        "log_marginal": table,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return model


def fit_from_config(cfg: dict[str, Any], progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """``prefstyle train configs/looks.yaml``: the fit a config describes.

    ``task``: :func:`fit_look_taste`'s settings, and ``library`` (a look-library path; default the
    packaged one, ``none`` for slider edits only); ``data.path``: a pairs dataset, or a list of them
    (crowds made differently: the prior is fitted on their people together); ``out``: a folder.
    Writes ``out/looks.json`` (+ ``.safetensors``); load it with ``--model out/looks.json``.
    """
    from prefstyle.data.looks import load_looks
    from prefstyle.data.pairs import PairsDataset

    task = {k: v for k, v in dict(cfg.get("task") or {}).items() if k not in ("name", "module")}
    data = dict(cfg.get("data") or {})
    if not data.get("path"):
        raise PrefstyleError("looks: data.path (a pairs dataset folder) is required")
    lib_path = task.pop("library", None)
    library = None if isinstance(lib_path, str) and lib_path.lower() == "none" else load_looks(lib_path)
    paths = data["path"] if isinstance(data["path"], (list, tuple)) else [data["path"]]
    datasets = [PairsDataset.load(p, check_images=False) for p in paths]
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in task.items()}
    model = fit_look_taste(datasets, library, progress=progress, **kw)
    out = Path(cfg.get("out") or "runs/looks_model")
    out.mkdir(parents=True, exist_ok=True)
    path = model.save(out / "looks.json")
    return path, {
        "temperature": model.temperature,
        "lapse": model.lapse,
        "floor": model.floor,
        "user_mass": model.user_mass,
        "seconds": model.fit_info["seconds"],
        "users": model.fit_info["train_users"],
    }


register_fit_without_gradients("looks", fit_from_config)
