"""What `enhance` would cost without torch: a `looks` profile on 8-bit JPEGs, numpy + Pillow only.

A measurement of issue 19's memory aim, not a shipped path (docs/BENCHMARKS.md, "enhance"):
importing the CUDA build of torch alone makes a process about 600 MB resident, so ``enhance
--jobs 1`` can only stay under 600 MB if the LUT fast path never imports torch. This script does
what ``enhance`` does for a ``looks`` profile (decode, meter every ``long_side // 256``-th pixel
like ``slider_taste.metered_ev``, the look with the exposure ``gain · EV`` composed in like
``LookTasteModel.lut``, Pillow's ``Color3DLUT``, JPEG quality 95 4:4:4 with EXIF and ICC) with
numpy mirrors of those functions, and prints its peak resident memory. ``--check`` compares each
photo's LUT with the model's own (``photo_lut``; imports torch, after the timed part).

    python benchmarks/bench_enhance_torchfree.py PROFILE.json OUTDIR PHOTO... [--check]
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from safetensors.numpy import load_file


def peak_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM"))


def srgb_to_linear(x):
    return np.where(
        x > 0.04045, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** np.float32(2.4), x / np.float32(12.92)
    ).astype(np.float32)


def linear_to_srgb(y):
    return np.where(
        y > 0.0031308, 1.055 * np.maximum(y, 0.0031308) ** np.float32(1 / 2.4) - 0.055, y * np.float32(12.92)
    ).astype(np.float32)


def area(y, oh, ow):  # F.interpolate(mode="area") == adaptive_avg_pool2d
    h, w = y.shape
    rows = [y[(i * h) // oh : -(-((i + 1) * h) // oh)].mean(0, dtype=np.float32) for i in range(oh)]
    r = np.stack(rows)
    return np.stack([r[:, (j * w) // ow : -(-((j + 1) * w) // ow)].mean(1, dtype=np.float32) for j in range(ow)], 1)


def metered_ev(u8, meter):
    h, w = u8.shape[:2]
    step = max(1, max(h, w) // 256)
    x = u8[::step, ::step].astype(np.float32) / np.float32(255)
    lin = srgb_to_linear(x)
    y = lin[..., 0] * np.float32(0.2126) + lin[..., 1] * np.float32(0.7152) + lin[..., 2] * np.float32(0.0722)
    hh, ww = y.shape
    s = 64 / max(hh, ww)
    if s < 1:
        y = area(y, max(1, round(hh * s)), max(1, round(ww * s)))
    y = np.maximum(y, np.float32(1e-4)).ravel()
    ybar = y.mean(dtype=np.float32) if meter == "mean" else np.exp(np.log(y).mean(dtype=np.float32))
    return float(np.clip(np.log2(np.float32(0.18) / ybar), -3, 3))


def look_lut(look, gain, ev, size):
    shift = round(gain * ev, 3)
    v = (np.arange(size, dtype=np.float64) / (size - 1)).astype(np.float32)
    grid = np.stack(np.meshgrid(v, v, v, indexing="ij")[::-1])  # (3,S,S,S): [0]=r varies fastest
    grid = grid.reshape(3, -1)
    if shift != 0.0:
        grid = np.clip(linear_to_srgb(srgb_to_linear(grid) * np.float32(math.exp(math.log(2.0) * shift))), 0, 1)
    s = look.shape[-1]
    u = np.clip(grid, 0, 1) * np.float32(s - 1)
    i0 = np.minimum(np.floor(u), s - 2).astype(np.int64)
    f = (u - i0).astype(np.float32)
    flat = look.reshape(3, -1)
    out = np.zeros_like(grid)
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                idx = (i0[2] + db) * s * s + (i0[1] + dg) * s + (i0[0] + dr)
                wgt = (f[0] if dr else 1 - f[0]) * (f[1] if dg else 1 - f[1]) * (f[2] if db else 1 - f[2])
                out += flat[:, idx] * wgt
    return np.clip(out, 0, 1).reshape(3, size, size, size)


check = "--check" in sys.argv
sys.argv = [a for a in sys.argv if a != "--check"]
photos = sys.argv[3:]
prof = json.loads(Path(sys.argv[1]).read_text())
look = load_file(str(Path(sys.argv[1]).with_suffix(".safetensors")))["lut"].astype(np.float32)
gain, meter, size = (
    float(prof["data"].get("gain", 0)),
    prof["data"].get("meter", "mean"),
    prof["model_config"]["lut_size"],
)
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for f in photos:
    with Image.open(f) as im:
        exif, icc = im.info.get("exif"), im.info.get("icc_profile")
        im = im.convert("RGB")
    u8 = np.asarray(im)
    h, w = u8.shape[:2]
    q = max(1, max(h, w) // 256)
    ev = metered_ev(np.ascontiguousarray(u8[::q, ::q]), meter)
    del u8
    lut = look_lut(look, gain, ev, size)
    flt = ImageFilter.Color3DLUT(size, np.ascontiguousarray(lut.transpose(1, 2, 3, 0)).reshape(-1))
    im.filter(flt).save(out / Path(f).name, quality=95, subsampling=0, exif=exif, icc_profile=icc)
print("PEAK_MB", round(peak_mb(), 1), file=sys.stderr)
if check:  # the model's own LUT for each photo (imports torch: after the measurement)
    from prefstyle.cli.personalize_cmd import load_profile_and_model
    from prefstyle.imaging.io import read_image
    from prefstyle.models.render import _metering_view, photo_lut

    prof_t, model = load_profile_and_model(Path(sys.argv[1]))
    for f in photos:
        d = read_image(Path(f))
        ev = metered_ev(_metering_view(d.rgb8, True), meter)
        diff = float(np.abs(photo_lut(model, prof_t, d).numpy() - look_lut(look, gain, ev, size)).max())
        print(f"{Path(f).name}: EV {ev:+.4f}, largest LUT difference {diff:.2e}", file=sys.stderr)
