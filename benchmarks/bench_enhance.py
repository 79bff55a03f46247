"""Benchmark: `prefstyle enhance` on 12-megapixel JPEGs with the default (or a given) model, on the CPU.

Three measurements:

* ``per_image_s`` - one 12 MP JPEG end to end inside the process: decode (``read_image``),
  the model's transform for a personalized profile (:func:`prefstyle.cli.batch_io.enhance_pixels`,
  the code ``enhance`` runs) and encode (``write_like``, JPEG quality 95, EXIF/ICC kept); the
  median of ``--repeats`` runs after one warm-up, with the split into the three parts.
* ``batch`` - the command itself, ``prefstyle enhance IN/ --profile P --out OUT [--jobs J]``, on
  ``--batch`` such photos, in a fresh process (model loading and start-up included): wall time,
  photos per second, and the process's peak resident memory (``VmHWM`` of the child).
* the profile is made once by ``personalize`` from 16 reference pairs of real photos
  (:func:`bench_pps.references`).

The photos are scikit-image's astronaut (and three other sample photos) upscaled to 4:3
12 MP with mild noise, so that JPEG sizes (3-6 MB) are like a camera's.

Usage::

    python benchmarks/bench_enhance.py [--model NAME_OR_RUN] [--megapixels 12] [--repeats 5]
        [--batch 50] [--jobs 1 2] [--full-render] [--out FILE]

``--compare``: prefstyle against the floor, a plain Pillow script (decode the JPEG, apply the
same taste exported as one 33³ LUT with ``ImageFilter.Color3DLUT``, encode at the same quality
and chroma subsampling with EXIF and ICC, one thread), on the same ``--photos`` (default: ten
12 MP JPEGs with EXIF and an sRGB ICC profile made from the bundled photos, in a temporary
folder)::

    python benchmarks/bench_enhance.py --compare [--photos DIR] [--rounds 3] [--model NAME]

* in process, alternating photo by photo (prefstyle's :func:`prefstyle.cli.batch_io.enhance_file`,
  then the plain pipeline, then, for a profile ``enhance`` renders without torch,
  :func:`prefstyle.cli.batch_io.enhance_file_torch_free`; one thread each): seconds per photo (wall
  and CPU) and their ratios, per round and the median over ``--rounds``;
* the commands, in fresh processes, alternating: ``prefstyle enhance DIR --jobs 1``, the plain
  script, ``prefstyle enhance DIR --jobs 2``: wall time, photos/s and peak resident memory of each
  (start-up included: also timed alone, ``enhance`` on an empty folder, and subtracted for the
  photos/s after start-up; ``VmHWM``, and the peak of the anonymous part, ``RssAnon``, which leaves
  out the pages of shared libraries: importing the CUDA build of torch alone maps about 440 MB
  of them).

``--scaling``: how throughput grows with the cores, on the same ``--photos``: for k = 1 ... the
cores this process may use, ``prefstyle enhance DIR --jobs k`` in a fresh process confined to
the first k cores (``sched_setaffinity``; ``enhance`` sizes its threads from that set), and
``enhance`` on an empty folder confined the same way for its start-up, in ``--rounds``
alternating rounds; photos/s after start-up per k, and the speedup over one core. Unlike
``--jobs 1`` against ``--jobs 2`` on all cores, this does not count as "one job" a process that
already keeps more than one core busy::

    python benchmarks/bench_enhance.py --scaling [--photos DIR] [--rounds 3] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _report import emit, scratch_dir

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


# The children report their own peak resident memory as VmHWM (ru_maxrss would include the
# forked parent's, which Linux carries over exec).
PEAK = """
def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

PLAIN_PIPELINE = (
    PEAK
    + """
import sys, time
from pathlib import Path
import numpy as np
from PIL import Image, ImageFilter
lut = np.load(sys.argv[1])
size = lut.shape[-1]
flt = ImageFilter.Color3DLUT(size, np.ascontiguousarray(lut.transpose(1, 2, 3, 0)).reshape(-1))
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for f in sys.argv[3:]:
    with Image.open(f) as im:
        exif, icc = im.info.get("exif"), im.info.get("icc_profile")
        im.convert("RGB").filter(flt).save(out / Path(f).name, quality=95, subsampling=0, exif=exif, icc_profile=icc)
print("PEAK_RSS_KB", peak_kb(), file=sys.stderr)
"""
)

CLI_CHILD = PEAK + (
    "import sys\nfrom prefstyle.cli import main\n"
    "try:\n    rc = main(sys.argv[1:])\nfinally:\n"
    "    print('PEAK_RSS_KB', peak_kb(), file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def make_photos(folder: Path, n: int = 10, width: int = 4000, height: int = 3000) -> list[Path]:
    """``n`` JPEGs (quality 92) of the bundled photos upscaled to ``width`` x ``height`` with mild
    noise, each with a small EXIF block and LittleCMS's sRGB ICC profile."""
    import numpy as np
    from PIL import Image

    from prefstyle.data.photos import bundled_photos
    from prefstyle.imaging.io import srgb_icc_profile

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i, photo in enumerate(bundled_photos()[:n]):
        with Image.open(photo.path) as im:
            big = im.convert("RGB").resize((width, height), Image.BICUBIC)
        arr = np.asarray(big).astype(np.int16) + rng.integers(-3, 4, size=(height, width, 3), dtype=np.int16)
        ex = Image.Exif()
        ex[271], ex[272], ex[274], ex[306] = "Bench", "Camera 12MP", 1, "2024:05:01 12:00:00"
        path = folder / f"photo_{i:02d}.jpg"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(
            path, quality=92, exif=ex.tobytes(), icc_profile=srgb_icc_profile()
        )
        out.append(path)
    return out


def _anon_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _child(
    args: list[str], code: str, cpus: set[int] | None = None, ok: tuple[int, ...] = (0,)
) -> tuple[float, float, float]:
    """Run ``python -c code args`` (on the cores ``cpus`` only, when given): (wall seconds, peak
    resident MB it reports, peak anonymous resident MB polled every 20 ms: its own memory, without
    the shared libraries' pages). ``ok``: the exit statuses that are not a failure (``enhance`` of
    an empty folder, the start-up runs, exits 1: "no images in this folder")."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=None if cpus is None else (lambda: os.sched_setaffinity(0, cpus)),
    )
    anon = 0
    while proc.poll() is None:
        anon = max(anon, _anon_kb(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    err = proc.stderr.read()
    if proc.returncode not in ok:
        raise RuntimeError(f"child failed ({proc.returncode}): {err[-500:]}")
    return wall, int(err.rsplit("PEAK_RSS_KB", 1)[1].split()[0]) / 1024, anon / 1024


def _photos_and_profile(args: argparse.Namespace, prefix: str) -> tuple[Path, list[Path], Any, Any, Path]:
    """A scratch folder (``PREFSTYLE_CACHE`` in it), the photos (``--photos`` or ten made), the
    model, a profile it made from 16 reference pairs (``source`` = ``--model``) and its path."""
    from bench_pps import references

    from prefstyle.models import load as load_model

    tmp = scratch_dir(prefix)
    # the commands find PieNet's network (exported by the first of them) in this run's own cache
    os.environ["PREFSTYLE_CACHE"] = str(tmp / "cache")
    photos = sorted(args.photos.glob("*.jp*g")) if args.photos else make_photos(tmp / "in")
    model = load_model(args.model)
    profile = model.personalize(references(16), "bench-user")
    profile.model_config = {**profile.model_config, "source": args.model}
    return tmp, photos, model, profile, profile.save(tmp / "profile.json")


def compare(args: argparse.Namespace) -> dict:
    """The ``--compare`` mode (module docstring)."""
    import numpy as np
    from PIL import Image, ImageFilter

    from prefstyle.cli.batch_io import enhance_file, enhance_file_torch_free
    from prefstyle.eval.lut_export import default_images, profile_to_lut
    from prefstyle.models import load as load_model
    from prefstyle.models.lut_forms import torch_free_enhance_profile

    tmp, photos, model, profile, prof_path = _photos_and_profile(args, "bench_enhance_cmp_")
    folder = photos[0].parent
    model.prepare_torch_free()  # what `personalize` does after saving a profile
    lut = profile_to_lut(model, profile, size=33, images=default_images(system=False))
    np.save(tmp / "lut.npy", lut.numpy())
    table = lut.permute(1, 2, 3, 0).reshape(-1).numpy()
    flt = ImageFilter.Color3DLUT(33, table)

    def plain(src: Path, dst: Path) -> None:
        with Image.open(src) as im:
            exif, icc = im.info.get("exif"), im.info.get("icc_profile")
            im.convert("RGB").filter(flt).save(dst, quality=95, subsampling=0, exif=exif, icc_profile=icc)

    torch.set_num_threads(1)
    for sub in ("a", "b", "c"):
        (tmp / sub).mkdir()
    rounds = []
    for _ in range(args.rounds):
        model = load_model(args.model)  # a fresh model: no LUT cached from the last round
        form = torch_free_enhance_profile(prof_path)  # what `enhance` renders without torch, if anything
        t = {"prefstyle": [0.0, 0.0], "plain": [0.0, 0.0], "torch_free": [0.0, 0.0]}
        for src in photos:
            for name in ("prefstyle", "plain", "torch_free"):
                w0, c0 = time.perf_counter(), time.process_time()
                if name == "prefstyle":
                    enhance_file(model, profile, src, tmp / "a" / src.name, quality=95, threads=1)
                elif name == "torch_free":
                    if form is None:
                        continue
                    enhance_file_torch_free(form, src, tmp / "c" / src.name, fallback=print, quality=95, threads=1)
                else:
                    plain(src, tmp / "b" / src.name)
                t[name][0] += time.perf_counter() - w0
                t[name][1] += time.process_time() - c0
        n = len(photos)
        rounds.append(
            {
                "prefstyle_s_per_photo": round(t["prefstyle"][0] / n, 3),
                "plain_s_per_photo": round(t["plain"][0] / n, 3),
                "ratio_wall": round(t["prefstyle"][0] / t["plain"][0], 3),
                "prefstyle_cpu_s_per_photo": round(t["prefstyle"][1] / n, 3),
                "plain_cpu_s_per_photo": round(t["plain"][1] / n, 3),
                "ratio_cpu": round(t["prefstyle"][1] / t["plain"][1], 3),
            }
        )
        if form is not None:  # the path `enhance` takes for this profile's 8-bit photos
            rounds[-1]["torch_free_s_per_photo"] = round(t["torch_free"][0] / n, 3)
            rounds[-1]["ratio_wall_torch_free"] = round(t["torch_free"][0] / t["plain"][0], 3)
            rounds[-1]["ratio_cpu_torch_free"] = round(t["torch_free"][1] / t["plain"][1], 3)
        print(json.dumps(rounds[-1]), file=sys.stderr)

    names = [str(p) for p in photos]
    cli: dict[str, list[dict]] = {"prefstyle_start_up": [], "prefstyle_jobs_1": [], "plain": [], "prefstyle_jobs_2": []}
    (tmp / "empty").mkdir()
    for k in range(args.rounds):
        for name in cli:
            out = tmp / f"cli_{name}_{k}"
            if name == "prefstyle_start_up":  # start-up and model loading alone: an empty input folder
                wall, peak, anon = _child(
                    ["enhance", str(tmp / "empty"), "--profile", str(prof_path), "--out", str(out)],
                    CLI_CHILD,
                    ok=(0, 1),
                )
            elif name == "plain":
                wall, peak, anon = _child([str(tmp / "lut.npy"), str(out), *names], PLAIN_PIPELINE)
            else:
                jobs = name[-1]
                wall, peak, anon = _child(
                    ["enhance", str(folder), "--profile", str(prof_path), "--out", str(out), "--jobs", jobs], CLI_CHILD
                )
            cli[name].append(
                {
                    "wall_s": round(wall, 2),
                    "photos_per_s": round(len(photos) / wall, 3),
                    "peak_rss_mb": round(peak, 1),
                    "peak_anon_mb": round(anon, 1),
                }
            )
            print(name, json.dumps(cli[name][-1]), file=sys.stderr)

    def med(rows: list[dict], key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 3)

    start = med(cli["prefstyle_start_up"], "wall_s")
    after_start = {
        name: round(len(photos) / max(1e-9, med(cli[name], "wall_s") - start), 3)
        for name in ("prefstyle_jobs_1", "prefstyle_jobs_2")
    }

    return {
        "benchmark": "enhance_vs_plain_pillow",
        "model": args.model,
        "command": "python benchmarks/bench_enhance.py " + " ".join(sys.argv[1:]),
        "photos": len(photos),
        "megapixels": round(Image.open(photos[0]).width * Image.open(photos[0]).height / 1e6, 2),
        "in_process_one_thread": {
            "rounds": rounds,
            "median_ratio_wall": med(rounds, "ratio_wall"),
            "median_ratio_cpu": med(rounds, "ratio_cpu"),
            **(
                {
                    "median_ratio_wall_torch_free": med(rounds, "ratio_wall_torch_free"),
                    "median_ratio_cpu_torch_free": med(rounds, "ratio_cpu_torch_free"),
                }
                if "ratio_wall_torch_free" in rounds[0]
                else {}
            ),
        },
        "commands": {
            name: {
                "runs": rows,
                "median_wall_s": med(rows, "wall_s"),
                "median_photos_per_s": med(rows, "photos_per_s"),
                "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
                "max_peak_anon_mb": max(r["peak_anon_mb"] for r in rows),
            }
            for name, rows in cli.items()
        },
        "photos_per_s_after_start_up": after_start,
        "cpus": os.cpu_count(),
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "torch": torch.__version__,
    }


def scaling(args: argparse.Namespace) -> dict:
    """The ``--scaling`` mode (module docstring)."""
    tmp, photos, _, _, prof_path = _photos_and_profile(args, "bench_enhance_scaling_")
    folder = photos[0].parent
    (tmp / "empty").mkdir()
    usable = sorted(os.sched_getaffinity(0))
    runs: dict[int, dict[str, list[float]]] = {k: {"start_up_s": [], "wall_s": []} for k in range(1, len(usable) + 1)}
    for r in range(args.rounds):
        for k, rows in runs.items():
            cpus = set(usable[:k])
            enhance = ["enhance", "--profile", str(prof_path), "--jobs", str(k)]
            start, _, _ = _child(
                [*enhance, str(tmp / "empty"), "--out", str(tmp / f"e{k}_{r}")], CLI_CHILD, cpus, ok=(0, 1)
            )
            wall, _, _ = _child([*enhance, str(folder), "--out", str(tmp / f"o{k}_{r}")], CLI_CHILD, cpus)
            rows["start_up_s"].append(round(start, 3))
            rows["wall_s"].append(round(wall, 3))
            print(f"round {r + 1}: {k} core(s), --jobs {k}: {wall:.2f} s (start-up {start:.2f} s)", file=sys.stderr)
    rates = {
        k: len(photos) / max(1e-9, statistics.median(v["wall_s"]) - statistics.median(v["start_up_s"]))
        for k, v in runs.items()
    }
    return {
        "benchmark": "enhance_scaling",
        "model": args.model,
        "command": "python benchmarks/bench_enhance.py " + " ".join(sys.argv[1:]),
        "photos": len(photos),
        "rounds": args.rounds,
        "per_cores": {
            str(k): {
                **v,
                "photos_per_s_after_start_up": round(rates[k], 3),
                "speedup_over_one_core": round(rates[k] / rates[1], 3),
            }
            for k, v in runs.items()
        },
        "cpus": usable,
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> dict:
    from bench_pps import big_photo, references

    from prefstyle.cli.batch_io import enhance_pixels
    from prefstyle.imaging.io import read_image, write_image, write_like
    from prefstyle.models import DEFAULT_MODEL
    from prefstyle.models import load as load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--full-render",
        action="store_true",
        help="time enhance --full-render (no per-photo LUT fast path for 8-bit photos)",
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--compare", action="store_true", help="prefstyle against the plain Pillow pipeline (docstring)")
    ap.add_argument(
        "--photos", type=Path, default=None, help="--compare, --scaling: a folder of JPEGs (default: ten made)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="--compare, --scaling: alternating rounds")
    ap.add_argument("--scaling", action="store_true", help="photos/s on 1 ... all cores, --jobs = cores (docstring)")
    args = ap.parse_args(argv)
    if args.scaling:
        result = scaling(args)
        emit(result, args.out)
        return result
    if args.compare:
        result = compare(args)
        emit(result, args.out)
        return result

    tmp = scratch_dir("bench_enhance_")
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
        code = PEAK + (
            "import sys\nfrom prefstyle.cli import app\n"
            "try:\n    app(sys.argv[1:], standalone_mode=False)\nfinally:\n"
            "    print('PEAK_RSS_KB', peak_kb(), file=sys.stderr)\n"
        )
        t0 = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-c", code, *args_cli],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wall = time.perf_counter() - t0
        peak_kb = int(run.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
        written = len(list(out.glob("*.jpg")))
        batch[f"jobs_{jobs}"] = {
            "photos": args.batch,
            "written": written,
            "wall_s": round(wall, 2),
            "photos_per_s": round(args.batch / wall, 3),
            "peak_rss_mb": round(peak_kb / 1024, 1),
        }
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
