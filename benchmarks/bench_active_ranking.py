"""One ranking of active sampling, as the study app's helper process computes it, by the number of earlier answers.

    python benchmarks/bench_active_ranking.py --model looks
    python benchmarks/bench_active_ranking.py --model sliders --answers 0 8 40 80

Builds the load test's study (``bench_app_load.prepare``: 8 simulated scenes, 4 renditions each,
512 px), draws random decided answers (seeded), and times ``prefstyle.app.active._best_pair``:
the posterior after the answers, then the expected information of every pair of the next
scene. One torch thread, as in the helper. For each number of answers it reports the first
ranking with those answers (the scenes' ideals cached, the answers new) and the median of
``--repeats`` more, each for another scene with the same answers: the case of a running study,
where a participant's earlier answers recur in every ranking of theirs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

from _report import emit, scratch_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="the study's model (as in a study file)")
    ap.add_argument("--answers", type=int, nargs="+", default=[0, 1, 8, 16, 40, 80])
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    import bench_app_load

    from prefstyle.app import active
    from prefstyle.app.db import Database
    from prefstyle.app.state import load_study_index

    tmp = scratch_dir("prefstyle-bench-ranking-")
    url = f"sqlite:///{tmp / 'app.db'}"
    study_args = argparse.Namespace(
        main=80, consistency=10, style_after=16, heldout=4, model=args.model, sampling="active", image_size=512
    )
    bench_app_load.prepare(tmp, url, study_args)
    db = Database(url)
    try:
        study = load_study_index(db, bench_app_load.SID, tmp / "data")
    finally:
        db.dispose()
    scenes = list(study.scenes)
    rng = random.Random(args.seed)
    answers = []
    for _ in range(max(args.answers)):
        sid = rng.choice(scenes)
        a, b = rng.sample(list(study.scenes[sid].renditions), 2)
        answers.append((sid, a, b, rng.choice("ab")))

    t = time.perf_counter()
    active._best_pair(study, (), scenes[0])
    load_s = time.perf_counter() - t  # the model loaded, its first scene ranked
    t = time.perf_counter()
    for sid in scenes:  # every scene's particle ideals cached, as in a study under way
        active._best_pair(study, (), sid)
    scenes_s = time.perf_counter() - t
    rows = []
    for n in args.answers:
        evidence = tuple(answers[:n])
        start = rng.randrange(len(scenes))
        t = time.perf_counter()
        active._best_pair(study, evidence, scenes[start])
        first = time.perf_counter() - t
        times = []
        for r in range(1, args.repeats + 1):
            t = time.perf_counter()
            active._best_pair(study, evidence, scenes[(start + r) % len(scenes)])
            times.append(time.perf_counter() - t)
        rows.append(
            {
                "answers": n,
                "first_ms": round(first * 1000, 1),
                "then_median_ms": round(statistics.median(times) * 1000, 2),
                "then_max_ms": round(max(times) * 1000, 2),
            }
        )
        print(
            f"{n:3d} answers: first {first * 1000:7.1f} ms, then {statistics.median(times) * 1000:6.2f} ms",
            file=sys.stderr,
        )
    emit(
        {
            "benchmark": "active sampling: one ranking (app.active._best_pair), one torch thread",
            "command": "python benchmarks/bench_active_ranking.py " + " ".join(sys.argv[1:]),
            "model": type(study.model()).__name__,
            "study": "bench_app_load's: 8 simulated scenes x 4 renditions, 512 px",
            "model_load_and_first_scene_s": round(load_s, 2),
            "other_scenes_first_ranking_s": round(scenes_s, 2),
            "rows": rows,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
