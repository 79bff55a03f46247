"""`prefstyle train CONFIG.yaml [key=value ...] [--resume]`: run a training config.

Registered by the CLI as ``app.command("train")(train)``. Several processes:
``torchrun --nproc_per_node=N -m prefstyle.train CONFIG.yaml [key=value ...]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["train"]


def train(
    config: Annotated[Path, typer.Argument(help="YAML config (see configs/)")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="dotted overrides, e.g. steps=500 optim.lr=3e-4 out=runs/x")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the run in `out` from its latest checkpoint")
    ] = False,
    stop_after: Annotated[
        int | None,
        typer.Option("--stop-after", help="stop after this many steps (a checkpoint is saved; --resume goes on)"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    train_users: Annotated[
        str | None,
        typer.Option(
            "--train-users",
            help="The training-users ablation of the PPS paper (PPS tasks): train once per value, e.g. 50,all "
            "(data.max_users=K; all = every training user) into OUT/users-K; `prefstyle evaluate -m OUT` "
            "then scores every run on the same pairs.",
        ),
    ] = None,
) -> None:
    """Train a model from a YAML config; checkpoints, logs and the final model go to `out`.

    Overrides are KEY=VALUE with dots for nested keys (values are YAML). The final model is
    `out/model.safetensors` + `out/model.json`; pass `out` as --model to personalize/enhance.
    """
    import logging

    from prefstyle.train import train as run_training

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if train_users:
        from prefstyle.train.ablation import train_users_ablation

        for res in train_users_ablation(
            config, overrides or [], train_users, resume=resume, stop_after=stop_after, progress=not quiet
        ):
            _say(res, config, overrides)
        return
    res = run_training(config, overrides or [], resume=resume, stop_after=stop_after, progress=not quiet)
    _say(res, config, overrides)


def _say(res: Any, config: Path, overrides: list[str] | None) -> None:
    """One line on stderr: what a training run ended with."""
    import os

    if int(os.environ.get("RANK", "0")) != 0:
        return
    if res.finished and res.model_path is not None and res.model_path.suffix == ".json":  # a fit, not a training
        typer.echo(
            f"fitted in {res.seconds:.0f} s; model: {res.model_path} ("
            + ", ".join(f"{k}={v:.4g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in res.metrics.items())
            + ")",
            err=True,
        )
    elif res.finished:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in res.metrics.items() if isinstance(v, (int, float)))
        typer.echo(
            f"trained {res.step} steps in {res.seconds:.0f} s; model: {res.model_path}"
            + (f"\nvalidation: {metrics}" if metrics else ""),
            err=True,
        )
    else:
        typer.echo(
            f"stopped at step {res.step} of {res.steps}; checkpoint {res.checkpoint}; "
            f"continue with: prefstyle train {config} {' '.join(overrides or [])} --resume".rstrip(),
            err=True,
        )
