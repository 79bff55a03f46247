"""The PPS paper's training-users ablation as one command: ``prefstyle train CONFIG --train-users 50,all``.

Each value ``K`` trains the config once with ``data.max_users=K`` (``all``: every training user)
into ``OUT/users-K``; ``OUT/train_users.json`` lists the runs::

    {"format": "prefstyle-train-users", "task": "upe", "runs": {"50": "users-50", "all": "users-all"}}

``prefstyle evaluate DATA -m OUT`` reads that file (:func:`read_train_users`) and scores every
run on the same pairs, as rows ``OUT-NAME:users-K``, with the summary in ``ablations.train_users``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_write_text

__all__ = ["TRAIN_USERS_FILE", "parse_train_users", "read_train_users", "train_users_ablation"]

TRAIN_USERS_FILE = "train_users.json"
_FORMAT = "prefstyle-train-users"


def parse_train_users(text: str) -> list[int | None]:
    """``"50,all"`` -> ``[50, None]`` (None: every training user); a one-line error otherwise."""
    out: list[int | None] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        if part.lower() == "all":
            out.append(None)
            continue
        try:
            k = int(part)
        except ValueError:
            k = 0
        if k < 1:
            raise PrefstyleError(f"--train-users takes positive user counts or 'all', e.g. 50,all (got {text!r})")
        out.append(k)
    if not out:
        raise PrefstyleError(f"--train-users needs at least one value, e.g. 50,all (got {text!r})")
    return list(dict.fromkeys(out))


def _label(k: int | None) -> str:
    return "all" if k is None else str(k)


def train_users_ablation(
    config: Any,
    overrides: list[str],
    values: str,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> Iterator[Any]:
    """Train ``config`` once per training-users count of ``values`` (``"50,all"``); yields each ``TrainResult``.

    Runs go to ``OUT/users-K`` (``OUT``: the config's ``out``); ``OUT/train_users.json`` is
    written before the first run, so an interrupted ablation is resumed with ``--resume``.
    """
    from prefstyle.train import train as run_training
    from prefstyle.train.config import load_config

    ks = parse_train_users(values)
    cfg = load_config(None, overrides, base=config) if isinstance(config, dict) else load_config(config, overrides)
    from prefstyle.train.task import get_task
    from prefstyle.train.tasks.pps_base import PPSTask

    task = cfg["task"]["name"]
    try:
        is_pps = issubclass(get_task(task, cfg["task"].get("module")), PPSTask)
    except PrefstyleError:  # not a gradient-trained task (e.g. a closed-form fit)
        is_pps = False
    if not is_pps:
        raise PrefstyleError(f"--train-users is the PPS baselines' training-users ablation, not for task '{task}'")
    out = Path(cfg["out"])
    out.mkdir(parents=True, exist_ok=True)
    doc = {"format": _FORMAT, "task": cfg["task"]["name"], "runs": {_label(k): f"users-{_label(k)}" for k in ks}}
    atomic_write_text(out / TRAIN_USERS_FILE, json.dumps(doc, indent=1) + "\n")
    for k in ks:
        extra = [f"data.max_users={'null' if k is None else k}", f"out={out / f'users-{_label(k)}'}"]
        yield run_training(config, [*overrides, *extra], resume=resume, stop_after=stop_after, progress=progress)


def read_train_users(folder: str | Path) -> dict[str, Path] | None:
    """``{"50": OUT/users-50, "all": OUT/users-all}`` of a ``--train-users`` folder (None: not one).

    Runs without a finished model are an error naming the folder.
    """
    path = Path(folder) / TRAIN_USERS_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        runs = {str(k): Path(folder) / str(v) for k, v in doc["runs"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise PrefstyleError("not a training-users ablation file", path=path) from None
    if doc.get("format") != _FORMAT:
        raise PrefstyleError("not a training-users ablation file", path=path)
    unfinished = [k for k, run in runs.items() if not (run / "model.json").is_file()]
    if unfinished:
        raise PrefstyleError(
            f"the training-users run(s) {', '.join(unfinished)} have no model yet (finish them with --resume)",
            path=path,
        )
    return runs
