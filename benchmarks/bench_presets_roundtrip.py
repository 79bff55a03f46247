"""How close do RawTherapee and darktable, given prefstyle's exported preset, come to `prefstyle enhance`?

    python benchmarks/bench_presets_roundtrip.py calibrate --out benchmarks/results/presets_calibration.json
    python benchmarks/bench_presets_roundtrip.py report --out benchmarks/results/presets_roundtrip.json

Photos: the bundled content pool (:func:`prefstyle.data.photos.bundled_photos`), downscaled to
``--side`` px on the long side and written as 16-bit PNG. Calibration uses only the four
``mate/*`` wallpapers (``CALIBRATION``); the report uses only the eight photos shipped inside
Python packages (``HELD_OUT``: scikit-image, scikit-learn, matplotlib), which calibration
never sees.

* ``calibrate``: for each editor slider whose scale is not exact (vibrance and saturation in
  both editors; white balance, exposure and the tone curve are written exactly) and each
  prefstyle value in ``KNOTS``, the editor value that minimises the mean ΔE00 between the
  editor's rendering and prefstyle's (golden-section search over the editor's range, one slider
  at a time, the others neutral; a 2 x 2 montage of the photos, one editor run per
  evaluation). Prints the ``SLIDER_MAP`` tables to paste into ``imaging/presets/pp3.py`` /
  ``dtstyle.py``.
* ``report``: darktable twice: the modules in a sidecar XMP with darktable's "v3.0 JPEG" module
  order (``darktable``), and the ``.dtstyle`` file itself, imported by darktable and applied with
  ``darktable-cli --style`` (``darktable_style``: darktable-cli then runs the exposure module
  before the input profile, on encoded values). For the identity taste (the editors' neutral pipelines against the input) and
  ``--tastes`` tastes drawn from SliderTaste's prior (seed 0; the first is neutral, so rows
  1..N; adaptive gain 0) and ``--posteriors`` tastes learned by SliderTaste from 16 simulated
  answers (answer scenes: the calibration photos), the mean ΔE00 between each editor's rendering with the exported
  preset and ``prefstyle enhance``'s rendering (the model's ``render``), per photo and overall,
  beside the size of the edit (prefstyle's rendering against the input) and, for the learned
  tastes, the gap between ``enhance`` (the posterior mean of the renderings) and the rendering of
  the posterior-mean sliders that a preset can hold (``mean_sliders``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _report import emit, scratch_dir
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from prefstyle.data.photos import bundled_photos  # noqa: E402
from prefstyle.imaging.color import delta_e_2000, rgb_to_lab  # noqa: E402
from prefstyle.imaging.io import read_image, write_image  # noqa: E402
from prefstyle.imaging.params import RetouchParams  # noqa: E402
from prefstyle.imaging.pipeline import apply_retouch  # noqa: E402
from prefstyle.imaging.presets import dtstyle, pp3  # noqa: E402
from prefstyle.imaging.presets.programs import (  # noqa: E402
    available,
    render_darktable,
    render_darktable_style,
    render_rawtherapee,
)

CALIBRATION = ("mate/Aqua", "mate/Blinds", "mate/Dune", "mate/FreshFlower")
HELD_OUT = (
    "skimage/astronaut",
    "skimage/chelsea",
    "skimage/coffee",
    "skimage/rocket",
    "skimage/motorcycle",
    "sklearn/china",
    "sklearn/flower",
    "matplotlib/grace_hopper",
)
KNOTS = (-0.6, 0.6)
#: (editor, slider) -> editor range searched
SEARCH = {
    ("rawtherapee", "vibrance"): (-100.0, 100.0),
    ("rawtherapee", "saturation"): (-100.0, 100.0),
    ("darktable", "vibrance"): (-1.0, 1.0),
    ("darktable", "saturation"): (-1.0, 1.0),
}


def prepare(ids: tuple[str, ...], side: int, folder: Path) -> list[tuple[str, Path]]:
    """The photos ``ids`` downscaled to ``side`` px (long side, even sizes) as 16-bit PNGs in ``folder``."""
    by_id = {p.id: p for p in bundled_photos()}
    out = []
    for pid in ids:
        if pid not in by_id:
            print(f"skipped {pid}: not installed", file=sys.stderr)
            continue
        x = read_image(by_id[pid].path).pixels[None]
        h, w = x.shape[-2:]
        s = side / max(h, w)
        x = F.interpolate(x, size=(max(2, round(h * s) // 2 * 2), max(2, round(w * s) // 2 * 2)), mode="area")
        path = folder / (pid.replace("/", "_") + ".png")
        write_image(path, x[0], bit_depth=16)
        out.append((pid, path))
    return out


def mean_de(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(delta_e_2000(rgb_to_lab(a.clamp(0, 1)), rgb_to_lab(b.clamp(0, 1))).mean())


def render(editor: str, path: Path, params: RetouchParams) -> torch.Tensor:
    """``rawtherapee`` (the .pp3), ``darktable`` (the modules as a sidecar XMP, "v3.0 JPEG" order) or
    ``darktable_style`` (the .dtstyle file imported by darktable and applied with ``--style``)."""
    if editor == "rawtherapee":
        return render_rawtherapee(path, pp3.render_pp3(params, 0.0, "bench"))
    if editor == "darktable_style" and dtstyle.module_params(params):  # darktable refuses an empty style
        return render_darktable_style(path, dtstyle.render_dtstyle(params, 0.0, "bench"), "bench")
    return render_darktable(path, dtstyle.render_darktable_xmp(params))


def _golden(f, lo: float, hi: float, iters: int) -> tuple[float, float]:
    """Minimum of a unimodal ``f`` on [lo, hi] by golden-section search: ``(argmin, min)``."""
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (c, fc) if fc < fd else (d, fd)


def calibrate(args: argparse.Namespace) -> None:
    tmp = scratch_dir("prefstyle-cal-")
    tiles = [read_image(p).pixels[None] for _, p in prepare(CALIBRATION, args.side, tmp)]
    # one 2 x 2 montage (tiles resized to a common size): one editor run per evaluation
    h, w = args.side * 3 // 4, args.side
    tiles = [F.interpolate(t, size=(h, w), mode="area") for t in tiles]
    tiles += [tiles[-1]] * (-len(tiles) % 2)
    rows_ = [torch.cat(tiles[i : i + 2], dim=3) for i in range(0, len(tiles), 2)]
    write_image(tmp / "montage.png", torch.cat(rows_, dim=2)[0], bit_depth=16)
    photos = [("montage", tmp / "montage.png")]
    have = available()
    maps = {"rawtherapee": pp3.SLIDER_MAP, "darktable": dtstyle.SLIDER_MAP}
    result: dict = {"photos": list(CALIBRATION), "side": args.side, "knots": list(KNOTS), "fits": {}}
    jobs = [
        (e, s)
        for (e, s) in SEARCH
        if have[e] and (not args.only or s in args.only) and (not args.editors or e in args.editors)
    ]
    t0 = time.perf_counter()
    for editor, slider in tqdm(jobs, desc="calibrate", unit="slider"):
        table = maps[editor]
        saved = table[slider]
        targets = {
            v: [
                apply_retouch(read_image(p).pixels[None], RetouchParams(**{slider: v}), method="exact")
                for _, p in photos
            ]
            for v in KNOTS
        }
        fits = []
        for v in KNOTS:

            def loss(
                e: float,
                v: float = v,
                table: dict = table,
                slider: str = slider,
                editor: str = editor,
                targets: dict = targets,
            ) -> float:
                table[slider] = ((-1.0, 1.0), (e, e))  # every prefstyle value -> editor value e
                return sum(
                    mean_de(render(editor, p, RetouchParams(**{slider: v})), t) for (_, p), t in zip(photos, targets[v])
                ) / len(photos)

            lo, hi = SEARCH[(editor, slider)]
            if v < 0:
                lo, hi = (lo, 0.0) if loss(lo / 4) <= loss(hi / 4) else (0.0, hi)
            else:
                lo, hi = (0.0, hi) if loss(hi / 4) <= loss(lo / 4) else (lo, 0.0)
            best, err = _golden(loss, lo, hi, args.iters)
            table[slider] = saved
            fits.append({"prefstyle": v, "editor": round(best, 4), "mean_de00": round(err, 3)})
        xs = [f["prefstyle"] for f in fits]
        ys = [f["editor"] for f in fits]
        # knots at -0.6, 0, 0.6; the slider's ends on the lines through 0 and the knots
        table_fit = (
            (-1.0, xs[0], 0.0, xs[1], 1.0),
            (round(ys[0] / abs(xs[0]), 4), ys[0], 0.0, ys[1], round(ys[1] / abs(xs[1]), 4)),
        )
        result["fits"][f"{editor}/{slider}"] = {"knots": fits, "table": table_fit}
        tqdm.write(f"{editor:12s} {slider:12s} {table_fit}")
    result["seconds"] = round(time.perf_counter() - t0, 1)
    emit(result, args.out)


def report(args: argparse.Namespace) -> None:
    from prefstyle.models.base import Profile, Reference
    from prefstyle.models.slider_taste import SliderTasteModel, prior_vectors

    tmp = scratch_dir("prefstyle-rep-")
    photos = prepare(HELD_OUT[: args.limit], args.side, tmp)
    have = available()
    editors = [e for e in ("rawtherapee", "darktable", "darktable_style") if have[e.split("_")[0]]]
    model = SliderTasteModel()
    vecs = prior_vectors(args.tastes + 1, 1.0, 0)
    tastes = [("identity", RetouchParams())] + [
        (f"prior{i}", RetouchParams.from_vector(vecs[i])) for i in range(1, args.tastes + 1)
    ]
    profiles = [
        Profile(
            model="sliders", tensors={"vectors": p.to_vector()[None], "gains": torch.zeros(1), "weights": torch.ones(1)}
        )
        for _, p in tastes
    ]
    # posterior tastes: SliderTaste (the shipped settings, fixed edits) personalized from 16 answers of a
    # simulated person whose ideal is a prior draw; enhance renders the posterior mean of the renderings,
    # the preset holds the posterior-mean sliders
    ideals = prior_vectors(64, 1.0, 1)
    sources = [read_image(p).pixels[None] for _, p in prepare(CALIBRATION, 96, tmp)]
    shipped = SliderTasteModel(adapt=0.0)
    for k in range(args.posteriors):
        ideal = RetouchParams.from_vector(ideals[1 + k])
        refs = []
        for j in range(16):
            src = sources[j % len(sources)]
            a, b = (RetouchParams.from_vector(ideals[10 + 2 * (16 * k + j) % 50 + i]) for i in (0, 1))
            ra, rb = (apply_retouch(src, p, method="exact")[0] for p in (a, b))
            target = apply_retouch(src, ideal, method="exact")[0]
            pref, other = (ra, rb) if mean_de(ra[None], target[None]) <= mean_de(rb[None], target[None]) else (rb, ra)
            refs.append(Reference(scene=f"s{j}", preferred=pref, other=other, source=src[0]))
        prof = shipped.personalize(refs, user=f"sim{k}")
        tastes.append((f"posterior{k}", shipped.slider_edit(prof)[0]))
        profiles.append(prof)
    rows = []
    t0 = time.perf_counter()
    for (name, _), prof in tqdm(list(zip(tastes, profiles)), desc="tastes", unit="taste"):
        back, _ = model.slider_edit(prof)
        for pid, path in photos:
            x = read_image(path).pixels[None]
            with torch.no_grad():
                ours = model.render(x, prof)
            row = {
                "taste": name,
                "photo": pid,
                "edit_size": round(mean_de(ours, x), 3),
                "mean_sliders": round(mean_de(apply_retouch(x, back, method="exact"), ours), 3),
            }
            for editor in editors:
                row[editor] = round(mean_de(render(editor, path, back), ours), 3)
            rows.append(row)
    summary = {}
    for name, _ in tastes:
        sel = [r for r in rows if r["taste"] == name]
        summary[name] = {
            k: round(sum(r[k] for r in sel) / len(sel), 2) for k in ["edit_size", "mean_sliders", *editors]
        }
    slider_rows = [r for r in rows if r["taste"] != "identity"]
    summary["all slider tastes"] = {
        k: round(sum(r[k] for r in slider_rows) / len(slider_rows), 2) for k in ["edit_size", "mean_sliders", *editors]
    }
    result = {
        "photos": [p for p, _ in photos],
        "side": args.side,
        "editors": editors,
        "tastes": {
            n: {k: round(v, 3) for k, v in p.to_dict().items() if not isinstance(v, list) and v} for n, p in tastes
        },
        "summary": summary,
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    emit(result, args.out, shown={"summary": summary, "tastes": result["tastes"]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("--side", type=int, default=256)
    c.add_argument("--iters", type=int, default=7)
    c.add_argument("--only", nargs="*", help="sliders to fit (default: all)")
    c.add_argument("--editors", nargs="*", choices=["rawtherapee", "darktable"], help="editors to fit (default: all)")
    c.add_argument("--out")
    r = sub.add_parser("report")
    r.add_argument("--side", type=int, default=384)
    r.add_argument("--tastes", type=int, default=5)
    r.add_argument("--posteriors", type=int, default=2)
    r.add_argument("--limit", type=int, default=len(HELD_OUT), help="use the first N held-out photos (smoke runs)")
    r.add_argument("--out")
    args = ap.parse_args()
    if not any(available().values()):
        sys.exit("neither rawtherapee-cli nor darktable-cli is installed")
    (calibrate if args.cmd == "calibrate" else report)(args)


if __name__ == "__main__":
    main()
