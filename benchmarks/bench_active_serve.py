"""How long the study app takes to answer with the next pair when it chooses it (``sampling: active``).

    python benchmarks/bench_active_serve.py --answers 24 --sampling active balanced --out benchmarks/results/active_serve.json

Opens the built-in study of ``prefstyle serve`` (simulated renditions of the packaged photos,
the default SliderTaste model) in a temporary folder, joins as one participant through the
HTTP API (FastAPI's TestClient, SQLite) and answers ``--answers`` questions, timing each
``POST /api/answer``, which stores the answer and returns the next pair, chosen then under
``active``. Prints and writes the median and maximum per sampling strategy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _report import emit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def run(sampling: str, answers: int) -> dict:
    import dataclasses

    from fastapi.testclient import TestClient

    from prefstyle.app.server import create_app, open_state
    from prefstyle.app.state import AppSettings
    from prefstyle.app.study import default_study

    tmp = Path(tempfile.mkdtemp(prefix="prefstyle-bench-"))
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
        t = time.perf_counter()
        r = client.post("/s/demo/api/answer", json=payload)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
        data = r.json()
    state.db.dispose()
    return {
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
        result["sampling"][s] = run(s, args.answers)
        print(f"{s}: median {result['sampling'][s]['median_s'] * 1000:.0f} ms per answer", file=sys.stderr)
    result["loadavg_after"] = list(os.getloadavg())
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
