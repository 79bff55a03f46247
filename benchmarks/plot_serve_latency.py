"""Plot the answer round trip over a load test's answering phase, from `bench_app_load.py` results.

    python benchmarks/plot_serve_latency.py benchmarks/results/serve_active100_lockstep_s13.json \
        benchmarks/results/serve_active100_ramp20_a_s13.json --out docs/img/serve_latency.png

One line per file (p95, solid; p50, dashed) over the answering phase, from each result's
``answer_latency_ms_by_window``; bars below give the answers per window. Bursts (everyone's
first answer, everyone's style page opening) show up as peaks. The label of each file says
whether its participants started together (lockstep) or over a ramp.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _report import save_figure


def _label(result: dict, path: Path) -> str:
    ramp = result.get("answer_latency_ms_after_ramp")
    how = "arrivals over the ramp" if ramp is not None else "all start at once (lockstep)"
    return f"{path.stem}: {how}, p95 {result['answer_latency_ms']['p95']:.0f} ms"


def main(argv: list[str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--target-ms", type=float, default=100.0, help="drawn as a horizontal line")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    fig, (ax, bars) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = None
    for i, path in enumerate(args.results):
        result = json.loads(path.read_text())["results"][0]
        rows = result.get("answer_latency_ms_by_window")
        if not rows:
            raise SystemExit(f"{path}: no answer_latency_ms_by_window (made before the time series was recorded)")
        t = [r["from_s"] for r in rows]
        width = (t[1] - t[0]) if len(t) > 1 else 5.0
        mid = [x + width / 2 for x in t]
        colour = f"C{i}"
        ax.plot(mid, [r["p95"] for r in rows], "-o", color=colour, ms=3, label=_label(result, path))
        ax.plot(mid, [r["p50"] for r in rows], "--", color=colour, alpha=0.7)
        offset = (i - (len(args.results) - 1) / 2) * width / (len(args.results) + 1)
        bars.bar(
            [m + offset for m in mid], [r["answers"] for r in rows], width=width / (len(args.results) + 1), color=colour
        )
    ax.axhline(args.target_ms, color="grey", lw=0.8, ls=":")
    ax.set_ylabel("answer → next pair (ms)\np95 solid, p50 dashed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    bars.set_ylabel("answers")
    bars.set_xlabel(f"seconds into the answering phase ({width:g} s windows)")
    bars.grid(alpha=0.3)
    return save_figure(fig, args.out)


if __name__ == "__main__":
    main()
