"""`make bench`: the benchmarks that need no trained run and no dataset, each at its documented
size, one after another; results as JSON in ``--out`` (default ``runs/bench``).

The others need a trained checkpoint or a simulated crowd (their commands are in
docs/BENCHMARKS.md): ``bench_pienet.py``, ``bench_lut_fast_path.py``, ``bench_active_query.py``,
``bench_app_load.py``, ``bench_presets_roundtrip.py``.

    python benchmarks/run_all.py [--out runs/bench] [--only lut enhance ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (script, arguments); ``{out}`` is replaced by the result file
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "lut": ("bench_lut.py", ["--megapixels", "12", "--repeats", "5", "--out", "{out}"]),
    "imaging_pipeline": ("bench_imaging_pipeline.py", ["--megapixels", "12", "--repeats", "5"]),
    "enhance": (
        "bench_enhance.py",
        ["--megapixels", "12", "--repeats", "5", "--batch", "8", "--jobs", "1", "2", "--out", "{out}"],
    ),
    "pps": (
        "bench_pps.py",
        ["--models", "usd", "upe", "exemplar", "sliders", "--megapixels", "12", "--repeats", "3", "--out", "{out}"],
    ),
    "simulate": ("bench_simulate.py", ["--users", "100", "--size", "128"]),
    "active_serve": (
        "bench_active_serve.py",
        ["--answers", "24", "--sampling", "active", "balanced", "--out", "{out}"],
    ),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/bench"))
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=None)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(BENCHMARKS)
    failed = []
    for k, name in enumerate(names, 1):
        script, argv_ = BENCHMARKS[name]
        out = args.out / f"{name}.json"
        cmd = [sys.executable, str(HERE / script), *(a.replace("{out}", str(out)) for a in argv_)]
        print(f"[{k}/{len(names)}] {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        with open(args.out / f"{name}.log", "w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        print(
            f"    {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - t0:.0f} s; "
            f"log {args.out / f'{name}.log'}",
            file=sys.stderr,
            flush=True,
        )
        if rc:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
