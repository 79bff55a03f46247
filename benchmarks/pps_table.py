"""Merge several `prefstyle evaluate` runs on the same dataset and pairs into one PPS table (markdown).

    python benchmarks/pps_table.py runs/eval_pps_1 runs/eval_pps_2 runs/eval_pps_3 > table.md

Rows of ``evaluate --strengths`` (``name@s``) go to a second, shorter table.

The runs must share the dataset, seed, ``--refs``, ``--evals``, ``--size`` and the quality filter
(checked), so
every model was scored on the same evaluation pairs; each run carries ``identity``, whose rows
must agree across runs (checked) and which is always the table's first row; relative CQS is
taken within each run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = ("n_refs", "n_evals", "seed", "size", "users")
ORDER = ("identity", "global-style", "nearest-preferred", "bayes", "oracle")


def _load(paths: list[str]) -> tuple[dict, dict, dict]:
    tables: dict[str, dict] = {}
    ideal: dict[str, dict] = {}
    cfg0 = None
    for p in paths:
        path = Path(p) / "results.json" if Path(p).is_dir() else Path(p)  # a run folder or its results.json
        doc = json.loads(path.read_text())
        cfg = {k: doc["config"].get(k) for k in KEYS}
        cfg["dataset"] = doc["dataset"].get("root")
        qf = doc["dataset"].get("quality_filter")  # absent in runs before the filters were the default
        cfg["quality_filter"] = f"kept {qf['kept']} of {qf['users']} users" if isinstance(qf, dict) else "off"
        if cfg0 is None:
            cfg0 = cfg
        elif cfg != cfg0:
            raise SystemExit(f"{p}: configuration {cfg} differs from {cfg0}")
        for metric, rows in doc["tables"].items():
            for model, row in rows.items():
                prev = tables.setdefault(metric, {}).get(model)
                if prev is not None and abs((prev["cqs"] or 0) - (row["cqs"] or 0)) > 1e-5 * max(
                    1.0, abs(prev["cqs"] or 0)
                ):
                    raise SystemExit(f"{p}: {model} scores differently across runs ({metric})")
                tables[metric][model] = row
        for model, row in (doc.get("distance_to_ideal") or {}).items():
            ideal[model] = row
    return tables, ideal, cfg0 or {}


def main(argv: list[str]) -> None:
    tables, ideal, cfg = _load(argv)
    models = [m for m in ORDER if m in tables["delta_e00"]]
    models += [m for m in tables["delta_e00"] if m not in models and "@" not in m]
    de = tables["delta_e00"]
    print(f"Config: {cfg}\n")
    print(
        "| model | d̄_p ΔE00 | d̄_n ΔE00 | BFS | CMR | CQS ΔE00 | rel. | win rate | CQS LPIPS | CQS SSIM | CQS PSNR "
        "| ΔE00 to ideal | PSNR to ideal |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        r = de[m]

        def cqs(metric: str, model: str = m) -> str:
            row = tables.get(metric, {}).get(model)
            return "–" if not row or row.get("cqs") is None else f"{row['cqs']:.3f}"

        idl = ideal.get(m) or {}
        de_i = f"{idl['delta_e00']:.2f}" if idl.get("delta_e00") is not None else "–"
        ps_i = f"{idl['psnr']:.2f}" if idl.get("psnr") is not None else "–"
        print(
            f"| {m} | {r['d_p']:.2f} | {r['d_n']:.2f} | {r['bfs']:.3f} | {r['cmr']:+.3f} | {r['cqs']:.3f} | "
            f"{(r.get('cqs_rel') or 0):.3f} | {r['win_rate']:.3f} | {cqs('lpips')} | {cqs('ssim')} | {cqs('psnr')} "
            f"| {de_i} | {ps_i} |"
        )
    blended = [m for m in de if "@" in m]  # evaluate --strengths rows
    if blended:
        print("\n| model | strength | CQS ΔE00 | rel. | win rate | ΔE00 to ideal |")
        print("|---|---:|---:|---:|---:|---:|")
        rows = [(m.partition("@")[0], float(m.partition("@")[2]), m) for m in blended]
        rows += [(m, 1.0, m) for m in {b for b, _, _ in rows}]
        for base, strength, m in sorted(rows, key=lambda r: (models.index(r[0]) if r[0] in models else 99, r[1])):
            r, idl = de[m], ideal.get(m) or {}
            de_i = f"{idl['delta_e00']:.2f}" if idl.get("delta_e00") is not None else "–"
            print(
                f"| {base} | {strength:g} | {r['cqs']:.3f} | {(r.get('cqs_rel') or 0):.3f} | {r['win_rate']:.3f} | {de_i} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
