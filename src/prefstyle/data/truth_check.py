"""Does a simulated crowd's ground truth still explain its recorded answers?

A simulated dataset stores its people (``ground_truth.json``) and their answers
(``judgments.jsonl``); evaluation recomputes each person's ideal from the ground truth with
*today's* generator code. If the generator changed since the crowd was made, the recomputed ideals
are not the ones the people answered with, and every "ΔE00 to the ideal" is scored against a
taste nobody in the crowd had. It happened once (the looks crowd's levels stretch, see
:func:`prefstyle.data.looks_crowd.crowd_settings`), silently.

:func:`ground_truth_fit` re-asks each sampled answer of the crowd's own choice model: the ideal of
the scene's source thumbnail, the seen distances of both renditions, the person's probability of
the recorded choice. Under the model that made the answers, the log-likelihood of the recorded
choices has a known mean and variance (each answer a Bernoulli draw), so their standardized
difference ``z`` is about N(0, 1); a changed generator makes the recorded choices less likely
than the model expects, and ``z`` falls far below zero (tens of units for the levels stretch).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from prefstyle.errors import PrefstyleError

__all__ = ["Z_LIMIT", "TruthFit", "ground_truth_fit", "require_explained"]

#: ``z`` below this says the ground truth does not explain the answers (a chance of about 3e-7
#: for a crowd whose generator is unchanged)
Z_LIMIT = -5.0


@dataclass(frozen=True)
class TruthFit:
    """The result of :func:`ground_truth_fit`.

    n: answers re-asked; z: standardized log-likelihood of the recorded choices (about N(0, 1)
    when the ground truth made them); agreement: share of recorded choices of the rendition
    nearer the recomputed ideal; expected_agreement: the share the choice model expects.
    """

    n: int
    z: float
    agreement: float
    expected_agreement: float
    made_by: dict[str, Any] | None = None

    @property
    def explains(self) -> bool:
        return self.n == 0 or self.z >= Z_LIMIT

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "explains": self.explains}

    def message(self, root: str | Path) -> str:
        """One line for a log or an error: ``ground_truth.json: `` and :meth:`summary`."""
        return f"{Path(root) / 'ground_truth.json'}: {self.summary()}"

    def summary(self) -> str:
        """The verdict and its numbers, naming the code that made the crowd when it failed."""
        verdict = "explains" if self.explains else "does NOT explain"
        text = (
            f"the ground truth {verdict} the recorded answers (z = {self.z:.1f} over {self.n} answers; "
            f"{100 * self.agreement:.1f} % chose the rendition nearer the recomputed ideal, "
            f"{100 * self.expected_agreement:.1f} % expected)"
        )
        if not self.explains:
            from prefstyle.provenance import made_by

            then, now = self.made_by or {}, made_by()
            text += (
                f"; made by prefstyle {then.get('prefstyle', '?')} at commit {then.get('commit') or 'unrecorded'}, "
                f"this is {now['prefstyle']} at {now['commit'] or 'an unknown commit'}"
            )
        return text


def ground_truth_fit(
    root: str | Path,
    max_answers: int = 400,
    seed: int = 0,
    dataset: Any = None,
    truth: dict[str, Any] | None = None,
) -> TruthFit:
    """Re-ask up to ``max_answers`` main answers of the simulated dataset at ``root`` (spread over
    its people by a seeded draw) with its ground truth; see the module docstring. Reads the stored
    images, thumbnailed as the simulator did (area average to the crowd's ``thumb`` pixels).
    ``dataset`` (a :class:`~prefstyle.data.pairs.PairsDataset` of ``root``) and ``truth`` (its
    :func:`~prefstyle.data.simulate.load_ground_truth`) save reading them again.
    Raises :class:`~prefstyle.errors.PrefstyleError` when ``root`` has no ground truth."""
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.data.simulate import GROUND_TRUTH_FILE, load_ground_truth
    from prefstyle.imaging.io import load_image

    root = Path(root)
    truth = load_ground_truth(root) if truth is None else truth
    try:
        doc = json.loads((root / GROUND_TRUTH_FILE).read_text())
        thumb = int(doc["config"]["thumb"])
    except (KeyError, TypeError, ValueError):
        raise PrefstyleError("no config.thumb in the ground truth", path=root / GROUND_TRUTH_FILE) from None
    stamp = doc.get("made_by") if isinstance(doc.get("made_by"), dict) else None
    ds = PairsDataset.load(root, check_images=False) if dataset is None else dataset
    sources = {sid: sc.source for sid, sc in ds.scenes.items() if sc.source}
    answers = [j for j in ds.judgments if j.kind == "main" and j.user in truth and j.scene in sources]
    if not answers:
        return TruthFit(0, 0.0, 0.0, 0.0, stamp)
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(answers), size=min(max_answers, len(answers)), replace=False).tolist())
    cache: dict[str, torch.Tensor] = {}

    def small(rel: str) -> torch.Tensor:
        if rel not in cache:
            img = load_image(ds.image_path(rel))
            cache[rel] = F.interpolate(img, size=(thumb, thumb), mode="area") if img.shape[-1] != thumb else img
        return cache[rel]

    ll, mean, var, agree, expect = [], [], [], [], []
    with torch.no_grad():
        for i in pick:
            j = answers[i]
            user = truth[j.user]
            ideal = user.ideal(small(sources[j.scene]))
            d = user.seen_distance(torch.cat([small(j.image_a), small(j.image_b)]), ideal.expand(2, -1, -1, -1))
            p_a = float(user.person.prob_a(d[:1], d[1:])[0])
            p_a = min(max(p_a, 1e-9), 1 - 1e-9)
            chose_a = j.preferred == "a"
            la, lb = math.log(p_a), math.log(1 - p_a)
            ll.append(la if chose_a else lb)
            mean.append(p_a * la + (1 - p_a) * lb)
            var.append(p_a * (1 - p_a) * (la - lb) ** 2)
            a_nearer = float(d[0]) < float(d[1])
            agree.append(chose_a == a_nearer)
            expect.append(p_a if a_nearer else 1 - p_a)
    sd = math.sqrt(sum(var)) or 1.0
    return TruthFit(
        n=len(ll),
        z=(sum(ll) - sum(mean)) / sd,
        agreement=float(np.mean(agree)),
        expected_agreement=float(np.mean(expect)),
        made_by=stamp,
    )


def require_explained(root: str | Path, dataset: Any = None, truth: dict[str, Any] | None = None) -> TruthFit:
    """:func:`ground_truth_fit`, raising :class:`~prefstyle.errors.PrefstyleError` (one line, naming
    the ground-truth file) when the ground truth does not explain the answers; for scripts that
    score against the recomputed ideals."""
    fit = ground_truth_fit(root, dataset=dataset, truth=truth)
    if not fit.explains:
        raise PrefstyleError(
            fit.message(root) + ": scores against its ideals would be meaningless (made by another version of the "
            "generator? simulate it again)"
        )
    return fit
