"""Where LookTaste loses on a simulated crowd: the taste space, or the inference from the answers?

    python benchmarks/bench_look_losses.py runs/looks_outside --users 20 \
        --out benchmarks/results/look_losses_outside.json

For each test person of a simulated crowd (its ``ground_truth.json`` gives the person's ideal),
after the same 16 answers ``prefstyle evaluate --refs 16 --eval-scenes test`` draws:

* ``nearest``: the particle of the model's space (the shared particles and the person's own
  rendition looks, if the model gives them prior mass) nearest the person's ideal on the test
  photos: what the space can offer at best;
* ``rank_nearest`` / ``w_nearest``: that particle's rank and weight in the posterior (0: the most
  probable particle);
* ``map_particle``: the posterior's most probable particle; ``posterior_expected``: the posterior
  mean of the particles' distances; ``decision``: the look the profile renders (the model's Bayes
  action);
* ``input``: the unedited source.

Distances: mean CIEDE2000 between a particle's rendering and the ideal on the model's sample
colours (:func:`prefstyle.models.look_space.sample_colours`) of the first ``--scenes`` test photos.
``nearest`` far below ``decision`` means the answers, not the space, are the limit; ``nearest``
near ``decision`` means the space is. Prints and writes a JSON (means and per person).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from _report import emit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

COLUMNS = ("input", "nearest", "rank_nearest", "w_nearest", "map_particle", "posterior_expected", "decision")


def main(argv: list[str] | None = None) -> dict:
    from prefstyle.data.filters import filter_users
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.data.simulate import load_ground_truth
    from prefstyle.data.truth_check import require_explained
    from prefstyle.eval.protocol import ImageCache, load_references
    from prefstyle.imaging.color import mean_delta_e_2000_cross, rgb_to_lab
    from prefstyle.models import load as load_model
    from prefstyle.models.look_taste import DECISION_SCENES
    from prefstyle.models.look_space import sample_colours

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="a simulated pairs dataset (with ground_truth.json)")
    ap.add_argument("--users", type=int, default=20, help="the first this many test users (after the PPS filters)")
    ap.add_argument("--scenes", type=int, default=12, help="test photos the distances are taken on")
    ap.add_argument("--refs", type=int, default=16, help="answers per person")
    ap.add_argument("--model", default="looks", help="a LookTaste model name or checkpoint")
    ap.add_argument("--size", type=int, default=128, help="long side of the images")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    ds = PairsDataset.load(args.data, check_images=False)
    kept = filter_users(ds)[0]
    truth = load_ground_truth(args.data)
    print(require_explained(args.data, truth=truth).message(args.data), file=sys.stderr)
    cache = ImageCache(ds, size=args.size)
    model = load_model(args.model)
    held_out = set(ds.scenes_of_split("test"))
    test_scenes = [s for s in sorted(held_out) if cache.source_of(s) is not None][: args.scenes]
    sources = {s: cache.source_of(s) for s in test_scenes}

    def distances(person, coeffs: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """``(K,)`` mean ΔE00 of each taste's rendering to the person's ideal over the test photos."""
        out = torch.zeros(len(coeffs))
        for src in sources.values():
            _, sc = model.scene(src)
            ideal = rgb_to_lab(sample_colours(person.ideal(src[None])[0].clamp(0, 1)))[None]
            out += mean_delta_e_2000_cross(rgb_to_lab(sc.ideals(coeffs, gains)), ideal)[0]
        return out / len(sources)

    rows = []
    for user in tqdm(sorted(kept.splits.get("test", []))[: args.users], desc="people", unit="person"):
        refs_j, _ = ds.split_user_judgments(user, args.refs, 8, seed=0, eval_scenes=held_out)
        refs = load_references(ds, refs_j[: args.refs], cache)
        person = truth[user]
        with torch.no_grad():
            w, coeffs, gains, _ = model.posterior(refs)
            dist = distances(person, coeffs, gains)
            scenes = [model.scene(r.source)[1] for r in refs if r.source is not None][:DECISION_SCENES]
            c, g, _ = model.decide(w, coeffs, gains, scenes)
            decision = float(distances(person, c[None], torch.tensor([g]))[0])
            inp = statistics.mean(
                float(
                    mean_delta_e_2000_cross(
                        rgb_to_lab(sample_colours(src)[None]),
                        rgb_to_lab(sample_colours(person.ideal(src[None])[0].clamp(0, 1)))[None],
                    )[0, 0]
                )
                for src in sources.values()
            )
        best = int(torch.argmin(dist))
        rows.append(
            {
                "user": user,
                "input": inp,
                "nearest": float(dist[best]),
                "rank_nearest": int((w > w[best]).sum()),
                "w_nearest": float(w[best]),
                "map_particle": float(dist[int(torch.argmax(w))]),
                "posterior_expected": float((w * dist).sum()),
                "decision": decision,
            }
        )
    mean = {k: round(statistics.mean(r[k] for r in rows), 3) for k in COLUMNS}
    result = {
        "benchmark": "look_losses",
        "data": str(args.data),
        "model": args.model,
        "users": len(rows),
        "scenes": len(sources),
        "refs": args.refs,
        "mean": mean,
        "median_rank_nearest": statistics.median(r["rank_nearest"] for r in rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }
    emit(result, args.out, shown={k: v for k, v in result.items() if k != "rows"})
    return result


if __name__ == "__main__":
    main()
