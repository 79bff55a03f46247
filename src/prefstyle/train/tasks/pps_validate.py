"""The PPS protocol in small (CQS on ΔE00, win rate, distance to the true ideal on simulated
data) for the trainer's periodic validation of the PPS models.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from prefstyle.models.pps.references import references_from_judgments

__all__ = ["load_truth", "validate_personalization"]


def validate_personalization(model: Any, dataset: Any, users: Sequence[str], n_refs: int = 16, n_evals: int = 8,
                             seed: int = 0, max_side: int = 128, ground_truth: Mapping[str, Any] | None = None,
                             cache: dict[str, torch.Tensor] | None = None, without_refs: bool = False,
                             eval_scenes: Collection[str] | None = None) -> dict[str, float]:
    """The PPS protocol in small, for periodic validation during training.

    For each user: personalize ``model`` (a :class:`~prefstyle.models.base.PersonalizationModel`)
    on ``n_refs`` main judgments, render both images of ``n_evals`` held-out pairs (scenes
    disjoint from the references), and pool ΔE00 per user as the evaluation protocol does
    (``d̄_p``, ``d̄_n`` -> CQS, CMR, BFS; then the mean over users); the same for the identity
    (the inputs themselves). With ``ground_truth`` (``{user: SimulatedUser}``), also the mean
    ΔE00 between the rendered neutral source and the user's true ideal (``ideal_de``) and the
    identity's (``ideal_de_identity``). With ``without_refs``, the same for profiles made from no
    references (``*_norefs``: the population model; the difference is what the references add).
    Images are used with their longer side <= ``max_side``. ``eval_scenes``: score only pairs
    on these scenes (references from the others). Returns a flat dict of floats.
    """
    from prefstyle.metrics.cqs import cqs_from_distances
    from prefstyle.metrics.functional import delta_e00

    cache = {} if cache is None else cache
    rows: dict[str, list[dict[str, float]]] = {"model": [], "inputs": [], "norefs": []}
    nr_p: list[float] = []
    nr_n: list[float] = []
    nr_ideal: list[float] = []
    ideal_m: list[float] = []
    ideal_i: list[float] = []
    wins: list[float] = []
    seconds = 0.0
    for user in users:
        refs_j, evals_j = dataset.split_user_judgments(user, n_refs, n_evals, seed=seed, eval_scenes=eval_scenes)
        if not evals_j:
            continue
        refs = references_from_judgments(dataset, refs_j, cache, max_side)
        evals = references_from_judgments(dataset, evals_j, cache, max_side)
        t0 = time.perf_counter()
        profile = model.personalize(refs, user)
        seconds += time.perf_counter() - t0
        dps, dns, idp = [], [], []
        with torch.no_grad():
            for r in evals:
                p, n = r.preferred[None], r.other[None]
                if n.shape != p.shape:
                    n = F.interpolate(n, size=p.shape[-2:], mode="area")
                rendered = model.render(torch.cat([p, n]), profile).clamp(0, 1)
                to_p = delta_e00(rendered, torch.cat([p, p]))
                to_n = delta_e00(rendered, torch.cat([n, n]))
                dps.append(float(to_p.mean()))
                dns.append(float(to_n.mean()))
                wins += [float(a < b) + 0.5 * float(a == b) for a, b in zip(to_p.tolist(), to_n.tolist())]
                idp.append(float(delta_e00(n, p)[0]) / 2)
            truth = ground_truth.get(user) if ground_truth else None
            if truth is not None:
                for r in evals:
                    if r.source is None:
                        continue
                    x = r.source[None]
                    ideal = truth.ideal(x).clamp(0, 1)
                    ideal_m.append(float(delta_e00(model.render(x, profile).clamp(0, 1), ideal)[0]))
                    ideal_i.append(float(delta_e00(x, ideal)[0]))
            if without_refs:  # the same outputs without the user's references: what personalization adds
                empty = model.personalize([], user)
                for r in evals:
                    p, n = r.preferred[None], r.other[None]
                    if n.shape != p.shape:
                        n = F.interpolate(n, size=p.shape[-2:], mode="area")
                    rendered = model.render(torch.cat([p, n]), empty).clamp(0, 1)
                    nr_p.append(float(delta_e00(rendered, torch.cat([p, p])).mean()))
                    nr_n.append(float(delta_e00(rendered, torch.cat([n, n])).mean()))
                    if truth is not None and r.source is not None:
                        x = r.source[None]
                        nr_ideal.append(float(delta_e00(model.render(x, empty).clamp(0, 1), truth.ideal(x).clamp(0, 1))[0]))
                rows["norefs"].append(cqs_from_distances(max(sum(nr_p[-len(evals):]) / len(evals), 1e-6),
                                                         max(sum(nr_n[-len(evals):]) / len(evals), 1e-6), False))
        dp, dn = sum(dps) / len(dps), sum(dns) / len(dns)
        d_id = max(sum(idp) / len(idp), 1e-6)
        rows["model"].append(cqs_from_distances(max(dp, 1e-6), max(dn, 1e-6), False))
        rows["inputs"].append(cqs_from_distances(d_id, d_id, False))
    if not rows["model"]:
        return {}
    out: dict[str, float] = {}
    for key in ("d_p", "d_n", "cqs", "cmr", "bfs"):
        out[key] = float(np.mean([r[key] for r in rows["model"]]))
    out["d_p_identity"] = float(np.mean([r["d_p"] for r in rows["inputs"]]))
    out["cqs_identity"] = float(np.mean([r["cqs"] for r in rows["inputs"]]))
    out["cqs_rel"] = out["cqs"] / out["cqs_identity"] if out["cqs_identity"] > 0 else float("nan")
    out["win_rate"] = float(np.mean(wins)) if wins else float("nan")
    out["users"] = float(len(rows["model"]))
    out["personalize_s"] = seconds / len(rows["model"])
    if ideal_m:
        out["ideal_de"] = float(np.mean(ideal_m))
        out["ideal_de_identity"] = float(np.mean(ideal_i))
    if rows["norefs"]:
        for key in ("d_p", "d_n", "cqs", "cmr"):
            out[f"{key}_norefs"] = float(np.mean([r[key] for r in rows["norefs"]]))
        if nr_ideal:
            out["ideal_de_norefs"] = float(np.mean(nr_ideal))
    return out


def load_truth(dataset: Any) -> dict[str, Any] | None:
    """``{user: SimulatedUser}`` when the dataset is simulated (has ``ground_truth.json``), else None."""
    from prefstyle.data.simulate import GROUND_TRUTH_FILE, load_ground_truth

    root = Path(getattr(dataset, "root", "."))
    if not (root / GROUND_TRUTH_FILE).is_file():
        return None
    return load_ground_truth(root)
