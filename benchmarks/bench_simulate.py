"""Benchmark the simulated crowd: time to simulate N users x 90 judgments, and filter catch rates.

    python benchmarks/bench_simulate.py --users 500 --size 256 --out /tmp/sim500

Prints JSON: wall time of `simulate_dataset`, peak memory, and on the result, how the PPS
quality filters (default FilterConfig) treat careless vs attentive users (from ground truth),
plus the consistency agreement of attentive users.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--scenes", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/prefstyle-bench-sim"))
    args = ap.parse_args()

    from prefstyle.data.filters import FilterConfig, filter_users
    from prefstyle.data.pairs import PairsDataset, statistics
    from prefstyle.data.simulate import (
        SimulationConfig,
        load_ground_truth,
        simulate_dataset,
    )

    if args.out.exists():
        shutil.rmtree(args.out)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    simulate_dataset(SimulationConfig(users=args.users, seed=args.seed, scenes=args.scenes, size=args.size), args.out)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()

    ds = PairsDataset.load(args.out)
    gt = load_ground_truth(args.out)
    _, report = filter_users(ds, FilterConfig())
    dropped = set(report.dropped)
    careless = {u for u, s in gt.items() if s.person.careless}
    attentive = set(gt) - careless
    st = statistics(ds)
    result = {
        "benchmark": "simulate crowd",
        "command": f"python benchmarks/bench_simulate.py --users {args.users} --size {args.size} --scenes {args.scenes}",
        "users": args.users,
        "judgments": st["judgments"],
        "size_px": args.size,
        "scenes": args.scenes,
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "loadavg_before_after": [load_before, load_after],
        "consistency_agreement_all": st["consistency"]["agreement"],
        "careless_users": len(careless),
        "careless_caught": len(careless & dropped),
        "careless_catch_rate": round(len(careless & dropped) / max(len(careless), 1), 3),
        "attentive_users": len(attentive),
        "attentive_dropped": len(attentive & dropped),
        "attentive_drop_rate": round(len(attentive & dropped) / max(len(attentive), 1), 3),
        "drop_reasons": report.reason_counts(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
