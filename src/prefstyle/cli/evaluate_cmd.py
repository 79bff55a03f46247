"""`prefstyle evaluate DATA`: run models on a pairs dataset with the PPS protocol; write results + report.

Registered by the CLI as ``app.command("evaluate")(evaluate)``. See ``docs/EVALUATION.md``.

Models (``--model``, repeatable) are registered names, trained models (a run folder of
``prefstyle train``, or its ``model.json`` / ``model.safetensors``), or settings files: a
profile-format ``.json`` whose ``model`` field names a registered model (``global-style`` and
``sliders`` write such files); all loaded with :func:`prefstyle.models.loading.load_for_data`. Without
``--model``, every reference point that applies to the data runs: ``identity``,
``global-style`` (fitted on the training users), ``nearest-preferred``, and on simulated data
(a ``ground_truth.json`` beside the judgments) ``oracle`` and ``bayes``; and every model whose
trained weights ship with prefstyle (``src/prefstyle/assets/models/``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prefstyle.errors import PrefstyleError

if TYPE_CHECKING:
    from rich.console import Console

    from prefstyle.eval.protocol import Results

DEFAULT_METRICS = "delta_e00,lpips,ssim,psnr"


def _numbers(text: str | None, what: str, cast: type, lo: float, hi: float, kind: str) -> list:
    """Comma-separated ``cast`` values of an option, each in ``[lo, hi]`` (``[]`` when not given)."""
    if not text:
        return []
    try:
        values = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise PrefstyleError(f"{what} must be comma-separated {kind}, got {text!r}") from None
    if any(not lo <= v <= hi for v in values):
        raise PrefstyleError(
            f"{what} must {'be positive' if hi == math.inf else f'lie in [{lo:g}, {hi:g}]'}, got {text!r}"
        )
    return values


def _int_list(text: str | None, what: str) -> list[int]:
    return _numbers(text, what, int, 1, math.inf, "integers")


def _float_list(text: str | None, what: str) -> list[float]:
    return _numbers(text, what, float, 0.0, 2.0, "numbers")


def _training_users(ds: Any, eval_users: list[str]) -> list[str]:
    train = ds.splits.get("train")
    if train:
        return sorted(set(train) - set(eval_users))
    return [u for u in ds.users() if u not in set(eval_users)]


def _label(models: dict[str, Any], spec: str, model: Any) -> str:
    """The report's name for ``--model`` value ``spec``: a registered name as given; a settings file
    its model's name; a trained checkpoint its run folder's name (unique among ``models``)."""
    from prefstyle.models.loading import is_settings_file, looks_like_path

    if not looks_like_path(spec):
        return spec
    path = Path(spec)
    if is_settings_file(path):
        return model.name if model.name not in models else f"{model.name}:{path.stem}"
    run = path if path.is_dir() else path.parent
    label = run.name or str(run)
    return label if label not in models else f"{label}:{len(models)}"


def _train_users_runs(spec: str) -> dict[str, Path] | None:
    """The runs of a ``prefstyle train --train-users`` folder (None for any other ``--model`` value)."""
    from prefstyle.models.loading import looks_like_path

    if not looks_like_path(spec) or not Path(spec).is_dir():
        return None
    from prefstyle.train.ablation import read_train_users

    return read_train_users(spec)


def _train_users_summary(results: Results) -> dict[str, Any]:
    """``{model: {K: {cqs, cmr, win_rate, delta_e00_to_ideal}}}`` of the ``NAME:users-K`` rows (ΔE00)."""
    out: dict[str, Any] = {}
    ideal = results.ideal or {}
    for name, row in results.tables.get("delta_e00", {}).items():
        base, sep, k = name.rpartition(":users-")
        if not sep or "@" in k:
            continue
        out.setdefault(base, {})[k] = {
            "cqs": row.get("cqs"),
            "cmr": row.get("cmr"),
            "win_rate": row.get("win_rate"),
            "delta_e00_to_ideal": (ideal.get(name) or {}).get("delta_e00"),
        }
    return out


def _crowd_tastes(ground_truth_root: Path | None) -> str | None:
    """The kind of simulated crowd its ground truth names (``tastes``), or None."""
    from prefstyle.data.simulate import GROUND_TRUTH_FILE

    if ground_truth_root is None:
        return None
    try:
        tastes = json.loads((ground_truth_root / GROUND_TRUTH_FILE).read_text()).get("tastes")
    except (OSError, ValueError, AttributeError):
        return None  # a broken ground truth is reported where it is read
    return tastes if isinstance(tastes, str) else None


def build_models(
    specs: list[str],
    ds: Any,
    eval_users: list[str],
    ground_truth_root: Path | None,
    notes: list[str],
    particles: int = 512,
    seed: int = 0,
    progress: bool = True,
    global_steps: int = 150,
) -> dict[str, Any]:
    """Resolve ``--model`` values (names or checkpoint files) into ``{name: model}``.

    Every value goes through :func:`prefstyle.models.loading.load_for_data`: models that need the
    evaluated data (ground truth, training users) are built from it. With no specs, the
    reference points and the packaged models; those that cannot run on this data are left out
    with a note. An explicitly requested model that cannot run is a :class:`PrefstyleError`.
    """
    from prefstyle.models.loading import DataContext, NotApplicable, load_for_data, packaged_models
    from prefstyle.models.reference import reference_points

    explicit = bool(specs)
    if not specs:
        specs = [*reference_points(_crowd_tastes(ground_truth_root)), *packaged_models()]
    context = DataContext(
        dataset=ds,
        eval_users=list(eval_users),
        ground_truth=ground_truth_root,
        seed=seed,
        progress=progress,
        options={"particles": particles, "global_steps": global_steps},
    )
    models: dict[str, Any] = {}
    for spec in specs:
        if progress:
            typer.echo(f"loading model {spec} ...", err=True)
        runs = _train_users_runs(spec)
        if runs:  # a `prefstyle train --train-users` folder: one row per run, scored on the same pairs
            for k, run in runs.items():
                models[f"{Path(spec).name}:users-{k}"] = load_for_data(str(run), context)
            continue
        try:
            model = load_for_data(spec, context)
        except NotApplicable as e:
            if explicit:
                raise
            notes.append(f"{e}; left out")
            continue
        models[_label(models, spec, model)] = model
    return models


def _read_users(
    data: Path, users_split: str, max_users: int | None, quality_filter: bool, progress: bool, err: Any
) -> tuple[Any, list[str], str | None, dict[str, Any] | None]:
    """``(dataset, users to evaluate, quality-filter note, filter counts)``: the dataset with the PPS
    quality filters applied (when asked) and the users of ``users_split``, at most ``max_users``."""
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.eval.protocol import default_users

    if progress:
        err.print(f"reading {data} ...")
    ds = PairsDataset.load(data)
    filter_note, filter_counts = None, None
    if quality_filter:
        from prefstyle.data.filters import apply_filters, summary_line

        before = len(default_users(ds, users_split))
        ds, filter_counts = apply_filters(ds)
        kept = len(default_users(ds, users_split))
        filter_note = f"{summary_line(filter_counts)}; evaluated split {users_split}: {kept} of {before} kept"
        err.print(filter_note)
    users = default_users(ds, users_split)
    if max_users is not None:
        users = users[:max_users]
    return ds, users, filter_note, filter_counts


def _run_ablations(
    results: Any,
    ds: Any,
    models: dict[str, Any],
    users: list[str],
    n_ablate: list[int],
    k_ablate: list[int],
    refs: int,
    global_steps: int,
    kw: dict[str, Any],
    err: Any,
) -> None:
    """The N ablation (every model) and the training-users ablation (global-style refitted on k
    training users), into ``results.ablations``."""
    from prefstyle.eval.protocol import ablate_n_refs, ablate_training_users
    from prefstyle.models.reference import GlobalStyleModel

    seed = kw["seed"]
    if n_ablate:
        err.print(f"ablation over N = {', '.join(map(str, n_ablate))}")
        results.ablations["n_refs"], _ = ablate_n_refs(ds, models, ns=n_ablate, **kw)
    if k_ablate:
        err.print(f"ablation over training users k = {', '.join(map(str, k_ablate))}")
        train = _training_users(ds, users)
        results.ablations["train_users"], _ = ablate_training_users(
            ds,
            lambda us: GlobalStyleModel(seed=seed, steps=global_steps).fit(ds, us),
            k_ablate,
            train_users=train,
            name=GlobalStyleModel.name,
            n_refs=refs,
            **{k: v for k, v in kw.items() if k != "seed"},
            seed=seed,
        )


# The options of `prefstyle evaluate` that take more than a line to declare.
_ModelOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        "-m",
        help="Registered model name, trained run folder or checkpoint file; repeat for several. "
        "Default: every reference point that applies.",
    ),
]
_UsersSplitOpt = Annotated[str, typer.Option("--users-split", help="Split to evaluate: test, val, train or all.")]
_MaxUsersOpt = Annotated[int | None, typer.Option("--max-users", min=1, help="Evaluate at most this many users.")]
_AblateRefsOpt = Annotated[str | None, typer.Option("--ablate-refs", help="Also run the N ablation, e.g. 4,16,32.")]
_AblateTrainUsersOpt = Annotated[
    str | None,
    typer.Option(
        "--ablate-train-users",
        help="Also refit global-style on k training users, e.g. 2,8,32 (trained models: "
        "`prefstyle train CONFIG --train-users 50,all`, then -m OUT scores every run).",
    ),
]
_FlipOpt = Annotated[
    float,
    typer.Option(
        "--flip",
        min=0.0,
        max=1.0,
        help="Reverse this fraction of each user's reference answers (robustness to careless answers).",
    ),
]
_EvalScenesOpt = Annotated[
    str | None,
    typer.Option(
        "--eval-scenes",
        help="Score only pairs on scenes of this scene split (scenes.jsonl 'split': the split of the photo a "
        "simulated scene was cut from, e.g. test); references come from the other scenes.",
    ),
]
_StrengthsOpt = Annotated[
    str | None,
    typer.Option(
        "--strengths",
        help="Also score every model at these strengths of its edit (rows NAME@S; 0 = the input, 1 = the "
        "full edit, as enhance --strength), e.g. 0.25,0.5,0.75.",
    ),
]
_ParticlesOpt = Annotated[int, typer.Option("--particles", min=1, help="Prior samples of the bayes reference point.")]
_GlobalStepsOpt = Annotated[
    int,
    typer.Option("--global-style-steps", min=1, help="Adam steps when fitting the global-style reference point."),
]
_QualityFilterOpt = Annotated[
    bool,
    typer.Option(
        "--quality-filter/--no-quality-filter",
        help="Leave out the users who fail the PPS quality filters (inconsistent or too fast answers) first, "
        "as the PPS paper does (the default); the counts go into results.json (dataset.quality_filter).",
    ),
]


def evaluate(
    data: Annotated[Path, typer.Argument(help="A pairs dataset folder (with judgments.jsonl).")],
    model: _ModelOpt = None,
    refs: Annotated[int, typer.Option("--refs", min=0, help="Reference judgments per user to personalize from.")] = 16,
    evals: Annotated[int, typer.Option("--evals", min=1, help="Held-out pairs per user to score.")] = 16,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: runs/eval-<DATA name>).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the per-user reference/evaluation draw.")] = 0,
    users_split: _UsersSplitOpt = "test",
    max_users: _MaxUsersOpt = None,
    metrics: Annotated[str, typer.Option("--metrics", help="Comma-separated metrics.")] = DEFAULT_METRICS,
    size: Annotated[int | None, typer.Option("--size", min=8, help="Downscale images to this longer side.")] = None,
    ablate_refs: _AblateRefsOpt = None,
    ablate_train_users: _AblateTrainUsersOpt = None,
    flip: _FlipOpt = 0.0,
    eval_scenes: _EvalScenesOpt = None,
    strengths: _StrengthsOpt = None,
    particles: _ParticlesOpt = 512,
    global_steps: _GlobalStepsOpt = 150,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Write the HTML report.")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
    quality_filter: _QualityFilterOpt = True,
    truth_check: Annotated[
        bool,
        typer.Option(
            "--truth-check/--no-truth-check",
            help="On simulated data, first check that the ground truth explains the recorded answers "
            "(400 of them re-asked; a crowd made by another version of the generator fails).",
        ),
    ] = True,
) -> None:
    """Evaluate models on a pairs dataset (PPS protocol): write results.json and an HTML report."""
    from rich.console import Console

    from prefstyle.data.simulate import GROUND_TRUTH_FILE, load_ground_truth
    from prefstyle.eval.protocol import evaluate_pps

    if not data.is_dir():
        raise PrefstyleError("no such dataset folder" if not data.exists() else "not a folder", path=data)
    n_ablate = _int_list(ablate_refs, "--ablate-refs")
    k_ablate = _int_list(ablate_train_users, "--ablate-train-users")
    strength_list = _float_list(strengths, "--strengths")
    metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
    from prefstyle.metrics.registry import METRICS

    unknown = [m for m in metric_list if m not in METRICS]
    if unknown or not metric_list:
        raise PrefstyleError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(sorted(METRICS))}"
        )
    from prefstyle.fsutil import check_writable

    out = out or Path("runs") / f"eval-{data.resolve().name}"
    check_writable(out, folder=True)  # a file or a read-only folder: one line before the evaluation, not after

    err = Console(stderr=True)
    ds, users, filter_note, filter_counts = _read_users(data, users_split, max_users, quality_filter, progress, err)
    gt_root = data if (data / GROUND_TRUTH_FILE).is_file() else None
    ground_truth = load_ground_truth(data) if gt_root is not None else None
    truth_fit = None
    if ground_truth is not None and truth_check:
        from prefstyle.data.truth_check import ground_truth_fit

        truth_fit = ground_truth_fit(data, dataset=ds, truth=ground_truth)
        if not truth_fit.explains:
            raise PrefstyleError(
                truth_fit.message(data) + ": scores against its ideals would be meaningless (made by another "
                "version of the generator? simulate it again, or pass --no-truth-check)"
            )
        err.print(truth_fit.message(data))
    notes: list[str] = []
    models = build_models(
        list(model or []),
        ds,
        users,
        gt_root,
        notes,
        particles=particles,
        seed=seed,
        progress=progress,
        global_steps=global_steps,
    )
    if not models:
        raise PrefstyleError("no model can be evaluated on this dataset")
    err.print(f"evaluating {', '.join(models)} on {len(users)} users of {data}")
    kw: dict[str, Any] = {
        "n_evals": evals,
        "users": users,
        "seed": seed,
        "ground_truth": ground_truth,
        "metrics": metric_list,
        "size": size,
        "flip": flip,
        "eval_scenes": ds.scenes_of_split(eval_scenes) if eval_scenes else None,
    }
    results = evaluate_pps(ds, models, n_refs=refs, progress=progress, strengths=strength_list, **kw)
    results.notes[:0] = notes + ([filter_note] if filter_note else [])
    results.dataset["quality_filter"] = filter_counts or "off"
    if truth_fit is not None:
        results.dataset["ground_truth_fit"] = truth_fit.to_dict()
    by_users = _train_users_summary(results)
    if by_users:
        results.ablations["train_users_runs"] = by_users
    _run_ablations(results, ds, models, users, n_ablate, k_ablate, refs, global_steps, kw, err)

    path = results.save(out)
    index = None
    if report:
        from prefstyle.eval.report import write_report

        index = write_report(results, out)

    _print_summary(results, len(users), err)
    typer.echo(f"wrote {path}" + (f" and {index}" if index else ""))


def _print_summary(results: Results, n_users: int, err: Console) -> None:
    """The main table (ΔE00 CQS, else the first metric's) on stdout, the run's notes on stderr."""
    from rich.console import Console
    from rich.table import Table

    metric = "delta_e00" if "delta_e00" in results.tables else next(iter(results.tables))
    table = Table(
        title=f"PPS evaluation ({metric} CQS), {results.config['n_refs']} refs, {n_users} users", title_justify="left"
    )
    for col in ("model", "CQS", "CQS/identity", "win rate", "ΔE00 to ideal"):
        table.add_column(col, justify="left" if col == "model" else "right")

    from prefstyle.eval.report import format_number as fmt

    for name, row in results.tables[metric].items():
        ideal = (results.ideal or {}).get(name, {}).get("delta_e00") if results.ideal else None
        table.add_row(name, fmt(row.get("cqs")), fmt(row.get("cqs_rel")), fmt(row.get("win_rate")), fmt(ideal))
    Console().print(table)
    for note in results.notes:
        err.print(f"note: {note}")
