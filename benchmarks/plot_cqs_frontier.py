"""Plot ΔE00-CQS against the distance to the true ideal for every model at every strength of its edit.

    prefstyle evaluate runs/sim -m identity -m oracle -m bayes ... --strengths 0.25,0.5,0.75,1.5 --out runs/eval_all
    python benchmarks/plot_cqs_frontier.py runs/eval_all/results.json --out docs/img/cqs_frontier.png

Each model is a curve through its rows ``name@s`` (``evaluate --strengths``: the output blended
with its input, ``x + s·(f(x) − x)``; strength 0 is the input, 1 the model as it renders;
:func:`prefstyle.eval.report.plot_strength_frontier`, also in the HTML report). The dotted line
is the CQS aim of issue 9: 1.25 × the best PPS baseline's CQS at strength 1. Prints each
model's best CQS over the strengths tried and its distance to the ideal there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

BASELINES = ("pienet", "pienet_cpu", "usd", "upe", "exemplar")


def main(argv: list[str] | None = None) -> Path:
    from prefstyle.eval.protocol import Results
    from prefstyle.eval.report import plot_strength_frontier

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results.json of an evaluate run with --strengths")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--metric", default="delta_e00", help="the CQS metric on the vertical axis")
    args = ap.parse_args(argv)

    res = Results.load(args.results)
    table, ideal = res.tables[args.metric], res.ideal or {}
    if not ideal:
        raise SystemExit(f"{args.results}: no distance to the ideal (not a simulated crowd)")
    base_cqs = [row["cqs"] for name, row in table.items() if name in BASELINES and row.get("cqs") is not None]
    aim = (1.25 * max(base_cqs), f"issue 9 CQS aim ({1.25 * max(base_cqs):.3f})") if base_cqs else None
    best: dict[str, tuple[float, str]] = {}
    for name, row in table.items():
        base = name.partition("@")[0]
        if row.get("cqs") is not None and (base not in best or row["cqs"] > best[base][0]):
            best[base] = (row["cqs"], name)
    for base, (cqs, name) in best.items():
        d = (ideal.get(name) or {}).get("delta_e00")
        print(
            f"{base:14s} best CQS {cqs:.3f} ({name}; ΔE00 to the ideal {d:.2f})"
            if d is not None
            else f"{base:14s} best CQS {cqs:.3f} ({name})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not plot_strength_frontier(res, args.out, args.metric, aim):
        raise SystemExit(f"{args.results}: no --strengths rows to plot")
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
