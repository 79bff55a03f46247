"""`prefstyle personalize` for the default model without torch: wall time, and the profiles against torch's.

Issue 19 asks ``prefstyle personalize DATA --user U --out P`` (16 answers) for at most 1.5 s of
wall time; importing torch alone was 1.2–1.5 s of it. For the default ``looks`` model on the CPU
the command now takes :mod:`prefstyle.models.look_personalize_np`. This script:

* ``parity``: for the first ``--users`` people of DATA's ``test`` split, in this process, the
  torch-free profile (``look_personalize_np.personalize``) against the model's
  (``load("looks").personalize(load_references(...))``): the largest LUT difference (max abs),
  whether gain and nearest looks are equal, the relative differences of ``expected_de00`` and
  ``effective_particles``;
* ``timing`` (with ``--rounds N``): the command line in fresh processes under ``/usr/bin/time``,
  the code of ``--before-src`` (a ``src`` folder of the code before, e.g. a ``git worktree``'s,
  first on ``PYTHONPATH``) and the current code alternating, with the load average before each
  run and whether the run imported torch.

::

    python benchmarks/bench_personalize_torchfree.py DATA [--user U] [--users 6] [--rounds 3] [--before-src DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import CLI_CHILD, child_report, emit, scratch_dir  # noqa: E402


def parity(data: Path, n_users: int) -> list[dict]:
    import numpy as np
    import torch

    from prefstyle.data.pairs import PairsDataset
    from prefstyle.eval.protocol import load_references
    from prefstyle.models import load
    from prefstyle.models import look_personalize_np as lp

    torch.set_num_threads(1)
    full = PairsDataset.load(data, check_images=False)
    users = (full.splits.get("test") or full.users())[:n_users]
    model = load("looks")
    path = lp.checkpoint_path("looks")
    space = lp.read_checkpoint(path) if path is not None else None
    assert space is not None, "the packaged looks checkpoint is not readable without torch"
    rows = []
    for user in users:
        js = full.references(user, 16)
        refs = lp.load_references(full, js)
        if refs is None:
            rows.append({"user": user, "torch_free": False})
            continue
        got = lp.personalize(space, refs, user=user)
        want = model.personalize(load_references(full, js), user=user)
        g, w = got.data, want.data

        def rel(key: str, g: dict = g, w: dict = w) -> float | None:
            return None if w[key] is None else round(abs(g[key] - w[key]) / max(abs(w[key]), 1e-9), 6)

        rows.append(
            {
                "user": user,
                "answers": len(js),
                "max_lut_diff": float(np.abs(got.tensors["lut"] - want.tensors["lut"].numpy()).max()),
                "same_gain": g["gain"] == w["gain"],
                "same_nearest_looks": g["nearest_looks"] == w["nearest_looks"],
                "expected_de00_rel_diff": rel("expected_de00"),
                "effective_particles_rel_diff": rel("effective_particles"),
                "same_data": g == w,
            }
        )
    return rows


def run(cmd: list[str], env: dict[str, str]) -> dict:
    load = os.getloadavg()[0]
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        res = subprocess.run(
            ["/usr/bin/time", "-o", tf.name, "-f", "%e %U %S %M", sys.executable, "-c", CLI_CHILD, *cmd],
            env=env,
            capture_output=True,
            text=True,
        )
        wall, user, sys_, kb = tf.read().split()[-4:]
    report = child_report(res.stderr)
    torch_in = None if report is None else report[1]
    return {
        "rc": res.returncode,
        "wall_s": float(wall),
        "cpu_s": round(float(user) + float(sys_), 2),
        "peak_rss_mb": round(int(kb) / 1024),
        "torch_imported": torch_in,
        "load_before": round(load, 2),
    }


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--user", default=None, help="the timed user [default: the first of the test split]")
    p.add_argument("--users", type=int, default=6, help="people compared with the torch model (0: none)")
    p.add_argument("--rounds", type=int, default=0, help="timed rounds (before and after alternating)")
    p.add_argument("--before-src", type=Path, default=None, help="a src folder of the code before")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    result: dict = {"data": str(args.data)}
    if args.users:
        result["parity"] = parity(args.data, args.users)
    if args.rounds:
        from prefstyle.data.pairs import PairsDataset

        user = args.user
        if user is None:
            ds = PairsDataset.load(args.data, check_images=False)
            user = (ds.splits.get("test") or ds.users())[0]
        out = scratch_dir("bench_personalize_") / "p.json"
        cmd = ["personalize", str(args.data), "--user", user, "--out", str(out), "--force"]
        variants = {"after": {}}
        if args.before_src is not None:
            variants = {"before": {"PYTHONPATH": str(args.before_src.resolve())}, **variants}
        runs = []
        for r in range(args.rounds):
            for name, extra in variants.items():
                env = {**os.environ, **extra}
                runs.append({"round": r + 1, "code": name, **run(cmd, env)})
                print(runs[-1], file=sys.stderr)
        result.update({"user": user, "command": "prefstyle " + " ".join(cmd), "runs": runs, "cpus": os.cpu_count()})
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
