"""Does LookTaste get closer to unseen looks with more training look families in its library?

LookTaste's taste space holds the library's looks of the training families (the validation and
test families are held out), their blends, slider edits and the looks of the renditions the
training people saw. This refits the packaged model's recipe (``configs/looks.yaml``: floor 0.9,
the marginal likelihood for temperature, lapse and user mass) with the library cut to the first
``k`` training families (a seeded order, nested: each ``k`` keeps the smaller ones' families)
and scores each fit on the crowd's test people and photos, as ``prefstyle evaluate`` does.

    python benchmarks/bench_look_library_size.py runs/looks_dev --ks 3 6 9 12 --users 41 \\
        --out benchmarks/results/look_library_size.json
"""

from __future__ import annotations

import argparse
import json
import random
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

    from prefstyle.data.looks import load_looks
    from prefstyle.models.base import create_model
    from prefstyle.models.look_fit import fit_look_taste

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_crowd_arguments(ap)
    ap.add_argument("--ks", type=int, nargs="+", default=[3, 6, 9, 12], help="numbers of training families")
    ap.add_argument("--max-users", type=int, default=100, help="training people in each fit (as the packaged)")
    ap.add_argument("--seed", type=int, default=0, help="order in which training families are added")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    crowd = load_crowd(args.data, "test", args.users)
    families = json.loads((args.data / "ground_truth.json").read_text())["looks"]["families"]
    order = sorted(families["train"])
    random.Random(args.seed).shuffle(order)
    library = load_looks()
    held = [f for split in ("val", "test") for f in families.get(split, [])]
    models: dict[str, object] = {"identity": create_model("identity")}
    looks_per_k: dict[int, int] = {}
    for k in args.ks:
        keep = order[:k]
        sub = library.subset([*keep, *held])
        looks_per_k[k] = sum(lk.family in set(keep) for lk in sub.looks)
        models[f"looks, {k} families"] = fit_look_taste(
            crowd.raw, sub, max_users=args.max_users, floors=(0.9,), seed=0, progress=False
        )
        print(f"fitted with {k} training families ({looks_per_k[k]} looks)", file=sys.stderr)
    res = score(crowd, models)
    ideal = res.ideal or {}
    out = {
        "benchmark": "look_library_size",
        "command": "python benchmarks/bench_look_library_size.py " + " ".join(argv or sys.argv[1:]),
        "data": str(args.data),
        "users": len(crowd.users),
        "family_order": order,
        "rows": [
            {
                "training_families": k,
                "library_looks": looks_per_k[k],
                "delta_e00_to_ideal": round(float(ideal[f"looks, {k} families"]["delta_e00"]), 3),
                "win_rate": round(float(res.tables["delta_e00"][f"looks, {k} families"]["win_rate"]), 4),
            }
            for k in args.ks
        ],
        "identity_delta_e00": round(float(ideal["identity"]["delta_e00"]), 3),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    emit(out, args.out)
    return out


if __name__ == "__main__":
    main()
