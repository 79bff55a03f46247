"""Reference points: the models every evaluation table carries beside the real methods.

They bound what a method can reach and expose metrics that a trivial output can game. Each is
a :class:`~prefstyle.models.base.PersonalizationModel` registered under its name:

``identity``
    The output is the input. CQS rewards it (its outputs equal their inputs), so every
    evaluation reports each model's CQS relative to identity's as well.
``global-style``
    One parametric retouch ``θ`` (a :class:`~prefstyle.imaging.params.RetouchParams` vector)
    for everyone: the mean taste of the training users. Fitted by :meth:`GlobalStyleModel.fit`
    on the training users' pairs with the PPS dual-supervision objective (below); ``personalize``
    ignores the references.
``nearest-preferred``
    For each query image, the reference whose scene content is closest, and that reference's
    edit transferred: a colour transform fitted from the reference's neutral source (or, without
    one, its non-preferred image) to its preferred image, applied to the query.
``oracle`` (simulated data only)
    The user's true ideal rendition (``SimulatedUser.ideal``) from the simulator's ground truth.
``bayes`` (simulated data only)
    The Bayes estimate of the user's ideal from the same N references: the posterior mean of
    the ideal rendition under the simulator's own prior and choice model, by importance
    sampling (:class:`BayesModel`).

All render ``(B,3,H,W)`` sRGB in [0,1] to ``(B,3,H,W)`` sRGB in [0,1], at any resolution.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.color import delta_e_2000, rgb_to_lab
from prefstyle.imaging.lut import apply_lut, identity_lut
from prefstyle.imaging.params import NEUTRAL, RetouchParams
from prefstyle.imaging.pipeline import apply_retouch, apply_retouch_vector
from prefstyle.models.base import (
    PersonalizationModel,
    Profile,
    Reference,
    register_model,
)

__all__ = [
    "ALL_REFERENCE_POINTS",
    "LOOKS_CROWD_REFERENCE_POINTS",
    "REFERENCE_POINTS",
    "SIMULATED_ONLY",
    "BayesModel",
    "GlobalStyleModel",
    "IdentityModel",
    "LooksBayesModel",
    "LooksBayesSeenModel",
    "NearestPreferredModel",
    "OracleModel",
    "apply_poly2",
    "content_features",
    "fit_poly2",
    "reference_points",
    "thumbnail",
]

#: The reference points, in the order tables list them.
REFERENCE_POINTS: tuple[str, ...] = ("identity", "global-style", "nearest-preferred", "bayes", "oracle")
#: Reference points that need a simulated dataset's ground truth (``bayes-seen``: a looks crowd's).
SIMULATED_ONLY: frozenset[str] = frozenset({"oracle", "bayes", "bayes-seen"})
#: Reference points of looks crowds only, each listed after the reference point it varies.
LOOKS_CROWD_REFERENCE_POINTS: dict[str, str] = {"bayes-seen": "bayes"}


def reference_points(tastes: str | None = None) -> list[str]:
    """The reference points in table order for a crowd of ``tastes`` (``"looks"`` adds
    :data:`LOOKS_CROWD_REFERENCE_POINTS`, each after the one it varies; None: not a looks crowd)."""
    names = list(REFERENCE_POINTS)
    if tastes == "looks":
        for name, after in LOOKS_CROWD_REFERENCE_POINTS.items():
            names.insert(names.index(after) + 1, name)
    return names


#: Every reference point, in table order (the looks crowd's included).
ALL_REFERENCE_POINTS: tuple[str, ...] = tuple(reference_points("looks"))


def thumbnail(img: torch.Tensor, size: int) -> torch.Tensor:
    """``(B,3,H,W)`` or ``(3,H,W)`` -> ``(B,3,size,size)`` by area averaging (aspect not kept)."""
    x = img[None] if img.ndim == 3 else img
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="area")


# --------------------------------------------------------------------------------------------
# identity
# --------------------------------------------------------------------------------------------


@register_model("identity")
class IdentityModel(PersonalizationModel):
    """Output = input. Its CQS is the denominator of relative CQS; its CMR is 0 and win rate 1/2."""

    name = "identity"

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        return Profile(model=self.name, user=user, model_config=self.config())

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        self.check_profile(profile)
        return img.clone()


# --------------------------------------------------------------------------------------------
# global style
# --------------------------------------------------------------------------------------------


@register_model("global-style")
class GlobalStyleModel(PersonalizationModel):
    """One retouch ``θ`` for everyone, fitted on the training users' pairs.

    Objective (PPS dual supervision): each step takes a batch of training judgments, feeds one
    side of each pair at random (``I`` is ``I_p`` or ``I_n`` with probability 1/2), and minimises
    ``w · L1(f_θ(I), I_p) + (1 − w) · L1(f_θ(I), I_n)`` with ``w ~ U(0.5, 1.5)`` drawn per pair
    (``w > 1`` pushes the output away from the non-preferred image), where
    ``f_θ = apply_retouch_vector(·, θ)``. Images are ``thumb``-pixel square thumbnails, of which
    each step uses ``pixels`` random pixels per pair (the retouch is per pixel); Adam, ``steps``
    steps of ``batch`` pairs from the neutral edit. ``θ`` is stored as a canonical (clamped, monotone
    curve) :class:`RetouchParams`.

    Build fitted: ``GlobalStyleModel().fit(dataset, users)``, or from a saved checkpoint:
    ``GlobalStyleModel(checkpoint=path)`` (what :meth:`save` wrote; a profile-format file).
    """

    name = "global-style"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        params: RetouchParams | Mapping[str, Any] | None = None,
        steps: int = 150,
        lr: float = 0.03,
        batch: int = 16,
        pixels: int = 128,
        thumb: int = 64,
        max_pairs: int = 2048,
        seed: int = 0,
    ):
        self.steps, self.lr, self.batch, self.thumb, self.max_pairs, self.seed = (
            steps,
            lr,
            batch,
            thumb,
            max_pairs,
            seed,
        )
        self.pixels = pixels
        self.params: RetouchParams | None = None
        self.fit_info: dict[str, Any] = {}
        if params is not None:
            self.params = params if isinstance(params, RetouchParams) else RetouchParams.from_dict(dict(params))
        if checkpoint is not None:
            prof = Profile.load(checkpoint)
            if prof.model != self.name or "params" not in prof.data:
                raise PrefstyleError(f"not a {self.name} checkpoint (made by model '{prof.model}')", path=checkpoint)
            self.params = RetouchParams.from_dict(prof.data["params"])
            self.fit_info = dict(prof.data.get("fit", {}))

    @property
    def fitted(self) -> bool:
        return self.params is not None

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "steps": self.steps,
            "lr": self.lr,
            "batch": self.batch,
            "pixels": self.pixels,
            "thumb": self.thumb,
            "max_pairs": self.max_pairs,
            "seed": self.seed,
            "fit": self.fit_info,
        }

    def fit(self, dataset: Any, users: Iterable[str] | None = None, progress: bool = False) -> GlobalStyleModel:
        """Fit ``θ`` on the ``main`` judgments of ``users`` (default: the dataset's train split, else all).

        ``dataset`` is a :class:`~prefstyle.data.pairs.PairsDataset`. At most ``max_pairs``
        judgments (a seeded sample) are used; each image is loaded once. Returns ``self``.
        """
        from prefstyle.imaging.io import load_image

        if users is None:
            users = dataset.splits.get("train") or dataset.users()
        users = sorted(set(users))
        if not users:
            raise PrefstyleError("global-style: no training users to fit on")
        judgments = [j for u in users for j in dataset.by_user(u) if j.kind == "main"]
        if not judgments:
            raise PrefstyleError("global-style: the training users have no main judgments")
        rnd = random.Random(self.seed)
        if len(judgments) > self.max_pairs:
            judgments = rnd.sample(judgments, self.max_pairs)
        cache: dict[str, torch.Tensor] = {}

        def thumb_of(rel: str) -> torch.Tensor:
            if rel not in cache:
                cache[rel] = thumbnail(load_image(dataset.image_path(rel)), self.thumb)[0]
            return cache[rel]

        it: Iterable = judgments
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(judgments, desc="global-style: load pairs", leave=False)
        i_p = torch.stack([thumb_of(j.preferred_image) for j in it])
        i_n = torch.stack([thumb_of(j.other_image) for j in judgments])
        self.params = fit_global_style(
            i_p,
            i_n,
            steps=self.steps,
            lr=self.lr,
            batch=self.batch,
            pixels=self.pixels,
            seed=self.seed,
            progress=progress,
        )
        self.fit_info = {"users": len(users), "pairs": len(judgments), "images": len(cache)}
        return self

    def _require_fitted(self) -> RetouchParams:
        if self.params is None:
            raise PrefstyleError(
                "global-style is not fitted: call fit(dataset, users) or pass checkpoint= (a file written by save())"
            )
        return self.params

    def save(self, path: str | Path) -> Path:
        """Write the fitted ``θ`` as a small profile-format checkpoint (``.json``)."""
        return self.personalize([], None).save(path)

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        params = self._require_fitted()
        return Profile(
            model=self.name,
            user=user,
            model_config=self.config(),
            data={"params": params.to_dict(), "fit": self.fit_info},
        )

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        self.check_profile(profile)
        params = RetouchParams.from_dict(profile.data["params"])
        with torch.no_grad():
            return apply_retouch(img, params).clamp(0, 1)


def fit_global_style(
    i_p: torch.Tensor,
    i_n: torch.Tensor,
    steps: int = 150,
    lr: float = 0.03,
    batch: int = 16,
    pixels: int = 128,
    seed: int = 0,
    progress: bool = False,
) -> RetouchParams:
    """Fit one retouch to pairs ``i_p``, ``i_n`` ``(M,3,h,w)`` by dual supervision (see :class:`GlobalStyleModel`).

    Every operator of the retouch acts per pixel, so each step evaluates the loss on ``pixels``
    random pixel positions per pair (the same positions in ``I_p``, ``I_n`` and the input): an
    unbiased estimate of the full-image L1 at a fraction of the cost.
    """
    if i_p.shape != i_n.shape or i_p.ndim != 4 or i_p.shape[0] == 0:
        raise ValueError("i_p and i_n must be non-empty (M,3,h,w) batches of the same shape")
    gen = torch.Generator().manual_seed(seed)
    theta = NEUTRAL.to_vector()[None].clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    m = i_p.shape[0]
    flat_p, flat_n = i_p.flatten(2), i_n.flatten(2)  # (M,3,h*w)
    n_pix = flat_p.shape[-1]
    rng_steps: Iterable[int] = range(steps)
    if progress:
        from tqdm.auto import tqdm

        rng_steps = tqdm(rng_steps, desc="global-style: fit", leave=False)
    for _ in rng_steps:
        b = min(batch, m)
        idx = torch.randint(0, m, (b,), generator=gen)
        pix = torch.randint(0, n_pix, (b, 1, min(pixels, n_pix)), generator=gen).expand(-1, 3, -1)
        p = flat_p[idx].gather(2, pix)[:, :, None, :]  # (b,3,1,pixels)
        n = flat_n[idx].gather(2, pix)[:, :, None, :]
        side = torch.rand(b, 1, 1, 1, generator=gen) < 0.5
        x = torch.where(side, p, n)
        w = 0.5 + torch.rand(b, generator=gen)
        out = apply_retouch_vector(x, theta, exact=True)
        lp = (out - p).abs().flatten(1).mean(1)
        ln = (out - n).abs().flatten(1).mean(1)
        loss = (w * lp + (1 - w) * ln).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return RetouchParams.from_vector(theta.detach()[0], clamp=True)


# --------------------------------------------------------------------------------------------
# nearest preferred
# --------------------------------------------------------------------------------------------

FEATURE_GRID = 8
HIST_BINS = 8


def content_features(img: torch.Tensor) -> torch.Tensor:
    """Content descriptors ``(B, 3·8·8 + 8)`` of images ``(B,3,H,W)`` for nearest-scene lookup.

    An 8×8 area-downsampled CIELAB layout made insensitive to global edits: L standardised per
    image (zero mean, unit spread: exposure and contrast edits cancel), a and b centred on the
    image's mean (white-balance shifts cancel) and divided by 20; each of the three 8×8 blocks
    divided by 8 so that it has unit RMS scale. Then an 8-bin histogram (sums to 1) of the
    standardised L of a 32×32 thumbnail in [-2.5, 2.5]: the tonal layout regardless of edits.
    Distances between these vectors are Euclidean.
    """
    x = img[None] if img.ndim == 3 else img
    lab = rgb_to_lab(thumbnail(x.clamp(0, 1), 32))
    small = F.avg_pool2d(lab, 32 // FEATURE_GRID)
    L, ab = small[:, :1], small[:, 1:]
    Lz = (L - L.mean(dim=(2, 3), keepdim=True)) / (L.std(dim=(2, 3), keepdim=True) + 1.0)
    abz = (ab - ab.mean(dim=(2, 3), keepdim=True)) / 20.0
    layout = torch.cat([Lz, abz], dim=1).flatten(1) / FEATURE_GRID
    L32 = lab[:, 0]
    L32z = (L32 - L32.mean(dim=(1, 2), keepdim=True)) / (L32.std(dim=(1, 2), keepdim=True) + 1.0)
    edges = torch.linspace(-2.5, 2.5, HIST_BINS + 1)
    idx = torch.bucketize(L32z.flatten(1).clamp(-2.5, 2.5 - 1e-6), edges[1:-1])
    hist = F.one_hot(idx, HIST_BINS).float().mean(dim=1)
    return torch.cat([layout, hist], dim=1)


def _poly2_terms(rgb: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` -> ``(..., 10)``: ``r, g, b, r², g², b², rg, rb, gb, 1``."""
    r, g, b = rgb.unbind(-1)
    return torch.stack([r, g, b, r * r, g * g, b * b, r * g, r * b, g * b, torch.ones_like(r)], dim=-1)


POLY2_IDENTITY = torch.cat([torch.eye(3), torch.zeros(7, 3)]).double()


def fit_poly2(src: torch.Tensor, dst: torch.Tensor, ridge: float = 1e-3, size: int = 64) -> torch.Tensor:
    """Least-squares second-order colour polynomial ``(10, 3)`` mapping ``src`` to ``dst`` ``(3,H,W)``.

    Both are area-downsampled to ``size``² pixels (they must show the same scene, pixel-aligned
    up to scale). The fit is ridge-regularised towards the identity map (``ridge`` per sample,
    relative), which keeps it sane where the source covers few colours.
    """
    a = thumbnail(src, size)[0].permute(1, 2, 0).reshape(-1, 3).double()
    b = thumbnail(dst, size)[0].permute(1, 2, 0).reshape(-1, 3).double()
    phi = _poly2_terms(a)
    n = phi.shape[0]
    lam = ridge * n
    lhs = phi.T @ phi + lam * torch.eye(10, dtype=torch.float64)
    rhs = phi.T @ b + lam * POLY2_IDENTITY
    return torch.linalg.solve(lhs, rhs).float()


def apply_poly2(img: torch.Tensor, coef: torch.Tensor, chunk_rows: int = 256) -> torch.Tensor:
    """Apply a ``(10,3)`` colour polynomial to ``(3,H,W)`` or ``(B,3,H,W)``; output clamped to [0,1]."""
    squeeze = img.ndim == 3
    x = img[None] if squeeze else img
    out = torch.empty_like(x)
    coef = coef.to(x.dtype)
    for r0 in range(0, x.shape[-2], chunk_rows):
        part = x[:, :, r0 : r0 + chunk_rows].permute(0, 2, 3, 1)
        out[:, :, r0 : r0 + chunk_rows] = (_poly2_terms(part) @ coef).clamp(0, 1).permute(0, 3, 1, 2)
    return out[0] if squeeze else out


@register_model("nearest-preferred")
class NearestPreferredModel(PersonalizationModel):
    """Copy the edit of the reference closest in content.

    ``personalize`` stores, per reference, the :func:`content_features` of its input (the scene's
    neutral source, or the non-preferred image when the dataset has no sources) and a
    second-order RGB polynomial fitted from that input to the preferred image
    (:func:`fit_poly2`). ``render`` picks, per query image, the reference whose features are
    nearest and applies its polynomial. Without references it returns the input.
    """

    name = "nearest-preferred"

    def __init__(self, ridge: float = 1e-3, fit_size: int = 64):
        self.ridge, self.fit_size = ridge, fit_size

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ridge": self.ridge,
            "fit_size": self.fit_size,
            "transform": "poly2-rgb",
            "features": "lab8x8-standardised+L-histogram8",
        }

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        feats, coefs, scenes = [], [], []
        for r in refs:
            src = r.source if r.source is not None else r.other
            feats.append(content_features(src)[0])
            coefs.append(fit_poly2(src, r.preferred, ridge=self.ridge, size=self.fit_size))
            scenes.append(r.scene)
        tensors = {}
        if refs:
            tensors = {"features": torch.stack(feats), "transforms": torch.stack(coefs)}
        return Profile(
            model=self.name,
            user=user,
            model_config=self.config(),
            tensors=tensors,
            data={"scenes": scenes, "n_refs": len(refs)},
        )

    def nearest(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        """Index ``(B,)`` of the nearest reference for each image (profile must have references)."""
        f = content_features(img)
        return torch.cdist(f, profile.tensors["features"].to(f.dtype)).argmin(dim=1)

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        self.check_profile(profile)
        if not profile.tensors:
            return img.clone()
        with torch.no_grad():
            idx = self.nearest(img, profile)
            coefs = profile.tensors["transforms"]
            return torch.cat([apply_poly2(img[b : b + 1], coefs[int(k)]) for b, k in enumerate(idx)])


# --------------------------------------------------------------------------------------------
# simulated-data reference points: ground truth access
# --------------------------------------------------------------------------------------------


def _ground_truth_file(ground_truth: str | Path) -> Path:
    from prefstyle.data.simulate import GROUND_TRUTH_FILE

    p = Path(ground_truth)
    return p / GROUND_TRUTH_FILE if p.is_dir() else p


def _no_truth(model: str) -> PrefstyleError:
    return PrefstyleError(
        f"the '{model}' reference point needs a simulated dataset's ground truth (ground_truth.json); "
        "this dataset has none, so it cannot be evaluated here"
    )


def _load_users(ground_truth: Any, model: str) -> dict[str, Any]:
    from prefstyle.data.simulate import load_ground_truth

    if ground_truth is None:
        raise _no_truth(model)
    if isinstance(ground_truth, Mapping):
        return dict(ground_truth)
    path = _ground_truth_file(ground_truth)
    if not path.is_file():
        raise PrefstyleError(_no_truth(model).args[0], path=path.parent)
    return load_ground_truth(path.parent)


def _load_config(ground_truth: Any, config: Any, model: str) -> Any:
    from prefstyle.data.simulate import SimulationConfig

    if config is not None:
        return config if isinstance(config, SimulationConfig) else _config_from_dict(config)
    if ground_truth is None or isinstance(ground_truth, Mapping):
        raise _no_truth(model)
    path = _ground_truth_file(ground_truth)
    if not path.is_file():
        raise PrefstyleError(_no_truth(model).args[0], path=path.parent)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PrefstyleError(f"malformed JSON: {e.msg}", path=path, line=e.lineno) from None
    return _config_from_dict(doc.get("config", {}))


def _config_from_dict(d: Mapping[str, Any]) -> Any:
    from prefstyle.data.simulate import SimulationConfig

    known = {f.name for f in fields(SimulationConfig)}
    kw = {k: v for k, v in d.items() if k in known}
    for key in ("split_fractions", "crowd"):
        if key in kw:
            kw[key] = tuple(kw[key])
    return SimulationConfig(**kw)


# --------------------------------------------------------------------------------------------
# oracle
# --------------------------------------------------------------------------------------------


@register_model("oracle")
class OracleModel(PersonalizationModel):
    """The user's true ideal rendition (simulated data only): ``render(x) = SimulatedUser.ideal(x)``.

    ``ground_truth``: a simulated dataset folder (or its ``ground_truth.json``), or a mapping
    ``user -> SimulatedUser``. The profile carries the user's ground truth, so it renders alone.
    """

    name = "oracle"
    reference_point = True

    def __init__(self, ground_truth: str | Path | Mapping[str, Any] | None = None):
        self.users = _load_users(ground_truth, self.name)

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        if user is None or user not in self.users:
            raise PrefstyleError(f"oracle: user {user!r} is not in the ground truth ({len(self.users)} users)")
        truth = self.users[user]
        tensors = {}
        luts = getattr(truth.person.taste, "luts", None)  # a looks crowd's taste: carry its LUTs along
        if callable(luts):
            tensors["look_tables"] = luts().contiguous()
        return Profile(
            model=self.name, user=user, model_config=self.config(), data={"truth": truth.to_dict()}, tensors=tensors
        )

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        from prefstyle.data.crowd import Device, Person, SimulatedUser

        self.check_profile(profile)
        truth = profile.data["truth"]
        with torch.no_grad():
            if "look_tables" in profile.tensors:
                from prefstyle.data.looks_crowd import LookTaste

                person = dict(truth["person"])
                person["taste"] = LookTaste.from_dict(person["taste"], tables=profile.tensors["look_tables"])
                user = SimulatedUser(Person(**person), Device.from_dict(truth["device"]))
                return user.ideal(img).clamp(0, 1)
            return SimulatedUser.from_dict(truth).ideal(img).clamp(0, 1)


# --------------------------------------------------------------------------------------------
# bayes
# --------------------------------------------------------------------------------------------


def ideal_with_offsets(img: torch.Tensor, taste: Any, ev: torch.Tensor | float, exact: bool = False) -> torch.Tensor:
    """``Taste.ideal`` with the scene-dependent exposure offset ``ev`` (EV, ``(B,)`` or scalar) given.

    ``ideal_with_offsets(x, t, t.exposure_offsets(x))`` equals ``t.ideal(x)``; with the offset
    fixed, the ideal is a pure per-pixel colour map, so it can be baked into a LUT. ``exact``
    evaluates every retouch operator per pixel (cheaper than the fused tables for few pixels).
    """
    from prefstyle.data.crowd import _EXPOSURE_INDEX
    from prefstyle.styles.base import from_params

    x = img
    if taste.base_style is not None and taste.base_mix > 0:
        styled = from_params(taste.base_style).apply(img)
        x = img + taste.base_mix * (styled - img)
    vec = taste.params.to_vector().to(img.dtype).expand(img.shape[0], -1).clone()
    vec[:, _EXPOSURE_INDEX] = (vec[:, _EXPOSURE_INDEX] + torch.as_tensor(ev, dtype=img.dtype)).clamp(-3.0, 3.0)
    return apply_retouch_vector(x.clamp(0, 1), vec, exact=exact)


def view_batch(
    img: torch.Tensor, gamma: torch.Tensor, white_shift: torch.Tensor, brightness: torch.Tensor
) -> torch.Tensor:
    """:meth:`prefstyle.data.crowd.Device.view` for one display per image: ``(B,3,H,W)``, params ``(B,)``.

    Returns CIELAB ``(B,3,H,W)`` as seen on each display (same formula as ``Device.view``).
    """

    def v(t: torch.Tensor) -> torch.Tensor:
        return t.to(img.dtype).view(-1, 1, 1, 1)

    lin = img.clamp(0.0, 1.0).pow(v(gamma))
    ws = white_shift.to(img.dtype)
    gains = torch.stack([1.0 + 0.08 * ws, torch.ones_like(ws), 1.0 - 0.08 * ws], dim=1).view(-1, 3, 1, 1)
    lin = (lin * gains * v(brightness)).clamp(0.0, 1.0)
    enc = torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp_min(1e-12).pow(1 / 2.4) - 0.055)
    return rgb_to_lab(enc)


@dataclass
class _Particles:
    """K samples from the simulator's prior over (taste, person, device)."""

    tastes: list[Any]
    vecs: torch.Tensor  # (K, VECTOR_DIM) retouch parameter vectors
    temperature: torch.Tensor  # (K,)
    careless: torch.Tensor  # (K,) bool
    position_bias: torch.Tensor  # (K,)
    gamma: torch.Tensor  # (K,)
    white_shift: torch.Tensor  # (K,)
    brightness: torch.Tensor  # (K,)
    target: torch.Tensor  # (K,) NaN for scene-independent tastes
    gain: torch.Tensor  # (K,)
    base_index: torch.Tensor  # (K,) index into base_luts, -1 without a base style
    base_mix: torch.Tensor  # (K,)
    base_luts: torch.Tensor  # (Kb, 3, S, S, S): base styles baked (for the likelihood only)


class BayesModel(PersonalizationModel):
    """Bayes estimate of the user's ideal from N judgments (simulated data only).

    Prior: ``particles`` draws (default 512, seeded) from the simulator's own prior, read from
    the dataset's ``ground_truth.json`` config: the taste (:func:`prefstyle.data.simulate.sample_taste`),
    the person's Bradley-Terry temperature (log-normal), whether they are careless and their
    position bias, and the display (:func:`prefstyle.data.crowd.sample_device`). The user's own
    device is *not* read from the ground truth: only the judgments inform the estimate.

    Likelihood of the N references under each particle, as the simulator computes it: the
    distance of each rendition to the particle's ideal of the scene's neutral source is the
    mean CIEDE2000 in CIELAB as seen on the particle's display over a ``thumb``-pixel square
    thumbnail (64, as the simulator's), estimated on one seeded pixel per 8×8 block (64
    stratified pixels: every operator of the ideal acts per pixel, the scene-dependent exposure
    is taken from the whole thumbnail; the estimate of a distance difference is within about
    0.2 ΔE00 of the full mean); ``P(chosen) = σ((d_other − d_chosen)/T ± bias)``, careless
    particles ``1/2 ± bias``. Base styles (camera looks, presets) are baked into
    ``base_lut_size``³ LUTs for the likelihood.

    Posterior mean. The weights are the normalised likelihoods; the estimate of the ideal of an
    image is the weighted mean of the particles' ideals (the Bayes estimator under squared
    error). For rendering, the heaviest particles that hold ``mass`` of the weight (at most
    ``render_particles``) are kept and renormalised; each one's ideal is baked into
    ``lut_size``³ LUTs on a grid of scene-dependent exposure offsets (every 0.5 EV over the
    ±1.5 EV the simulator allows), so any image is rendered by one blended LUT, at any size.

    References need the scene's neutral source (simulated datasets have one).
    """

    name = "bayes"
    reference_point = True
    EV_NODES = torch.linspace(-1.5, 1.5, 7)
    BLOCK = 8

    def __new__(cls, ground_truth: Any = None, config: Any = None, *args: Any, **kwargs: Any) -> BayesModel:
        # On a looks crowd's ground truth, ``BayesModel(...)`` is the looks crowd's posterior
        # (every caller that builds "bayes" from a dataset gets the right reference point).
        if cls is BayesModel and config is None:
            doc = _ground_truth_doc(ground_truth)
            if doc is not None and doc.get("tastes") == "looks":
                return super().__new__(LooksBayesModel)
        return super().__new__(cls)

    def __init__(
        self,
        ground_truth: str | Path | None = None,
        config: Any = None,
        particles: int = 512,
        thumb: int = 64,
        seed: int = 0,
        mass: float = 0.99,
        render_particles: int = 16,
        lut_size: int = 17,
        base_lut_size: int = 17,
        scene_cache: int = 512,
    ):
        self.sim_config = _load_config(ground_truth, config, self.name)
        if particles < 1:
            raise ValueError("particles must be >= 1")
        if thumb < self.BLOCK or thumb % self.BLOCK:
            raise ValueError(f"thumb must be a multiple of {self.BLOCK}")
        self.k, self.thumb, self.seed, self.mass = particles, thumb, seed, mass
        self.render_particles, self.lut_size, self.base_lut_size = render_particles, lut_size, base_lut_size
        self._particles: _Particles | None = None
        self._scene_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._scene_cache_size = scene_cache
        self._render_cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = (
            OrderedDict()
        )
        g = torch.Generator().manual_seed(seed)
        nb = thumb // self.BLOCK
        oy = torch.randint(0, self.BLOCK, (nb, nb), generator=g)
        ox = torch.randint(0, self.BLOCK, (nb, nb), generator=g)
        by, bx = torch.meshgrid(torch.arange(nb), torch.arange(nb), indexing="ij")
        self._pixels = ((by * self.BLOCK + oy) * thumb + (bx * self.BLOCK + ox)).flatten()

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "particles": self.k,
            "thumb": self.thumb,
            "seed": self.seed,
            "mass": self.mass,
            "render_particles": self.render_particles,
            "lut_size": self.lut_size,
            "base_lut_size": self.base_lut_size,
            "likelihood_pixels": int(self._pixels.numel()),
        }

    # -- the prior -------------------------------------------------------------------------

    @property
    def particles(self) -> _Particles:
        if self._particles is None:
            self._particles = self._sample_prior()
        return self._particles

    def _sample_prior(self) -> _Particles:
        from prefstyle.data.crowd import sample_device
        from prefstyle.data.simulate import sample_taste
        from prefstyle.styles.base import from_params

        cfg = self.sim_config
        rng = np.random.default_rng(self.seed)
        tastes, temps, careless, bias, gam, ws, br = [], [], [], [], [], [], []
        for _ in range(self.k):
            tastes.append(sample_taste(rng, cfg))
            c = bool(rng.random() < cfg.careless_fraction)
            careless.append(c)
            temps.append(cfg.temperature_median * math.exp(rng.normal(0, cfg.temperature_sigma)))
            bias.append(rng.normal(0, 0.05 if c else 0.1))
            d = sample_device(rng, "prior")
            gam.append(d.gamma)
            ws.append(d.white_shift)
            br.append(d.brightness)
        base_index, base_luts = [], []
        s = self.base_lut_size
        grid = identity_lut(s).reshape(1, 3, s, s * s)
        with torch.no_grad():
            for t in tastes:
                if t.base_style is not None and t.base_mix > 0:
                    base_index.append(len(base_luts))
                    base_luts.append(from_params(t.base_style).apply(grid).reshape(3, s, s, s))
                else:
                    base_index.append(-1)

        def f32(v: Any) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.float32)

        return _Particles(
            tastes=tastes,
            vecs=torch.stack([t.params.to_vector() for t in tastes]),
            temperature=f32(temps),
            careless=torch.tensor(careless),
            position_bias=f32(bias),
            gamma=f32(gam),
            white_shift=f32(ws),
            brightness=f32(br),
            target=f32([t.target_brightness if t.target_brightness is not None else float("nan") for t in tastes]),
            gain=f32([t.brightness_gain for t in tastes]),
            base_index=torch.tensor(base_index),
            base_mix=f32([t.base_mix for t in tastes]),
            base_luts=torch.stack(base_luts) if base_luts else torch.zeros(0, 3, s, s, s),
        )

    # -- likelihood ------------------------------------------------------------------------

    @staticmethod
    def _ev(img: torch.Tensor, target: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """Scene-dependent exposure offsets ``(K, B)`` of each particle for images ``(B,3,h,w)``
        (as :meth:`prefstyle.data.crowd.Taste.exposure_offsets`)."""
        from prefstyle.data.crowd import MAX_SCENE_EV
        from prefstyle.imaging.color import luminance, srgb_to_linear

        y = luminance(srgb_to_linear(img.clamp(0, 1))).mean(dim=(1, 2, 3)).clamp_min(1e-4)  # (B,)
        ev = gain[:, None] * torch.log2(target[:, None] / y[None, :])
        ev = ev.clamp(-MAX_SCENE_EV, MAX_SCENE_EV)
        scene_dep = torch.isfinite(target) & (gain != 0)
        return torch.where(scene_dep[:, None], ev, torch.zeros_like(ev))

    def _sampled(self, img: torch.Tensor) -> torch.Tensor:
        """The likelihood pixels of an image: ``(3,H,W)`` -> ``(1,3,1,P)``."""
        t = thumbnail(img.clamp(0, 1), self.thumb)
        return t.flatten(2)[:, :, self._pixels][:, :, None, :]

    def _scene_ideals(self, source: torch.Tensor) -> torch.Tensor:
        """Every particle's ideal of a neutral source, at the likelihood pixels: ``(K,3,1,P)`` (cached)."""
        from prefstyle.data.crowd import _EXPOSURE_INDEX

        t = thumbnail(source.clamp(0, 1), self.thumb)
        key = hashlib.sha1(t.numpy().tobytes()).hexdigest()
        if key in self._scene_cache:
            self._scene_cache.move_to_end(key)
            return self._scene_cache[key]
        P = self.particles
        with torch.no_grad():
            x = self._sampled(source)
            xs = x.expand(self.k, -1, -1, -1).clone()
            has = P.base_index >= 0
            if bool(has.any()):
                styled = apply_lut(x.expand(int(has.sum()), -1, -1, -1).contiguous(), P.base_luts[P.base_index[has]])
                xs[has] = x + P.base_mix[has].view(-1, 1, 1, 1) * (styled - x)
            vec = P.vecs.clone()
            vec[:, _EXPOSURE_INDEX] = (vec[:, _EXPOSURE_INDEX] + self._ev(t, P.target, P.gain)[:, 0]).clamp(-3.0, 3.0)
            ideals = apply_retouch_vector(xs.clamp(0, 1), vec, exact=True)
        self._scene_cache[key] = ideals
        while len(self._scene_cache) > self._scene_cache_size:
            self._scene_cache.popitem(last=False)
        return ideals

    def log_likelihood(self, refs: Sequence[Reference]) -> torch.Tensor:
        """Log-likelihood ``(K,)`` (float64) of the references' choices under each particle."""
        P = self.particles
        ll = torch.zeros(self.k, dtype=torch.float64)
        dev = (P.gamma, P.white_shift, P.brightness)
        for r in refs:
            if r.source is None:
                raise PrefstyleError(
                    f"bayes: reference of scene {r.scene!r} has no neutral source (needs a simulated dataset)"
                )
            side = r.meta.get("preferred_side")
            sign = 1.0 if side == "a" else -1.0 if side == "b" else 0.0
            with torch.no_grad():
                seen_i = view_batch(self._scene_ideals(r.source), *dev)
                pref = self._sampled(r.preferred).expand(self.k, -1, -1, -1)
                other = self._sampled(r.other).expand(self.k, -1, -1, -1)
                d_p = delta_e_2000(view_batch(pref, *dev), seen_i).mean(dim=(-2, -1))
                d_o = delta_e_2000(view_batch(other, *dev), seen_i).mean(dim=(-2, -1))
                p_bt = torch.sigmoid((d_o - d_p) / P.temperature + sign * P.position_bias).double()
                p_care = (0.5 + sign * P.position_bias).double()
                p = torch.where(P.careless, p_care, p_bt).clamp(1e-9, 1.0)
                ll += torch.log(p)
        return ll

    # -- the model interface -----------------------------------------------------------------

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        ll = self.log_likelihood(refs)
        w = torch.softmax(ll, dim=0)
        ess = float(1.0 / (w**2).sum())
        order = torch.argsort(w, descending=True)
        cum = torch.cumsum(w[order], dim=0)
        n_keep = int(min(self.render_particles, int((cum < self.mass).sum()) + 1, self.k))
        keep = order[:n_keep]
        wk = (w[keep] / w[keep].sum()).tolist()
        P = self.particles
        data = {
            "particles": [
                {"taste": P.tastes[int(i)].to_dict(), "weight": float(wi), "index": int(i)} for i, wi in zip(keep, wk)
            ],
            "kept_mass": float(w[keep].sum()),
            "ess": ess,
            "n_refs": len(refs),
            "log_evidence": float(torch.logsumexp(ll, 0) - math.log(self.k)),
        }
        return Profile(model=self.name, user=user, model_config=self.config(), data=data)

    def _render_luts(self, profile: Profile) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per kept particle: LUTs over the EV grid ``(P, E, 3, S, S, S)``, weights, targets, gains."""
        from prefstyle.data.crowd import Taste

        parts = profile.data["particles"]
        key = hashlib.sha1(json.dumps([parts, self.lut_size], sort_keys=True).encode()).hexdigest()
        if key in self._render_cache:
            self._render_cache.move_to_end(key)
            return self._render_cache[key]
        s = self.lut_size
        grid = identity_lut(s).reshape(1, 3, s, s * s)
        n_ev = len(self.EV_NODES)
        luts, weights, targets, gains = [], [], [], []
        with torch.no_grad():
            for part in parts:
                taste = Taste.from_dict(part["taste"])
                dep = taste.target_brightness is not None and taste.brightness_gain != 0.0
                evs = self.EV_NODES if dep else torch.zeros(1)
                out = ideal_with_offsets(grid.expand(len(evs), -1, -1, -1), taste, evs, exact=True)
                out = out.reshape(len(evs), 3, s, s, s)
                luts.append(out if dep else out.expand(n_ev, -1, -1, -1, -1))
                weights.append(part["weight"])
                targets.append(taste.target_brightness if dep else float("nan"))
                gains.append(taste.brightness_gain if dep else 0.0)
        res = (torch.stack(luts), torch.tensor(weights), torch.tensor(targets), torch.tensor(gains))
        self._render_cache[key] = res
        while len(self._render_cache) > 8:
            self._render_cache.popitem(last=False)
        return res

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        self.check_profile(profile)
        luts, w, target, gain = self._render_luts(profile)
        with torch.no_grad():
            ev = self._ev(img, target, gain)  # (P, B)
            nodes = self.EV_NODES
            pos = ((ev - nodes[0]) / (nodes[1] - nodes[0])).clamp(0, len(nodes) - 1)
            i0 = pos.floor().long().clamp(max=len(nodes) - 2)
            frac = (pos - i0).view(*pos.shape, 1, 1, 1, 1)
            p_idx = torch.arange(luts.shape[0])[:, None]
            blended = (1 - frac) * luts[p_idx, i0] + frac * luts[p_idx, i0 + 1]  # (P, B, 3, S, S, S)
            lut_b = (w.view(-1, 1, 1, 1, 1, 1) * blended).sum(0)  # (B, 3, S, S, S)
            return apply_lut(img, lut_b.contiguous()).clamp(0, 1)


# --------------------------------------------------------------------------------------------
# bayes on the looks crowd
# --------------------------------------------------------------------------------------------


def _ground_truth_doc(ground_truth: Any) -> dict[str, Any] | None:
    """The parsed ``ground_truth.json`` of a dataset folder or file (None for mappings / None)."""
    if ground_truth is None or isinstance(ground_truth, Mapping):
        return None
    path = _ground_truth_file(ground_truth)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PrefstyleError(f"malformed JSON: {e.msg}", path=path, line=e.lineno) from None


@register_model("bayes")
def bayes_reference(ground_truth: Any = None, config: Any = None, **kwargs: Any) -> PersonalizationModel:
    """The ``bayes`` reference point for a simulated dataset: :class:`LooksBayesModel` on a looks
    crowd (``ground_truth.json`` with ``"tastes": "looks"``), else :class:`BayesModel`."""
    doc = _ground_truth_doc(ground_truth) if config is None else None
    if doc is not None and doc.get("tastes") == "looks":
        known = {"particles", "seed", "thumb", "render_particles", "mass"}
        return LooksBayesModel(ground_truth, **{k: v for k, v in kwargs.items() if k in known})  # type: ignore[return-value]
    return BayesModel(ground_truth=ground_truth, config=config, **kwargs)


@register_model("bayes-seen")
def bayes_seen_reference(ground_truth: Any = None, **kwargs: Any) -> PersonalizationModel:
    """``bayes`` on a looks crowd without the held-out look families: its prior holds only the
    training families' looks (:class:`LooksBayesSeenModel`)."""
    doc = _ground_truth_doc(ground_truth)
    if doc is None or doc.get("tastes") != "looks":
        raise PrefstyleError("bayes-seen is a reference point for looks crowds (data simulate --tastes looks)")
    known = {"particles", "seed", "thumb", "render_particles", "mass"}
    opts = {k: v for k, v in kwargs.items() if k in known}
    return LooksBayesSeenModel(ground_truth, **opts)  # type: ignore[return-value]


class LooksBayesModel(BayesModel):
    """Bayes estimate of the user's ideal on a looks crowd (:mod:`prefstyle.data.looks_crowd`).

    It knows the simulator: the dataset's look table (``looks.json`` beside ``ground_truth.json``),
    the population's shared correction, brightness target, the looks' popularity and the family
    split, the choice model's median temperature and careless share; not the user's own taste,
    split or device.

    Particles: every look of the table × ``strengths`` × ``gains`` (share of the EV gap to the
    population's brightness target that the ideal closes; three values spanning each of the
    crowd's ranges, :meth:`_grid`: 0.5 / 0.75 / 1 for the default crowd), each the ideal
    ``correction(x, EV) → look at strength`` with the shared correction at the mean personal
    scale (the personal edit and the second, content-dependent look are not in the grid).
    Prior over looks: the crowd's own marginal, ``Σ_split f_split · popularity restricted to the
    split's families``; uniform over strengths and gains.

    Likelihood: the crowd's. The distance of a rendition to a particle's ideal of the scene's
    neutral source is the mean ΔE00 as seen on a standard display (gamma 2.2, brightness 0.95)
    over 64 stratified pixels of a ``thumb``-pixel thumbnail (the correction's EV and the
    content weight from the whole thumbnail); ``P(chosen) = (1−ε)·σ((d_other − d_chosen)/T) + ε/2``
    with T the crowd's median temperature and ε its careless share.

    Rendering: the Bayes decision under ΔE00. The heaviest particles holding ``mass`` of the
    posterior (at most ``render_particles``) and their weighted mean are the candidates; per
    image, the candidate with the least posterior expected ΔE00 to the particles' ideals on a 32-px
    thumbnail is rendered at full size.

    ``seen_only``: the prior keeps only the looks of the crowd's *training* families (the ones a
    learned model may see), renormalised by popularity: the ``bayes-seen`` reference point, which
    knows everything about the generator except the held-out looks.
    """

    name = "bayes"
    reference_point = True
    BLOCK = 8
    DECISION_THUMB = 16

    def __init__(
        self,
        ground_truth: Any = None,
        config: Any = None,
        particles: int | None = None,
        seed: int = 0,
        thumb: int = 64,
        render_particles: int = 24,
        mass: float = 0.99,
        seen_only: bool = False,
        **_slider_options: Any,
    ):
        from prefstyle.data.looks import load_looks
        from prefstyle.data.looks_crowd import Population, crowd_settings

        doc = _ground_truth_doc(ground_truth)
        if doc is None or doc.get("tastes") != "looks":
            raise _no_truth(self.name)
        root = _ground_truth_file(ground_truth).parent
        self.library = load_looks(root / doc["looks"]["file"])
        self.crowd = crowd_settings(doc)
        self.strengths, self.gains = self._grid(self.crowd.strength), self._grid(self.crowd.gain)
        self.population = Population.from_dict(doc["population"])
        cfg = _config_from_dict(doc.get("config", {}))
        self.temperature, self.lapse = float(cfg.temperature_median), float(cfg.careless_fraction)
        self.seed, self.thumb, self.render_particles, self.mass = seed, thumb, render_particles, mass
        fams = doc["looks"]["families"]
        pop = torch.tensor(self.population.popularity, dtype=torch.float64)
        prior = torch.zeros(len(self.library), dtype=torch.float64)
        for split, frac in zip(("train", "val", "test"), cfg.split_fractions):
            member = torch.tensor([lk.family in set(fams.get(split, [])) for lk in self.library.looks])
            if member.any() and pop[member].sum() > 0:
                prior += frac * torch.where(member, pop, torch.zeros_like(pop)) / pop[member].sum()
        if seen_only:
            seen = torch.tensor([lk.family in set(fams.get("train", [])) for lk in self.library.looks])
            if not seen.any():
                raise PrefstyleError("bayes-seen: the crowd's ground truth names no training look families")
            prior = torch.where(seen, pop, torch.zeros_like(pop))
        self.seen_only = bool(seen_only)
        self.look_prior = prior / prior.sum()
        lo, hi = self.crowd.correction_scale
        from prefstyle.data.looks_crowd import scaled_correction

        self.correction = scaled_correction(self.population.correction, (lo + hi) / 2)
        g = torch.Generator().manual_seed(seed)
        nb = thumb // self.BLOCK
        oy = torch.randint(0, self.BLOCK, (nb, nb), generator=g)
        ox = torch.randint(0, self.BLOCK, (nb, nb), generator=g)
        by, bx = torch.meshgrid(torch.arange(nb), torch.arange(nb), indexing="ij")
        self._pixels = ((by * self.BLOCK + oy) * thumb + (bx * self.BLOCK + ox)).flatten()
        self._scene_cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    @staticmethod
    def _grid(lo_hi: tuple[float, float]) -> tuple[float, ...]:
        """Three values spanning a crowd range ``(lo, hi)`` (one when ``lo == hi``)."""
        lo, hi = (float(v) for v in lo_hi)
        return (lo,) if hi == lo else (lo, (lo + hi) / 2, hi)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "looks": len(self.library),
            "strengths": list(self.strengths),
            "gains": list(self.gains),
            "thumb": self.thumb,
            "seed": self.seed,
            "render_particles": self.render_particles,
            "mass": self.mass,
            "temperature": self.temperature,
            "lapse": self.lapse,
            **({"seen_only": True} if self.seen_only else {}),
        }

    @property
    def n_particles(self) -> int:
        return len(self.library) * len(self.strengths) * len(self.gains)

    def _log_prior(self) -> torch.Tensor:
        """``(K·S·G,)`` in particle order (look-major, then strength, then gain)."""
        lp = torch.log(self.look_prior.clamp_min(1e-300))
        per = len(self.strengths) * len(self.gains)
        return lp.repeat_interleave(per) - math.log(per)

    def _particle(self, i: int) -> tuple[int, float, float]:
        ns, ng = len(self.strengths), len(self.gains)
        return i // (ns * ng), self.strengths[(i // ng) % ns], self.gains[i % ng]

    def _corrected(self, img_px: torch.Tensor, thumb: torch.Tensor) -> torch.Tensor:
        """The shared correction at each gain: ``(G,3,h,w)`` for pixels ``(1,3,h,w)`` of an image
        whose statistics come from ``thumb`` ``(1,3,H,W)``."""
        from prefstyle.data.looks_crowd import _thumb, correct, exposure_ev

        gains = torch.tensor(self.gains)
        G = len(gains)
        ev = exposure_ev(thumb, torch.full_like(gains, self.crowd.target_brightness), gains)[:, 0]  # (G,)
        vec = self.correction.to_vector().expand(G, -1)
        stats = _thumb(thumb.clamp(0, 1)).expand(G, -1, -1, -1)
        share = gains if self.crowd.levels_stretch else torch.zeros_like(gains)
        return correct(img_px.expand(G, -1, -1, -1), vec, ev, share, stats)

    def _ideals(self, img_px: torch.Tensor, thumb: torch.Tensor) -> torch.Tensor:
        """Every particle's ideal of pixels ``(1,3,h,w)``: ``(K·S·G,3,h,w)``."""
        corr = self._corrected(img_px, thumb)  # (G,3,h,w)
        K, G = len(self.library), len(self.gains)
        x = corr[None].expand(K, -1, -1, -1, -1).reshape(K * G, *corr.shape[1:]).contiguous()
        luts = self.library.tables.repeat_interleave(G, dim=0)
        styled = _apply_luts_batched(x, luts).clamp(0, 1).view(K, 1, G, *corr.shape[1:])
        base = corr[None, None]
        s = torch.tensor(self.strengths).view(1, -1, 1, 1, 1, 1)
        return (base + s * (styled - base)).reshape(-1, *corr.shape[1:])

    @staticmethod
    def _view(img: torch.Tensor) -> torch.Tensor:
        from prefstyle.data.crowd import Device

        return Device("standard", gamma=2.2, white_shift=0.0, brightness=0.95).view(img)

    def _sampled(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = thumbnail(img.clamp(0, 1), self.thumb)
        return t.flatten(2)[:, :, self._pixels][:, :, None, :], t

    def _scene_ideals_lab(self, source: torch.Tensor) -> torch.Tensor:
        px, t = self._sampled(source)
        key = hashlib.sha1(t.numpy().tobytes()).hexdigest()
        if key not in self._scene_cache:
            with torch.no_grad():
                self._scene_cache[key] = self._view(self._ideals(px, t))
            while len(self._scene_cache) > 256:
                self._scene_cache.popitem(last=False)
        return self._scene_cache[key]

    def log_likelihood(self, refs: Sequence[Reference]) -> torch.Tensor:
        """``(K·S·G,)`` float64 log-likelihood of the references' choices under each particle."""
        ll = torch.zeros(self.n_particles, dtype=torch.float64)
        for r in refs:
            if r.source is None:
                raise PrefstyleError(f"bayes: reference of scene {r.scene!r} has no neutral source")
            with torch.no_grad():
                ideals = self._scene_ideals_lab(r.source)
                pair = self._view(torch.cat([self._sampled(r.preferred)[0], self._sampled(r.other)[0]], dim=-1))
                d = delta_e_2000(pair.expand(ideals.shape[0], -1, -1, -1), ideals.repeat(1, 1, 1, 2))
                n_px = ideals.shape[-1]
                d_p, d_o = d[..., :n_px].mean(dim=(-2, -1)), d[..., n_px:].mean(dim=(-2, -1))
                p = (1 - self.lapse) * torch.sigmoid((d_o - d_p) / self.temperature) + self.lapse / 2
                ll += torch.log(p.double().clamp_min(1e-12))
        return ll

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        ll = self.log_likelihood(refs)
        lp = ll + self._log_prior()
        w = torch.softmax(lp, dim=0)
        order = torch.argsort(w, descending=True)
        cum = torch.cumsum(w[order], dim=0)
        n_keep = int(min(self.render_particles, int((cum < self.mass).sum()) + 1))
        keep = order[:n_keep]
        wk = w[keep] / w[keep].sum()
        parts = []
        for i, wi in zip(keep.tolist(), wk.tolist()):
            k, s, g = self._particle(i)
            parts.append({"look": self.library.looks[k].name, "strength": s, "gain": g, "weight": wi})
        data = {
            "particles": parts,
            "kept_mass": float(w[keep].sum()),
            "ess": float(1.0 / (w**2).sum()),
            "n_refs": len(refs),
            "n_particles": self.n_particles,
        }
        return Profile(model=self.name, user=user, model_config=self.config(), data=data)

    def _taste(self, part: Mapping[str, Any]) -> Any:
        from prefstyle.data.looks_crowd import LookTaste

        lut = self.library.lut(part["look"])[None]
        return LookTaste(
            looks=(part["look"],),
            strengths=(float(part["strength"]),),
            correction=self.correction,
            target_brightness=self.crowd.target_brightness,
            brightness_gain=float(part["gain"]),
            tables=lut,
            levels=self.crowd.levels_stretch,
        )

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        self.check_profile(profile)
        parts = profile.data["particles"]
        tastes = [self._taste(p) for p in parts]
        w = torch.tensor([p["weight"] for p in parts], dtype=img.dtype)
        out = []
        with torch.no_grad():
            for b in range(img.shape[0]):
                x = img[b : b + 1]
                small = thumbnail(x, self.DECISION_THUMB)
                # the ideals' statistics come from the image itself, not its thumbnail's thumbnail
                ideals = _ideals_of(tastes, x, small)  # (P,3,t,t)
                mean = (w.view(-1, 1, 1, 1) * ideals).sum(0, keepdim=True)
                lab_c, lab_p = rgb_to_lab(torch.cat([ideals, mean])), rgb_to_lab(ideals)
                n_c, n_p = lab_c.shape[0], lab_p.shape[0]
                pair = delta_e_2000(lab_c.repeat_interleave(n_p, dim=0), lab_p.repeat(n_c, 1, 1, 1))
                risk = (pair.mean(dim=(-2, -1)).view(n_c, n_p) * w).sum(1)
                best = int(risk.argmin())
                if best == len(tastes):
                    full = sum(wi * t.ideal(x) for wi, t in zip(w.tolist(), tastes))
                else:
                    full = tastes[best].ideal(x)
                out.append(full.clamp(0, 1))
        return torch.cat(out)


class LooksBayesSeenModel(LooksBayesModel):
    """:class:`LooksBayesModel` with ``seen_only``: the ``bayes-seen`` reference point."""

    name = "bayes-seen"

    def __init__(self, ground_truth: Any = None, **options: Any):
        super().__init__(ground_truth, seen_only=True, **options)


def _apply_luts_batched(x: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N,3,h,w)`` through one LUT each, ``luts`` ``(N,3,S,S,S)``: trilinear, what
    :func:`prefstyle.imaging.lut.apply_lut` computes, in one ``grid_sample`` call (fast for many
    LUTs on few pixels)."""
    n, _, h, w = x.shape
    grid = (x.clamp(0, 1) * 2 - 1).permute(0, 2, 3, 1).reshape(n, 1, h, w, 3)  # (r, g, b) -> (W, H, D)
    out = F.grid_sample(luts.to(x.dtype), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(n, 3, h, w)


def _ideals_of(tastes: Sequence[Any], full: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
    """Single-look tastes' ideals of ``small`` ``(1,3,t,t)`` (a thumbnail of ``full`` ``(1,3,H,W)``,
    whose statistics set the exposure): ``(P,3,t,t)``, all in one retouch and one LUT call."""
    from prefstyle.data.looks_crowd import _thumb, correct

    n = len(tastes)
    vec = torch.stack([t.correction.to_vector() for t in tastes]).to(small.dtype)
    ev = torch.cat([t.exposure_offsets(full) for t in tastes])
    share = torch.tensor([t.brightness_gain if t.levels else 0.0 for t in tastes], dtype=small.dtype)
    stats = _thumb(full.clamp(0, 1)).expand(n, -1, -1, -1)
    x = correct(small.expand(n, -1, -1, -1), vec, ev, share, stats)
    luts = torch.stack([t.luts()[0] for t in tastes])
    s = torch.tensor([t.strengths[0] for t in tastes], dtype=small.dtype).view(-1, 1, 1, 1)
    return (x + s * (_apply_luts_batched(x, luts).clamp(0, 1) - x)).clamp(0, 1)
