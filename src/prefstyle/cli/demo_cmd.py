"""`prefstyle demo`: the main job on the embedded default, written as an HTML report.

Today the demo (1) renders a gallery of the style universe on bundled real photos, (2)
simulates a crowd of users with known tastes and validates it as a dataset, and (3) personalizes each held-out user from 16 judgments with every
registered model and reference point and reports how each scores (CQS, win rate, distance to
the users' true ideal). It prints where the report is.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_OUT = Path("reports/demo")


def _gallery(out: Path, n_photos: int = 2, size: int = 160, ncols: int = 10) -> Path:
    """Every named style on a few bundled photos, wrapped into rows of ``ncols``; returns the PNG path."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from prefstyle.data.pool import ContentPool
    from prefstyle.styles.registry import get_style, list_styles

    pool = ContentPool.bundled(system=True, crops_per_photo=1)
    ids = pool.scene_ids
    # Spread the photos over the bundled list (Python-package photos first, then wallpapers).
    pick = [ids[round((i + 0.5) * len(ids) / n_photos)] for i in range(n_photos)]
    imgs = torch.stack([pool.scene_image(s, size=size, square=True) for s in pick])
    cols = [None] + [i for i in list_styles() if i.kind in ("preset", "camera", "classical")]
    rows_per_photo = math.ceil(len(cols) / ncols)
    fig, axes = plt.subplots(rows_per_photo * n_photos, ncols, figsize=(1.45 * ncols, 1.6 * rows_per_photo * n_photos),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    with torch.inference_mode():
        for k, info in enumerate(cols):
            styled = imgs if info is None else get_style(info.name).apply(imgs)
            for p in range(n_photos):
                ax = axes[p * rows_per_photo + k // ncols][k % ncols]
                ax.imshow(styled[p].permute(1, 2, 0).clamp(0, 1).numpy())
                ax.set_title("input" if info is None else info.name, fontsize=7)
    fig.tight_layout(pad=0.3)
    path = out / "styles_gallery.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="report folder")] = DEFAULT_OUT,
    users: Annotated[int, typer.Option("--users", help="simulated users")] = 80,
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 0,
    retrain: Annotated[bool, typer.Option("--retrain", help="retrain the default model with its committed config")] = False,
) -> None:
    """Run the main job on the embedded default data and write an HTML report."""
    import shutil

    from prefstyle.data.pairs import PairsDataset, statistics
    from prefstyle.data.simulate import SimulationConfig, simulate_dataset
    from prefstyle.fsutil import atomic_write_text

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    typer.echo("1/3 rendering the style gallery on bundled photos ...", err=True)
    gallery = _gallery(out)

    typer.echo(f"2/3 simulating a crowd of {users} users ...", err=True)
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    cfg = SimulationConfig(users=users, seed=seed, scenes=60, renditions=6, size=192)
    simulate_dataset(cfg, data, progress=True)
    stats = statistics(PairsDataset.load(data))

    typer.echo("3/3 personalizing held-out users from 16 judgments and evaluating every model ...", err=True)
    from prefstyle.cli.evaluate_cmd import evaluate

    evaluate(data, refs=16, evals=16, out=out / "evaluation", seed=seed, ablate_refs="4,16,32")
    evaluation_link = '<p><a href="evaluation/index.html">Evaluation report: every model and reference point</a></p>'

    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v) if not isinstance(v, (int, float, str)) else str(v))}</td></tr>"
        for k, v in stats.items()
        if k in ("users", "persons", "devices", "scenes", "judgments", "consistency", "response_ms", "splits")
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>prefstyle demo</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:2em auto}}td,th{{text-align:left;padding:2px 8px;vertical-align:top}}
img{{max-width:100%}}</style></head><body>
<h1>prefstyle demo</h1>
<p>Seed {seed}; finished in {time.time() - t0:.0f} s.</p>
{evaluation_link}
<h2>Style universe on bundled photos</h2><img src="{gallery.name}" alt="style gallery">
<h2>Simulated crowd (dataset in <code>data/</code>)</h2><table>{rows}</table>
</body></html>"""
    index = out / "index.html"
    atomic_write_text(index, page)
    typer.echo(f"report: {index.resolve()}")
