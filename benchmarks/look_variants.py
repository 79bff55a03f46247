"""Variants of the packaged LookTaste model for testing hypotheses about its remaining gaps (issue 18).

Nothing here is shipped: each variant changes one thing, and ``prefstyle evaluate`` scores it beside
the packaged model on the same people and answers (docs/BENCHMARKS.md, "Fifteenth session").

    # checkpoint variants (then: prefstyle evaluate DATASET -m looks -m OUT/NAME.json ...)
    python benchmarks/look_variants.py make runs/looks_dev --out runs/s15/variants
    # variants of the code (the prefstyle CLI with one method replaced), e.g.
    python benchmarks/look_variants.py cli mean-decision evaluate runs/sim -m looks ...
    # the log evidence of each validation person's answers under `looks` and `sliders`
    python benchmarks/look_variants.py evidence runs/sim --no-quality-filter

``make`` writes:

* ``shift_true_{0.5,0.9}``: every particle moved by the crowd's own shared correction (read from its
  ``ground_truth.json``, at scale 0.5 / 0.9, projected on the basis): an upper bound on what a
  learned population-wide offset could give;
* ``sliders_only``: the space cut to the identity and the 1,024 slider edits (the looks diluting
  the slider edits on the slider crowd?);
* ``rend3`` / ``rend10``: the prior's floor tilted 3× / 10× toward the looks of the study's
  renditions (the test families' looks reach the space only as renditions).

``cli`` runs the prefstyle command line with one change:

* ``mean-decision``: the profile renders the posterior-mean look (2,048 heaviest particles) instead
  of the Bayes action;
* ``decision-16``: the Bayes action's expected loss over 16 of the answered photos instead of 8;
* ``prior-fit``: each rendition's look is fitted with a Gaussian prior from the library looks'
  coefficients (``LAM`` in the environment: its weight per sample colour, default 0.01) instead of
  a small ridge, so colours the scene lacks follow how real looks co-vary (use with ``train``);
* ``ensemble``: a model ``ens`` that renders the average of `looks` and `sliders`, weighted by each
  person's posterior model probabilities from their answers (prior 1/2 each).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from prefstyle.models.loading import load  # noqa: E402

#: particle groups of the packaged space, in the order build_space stacks them
GROUPS = ("identity", "sliders", "looks_half", "looks", "blends", "look_slider", "renditions")


def groups(m: Any) -> dict[str, slice]:
    """Index ranges of the particle groups of a model built by ``look_fit.build_space``."""
    info = m.fit_info["space"]
    nl, ns = len(m.look_coeffs), int(info["sliders"])
    nb = 512
    sizes = [1, ns, nl, nl, nb, nb]
    sizes.append(len(m.coeffs) - sum(sizes))
    out, start = {}, 0
    for name, n in zip(GROUPS, sizes):
        out[name] = slice(start, start + n)
        start += n
    return out


def make(dataset: Path, out: Path) -> None:
    from prefstyle.data.looks_crowd import scaled_correction
    from prefstyle.imaging.lut import identity_lut
    from prefstyle.imaging.params import RetouchParams
    from prefstyle.imaging.pipeline import apply_retouch_vector
    from prefstyle.models.look_fit import SPACE_LUT_SIZE
    from prefstyle.models.look_space import project

    out.mkdir(parents=True, exist_ok=True)
    truth = json.loads((dataset / "ground_truth.json").read_text())
    corr = RetouchParams.from_dict(truth["population"]["correction"])
    s = SPACE_LUT_SIZE
    grid = identity_lut(s).reshape(1, 3, s, s * s)
    for scale in (0.5, 0.9):
        vec = scaled_correction(corr, scale).to_vector()[None]
        disp = apply_retouch_vector(grid, vec, exact=True).clamp(0, 1).reshape(1, 3, s, s, s) - identity_lut(s)[None]
        m = load("looks")
        m.coeffs = m.coeffs + project(disp, m.basis)[0][None]
        m.save(out / f"shift_true_{scale}.json")

    m = load("looks")
    g = groups(m)
    n = g["sliders"].stop
    m._set_space(m.basis, m.coeffs[:n], m.gains[:n], m.pop_log_prior[:n], m.look_names, m.look_coeffs)
    m.save(out / "sliders_only.json")

    for tilt in (3.0, 10.0):
        m = load("looks")
        pop = m.pop_log_prior.exp().double()
        pop /= pop.sum()
        u = torch.ones(len(pop), dtype=torch.float64)
        u[g["renditions"]] *= tilt
        mix = (1 - m.floor) * pop + m.floor * u / u.sum()
        m.pop_log_prior, m.floor = mix.log().float(), 0.0
        m.save(out / f"rend{tilt:g}.json")
        print(f"rend{tilt:g}: prior mass per group", {k: round(float(mix[sl].sum()), 3) for k, sl in g.items()})
    print(f"wrote the variants to {out}")


def evidence(dataset: Path, quality_filter: bool) -> None:
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.models.look_fit import _crowd_people

    lk, sl = load("looks"), load("sliders")
    people = _crowd_people(PairsDataset.load(dataset, check_images=False), 16, 100, quality_filter)["val"]
    diffs, mass = [], dict.fromkeys(GROUPS, 0.0)
    g = groups(lk)
    with torch.no_grad():
        for refs in people:
            gaps, _, _, lp = lk.evidence(refs)
            joint = lk.log_likelihood(gaps) + lp.double()
            w = torch.softmax(joint, 0)
            for k, s in g.items():
                mass[k] += float(w[s].sum()) / len(people)
            gs = sl.distance_gaps(refs)
            es = float(torch.logsumexp(sl.log_likelihood(gs).double(), 0)) - math.log(len(gs))
            diffs.append(float(torch.logsumexp(joint, 0)) - es)
    t = torch.tensor(diffs)
    prior = torch.softmax(lk.log_prior().double(), 0)
    print(f"{dataset}: {len(diffs)} validation people")
    print(
        f"  log evidence, looks - sliders: mean {float(t.mean()):.2f}, median {float(t.median()):.2f}, "
        f"share > 0: {float((t > 0).double().mean()):.2f}"
    )
    for k, s in g.items():
        print(f"  {k:12s} prior mass {float(prior[s].sum()):.3f}, mean posterior mass {mass[k]:.3f}")


def patch(variant: str) -> None:
    import prefstyle.models.look_taste as lt

    if variant == "mean-decision":

        def decide(self, w, coeffs, gains, scenes):  # type: ignore[no-untyped-def]
            top = torch.argsort(w, descending=True)[:2048]
            wt = w[top] / w[top].sum()
            return (wt[:, None] * coeffs[top]).sum(0), float((wt * gains[top]).sum()), float("nan")

        lt.LookTasteModel.decide = decide  # type: ignore[method-assign]
    elif variant == "decision-16":
        lt.DECISION_SCENES = 16
    elif variant == "prior-fit":
        lam = float(os.environ.get("LAM", "0.01"))

        def fit_rendition(self, sc, rendition, ridge=1e-3):  # type: ignore[no-untyped-def]
            lc = self.look_coeffs.double()
            cov = torch.cov(lc.T) + 1e-6 * torch.eye(lc.shape[1], dtype=torch.float64)
            prec = torch.linalg.inv(cov) * (torch.trace(cov) / lc.shape[1])
            x = sc.fit_colours.reshape(3, -1)
            y = lt.sample_colours(rendition, lt.FIT_SIDE, lt.FIT_STEP).reshape(3, -1)
            a = lt.sample_tables(self.basis, x, self._nodes).reshape(self.basis.shape[0], -1).double()
            n = a.shape[1]
            rhs = a @ (y - x).reshape(-1).double() + lam * n * (prec @ lc.mean(0))
            return torch.linalg.solve(a @ a.T + lam * n * prec, rhs).float()

        lt.LookTasteModel.fit_rendition = fit_rendition  # type: ignore[method-assign]
    elif variant == "ensemble":
        from prefstyle.models.base import PersonalizationModel, Profile, register_model

        @register_model("ens")
        class Ensemble(PersonalizationModel):
            name = "ens"

            def __init__(self) -> None:
                self.lk, self.sl = load("looks"), load("sliders")

            def personalize(self, refs, user=None):  # type: ignore[no-untyped-def]
                with torch.no_grad():
                    gaps, _, _, lp = self.lk.evidence(refs)
                    el = float(torch.logsumexp(self.lk.log_likelihood(gaps) + lp.double(), 0))
                    gs = self.sl.distance_gaps(refs)
                    es = float(torch.logsumexp(self.sl.log_likelihood(gs).double(), 0)) - math.log(len(gs))
                w = 1.0 / (1.0 + math.exp(es - el))
                a, b = self.lk.personalize(refs), self.sl.personalize(refs)
                return Profile(model="ens", user=user, data={"w": w, "a": a, "b": b})

            def render(self, img, profile):  # type: ignore[no-untyped-def]
                d = profile.data
                mix = d["w"] * self.lk.render(img, d["a"]) + (1 - d["w"]) * self.sl.render(img, d["b"])
                return mix.clamp(0, 1)

    else:
        raise SystemExit(f"unknown variant {variant!r}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "cli":
        patch(sys.argv[2])
        from prefstyle.cli import main as cli_main

        sys.argv = ["prefstyle", *sys.argv[3:]]
        sys.exit(cli_main())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="write the checkpoint variants")
    mk.add_argument("dataset", type=Path, help="a looks crowd (its ground_truth.json gives the shared correction)")
    mk.add_argument("--out", type=Path, required=True)
    ev = sub.add_parser("evidence", help="log evidence and posterior mass per particle group")
    ev.add_argument("dataset", type=Path)
    ev.add_argument("--no-quality-filter", action="store_true")
    a = ap.parse_args()
    if a.cmd == "make":
        make(a.dataset, a.out)
    else:
        evidence(a.dataset, not a.no_quality_filter)


if __name__ == "__main__":
    main()
