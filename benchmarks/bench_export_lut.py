"""How long `prefstyle export-lut` takes, and how far the fast photo decode moves the LUT.

    python benchmarks/bench_export_lut.py --repeats 3 --out benchmarks/results/export_lut.json

* ``cli``: wall time of ``prefstyle export-lut --profile P --out X.cube --force`` (a subprocess,
  everything included: interpreter start, imports, the 42 bundled photos, the 33³ LUT, the file)
  for a ``sliders`` taste (ten sliders moved, brightness 60 % adaptive) and the default ``looks``
  model's taste with no answers: with an empty photo cache (``PREFSTYLE_CACHE`` a fresh folder) and
  with the cache filled by the run before.
* ``decode``: seconds to get the 42 thumbnails in process: the content pool's full decode (what
  export-lut did before), the reduced-scale decode without cache, and from the cache.
* ``lut_delta_e00``: CIEDE2000 between the LUT from the fully decoded photos and the LUT from the
  fast thumbnails, over the 33³ nodes (mean, max) and on the bundled photos rendered with each
  LUT (mean over photos of the mean per-pixel ΔE00).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import emit


def _profiles(folder: Path) -> dict[str, Path]:
    import torch

    from prefstyle.imaging.params import RetouchParams
    from prefstyle.models import load
    from prefstyle.models.base import Profile

    taste = RetouchParams(
        temperature=0.3,
        tint=-0.2,
        exposure=0.45,
        contrast=0.25,
        highlights=-0.3,
        shadows=0.2,
        whites=0.1,
        blacks=-0.15,
        vibrance=0.2,
        saturation=-0.1,
    )
    sliders = Profile(
        model="sliders",
        user="bench",
        model_config={"source": "sliders"},
        tensors={"vectors": taste.to_vector()[None], "gains": torch.tensor([0.6]), "weights": torch.ones(1)},
    )
    out = {"sliders": sliders.save(folder / "sliders.json")}
    out["looks"] = load("looks").personalize([], user="bench").save(folder / "looks.json")
    return out


def _cli_seconds(profile: Path, out: Path, cache: Path) -> float:
    env = {**os.environ, "PREFSTYLE_CACHE": str(cache)}
    exe = Path(sys.executable).parent / "prefstyle"
    t0 = time.perf_counter()
    subprocess.run(
        [str(exe), "export-lut", "--profile", str(profile), "--out", str(out), "--force"],
        check=True,
        env=env,
        capture_output=True,
    )
    return time.perf_counter() - t0


def _full_decode(side: int = 192) -> list:
    from prefstyle.data.pool import ContentPool

    pool = ContentPool.bundled(system=True)
    return [pool.scene_image(f"{pid}#0", size=side) for pid in pool.photo_ids]


def _lut_distance(model_name: str, profile_path: Path, full: list, fast: list) -> dict[str, float]:
    import torch

    from prefstyle.eval.lut_export import profile_to_lut
    from prefstyle.imaging.color import delta_e_2000, rgb_to_lab
    from prefstyle.imaging.lut import apply_lut
    from prefstyle.models import load
    from prefstyle.models.base import Profile

    model = load(model_name)
    prof = Profile.load(profile_path)
    a = profile_to_lut(model, prof, size=33, images=full)
    b = profile_to_lut(model, prof, size=33, images=fast)
    nodes = delta_e_2000(rgb_to_lab(a.reshape(3, -1, 1)[None]), rgb_to_lab(b.reshape(3, -1, 1)[None]))
    per_photo = []
    with torch.no_grad():
        for x in full:
            per_photo.append(float(delta_e_2000(rgb_to_lab(apply_lut(x, a)), rgb_to_lab(apply_lut(x, b))).mean()))
    return {
        "nodes_mean": round(float(nodes.mean()), 4),
        "nodes_max": round(float(nodes.max()), 4),
        "photos_mean": round(statistics.fmean(per_photo), 4),
        "photos_max": round(max(per_photo), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from prefstyle.eval.lut_export import default_images

    result: dict = {"load_before": os.getloadavg()[0], "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        profiles = _profiles(tmp)
        cli: dict = {}
        for name, prof in profiles.items():
            cold, warm = [], []
            for k in range(args.repeats):
                cache = tmp / f"cache-{name}-{k}"
                cold.append(_cli_seconds(prof, tmp / "x.cube", cache))
                warm.append(_cli_seconds(prof, tmp / "x.cube", cache))
            cli[name] = {
                "cold_cache_s": [round(x, 2) for x in cold],
                "warm_cache_s": [round(x, 2) for x in warm],
                "cold_median_s": round(statistics.median(cold), 2),
                "warm_median_s": round(statistics.median(warm), 2),
            }
        result["cli"] = cli

        t0 = time.perf_counter()
        full = _full_decode()
        t1 = time.perf_counter()
        os.environ["PREFSTYLE_CACHE"] = str(tmp / "cache-decode")
        fast = default_images(cache=True)
        t2 = time.perf_counter()
        default_images(cache=True)
        t3 = time.perf_counter()
        result["decode"] = {
            "photos": len(full),
            "full_decode_s": round(t1 - t0, 2),
            "fast_no_cache_s": round(t2 - t1, 2),
            "from_cache_s": round(t3 - t2, 2),
        }
        result["lut_delta_e00"] = {
            name: _lut_distance(name, prof, [x[None] for x in full], [x[None] for x in fast])
            for name, prof in profiles.items()
        }
    result["load_after"] = os.getloadavg()[0]
    emit(result, args.out)


if __name__ == "__main__":
    main()
