"""What the looks-crowd benchmarks share: a simulated crowd read as ``prefstyle evaluate`` reads it
(the PPS quality filters, the ground truth checked against the answers) and models scored on its
held-out people, pairs and photos as ``evaluate`` scores them."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Crowd:
    """``raw``: the dataset as read; ``ds``: after the PPS filters; ``truth``: its ground truth;
    ``users``: the evaluated people of ``split`` (after the filters); ``split``: whose photos are held out."""

    raw: Any
    ds: Any
    truth: dict[str, Any]
    users: list[str]
    split: str


def add_crowd_arguments(ap: Any, users: bool = True) -> None:
    """The options every looks-crowd benchmark takes: the crowd, (``users``) how many test people,
    torch threads and the result file."""
    ap.add_argument("data", type=Path, help="a looks crowd (with ground_truth.json)")
    if users:
        ap.add_argument("--users", type=int, default=41, help="the first this many test users after the PPS filters")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)


def load_crowd(data: Path, split: str = "test", max_users: int | None = None) -> Crowd:
    """Read ``data``, apply the PPS filters, check that its ground truth explains its answers (a
    one-line error otherwise) and pick the first ``max_users`` people of ``split``."""
    from prefstyle.data.filters import apply_filters
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.data.simulate import load_ground_truth
    from prefstyle.data.truth_check import require_explained
    from prefstyle.eval.protocol import default_users

    raw = PairsDataset.load(data)
    ds, _ = apply_filters(raw)
    truth = load_ground_truth(data)
    print(require_explained(data, dataset=ds, truth=truth).message(data), file=sys.stderr)
    users = default_users(ds, split)
    return Crowd(raw, ds, truth, users[:max_users] if max_users is not None else users, split)


def score(crowd: Crowd, models: dict[str, Any], n_refs: int = 16, size: int = 128) -> Any:
    """``evaluate``'s PPS run on the crowd's people, 8 held-out pairs each, photos of its split:
    the :class:`prefstyle.eval.protocol.Results`."""
    from prefstyle.eval.protocol import evaluate_pps

    return evaluate_pps(
        crowd.ds,
        models,
        n_refs=n_refs,
        n_evals=8,
        users=crowd.users,
        seed=0,
        ground_truth=crowd.truth,
        metrics=["delta_e00"],
        size=size,
        eval_scenes=crowd.ds.scenes_of_split(crowd.split),
        progress=True,
    )
