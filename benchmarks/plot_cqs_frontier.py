"""Plot ΔE00-CQS against the distance to the true ideal for every model at every strength of its edit.

    prefstyle evaluate runs/sim -m identity -m oracle -m bayes ... --strengths 0.25,0.5,0.75,1.5 --out runs/eval_all
    python benchmarks/plot_cqs_frontier.py runs/eval_all/results.json --out docs/img/cqs_frontier.png

Each model is a curve through its rows ``name@s`` (``evaluate --strengths``: the output blended
with its input, ``x + s·(f(x) − x)``; strength 0 is the input, 1 the model as it ships). A
model that renders what users want sits far left; CQS rewards the top. The dotted line is the
CQS aim of issue 9 (1.25 × the best baseline's CQS at strength 1). Prints each model's best CQS
over the strengths tried and its distance to the ideal there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

BASELINES = ("pienet", "usd", "upe", "exemplar")


def _base(name: str) -> tuple[str, float]:
    base, _, s = name.partition("@")
    return base, float(s) if s else 1.0


def main(argv: list[str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results.json of an evaluate run with --strengths")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--metric", default="delta_e00", help="the CQS metric on the vertical axis")
    args = ap.parse_args(argv)

    doc = json.loads(args.results.read_text())
    table, ideal = doc["tables"][args.metric], doc.get("distance_to_ideal") or {}
    if not ideal:
        raise SystemExit(f"{args.results}: no distance to the ideal (not a simulated crowd)")
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for name, row in table.items():
        if row.get("cqs") is None or name not in ideal:
            continue
        base, s = _base(name)
        curves.setdefault(base.removesuffix("_cpu"), []).append((s, ideal[name]["delta_e00"], row["cqs"]))
    baseline_cqs = [pts for m, pts in curves.items() if m in BASELINES]
    aim = 1.25 * max(c for pts in baseline_cqs for s, _, c in pts if s == 1.0) if baseline_cqs else None

    fig, ax = plt.subplots(figsize=(7.2, 4.8), dpi=150)
    for model, pts in sorted(curves.items()):
        pts.sort()
        if model == "identity":
            ax.scatter([pts[0][1]], [pts[0][2]], color="grey", marker="s", zorder=3, label="input (identity)")
            continue
        xs, ys = [p[1] for p in pts], [p[2] for p in pts]
        style = {"linewidth": 2.5} if model == "sliders" else {"linewidth": 1.2}
        (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=model, **style)
        full = [p for p in pts if p[0] == 1.0]
        if full:
            ax.scatter([full[0][1]], [full[0][2]], color=line.get_color(), s=45, edgecolor="black", zorder=4)
        best = max(pts, key=lambda p: p[2])
        print(f"{model:14s} CQS at strength 1: {full[0][2] if full else float('nan'):.3f}; best {best[2]:.3f} "
              f"at strength {best[0]:g} (dE00 to ideal {best[1]:.2f})")
    if aim is not None:
        ax.axhline(aim, color="black", linestyle=":", label=f"issue 9 CQS aim ({aim:.3f})")
    ax.set_xlabel("mean ΔE00 to the user's true ideal (lower is better)")
    ax.set_ylabel(f"{args.metric} CQS (higher is better)")
    ax.set_title("CQS against distance to the ideal, strength 0 → 1 (→ 1.5); large dots: as shipped", fontsize=9)
    ax.legend(fontsize=7, loc="best", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
