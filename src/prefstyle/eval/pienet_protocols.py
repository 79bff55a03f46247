"""PieNet's evaluation protocols (Kim, Koh & Kim, ECCV 2020), over the common model interface.

PieNet personalizes from a handful of *preferred images* (about 10–20 in the paper) rather
than pairwise judgments, and scores the output against the user's own retouch of test photos
with PSNR and SSIM. Every protocol here is one call of :func:`evaluate_preferred_images` on a
set of "users", each given as reference photos (input + the user's retouch of it) and test
photos (input + the user's retouch as the target):

* :func:`fivek_single_user` — MIT-Adobe FiveK, one expert (C by default) as the user:
  ``N_pref`` photos of the train split personalize, the test split scores: PSNR, SSIM (and
  ΔE00) of ``render(input)`` against the expert's rendition, averaged over test photos.
* :func:`fivek_multi_user` — the same for each expert A–E; mPSNR / mSSIM are the means over
  the experts.
* :func:`fivek_trained_users` — the paper's Table 1 as it ran it: a PieNet *trained on FiveK*
  (``prefstyle train configs/pienet_fivek.yaml``, single user: expert C; multi user: experts
  A–E) renders each expert's test photos with that expert's learned preference vector (no
  references); mPSNR / mSSIM over the experts.
* :func:`expanded_protocol` — more users than the five experts: each *method user* is a
  retouching style from :mod:`prefstyle.styles` (a named preset, a camera look, a sampled
  look) applied to the FiveK inputs, personalized from ``N_pref`` of its preferred images and
  scored on the test photos. This follows the paper's idea of evaluating on many synthetic
  users; the exact set of styles PieNet used is not public, so the style list is a parameter
  and is recorded in the result.

Each reference is a :class:`~prefstyle.models.base.Reference` with ``preferred`` = the user's
retouch, ``other`` = ``source`` = the input photo (a preferred image over the unedited one).
FiveK folders are read by :class:`prefstyle.data.fivek.FiveKDataset` (its layouts and splits).

Command line (``--protocol trained`` needs a PieNet trained on FiveK; ``single``/``multi``
personalize any model from ``--n-pref`` references)::

    python -m prefstyle.eval.pienet_protocols --model runs/pienet_fivek --fivek FIVEK \
        --protocol trained [--experts ABCDE] [--size 512] [--out results.json]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from prefstyle import __version__
from prefstyle.errors import PrefstyleError
from prefstyle.imaging.resize import resize_long_side
from prefstyle.metrics.registry import get_metric
from prefstyle.models.base import PersonalizationModel, Profile, Reference
from prefstyle.models.render import render_batch

__all__ = [
    "PIENET_METRICS",
    "ImageUser",
    "evaluate_preferred_images",
    "expanded_protocol",
    "fivek_multi_user",
    "fivek_single_user",
    "fivek_trained_users",
]

PIENET_METRICS: tuple[str, ...] = ("psnr", "ssim", "delta_e00")
DEFAULT_N_PREF = 10

Loader = Callable[[], torch.Tensor]


@dataclass
class ImageUser:
    """A user given by images. ``refs`` / ``tests``: ``(name, load_input, load_target)`` triples,
    the loaders returning ``(3,H,W)`` sRGB [0,1] tensors (loaded lazily)."""

    name: str
    refs: list[tuple[str, Loader, Loader]]
    tests: list[tuple[str, Loader, Loader]]
    info: dict[str, Any] = field(default_factory=dict)


def _fit(img: torch.Tensor, size: int | None) -> torch.Tensor:
    return img if size is None else resize_long_side(img, size).clamp(0, 1)


def _file_loader(path: Path, size: int | None) -> Loader:
    def load() -> torch.Tensor:
        from prefstyle.imaging.io import load_image

        return _fit(load_image(path)[0], size)

    return load


def _matched(inp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``target`` resized to ``inp``'s size when the two differ (FiveK renditions may differ by a pixel)."""
    if target.shape[-2:] == inp.shape[-2:]:
        return target
    return F.interpolate(target[None], size=inp.shape[-2:], mode="bilinear", antialias=True, align_corners=False)[0]


def evaluate_preferred_images(
    model: PersonalizationModel,
    users: Sequence[ImageUser],
    metrics: Sequence[str] = PIENET_METRICS,
    progress: bool = False,
    profiles: Mapping[str, Profile] | None = None,
) -> dict[str, Any]:
    """Personalize ``model`` on each user's reference images; score its renditions of the test inputs.

    ``profiles``: ready profiles by user name (those users are not personalized; e.g. a trained
    PieNet's own users).

    Returns ``{"users": {name: {metric: mean over test photos, "n_refs", "n_tests"}},
    "mean": {metric: mean over users}}`` (the mean over users is PieNet's mPSNR / mSSIM).
    """
    if not users:
        raise PrefstyleError("no users to evaluate")
    specs = [get_metric(m) for m in metrics]
    per_user: dict[str, dict[str, Any]] = {}
    it: Iterable[ImageUser] = users
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(users, desc="users", unit="user")
    for u in it:
        if not u.tests:
            raise PrefstyleError(f"user {u.name!r} has no test photos")
        refs = []
        for name, load_in, load_tg in u.refs:
            inp = load_in()
            refs.append(
                Reference(
                    scene=name,
                    preferred=_matched(inp, load_tg()),
                    other=inp,
                    source=inp,
                    meta={"kind": "preferred-image"},
                )
            )
        profile = profiles[u.name] if profiles and u.name in profiles else model.personalize(refs, u.name)
        sums = {s.name: 0.0 for s in specs}
        with torch.no_grad():
            for _, load_in, load_tg in u.tests:
                inp = load_in()
                target = _matched(inp, load_tg())
                out = render_batch(model, profile, inp[None])
                for s in specs:
                    sums[s.name] += float(s(out, target[None])[0])
        row: dict[str, Any] = {k: v / len(u.tests) for k, v in sums.items()}
        row.update(n_refs=len(refs), n_tests=len(u.tests), **u.info)
        per_user[u.name] = row
    mean = {s.name: sum(r[s.name] for r in per_user.values()) / len(per_user) for s in specs}
    return {"users": per_user, "mean": mean}


def _fivek_split(root: Path, experts: Sequence[str], split: str, train_count: int) -> Any:
    from prefstyle.data.fivek import FiveKDataset

    return FiveKDataset(root, experts=experts, split=split, train_count=train_count)


def _expert_users(
    root: str | Path,
    experts: Sequence[str],
    n_pref: int,
    seed: int,
    size: int | None,
    train_count: int,
    max_tests: int | None,
) -> list[ImageUser]:
    train = _fivek_split(Path(root), experts, "train", train_count)
    test = _fivek_split(Path(root), experts, "test", train_count)
    users = []
    for e in train.users():
        refs = train.references(e, n_pref, seed=seed)
        tests = test.by_user(e)[: max_tests or None]
        users.append(
            ImageUser(
                name=f"expert{e}",
                refs=[(p.name, _file_loader(p.input, size), _file_loader(p.target, size)) for p in refs],
                tests=[(p.name, _file_loader(p.input, size), _file_loader(p.target, size)) for p in tests],
                info={"expert": e},
            )
        )
    return users


def _result(
    protocol: str, model: PersonalizationModel, res: dict[str, Any], config: Mapping[str, Any]
) -> dict[str, Any]:
    out = {"protocol": protocol, "model": model.name, "prefstyle_version": __version__, "config": dict(config), **res}
    out["mpsnr"] = res["mean"].get("psnr")
    out["mssim"] = res["mean"].get("ssim")
    return out


def fivek_single_user(
    model: PersonalizationModel,
    root: str | Path,
    expert: str = "C",
    n_pref: int = DEFAULT_N_PREF,
    seed: int = 0,
    size: int | None = None,
    train_count: int = 4500,
    max_tests: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """FiveK single-user protocol: one expert (default C); PSNR / SSIM on the test split.

    ``n_pref`` preferred images (a seeded choice from the train split) personalize the model.
    ``train_count``: size of the train part of a flat FiveK folder (4,500 in the standard split).
    """
    users = _expert_users(root, [expert], n_pref, seed, size, train_count, max_tests)
    res = evaluate_preferred_images(model, users, progress=progress)
    out = _result(
        "pienet-fivek-single",
        model,
        res,
        {"expert": expert, "n_pref": n_pref, "seed": seed, "size": size, "root": str(root)},
    )
    out["psnr"], out["ssim"] = out["mpsnr"], out["mssim"]
    return out


def fivek_multi_user(
    model: PersonalizationModel,
    root: str | Path,
    experts: Sequence[str] | str = "ABCDE",
    n_pref: int = DEFAULT_N_PREF,
    seed: int = 0,
    size: int | None = None,
    train_count: int = 4500,
    max_tests: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """FiveK multi-user protocol: every expert is a user; mPSNR / mSSIM over the experts."""
    experts = list(experts)
    users = _expert_users(root, experts, n_pref, seed, size, train_count, max_tests)
    res = evaluate_preferred_images(model, users, progress=progress)
    return _result(
        "pienet-fivek-multi",
        model,
        res,
        {"experts": experts, "n_pref": n_pref, "seed": seed, "size": size, "root": str(root)},
    )


def fivek_trained_users(
    model: PersonalizationModel,
    root: str | Path,
    experts: Sequence[str] | str | None = None,
    size: int | None = None,
    train_count: int | None = None,
    max_tests: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The paper's FiveK protocols for a PieNet trained on FiveK: each expert's test photos rendered
    with the expert's learned preference vector (``fivek:expertX`` in the checkpoint's users).

    ``experts``: default every expert the model was trained with (A–E: multi user; C: single
    user). ``train_count``: default the checkpoint's ``data.fivek.train_count`` (the split it was
    trained with). Returns the usual result with ``protocol`` ``pienet-fivek-trained``.
    """
    from prefstyle.data.fivek import normalize_expert, parse_experts

    users_of = getattr(model, "training_users", None)
    if users_of is None:
        raise PrefstyleError(
            f"model {model.name!r} has no training users: this protocol needs a PieNet trained on FiveK"
        )
    trained = [u.removeprefix("fivek:expert") for u in users_of() if u.startswith("fivek:expert")]
    if not trained:
        raise PrefstyleError(
            "this PieNet was not trained on FiveK (no fivek:expertX users); train configs/pienet_fivek.yaml"
        )
    card = getattr(model, "card", {}) or {}
    opts = (card.get("data", {}).get("options", {}) or {}).get("fivek") or {}
    if train_count is None:
        train_count = int(opts.get("train_count", 4500))
    if isinstance(experts, str):
        experts = parse_experts(experts)
    wanted = [normalize_expert(e) for e in (experts if experts else trained)]
    missing = [e for e in wanted if e not in trained]
    if missing:
        raise PrefstyleError(
            f"expert {', '.join(missing)} is not a training user of this model (has {''.join(trained)})"
        )
    users = _expert_users(root, wanted, 0, 0, size, train_count, max_tests)
    profiles = {u.name: model.training_user_profile(f"fivek:{u.name}") for u in users}  # type: ignore[attr-defined]
    res = evaluate_preferred_images(model, users, progress=progress, profiles=profiles)
    out = _result(
        "pienet-fivek-trained",
        model,
        res,
        {"experts": wanted, "size": size, "train_count": train_count, "root": str(root), "max_tests": max_tests},
    )
    return out


def expanded_protocol(
    model: PersonalizationModel,
    root: str | Path,
    styles: Sequence[str],
    n_pref: int = DEFAULT_N_PREF,
    seed: int = 0,
    size: int | None = None,
    train_count: int = 4500,
    max_tests: int | None = None,
    include_experts: Sequence[str] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """The expanded protocol: method users = retouching styles applied to the FiveK inputs.

    ``styles``: names for :func:`prefstyle.styles.registry.get_style` (presets such as
    ``warm-film``, ``camera:vivid``, ``sample:7``, ...). Each style user is personalized from
    ``n_pref`` of its preferred images (the style's renditions of a seeded choice of train
    photos) and scored on its renditions of the test photos. ``include_experts`` adds FiveK
    experts as further users. Inputs are read from the first available expert's layout
    (``C`` when present).
    """
    from prefstyle.data.fivek import detect_layout
    from prefstyle.styles.registry import get_style

    if not styles and not include_experts:
        raise PrefstyleError("the expanded protocol needs at least one style or expert")
    layout = detect_layout(root)
    some = layout if not isinstance(layout, dict) else next(iter(layout.values()))
    base = "C" if "C" in some.experts else some.experts[0]
    train = _fivek_split(Path(root), [base], "train", train_count)
    test = _fivek_split(Path(root), [base], "test", train_count)
    train_items = list(train)
    random.Random(seed).shuffle(train_items)
    ref_items = train_items[:n_pref]
    test_items = list(test)[: max_tests or None]

    users: list[ImageUser] = []
    for name in styles:
        style = get_style(name)

        def styled(path: Path, st: Any = style) -> Loader:
            load = _file_loader(path, size)

            def run() -> torch.Tensor:
                with torch.no_grad():
                    return st.apply(load()[None])[0].clamp(0, 1)

            return run

        users.append(
            ImageUser(
                name=f"style:{name}",
                refs=[(it.name, _file_loader(it.input, size), styled(it.input)) for it in ref_items],
                tests=[(it.name, _file_loader(it.input, size), styled(it.input)) for it in test_items],
                info={"style": name},
            )
        )
    if include_experts:
        users += _expert_users(root, list(include_experts), n_pref, seed, size, train_count, max_tests)
    res = evaluate_preferred_images(model, users, progress=progress)
    return _result(
        "pienet-expanded",
        model,
        res,
        {
            "styles": list(styles),
            "experts": list(include_experts),
            "n_pref": n_pref,
            "seed": seed,
            "size": size,
            "root": str(root),
        },
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m prefstyle.eval.pienet_protocols``: run one FiveK protocol, print the table, write JSON."""
    import argparse
    import json
    import sys

    from prefstyle.models import load

    ap = argparse.ArgumentParser(prog="python -m prefstyle.eval.pienet_protocols", description=main.__doc__)
    ap.add_argument("--model", required=True, help="a trained run folder, a checkpoint or a packaged model name")
    ap.add_argument("--fivek", required=True, help="a MIT-Adobe FiveK folder (any layout prefstyle.data.fivek reads)")
    ap.add_argument("--protocol", choices=("trained", "single", "multi"), default="trained")
    ap.add_argument("--experts", default=None, help="e.g. ABCDE or C (default: the protocol's)")
    ap.add_argument("--n-pref", type=int, default=DEFAULT_N_PREF, help="references per user (single/multi)")
    ap.add_argument("--size", type=int, default=None, help="long side photos are read at (default: full size)")
    ap.add_argument("--train-count", type=int, default=None, help="train part of a flat folder (default 4500)")
    ap.add_argument("--max-tests", type=int, default=None, help="score only the first N test photos")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the result here (JSON)")
    a = ap.parse_args(argv)

    def run() -> int:
        model = load(a.model)
        kw = {"size": a.size, "max_tests": a.max_tests, "progress": True}
        if a.protocol == "trained":
            res = fivek_trained_users(model, a.fivek, a.experts, train_count=a.train_count, **kw)
        else:
            tc = a.train_count or 4500
            extra = {"n_pref": a.n_pref, "seed": a.seed, "train_count": tc, **kw}
            if a.protocol == "single":
                res = fivek_single_user(model, a.fivek, expert=a.experts or "C", **extra)
            else:
                res = fivek_multi_user(model, a.fivek, experts=a.experts or "ABCDE", **extra)
        for name, row in res["users"].items():
            print(f"{name}: PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}, ΔE00 {row['delta_e00']:.2f}")
        print(f"mean over {len(res['users'])} user(s): mPSNR {res['mpsnr']:.2f} dB, mSSIM {res['mssim']:.4f}")
        if a.out:
            from prefstyle.fsutil import atomic_write_text

            atomic_write_text(Path(a.out), json.dumps(res, indent=1) + "\n")
        return 0

    try:
        return run()
    except PrefstyleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
