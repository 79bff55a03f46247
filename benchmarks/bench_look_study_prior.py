"""LookTaste with its population prior refitted on the study's other participants (an experiment).

A study organizer has every participant's answers; an empirical-Bayes prior fitted on the people
being served can learn favourites that no training family holds. For each evaluated person, the
population weights are refitted by EM (as ``prefstyle train configs/looks.yaml`` does: the
packaged model's space, temperature and lapse) on the crowd's 100 training people *and the other
evaluated people's* 16 reference answers (leave one out: never the person's own), then the
person is personalized and scored exactly as ``prefstyle evaluate`` does (same references,
held-out pairs and held-out photos). The PPS protocol of ``evaluate`` never fits on evaluated
people; this measures what a protocol that lets the prior see the other participants would give.

    python benchmarks/bench_look_study_prior.py runs/looks_dev --out benchmarks/results/look_study_prior.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _crowd import add_crowd_arguments, load_crowd, score  # noqa: E402
from _report import emit  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    import torch

    from prefstyle.models.base import create_model
    from prefstyle.models.loading import load
    from prefstyle.models.look_fit import _crowd_people, _gaps, _log_marginal
    from prefstyle.models.pps_common import references_from_judgments

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_crowd_arguments(ap, users=False)
    ap.add_argument("--split", default="test", help="the evaluated people and photos")
    ap.add_argument(
        "--floors", type=float, nargs="+", default=[0.9, 0.5, 0.2], help="uniform floors of the refitted prior"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    crowd = load_crowd(args.data, args.split)
    ds, users = crowd.ds, crowd.users
    eval_scenes = ds.scenes_of_split(args.split)
    base = load("looks")
    cache: dict = {}
    refs = []
    for u in users:
        judged, _ = ds.split_user_judgments(u, 16, 8, seed=0, eval_scenes=eval_scenes)
        refs.append(references_from_judgments(ds, judged[:16], cache, 128))
    evaluated = _gaps(base, refs, True, "evaluated people")
    training = _gaps(base, _crowd_people(crowd.raw, 16, 100, True)["train"], True, "training people")

    def em(gaps: list, iters: int = 50) -> torch.Tensor:
        k = len(base.coeffs)
        pop = torch.full((k,), 1.0 / k, dtype=torch.float64)
        for _ in range(iters):
            _, resp = _log_marginal(base, gaps, pop.log(), base.temperature, base.lapse, floor=0.0, user_mass=0.1)
            pop = (resp.sum(0) / resp.sum().clamp_min(1e-300)).clamp_min(1e-12)
        return pop.log().float()

    priors = {u: em(training + [g for j, g in enumerate(evaluated) if j != i]) for i, u in enumerate(users)}

    def study_model(floor: float) -> object:
        model = load("looks")
        model.floor = floor
        personalize = model.personalize

        def with_study_prior(refs: list, user: str | None = None) -> object:
            model.pop_log_prior = priors[user]
            return personalize(refs, user)

        model.personalize = with_study_prior  # type: ignore[method-assign]
        return model

    models = {"identity": create_model("identity"), "looks": load("looks")}
    models.update({f"looks, study prior, floor {f:g}": study_model(f) for f in args.floors})
    res = score(crowd, models)
    out = {
        "benchmark": "look_study_prior",
        "command": "python benchmarks/bench_look_study_prior.py " + " ".join(argv or sys.argv[1:]),
        "data": str(args.data),
        "users": len(users),
        "rows": {
            m: {
                "delta_e00_to_ideal": round(float((res.ideal or {})[m]["delta_e00"]), 3),
                "win_rate": round(float(res.tables["delta_e00"][m]["win_rate"]), 4),
            }
            for m in models
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    emit(out, args.out)
    return out


if __name__ == "__main__":
    main()
