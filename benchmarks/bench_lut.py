"""Benchmark: applying a 3D LUT to one large image on the CPU, against Pillow.

Target (GitHub issue): applying a 33^3 LUT to a 12-megapixel image on the project's 2-core
CPU takes at most 0.5 s (median of 5 runs) with a peak memory under 1.5 GB; Pillow's own
``ImageFilter.Color3DLUT`` runs on the same image in the same run for comparison.

Methods, each in a fresh subprocess (so one method's peak memory does not hide another's):

* ``prefstyle-trilinear``   - ``prefstyle.imaging.lut.apply_lut(img, lut)``;
* ``prefstyle-tetrahedral`` - ``apply_lut(img, lut, method="tetrahedral")``;
* ``pillow``                - ``PIL.Image.filter(ImageFilter.Color3DLUT(...))`` (trilinear on
  8-bit pixels, 16-bit fixed-point table; single-threaded).

Two timings per method, each the median of ``--repeats`` runs after one untimed warm-up:

* ``lookup_only`` - the LUT lookup on the representation each library works on: a float32
  ``(1, 3, H, W)`` tensor in [0, 1] for prefstyle (the output tensor is allocated inside the
  call), a PIL RGB image for Pillow (ditto). This is the number the 0.5 s target is about.
* ``end_to_end_u8`` - from an 8-bit ``(H, W, 3)`` numpy array to an 8-bit numpy array, i.e.
  including the conversions to and from the library's representation (for prefstyle:
  uint8 -> float32 tensor, lookup, round and back to uint8 HWC).

Peak memory is the worker's peak resident set size (``VmHWM`` in ``/proc/self/status``),
reset through ``/proc/self/clear_refs`` after the worker has loaded the image and built its
input, so ``peak_mb`` is the peak while processing and includes the interpreter, the imported
libraries, the input and the output; ``baseline_mb`` is the resident size just before.
``peak_mb_setup`` is the peak before that (imports, loading the image, building the input) and
``peak_mb_whole_process`` the largest of all.

The image is a real photograph (scikit-image's astronaut, bundled with the package) resized
to the requested size with a 4:3 aspect ratio, plus mild noise (so that neighbouring pixels
are not all identical). The LUT is a smooth, strongly non-identity 33^3 LUT (a colour matrix,
per-channel gamma and low-frequency sinusoidal hue/tone bends, clipped to [0, 1]).

The comparison ``diff_vs_pillow`` rounds prefstyle's float output to 8 bits and reports the
absolute difference to Pillow's output in 8-bit levels (max, mean, share of channel values
differing by more than 1 level). Pillow quantises its table to 16-bit fixed point and
interpolates in integers, so differences of 1 level are expected.

Note: timings are wall-clock on a shared machine; ``loadavg`` before and after each worker is
recorded in the output so that runs disturbed by other processes can be recognised.

Usage::

    python benchmarks/bench_lut.py --megapixels 12 --repeats 5 --size 33

prints one JSON object on stdout (and writes it to ``--out`` when given).
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
import tempfile
import time
from pathlib import Path

from _report import emit

METHODS = ("prefstyle-trilinear", "prefstyle-tetrahedral", "prefstyle-uint8", "pillow")
TARGET_SECONDS = 0.5
TARGET_PEAK_MB = 1.5 * 1024


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------


def image_size(megapixels: float) -> tuple[int, int]:
    """(width, height) with a 4:3 aspect ratio and about ``megapixels`` million pixels."""
    width = max(4, round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    height = max(3, round(width * 3 / 4))
    return width, height


def make_image(megapixels: float, seed: int = 0):
    """An 8-bit ``(H, W, 3)`` numpy photograph of the requested size."""
    import cv2
    import numpy as np
    from skimage import data

    width, height = image_size(megapixels)
    photo = data.astronaut()
    img = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    for r0 in range(0, height, 512):  # chunked, to keep this process small too
        part = img[r0 : r0 + 512].astype(np.int16)
        part += rng.integers(-3, 4, size=part.shape, dtype=np.int16)
        img[r0 : r0 + 512] = np.clip(part, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def make_lut(size: int, seed: int = 0):
    """A smooth, strongly non-identity ``(3, S, S, S)`` float32 LUT with values in [0, 1]."""
    if not 2 <= size <= 65:
        raise SystemExit(f"--size must be in 2..65 (Pillow's Color3DLUT limit), got {size}")
    import torch

    from prefstyle.imaging.lut import lut_from_function

    gen = torch.Generator().manual_seed(seed)
    matrix = torch.eye(3) + 0.15 * (torch.rand(3, 3, generator=gen) - 0.5)
    gamma = 0.8 + 0.4 * torch.rand(3, generator=gen)
    phase = 2 * math.pi * torch.rand(3, generator=gen)

    def fn(x):
        y = torch.einsum("ij,bjhw->bihw", matrix, x).clamp(0, 1) ** gamma.view(1, 3, 1, 1)
        bend = 0.04 * torch.sin(2 * math.pi * x.roll(1, dims=1) + phase.view(1, 3, 1, 1))
        return (y + bend).clamp(0, 1)

    return lut_from_function(fn, size)


# --------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float | None:
    return _status_mb("VmRSS")


# --------------------------------------------------------------------------------------
# worker
# --------------------------------------------------------------------------------------


def _timed(fn, repeats: int) -> dict:
    fn()  # warm-up (allocator, caches, lazy imports); not counted
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "times_s": times}


def _measure(fn, repeats: int) -> dict:
    baseline = rss_mb()
    resettable = reset_peak()
    result = _timed(fn, repeats)
    result["baseline_mb"] = baseline
    result["peak_mb"] = peak_mb()
    result["peak_is_whole_process"] = not resettable  # /proc/self/clear_refs unavailable
    return result


def run_worker(method: str, image_path: str, lut_path: str, repeats: int) -> dict:
    import numpy as np

    arr = np.load(image_path)
    lut_np = np.load(lut_path)  # (3, S, S, S) float32, lut[c, b, g, r]
    size = lut_np.shape[-1]
    if method == "pillow":
        from PIL import Image, ImageFilter

        table = np.ascontiguousarray(lut_np.transpose(1, 2, 3, 0))  # (b, g, r, c): red fastest
        flt = ImageFilter.Color3DLUT(size, table)
        pil_img = Image.fromarray(arr)

        def lookup():
            return pil_img.filter(flt)

        def end_to_end():
            return np.asarray(Image.fromarray(arr).filter(flt))

    elif method == "prefstyle-uint8":
        import torch

        from prefstyle.imaging.lut import apply_lut_uint8

        lut = torch.from_numpy(lut_np)

        def lookup():
            return apply_lut_uint8(arr, lut)

        end_to_end = lookup

    else:
        import torch

        from prefstyle.imaging.lut import apply_lut

        lut = torch.from_numpy(lut_np)
        interp = method.split("-", 1)[1]
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].float().div_(255).contiguous()  # planar (1, 3, H, W)

        def lookup():
            with torch.no_grad():
                return apply_lut(x, lut, interp)

        def end_to_end():
            with torch.no_grad():
                t = torch.from_numpy(arr).permute(2, 0, 1)[None].float().div_(255)
                y = apply_lut(t, lut, interp)
                return y.mul_(255).round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0).contiguous().numpy()

    setup_peak = peak_mb()  # before any reset: import, image load, input conversion
    out = {"lookup_only": _measure(lookup, repeats), "end_to_end_u8": _measure(end_to_end, repeats)}
    out["peak_mb_setup"] = setup_peak
    out["peak_mb_whole_process"] = max(setup_peak, out["lookup_only"]["peak_mb"], out["end_to_end_u8"]["peak_mb"])
    if method != "pillow":
        import torch

        out["torch_threads"] = torch.get_num_threads()
    return out


def run_compare(image_path: str, lut_path: str) -> dict:
    """prefstyle (rounded to 8 bits) vs Pillow on the same image: differences in 8-bit levels."""
    import numpy as np
    import torch
    from PIL import Image, ImageFilter

    from prefstyle.imaging.lut import apply_lut

    arr = np.load(image_path)
    lut = torch.from_numpy(np.load(lut_path))
    size = lut.shape[-1]
    table = lut.permute(1, 2, 3, 0).contiguous().numpy()
    pil = np.asarray(Image.fromarray(arr).filter(ImageFilter.Color3DLUT(size, table)))
    res = {}
    for interp in ("trilinear", "tetrahedral"):
        with torch.no_grad():
            x = torch.from_numpy(arr).permute(2, 0, 1)[None].float().div_(255)
            y = apply_lut(x, lut, interp).mul_(255).round_().clamp_(0, 255).to(torch.uint8)
        ours = y[0].permute(1, 2, 0).numpy()
        diff = np.abs(ours.astype(np.int16) - pil.astype(np.int16))
        res[f"prefstyle-{interp}"] = {
            "max_levels": int(diff.max()),
            "mean_levels": float(diff.mean()),
            "share_gt_1_level": float((diff > 1).mean()),
        }
    return res


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------


def _loadavg() -> list[float] | None:
    try:
        return [float(v) for v in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        return None


def _subprocess(args: list[str]) -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=33, help="LUT nodes per axis (Pillow allows 2..65)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--image", help=argparse.SUPPRESS)
    ap.add_argument("--lut", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        if args.worker == "compare":
            result = run_compare(args.image, args.lut)
        else:
            result = run_worker(args.worker, args.image, args.lut, args.repeats)
        print(json.dumps(result))
        return 0

    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods: {sorted(unknown)}")
    width, height = image_size(args.megapixels)
    report: dict = {
        "benchmark": "3D LUT apply",
        "config": {
            "megapixels": args.megapixels,
            "width": width,
            "height": height,
            "lut_size": args.size,
            "repeats": args.repeats,
            "statistic": "median after 1 untimed warm-up",
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "targets": {"lookup_seconds": TARGET_SECONDS, "peak_mb": TARGET_PEAK_MB},
        "notes": [
            "lookup_only: float32 (1,3,H,W) tensor in, tensor out (prefstyle); PIL image in, PIL image out (Pillow)",
            "end_to_end_u8: uint8 HxWx3 numpy in and out, conversions included",
            "peak_mb: VmHWM while timing (reset just before), whole process: interpreter, libraries, input, output",
            "wall-clock times on a possibly shared machine: see loadavg_before_after",
        ],
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench_lut_") as tmp:
        import numpy as np

        image_path = os.path.join(tmp, "image.npy")
        lut_path = os.path.join(tmp, "lut.npy")
        np.save(image_path, make_image(args.megapixels))
        np.save(lut_path, make_lut(args.size).numpy())
        common = ["--image", image_path, "--lut", lut_path, "--repeats", str(args.repeats)]
        for method in methods:
            before = _loadavg()
            result = _subprocess(["--worker", method, *common])
            result["loadavg_before_after"] = [before, _loadavg()]
            report["results"][method] = result
        if "pillow" in methods:
            report["diff_vs_pillow"] = _subprocess(["--worker", "compare", *common])
    # The targets are for 12 MP: smaller runs are scaled linearly (an estimate, flagged as such).
    scale = 12.0 / args.megapixels
    verdict: dict = {"scaled_from_megapixels": None if args.megapixels == 12 else args.megapixels}
    for method, res in report["results"].items():
        if method.startswith("prefstyle"):
            look = res["lookup_only"]
            verdict[method] = {
                "lookup_s_at_12mp": look["median_s"] * scale,
                "lookup_within_target": look["median_s"] * scale <= TARGET_SECONDS,
                "peak_within_target": look["peak_mb"] < TARGET_PEAK_MB,
            }
            if "pillow" in report["results"]:
                pil = report["results"]["pillow"]["lookup_only"]["median_s"]
                # > 1: prefstyle's lookup is faster than Pillow's
                verdict[method]["speedup_vs_pillow"] = pil / look["median_s"] if look["median_s"] > 0 else None
    report["verdict"] = verdict
    emit(report, args.out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
