"""LookTaste: a Bayesian taste over colour looks (film emulations, grades, slider edits) as LUTs.

A person's taste is a look ``L`` (a global colour transform, :mod:`prefstyle.models.look_space`)
and an adaptive-brightness gain ``g``: their ideal rendition of a photo ``x`` is
``L(expose(x, g · log2(0.18 / Ȳ(x))))``. Pairwise answers are evidence about which look:

* **Taste space.** ``K`` candidate tastes (particles) in a basis of LUT displacements learned from
  real looks and raw-editor slider edits: the library's looks at two strengths, blends of
  them, slider edits, and the looks of the renditions in the training data (each rendition a
  study shows is a look applied to its scene's neutral source, so each is fitted as a LUT), each
  with a gain of 0 or another from :data:`~prefstyle.models.look_space.GAINS`. A person's own
  answers add the looks of the renditions they saw (fitted the same way) at two strengths.
* **Choice.** Shown renditions ``a``, ``b`` of a scene with neutral source ``s``, the person picks
  ``a`` with probability ``ε/2 + (1 − ε) σ((d(b) − d(a)) / T)``, ``d`` the mean CIEDE2000 between a
  rendition and the ideal ``L(s)`` over 25 sample colours of a 24-px thumbnail.
* **Prior: what people share.** The prior weights of the shared particles are the population's
  taste, learned from the training people's answers by empirical Bayes (EM for the mixing
  weights, the nonparametric maximum-likelihood prior), mixed with a uniform floor ``α`` (tastes
  the training people did not have stay possible); a person's own rendition looks get prior
  mass ``β``. ``T``, ``ε``, ``α`` and ``β`` maximise the marginal likelihood of training and
  validation people's answers (:meth:`LookTasteModel.fit`); validation people hold look
  families that are not in the taste space, so ``α`` and ``β`` are chosen for people unlike
  the training ones.
* **Decision.** Not the posterior mean (it over- or under-shoots when the posterior is
  multimodal) but the Bayes action: among the heaviest particles, the posterior-mean look and
  blends of it with the most probable one, the candidate with the least posterior expected
  ΔE00 to the person's ideal over the photos they answered about.

The profile holds that look as one ``(3,S,S,S)`` LUT and its gain: rendering is one LUT per photo
(the exposure composed into it), at any resolution; ``export-lut`` writes it directly.

What it cannot represent: local edits, and looks far outside the span of the basis (it keeps
99.5 % of its examples' energy). Answers on scenes without a neutral source carry no evidence.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import torch

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.color import mean_delta_e_2000_cross, rgb_to_lab
from prefstyle.imaging.lut import apply_lut, identity_lut
from prefstyle.imaging.params import RetouchParams
from prefstyle.models.base import PersonalizationModel, Profile, Reference, register_model
from prefstyle.models.look_personalize_np import settings_config
from prefstyle.models.look_space import (
    exposed,
    node_major,
    sample_colours,
    sample_tables,
    tables_from_coefficients,
)
from prefstyle.models.slider_taste import _entropy, _remember, metered_ev

__all__ = ["LookTasteModel"]

#: strengths at which the looks of a person's own answered renditions enter their taste space
USER_STRENGTHS = (0.5, 1.0)
#: how many of the heaviest particles the decision weighs, and how many it considers as answers
DECISION_PARTICLES = 128
DECISION_CANDIDATES = 8
#: the photos the decision's expected loss is taken over (the first of those answered about)
DECISION_SCENES = 8
#: sample colours for fitting a rendition's look: 32-px thumbnail, every 2nd pixel (256 colours)
FIT_SIDE, FIT_STEP = 32, 2


class _Scene:
    """A scene's sample colours and the basis looked up at them, per exposure (cached per source)."""

    def __init__(self, source: torch.Tensor, basis: torch.Tensor, nodes: torch.Tensor, meter: str):
        self.colours = sample_colours(source)  # (3,h,w)
        self.ev = float(metered_ev(source, meter)[0])
        self.fit_colours = sample_colours(source, FIT_SIDE, FIT_STEP)  # (3,h2,w2)
        self._basis, self._nodes = basis, nodes
        self._at: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}

    def at_gain(self, g: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x (3,P), Bs (D,3P))``: the sample colours exposed for gain ``g`` and the basis at them."""
        g = round(float(g), 4)
        hit = self._at.get(g)
        if hit is None:
            x = exposed(self.colours.reshape(3, -1), g * self.ev)
            hit = (x, sample_tables(self._basis, x, self._nodes).reshape(self._basis.shape[0], -1))
            self._at[g] = hit
        return hit

    def ideals(self, coeffs: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """Ideal sample colours ``(K,3,h,w)`` sRGB [0,1] of tastes ``(K,D)`` with gains ``(K,)``."""
        h, w = self.colours.shape[-2:]
        uniq, inverse = torch.unique(gains, return_inverse=True)
        if len(uniq) == 1:
            x, bs = self.at_gain(float(uniq[0]))
            return torch.addmm(x.reshape(1, -1), coeffs, bs).reshape(-1, 3, h, w).clamp_(0, 1)
        out = torch.empty(len(coeffs), 3 * h * w)
        for i, g in enumerate(uniq.tolist()):
            sel = (inverse == i).nonzero().squeeze(1)
            x, bs = self.at_gain(g)
            out[sel] = torch.addmm(x.reshape(1, -1), coeffs[sel], bs)
        return out.reshape(-1, 3, h, w).clamp_(0, 1)


@register_model("looks")
class LookTasteModel(PersonalizationModel):
    """The taste as a posterior over colour looks (module docstring).

    Args:
        checkpoint: a file written by :meth:`save` (basis, particles, fitted prior and settings);
            without one, a taste space of slider edits only is built (:meth:`build`).
        temperature, lapse: the choice model's ``T`` (ΔE00 units) and ``ε``.
        floor: ``α``, the uniform share of the shared particles' prior.
        user_mass: ``β``, the prior mass of a person's own rendition looks.
        meter: how a photo's brightness is measured for adaptation (``"mean"`` or ``"log_mean"``).
        lut_size: nodes per axis of the per-photo rendering LUT.
    """

    name = "looks"
    #: the ``task`` keys of a training config (``configs/looks.yaml``): the look library and the
    #: settings of :func:`prefstyle.models.look_fit.fit_look_taste`
    OPTIONS = (
        "library",
        "n_sliders",
        "n_blends",
        "n_gaussian",
        "temperatures",
        "lapses",
        "floors",
        "user_masses",
        "em_iters",
        "n_refs",
        "max_users",
        "seed",
        "quality_filter",
        "max_rendition_looks",
    )

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        temperature: float = 1.0,
        lapse: float = 0.1,
        floor: float = 0.2,
        user_mass: float = 0.1,
        meter: str = "mean",
        lut_size: int = 33,
        space: dict[str, Any] | None = None,
    ):
        self.fit_info: dict[str, Any] = {}
        self.temperature, self.lapse, self.floor, self.user_mass = (
            float(temperature),
            float(lapse),
            float(floor),
            float(user_mass),
        )
        self.meter, self.lut_size = meter, int(lut_size)
        self.look_names: list[str] = []
        if checkpoint is not None:
            self._load(Path(checkpoint))
        else:
            if space is None:
                from prefstyle.models.look_fit import build_space

                space = build_space(library=None)
            self._set_space(space["basis"], space["coeffs"], space["gains"], None, space["names"], space["look_coeffs"])
        self._check_settings()
        self._scenes: OrderedDict[str, _Scene] = OrderedDict()
        self._ideal_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._dist_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._gap_cache: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._lut_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._slider_cache: OrderedDict[str, tuple[RetouchParams, float]] = OrderedDict()

    @classmethod
    def from_space(cls, space: dict[str, Any], **settings: Any) -> LookTasteModel:
        """A model over a taste space built by :func:`prefstyle.models.look_fit.build_space` (uniform prior)."""
        return cls(space=space, **settings)

    # -- state -----------------------------------------------------------------------------

    def _set_space(
        self,
        basis: torch.Tensor,
        coeffs: torch.Tensor,
        gains: torch.Tensor,
        log_prior: torch.Tensor | None,
        look_names: list[str],
        look_coeffs: torch.Tensor,
    ) -> None:
        self.basis = basis.float().contiguous()  # (D,3,S,S,S)
        self._nodes = node_major(self.basis)  # (S³,3D)
        self.coeffs = coeffs.float().contiguous()  # (K,D)
        self.gains = gains.float().contiguous()  # (K,)
        k = len(self.coeffs)
        self.pop_log_prior = torch.full((k,), -math.log(k)) if log_prior is None else log_prior.float()  # (K,)
        self.look_names = list(look_names)
        self.look_coeffs = look_coeffs.float().contiguous()  # (L,D): the library's looks, for describe()

    def _check_settings(self) -> None:
        if not (self.temperature > 0 and 0 <= self.lapse < 1 and 0 <= self.floor <= 1 and 0 <= self.user_mass < 1):
            raise PrefstyleError("looks: need temperature > 0, 0 <= lapse < 1, 0 <= floor <= 1, 0 <= user_mass < 1")
        if self.meter not in ("mean", "log_mean"):
            raise PrefstyleError(f"looks: meter must be 'mean' or 'log_mean', got {self.meter!r}")
        d = self.basis.shape[0]
        if (
            self.coeffs.ndim != 2
            or self.coeffs.shape[1] != d
            or self.gains.shape != (len(self.coeffs),)
            or self.pop_log_prior.shape != (len(self.coeffs),)
            or self.look_coeffs.shape[-1:] != (d,)
        ):
            raise PrefstyleError("looks: taste space tensors of inconsistent shapes")
        for t in (self.basis, self.coeffs, self.gains, self.pop_log_prior, self.look_coeffs):
            if not torch.isfinite(t).all():
                raise PrefstyleError("looks: taste space holds NaN or infinite values")

    def log_prior(self) -> torch.Tensor:
        """``(K,)`` log prior of the shared particles: the population's weights with a uniform floor,
        scaled to total mass ``1 − β``."""
        k = len(self.coeffs)
        pop = self.pop_log_prior.exp()
        pop = pop / pop.sum()
        mix = (1 - self.floor) * pop + self.floor / k
        return mix.clamp_min(1e-30).log() + math.log(1 - self.user_mass)

    def config(self) -> dict[str, Any]:
        return settings_config(self.name, self)

    def save(self, path: str | Path) -> Path:
        """Write the taste space and fitted settings as a profile-format checkpoint (``.json`` + tensors)."""
        return Profile(
            model=self.name,
            model_config=self.config(),
            data={**self.config(), "look_names": self.look_names},
            tensors={
                "basis": self.basis.half(),
                "coeffs": self.coeffs.half(),
                "gains": self.gains,
                "log_prior": self.pop_log_prior,
                "look_coeffs": self.look_coeffs.half(),
            },
        ).save(path)

    def _load(self, path: Path) -> None:
        prof = Profile.load(path)
        if prof.model != self.name or "basis" not in prof.tensors:
            raise PrefstyleError(f"not a {self.name} checkpoint (made by model '{prof.model}')", path=path)
        d, t = prof.data, prof.tensors
        try:
            self.temperature, self.lapse = float(d["temperature"]), float(d["lapse"])
            self.floor, self.user_mass = float(d["floor"]), float(d["user_mass"])
            self.meter, self.lut_size = str(d.get("meter", "mean")), int(d.get("lut_size", 33))
            self.fit_info = dict(d.get("fit", {}))
            self._set_space(
                t["basis"], t["coeffs"], t["gains"], t["log_prior"], list(d.get("look_names", [])), t["look_coeffs"]
            )
        except (KeyError, TypeError, ValueError) as e:
            raise PrefstyleError(f"bad looks checkpoint: {e}", path=path) from None
        try:
            self._check_settings()
        except PrefstyleError as e:
            raise PrefstyleError(str(e), path=path) from None

    # -- likelihood ------------------------------------------------------------------------

    def clear_cache(self) -> None:
        """Forget cached scenes and ideals (timings of a first user on new scenes)."""
        self._scenes.clear()
        self._ideal_cache.clear()
        self._dist_cache.clear()
        self._gap_cache.clear()

    def scene(self, source: torch.Tensor) -> tuple[str, _Scene]:
        """The (cached) :class:`_Scene` of a neutral source ``(3,H,W)``, with its cache key."""
        thumb = sample_colours(source)
        key = hashlib.sha1(thumb.numpy().tobytes() + f"{self.meter}".encode()).hexdigest()
        sc = self._scenes.get(key)
        if sc is None:
            sc = _Scene(source, self.basis, self._nodes, self.meter)
            _remember(self._scenes, key, sc, 2048)
        else:
            self._scenes.move_to_end(key)
        return key, sc

    def shared_ideals_lab(self, key: str, sc: _Scene) -> torch.Tensor:
        """Every shared particle's ideal of a scene as CIELAB sample planes ``(3,K,h·w)`` (cached)."""
        hit = self._ideal_cache.get(key)
        if hit is None:
            hit = rgb_to_lab(sc.ideals(self.coeffs, self.gains)).flatten(2).transpose(0, 1).contiguous()
            _remember(self._ideal_cache, key, hit, 512)
        else:
            self._ideal_cache.move_to_end(key)
        return hit

    def _shared_distance(self, key: str, sc: _Scene, lab: torch.Tensor) -> torch.Tensor:
        """``(K,)`` distance of every shared particle's ideal of a scene to one rendition's CIELAB
        samples ``(3,h,w)`` (cached: a scene's renditions recur across people and answers)."""
        dkey = hashlib.sha1(key.encode() + lab.numpy().tobytes()).hexdigest()
        hit = self._dist_cache.get(dkey)
        if hit is None:
            hit = self._distance(self.shared_ideals_lab(key, sc), lab[None])[0]
            _remember(self._dist_cache, dkey, hit, 4096)
        else:
            self._dist_cache.move_to_end(dkey)
        return hit

    @staticmethod
    def _distance(ideal_lab: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        """``(M,K)`` mean CIEDE2000 between ``(K,3,h,w)`` ideals (or their ``(3,K,h·w)`` planes) and
        ``(M,3,h,w)`` samples."""
        return mean_delta_e_2000_cross(ideal_lab, lab)

    def fit_rendition(self, sc: _Scene, rendition: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
        """Coefficients ``(D,)`` of the look that best turns the scene's source into ``rendition``
        (least squares on 256 sample colours, a small ridge)."""
        x = sc.fit_colours.reshape(3, -1)
        y = sample_colours(rendition, FIT_SIDE, FIT_STEP).reshape(3, -1)
        a = sample_tables(self.basis, x, self._nodes).reshape(self.basis.shape[0], -1).double()  # (D,3P)
        r = (y - x).reshape(-1).double()
        lhs = a @ a.T + ridge * torch.eye(a.shape[0], dtype=a.dtype) * a.shape[1]
        return torch.linalg.solve(lhs, a @ r).float()

    def user_particles(self, refs: Sequence[Reference]) -> tuple[torch.Tensor, torch.Tensor]:
        """The looks of the renditions a person answered about: coefficients ``(Ku,D)`` and gains ``(Ku,)``
        (each rendition's fitted look at :data:`USER_STRENGTHS`, with gain 0 and 1)."""
        cs = []
        for r in refs:
            if r.source is None:
                continue
            _, sc = self.scene(r.source)
            cs += [self.fit_rendition(sc, r.preferred), self.fit_rendition(sc, r.other)]
        if not cs:
            d = self.basis.shape[0]
            return torch.zeros(0, d), torch.zeros(0)
        c = torch.stack(cs)
        coeffs = torch.cat([s * c for s in USER_STRENGTHS for _ in (0.0, 1.0)])
        gains = torch.cat([torch.full((len(c),), g) for _ in USER_STRENGTHS for g in (0.0, 1.0)])
        return coeffs, gains

    def evidence(self, refs: Sequence[Reference]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(gaps (K+Ku, N') float64, user coeffs (Ku,D), user gains (Ku,), log prior (K+Ku,))``:
        ``d(other) − d(preferred)`` per particle for the references with a source."""
        used = [r for r in refs if r.source is not None]
        uc, ug = (
            self.user_particles(used) if self.user_mass > 0 else (torch.zeros(0, self.basis.shape[0]), torch.zeros(0))
        )
        k, ku = len(self.coeffs), len(uc)
        lp = self.log_prior()
        if ku:
            lp = torch.cat([lp, torch.full((ku,), math.log(self.user_mass / ku) if self.user_mass > 0 else -1e30)])
        else:
            lp = lp - math.log(1 - self.user_mass)
        cols = []
        with torch.no_grad():
            for r in used:
                ck = None if r.key is None else (r.key, self.meter)
                gap = None if ck is None else self._gap_cache.get(ck)
                if gap is None or ku:
                    key, sc = self.scene(r.source)
                    seen = rgb_to_lab(torch.stack([sample_colours(r.preferred), sample_colours(r.other)]))
                    d = torch.stack([self._shared_distance(key, sc, lab) for lab in seen])  # (2,K)
                    gap = d[1] - d[0]
                    if ck is not None:
                        _remember(self._gap_cache, ck, gap, 2048)
                    if ku:
                        du = self._distance(rgb_to_lab(sc.ideals(uc, ug)), seen)  # (2,Ku)
                        gap = torch.cat([gap, du[1] - du[0]])
                else:
                    self._gap_cache.move_to_end(ck)
                cols.append(gap.double())
        gaps = torch.stack(cols, 1) if cols else torch.zeros(k + ku, 0, dtype=torch.float64)
        return gaps, uc, ug, lp

    def log_likelihood(
        self, gaps: torch.Tensor, temperature: float | None = None, lapse: float | None = None
    ) -> torch.Tensor:
        """``(K,)`` log-likelihood of the answers given their gaps ``(K,N)``."""
        t = self.temperature if temperature is None else float(temperature)
        e = self.lapse if lapse is None else float(lapse)
        return torch.log(e / 2 + (1 - e) * torch.sigmoid(gaps / t)).sum(1)

    def posterior(self, refs: Sequence[Reference]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """``(weights (K+Ku,), coeffs (K+Ku,D), gains (K+Ku,), answers used)`` after ``refs``."""
        gaps, uc, ug, lp = self.evidence(refs)
        w = torch.softmax(self.log_likelihood(gaps) + lp.double(), 0).float()
        return w, torch.cat([self.coeffs, uc]), torch.cat([self.gains, ug]), int(gaps.shape[1])

    # -- decision ----------------------------------------------------------------------------

    def decide(
        self, w: torch.Tensor, coeffs: torch.Tensor, gains: torch.Tensor, scenes: Sequence[_Scene]
    ) -> tuple[torch.Tensor, float, float]:
        """The Bayes action: ``(coefficients (D,), gain, expected ΔE00)`` with the least posterior
        expected ΔE00 to the ideal over ``scenes`` among the heaviest particles, the posterior-mean
        look and its blends with the most probable particle."""
        top = torch.argsort(w, descending=True)[:DECISION_PARTICLES]
        wt = w[top] / w[top].sum()
        ct, gt = coeffs[top], gains[top]
        mean_c, mean_g = (wt[:, None] * ct).sum(0), float((wt * gt).sum())
        cands_c = [mean_c] + [mean_c + a * (ct[0] - mean_c) for a in (0.25, 0.5, 0.75)] + list(ct[:DECISION_CANDIDATES])
        cands_g = (
            [mean_g]
            + [mean_g + a * (float(gt[0]) - mean_g) for a in (0.25, 0.5, 0.75)]
            + gt[:DECISION_CANDIDATES].tolist()
        )
        cc, cg = torch.stack(cands_c), torch.tensor(cands_g)
        if not scenes:
            return cc[0], float(cg[0]), float("nan")
        loss = torch.zeros(len(cc))
        for sc in scenes:
            ideal = rgb_to_lab(sc.ideals(ct, gt))  # (T,3,h,w)
            cand = rgb_to_lab(sc.ideals(cc, cg))  # (C,3,h,w)
            loss += (self._distance(ideal, cand) * wt[None]).sum(1)  # (C,)
        best = int(torch.argmin(loss))
        return cc[best], float(cg[best]), float(loss[best] / len(scenes))

    # -- personalize / render --------------------------------------------------------------

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        with torch.no_grad():
            w, coeffs, gains, n_used = self.posterior(refs)
            scenes = [self.scene(r.source)[1] for r in refs if r.source is not None][:DECISION_SCENES]
            c, g, expected = self.decide(w, coeffs, gains, scenes)
            lut = tables_from_coefficients(c[None], self.basis)[0]
        near = self._nearest_looks(c)
        return Profile(
            model=self.name,
            user=user,
            model_config=self.config(),
            tensors={"lut": lut.contiguous()},
            data={
                "n_refs": len(refs),
                "n_used": n_used,
                "gain": round(g, 4),
                "meter": self.meter,
                "expected_de00": None if math.isnan(expected) else round(expected, 3),
                "effective_particles": round(float(1.0 / (w.double() ** 2).sum()), 2),
                "nearest_looks": near,
            },
        )

    def _nearest_looks(self, c: torch.Tensor, n: int = 3) -> list[list[Any]]:
        """The library looks closest to coefficients ``c`` and how much of each (least-squares strength)."""
        if not len(self.look_coeffs):
            return []
        lc = self.look_coeffs
        strength = (lc @ c) / (lc * lc).sum(1).clamp_min(1e-9)
        resid = (c[None] - strength[:, None].clamp(0, 1.5) * lc).norm(dim=1)
        order = torch.argsort(resid)[:n]
        return [[self.look_names[i], round(float(strength[i]), 2)] for i in order.tolist()]

    def check_profile(self, profile: Profile) -> None:
        super().check_profile(profile)
        lut = profile.tensors.get("lut")
        if (
            lut is None
            or lut.ndim != 4
            or lut.shape[0] != 3
            or not (lut.shape[1] == lut.shape[2] == lut.shape[3])
            or lut.shape[1] < 2
        ):
            raise PrefstyleError("looks profile has no (3,S,S,S) LUT (damaged or another model)")
        if not torch.isfinite(lut).all() or float(lut.abs().max()) > 4:
            raise PrefstyleError("looks profile LUT holds NaN, infinite or out-of-range values")
        g = profile.data.get("gain", 0.0)
        if not isinstance(g, (int, float)) or not 0 <= float(g) <= 1:
            raise PrefstyleError(f"looks profile gain must be in [0, 1], got {g!r}")
        if profile.data.get("meter", "mean") not in ("mean", "log_mean"):
            raise PrefstyleError("looks profile meter must be 'mean' or 'log_mean'")

    def lut(self, profile: Profile, ev: float = 0.0) -> torch.Tensor:
        """The profile's look for a photo whose metered EV is ``ev``: ``(3,S,S,S)``, exposure composed in."""
        self.check_profile(profile)
        look = profile.tensors["lut"].float()
        shift = round(float(profile.data.get("gain", 0.0)) * float(ev), 3)
        key = hashlib.sha1(look.numpy().tobytes() + f"{shift}/{self.lut_size}".encode()).hexdigest()
        hit = self._lut_cache.get(key)
        if hit is not None:
            self._lut_cache.move_to_end(key)
            return hit
        s = self.lut_size
        grid = exposed(identity_lut(s).reshape(3, -1), shift)
        out = sample_tables(look[None], grid)[0].reshape(3, s, s, s).clamp(0, 1).contiguous()
        return _remember(self._lut_cache, key, out, 64)

    def luts(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        """``(B,3,S,S,S)``: each photo's LUT (they differ only in the exposure the gain gives)."""
        x = img[None] if img.ndim == 3 else img
        meter = str(profile.data.get("meter", self.meter))
        return torch.stack([self.lut(profile, float(e)) for e in metered_ev(x, meter)])

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        x = img[None] if img.ndim == 3 else img
        with torch.no_grad():
            luts = self.luts(x, profile)
            out = torch.cat([apply_lut(x[i : i + 1], luts[i]) for i in range(len(x))]).clamp(0, 1)
        return out[0] if img.ndim == 3 else out

    # -- the closest slider edit (editor presets) -------------------------------------------

    def slider_edit(self, profile: Profile) -> tuple[RetouchParams, float]:
        """The raw-editor slider edit closest to the profile's look
        (:func:`prefstyle.models.slider_fit_np.closest_slider_edit`)
        and its adaptive-brightness gain. A look holds more than ten global sliders can (split
        toning, hue shifts, channel curves): :meth:`preset_notes` says how far the preset is."""
        params, _ = self._closest_sliders(profile)
        g = float(profile.data.get("gain", 0.0))
        return params, min(max(g, 0.0), 1.0)

    def preset_notes(self, profile: Profile) -> list[str]:
        from prefstyle.models.slider_fit_np import look_preset_notes

        _, err = self._closest_sliders(profile)
        return look_preset_notes(err)

    def _closest_sliders(self, profile: Profile) -> tuple[RetouchParams, float]:
        self.check_profile(profile)
        look = profile.tensors["lut"].float()
        key = hashlib.sha1(look.numpy().tobytes()).hexdigest()
        hit = self._slider_cache.get(key)
        if hit is None:
            from prefstyle.models.slider_fit_np import closest_slider_edit

            hit = closest_slider_edit(look.numpy())
            _remember(self._slider_cache, key, hit, 16)
        return hit

    # -- words and questions ---------------------------------------------------------------

    def describe(self, profile: Profile) -> str:
        words = []
        near = profile.data.get("nearest_looks") or []
        if near:
            words.append("closest looks: " + ", ".join(f"{n} ({100 * min(1.0, max(0.0, s)):.0f} %)" for n, s in near))
        g = float(profile.data.get("gain", 0.0))
        words.append(f"brightness follows the photo {100 * g:.0f} %")
        return "your look: " + "; ".join(words)

    def export_notes(self, profile: Profile) -> list[str]:
        from prefstyle.models.lut_export_np import look_export_notes

        return look_export_notes(float(profile.data.get("gain", 0.0)))

    def question_values(
        self, refs: list[Reference], scenes: list[tuple[torch.Tensor, list[torch.Tensor]]]
    ) -> list[torch.Tensor]:
        """Expected information gain (nats) of each pair of renditions of each candidate scene
        (``I(answer; taste) = H(p̄) − Σ_k w_k H(p_k)`` under the posterior after ``refs``)."""
        with torch.no_grad():
            w, coeffs, gains, _ = self.posterior(refs)
            top = torch.argsort(w, descending=True)[:1024]
            wt = (w[top] / w[top].sum()).double()
            k = len(self.coeffs)
            out = []
            for source, renditions in scenes:
                key, sc = self.scene(source)
                lab = rgb_to_lab(torch.stack([sample_colours(r) for r in renditions]))
                # shared particles from the per-scene cache (a study's scenes recur across people)
                shared = torch.stack([self._shared_distance(key, sc, x) for x in lab])  # (R,K)
                if len(coeffs) > k:
                    own = self._distance(rgb_to_lab(sc.ideals(coeffs[k:], gains[k:])), lab)  # (R,Ku)
                    shared = torch.cat([shared, own], 1)
                d = shared[:, top].double()  # (R,T)
                p = self.lapse / 2 + (1 - self.lapse) * torch.sigmoid((d[None] - d[:, None]) / self.temperature)
                gain = _entropy((p * wt).sum(-1)) - (_entropy(p) * wt).sum(-1)
                out.append(gain.fill_diagonal_(0.0).float())
        return out
