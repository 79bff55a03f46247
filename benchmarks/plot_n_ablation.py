"""Plot distance to the true ideal against the number of answers N, from `prefstyle evaluate --ablate-refs` results.

    python benchmarks/plot_n_ablation.py benchmarks/results/pps_ablate_n.json benchmarks/results/eval_tl_ablate.json \
        benchmarks/results/eval_sliders_ablate.json benchmarks/results/eval_usd_ablate_n.json --out docs/img/n_ablation.png

Every file must come from the same dataset, users and seed with the same ``eval_after`` (the
evaluation pairs are then the same for every N and every file); the identity curve of each
file is checked against the first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _report import answers_axes, save_figure


def main(argv: list[str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    curves: dict[str, tuple[list[int], list[float]]] = {}
    identity = None
    for path in args.results:
        abl = json.loads(path.read_text())["ablations"]["n_refs"]
        ns = [int(n) for n in abl["values"]]
        for model, row in abl["models"].items():
            ys = [float(v) for v in row["ideal_delta_e00"]]
            if model == "identity":
                if identity is not None and abs(identity - ys[0]) > 1e-6:
                    raise SystemExit(
                        f"{path}: identity {ys[0]:.4f} differs from {identity:.4f}: not the same users or pairs"
                    )
                identity = ys[0]
                continue
            curves[model.removesuffix("_cpu")] = (ns, ys)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    if identity is not None:
        ax.axhline(identity, color="grey", linestyle="--", label="input (identity)")
    for model, (ns, ys) in sorted(curves.items()):
        style = {"linewidth": 2.5} if model == "sliders" else {}
        ax.plot(ns, ys, marker="o", label=model, **style)
    answers_axes(ax, [n for ns, _ in curves.values() for n in ns], "answers used to personalize (N)")
    ax.set_title("More answers, closer to the ideal? (simulated crowd, 20 test users)")
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    return save_figure(fig, args.out)


if __name__ == "__main__":
    main()
