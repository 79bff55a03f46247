"""Benchmark: how far the 8-bit fast path of `prefstyle enhance` is from the model's own rendering.

For models that render through something richer than one global colour mapping (PieNet: a
network at ``render_size`` whose output is carried to full size by guided upsampling), the fast
path applies one 3D LUT per photo, fitted to the thumbnail's rendering
(:meth:`prefstyle.models.pienet.PieNetModel.luts`). This measures, for the test users of a
simulated crowd (profiles from ``--refs`` of their answers) and real photographs at
``--megapixels``:

* ``edit``: mean ΔE00 between the input and the full rendering (how much the model changes);
* ``fast_vs_full``: mean ΔE00 between the fast path's output and the full rendering, and the
  99th percentile over pixels; and the same ratio per photo (``fast_vs_full / edit``);
* the time of each path (transform only, median over photos).

ΔE00 is computed on a 2x area-downscaled copy (3 MP for 12 MP photos) to bound memory.

Usage::

    python benchmarks/bench_lut_fast_path.py DATA [--model pienet] [--users 10] [--refs 16]
        [--megapixels 12] [--out FILE]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from _report import emit

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def photo(name: str, megapixels: float) -> torch.Tensor:
    """``(1,3,H,W)`` scikit-image sample photo resized to about ``megapixels`` MP (aspect kept)."""
    from skimage import data as skdata

    x = torch.from_numpy(getattr(skdata, name)()).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    s = math.sqrt(megapixels * 1e6 / (h * w))
    return F.interpolate(x, size=(round(h * s), round(w * s)), mode="bicubic", align_corners=False).clamp(0, 1)


def main(argv: list[str] | None = None) -> dict:
    from prefstyle.cli.batch_io import enhance_pixels
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.eval.protocol import load_references
    from prefstyle.imaging.color import delta_e_2000_rgb
    from prefstyle.imaging.io import ImageData
    from prefstyle.models import load as load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="simulated pairs dataset (prefstyle data simulate)")
    ap.add_argument("--model", default="pienet")
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--refs", type=int, default=16)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    m = load_model(args.model)
    ds = PairsDataset.load(args.data)
    users = (ds.splits.get("test") or ds.users())[: args.users]
    photos = {}
    for n in PHOTOS:  # 8-bit photos, as the fast path sees them
        x = photo(n, args.megapixels)
        photos[n] = ImageData(pixels=((x[0] * 255).round() / 255), bit_depth=8)

    def down(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t[None] if t.ndim == 3 else t, 2)

    rows, t_fast, t_full = [], [], []
    with torch.inference_mode():
        for u in tqdm(users, desc="users"):
            prof = m.personalize(load_references(ds, ds.references(u, args.refs)), user=u)
            for n, data in photos.items():
                t = time.perf_counter()
                fast = enhance_pixels(m, prof, data)
                t_fast.append(time.perf_counter() - t)
                t = time.perf_counter()
                full = enhance_pixels(m, prof, data, lut_path=False)
                t_full.append(time.perf_counter() - t)
                x, f, s = down(data.pixels), down(fast), down(full)
                d_edit = delta_e_2000_rgb(x, s).flatten()
                d_fast = delta_e_2000_rgb(f, s).flatten()
                rows.append(
                    {
                        "user": u,
                        "photo": n,
                        "edit": float(d_edit.mean()),
                        "fast_vs_full": float(d_fast.mean()),
                        "fast_vs_full_p99": float(torch.quantile(d_fast[::7], 0.99)),
                    }
                )
    edit = [r["edit"] for r in rows]
    gap = [r["fast_vs_full"] for r in rows]
    ratio = [r["fast_vs_full"] / max(r["edit"], 1e-6) for r in rows if r["edit"] >= 0.5]
    result = {
        "benchmark": "lut_fast_path_fidelity",
        "command": "python benchmarks/bench_lut_fast_path.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": args.model,
        "users": len(users),
        "refs": args.refs,
        "megapixels": args.megapixels,
        "photos": list(PHOTOS),
        "size": list(next(iter(photos.values())).pixels.shape[-2:]),
        "edit_de00_mean": statistics.mean(edit),
        "edit_de00_max": max(edit),
        "fast_vs_full_de00_mean": statistics.mean(gap),
        "fast_vs_full_de00_max": max(gap),
        "fast_vs_full_p99_max": max(r["fast_vs_full_p99"] for r in rows),
        "gap_over_edit_median": statistics.median(ratio) if ratio else None,
        "gap_over_edit_n": len(ratio),
        "fast_s_median": statistics.median(t_fast),
        "full_s_median": statistics.median(t_full),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "rows": rows,
    }
    emit(result, args.out, shown={k: v for k, v in result.items() if k != "rows"})
    return result


if __name__ == "__main__":
    main()
