"""Benchmark: `prefstyle enhance` on 12-megapixel JPEGs with the default (or a given) model, on the CPU.

Three measurements:

* ``per_image_s`` - one 12 MP JPEG end to end inside the process: decode (``read_image``),
  the model's transform for a personalized profile (:func:`prefstyle.cli.batch_io.enhance_pixels`,
  the code ``enhance`` runs) and encode (``write_like``, JPEG quality 95, EXIF/ICC kept); the
  median of ``--repeats`` runs after one warm-up, with the split into the three parts.
* ``batch`` - the command itself, ``prefstyle enhance IN/ --profile P --out OUT [--jobs J]``, on
  ``--batch`` such photos, in a fresh process (model loading and start-up included): wall time,
  photos per second, and the process's peak resident memory (``ru_maxrss`` of the child).
* the profile is made once by ``personalize`` from 16 reference pairs of real photos
  (:func:`bench_pps.references`).

The photos are scikit-image's astronaut (and three other sample photos) upscaled to 4:3
12 MP with mild noise, so that JPEG sizes (3-6 MB) are like a camera's.

Usage::

    python benchmarks/bench_enhance.py [--model NAME_OR_RUN] [--megapixels 12] [--repeats 5]
        [--batch 50] [--jobs 1 2] [--full-render] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from _report import emit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv: list[str] | None = None) -> dict:
    from bench_pps import big_photo, references

    from prefstyle.cli.batch_io import enhance_pixels
    from prefstyle.imaging.io import read_image, write_image, write_like
    from prefstyle.models import load as load_model
    from prefstyle.models import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--full-render", action="store_true",
                    help="time enhance --full-render (no per-photo LUT fast path for 8-bit photos)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_enhance_"))
    src = tmp / "in"
    img = big_photo(args.megapixels)[0]
    write_image(src / "photo_000.jpg", img, quality=92)
    model = load_model(args.model)
    profile = model.personalize(references(16), "bench-user")
    prof_path = profile.save(tmp / "profile.json")
    if model.name != args.model:  # a run folder: the CLI must load the same weights
        doc = json.loads(prof_path.read_text())
        doc["model_config"]["source"] = str(Path(args.model).resolve())
        prof_path.write_text(json.dumps(doc))
    elif "source" not in profile.model_config:
        doc = json.loads(prof_path.read_text())
        doc["model_config"]["source"] = args.model
        prof_path.write_text(json.dumps(doc))

    parts: dict[str, list[float]] = {"decode": [], "transform": [], "encode": [], "total": []}
    for k in range(args.repeats + 1):
        t0 = time.perf_counter()
        data = read_image(src / "photo_000.jpg")
        t1 = time.perf_counter()
        with torch.inference_mode():
            y = enhance_pixels(model, profile, data, lut_path=not args.full_render)
        t2 = time.perf_counter()
        write_like(tmp / "out_single.jpg", y, data, quality=95)
        t3 = time.perf_counter()
        if k:  # the first run is the warm-up
            for name, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                parts[name].append(v)
    per_image = {name: round(statistics.median(v), 4) for name, v in parts.items()}

    for i in range(1, args.batch):
        (src / f"photo_{i:03d}.jpg").write_bytes((src / "photo_000.jpg").read_bytes())
    batch = {}
    for jobs in args.jobs:
        out = tmp / f"out_j{jobs}"
        args_cli = ["enhance", str(src), "--profile", str(prof_path), "--out", str(out), "--jobs", str(jobs)]
        args_cli += ["--full-render"] if args.full_render else []
        # the child reports its own peak resident memory (threads included) on its last line
        code = ("import resource, sys\nfrom prefstyle.cli import app\n"
                "try:\n    app(sys.argv[1:], standalone_mode=False)\nfinally:\n"
                "    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", code, *args_cli], check=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        peak_kb = int(run.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
        written = len(list(out.glob("*.jpg")))
        batch[f"jobs_{jobs}"] = {"photos": args.batch, "written": written, "wall_s": round(wall, 2),
                                 "photos_per_s": round(args.batch / wall, 3), "peak_rss_mb": round(peak_kb / 1024, 1)}
    result = {
        "benchmark": "enhance_12mp",
        "model": args.model,
        "model_name": model.name,
        "full_render": args.full_render,
        "command": "python benchmarks/bench_enhance.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "megapixels": round(img.shape[-1] * img.shape[-2] / 1e6, 2),
        "jpeg_bytes": (src / "photo_000.jpg").stat().st_size,
        "repeats": args.repeats,
        "per_image_s": per_image,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
