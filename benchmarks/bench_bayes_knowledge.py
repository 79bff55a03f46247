"""What the looks crowd's `bayes` reference point owes to each thing it knows about the generator.

On a looks crowd (`data simulate --tastes looks`), `bayes` knows every look people were drawn
from (held-out families included), their popularity, the shared correction and the choice model.
This scores, on the same test people, pairs and photos as `prefstyle evaluate`, `bayes` and three
variants that each forget one thing: the shared correction (neutral), the popularity (a uniform
prior over looks) and the test families' looks (their prior mass set to zero).

    python benchmarks/bench_bayes_knowledge.py runs/looks_dev --users 41 --out benchmarks/results/bayes_knowledge.json
"""

from __future__ import annotations

import argparse
import json
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

    from prefstyle.imaging.params import RetouchParams
    from prefstyle.models.base import create_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_crowd_arguments(ap)
    ap.add_argument("--refs", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    crowd = load_crowd(args.data, "test", args.users)

    def bayes() -> object:
        return create_model("bayes", ground_truth=args.data)

    no_correction = bayes()
    no_correction.correction = RetouchParams()  # type: ignore[attr-defined]
    uniform = bayes()
    uniform.look_prior = torch.full_like(uniform.look_prior, 1.0 / len(uniform.look_prior))  # type: ignore[attr-defined]
    no_test = bayes()
    test_families = set(json.loads((args.data / "ground_truth.json").read_text())["looks"]["families"]["test"])
    held = torch.tensor([lk.family in test_families for lk in no_test.library.looks])  # type: ignore[attr-defined]
    p = no_test.look_prior.clone()  # type: ignore[attr-defined]
    p[held] = 0
    no_test.look_prior = p / p.sum()  # type: ignore[attr-defined]
    models = {
        "identity": create_model("identity"),
        "bayes": bayes(),
        "bayes without the shared correction": no_correction,
        "bayes with a uniform prior over looks": uniform,
        "bayes without the test families' looks": no_test,
    }
    res = score(crowd, models, n_refs=args.refs, size=args.size)
    out = {
        "benchmark": "bayes_knowledge",
        "command": "python benchmarks/bench_bayes_knowledge.py " + " ".join(argv or sys.argv[1:]),
        "data": str(args.data),
        "users": len(crowd.users),
        "refs": args.refs,
        "mean_de00_to_ideal": {m: round(float((res.ideal or {})[m]["delta_e00"]), 3) for m in models},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    emit(out, args.out)
    return out


if __name__ == "__main__":
    main()
