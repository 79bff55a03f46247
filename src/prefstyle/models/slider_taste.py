"""SliderTaste: a Bayesian ideal-point model of a user's taste over the sliders of a raw editor.

The idea is the one of preference-based photo-enhancement tools (Koyama et al.'s sequential
line search over slider space, SIGGRAPH 2017): a person's taste is a point ``θ`` in the space
of global edits a raw editor offers (white balance, exposure, contrast, tone, vibrance and
saturation: the ten basic sliders of :class:`~prefstyle.imaging.params.RetouchParams`), and
each pairwise answer is evidence about where it lies.

Model, for a user with taste ``θ``:

* **Ideal point.** The user's ideal rendition of a photo ``x`` is ``f_θ(x)``
  (:func:`~prefstyle.imaging.pipeline.apply_retouch_vector`), where the exposure slider may
  follow the photo: ``θ`` holds an adaptive-brightness gain ``g ∈ [0, 1]`` and the exposure used
  on ``x`` is ``exposure + g · log2(0.18 / Ȳ(x))`` (``Ȳ``: the photo's metered linear
  luminance, 0.18 the photographic mid-grey). ``g = 0`` is a fixed edit; ``g = 1`` brings every
  photo to the same brightness, like a camera's auto-exposure. Many people want dark scenes
  lifted and bright ones held back; a fixed slider cannot say that.
* **Choice.** Shown two renditions ``a``, ``b`` of a scene whose neutral source is ``s``, the
  user picks ``a`` with probability ``ε/2 + (1 − ε) σ((d(b) − d(a)) / T)``, where ``d(·)`` is
  the mean CIEDE2000 between the rendition and ``f_θ(s)`` on a ``thumb``-pixel thumbnail
  (Bradley-Terry on distances to the ideal point, with a lapse rate ``ε`` for careless
  answers).
* **Prior.** Every slider independently Gaussian around neutral with standard deviation
  ``prior_scale · PRIOR_WIDTHS`` (clipped to its range); the gain ``g`` uniform on
  ``[0, adapt]`` (``adapt = 0``: fixed edits only); the curve, HSL and split-toning controls
  stay neutral.

Personalization is exact Bayesian inference by importance sampling, no training: ``particles``
seeded prior draws (the first is the neutral edit) are weighted by the likelihood of the N
answers. The rendering is the posterior mean of the ideal, ``Σ_k w_k f_θk(x)``; for a given
photo every ``f_θ`` acts on each pixel's colour alone, so the mixture is one 3D LUT
(``lut_size``³) per photo (it changes with the photo's brightness only), applied at any
resolution (also the 8-bit fast path of ``prefstyle enhance``; ``export-lut`` fits one LUT to
the bundled photos). The profile holds the particles that carry ``mass`` of the posterior
(their slider vectors, gains and weights) and, readable by a person, the posterior mean of each
slider and of the gain.

The numbers the model does not know a priori, ``prior_scale``, ``T``, ``adapt`` and ``meter``,
are fitted by empirical Bayes (:meth:`SliderTasteModel.fit`): the values on a small grid that
maximise the marginal likelihood of the training users' answers. Nothing else is learned, so it
cannot overfit scenes or photographs, and it works on any photo the user brings.

The same posterior says which question to ask next (:meth:`SliderTasteModel.question_values`):
the expected information gain of each pair of renditions, used by the study app's ``sampling:
active``.

What it cannot represent: edits outside the ten sliders (colour looks made with curves, HSL or
LUTs), local edits, and tastes that change with the scene other than through its brightness.
Answers on scenes without a neutral source carry no evidence here and are skipped.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.color import luminance, mean_delta_e_2000_cross, rgb_to_lab, srgb_to_linear
from prefstyle.imaging.lut import apply_lut, identity_lut
from prefstyle.imaging.params import NEUTRAL, SCALAR_FIELDS, VECTOR_DIM, VECTOR_FIELDS, RetouchParams
from prefstyle.imaging.pipeline import apply_retouch_vector
from prefstyle.imaging.resize import resize_long_side
from prefstyle.models.base import PersonalizationModel, Profile, Reference, register_model
from prefstyle.models.loading import register_fit_without_gradients
from prefstyle.models.slider_personalize_np import PRIOR_WIDTHS  # one table, shared with the numpy mirror

__all__ = ["MID_GREY", "PRIOR_WIDTHS", "SLIDERS", "SliderTasteModel", "metered_ev"]

SLIDERS: tuple[str, ...] = tuple(PRIOR_WIDTHS)
_INDEX = {name: i for i, (name, *_rest) in enumerate(SCALAR_FIELDS)}
_RANGE = {name: (lo, hi) for name, lo, hi, _ in SCALAR_FIELDS}
#: linear luminance a fully adaptive taste (gain 1) brings every photo to: photographic mid-grey
MID_GREY = 0.18
#: the largest brightness correction (EV) adaptation applies, either way
MAX_ADAPT_EV = 3.0
_METER_SIDE = 64


def metered_ev(img: torch.Tensor, meter: str = "mean") -> torch.Tensor:
    """``(B,)`` EV that brings a photo to mid-grey: ``log2(MID_GREY / Ȳ)`` clamped to ±3.

    ``img``: ``(B,3,H,W)`` or ``(3,H,W)`` sRGB in [0, 1]. ``Ȳ`` is the linear luminance, area-averaged to
    64 px (from every few pixels of a large photo), averaged (``meter="mean"``, average metering) or log-averaged
    (``"log_mean"``, the geometric mean, less swayed by highlights).
    """
    x = img[None] if img.ndim == 3 else img
    step = max(1, max(x.shape[-2:]) // (4 * _METER_SIDE))  # a strided look first: 12 MP in milliseconds
    y = luminance(srgb_to_linear(x[..., ::step, ::step].float().clamp(0, 1)))
    y = resize_long_side(y, _METER_SIDE, mode="area")
    y = y.clamp_min(1e-4).flatten(1)
    if meter == "mean":
        ybar = y.mean(1)
    elif meter == "log_mean":
        ybar = y.log().mean(1).exp()
    else:
        raise ValueError(f"meter must be 'mean' or 'log_mean', got {meter!r}")
    return torch.log2(MID_GREY / ybar).clamp(-MAX_ADAPT_EV, MAX_ADAPT_EV)


@register_model("sliders")
class SliderTasteModel(PersonalizationModel):
    """The taste as a posterior over raw-editor sliders (module docstring).

    Args:
        particles: prior samples (the first is the neutral edit).
        prior_scale: multiplies :data:`PRIOR_WIDTHS`.
        temperature: Bradley-Terry temperature ``T`` in the units of ``distance``.
        lapse: probability ``ε`` that an answer is a coin flip.
        adapt: upper end of the adaptive-brightness gain's uniform prior (0: fixed edits only).
        meter: how a photo's brightness is measured for adaptation (:func:`metered_ev`).
        thumb: side of the square thumbnails the likelihood compares (area-averaged).
        distance: ``"de2000"`` (CIEDE2000, the default) or ``"de76"`` (Euclidean CIELAB, faster).
        lut_size: nodes per axis of the rendering LUT.
        mass, max_kept: the profile keeps the heaviest particles holding ``mass`` of the
            posterior, at most ``max_kept``.
        seed: of the prior draws.
        checkpoint: a JSON written by :meth:`save` (every setting above, with the fitted
            ``prior_scale`` and ``temperature``); its values replace the arguments.

    The defaults are the shipped model's (``assets/models/sliders/sliders.json``).
    """

    name = "sliders"

    def __init__(
        self,
        particles: int = 1024,
        prior_scale: float = 1.0,
        temperature: float = 1.0,
        lapse: float = 0.1,
        thumb: int = 6,
        lut_size: int = 17,
        mass: float = 0.999,
        max_kept: int = 64,
        seed: int = 0,
        distance: str = "de2000",
        adapt: float = 1.0,
        meter: str = "mean",
        checkpoint: str | Path | None = None,
    ):
        self.fit_info: dict[str, Any] = {}
        if checkpoint is None:
            self._settle(
                particles,
                prior_scale,
                temperature,
                lapse,
                thumb,
                lut_size,
                mass,
                max_kept,
                seed,
                distance,
                adapt,
                meter,
            )
        else:
            prof = Profile.load(checkpoint)
            if prof.model != self.name or "prior_scale" not in prof.data:
                raise PrefstyleError(f"not a {self.name} checkpoint (made by model '{prof.model}')", path=checkpoint)
            d = prof.data
            try:
                self._settle(
                    int(d.get("particles", particles)),
                    float(d["prior_scale"]),
                    float(d["temperature"]),
                    float(d.get("lapse", lapse)),
                    int(d.get("thumb", thumb)),
                    lut_size,
                    mass,
                    int(d.get("max_kept", max_kept)),
                    int(d.get("seed", seed)),
                    str(d.get("distance", distance)),
                    float(d.get("adapt", 0.0)),
                    str(d.get("meter", meter)),
                )  # files before adaptation: fixed edits
            except (KeyError, TypeError, ValueError) as e:
                raise PrefstyleError(f"bad sliders settings: {e}", path=checkpoint) from None
            self.fit_info = dict(d.get("fit", {}))
        self._vecs: torch.Tensor | None = None
        self._gains: torch.Tensor | None = None
        self._scene_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._gap_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._rendition_cache: OrderedDict[str, torch.Tensor] = OrderedDict()  # question_values
        self._ref_keys: OrderedDict[tuple[Hashable, str], str] = OrderedDict()  # (Reference.key, settings) -> gap key
        self._lut_cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def _settle(
        self,
        particles: int,
        prior_scale: float,
        temperature: float,
        lapse: float,
        thumb: int,
        lut_size: int,
        mass: float,
        max_kept: int,
        seed: int,
        distance: str,
        adapt: float,
        meter: str,
    ) -> None:
        """Check and store the settings (``ValueError`` naming the first one out of range)."""
        if particles < 1 or prior_scale <= 0 or temperature <= 0 or not 0 <= lapse < 1 or not 0 <= adapt <= 1:
            raise ValueError(
                "need particles >= 1, prior_scale > 0, temperature > 0, 0 <= lapse < 1 and 0 <= adapt <= 1"
            )
        if meter not in ("mean", "log_mean"):
            raise ValueError(f"meter must be 'mean' or 'log_mean', got {meter!r}")
        if distance not in ("de76", "de2000"):
            raise ValueError(f"distance must be 'de76' or 'de2000', got {distance!r}")
        self.adapt, self.meter, self.distance = float(adapt), meter, distance
        self.k, self.prior_scale, self.temperature, self.lapse = (
            int(particles),
            float(prior_scale),
            float(temperature),
            float(lapse),
        )
        self.thumb, self.lut_size, self.mass, self.max_kept, self.seed = (
            int(thumb),
            int(lut_size),
            float(mass),
            int(max_kept),
            int(seed),
        )

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "particles": self.k,
            "prior_scale": self.prior_scale,
            "temperature": self.temperature,
            "lapse": self.lapse,
            "thumb": self.thumb,
            "distance": self.distance,
            "adapt": self.adapt,
            "meter": self.meter,
            "lut_size": self.lut_size,
            "mass": self.mass,
            "max_kept": self.max_kept,
            "seed": self.seed,
            "fit": self.fit_info,
        }

    # -- prior -----------------------------------------------------------------------------

    @property
    def prior(self) -> torch.Tensor:
        """``(particles, VECTOR_DIM)`` slider vectors drawn from the prior (row 0: neutral)."""
        if self._vecs is None:
            self._vecs = prior_vectors(self.k, self.prior_scale, self.seed)
        return self._vecs

    @property
    def prior_gains(self) -> torch.Tensor:
        """``(particles,)`` adaptive-brightness gains drawn from ``U(0, adapt)`` (entry 0: 0)."""
        if self._gains is None:
            self._gains = prior_gains(self.k, self.adapt, self.seed)
        return self._gains

    def clear_cache(self) -> None:
        """Forget the cached ideals of scenes and answers seen so far (timings of a first user on new scenes)."""
        self._scene_cache.clear()
        self._gap_cache.clear()
        self._rendition_cache.clear()
        self._ref_keys.clear()

    # -- likelihood ------------------------------------------------------------------------

    def _thumb(self, img: torch.Tensor) -> torch.Tensor:
        """``(1,3,t,t)`` area-averaged square thumbnail of a ``(3,H,W)`` image in [0, 1]."""
        x = img[None] if img.ndim == 3 else img
        return F.interpolate(x.float().clamp(0, 1), size=(self.thumb, self.thumb), mode="area")

    def _scene(self, source: torch.Tensor) -> tuple[str, torch.Tensor, float]:
        """``(cache key, (1,3,t,t) thumbnail, metered EV)`` of a scene's neutral source; the key covers
        the thumbnail, the EV and every setting the ideals and distances depend on."""
        thumb, ev = self._thumb(source), float(metered_ev(source, self.meter)[0])
        key = hashlib.sha1(thumb.numpy().tobytes() + f"{ev:.4f}/{self._settings_tag()}".encode()).hexdigest()
        return key, thumb, ev

    def _settings_tag(self) -> str:
        """Every setting the particles' ideals and distances depend on."""
        return f"{self.adapt}/{self.meter}/{self.prior_scale}/{self.k}/{self.seed}/{self.distance}"

    def _ideals_lab(self, scenes: Sequence[tuple[str, torch.Tensor, float]]) -> list[torch.Tensor]:
        """Every particle's ideal of each scene (:meth:`_scene`) as CIELAB thumbnails ``(K,3,t,t)``; the
        scenes not seen before are rendered in one batch, and all are cached (scenes recur across users)."""
        missing = list({key: (thumb, ev) for key, thumb, ev in scenes if key not in self._scene_cache}.items())
        if missing:
            vecs = torch.cat([adapted_vectors(self.prior, self.prior_gains, ev) for _, (_, ev) in missing])
            imgs = torch.cat([thumb.expand(self.k, -1, -1, -1) for _, (thumb, _) in missing])
            with torch.no_grad():
                lab = rgb_to_lab(apply_retouch_vector(imgs, vecs, exact=True).clamp(0, 1))
            for (key, _), part in zip(missing, lab.split(self.k)):
                _remember(self._scene_cache, key, part, 1024)
        out = []
        for key, _, _ in scenes:
            self._scene_cache.move_to_end(key)
            out.append(self._scene_cache[key])
        return out

    def distance_gaps(self, refs: Sequence[Reference]) -> torch.Tensor:
        """``(K, N')`` float64: ``d(other) − d(preferred)`` per particle for the references with a source
        (each answer's column cached: a study recomputing a participant's posterior after every
        answer computes only the new one)."""
        used = [r for r in refs if r.source is not None]
        if not used:
            return torch.zeros(self.k, 0, dtype=torch.float64)
        tag = self._settings_tag()
        keys: list[str] = []
        todo: dict[str, tuple[tuple[str, torch.Tensor, float], torch.Tensor]] = {}  # gap key -> (scene, thumbs)
        for r in used:
            known = None if r.key is None else self._ref_keys.get((r.key, tag))
            if known is not None and known in self._gap_cache:  # the caller's key skips the thumbnails
                keys.append(known)
                continue
            scene = self._scene(r.source)  # used: every source is set
            thumbs = torch.cat([self._thumb(r.preferred), self._thumb(r.other)])
            key = hashlib.sha1(scene[0].encode() + thumbs.numpy().tobytes()).hexdigest()
            if r.key is not None:
                _remember(self._ref_keys, (r.key, tag), key, 8192)
            keys.append(key)
            if key not in self._gap_cache:
                todo[key] = (scene, thumbs)
        if todo:
            with torch.no_grad():
                for (key, (_, thumbs)), ideal in zip(todo.items(), self._ideals_lab([sc for sc, _ in todo.values()])):
                    d = self._distance(ideal, rgb_to_lab(thumbs))
                    _remember(self._gap_cache, key, (d[1] - d[0]).double(), 4096)
        return torch.stack([self._gap_cache[k] for k in keys], dim=1)

    def _rendition_distances(self, scene_key: str, ideal: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        """``(R, K)`` distances of every particle's ideal of a scene to its renditions' CIELAB thumbnails
        ``(R,3,t,t)`` (cached per rendition: a study asks about the same renditions again and again)."""
        rows = []
        for x in lab:
            key = hashlib.sha1(scene_key.encode() + x.numpy().tobytes()).hexdigest()
            hit = self._rendition_cache.get(key)
            if hit is None:
                hit = _remember(self._rendition_cache, key, self._distance(ideal, x[None])[0], 1024)
            else:
                self._rendition_cache.move_to_end(key)
            rows.append(hit)
        return torch.stack(rows)

    def _distance(self, ideal: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        """``(M, K)`` mean colour difference between ``(K,3,t,t)`` and ``(M,3,t,t)`` CIELAB thumbnails."""
        if self.distance == "de2000":
            return mean_delta_e_2000_cross(ideal, lab)
        shape = (len(lab), *ideal.shape)
        a, b = ideal[None].expand(shape), lab[:, None].expand(shape)  # views, no copies
        return (a - b).square().sum(2).sqrt().flatten(2).mean(2)  # ΔE76

    def log_likelihood(self, gaps: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """``(K,)`` log-likelihood of the answers given their :meth:`distance_gaps`."""
        t = self.temperature if temperature is None else float(temperature)
        p = self.lapse / 2 + (1 - self.lapse) * torch.sigmoid(gaps / t)
        return torch.log(p).sum(dim=1)

    # -- which pair to ask next -------------------------------------------------------------

    def question_values(
        self, refs: Sequence[Reference], scenes: Sequence[tuple[torch.Tensor, Sequence[torch.Tensor]]]
    ) -> list[torch.Tensor]:
        """Expected information gain (nats) of asking about each pair of renditions of each scene.

        ``refs``: the answers so far; ``scenes``: ``(source, renditions)`` per candidate scene, the
        neutral ``(3,H,W)`` and R ``(3,H,W)`` images of it. Returns one ``(R, R)`` matrix per scene,
        symmetric, zero on the diagonal: ``I(answer; θ) = H(p̄) − Σ_k w_k H(p_k)``, where ``p_k`` is
        particle ``k``'s probability of picking the first of the pair and ``w`` the posterior after
        ``refs``. The largest entry is the question whose answer is expected to say most about the
        taste (a few ms per scene once its ideals are cached).
        """
        with torch.no_grad():
            w = torch.softmax(self.log_likelihood(self.distance_gaps(refs)), dim=0).double()  # (K,)
            keyed = [self._scene(src) for src, _ in scenes]
            ideals = self._ideals_lab(keyed)
            out = []
            for (key, _, _), ideal, (_, renditions) in zip(keyed, ideals, scenes):
                lab = rgb_to_lab(torch.cat([self._thumb(r) for r in renditions]))
                d = self._rendition_distances(key, ideal, lab).double()  # (R, K)
                p = self.lapse / 2 + (1 - self.lapse) * torch.sigmoid((d[None] - d[:, None]) / self.temperature)
                gain = _entropy((p * w).sum(-1)) - (_entropy(p) * w).sum(-1)  # p[i, j, k]: θ_k picks i over j
                out.append(gain.fill_diagonal_(0.0).float())
        return out

    # -- personalize / render --------------------------------------------------------------

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        with torch.no_grad():
            gaps = self.distance_gaps(refs)
            ll = self.log_likelihood(gaps)
        w = torch.softmax(ll, dim=0)
        order = torch.argsort(w, descending=True)
        cum = torch.cumsum(w[order], 0)
        n_keep = int(min(self.max_kept, int((cum < self.mass).sum()) + 1))
        keep = order[:n_keep]
        wk = (w[keep] / w[keep].sum()).float()
        vecs, gains = self.prior[keep], self.prior_gains[keep]
        mean = (wk[:, None] * vecs).sum(0)
        sliders = {name: round(float(mean[_INDEX[name]]), 4) for name in SLIDERS}
        sliders["adaptive_brightness"] = round(float((wk * gains).sum()), 4)
        return Profile(
            model=self.name,
            user=user,
            model_config=self.config(),
            tensors={"vectors": vecs.contiguous(), "gains": gains.contiguous(), "weights": wk.contiguous()},
            data={
                "n_refs": len(refs),
                "n_used": int(gaps.shape[1]),
                "sliders": sliders,
                "effective_particles": round(float(1.0 / (w**2).sum()), 2),
                "kept": n_keep,
            },
        )

    def describe(self, profile: Profile) -> str:
        """The taste in a raw editor's words, the five largest moves first, e.g. ``your sliders:
        exposure +0.31 EV, temperature +0.22, ..., brightness follows the photo 60 %``."""
        from prefstyle.models.slider_personalize_np import describe

        self.check_profile(profile)
        return describe(profile.data)

    def export_notes(self, profile: Profile) -> list[str]:
        """A note when the taste sets brightness per photo, which one global LUT cannot do."""
        self.check_profile(profile)
        from prefstyle.models.lut_export_np import sliders_export_notes

        return sliders_export_notes(float((profile.data.get("sliders") or {}).get("adaptive_brightness") or 0.0))

    def check_profile(self, profile: Profile) -> None:
        """Refuse a profile of another model, or one whose particles or sliders are out of range.

        Particles: ``vectors`` ``(K', VECTOR_DIM)`` within every control's range (scalars as in
        :data:`~prefstyle.imaging.params.SCALAR_FIELDS`, curve in [0, 1], HSL in [-1, 1]),
        ``weights`` ``(K',)`` >= 0 summing to about 1, ``gains`` ``(K',)`` in [0, 1]; the read-out
        ``data["sliders"]`` finite numbers in their sliders' ranges (adaptive brightness in [0, 1]).
        """
        super().check_profile(profile)
        tol = 1e-4
        v, w, g = (profile.tensors.get(k) for k in ("vectors", "weights", "gains"))
        if (
            v is None
            or w is None
            or v.ndim != 2
            or v.shape[1] != VECTOR_DIM
            or w.shape != (v.shape[0],)
            or v.shape[0] == 0
        ):
            raise PrefstyleError("sliders profile has no particles of the right shape (damaged or another model)")
        if g is not None and g.shape != w.shape:
            raise PrefstyleError("sliders profile has gains of the wrong shape (damaged or another model)")
        parts = [("vectors", v), ("weights", w)] + ([("gains", g)] if g is not None else [])
        for name, t in parts:
            if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
                raise PrefstyleError(f"sliders profile: '{name}' must be finite numbers")
        v, w = v.double(), w.double()
        lo = torch.tensor(
            [f[1] for f in SCALAR_FIELDS] + [0.0] * 5 + [-1.0] * (VECTOR_DIM - len(SCALAR_FIELDS) - 5),
            dtype=torch.float64,
        )
        hi = torch.tensor(
            [f[2] for f in SCALAR_FIELDS] + [1.0] * (VECTOR_DIM - len(SCALAR_FIELDS)), dtype=torch.float64
        )
        bad = ((v < lo - tol) | (v > hi + tol)).any(0)
        if bool(bad.any()):
            names = [n for n, *_ in SCALAR_FIELDS] + [f"{n}[{i}]" for n, k in VECTOR_FIELDS for i in range(k)]
            j = int(bad.nonzero()[0])
            raise PrefstyleError(
                f"sliders profile: '{names[j]}' out of its range {float(lo[j]):g}..{float(hi[j]):g} in its particles"
            )
        if bool((w < 0).any()) or abs(float(w.sum()) - 1.0) > 1e-3:
            raise PrefstyleError("sliders profile: particle weights must be >= 0 and sum to 1")
        if g is not None and bool(((g < -tol) | (g > 1 + tol)).any()):
            raise PrefstyleError("sliders profile: adaptive-brightness gains must lie in 0..1")
        sliders = profile.data.get("sliders")
        if sliders is None:
            return
        if not isinstance(sliders, dict):
            raise PrefstyleError('sliders profile: "sliders" must be a JSON object')
        for name, value in sliders.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise PrefstyleError(f"sliders profile: slider '{name}' must be a finite number, got {value!r}")
            lo_hi = (0.0, 1.0) if name == "adaptive_brightness" else _RANGE.get(name)
            if lo_hi is not None and not lo_hi[0] - tol <= value <= lo_hi[1] + tol:
                raise PrefstyleError(
                    f"sliders profile: slider '{name}' = {value:g} is out of its range {lo_hi[0]:g}..{lo_hi[1]:g}"
                )

    def _profile_parts(self, profile: Profile) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(vectors (K', VECTOR_DIM), gains (K',), weights (K',))`` of a profile (gains 0 in older profiles)."""
        self.check_profile(profile)
        v, w = profile.tensors.get("vectors"), profile.tensors.get("weights")
        if v is None or w is None or v.ndim != 2 or v.shape[1] != VECTOR_DIM or w.shape != (v.shape[0],):
            raise PrefstyleError("sliders profile has no particles of the right shape (damaged or another model)")
        g = profile.tensors.get("gains")
        if g is None:
            g = torch.zeros(len(w))
        elif g.shape != w.shape:
            raise PrefstyleError("sliders profile has gains of the wrong shape (damaged or another model)")
        return v.float(), g.float(), w.float()

    def lut(self, profile: Profile, ev: float = 0.0) -> torch.Tensor:
        """The profile's posterior-mean edit as one ``(3, S, S, S)`` LUT (cached), for a photo whose
        :func:`metered_ev` is ``ev`` (0: a photo already at mid-grey)."""
        v, g, w = self._profile_parts(profile)
        ev = round(float(ev), 3) if bool((g > 0).any()) else 0.0
        key = hashlib.sha1(
            v.numpy().tobytes() + g.numpy().tobytes() + w.numpy().tobytes() + f"{ev}".encode()
        ).hexdigest()
        hit = self._lut_cache.get(key)
        if hit is not None:
            self._lut_cache.move_to_end(key)
            return hit
        s = self.lut_size
        with torch.no_grad():
            out = _edits_on_grid(adapted_vectors(v, g, ev), s).clamp(0, 1)
        lut = (w[:, None, None, None] * out).sum(0).reshape(3, s, s, s).contiguous()
        return _remember(self._lut_cache, key, lut, 64)

    def luts(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        """``(B, 3, S, S, S)``: each photo's LUT of ``img`` ``(B,3,H,W)`` (they differ in brightness only)."""
        x = img[None] if img.ndim == 3 else img
        return torch.stack([self.lut(profile, float(e)) for e in metered_ev(x, self.meter)])

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        x = img[None] if img.ndim == 3 else img
        with torch.no_grad():
            luts = self.luts(x, profile)
            out = torch.cat([apply_lut(x[i : i + 1], luts[i]) for i in range(len(x))]).clamp(0, 1)
        return out[0] if img.ndim == 3 else out

    def slider_edit(self, profile: Profile) -> tuple[RetouchParams, float]:
        """The posterior mean of the sliders (the edit of a photo at mid-grey) and of the
        adaptive-brightness gain: what ``personalize`` prints as "your sliders", unrounded. The
        rendering is the posterior mean of the particles' renderings, which is close to, but not
        exactly, the rendering of these mean sliders (docs/PRESETS.md measures the gap)."""
        v, g, w = self._profile_parts(profile)
        mean = (w[:, None] * v).sum(0) / w.sum()
        gain = float((w * g).sum() / w.sum())
        kw = {}
        for name in SLIDERS:
            lo, hi = _RANGE[name]
            kw[name] = min(max(float(mean[_INDEX[name]]), lo), hi)
        return NEUTRAL.replace(**kw), min(max(gain, 0.0), 1.0)

    # -- empirical Bayes -------------------------------------------------------------------

    def fit(
        self,
        dataset: Any,
        users: Iterable[str] | None = None,
        n_refs: int = 16,
        max_users: int = 100,
        scales: Sequence[float] = (0.5, 0.75, 1.0, 1.5, 2.0),
        temperatures: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
        adapts: Sequence[float] | None = None,
        meters: Sequence[str] | None = None,
        progress: bool = False,
    ) -> SliderTasteModel:
        """Set ``prior_scale``, ``temperature``, ``adapt`` and ``meter`` to the grid point that
        maximises the marginal likelihood ``Σ_u log mean_k p(answers_u | θ_k)`` of up to
        ``max_users`` training users' first ``n_refs`` main answers (default users: the dataset's
        ``train`` split; default ``adapts``/``meters``: the model's own). ``fit_info["log_marginal"]``
        keys are ``"scale/temperature"``, with ``"/adapt/meter"`` appended when those are searched
        too. Returns self."""
        from prefstyle.models.pps_common import references_from_judgments

        if users is None:
            users = dataset.splits.get("train") or dataset.users()
        users = sorted(users)[:max_users]
        refs = [references_from_judgments(dataset, dataset.references(u, n_refs), {}, 128) for u in users]
        adapts = tuple(float(a) for a in (adapts if adapts is not None else (self.adapt,)))
        meters = tuple(meters if meters is not None else (self.meter,))
        long_keys = len(adapts) > 1 or len(meters) > 1
        # with adapt = 0 the meter changes nothing: search it once
        combos = [(s, a, m) for s in scales for a in adapts for m in (meters if a > 0 else meters[:1])]
        it: Any = combos
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(combos, desc="sliders: empirical Bayes", unit="prior")
        table: dict[str, float] = {}
        best: tuple[float, float, float, float, str] | None = None
        for s, a, m in it:
            self.prior_scale, self.adapt, self.meter, self._vecs, self._gains = float(s), a, m, None, None
            self.clear_cache()
            gaps = [self.distance_gaps(r) for r in refs]
            for t in temperatures:
                ml = sum(float(torch.logsumexp(self.log_likelihood(g, t), 0)) - math.log(self.k) for g in gaps)
                table[f"{s:g}/{t:g}" + (f"/{a:g}/{m}" if long_keys else "")] = round(ml, 3)
                if best is None or ml > best[0]:
                    best = (ml, float(s), float(t), a, m)
        assert best is not None, "empty grid"
        _, self.prior_scale, self.temperature, self.adapt, self.meter = best
        self._vecs, self._gains = None, None
        self.clear_cache()
        self.fit_info = {"users": len(users), "n_refs": n_refs, "log_marginal": table, "dataset": str(dataset.root)}
        return self

    def save(self, path: str | Path) -> Path:
        """Write the fitted hyperparameters as a small profile-format checkpoint (``.json``)."""
        return Profile(
            model=self.name,
            model_config=self.config(),
            data={
                "particles": self.k,
                "prior_scale": self.prior_scale,
                "temperature": self.temperature,
                "lapse": self.lapse,
                "thumb": self.thumb,
                "distance": self.distance,
                "seed": self.seed,
                "adapt": self.adapt,
                "meter": self.meter,
                "max_kept": self.max_kept,
                "fit": self.fit_info,
            },
        ).save(path)


_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Binary entropy in nats, elementwise (0 at p = 0 or 1)."""
    q = p.clamp(1e-12, 1 - 1e-12)
    return -(q * q.log() + (1 - q) * (1 - q).log())


def _edits_on_grid(vecs: torch.Tensor, size: int) -> torch.Tensor:
    """``(K, 3, S, S²)``: each edit ``vecs`` ``(K, VECTOR_DIM)`` applied to the identity LUT's nodes
    (layout of :func:`~prefstyle.imaging.lut.identity_lut`, as an ``S x S²`` image), exactly as
    ``apply_retouch_vector(grid, vecs, exact=True)`` evaluates it, at a fraction of the cost: the
    per-channel steps (white balance .. tone curve) map each channel on its own, so they are
    evaluated on the ``S`` node values of each channel and spread over the grid; the colour
    steps then run on every node. (The LUT of each photo's EV is built per photo: this is most
    of the cost of ``prefstyle enhance`` besides decoding, filtering and encoding.)
    """
    from prefstyle.imaging.pipeline import N_PER_CHANNEL_STEPS, _active_steps, unpack_vector

    k, n = vecs.shape[0], size
    fields = unpack_vector(vecs.float(), clamp=True)
    ramp = identity_lut(n)[0, 0, 0]  # the node values k / (S - 1)
    t = ramp.expand(k, 3, 1, n).contiguous()
    for fn in _active_steps(fields, 0, N_PER_CHANNEL_STEPS):
        t = fn(t, fields)
    t = t.reshape(k, 3, n)
    grid = torch.empty((k, 3, n, n, n), dtype=t.dtype)
    grid[:, 0] = t[:, 0, None, None, :]  # red varies along the last axis
    grid[:, 1] = t[:, 1, None, :, None]
    grid[:, 2] = t[:, 2, :, None, None]
    x = grid.reshape(k, 3, n, n * n)
    for fn in _active_steps(fields, N_PER_CHANNEL_STEPS):
        x = fn(x, fields)
    return x


def _remember(cache: OrderedDict[_K, _V], key: _K, value: _V, limit: int) -> _V:
    """Put ``value`` in the LRU ``cache`` (dropping the oldest entries beyond ``limit``) and return it."""
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)
    return value


def prior_vectors(k: int, scale: float, seed: int = 0) -> torch.Tensor:
    """``(k, VECTOR_DIM)`` slider vectors: row 0 neutral, the rest independent clipped Gaussians
    around neutral with standard deviations ``scale · PRIOR_WIDTHS`` (other controls neutral)."""
    rng = np.random.default_rng(seed)
    vecs = NEUTRAL.to_vector()[None].repeat(k, 1)
    for name in SLIDERS:
        lo, hi = _RANGE[name]
        vals = np.clip(rng.normal(0.0, scale * PRIOR_WIDTHS[name], size=k), lo, hi)
        vals[0] = 0.0
        vecs[:, _INDEX[name]] = torch.from_numpy(vals).float()
    return vecs


def prior_gains(k: int, adapt: float, seed: int = 0) -> torch.Tensor:
    """``(k,)`` adaptive-brightness gains, uniform on ``[0, adapt]``, entry 0 zero (its own random
    stream: the slider vectors of :func:`prior_vectors` do not change with ``adapt``)."""
    g = np.random.default_rng([seed, 1]).uniform(0.0, adapt, size=k)
    g[0] = 0.0
    return torch.from_numpy(g).float()


def adapted_vectors(vecs: torch.Tensor, gains: torch.Tensor, ev: float) -> torch.Tensor:
    """``vecs`` ``(K, VECTOR_DIM)`` with exposure moved by ``gains · ev`` ``(K,)`` (kept in the slider's range)."""
    if ev == 0.0 or not bool((gains != 0).any()):
        return vecs
    out = vecs.clone()
    i, (lo, hi) = _INDEX["exposure"], _RANGE["exposure"]
    out[:, i] = (out[:, i] + gains.to(out.dtype) * ev).clamp(lo, hi)
    return out


def fit_from_config(cfg: dict[str, Any], progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """``prefstyle train configs/sliders.yaml``: the empirical-Bayes fit a config describes.

    ``task``: the model's settings (``particles``, ``thumb``, ``distance``, ``lapse``, ``seed``, ``lut_size``)
    and the fit's (``scales``, ``temperatures``, ``n_refs``, ``max_users``); ``data.path`` (a pairs
    dataset) and ``data.split`` (default ``train``); ``out`` (folder). Writes ``out/sliders.json``
    (load it with ``--model out/sliders.json``) and returns its path and the fit's summary.
    """
    import time

    from prefstyle.data.pairs import PairsDataset

    task = {k: v for k, v in dict(cfg.get("task") or {}).items() if k not in ("name", "module")}
    data = dict(cfg.get("data") or {})
    if not data.get("path"):
        raise PrefstyleError("sliders: data.path (a pairs dataset folder) is required")
    fit_keys = {"scales", "temperatures", "adapts", "meters", "n_refs", "max_users"}
    fit_kw = {k: task.pop(k) for k in list(task) if k in fit_keys}
    model = SliderTasteModel(**task)
    ds = PairsDataset.load(data["path"], check_images=False)
    split = data.get("split", "train")
    users = ds.splits.get(split) or ds.users()
    t0 = time.perf_counter()
    model.fit(ds, users, progress=progress, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in fit_kw.items()})
    seconds = time.perf_counter() - t0
    out = Path(cfg.get("out") or "runs/sliders")
    out.mkdir(parents=True, exist_ok=True)
    model.fit_info["seconds"] = round(seconds, 1)
    path = model.save(out / "sliders.json")
    return path, {
        "prior_scale": model.prior_scale,
        "temperature": model.temperature,
        "adapt": model.adapt,
        "meter": model.meter,
        "seconds": seconds,
        "users": model.fit_info["users"],
    }


register_fit_without_gradients(SliderTasteModel.name, fit_from_config)
