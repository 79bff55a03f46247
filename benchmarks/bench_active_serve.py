"""How long the study app takes to answer with the next pair when it chooses it (``sampling: active``).

    python benchmarks/bench_active_serve.py --answers 24 --sampling active balanced --out benchmarks/results/active_serve.json

Opens the built-in study of ``prefstyle serve`` (simulated renditions of the packaged photos,
the default SliderTaste model) in a temporary folder, joins as one participant through the
HTTP API (FastAPI's TestClient, SQLite) and answers ``--answers`` questions, timing each
``POST /api/answer``, which stores the answer and returns the next pair (under ``active``, the
pair ranked ahead, or the planned one when the ranking is not ready: app/active.py), after
``--think`` seconds per pair. Prints and writes the median and maximum per sampling strategy,
and how many served pairs are not the planned ones (active choices; a lower bound, as an active
choice may coincide with the plan).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _report import emit, scratch_dir

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def planned_differs(state, study) -> tuple[int, int]:
    """(main questions served, how many show another pair than the plan): active choices, a lower bound."""
    from prefstyle.app.models import Participant, Question
    from prefstyle.app.study import plan_questions

    loaded = state.studies[study.id]
    with state.db.read() as s:
        seeds = {p.id: p.seed for p in s.query(Participant)}
        rows = [
            (q.participant_id, q.position, q.rendition_a_id, q.rendition_b_id)
            for q in s.query(Question).filter(Question.kind == "main", Question.served_at.is_not(None))
        ]
    cfg = loaded.cfg
    plans = {
        pid: plan_questions(loaded.question_scenes, cfg.main, cfg.consistency, cfg.sampling, seed)
        for pid, seed in seeds.items()
    }
    differs = 0
    for pid, pos, a, b in rows:
        scene, ka, kb = plans[pid][pos].pair()
        differs += (loaded.rendition_by_key[(scene, ka)].id, loaded.rendition_by_key[(scene, kb)].id) != (a, b)
    return len(rows), differs


def run(sampling: str, answers: int, think: float = 0.0) -> dict:
    import dataclasses

    from fastapi.testclient import TestClient

    from prefstyle.app.server import create_app, open_state
    from prefstyle.app.state import AppSettings
    from prefstyle.app.study import default_study

    tmp = scratch_dir("prefstyle-bench-")
    study = dataclasses.replace(default_study(), sampling=sampling)
    t0 = time.perf_counter()
    state = open_state(
        AppSettings(db_url=f"sqlite:///{tmp / 'app.db'}", data_dir=tmp / "data", studies=[study], admin_token="b" * 32)
    )
    opened = time.perf_counter() - t0
    client = TestClient(create_app(state=state), follow_redirects=False)
    r = client.post("/s/demo/join", data={"person": "Bench", "device": "laptop", "consent": "yes"})
    assert r.status_code == 303, r.text
    r = client.post("/s/demo/calibrate", data={"dark_steps": "12", "light_steps": "12"})  # the screen check
    assert r.status_code in (200, 303), r.text
    data = client.get("/s/demo/api/question").json()
    times = []
    for k in range(answers):
        q = data["question"]
        payload = {
            "question_id": q["id"],
            "a": q["a"]["id"],
            "b": q["b"]["id"],
            "choice": "ab"[k % 2],
            "response_ms": 1500,
        }
        time.sleep(think)
        t = time.perf_counter()
        r = client.post("/s/demo/api/answer", json=payload)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
        data = r.json()
    served, differs = planned_differs(state, study)
    state.db.dispose()
    return {
        "think_s": think,
        "main_served": served,
        "pair_not_the_planned_one": differs,
        "open_s": round(opened, 2),
        "answers": answers,
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 4),
        "first_s": round(times[0], 4),
        "all_s": [round(t, 4) for t in times],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--answers", type=int, default=24)
    ap.add_argument("--sampling", nargs="+", default=["active", "balanced"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--think", type=float, default=0.0, help="seconds between receiving a pair and answering it")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import os
    import platform

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "benchmark": "active_serve",
        "command": "python benchmarks/bench_active_serve.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_before": list(os.getloadavg()),
        "sampling": {},
    }
    for s in args.sampling:
        result["sampling"][s] = run(s, args.answers, args.think)
        print(f"{s}: median {result['sampling'][s]['median_s'] * 1000:.0f} ms per answer", file=sys.stderr)
    result["loadavg_after"] = list(os.getloadavg())
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
