"""Plot distance to the true ideal against the number of answers, random against chosen questions.

    python benchmarks/plot_active_query.py benchmarks/results/active_query.json \
        benchmarks/results/active_query_c1.json --out docs/img/active_query.png

Each file is a ``bench_active_query.py`` result; its "random" curve is drawn once (every file
asks the same random questions of the same users), its "active" curve labelled by how many
scenes the active strategy chose among.
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

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    random_drawn = False
    for path in args.results:
        doc = json.loads(path.read_text())
        ns = [int(n) for n in doc["ns"]]
        curves = doc["mean_delta_e00"]
        if not random_drawn:
            ax.axhline(doc["identity_delta_e00"], color="grey", linestyle="--", label="input (no edit)")
            ax.plot(ns, [curves["random"][str(n)] for n in ns], marker="o", color="black", label="random pairs")
            random_drawn = True
        c = doc["candidates"]
        label = "most informative pair of the next scene" if c == 1 else f"most informative pair among {c} scenes"
        ax.plot(ns, [curves["active"][str(n)] for n in ns], marker="o", linewidth=2, label=label)
    answers_axes(ax, ns)
    first = json.loads(args.results[0].read_text())
    model, data = first.get("model", "sliders"), Path(str(first.get("data", "the simulated crowd"))).name
    ax.set_title(f"Which pair to ask next: `{model}` on {data} ({first.get('users', '?')} people)", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, args.out)


if __name__ == "__main__":
    main()
