"""Benchmark: a trained PieNet in the expanded protocol, its N_pref curve, full-resolution rendering
and inference speed on this CPU.

    python benchmarks/bench_pienet.py --model runs/pienet_cpu [--out runs/bench_pienet]

1. **Expanded protocol on held-out method users.** The method users PieNet did not see in
   training (the ``test`` styles recorded in the checkpoint's card) are personalized from
   ``N_pref`` preferred images each (the style applied to content-pool *training* scenes, a
   seeded choice, nested across N) and scored on the content pool's *test* scenes (photos
   never seen in training) with PSNR / SSIM / ΔE00 of ``render(scene)`` against
   ``style(scene)``; mPSNR etc. are means over users. The scoring is
   :func:`prefstyle.eval.pienet_protocols.evaluate_preferred_images` (the core of that module's
   ``expanded_protocol``, which reads FiveK; here the photos are the embedded content pool).
   Compared at ``--n-main`` (20): PieNet scheme 2 (default) and scheme 1, the ``identity``
   reference point, and the one-global-style reference points: ``global-style`` fitted on the
   training method users' pairs, and on the training crowd's judgments when the run had a crowd.
2. **Scheme 2's curve over N_pref** (the paper's figure 6): mPSNR for N in ``--n-pref``, with the
   identity and global-style levels; written as ``curve.png``.
3. **Full resolution.** On a ``--fullres-mp`` megapixel photo: the network run at its
   ``render_size`` with the guided upsampling against the network run on the full image
   (PSNR / ΔE00 between the two outputs, and both timings).
4. **Inference speed** (median of ``--repeats``): personalizing a new user from 20 preferred
   images, and rendering a 12 MP photo (also the whole ``prefstyle enhance`` path with JPEG
   decoding and encoding, once).

Writes ``results.json`` and ``report.md`` (a section for docs/BENCHMARKS.md) into ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def _pool_from_card(card: dict[str, Any]):
    from prefstyle.train.tasks.pienet import DATA_DEFAULTS, _pool

    opts = {**DATA_DEFAULTS, **card.get("data", {}).get("options", {})}
    pool = _pool(opts)
    split = pool.split(tuple(opts["scene_split"]), seed=int(opts["pool_seed"]))
    return pool, split, opts


class Images:
    """Scene images and their style renditions, computed once."""

    def __init__(self, pool: Any, size: int):
        self.pool, self.size = pool, size
        self._src: dict[str, torch.Tensor] = {}
        self._styled: dict[tuple[str, str], torch.Tensor] = {}

    def source(self, sid: str) -> torch.Tensor:
        if sid not in self._src:
            self._src[sid] = self.pool.scene_image(sid, self.size).clamp(0, 1)
        return self._src[sid]

    def styled(self, style: str, sid: str) -> torch.Tensor:
        key = (style, sid)
        if key not in self._styled:
            from prefstyle.styles.registry import get_style

            with torch.no_grad():
                self._styled[key] = get_style(style).apply(self.source(sid)[None])[0].clamp(0, 1)
        return self._styled[key]


def _users(images: Images, styles: list[str], ref_scenes: list[str], test_scenes: list[str]) -> list[Any]:
    from prefstyle.eval.pienet_protocols import ImageUser

    def ld(fn, *a):
        return lambda: fn(*a)

    return [
        ImageUser(
            name=f"style:{st}",
            refs=[(s, ld(images.source, s), ld(images.styled, st, s)) for s in ref_scenes],
            tests=[(s, ld(images.source, s), ld(images.styled, st, s)) for s in test_scenes],
            info={"style": st},
        )
        for st in styles
    ]


def _global_style_from_methods(images: Images, train_styles: list[str], scenes: list[str], seed: int) -> Any:
    """``global-style`` fitted on the training method users' pairs (styled vs neutral scene),
    on 64 px thumbnails (the styles rendered on the thumbnails)."""
    from prefstyle.models.reference import GlobalStyleModel, fit_global_style, thumbnail
    from prefstyle.styles.registry import get_style

    rnd = random.Random(seed)
    pairs = [(st, s) for st in train_styles for s in scenes]
    pairs = rnd.sample(pairs, min(len(pairs), 768))
    thumbs = {s: thumbnail(images.source(s), 64) for s in {s for _, s in pairs}}
    styles = {st: get_style(st) for st in {st for st, _ in pairs}}
    with torch.no_grad():
        i_p = torch.cat([styles[st].apply(thumbs[s]).clamp(0, 1) for st, s in pairs])
    i_n = torch.cat([thumbs[s] for _, s in pairs])
    params = fit_global_style(i_p, i_n, steps=300, seed=seed)
    m = GlobalStyleModel(params=params)
    m.fit_info = {"fitted_on": "training method users", "pairs": len(pairs)}
    return m


def _global_style_from_crowd(card: dict[str, Any]) -> Any | None:
    crowd = card.get("data", {}).get("crowd")
    if not crowd or not Path(crowd.get("root", "")).is_dir():
        return None
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.models.reference import GlobalStyleModel

    ds = PairsDataset.load(crowd["root"])
    m = GlobalStyleModel().fit(ds)
    m.fit_info["fitted_on"] = "training crowd users"
    return m


def _big_photo(megapixels: float) -> tuple[torch.Tensor, str]:
    """The largest bundled photograph resized to ``megapixels`` MP at 4:3 (``(1,3,H,W)``), and its id."""
    from prefstyle.data.photos import bundled_photos

    photos = bundled_photos(system=True)
    best = max(photos, key=lambda p: (p.size or (0, 0))[0] * (p.size or (0, 0))[1])
    raw = best.loader()
    img = raw.float() / 255.0 if raw.dtype == torch.uint8 else raw.float()
    h = round((megapixels * 1e6 * 3 / 4) ** 0.5)
    w = round(h * 4 / 3)
    return F.interpolate(img[None], size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1), best.id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="trained PieNet checkpoint (run folder)")
    ap.add_argument("--out", default="runs/bench_pienet")
    ap.add_argument("--size", type=int, default=256, help="long side of the evaluation images")
    ap.add_argument("--n-pref", default="1,2,5,10,20,40", help="N_pref values of the curve")
    ap.add_argument("--n-main", type=int, default=20, help="N_pref of the comparison table")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fullres-mp", type=float, default=3.0)
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--render-sizes", default="", help="also score scheme 2 at these render sizes (e.g. 64,128,512)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from prefstyle.eval.pienet_protocols import evaluate_preferred_images
    from prefstyle.metrics.functional import delta_e00, psnr
    from prefstyle.models.base import create_model
    from prefstyle.models.pienet import PieNetModel
    from prefstyle.models import load as load_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    model = load_model(args.model)
    if not isinstance(model, PieNetModel):
        raise SystemExit(f"{args.model} is not a PieNet checkpoint")
    card = model.card
    splits = card["data"]["method_users"]
    pool, scene_split, _ = _pool_from_card(card)
    images = Images(pool, args.size)
    train_scenes = sorted(scene_split["train"])
    random.Random(args.seed).shuffle(train_scenes)
    test_scenes = sorted(scene_split["test"])
    n_values = sorted({int(n) for n in args.n_pref.split(",")} | {args.n_main})
    n_values = [n for n in n_values if n <= len(train_scenes)]
    test_styles = list(splits["test"])
    print(f"held-out method users: {test_styles}; {len(test_scenes)} test scenes; N_pref {n_values}", flush=True)

    results: dict[str, Any] = {
        "model": str(Path(args.model).resolve()),
        "checkpoint_id": model.checkpoint_id,
        "card": {k: card.get(k) for k in ("step", "metrics", "git_commit", "prefstyle_version")},
        "architecture": {k: v for k, v in card["task"]["model"].items() if k != "users"},
        "n_training_users": len(card["task"]["model"].get("users", [])),
        "test_users": test_styles,
        "test_scenes": len(test_scenes),
        "eval_size": args.size,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "loadavg_start": os.getloadavg(),
        },
    }

    # -- 1. comparison at N = n_main -----------------------------------------------------
    main_users = _users(images, test_styles, train_scenes[: args.n_main], test_scenes)
    contenders: dict[str, Any] = {
        "pienet (scheme 2)": model,
        "pienet (scheme 1)": PieNetModel(system=model.system, scheme=1),
        "pienet (no references: mean user)": None,
        "identity": create_model("identity"),
        "global-style (method users)": _global_style_from_methods(
            images, list(splits["train"]), train_scenes[:24], args.seed
        ),
    }
    crowd_gs = _global_style_from_crowd(card)
    if crowd_gs is not None:
        contenders["global-style (crowd)"] = crowd_gs
    table: dict[str, Any] = {}
    for name, m in contenders.items():
        t0 = time.perf_counter()
        if m is None:  # PieNet with an empty reference list: the mean training preference
            users = _users(images, test_styles, [], test_scenes)
            res = evaluate_preferred_images(model, users)
        else:
            res = evaluate_preferred_images(m, main_users)
        table[name] = {
            **res["mean"],
            "per_user": {
                u: {k: v for k, v in r.items() if k in ("psnr", "ssim", "delta_e00")} for u, r in res["users"].items()
            },
            "seconds": time.perf_counter() - t0,
        }
        print(
            f"{name:38s} mPSNR {res['mean']['psnr']:.2f}  mSSIM {res['mean']['ssim']:.4f}  "
            f"dE00 {res['mean']['delta_e00']:.2f}",
            flush=True,
        )
    results["comparison"] = {"n_pref": args.n_main, "models": table}
    by_size = {}
    for rs in [int(v) for v in args.render_sizes.split(",") if v.strip()]:
        res = evaluate_preferred_images(PieNetModel(system=model.system, render_size=rs), main_users)
        by_size[rs] = res["mean"]
        print(f"scheme 2 at render size {rs}: mPSNR {res['mean']['psnr']:.2f}", flush=True)
    if by_size:
        results["render_sizes"] = {"default": model.render_size, "scores": by_size}

    # -- 2. scheme 2 curve ---------------------------------------------------------------
    curve = []
    for n in n_values:
        res = evaluate_preferred_images(model, _users(images, test_styles, train_scenes[:n], test_scenes))
        curve.append({"n_pref": n, **res["mean"]})
        print(f"scheme 2, N_pref={n:3d}: mPSNR {res['mean']['psnr']:.2f}", flush=True)
    results["curve"] = curve
    ps = [c["psnr"] for c in curve]
    gains = [b - a for a, b in itertools.pairwise(ps)]
    results["curve_shape"] = {
        "rises": ps[-1] > ps[0],
        "mostly_monotone": sum(g >= -0.05 for g in gains) >= len(gains) - 1 if gains else True,
        "first_gain_db": gains[0] if gains else None,
        "last_gain_db": gains[-1] if gains else None,
        "saturates": (abs(gains[-1]) < max(abs(gains[0]), 1e-9)) if len(gains) >= 2 else None,
    }
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
        ax.plot([c["n_pref"] for c in curve], ps, "o-", label="PieNet, scheme 2")
        for name, style in (("identity", ":"), ("global-style (method users)", "--"), ("global-style (crowd)", "-.")):
            if name in table:
                ax.axhline(table[name]["psnr"], ls=style, color="gray", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("N_pref (preferred images)")
        ax.set_ylabel("mPSNR (dB), held-out method users")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "curve.png")
        plt.close(fig)
        results["curve_figure"] = str(out / "curve.png")
    except Exception as e:  # noqa: BLE001 - the figure is a convenience
        results["curve_figure_error"] = str(e)

    # -- 3. full resolution vs downscaled --------------------------------------------------
    # every held-out user, so an edit that happens to be near identity on this photo cannot
    # make the agreement look better than it is (psnr_input_vs_* says how strong each edit is)
    big, photo_id = _big_photo(args.fullres_mp)
    per_user = {}
    for style_name in test_styles:
        prof = model.personalize(_refs_for(model, images, style_name, train_scenes[: args.n_main]), user="bench")
        t0 = time.perf_counter()
        guided = model.render(big, prof)
        t_guided = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = model.render_vector(big, prof.tensors["preference"], full_size=True)
        t_full = time.perf_counter() - t0
        per_user[style_name] = {
            "psnr_guided_vs_full": float(psnr(guided, full)[0]),
            "delta_e00_guided_vs_full": float(delta_e00(guided, full)[0]),
            "psnr_input_vs_guided": float(psnr(big, guided)[0]),
            "psnr_input_vs_full": float(psnr(big, full)[0]),
            "seconds_guided": t_guided,
            "seconds_full": t_full,
        }
    mean = {k: statistics.fmean(u[k] for u in per_user.values()) for k in next(iter(per_user.values()))}
    results["fullres"] = {
        "photo": photo_id,
        "size": list(big.shape[-2:]),
        "megapixels": big.shape[-2] * big.shape[-1] / 1e6,
        "render_size": model.render_size,
        **mean,
        "per_user": per_user,
    }
    t_guided, t_full = mean["seconds_guided"], mean["seconds_full"]
    print(
        f"full resolution ({results['fullres']['megapixels']:.1f} MP): guided vs full-size run "
        f"PSNR {results['fullres']['psnr_guided_vs_full']:.2f} dB, dE00 "
        f"{results['fullres']['delta_e00_guided_vs_full']:.2f}; {t_guided:.2f} s vs {t_full:.2f} s",
        flush=True,
    )
    del full, guided

    # -- 4. timings --------------------------------------------------------------------------
    if not args.skip_timing:
        refs20 = _refs_for(model, images, test_styles[0], train_scenes[:20], size=512)
        t_pers, ts_p = _median_time(lambda: model.personalize(refs20), args.repeats)
        t_pers1, ts_p1 = _median_time(
            lambda: PieNetModel(system=model.system, scheme=1).personalize(refs20), args.repeats
        )
        img12, _ = _big_photo(12.0)
        t_ren, ts_r = _median_time(lambda: model.render(img12, prof), args.repeats)
        # the whole enhance path once (decode + render + encode a 12 MP JPEG)
        import tempfile

        from prefstyle.imaging.io import read_image, write_image, write_like

        with tempfile.TemporaryDirectory() as td:
            src = Path(td) / "photo12mp.jpg"
            write_image(src, img12[0], quality=92)
            t0 = time.perf_counter()
            data = read_image(src)
            with torch.inference_mode():
                y = model.render(data.pixels[None], prof)[0]
            write_like(Path(td) / "out.jpg", y, data)
            t_enh = time.perf_counter() - t0
        results["timing"] = {
            "personalize_20_scheme2_s": t_pers,
            "personalize_20_scheme2_runs": ts_p,
            "personalize_20_scheme1_s": t_pers1,
            "personalize_20_scheme1_runs": ts_p1,
            "render_12mp_s": t_ren,
            "render_12mp_runs": ts_r,
            "render_12mp_size": list(img12.shape[-2:]),
            "enhance_12mp_jpeg_end_to_end_s": t_enh,
        }
        print(
            f"personalize from 20 images: {t_pers:.2f} s (scheme 2), {t_pers1:.2f} s (scheme 1); "
            f"render 12 MP: {t_ren:.2f} s (median of {args.repeats}); enhance 12 MP JPEG end to end {t_enh:.2f} s",
            flush=True,
        )
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - t_all
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "report.md").write_text(_report(results))
    print(f"wrote {out / 'results.json'} and {out / 'report.md'}")
    return 0


def _refs_for(model: Any, images: Images, style: str, scenes: list[str], size: int | None = None) -> list[Any]:
    from prefstyle.models.base import Reference

    refs = []
    for s in scenes:
        src = images.source(s)
        pref = images.styled(style, s)
        if size is not None:
            src = F.interpolate(src[None], scale_factor=size / max(src.shape[-2:]), mode="bilinear")[0].clamp(0, 1)
            pref = F.interpolate(pref[None], size=src.shape[-2:], mode="bilinear")[0].clamp(0, 1)
        refs.append(Reference(scene=s, preferred=pref, other=src, source=src))
    return refs


def _report(r: dict[str, Any]) -> str:
    comp = r["comparison"]
    lines = [
        "## PieNet on the embedded default (expanded protocol, held-out method users)",
        "",
        (
            f"Checkpoint `{r['model']}` (step {r['card']['step']}, {r['n_training_users']} training users); "
            f"held-out method users: {', '.join(r['test_users'])}; {r['test_scenes']} test scenes of the content "
            f"pool (photos unseen in training) at {r['eval_size']} px. References: N_pref = {comp['n_pref']} "
            "preferred images (the style applied to training scenes)."
        ),
        "",
        "| model | mPSNR (dB) | mSSIM | mean ΔE00 |",
        "|---|---|---|---|",
    ]
    for name, row in comp["models"].items():
        lines.append(f"| {name} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['delta_e00']:.2f} |")
    lines += [
        "",
        "Scheme 2 over N_pref (figure 6 of the paper): "
        + ", ".join(f"N={c['n_pref']}: {c['psnr']:.2f} dB" for c in r["curve"])
        + f". Shape: {r['curve_shape']}.",
        "",
    ]
    if "curve_figure" in r:
        lines += ["![PieNet scheme 2 over N_pref](img/pienet_curve.png)", ""]
    f = r["fullres"]
    lines += [
        (
            f"Full resolution: on a {f['megapixels']:.1f} MP photo, running at {f['render_size']} px with the "
            f"guided upsampling vs running on the full image, mean over the {len(f['per_user'])} held-out users: "
            f"PSNR {f['psnr_guided_vs_full']:.2f} dB, mean ΔE00 {f['delta_e00_guided_vs_full']:.2f} between the two "
            f"(the edits themselves: PSNR {f['psnr_input_vs_guided']:.2f} dB input vs output); "
            f"{f['seconds_guided']:.2f} s vs {f['seconds_full']:.2f} s."
        ),
        "",
    ]
    if "timing" in r:
        t = r["timing"]
        lines += [
            (
                f"Inference on this CPU ({r['machine']['cpu_count']} cores, median of 5): personalize a new user "
                f"from 20 preferred images {t['personalize_20_scheme2_s']:.2f} s (scheme 2), "
                f"{t['personalize_20_scheme1_s']:.2f} s (scheme 1); render a 12 MP photo "
                f"{t['render_12mp_s']:.2f} s; `enhance` on a 12 MP JPEG end to end "
                f"{t['enhance_12mp_jpeg_end_to_end_s']:.2f} s."
            ),
            "",
        ]
    lines += [f"Command: `python benchmarks/bench_pienet.py --model {r['model']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
