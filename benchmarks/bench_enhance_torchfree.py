"""Peak memory of `prefstyle enhance --jobs 1` with a LUT profile: the torch-free path against torch's.

Issue 19 asks ``enhance --jobs 1`` to peak at most 600 MB; importing the CUDA build of torch alone
makes a process about 600 MB resident, so for LUT profiles ``enhance`` renders 8-bit photos
without torch (:mod:`prefstyle.models.lut_forms`, :mod:`prefstyle.imaging.lut_np`). This script
runs, in fresh processes, alternating, on the same photos and profile:

* ``torch_free``: ``prefstyle enhance DIR --profile P --out O --jobs 1`` (the new default path);
* ``torch_path``: the same with ``--model MODEL`` (a ``--model`` keeps the torch path);
* ``torch_free_jobs_2`` (with ``--jobs2``): the torch-free path with ``--jobs 2``;
* ``before`` (with ``--before-src SRC``, a ``src`` folder of the code before, e.g. from
  ``git archive COMMIT src | tar -x -C DIR``): the same command run with that code first on
  ``PYTHONPATH``;

and reports each run's wall and CPU time, peak resident memory (``VmHWM`` of the child), peak
anonymous memory (``RssAnon`` polled every 20 ms), whether it imported torch, and the load
average (``os.getloadavg``) just before it. Photos: ten 12 MP JPEGs with EXIF and an sRGB ICC
profile (``bench_enhance.make_photos``), or ``--photos DIR``; the profile is ``--model`` (``looks``,
the default, or ``sliders``) personalized from 16 reference pairs (``bench_pps.references``)::

    python benchmarks/bench_enhance_torchfree.py [--model sliders] [--photos DIR] [--rounds 2] [--before-src DIR] [--jobs2] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import CLI_CHILD, child_report, emit, scratch_dir  # noqa: E402


def _anon_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(line.split()[1]) for line in fh if line.startswith("RssAnon:")), 0)
    except OSError:
        return 0


def run(args: list[str], env: dict[str, str]) -> dict:
    """One ``prefstyle`` command in a fresh process: wall, CPU, peak RSS / anonymous MB, torch imported."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_CHILD, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    anon = 0
    while proc.poll() is None:
        anon = max(anon, _anon_kb(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    err = proc.stderr.read() if proc.stderr else ""
    report = child_report(err)
    if proc.returncode or report is None:
        raise RuntimeError(f"child failed ({proc.returncode}): {err[-800:]}")
    peak_kb, torch_in = report
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round((c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime), 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_anon_mb": round(anon / 1024, 1),
        "imported_torch": torch_in,
        "load_before": round(load, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    from bench_enhance import make_photos
    from bench_pps import references

    from prefstyle.models import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=None, help="a folder of JPEGs (default: ten 12 MP ones made)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--before-src", type=Path, default=None, help="a src/ folder of the code before")
    ap.add_argument("--jobs2", action="store_true", help="also the torch-free path with --jobs 2")
    ap.add_argument("--model", choices=("looks", "sliders", "pienet"), default="looks", help="the profile's model")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    tmp = scratch_dir("bench_enhance_torchfree_")
    os.environ["PREFSTYLE_CACHE"] = str(tmp / "cache")  # PieNet's network, exported below, for the children
    photos = sorted(args.photos.glob("*.jp*g")) if args.photos else make_photos(tmp / "in")
    model = load(args.model)
    profile = model.personalize(references(16), "bench-user")
    profile.model_config = {**profile.model_config, "source": args.model}
    prof_path = profile.save(tmp / "profile.json")
    model.prepare_torch_free()  # what `personalize` does after saving a profile (PieNet: ONNX export)
    del model

    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    variants: dict[str, tuple[list[str], dict[str, str]]] = {
        "torch_free": (["--jobs", "1"], env),
        "torch_path": (["--model", args.model, "--jobs", "1"], env),
    }
    if args.jobs2:
        variants["torch_free_jobs_2"] = (["--jobs", "2"], env)
    if args.before_src is not None:
        before_env = {**env, "PYTHONPATH": str(args.before_src.resolve())}
        variants = {"before": (["--jobs", "1"], before_env), **variants}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for k in range(args.rounds):
        for name, (extra, e) in variants.items():
            out = tmp / f"out_{name}_{k}"
            cmd = ["enhance", str(photos[0].parent), "--profile", str(prof_path), "--out", str(out)]
            runs[name].append(run([*cmd, *extra], e))
            print(name, runs[name][-1], file=sys.stderr)
    result = {
        "benchmark": "enhance_torch_free_memory",
        "command": "python benchmarks/bench_enhance_torchfree.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": args.model,
        "photos": len(photos),
        "runs": runs,
        "cpus": os.cpu_count(),
    }
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
