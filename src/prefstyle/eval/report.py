"""The HTML report of an evaluation: tables, plots and image grids, in one folder.

``write_report(results, out_dir)`` writes ``out_dir/index.html`` and its images under
``out_dir/report_files/`` (small PNG files referenced by relative paths, so the folder can be
moved, zipped or served as it is; nothing is fetched from the network). The page is rendered
from the jinja2 template ``prefstyle/eval/templates/report.html.j2``.

Contents: the configuration and dataset; one table per metric (CQS, CQS relative to identity,
win rate, BFS, CMR, d̄_p, d̄_n); the distance to the true ideal on simulated data; the checks
(identity's CMR is 0, whether CQS ranks the oracle above identity); plots (relative CQS per
metric, a per-user scatter of each model against identity, CQS against N and against the
number of training users when those ablations ran); image grids per user (input, reference
picks, every model's output, the ideal).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from prefstyle import __version__
from prefstyle.eval.protocol import IDENTITY, REL_CQS_METRICS, Results
from prefstyle.fsutil import atomic_path, atomic_write_text
from prefstyle.models.defaults import DEFAULT_MODEL

__all__ = ["plot_strength_frontier", "write_report"]

FILES_DIR = "report_files"
METRIC_LABELS = {"delta_e00": "ΔE00", "lpips": "LPIPS", "lpips_vgg": "LPIPS-VGG", "psnr": "PSNR", "ssim": "SSIM"}
LOWER_IS_BETTER = {"delta_e00", "lpips", "lpips_vgg"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def format_number(value: Any, digits: int = 4) -> str:
    """A table cell: floats in fixed point, never a float's repr or exponent notation (``413.95``,
    ``0.000``, ``5914``): below 10 with ``digits - 1`` decimals, up to 1000 with ``digits``
    significant figures, above that whole. None and non-finite values are "–", booleans yes/no."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if abs(value) >= 1000:
            text = f"{value:.0f}"
        elif abs(value) >= 10:
            text = f"{value:.{digits}g}"
        else:
            text = f"{value:.{digits - 1}f}"
        return text.lstrip("-") if float(text) == 0 else text
    return str(value)


def format_value(value: Any, digits: int = 4) -> str:
    """:func:`format_number` through dicts (``key: value, ...``) and lists (``a, b, ...``)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v, digits)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v, digits) for v in value)
    return format_number(value, digits)


_fmt = format_number


def _save_png(path: Path, img: torch.Tensor) -> None:
    from PIL import Image

    arr = (img.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def _save_fig(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _colors(names: list[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def _plot_rel_cqs(results: Results, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in results.tables if m in REL_CQS_METRICS]
    names = [n for n in results.models if "@" not in n]  # --strengths rows have their own plot
    if not metrics:
        return False
    colors = _colors(names)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(metrics) * max(1, len(names)) / 4, 3.2))
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        vals = [results.tables[m].get(name, {}).get("cqs_rel") or 0.0 for m in metrics]
        xs = [i + (k - (len(names) - 1) / 2) * width for i in range(len(metrics))]
        ax.bar(xs, vals, width=width, label=name, color=colors[name])
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(metrics)), [METRIC_LABELS.get(m, m) for m in metrics])
    ax.set_ylabel("CQS / CQS(identity)")
    ax.set_title("CQS relative to identity (dashed line: identity)")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save_fig(fig, path)
    return True


def _plot_scatter(results: Results, path: Path) -> str | None:
    """Per-user scatter of each model against identity; returns a caption, or None without data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_user: dict[str, dict[str, dict[str, Any]]] = {}
    for row in results.per_user:
        by_user.setdefault(row["user"], {})[row["model"]] = row
    use_ideal = bool(results.ideal)
    metric = "delta_e00" if "delta_e00" in results.tables else next(iter(results.tables))

    def value(row: dict[str, Any]) -> float | None:
        if use_ideal:
            return (row.get("ideal") or {}).get("delta_e00")
        return (row.get("metrics", {}).get(metric) or {}).get("cqs")

    names = [n for n in results.models if n != IDENTITY and "@" not in n]
    colors = _colors(list(results.models))
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    lo, hi, any_point = math.inf, -math.inf, False
    for name in names:
        xs, ys = [], []
        for rows in by_user.values():
            if IDENTITY in rows and name in rows:
                x, y = value(rows[IDENTITY]), value(rows[name])
                if x is not None and y is not None:
                    xs.append(x)
                    ys.append(y)
        if xs:
            any_point = True
            ax.scatter(xs, ys, s=18, label=name, color=colors[name], alpha=0.8)
            lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
    if not any_point:
        plt.close(fig)
        return None
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8, ls="--")
    if use_ideal:
        ax.set_xlabel("identity: ΔE00 to the true ideal")
        ax.set_ylabel("model: ΔE00 to the true ideal")
        caption = "Per user: distance of each model's output to the user's true ideal against identity's (below the diagonal = closer than doing nothing)."
    else:
        label = METRIC_LABELS.get(metric, metric)
        ax.set_xlabel(f"identity: CQS ({label})")
        ax.set_ylabel(f"model: CQS ({label})")
        caption = f"Per user: each model's CQS ({label}) against identity's (above the diagonal = higher CQS than the input itself)."
    ax.legend(fontsize=7, frameon=False)
    _save_fig(fig, path)
    return caption


def plot_strength_frontier(
    results: Results, path: Path, metric: str = "delta_e00", aim: tuple[float, str] | None = None
) -> bool:
    """CQS (``metric``) against the ΔE00 to the true ideal, one curve per model through its
    ``evaluate --strengths`` rows (strength 0 = the input); a large dot marks strength 1.
    ``aim``: ``(CQS, label)`` drawn as a dotted line. False when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, ideal = results.tables.get(metric) or {}, results.ideal or {}
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for name, row in table.items():
        if row.get("cqs") is None or name not in ideal:
            continue
        base, _, s = name.partition("@")
        curves.setdefault(base, []).append((float(s) if s else 1.0, ideal[name]["delta_e00"], row["cqs"]))
    if not any(len(pts) > 1 for pts in curves.values()):
        return False
    start = curves.get(IDENTITY)
    for name, pts in curves.items():  # every curve starts at the input: strength 0 is identity
        if start and name != IDENTITY and len(pts) > 1 and not any(p[0] == 0.0 for p in pts):
            pts.append((0.0, start[0][1], start[0][2]))
    colors = _colors(list(curves))
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    for name, pts in curves.items():
        pts.sort()
        if name == IDENTITY:
            ax.scatter([pts[0][1]], [pts[0][2]], color="grey", marker="s", zorder=3, label="identity (the input)")
            continue
        ax.plot(
            [p[1] for p in pts],
            [p[2] for p in pts],
            marker="o",
            markersize=3,
            color=colors[name],
            label=name,
            linewidth=2.5 if name == DEFAULT_MODEL else 1.2,
        )
        for s, x, y in pts:
            if s == 1.0:
                ax.scatter([x], [y], color=colors[name], s=45, edgecolor="black", zorder=4)
    if aim is not None:
        ax.axhline(aim[0], color="black", linestyle=":", label=aim[1])
    ax.set_xlabel("mean ΔE00 to the user's true ideal (lower is better)")
    ax.set_ylabel(f"CQS ({METRIC_LABELS.get(metric, metric)}, higher is better)")
    ax.set_title(
        "CQS against distance to the ideal as each edit is scaled (large dot: as the model renders)", fontsize=9
    )
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save_fig(fig, path)
    return True


def _plot_ablation(ab: dict[str, Any], path: Path, xlabel: str) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = ab.get("values") or []
    models = ab.get("models") or {}
    if not values or not models:
        return False
    first = next(iter(models.values()))
    metric = "delta_e00" if "delta_e00" in first.get("cqs", {}) else next(iter(first.get("cqs", {})), None)
    has_ideal = any(any(v is not None for v in e.get("ideal_delta_e00", [])) for e in models.values())
    panels = 1 + int(has_ideal)
    fig, axes = plt.subplots(1, panels, figsize=(4.4 * panels, 3.4), squeeze=False)
    colors = _colors(list(models))
    for name, e in models.items():
        ys = e.get("cqs", {}).get(metric, [])
        pts = [(x, y) for x, y in zip(values, ys) if y is not None]
        if pts:
            axes[0, 0].plot(*zip(*pts), marker="o", label=name, color=colors[name])
        if has_ideal:
            pts = [(x, y) for x, y in zip(values, e.get("ideal_delta_e00", [])) if y is not None]
            if pts:
                axes[0, 1].plot(*zip(*pts), marker="o", label=name, color=colors[name])
    axes[0, 0].set_xlabel(xlabel)
    axes[0, 0].set_ylabel(f"CQS ({METRIC_LABELS.get(metric, metric)})")
    axes[0, 0].legend(fontsize=7, frameon=False)
    if has_ideal:
        axes[0, 1].set_xlabel(xlabel)
        axes[0, 1].set_ylabel("ΔE00 to the true ideal")
    _save_fig(fig, path)
    return True


def _table_rows(results: Results, metric: str) -> list[dict[str, str]]:
    rows = []
    table = results.tables[metric]
    best = None
    cands = {n: r.get("cqs") for n, r in table.items() if r.get("cqs") is not None}
    if cands:
        best = max(cands, key=lambda n: cands[n])
    for name, r in table.items():
        rows.append(
            {
                "name": name,
                "kind": "reference point" if results.models.get(name, {}).get("reference_point") else "method",
                "best": name == best,
                **{k: _fmt(r.get(k)) for k in ("cqs", "cqs_rel", "win_rate", "bfs", "cmr", "d_p", "d_n")},
                "n": f"{_fmt(r.get('n_users'))} / {_fmt(r.get('n_pairs'))}",
            }
        )
    return rows


def _plots(results: Results, files: Path) -> list[dict[str, Any]]:
    """The report's figures, drawn into ``files``: ``[{"src", "caption"}]``."""
    plots = []
    if _plot_rel_cqs(results, files / "rel_cqs.png"):
        plots.append(
            {
                "src": f"{FILES_DIR}/rel_cqs.png",
                "caption": "CQS relative to identity, per metric (1 = no better than returning the input).",
            }
        )
    caption = _plot_scatter(results, files / "per_user.png")
    if caption:
        plots.append({"src": f"{FILES_DIR}/per_user.png", "caption": caption})
    if plot_strength_frontier(results, files / "strengths.png"):
        plots.append(
            {
                "src": f"{FILES_DIR}/strengths.png",
                "caption": "Each model's edit scaled from 0 (the input) "
                "through 1 (as it renders) to the largest --strengths value: CQS against distance to the ideal.",
            }
        )
    ab = results.ablations or {}
    if "n_refs" in ab and _plot_ablation(ab["n_refs"], files / "ablation_n_refs.png", "N (references per user)"):
        plots.append(
            {
                "src": f"{FILES_DIR}/ablation_n_refs.png",
                "caption": "CQS (and distance to the ideal) against the number of references N, on the same evaluation pairs.",
            }
        )
    if "train_users" in ab and _plot_ablation(ab["train_users"], files / "ablation_train_users.png", "training users"):
        plots.append(
            {"src": f"{FILES_DIR}/ablation_train_users.png", "caption": "CQS against the number of training users."}
        )

    return plots


def _grids(results: Results, files: Path) -> list[dict[str, Any]]:
    """The sample grids (input, references, outputs, ideal per sampled user), saved into ``files``."""
    grids = []
    for i, s in enumerate(results.samples):
        base = f"u{i:02d}"
        cells = []
        _save_png(files / f"{base}_input.png", s.input)
        cells.append({"src": f"{FILES_DIR}/{base}_input.png", "label": "input (" + s.input_kind + ")", "kind": "input"})
        for k, r in enumerate(s.refs):
            _save_png(files / f"{base}_ref{k}.png", r)
            cells.append({"src": f"{FILES_DIR}/{base}_ref{k}.png", "label": f"reference pick {k + 1}", "kind": "ref"})
        for name, img in s.outputs.items():
            fn = f"{base}_out_{_slug(name)}.png"
            _save_png(files / fn, img)
            cells.append({"src": f"{FILES_DIR}/{fn}", "label": name, "kind": "output"})
        if s.ideal is not None:
            _save_png(files / f"{base}_ideal.png", s.ideal)
            cells.append({"src": f"{FILES_DIR}/{base}_ideal.png", "label": "true ideal", "kind": "ideal"})
        grids.append({"user": s.user, "scene": s.scene, "cells": cells})

    return grids


def _ideal_rows(results: Results) -> list[dict[str, Any]]:
    """Rows of the distance-to-the-ideal table."""
    ideal_rows = []
    if results.ideal:
        for name, r in results.ideal.items():
            ideal_rows.append(
                {
                    "name": name,
                    "de": _fmt(r.get("delta_e00")),
                    "psnr": _fmt(r.get("psnr")),
                    "n": f"{_fmt(r.get('n_users'))} / {_fmt(r.get('n_images'))}",
                }
            )
    return ideal_rows


def _checks(results: Results) -> list[dict[str, Any]]:
    """The sanity checks the report shows (identity CMR 0, oracle above identity, ...)."""
    checks = []
    c = results.checks or {}
    for m, ok in (c.get("identity_cmr_zero") or {}).items():
        checks.append({"text": f"identity's CMR is 0 ({METRIC_LABELS.get(m, m)})", "ok": ok})
    for m, above in (c.get("oracle_above_identity") or {}).items():
        label = METRIC_LABELS.get(m, m)
        if above is None:
            continue
        text = (
            f"CQS ({label}) ranks the oracle (the user's true ideal) above identity"
            if above
            else f"CQS ({label}) does NOT rank the oracle (the user's true ideal) above identity: "
            "this metric rewards returning the input"
        )
        checks.append({"text": text, "ok": bool(above), "warn": not above})
    if "oracle_closer_to_ideal_than_identity" in c:
        checks.append(
            {
                "text": "the oracle is closer to the true ideal than identity (distance to ideal)",
                "ok": c["oracle_closer_to_ideal_than_identity"],
            }
        )

    return checks


def write_report(results: Results, out_dir: str | Path, title: str | None = None) -> Path:
    """Write the HTML report of ``results`` into ``out_dir``; returns the path of ``index.html``."""
    import jinja2

    out = Path(out_dir)
    files = out / FILES_DIR
    files.mkdir(parents=True, exist_ok=True)

    plots = _plots(results, files)
    grids = _grids(results, files)
    tables = [
        {
            "metric": m,
            "label": METRIC_LABELS.get(m, m),
            "lower": m in LOWER_IS_BETTER,
            "rel": m in REL_CQS_METRICS,
            "rows": _table_rows(results, m),
        }
        for m in results.tables
    ]
    ideal_rows = _ideal_rows(results)
    checks = _checks(results)

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("prefstyle.eval", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    cfg = results.config
    html = env.get_template("report.html.j2").render(
        title=title or f"prefstyle evaluation: {results.dataset.get('name') or results.dataset.get('root')}",
        version=__version__,
        created=results.created,
        config=[
            (
                k,
                _fmt(v)
                if not isinstance(v, (list, dict))
                else ", ".join(map(str, v))
                if isinstance(v, list)
                else str(v),
            )
            for k, v in cfg.items()
        ],
        dataset=[
            (k, _fmt(v) if not isinstance(v, dict) else ", ".join(f"{a} {b}" for a, b in v.items()))
            for k, v in results.dataset.items()
        ],
        n_refs=cfg.get("n_refs"),
        n_evals=cfg.get("n_evals"),
        tables=tables,
        ideal_rows=ideal_rows,
        checks=checks,
        plots=plots,
        grids=grids,
        notes=results.notes,
        models=[
            (
                n,
                m.get("registered_name"),
                "reference point" if m.get("reference_point") else "method",
                _fmt(m.get("seconds")),
            )
            for n, m in results.models.items()
        ],
    )
    index = out / "index.html"
    atomic_write_text(index, html)
    return index
