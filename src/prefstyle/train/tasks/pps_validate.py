"""The PPS protocol in small (CQS on ΔE00, win rate, distance to the true ideal on simulated
data) for the trainer's periodic validation of the PPS models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from prefstyle.metrics.functional import delta_e00
from prefstyle.models.pps.references import references_from_judgments

if TYPE_CHECKING:
    from prefstyle.data.crowd import SimulatedUser
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.models.base import PersonalizationModel, Profile, Reference

__all__ = ["load_truth", "validate_personalization"]


def validate_personalization(
    model: PersonalizationModel,
    dataset: PairsDataset,
    users: Sequence[str],
    n_refs: int = 16,
    n_evals: int = 8,
    seed: int = 0,
    max_side: int = 128,
    ground_truth: Mapping[str, SimulatedUser] | None = None,
    cache: dict[str, torch.Tensor] | None = None,
    without_refs: bool = False,
    eval_scenes: Collection[str] | None = None,
) -> dict[str, float]:
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

    cache = {} if cache is None else cache
    tally = _Tally()
    for user in users:
        refs_j, evals_j = dataset.split_user_judgments(user, n_refs, n_evals, seed=seed, eval_scenes=eval_scenes)
        if not evals_j:
            continue
        refs = references_from_judgments(dataset, refs_j, cache, max_side)
        evals = references_from_judgments(dataset, evals_j, cache, max_side)
        t0 = time.perf_counter()
        profile = model.personalize(refs, user)
        tally.seconds += time.perf_counter() - t0
        with torch.no_grad():
            dps, dns, wins = _pair_distances(model, profile, evals)
            tally.wins += wins
            idp = [float(delta_e00(n, p)[0]) / 2 for p, n in _pairs(evals)]
            truth = ground_truth.get(user) if ground_truth else None
            if truth is not None:
                for r in evals:
                    if r.source is None:
                        continue
                    x = r.source[None]
                    ideal = truth.ideal(x).clamp(0, 1)
                    tally.ideal_m.append(float(delta_e00(model.render(x, profile).clamp(0, 1), ideal)[0]))
                    tally.ideal_i.append(float(delta_e00(x, ideal)[0]))
            if without_refs:  # the same outputs without the user's references: what personalization adds
                tally.rows["norefs"].append(_norefs_row(model, user, evals, truth, tally.nr_ideal))
        dp, dn = sum(dps) / len(dps), sum(dns) / len(dns)
        d_id = max(sum(idp) / len(idp), 1e-6)
        tally.rows["model"].append(cqs_from_distances(max(dp, 1e-6), max(dn, 1e-6), False))
        tally.rows["inputs"].append(cqs_from_distances(d_id, d_id, False))
    return tally.summary()


@dataclass
class _Tally:
    """What :func:`validate_personalization` collects over users: CQS rows per user (``model``, the
    ``inputs`` themselves, ``norefs``), per-pair wins, distances to the ideal, personalization time."""

    rows: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {"model": [], "inputs": [], "norefs": []})
    wins: list[float] = field(default_factory=list)
    ideal_m: list[float] = field(default_factory=list)
    ideal_i: list[float] = field(default_factory=list)
    nr_ideal: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        """The flat dict of means over users ({} when no user had evaluation pairs)."""
        rows = self.rows
        if not rows["model"]:
            return {}
        out: dict[str, float] = {}
        for key in ("d_p", "d_n", "cqs", "cmr", "bfs"):
            out[key] = float(np.mean([r[key] for r in rows["model"]]))
        out["d_p_identity"] = float(np.mean([r["d_p"] for r in rows["inputs"]]))
        out["cqs_identity"] = float(np.mean([r["cqs"] for r in rows["inputs"]]))
        out["cqs_rel"] = out["cqs"] / out["cqs_identity"] if out["cqs_identity"] > 0 else float("nan")
        out["win_rate"] = float(np.mean(self.wins)) if self.wins else float("nan")
        out["users"] = float(len(rows["model"]))
        out["personalize_s"] = self.seconds / len(rows["model"])
        if self.ideal_m:
            out["ideal_de"] = float(np.mean(self.ideal_m))
            out["ideal_de_identity"] = float(np.mean(self.ideal_i))
        if rows["norefs"]:
            for key in ("d_p", "d_n", "cqs", "cmr"):
                out[f"{key}_norefs"] = float(np.mean([r[key] for r in rows["norefs"]]))
            if self.nr_ideal:
                out["ideal_de_norefs"] = float(np.mean(self.nr_ideal))
        return out


def _pairs(evals: Sequence[Reference]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(I_p, I_n)`` of each pair as ``(1,3,H,W)``, ``I_n`` resized to ``I_p``'s size where they differ."""
    for r in evals:
        p, n = r.preferred[None], r.other[None]
        if n.shape != p.shape:
            n = F.interpolate(n, size=p.shape[-2:], mode="area")
        yield p, n


def _pair_distances(
    model: PersonalizationModel, profile: Profile, evals: Sequence[Reference]
) -> tuple[list[float], list[float], list[float]]:
    """Per pair, the mean ΔE00 of the two outputs to ``I_p`` and to ``I_n``; per output, a win
    (closer to ``I_p``: 1, a tie: 1/2)."""
    dps, dns, wins = [], [], []
    for p, n in _pairs(evals):
        rendered = model.render(torch.cat([p, n]), profile).clamp(0, 1)
        to_p = delta_e00(rendered, torch.cat([p, p]))
        to_n = delta_e00(rendered, torch.cat([n, n]))
        dps.append(float(to_p.mean()))
        dns.append(float(to_n.mean()))
        wins += [float(a < b) + 0.5 * float(a == b) for a, b in zip(to_p.tolist(), to_n.tolist())]
    return dps, dns, wins


def _norefs_row(
    model: PersonalizationModel,
    user: str,
    evals: Sequence[Reference],
    truth: SimulatedUser | None,
    nr_ideal: list[float],
) -> dict[str, float]:
    """CQS of the profile made from no references on the same pairs (appends its distances to the
    ideal to ``nr_ideal``)."""
    from prefstyle.metrics.cqs import cqs_from_distances

    empty = model.personalize([], user)
    nr_p: list[float] = []
    nr_n: list[float] = []
    for r, (p, n) in zip(evals, _pairs(evals)):
        rendered = model.render(torch.cat([p, n]), empty).clamp(0, 1)
        nr_p.append(float(delta_e00(rendered, torch.cat([p, p])).mean()))
        nr_n.append(float(delta_e00(rendered, torch.cat([n, n])).mean()))
        if truth is not None and r.source is not None:
            x = r.source[None]
            nr_ideal.append(float(delta_e00(model.render(x, empty).clamp(0, 1), truth.ideal(x).clamp(0, 1))[0]))
    return cqs_from_distances(max(sum(nr_p) / len(evals), 1e-6), max(sum(nr_n) / len(evals), 1e-6), False)


def load_truth(dataset: PairsDataset) -> dict[str, SimulatedUser] | None:
    """``{user: SimulatedUser}`` when the dataset is simulated (has ``ground_truth.json``) and its
    ground truth explains the recorded answers (:mod:`prefstyle.data.truth_check`), else None (with
    a logged warning in the second case: validation then leaves out the distances to the ideal)."""
    from prefstyle.data.simulate import GROUND_TRUTH_FILE, load_ground_truth
    from prefstyle.data.truth_check import ground_truth_fit

    root = Path(getattr(dataset, "root", "."))
    if not (root / GROUND_TRUTH_FILE).is_file():
        return None
    truth = load_ground_truth(root)
    fit = ground_truth_fit(root, dataset=dataset, truth=truth)
    if not fit.explains:
        logging.getLogger(__name__).warning("%s: validation leaves out the distances to the ideal", fit.message(root))
        return None
    return truth
