"""How close can one global look get to a simulated person's ideal, knowing that ideal exactly?

    python benchmarks/bench_look_ceiling.py runs/looks_dev --users 41 --fit-scenes 24 \
        --out benchmarks/results/look_ceiling.json

A ceiling for LookTaste's class of renderings, measured without any answers: for each test
person of a simulated crowd (its ``ground_truth.json`` gives the person's ideal of any photo),

* **one look for all photos** (what a LookTaste profile is): the look in the packaged model's
  basis (``I + c @ B``) and the adaptive-brightness gain (one of
  :data:`~prefstyle.models.look_space.GAINS`) that best turn the neutral sources of
  ``--fit-scenes`` training photos into the person's ideals of them (least squares on 256 sample
  colours per photo, a negligible ridge), scored on the crowd's held-out test photos;
* **one look per photo**: the same fit on each held-out photo itself (gain 0), scored on that
  photo: what is lost to the basis and to ideals that are not a colour transform at all.

Scores are the mean CIEDE2000 between the rendering and the true ideal over each image's pixels
(``--size`` px, as ``prefstyle evaluate`` scores "ΔE00 to ideal"), averaged over photos, then
people. A person's answers can only tell a model less than their exact ideals on many photos, so
no model that renders one global look per person (with this basis and gains) should be expected
to beat the first row on these people. Prints and writes a JSON (means and per person).
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


def main(argv: list[str] | None = None) -> dict:
    from prefstyle.data.filters import filter_users
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.data.simulate import load_ground_truth
    from prefstyle.data.truth_check import require_explained
    from prefstyle.eval.protocol import ImageCache
    from prefstyle.imaging.color import delta_e_2000_rgb
    from prefstyle.imaging.lut import apply_lut
    from prefstyle.models import load as load_model
    from prefstyle.models.look_space import GAINS, exposed, sample_colours, sample_tables, tables_from_coefficients
    from prefstyle.models.slider_taste import metered_ev

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a simulated pairs dataset (with ground_truth.json)")
    ap.add_argument("--users", type=int, default=41, help="the first this many test users (after the PPS filters)")
    ap.add_argument("--fit-scenes", type=int, default=24, help="training photos whose ideals the look is fitted on")
    ap.add_argument("--size", type=int, default=128, help="long side of the images")
    ap.add_argument("--model", default="looks", help="a LookTaste model name or checkpoint (its basis and meter)")
    ap.add_argument("--ridge", type=float, default=1e-4, help="ridge, relative to the normal matrix's mean diagonal")
    ap.add_argument("--no-quality-filter", action="store_true", help="all test users, not only those kept")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    ds = PairsDataset.load(args.data, check_images=False)
    kept = ds if args.no_quality_filter else filter_users(ds)[0]
    truth = load_ground_truth(args.data)
    print(require_explained(args.data, truth=truth).message(args.data), file=sys.stderr)
    cache = ImageCache(ds, size=args.size)
    model = load_model(args.model)
    basis, nodes, meter = model.basis, model._nodes, model.meter
    dim = basis.shape[0]
    fit_scenes = [s for s in sorted(ds.scenes_of_split("train")) if cache.source_of(s) is not None][: args.fit_scenes]
    test_scenes = [s for s in sorted(ds.scenes_of_split("test")) if cache.source_of(s) is not None]
    sources = {s: cache.source_of(s) for s in fit_scenes + test_scenes}
    users = sorted(kept.splits.get("test", []))[: args.users]
    evs = {s: float(metered_ev(x[None], meter)[0]) for s, x in sources.items()}

    def solve(xs: list[torch.Tensor], ys: list[torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Coefficients ``(D,)`` taking sample colours ``xs`` to ``ys`` (each ``(3,P)``), and the mean squared error."""
        a = torch.cat([sample_tables(basis, x, nodes).reshape(dim, -1) for x in xs], 1).double()
        r = torch.cat([(y - x).reshape(-1) for x, y in zip(xs, ys)]).double()
        gram = a @ a.T
        lhs = gram + args.ridge * float(gram.diagonal().mean()) * torch.eye(dim, dtype=gram.dtype)
        c = torch.linalg.solve(lhs, a @ r)
        return c.float(), float(((c @ a) - r).pow(2).mean())

    def render(x: torch.Tensor, c: torch.Tensor, shift: float) -> torch.Tensor:
        lut = tables_from_coefficients(c[None], basis)[0].clamp(0, 1)
        return apply_lut(exposed(x, shift)[None], lut)[0].clamp(0, 1)

    def de(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(delta_e_2000_rgb(a[None], b[None]).mean())

    rows = []
    for user in tqdm(users, desc="people", unit="person"):
        person = truth[user]
        with torch.no_grad():
            ideal = {s: person.ideal(x[None])[0].clamp(0, 1) for s, x in sources.items()}
            ys = [sample_colours(ideal[s], 32, 2).reshape(3, -1) for s in fit_scenes]
            best = None
            for g in GAINS:
                xs = [sample_colours(exposed(sources[s], g * evs[s]), 32, 2).reshape(3, -1) for s in fit_scenes]
                c, err = solve(xs, ys)
                if best is None or err < best[0]:
                    best = (err, c, g)
            assert best is not None
            _, c, g = best
            one = statistics.mean(de(render(sources[s], c, g * evs[s]), ideal[s]) for s in test_scenes)
            per_photo = []
            for s in test_scenes:
                cs, _ = solve(
                    [sample_colours(sources[s], 32, 2).reshape(3, -1)], [sample_colours(ideal[s], 32, 2).reshape(3, -1)]
                )
                per_photo.append(de(render(sources[s], cs, 0.0), ideal[s]))
            inp = statistics.mean(de(sources[s], ideal[s]) for s in test_scenes)
        rows.append(
            {"user": user, "input": inp, "one_look": one, "gain": g, "look_per_photo": statistics.mean(per_photo)}
        )
    mean = {k: round(statistics.mean(r[k] for r in rows), 3) for k in ("input", "one_look", "look_per_photo")}
    result = {
        "benchmark": "look_ceiling",
        "data": str(args.data),
        "model": args.model,
        "users": len(rows),
        "fit_scenes": len(fit_scenes),
        "test_scenes": len(test_scenes),
        "size": args.size,
        "ridge": args.ridge,
        "quality_filter": not args.no_quality_filter,
        "mean_de00_to_ideal": mean,
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }
    emit(result, args.out, shown={k: v for k, v in result.items() if k != "rows"})
    return result


if __name__ == "__main__":
    main()
