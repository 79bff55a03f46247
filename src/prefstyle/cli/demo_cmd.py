"""`prefstyle demo`: the main job on the embedded default, written as an HTML report.

The demo (1) renders a gallery of the style universe on bundled real photos, (2) simulates a
crowd of users with known tastes, (3) personalizes each held-out user from 16 judgments with
the shipped default model, every other packaged model and every reference point, and reports
how each scores (CQS, win rate, distance to the users' true ideal, per-user image grids), and
(4) walks one user through the photographer's path (full-size retouching, a .cube LUT). It
prints where the report is. ``--retrain`` first retrains the default model from scratch with
its committed config (simulating the training crowd it needs).
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from prefstyle.errors import PrefstyleError

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
    fig, axes = plt.subplots(
        rows_per_photo * n_photos, ncols, figsize=(1.45 * ncols, 1.6 * rows_per_photo * n_photos), squeeze=False
    )
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


def _summary_table(results_path: Path) -> str:
    """The headline numbers of the evaluation as an HTML table, with a link to the full report."""
    doc = json.loads(results_path.read_text(encoding="utf-8"))
    table = doc["tables"].get("delta_e00") or next(iter(doc["tables"].values()))
    ideal = doc.get("distance_to_ideal") or {}

    def fmt(v: float | None, f: str) -> str:
        return "–" if v is None else format(v, f)

    info = doc.get("models") or {}

    def kind(name: str) -> str:  # reference points know the simulator's truth (or are the input itself)
        return "reference point" if (info.get(name) or {}).get("reference_point") else "model"

    order = sorted(table, key=lambda name: kind(name) != "model")  # real models first, order kept within
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{kind(name)}</td><td>{fmt(table[name].get('cqs'), '.3f')}</td>"
        f"<td>{fmt(table[name].get('cqs_rel'), '.3f')}</td><td>{fmt(table[name].get('win_rate'), '.3f')}</td>"
        f"<td>{fmt(ideal.get(name, {}).get('delta_e00'), '.2f')}</td></tr>"
        for name in order
    )
    n = doc["config"]
    return (
        f"<h2>How every model scores ({n.get('users')} held-out users, {n.get('n_refs')} answers each)</h2>"
        "<p>Reference points are not models a photographer can use: <code>identity</code> is the input, "
        "<code>oracle</code> and <code>bayes</code> know the simulated people's true tastes or the looks they "
        "were drawn from; on a looks crowd, <code>bayes-seen</code> knows the simulator too but, like every "
        "learned model, not the look families held out for the test people.</p>"
        "<table><tr><th>model</th><th>kind</th><th>ΔE00-CQS</th><th>CQS / identity</th><th>win rate</th>"
        "<th>ΔE00 to the true ideal (lower is better)</th></tr>" + rows + "</table>"
        '<p><a href="evaluation/index.html">Full evaluation report: every metric, per-user image grids</a></p>'
    )


def _stats_rows(stats: dict[str, Any]) -> str:
    """The crowd's statistics as HTML table rows, numbers formatted (no float reprs)."""
    from prefstyle.eval.report import format_value

    keys = ("users", "persons", "devices", "scenes", "judgments", "consistency", "response_ms", "splits")
    return "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(format_value(v))}</td></tr>"
        for k, v in stats.items()
        if k in keys
    )


def _train_default(out: Path, name: str, tastes: str = "looks") -> Path:
    """``--retrain``: simulate the committed training crowd (500 people of the ``tastes`` crowd, seed 0)
    and train ``configs/<name>.yaml`` into ``out``."""
    from prefstyle.data.simulate import SimulationConfig, simulate_dataset
    from prefstyle.train import train as run_training

    config = Path(__file__).resolve().parents[3] / "configs" / f"{name}.yaml"
    if not config.is_file():
        raise PrefstyleError(
            f"--retrain needs the committed config configs/{name}.yaml (a source checkout)", path=config
        )
    data = out / "train_data"
    if not (data / "judgments.jsonl").is_file():
        typer.echo(f"  simulating the training crowd (500 users, seed 0, {tastes}) ...", err=True)
        simulate_dataset(SimulationConfig(users=500, seed=0, tastes=tastes), data, progress=True)
    res = run_training(config, [f"data.path={data}", f"out={out / 'model'}"], progress=True)
    if res.model_path is not None and res.model_path.suffix == ".json":  # a fitted model without weights
        return res.model_path
    return out / "model"


def _photographer(out: Path, model_spec: str, data: Path, user: str, n_photos: int = 3) -> str:
    """Personalize ``user`` with the default model, retouch bundled photos at full size, export the .cube.

    Returns the HTML section (before/after pictures, the .cube link and the commands that do the same).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from prefstyle.data.pairs import PairsDataset
    from prefstyle.data.pool import ContentPool
    from prefstyle.eval.lut_export import profile_to_lut
    from prefstyle.eval.protocol import load_references
    from prefstyle.imaging.lut_io import write_cube
    from prefstyle.models.loading import load
    from prefstyle.models.render import render_batch

    folder = out / "photographer"
    folder.mkdir(parents=True, exist_ok=True)
    ds = PairsDataset.load(data)
    model = load(model_spec)
    refs = load_references(ds, ds.references(user, 16))
    profile = model.personalize(refs, user=user)
    profile.save(folder / "profile.json")
    pool = ContentPool.bundled(system=True)
    ids = pool.photo_ids
    pick = [ids[round((i + 0.5) * len(ids) / n_photos)] for i in range(n_photos)]
    from prefstyle.data.simulate import load_ground_truth

    truth = load_ground_truth(data).get(user)
    rows = 3 if truth is not None else 2
    fig, axes = plt.subplots(rows, n_photos, figsize=(4 * n_photos, 3.25 * rows), squeeze=False)
    with torch.inference_mode():
        for k, pid in enumerate(pick):
            x = pool.scene_image(f"{pid}#0", size=1024)[None]
            y = render_batch(model, profile, x)
            shown = [(x, f"{pid}: original"), (y, f"retouched for {user} by {model.name}")]
            if truth is not None:
                shown.append((truth.ideal(x), f"{user}'s true ideal (simulated)"))
            for row, (img, title) in enumerate(shown):
                axes[row][k].imshow(img[0].permute(1, 2, 0).clamp(0, 1).numpy())
                axes[row][k].set_title(title, fontsize=8)
                axes[row][k].axis("off")
    fig.tight_layout(pad=0.4)
    fig.savefig(folder / "before_after.png", dpi=90)
    plt.close(fig)
    write_cube(folder / "style.cube", profile_to_lut(model, profile), title=f"prefstyle {model.name} {user}")
    cmd = (
        f"prefstyle personalize {data} --user {user} --model {model_spec} --out me.json\n"
        "prefstyle enhance MY_PHOTOS/ --profile me.json --out retouched/\n"
        "prefstyle export-lut --profile me.json --out my_style.cube"
    )
    return (
        f"<h2>A photographer's path: user <code>{html.escape(user)}</code></h2>"
        f"<p>Personalized by <b>{html.escape(model.name)}</b> from 16 pairwise answers; bundled photos retouched "
        f'at full size; the taste as a <a href="photographer/style.cube">.cube LUT</a> '
        f'(<a href="photographer/profile.json">profile</a>). The same on your photos:</p>'
        f'<pre>{html.escape(cmd)}</pre><img src="photographer/before_after.png" alt="before and after">'
    )


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="report folder")] = DEFAULT_OUT,
    users: Annotated[int, typer.Option("--users", help="simulated users (a tenth are evaluated)")] = 80,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            min=0,
            help="random seed of the demo crowd (with --tastes looks it also "
            "picks which look families are held out for testing: the "
            "shipped model was fitted with seed 0's split)",
        ),
    ] = 0,
    tastes: Annotated[
        str,
        typer.Option(
            "--tastes",
            help="the demo crowd: 'looks' (ideals are real looks, the default) or 'sliders' (ideals are slider edits)",
        ),
    ] = "looks",
    retrain: Annotated[
        bool, typer.Option("--retrain", help="retrain the default model from scratch with its committed config first")
    ] = False,
) -> None:
    """Run the main job on the embedded default data and write an HTML report.

    A simulated crowd (people on devices, each with a known taste), every held-out user
    personalized from 16 pairwise answers by the shipped default model, every packaged model
    and reference point scored (CQS, win rate, distance to the true ideal; per-user image
    grids), and one user's photographer path (full-size retouching and a .cube LUT).
    """
    import shutil

    from prefstyle.data.pairs import PairsDataset, statistics
    from prefstyle.data.simulate import SimulationConfig, simulate_dataset
    from prefstyle.fsutil import atomic_write_text
    from prefstyle.models.loading import DEFAULT_MODEL, packaged_models

    if tastes not in ("looks", "sliders"):
        raise PrefstyleError(f"--tastes must be 'looks' or 'sliders', got {tastes!r}")
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    default_spec = DEFAULT_MODEL
    if retrain:
        typer.echo(
            f"0/4 retraining the default model ({DEFAULT_MODEL}) with configs/{DEFAULT_MODEL}.yaml ...", err=True
        )
        default_spec = str(_train_default(out / "retrain", DEFAULT_MODEL, tastes))
    elif DEFAULT_MODEL not in packaged_models():
        raise PrefstyleError(
            f"the default model '{DEFAULT_MODEL}' has no packaged weights; run `prefstyle demo --retrain`"
        )
    typer.echo("1/4 rendering the style gallery on bundled photos ...", err=True)
    gallery = _gallery(out)

    typer.echo(f"2/4 simulating a crowd of {users} users ({tastes}) ...", err=True)
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    cfg = SimulationConfig(users=users, seed=seed, scenes=60, renditions=6, size=192, tastes=tastes)
    simulate_dataset(cfg, data, progress=True)
    ds = PairsDataset.load(data)
    stats = statistics(ds)

    typer.echo("3/4 personalizing held-out users from 16 answers and evaluating every model ...", err=True)
    from prefstyle.cli.evaluate_cmd import evaluate
    from prefstyle.models.reference import reference_points

    models = reference_points(tastes) + [m for m in packaged_models() if m != DEFAULT_MODEL or not retrain]
    if retrain:
        models.append(default_spec)
    try:  # score on photos no model was fitted on
        held_out: str | None = "test" if ds.scenes_of_split("test") else None
    except PrefstyleError:
        held_out = None
    evaluate(
        data,
        model=models,
        refs=16,
        evals=8,
        size=128,
        out=out / "evaluation",
        seed=seed,
        metrics="delta_e00,lpips,ssim,psnr",
        eval_scenes=held_out,
        quality_filter=True,
    )
    evaluation_link = _summary_table(out / "evaluation" / "results.json")

    typer.echo("4/4 a photographer's path: full-size retouching and a .cube LUT ...", err=True)
    test_users = sorted(ds.splits.get("test", [])) or ds.users()
    photographer = _photographer(out, default_spec, data, test_users[0])

    rows = _stats_rows(stats)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>prefstyle demo</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:2em auto}}td,th{{text-align:left;padding:2px 8px;vertical-align:top}}
img{{max-width:100%}}</style></head><body>
<h1>prefstyle demo</h1>
<p>Default model: <b>{html.escape(DEFAULT_MODEL)}</b>{" (retrained)" if retrain else " (as shipped)"}; seed {seed};
finished in {time.time() - t0:.0f} s.</p>
{evaluation_link}
{photographer}
<h2>Simulated crowd (dataset in <code>data/</code>)</h2><table>{rows}</table>
<h2>Style universe on bundled photos</h2><img src="{gallery.name}" alt="style gallery">
</body></html>"""
    index = out / "index.html"
    atomic_write_text(index, page)
    typer.echo(f"report: {index.resolve()}")
