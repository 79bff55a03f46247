"""Does choosing the next question by expected information gain need fewer answers than random pairs?

    python benchmarks/bench_active_query.py runs/sim --users 20 --ns 4 8 16 --candidates 8 \
        --out benchmarks/results/active_query.json

For each simulated test user of a crowd made by ``prefstyle data simulate`` (its
``ground_truth.json`` answers any question), two ways of asking N questions are compared:

* **random**: the next scene of a seeded shuffle of the crowd's scenes, and a random pair of its
  renditions (what the study app does today);
* **active**: among the next ``--candidates`` scenes of the same shuffle, the pair with the
  largest expected information gain under the SliderTaste posterior of the answers so far
  (:meth:`SliderTasteModel.question_values`); that scene is then used up.

The simulated person answers on their own device with their own noise
(:meth:`SimulatedUser.choose`). After N answers the user's taste is learned by SliderTaste
(the packaged settings) and scored by the mean ΔE00 to the person's true ideal on the neutral
sources of ``--eval-scenes`` scenes that are never asked about (the same for every user and
both strategies). Prints and writes a JSON with the mean per N and strategy, and per user.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import zlib
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from _report import emit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def main(argv: list[str] | None = None) -> dict:
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.data.simulate import load_ground_truth
    from prefstyle.data.truth_check import require_explained
    from prefstyle.eval.protocol import ImageCache
    from prefstyle.imaging.color import delta_e_2000_rgb
    from prefstyle.models.base import Reference
    from prefstyle.models import load as load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a simulated pairs dataset (with ground_truth.json)")
    ap.add_argument("--users", type=int, default=20, help="the first this many test users")
    ap.add_argument("--ns", type=int, nargs="+", default=[4, 8, 16], help="numbers of answers to score at")
    ap.add_argument("--candidates", type=int, default=8, help="scenes the active strategy chooses among, each step")
    ap.add_argument("--eval-scenes", type=int, default=24, help="scenes held out for scoring")
    ap.add_argument("--size", type=int, default=128, help="long side of the images")
    ap.add_argument("--model", default="sliders", help="a SliderTaste model name or settings file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    ds = PairsDataset.load(args.data, check_images=False)
    truth = load_ground_truth(args.data)
    print(require_explained(args.data, truth=truth).message(args.data), file=sys.stderr)
    cache = ImageCache(ds, args.size)
    model = load_model(args.model)
    renditions: dict[str, set[str]] = defaultdict(set)
    for j in ds.judgments:
        renditions[j.scene].update((j.image_a, j.image_b))
    scenes = sorted(s for s in renditions if cache.source_of(s) is not None and len(renditions[s]) >= 2)
    rng = random.Random(args.seed)
    eval_scenes = sorted(rng.sample(scenes, args.eval_scenes))
    pool = [s for s in scenes if s not in set(eval_scenes)]
    users = sorted(ds.splits.get("test") or ds.users())[: args.users]
    n_max = max(args.ns)

    def images(scene: str) -> tuple[torch.Tensor, list[str], list[torch.Tensor]]:
        rels = sorted(renditions[scene])
        return cache.source_of(scene), rels, [cache.get(r) for r in rels]

    rows = []
    select_seconds: list[float] = []
    for user in tqdm(users, desc="users", unit="user"):
        person = truth[user]
        eval_src = torch.stack([cache.source_of(s) for s in eval_scenes])
        with torch.no_grad():
            eval_ideal = person.ideal(eval_src).clamp(0, 1)
        for strategy in ("random", "active"):
            order = list(pool)
            random.Random(f"{args.seed}/{user}").shuffle(order)  # the same stream of scenes for both strategies
            pick = random.Random(f"{args.seed}/{user}/pairs")
            answers = np.random.default_rng(zlib.crc32(f"{args.seed}/{user}".encode()))
            refs: list[Reference] = []
            row = {"user": user, "strategy": strategy, "ideal_delta_e00": {}}
            while len(refs) < n_max and order:
                if strategy == "random":
                    scene = order.pop(0)
                    src, _, imgs = images(scene)
                    i, j = pick.sample(range(len(imgs)), 2)
                else:
                    cands = order[: args.candidates]
                    loaded = [images(s) for s in cands]
                    t0 = time.perf_counter()
                    values = model.question_values(refs, [(src, imgs) for src, _, imgs in loaded])
                    best = max(
                        (
                            (v[a, b].item(), k, a, b)
                            for k, v in enumerate(values)
                            for a, b in combinations(range(v.shape[0]), 2)
                        )
                    )
                    select_seconds.append(time.perf_counter() - t0)
                    _, k, i, j = best
                    scene = cands[k]
                    order.remove(scene)
                    src, _, imgs = loaded[k]
                a, b = imgs[i], imgs[j]
                with torch.no_grad():
                    ideal = person.ideal(src[None]).clamp(0, 1)
                chose_a = bool(person.choose(a[None], b[None], ideal, answers)[0][0])
                pref, other = (a, b) if chose_a else (b, a)
                refs.append(Reference(scene=scene, preferred=pref, other=other, source=src))
                if len(refs) in args.ns:
                    prof = model.personalize(refs, user)
                    with torch.no_grad():
                        out = model.render(eval_src, prof)
                        d = float(delta_e_2000_rgb(out, eval_ideal).mean())
                    row["ideal_delta_e00"][len(refs)] = d
            rows.append(row)

    summary = {
        s: {n: float(np.mean([r["ideal_delta_e00"][n] for r in rows if r["strategy"] == s])) for n in args.ns}
        for s in ("random", "active")
    }
    with torch.no_grad():
        ident = float(
            np.mean(
                [
                    float(
                        delta_e_2000_rgb(
                            torch.stack([cache.source_of(s) for s in eval_scenes]),
                            truth[u].ideal(torch.stack([cache.source_of(s) for s in eval_scenes])).clamp(0, 1),
                        ).mean()
                    )
                    for u in users
                ]
            )
        )
    result = {
        "benchmark": "active_query",
        "command": "python benchmarks/bench_active_query.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "data": str(args.data),
        "users": len(users),
        "ns": args.ns,
        "candidates": args.candidates,
        "eval_scenes": len(eval_scenes),
        "model": args.model,
        "identity_delta_e00": ident,
        "mean_delta_e00": summary,
        "select_seconds_median": float(np.median(select_seconds)) if select_seconds else None,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    for s in ("random", "active"):
        print(f"{s:7s} " + "  ".join(f"N={n}: {summary[s][n]:.2f}" for n in args.ns), file=sys.stderr)
    print(f"input   {ident:.2f}", file=sys.stderr)
    emit(result, args.out, shown={k: v for k, v in result.items() if k != "rows"})
    return result


if __name__ == "__main__":
    main()
