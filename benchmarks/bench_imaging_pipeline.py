"""Benchmark: a full RetouchParams pipeline on one large image, on the CPU.

Target (GitHub issue): at most 1.5 s per 12-megapixel image on the project's 2-core CPU, median
of 5 runs, peak memory under 1.5 GB.

Each method runs in a fresh subprocess (so one method's peak memory does not hide another's):

* ``direct`` - ``apply_retouch(img, params, method="direct")``: every operator per pixel (the
  per-channel steps through the fused table), row-chunked;
* ``lut`` - ``apply_retouch(img, params, method="lut")``: bake a 33^3 LUT (included in the
  time, as a new edit would need it) and apply it with ``prefstyle.imaging.lut.apply_lut``.

The image is a real photograph (scikit-image's astronaut) resized to the requested size, as
float32 ``(1, 3, H, W)`` with a 4:3 aspect ratio. Peak memory is the process's peak resident
set size (``VmHWM`` from ``/proc/self/status``; reset with ``/proc/self/clear_refs`` after the
image is made, so it is the peak *while processing*, including the interpreter, torch, the
input and the output), falling back to ``resource.getrusage`` where ``/proc`` is missing.

Usage::

    python benchmarks/bench_imaging_pipeline.py --megapixels 12 --repeats 5

prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

METHODS = ("direct", "lut")
TARGET_SECONDS = 1.5
TARGET_PEAK_MB = 1.5 * 1024


def bench_params():
    """A realistic, fully non-neutral edit (warm, brighter, punchy, teal-orange split toning)."""
    from prefstyle.imaging.params import RetouchParams

    return RetouchParams(
        temperature=0.25,
        tint=0.05,
        exposure=0.4,
        contrast=0.25,
        highlights=-0.45,
        shadows=0.35,
        whites=0.15,
        blacks=-0.1,
        vibrance=0.3,
        saturation=0.05,
        curve=(0.0, 0.22, 0.5, 0.78, 1.0),
        hsl_hue=(0.0, 0.1, 0.0, -0.15, 0.0, 0.1, 0.0, 0.0),
        hsl_saturation=(0.1, 0.05, -0.1, 0.15, 0.0, 0.25, 0.0, -0.1),
        hsl_luminance=(0.0, 0.1, 0.0, -0.1, 0.0, -0.25, 0.0, 0.0),
        split_shadow_hue=200.0,
        split_shadow_sat=0.25,
        split_highlight_hue=35.0,
        split_highlight_sat=0.2,
        split_balance=0.1,
    )


def _rss_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    hwm = _rss_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _make_image(megapixels: float):
    import numpy as np
    import torch
    from skimage import data

    h = max(8, round(math.sqrt(megapixels * 1e6 * 3 / 4)))
    w = max(8, round(h * 4 / 3))
    photo = torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1).float().div_(255.0)[None]
    with torch.no_grad():
        img = torch.nn.functional.interpolate(photo, size=(h, w), mode="bilinear", align_corners=False)
    return img.clamp_(0.0, 1.0).contiguous()


def worker(method: str, megapixels: float, repeats: int) -> dict:
    """Time one method in this process; returns the result dict."""
    import torch

    from prefstyle.imaging.pipeline import apply_retouch

    params = bench_params()
    img = _make_image(megapixels)
    # warm-up on a small crop (kernel selection, lazy imports, allocator)
    with torch.no_grad():
        apply_retouch(img[:, :, :64, :64], params, method=method)
    rss_before = _rss_mb("VmRSS")
    peak_reset = _reset_peak()
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = apply_retouch(img, params, method=method)
            times.append(time.perf_counter() - t0)
            del out
    peak = _peak_mb()
    median = statistics.median(times)
    per_12mp = median * 12.0 / megapixels  # linear extrapolation when not run at 12 MP
    return {
        "method": method,
        "seconds_median": median,
        "seconds_all": times,
        "seconds_per_12mp": per_12mp,
        "peak_rss_mb": peak,
        "rss_before_mb": rss_before,
        "peak_rss_reset": peak_reset,
        "meets_time_target": per_12mp <= TARGET_SECONDS,
        "meets_memory_target": peak < TARGET_PEAK_MB,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--megapixels", type=float, default=12.0, help="image size in megapixels (default 12)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per method (default 5)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of: " + ", ".join(METHODS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the workers (0: torch's default)")
    ap.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.megapixels <= 0 or args.repeats < 1:
        ap.error("--megapixels must be > 0 and --repeats >= 1")

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    if args.worker:
        print(json.dumps(worker(args.worker, args.megapixels, args.repeats)))
        return 0

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        ap.error(f"unknown methods {unknown}; choose from {METHODS}")

    results = {}
    for method in methods:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            method,
            "--megapixels",
            str(args.megapixels),
            "--repeats",
            str(args.repeats),
            "--threads",
            str(args.threads),
        ]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            results[method] = {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
            continue
        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])

    import torch

    h = max(8, round(math.sqrt(args.megapixels * 1e6 * 3 / 4)))
    w = max(8, round(h * 4 / 3))
    report = {
        "benchmark": "imaging_pipeline",
        "megapixels": args.megapixels,
        "image_shape": [1, 3, h, w],
        "repeats": args.repeats,
        "torch": torch.__version__,
        "torch_threads": args.threads or torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "target": {"seconds_per_12mp": TARGET_SECONDS, "peak_rss_mb": TARGET_PEAK_MB},
        "params": bench_params().to_dict(),
        "results": results,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
