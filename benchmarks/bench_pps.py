"""Benchmark: the three PPS baselines (usd, upe, exemplar) on the CPU.

For each model, two timings, each the median of ``--repeats`` runs after one untimed warm-up:

* ``personalize_s`` - :meth:`personalize` for a new user from ``--refs`` reference pairs
  (256-px renditions, like the simulated crowd's images). For ``usd`` this is the
  inference-time training of a new decoder (encoder frozen; ``adapt_steps`` Adam steps); for
  ``upe`` one forward pass of the frozen backbone and the Transformer; for ``exemplar`` the
  encoding of the reference triplets.
* ``enhance_s`` - :meth:`render` of one ``--megapixels`` photograph (4:3) for that user: the
  whole path from the float tensor in [0,1] to the output tensor (thumbnail, network, colour
  transform applied at full resolution; for ``usd`` the coarse-grid query and the guided
  upsampling). Image decoding/encoding is not included.
* ``enhance_8bit_s`` - for models that give one LUT per image (``luts``, e.g. ``sliders``): the
  path ``prefstyle enhance`` takes for 8-bit photos on the CPU (LUT predicted from the
  thumbnail, applied by Pillow's LUT filter on ``torch.get_num_threads()`` strips), from the
  decoded 8-bit pixels to the output; image decoding/encoding not included.
  ``transform_8bit_s``: the colour transform alone on an ``(H,W,3)`` uint8 array (the LUT
  predicted from the image, then applied), without the float/uint8 conversions.

Models come from trained checkpoints (``--checkpoint NAME=PATH``, a run folder) or, without
one, are built untrained with the architecture of ``configs/NAME.yaml`` (the timings do not
depend on the weights; an untrained ``usd`` still runs all its adaptation steps).

The photograph is scikit-image's astronaut resized to the requested size with mild noise;
references are edits of scikit-image photos. Wall-clock on a shared machine: ``loadavg`` before
and after each model is recorded so that disturbed runs can be recognised.

Usage::

    python benchmarks/bench_pps.py --megapixels 12 --repeats 5 --refs 16 [--threads 2] [--out FILE]

prints one JSON object on stdout (and writes it to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _report import emit

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("usd", "upe", "exemplar", "pienet", "sliders")  # pienet needs --checkpoint pienet=RUN


def _photo(name: str) -> torch.Tensor:
    from skimage import data

    arr = getattr(data, name)()
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div(255.0)[None]


def big_photo(megapixels: float, seed: int = 0) -> torch.Tensor:
    """``(1,3,H,W)``, 4:3, about ``megapixels`` MP: astronaut, resized, plus mild noise."""
    h = round(math.sqrt(megapixels * 1e6 * 3 / 4))
    w = round(h * 4 / 3)
    x = F.interpolate(_photo("astronaut"), size=(h, w), mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    return (x + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def references(n: int, size: int = 256) -> list[Any]:
    """``n`` reference pairs: crops of real photos, preferred = a warmer, brighter edit."""
    from prefstyle.imaging.params import RetouchParams
    from prefstyle.imaging.pipeline import apply_retouch
    from prefstyle.models.base import Reference

    names = ("astronaut", "chelsea", "coffee", "rocket")
    warm = RetouchParams(exposure=0.3, temperature=0.3, contrast=0.1)
    cold = RetouchParams(exposure=-0.2, temperature=-0.3, saturation=-0.2)
    out = []
    for i in range(n):
        x = _photo(names[i % len(names)])
        hh, ww = x.shape[-2:]
        s = 0.5 + 0.5 * ((i // len(names)) % 2)
        ch, cw = int(hh * s), int(ww * s)
        x = F.interpolate(x[..., :ch, :cw], size=(size, size), mode="area").clamp(0, 1)
        out.append(
            Reference(
                scene=f"s{i}",
                preferred=apply_retouch(x, warm)[0].clamp(0, 1),
                other=apply_retouch(x, cold)[0].clamp(0, 1),
                source=x[0],
            )
        )
    return out


def build(name: str, checkpoint: str | None) -> tuple[Any, str]:
    """A trained checkpoint, else the packaged model, else the model untrained with the architecture
    of ``configs/NAME.yaml``."""
    from prefstyle.errors import PrefstyleError
    from prefstyle.models.loading import architecture, load

    if checkpoint:
        return load(checkpoint), f"checkpoint {checkpoint}"
    try:
        return load(name), "packaged"
    except PrefstyleError:  # a trainable model without packaged weights
        pass
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    model_cfg = {k: v for k, v in cfg["task"].items() if k not in ("name", "module")}
    model_cfg.setdefault("n_users", 0)  # usd: no training users, only the generic decoder
    arch = architecture(name)
    assert arch is not None, name
    return arch.to_model(arch.build(model_cfg).eval(), model_cfg), f"untrained, architecture of configs/{name}.yaml"


def timed(fn: Any, repeats: int) -> tuple[float, list[float], Any]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS[:3]), choices=MODELS)
    ap.add_argument("--checkpoint", action="append", default=[], help="NAME=PATH (a trained run folder)")
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--refs", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpts = dict(item.split("=", 1) for item in args.checkpoint)
    img = big_photo(args.megapixels)
    refs = references(args.refs)
    result: dict[str, Any] = {
        "benchmark": "pps_baselines",
        "megapixels": round(img.shape[-1] * img.shape[-2] / 1e6, 2),
        "image_shape": list(img.shape),
        "refs": args.refs,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "models": {},
    }
    for name in args.models:
        load0 = os.getloadavg()
        model, source = build(name, ckpts.get(name))
        with torch.no_grad():
            # models that cache per-scene work (sliders) start cold each time: a new user on new scenes
            p_med, p_all, profile = timed(
                lambda m=model: (getattr(m, "clear_cache", lambda: None)(), m.personalize(refs, "bench-user"))[1],
                args.repeats,
            )
            e_med, e_all, out = timed(lambda m=model, p=profile: m.render(img, p), args.repeats)
        assert out.shape == img.shape
        extra = {}
        with torch.no_grad():
            gives_luts = model.luts(img, profile) is not None
        if gives_luts:
            from prefstyle.cli.batch_io import enhance_pixels
            from prefstyle.imaging.io import ImageData
            from prefstyle.imaging.lut import apply_lut_uint8

            data = ImageData(pixels=(img[0] * 255).round() / 255, bit_depth=8)
            u8 = (img[0] * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
            with torch.no_grad():
                q_med, q_all, _ = timed(lambda m=model, p=profile, d=data: enhance_pixels(m, p, d), args.repeats)
                t_med, t_all, _ = timed(
                    lambda m=model, p=profile, a=u8: apply_lut_uint8(a, m.luts(img, p)[0]), args.repeats
                )
            extra = {
                "enhance_8bit_s": round(q_med, 4),
                "enhance_8bit_all_s": [round(t, 4) for t in q_all],
                "transform_8bit_s": round(t_med, 4),
                "transform_8bit_all_s": [round(t, 4) for t in t_all],
            }
        row = {
            "source": source,
            "personalize_s": round(p_med, 4),
            "personalize_all_s": [round(t, 4) for t in p_all],
            "enhance_s": round(e_med, 4),
            "enhance_all_s": [round(t, 4) for t in e_all],
            **extra,
            "loadavg_before": [round(v, 2) for v in load0],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        }
        if name == "usd":
            row["adapt_steps"] = model.adapt_steps
            row["render_side"] = model.render_side
        result["models"][name] = row
        print(f"{name}: personalize {p_med:.3f} s, enhance {e_med:.3f} s", file=sys.stderr)
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
