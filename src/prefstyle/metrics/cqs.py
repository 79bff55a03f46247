"""CQS, the comparative quality score of the PPS paper, and the preference win rate.

An evaluation pair is the user's preferred image ``I_p`` and non-preferred image ``I_n`` of the
same content. The model renders an output from each: ``Î_p`` from ``I_p`` and ``Î_n`` from
``I_n``. Four cross-distances are measured with a metric ``d`` and averaged per reference::

    d̄_p = ( d(Î_p, I_p) + d(Î_n, I_p) ) / 2        (both outputs against the preferred image)
    d̄_n = ( d(Î_p, I_n) + d(Î_n, I_n) ) / 2        (both outputs against the non-preferred one)

Scores: for a lower-is-better metric (ΔE00, LPIPS) the score is the inverse distance,
``s = 1 / d̄``; for a higher-is-better metric (PSNR, SSIM) ``d̄`` already is a similarity and
``s = d̄``. Then::

    BFS = sqrt(s_p · s_n)                  (fidelity to the pair as a whole)
    CMR = (s_p − s_n) / (s_p + s_n)        (in [-1, 1]; > 0 when closer to the preferred image)
    CQS = BFS · (1 + CMR)

Paper example (ΔE00 4.88 vs 5.71): BFS 0.189, CMR 0.078, CQS 0.204 (``tests/test_cqs.py``).

Identity reference. With ``Î_p = I_p`` and ``Î_n = I_n``, ``d̄_p = d̄_n = d(I_n, I_p) / 2`` (for
a symmetric metric), so CMR = 0 exactly and CQS = BFS. :func:`relative_cqs` divides a model's CQS
by this reference CQS.

Aggregation over many pairs (:func:`aggregate_cqs`). The sources available to us do not say how
the paper aggregates, so the default (``mode="pooled"``) is: for each user, average ``d̄_p`` and
``d̄_n`` over that user's evaluation pairs, compute the scores from these means, then average each
score (s_p, s_n, BFS, CMR, CQS) over users with equal weight per user. ``mode="per_pair"``
computes the scores for every pair and averages them (within a user, then over users). Without
user ids all pairs belong to one user.

Win rate (:func:`preference_win_rate`): the fraction of outputs (both ``Î_p`` and ``Î_n`` of
every pair) that are closer to ``I_p`` than to ``I_n`` under the metric; ties count one half.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence

import torch

from prefstyle.metrics.registry import MetricSpec, get_metric

__all__ = [
    "CQSAccumulator",
    "aggregate_cqs",
    "cqs_from_distances",
    "cqs_pair",
    "preference_win_rate",
    "relative_cqs",
    "scores_from_distances",
]

SCORE_KEYS = ("s_p", "s_n", "bfs", "cmr", "cqs")


def _score(d: float, higher_is_better: bool, which: str) -> float:
    d = float(d)
    if not math.isfinite(d):
        raise ValueError(f"d̄_{which} = {d} is not finite; CQS needs finite mean distances")
    if higher_is_better:
        if d <= 0:
            raise ValueError(f"similarity d̄_{which} = {d} must be > 0 for CQS")
        return d
    if d <= 0:
        raise ValueError(
            f"distance d̄_{which} = {d} must be > 0 for an inverse-distance score (outputs equal the reference)"
        )
    return 1.0 / d


def scores_from_distances(d_p: float, d_n: float, higher_is_better: bool) -> tuple[float, float]:
    """``(s_p, s_n)``: inverse distances for lower-is-better metrics, the similarities otherwise."""
    return _score(d_p, higher_is_better, "p"), _score(d_n, higher_is_better, "n")


def cqs_from_distances(d_p: float, d_n: float, higher_is_better: bool) -> dict[str, float]:
    """CQS from the two mean distances (or similarities) of one pair or of an aggregate.

    Returns ``{"d_p", "d_n", "s_p", "s_n", "bfs", "cmr", "cqs"}`` as floats. Raises ``ValueError``
    for a non-finite or non-positive ``d̄`` (a zero distance has no inverse).
    """
    s_p, s_n = scores_from_distances(d_p, d_n, higher_is_better)
    bfs = math.sqrt(s_p * s_n)
    cmr = (s_p - s_n) / (s_p + s_n)
    return {
        "d_p": float(d_p),
        "d_n": float(d_n),
        "s_p": s_p,
        "s_n": s_n,
        "bfs": bfs,
        "cmr": cmr,
        "cqs": bfs * (1.0 + cmr),
    }


def _batch(x: torch.Tensor) -> torch.Tensor:
    return x.unsqueeze(0) if x.ndim == 3 else x


def cqs_pair(
    out_from_p: torch.Tensor,
    out_from_n: torch.Tensor,
    i_p: torch.Tensor,
    i_n: torch.Tensor,
    metric: str | MetricSpec,
) -> dict:
    """The four cross-distances, ``d̄_p``, ``d̄_n``, the scores and the wins for a batch of pairs.

    All images ``(B, 3, H, W)`` (or ``(3, H, W)``), RGB in ``[0, 1]``; ``out_from_p`` is ``Î_p``
    (rendered from ``i_p``), ``out_from_n`` is ``Î_n``. Returns a dict of per-pair lists
    (length ``B``): ``d_pp = d(Î_p, I_p)``, ``d_np = d(Î_n, I_p)``, ``d_pn = d(Î_p, I_n)``,
    ``d_nn = d(Î_n, I_n)``, ``d_p``, ``d_n``, ``s_p``, ``s_n``, ``bfs``, ``cmr``, ``cqs``, and
    ``wins`` (0, 0.5 or 1 per output, summed over the two outputs: 0..2). A pair whose own scores
    are undefined (a zero mean distance, a non-positive similarity) gets NaN scores; its ``d_p`` and
    ``d_n`` still count in a pooled aggregate.
    """
    spec = get_metric(metric)
    d_pp, d_np, d_pn, d_nn = _cross_distances(spec, out_from_p, out_from_n, i_p, i_n)
    b = len(d_pp)
    result: dict[str, list[float]] = {"d_pp": d_pp, "d_np": d_np, "d_pn": d_pn, "d_nn": d_nn}
    for key in ("d_p", "d_n", *SCORE_KEYS, "wins"):
        result[key] = []
    for k in range(b):
        d_p, d_n = (d_pp[k] + d_np[k]) / 2, (d_pn[k] + d_nn[k]) / 2
        try:
            r = cqs_from_distances(d_p, d_n, spec.higher_is_better)
        except ValueError:  # e.g. both outputs equal I_p exactly: no inverse distance for this pair alone
            r = {"d_p": d_p, "d_n": d_n, **dict.fromkeys(SCORE_KEYS, math.nan)}
        for key in ("d_p", "d_n", *SCORE_KEYS):
            result[key].append(r[key])
        wins = _closer_to_p(d_pp[k], d_pn[k], spec.higher_is_better) + _closer_to_p(
            d_np[k], d_nn[k], spec.higher_is_better
        )
        result["wins"].append(wins)
    return result


def _cross_distances(
    spec: MetricSpec, out_p: torch.Tensor, out_n: torch.Tensor, i_p: torch.Tensor, i_n: torch.Tensor
) -> list[list[float]]:
    """``[d(Î_p, I_p), d(Î_n, I_p), d(Î_p, I_n), d(Î_n, I_n)]``, each a list over the batch (one metric call)."""
    out_p, out_n, i_p, i_n = (_batch(x) for x in (out_p, out_n, i_p, i_n))
    if not (out_n.shape == i_p.shape == i_n.shape == out_p.shape):
        raise ValueError("out_from_p, out_from_n, i_p and i_n must have the same shape")
    with torch.no_grad():
        d = spec(torch.cat([out_p, out_n, out_p, out_n]), torch.cat([i_p, i_p, i_n, i_n]))
    return d.detach().double().cpu().view(4, out_p.shape[0]).tolist()


def _closer_to_p(to_p: float, to_n: float, higher_is_better: bool) -> float:
    if to_p == to_n:
        return 0.5
    return float((to_p > to_n) if higher_is_better else (to_p < to_n))


def preference_win_rate(to_p: Sequence[float], to_n: Sequence[float], higher_is_better: bool) -> float:
    """Fraction of outputs closer to ``I_p`` than to ``I_n``; ``to_p[i]``/``to_n[i]`` are output i's
    distances (or similarities) to the preferred / non-preferred image. Ties count 1/2."""
    if len(to_p) != len(to_n):
        raise ValueError("to_p and to_n must have the same length")
    if not len(to_p):
        raise ValueError("no outputs to compare")
    return sum(_closer_to_p(a, b, higher_is_better) for a, b in zip(to_p, to_n, strict=True)) / len(to_p)


def relative_cqs(cqs: float, cqs_identity: float) -> float:
    """CQS relative to the identity reference (outputs = inputs): ``cqs / cqs_identity``."""
    if not cqs_identity > 0:
        raise ValueError(f"identity CQS must be > 0, got {cqs_identity}")
    return cqs / cqs_identity


def aggregate_cqs(
    d_p: Sequence[float],
    d_n: Sequence[float],
    higher_is_better: bool,
    users: Sequence[Hashable] | None = None,
    mode: str = "pooled",
) -> dict:
    """CQS over many evaluation pairs; see the module docstring for the two modes.

    Returns the user-averaged ``s_p, s_n, bfs, cmr, cqs`` plus ``d_p``/``d_n`` (user-averaged means),
    ``n_pairs``, ``n_users`` and ``per_user`` (the same keys for every user).
    """
    if len(d_p) != len(d_n) or (users is not None and len(users) != len(d_p)):
        raise ValueError("d_p, d_n (and users) must have the same length")
    if not len(d_p):
        raise ValueError("no evaluation pairs")
    if mode not in ("pooled", "per_pair"):
        raise ValueError(f"mode must be 'pooled' or 'per_pair', got {mode!r}")
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i in range(len(d_p)):
        groups[users[i] if users is not None else None].append(i)
    per_user: dict[Hashable, dict[str, float]] = {}
    for user, idx in groups.items():
        mp = sum(d_p[i] for i in idx) / len(idx)
        mn = sum(d_n[i] for i in idx) / len(idx)
        if mode == "pooled":
            r = cqs_from_distances(mp, mn, higher_is_better)
        else:
            rs = [cqs_from_distances(d_p[i], d_n[i], higher_is_better) for i in idx]
            r = {k: sum(x[k] for x in rs) / len(rs) for k in SCORE_KEYS}
            r["d_p"], r["d_n"] = mp, mn
        r["n_pairs"] = len(idx)
        per_user[user] = r
    out = {k: sum(r[k] for r in per_user.values()) / len(per_user) for k in ("d_p", "d_n", *SCORE_KEYS)}
    out.update(n_pairs=len(d_p), n_users=len(per_user), mode=mode, per_user=per_user)
    return out


class CQSAccumulator:
    """Collects evaluation pairs for one metric and reports CQS, the identity reference and the win rate.

    >>> acc = CQSAccumulator("delta_e00")                                  # doctest: +SKIP
    >>> acc.update(out_from_p, out_from_n, i_p, i_n, users=["u1"] * B)     # doctest: +SKIP
    >>> acc.compute()["cqs"]                                               # doctest: +SKIP

    For every pair it also measures ``d(I_p, I_n)`` to score the identity model
    (``Î_p = I_p``, ``Î_n = I_n``), whose CQS is the denominator of ``cqs_rel``.
    """

    def __init__(self, metric: str | MetricSpec, mode: str = "pooled"):
        self.spec = get_metric(metric)
        self.mode = mode
        self.reset()

    def reset(self) -> None:
        self.d_p: list[float] = []
        self.d_n: list[float] = []
        self.id_d_p: list[float] = []
        self.id_d_n: list[float] = []
        self.users: list[Hashable] = []
        self.wins = 0.0
        self.n_outputs = 0

    def update(
        self,
        out_from_p: torch.Tensor,
        out_from_n: torch.Tensor,
        i_p: torch.Tensor,
        i_n: torch.Tensor,
        users: Sequence[Hashable] | None = None,
    ) -> dict:
        """Add a batch of pairs; returns :func:`cqs_pair`'s per-pair dict for that batch."""
        r = cqs_pair(out_from_p, out_from_n, i_p, i_n, self.spec)
        b = len(r["d_p"])
        if users is not None and len(users) != b:
            raise ValueError(f"got {len(users)} user ids for {b} pairs")
        # the identity model's outputs are its inputs: Î_p = I_p, Î_n = I_n
        i_pp, i_np, i_pn, i_nn = _cross_distances(self.spec, i_p, i_n, i_p, i_n)
        for k in range(b):
            self.id_d_p.append((i_pp[k] + i_np[k]) / 2)
            self.id_d_n.append((i_pn[k] + i_nn[k]) / 2)
        self.d_p += r["d_p"]
        self.d_n += r["d_n"]
        self.users += list(users) if users is not None else [None] * b
        self.wins += sum(r["wins"])
        self.n_outputs += 2 * b
        return r

    def compute(self) -> dict:
        """Aggregated CQS (see :func:`aggregate_cqs`) plus ``cqs_identity``, ``cqs_rel``, ``win_rate``."""
        users = self.users if any(u is not None for u in self.users) else None
        out = aggregate_cqs(self.d_p, self.d_n, self.spec.higher_is_better, users=users, mode=self.mode)
        ident = aggregate_cqs(self.id_d_p, self.id_d_n, self.spec.higher_is_better, users=users, mode=self.mode)
        out["metric"] = self.spec.name
        out["cqs_identity"] = ident["cqs"]
        out["cqs_rel"] = relative_cqs(out["cqs"], ident["cqs"])
        out["win_rate"] = self.wins / self.n_outputs
        return out
