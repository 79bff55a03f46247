"""`prefstyle data ...`: tools for pairwise preference datasets (FORMATS.md section 1).

Commands register on :data:`app`; ``validate`` lives here, other modules may add more
(``simulate``) with ``@data_cmd.app.command()``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from prefstyle.errors import PrefstyleError

app = typer.Typer(
    help="Pairwise preference datasets: check them, make them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

PROGRESS_MIN_IMAGES = 500
"""Show a progress bar when at least this many image files are checked."""


@app.callback()
def _data() -> None:
    """Pairwise preference datasets: check them, make them."""


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _summary_text(s: dict[str, float] | None, spec: str = ".0f") -> str:
    if not s:
        return "–"
    return f"{_fmt(s['min'], spec)} / {_fmt(s['median'], spec)} / {_fmt(s['max'], spec)}"


def statistics_rows(st: dict[str, Any]) -> list[tuple[str, str]]:
    """The statistics of :func:`prefstyle.data.pairs.statistics` as (label, value) rows."""
    j = st["judgments"]
    c = st["consistency"]
    r = st["response_ms"]
    pos = st["position"]
    rows = [
        ("users", str(st["users"])),
        ("persons / devices", f"{st['persons']} / {st['devices']}"),
        ("scenes (in judgments / in scenes.jsonl)", f"{st['scenes']} / {st['scenes_listed']}"),
        ("images", str(st["images"])),
        ("judgments (main + consistency)", f"{j['total']} ({j['main']} + {j['consistency']})"),
        ("main judgments per user (min / median / max)", _summary_text(st["per_user"]["main"])),
        ("consistency items matched", f"{c['matched']} of {c['items']}"),
        ("consistency agreement", _fmt(c["agreement"], ".1%")),
        ("per-user agreement (min / median / max)", _summary_text(c["per_user_agreement"], ".2f")),
        (
            "response time ms (p5 / p50 / p95)",
            f"{_fmt(r.get('p5'), '.0f')} / {_fmt(r.get('p50'), '.0f')} / {_fmt(r.get('p95'), '.0f')} (n={r['count']})",
        ),
        ("chose image a (position bias)", f"{_fmt(pos['fraction_a'], '.1%')} ({pos['a']} a, {pos['b']} b)"),
    ]
    if st["splits"]:
        rows.append(("users per split", ", ".join(f"{k} {v}" for k, v in st["splits"].items())))
    return rows


@app.command()
def validate(
    data: Annotated[Path, typer.Argument(help="The dataset folder (with judgments.jsonl).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print problems and statistics as one JSON object.")] = False,
    max_problems: Annotated[int, typer.Option("--max-problems", min=1, help="Print at most this many problems.")] = 50,
    images: Annotated[bool, typer.Option("--images/--no-images", help="Check that image files exist.")] = True,
) -> None:
    """Check a pairs dataset: print its problems (file:line: message) and statistics.

    Exit status: 0 without errors (warnings allowed), 1 when errors were found,
    2 when DATA is not a dataset folder.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table
    from rich.text import Text

    from prefstyle.data.pairs import read_with_problems, statistics

    err = Console(stderr=True)
    progress = Progress(TextColumn("checking images"), BarColumn(), MofNCompleteColumn(), console=err, transient=True)
    task = None

    def on_progress(done: int, total: int) -> None:
        nonlocal task
        if total < PROGRESS_MIN_IMAGES or as_json:
            return
        if task is None:
            progress.start()
            task = progress.add_task("images", total=total)
        progress.update(task, completed=done)

    try:
        ds, problems = read_with_problems(data, check_images=images, progress=on_progress)
    except PrefstyleError as e:
        print(f"prefstyle: error: {e}", file=sys.stderr)
        raise typer.Exit(2) from None
    finally:
        if task is not None:
            progress.stop()

    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    st = statistics(ds)
    truth_fit, truth_problem = _truth_fit(data, ds) if not errors and images else (None, None)
    if truth_problem is not None:
        problems.append(truth_problem)
        errors.append(truth_problem)
    if as_json:
        out = {
            "dataset": str(data),
            "ok": not errors,
            "errors": len(errors),
            "warnings": len(warnings),
            "problems": [p.to_dict() for p in problems],
            "statistics": st,
            **({"ground_truth_fit": truth_fit.to_dict()} if truth_fit is not None else {}),
        }
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for p in problems[:max_problems]:
            typer.echo(str(p))
        if len(problems) > max_problems:
            typer.echo(f"... and {len(problems) - max_problems} more")
        console = Console()
        table = Table(title=Text(str(data)), show_header=False, title_justify="left")
        table.add_column("statistic")
        table.add_column("value", overflow="fold")
        for label, value in statistics_rows(st):
            table.add_row(label, value)
        if truth_fit is not None:
            verdict_fit = "yes" if truth_fit.explains else "NO"
            table.add_row(
                "ground truth explains the answers",
                f"{verdict_fit} (z = {truth_fit.z:.1f} over {truth_fit.n}; {100 * truth_fit.agreement:.1f} % "
                f"nearer the ideal, {100 * truth_fit.expected_agreement:.1f} % expected)",
            )
        console.print(table)
        verdict = "OK" if not errors else "FAILED"
        typer.echo(f"{verdict}: {len(errors)} errors, {len(warnings)} warnings")
    if errors:
        raise typer.Exit(1)


def _truth_fit(data: Path, ds: Any) -> tuple[Any, Any]:
    """A simulated dataset's :class:`~prefstyle.data.truth_check.TruthFit` and the problem to
    report when its ground truth does not explain the answers; ``(None, None)`` for other data."""
    from prefstyle.data.pairs import Problem
    from prefstyle.data.simulate import GROUND_TRUTH_FILE
    from prefstyle.data.truth_check import ground_truth_fit

    if not (data / GROUND_TRUTH_FILE).is_file():
        return None, None
    try:
        fit = ground_truth_fit(data, dataset=ds)
    except PrefstyleError as e:
        return None, Problem(str(data / GROUND_TRUTH_FILE), None, str(e))
    if fit.explains:
        return fit, None
    problem = Problem(
        str(data / GROUND_TRUTH_FILE),
        None,
        f"{fit.summary()}: scores against its ideals would be meaningless (made by another version of the generator?)",
    )
    return fit, problem


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="output dataset folder (must be empty or new)")],
    users: Annotated[int, typer.Option("--users", help="number of simulated users (person@device)")] = 500,
    seed: Annotated[int, typer.Option("--seed", min=0, help="random seed: same seed, same dataset")] = 0,
    scenes: Annotated[int, typer.Option("--scenes", help="scenes cut from the content pool")] = 120,
    renditions: Annotated[int, typer.Option("--renditions", help="renditions per scene")] = 6,
    size: Annotated[int, typer.Option("--size", help="side of the written renditions, px")] = 256,
    main: Annotated[int, typer.Option("--main", help="main questions per user")] = 80,
    consistency: Annotated[int, typer.Option("--consistency", help="consistency questions per user")] = 10,
    careless: Annotated[float, typer.Option("--careless", help="fraction of careless persons")] = 0.08,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace a non-empty output folder")] = False,
    tastes: Annotated[
        str,
        typer.Option(
            "--tastes",
            help="the crowd: 'sliders' (tastes are slider edits) or 'looks' (tastes are real looks "
            "from a look library; docs/SIMULATOR.md)",
        ),
    ] = "sliders",
    looks: Annotated[
        Path | None,
        typer.Option(
            "--looks",
            help="--tastes looks: the look library (.json beside its .safetensors; default: the packaged one)",
        ),
    ] = None,
    origins: Annotated[
        str | None,
        typer.Option(
            "--origins",
            help="shares of the scenes' rendition types, e.g. A=0.4,B=0.2,D=0.2,E=0.2 (the default; "
            "types left out get none)",
        ),
    ] = None,
    crowd: Annotated[
        list[str] | None,
        typer.Option(
            "--crowd",
            help="--tastes looks: override one setting of the crowd, KEY=VALUE (repeatable; e.g. "
            "content_fraction=0, strength=1,1 or metric=cam16ucs; the keys are LooksCrowdConfig's, docs/SIMULATOR.md)",
        ),
    ] = None,
) -> None:
    """Simulate a crowd with known tastes: a pairs dataset plus ground_truth.json in --out."""
    import dataclasses

    from prefstyle.data.simulate import SimulationConfig, parse_origins, simulate_dataset

    cfg = SimulationConfig(
        users=users,
        seed=seed,
        scenes=scenes,
        renditions=renditions,
        size=size,
        main=main,
        consistency=consistency,
        careless_fraction=careless,
        tastes=tastes,
        looks=str(looks) if looks is not None else None,
        crowd=tuple(crowd or ()),
    )
    if origins:
        cfg = dataclasses.replace(cfg, origins=parse_origins(origins))
    if looks is not None and tastes != "looks":
        raise PrefstyleError("--looks is for --tastes looks")
    if crowd and tastes != "looks":
        raise PrefstyleError("--crowd is for --tastes looks")
    if crowd:
        from prefstyle.data.looks_crowd import LooksCrowdConfig

        LooksCrowdConfig.from_overrides(list(crowd))  # bad overrides fail before any work
    from prefstyle.fsutil import check_writable

    check_writable(out, folder=True)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise PrefstyleError("output folder is not empty (pass --overwrite to replace it)", path=out)
        if not (out / "judgments.jsonl").exists():
            raise PrefstyleError("refusing to replace a folder that is not a pairs dataset", path=out)
    _simulate_into(cfg, out, simulate_dataset)
    typer.echo(f"wrote {users} simulated users to {out} (ground truth: {out / 'ground_truth.json'})")
    if tastes == "looks":
        st = json.loads((out / "dataset.json").read_text(encoding="utf-8")).get("statistics", {})
        f = st.get("filters", {})
        typer.echo(
            f"answers agreeing with the truth (attentive users): {st.get('agreement_attentive', 0):.1%}; "
            f"source closer to the ideal than the preferred rendition: {st.get('source_closer_than_preferred', 0):.1%}"
        )
        typer.echo(
            f"PPS quality filters keep {f.get('kept')} of {f.get('users')} users "
            f"(train / val / test: {', '.join(str(v) for v in f.get('kept_per_split', {}).values())})"
        )


def _simulate_into(cfg: Any, out: Path, simulate_dataset: Any) -> None:
    """Run ``simulate_dataset(cfg, folder)`` in a hidden folder beside ``out`` and put it in
    ``out``'s place only when it is complete: an interrupted run leaves ``out`` (a dataset being
    replaced with --overwrite, or nothing) as it was, and no partial folder that blocks the rerun."""
    import os
    import shutil
    import tempfile

    from prefstyle.fsutil import current_umask

    out = out.expanduser().resolve()
    if out == Path.cwd().resolve() or out in Path.cwd().resolve().parents:  # not renamed under the shell's feet
        simulate_dataset(cfg, out, progress=True, overwrite=True)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:40]}.", suffix=".part", dir=out.parent))
    old = None
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it 0700
        simulate_dataset(cfg, tmp, progress=True)
        if out.exists():
            old = tmp.with_suffix(".old")  # a name as unique as tmp's
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        if old is not None and not out.exists():
            os.replace(old, out)
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
