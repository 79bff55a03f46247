"""Parametric looks over :class:`~prefstyle.imaging.params.RetouchParams`.

* :data:`PRESETS` - a named library of Lightroom-style presets (each with a short description).
* :class:`ParamsStyle` - any ``RetouchParams`` as a style (kind ``"params"``; the named presets
  are :class:`PresetStyle`, kind ``"preset"``). Their ``strength`` scales the parameters
  towards neutral (``interpolate(NEUTRAL, p, strength)``), not the output.
* :func:`sample_params` - a sampler of plausible, photo-realistic looks built from a few
  correlated "intents" (warmth, exposure, contrast, fade, colourfulness, tonal recovery,
  curve shape, split toning, HSL accents), kept within :data:`PLAUSIBLE_BOUNDS` and a total
  "push" budget (:data:`PUSH_BUDGET`) so no look pushes every slider at once.
* :func:`interpolate`, :func:`perturb`, :func:`mix`, :func:`single_parameter_edits` - the
  algebra the simulated crowd uses for users' tastes and controlled single-parameter edits
  (PPS source type D).

Hue fields (``split_shadow_hue``, ``split_highlight_hue``) are angles: they are interpolated
and averaged on the circle, and a hue whose saturation is zero does not pull the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.params import (
    BASIC_SLIDERS,
    CURVE_X,
    HUE_BANDS,
    NEUTRAL,
    SCALAR_FIELDS,
    VECTOR_DIM,
    VECTOR_FIELDS,
    RetouchParams,
)
from prefstyle.styles.base import Style, register_kind

# ---------------------------------------------------------------------------------------------
# vector layout helpers

_SCALAR_INDEX = {name: i for i, (name, *_rest) in enumerate(SCALAR_FIELDS)}
_HUE_PAIRS = (("split_shadow_hue", "split_shadow_sat"), ("split_highlight_hue", "split_highlight_sat"))


def _vector_slices() -> dict[str, slice]:
    out = {}
    i = len(SCALAR_FIELDS)
    for name, n in VECTOR_FIELDS:
        out[name] = slice(i, i + n)
        i += n
    return out


_VECTOR_SLICES = _vector_slices()


def _vec(p: RetouchParams) -> np.ndarray:
    """Like ``p.to_vector()`` but float64 (no float32 round-off)."""
    vals = [getattr(p, n) for n, *_ in SCALAR_FIELDS]
    for n, _ in VECTOR_FIELDS:
        vals.extend(getattr(p, n))
    return np.asarray(vals, dtype=np.float64)


def _from_vec(v: np.ndarray) -> RetouchParams:
    """Clamped RetouchParams from a vector; hues wrapped into [0, 360), and set to 0 (the
    canonical value) where their tint strength is 0, so that e.g. strength 0 gives NEUTRAL."""
    v = np.asarray(v, dtype=np.float64).copy()
    for hue, sat in _HUE_PAIRS:
        h = float(v[_SCALAR_INDEX[hue]]) % 360.0
        v[_SCALAR_INDEX[hue]] = 0.0 if (v[_SCALAR_INDEX[sat]] <= 1e-9 or h >= 360.0) else h
    return RetouchParams.from_vector(v.tolist(), clamp=True)


def _circ_mean(hues: Sequence[float], weights: Sequence[float]) -> float:
    x = sum(w * math.cos(math.radians(h)) for h, w in zip(hues, weights))
    y = sum(w * math.sin(math.radians(h)) for h, w in zip(hues, weights))
    if abs(x) < 1e-12 and abs(y) < 1e-12:
        return float(hues[0]) if hues else 0.0
    return math.degrees(math.atan2(y, x)) % 360.0


# ---------------------------------------------------------------------------------------------
# algebra


def interpolate(p: RetouchParams, q: RetouchParams, t: float) -> RetouchParams:
    """``p`` at ``t=0``, ``q`` at ``t=1``, linear in between (extrapolates outside [0,1], clamped
    into the valid ranges). Split-toning hues take the short way round the circle; a hue whose
    strength is zero takes the other side's hue."""
    a, b = _vec(p), _vec(q)
    v = (1.0 - t) * a + t * b
    for hue, sat in _HUE_PAIRS:
        ih, is_ = _SCALAR_INDEX[hue], _SCALAR_INDEX[sat]
        h1, s1, h2, s2 = a[ih], a[is_], b[ih], b[is_]
        if s1 <= 1e-9:
            v[ih] = h2
        elif s2 <= 1e-9:
            v[ih] = h1
        else:
            d = ((h2 - h1 + 180.0) % 360.0) - 180.0
            v[ih] = h1 + t * d
    return _from_vec(v)


def mix(params_list: Sequence[RetouchParams], weights: Sequence[float] | None = None) -> RetouchParams:
    """Weighted average of several looks (weights >= 0, normalised; equal when omitted).
    Hues are averaged on the circle, weighted by weight x tint strength."""
    if not params_list:
        raise ValueError("mix() needs at least one RetouchParams")
    w = np.ones(len(params_list)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(params_list),) or np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise ValueError(f"mix() needs one non-negative weight per look with a positive sum, got {weights!r}")
    w = w / w.sum()
    vecs = np.stack([_vec(p) for p in params_list])
    v = (w[:, None] * vecs).sum(axis=0)
    for hue, sat in _HUE_PAIRS:
        ih, is_ = _SCALAR_INDEX[hue], _SCALAR_INDEX[sat]
        ww = w * vecs[:, is_]
        v[ih] = _circ_mean(vecs[:, ih].tolist(), ww.tolist()) if ww.sum() > 1e-12 else 0.0
    return _from_vec(v)


def _noise_scales() -> np.ndarray:
    """Per-vector-entry noise scale for :func:`perturb`: the plausible half-range of each field."""
    s = np.zeros(VECTOR_DIM)
    for name, i in _SCALAR_INDEX.items():
        lo, hi = PLAUSIBLE_BOUNDS.get(name, (0.0, 0.0))
        s[i] = (hi - lo) / 2.0
    for hue, _ in _HUE_PAIRS:
        s[_SCALAR_INDEX[hue]] = 60.0
    s[_VECTOR_SLICES["curve"]] = CURVE_MAX_DEVIATION
    for name in ("hsl_hue", "hsl_saturation", "hsl_luminance"):
        s[_VECTOR_SLICES[name]] = PLAUSIBLE_BOUNDS["hsl"][1]
    s[_VECTOR_SLICES["curve"].start] = PLAUSIBLE_BOUNDS["curve_black"][1] / 2
    s[_VECTOR_SLICES["curve"].stop - 1] = (1 - PLAUSIBLE_BOUNDS["curve_white"][0]) / 2
    return s


def perturb(p: RetouchParams, rng: int | np.random.Generator | None = None, scale: float = 0.1) -> RetouchParams:
    """``p`` plus Gaussian noise: each field moves by ``scale`` x its plausible half-range
    (hues by ``scale`` x 60 degrees), clamped into the valid ranges (curve kept monotone)."""
    g = _rng(rng)
    v = _vec(p) + g.normal(0.0, 1.0, VECTOR_DIM) * _noise_scales() * float(scale)
    for _, sat in _HUE_PAIRS:
        v[_SCALAR_INDEX[sat]] = max(v[_SCALAR_INDEX[sat]], 0.0)
    return _from_vec(v)


_ALIASES = {"brightness": "exposure", "temp": "temperature", "warmth": "temperature"}


def _set_field(p: RetouchParams, field: str, value: Any) -> RetouchParams:
    name = _ALIASES.get(field, field)
    if name in _SCALAR_INDEX:
        return p.replace(**{name: float(value)})
    if name == "curve" or name in ("hsl_hue", "hsl_saturation", "hsl_luminance"):
        vals = tuple(float(x) for x in value)
        return p.replace(**{name: vals})
    # hsl_saturation.orange  /  hsl_saturation[1]  /  curve[2]
    base, sep, rest = name.replace("[", ".").rstrip("]").partition(".")
    if sep and base in ("curve", "hsl_hue", "hsl_saturation", "hsl_luminance"):
        if rest.isdigit():
            idx = int(rest)
        elif rest in HUE_BANDS and base != "curve":
            idx = HUE_BANDS.index(rest)
        else:
            raise PrefstyleError(f"bad element {rest!r} of {base} (a number, or a hue band: {', '.join(HUE_BANDS)})")
        vals = list(getattr(p, base))
        if not 0 <= idx < len(vals):
            raise PrefstyleError(f"{base} has {len(vals)} elements; index {idx} is out of range")
        vals[idx] = float(value)
        return p.replace(**{base: tuple(vals)})
    known = [n for n, *_ in SCALAR_FIELDS] + ["curve", "hsl_hue", "hsl_saturation", "hsl_luminance", *_ALIASES]
    raise PrefstyleError(
        f"unknown RetouchParams field {field!r}; fields: {', '.join(known)} (or e.g. hsl_saturation.orange)"
    )


def single_parameter_edits(base: RetouchParams, field: str, values: Iterable[Any]) -> list[RetouchParams]:
    """``base`` with one field set to each of ``values`` in turn (controlled edits, PPS type D).

    ``field`` is a RetouchParams field (``"saturation"``, ``"exposure"``...; ``"brightness"`` is an
    alias of exposure), a whole vector field (values are sequences), or one element of one:
    ``"hsl_saturation.orange"``, ``"hsl_hue[3]"``, ``"curve[2]"``. Raises ``ValueError`` for a value
    outside the field's range.
    """
    return [_set_field(base, field, v) for v in values]


# ---------------------------------------------------------------------------------------------
# plausibility

#: symmetric / one-sided bounds the sampler's looks stay within (at strength <= 1)
PLAUSIBLE_BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (-0.8, 0.8),
    "tint": (-0.4, 0.4),
    "exposure": (-0.7, 0.7),
    "contrast": (-0.6, 0.6),
    "highlights": (-0.6, 0.6),
    "shadows": (-0.6, 0.6),
    "whites": (-0.4, 0.4),
    "blacks": (-0.4, 0.4),
    "vibrance": (-0.5, 0.5),
    "saturation": (-0.5, 0.5),
    "split_shadow_hue": (0.0, 360.0),
    "split_highlight_hue": (0.0, 360.0),
    "split_shadow_sat": (0.0, 0.5),
    "split_highlight_sat": (0.0, 0.5),
    "split_balance": (-0.6, 0.6),
    "hsl": (-0.35, 0.35),
    "curve_black": (0.0, 0.15),  # output at input 0 (fade)
    "curve_white": (0.85, 1.0),  # output at input 1
}
#: max |curve[i] - x_i| at the interior control points (0.25, 0.5, 0.75)
CURVE_MAX_DEVIATION = 0.12
#: the sliders whose normalised pushes (|value| / bound) are budgeted together
PUSH_FIELDS: tuple[str, ...] = BASIC_SLIDERS
#: sum over PUSH_FIELDS of |value| / bound may not exceed this (3 = three sliders at their bound)
PUSH_BUDGET = 3.0


def push_score(p: RetouchParams) -> float:
    """How hard a look pushes the main sliders: sum of |value| / plausible bound."""
    return float(sum(abs(getattr(p, f)) / PLAUSIBLE_BOUNDS[f][1] for f in PUSH_FIELDS))


def plausibility_violations(p: RetouchParams, tol: float = 1e-6) -> list[str]:
    """Why ``p`` is not a plausible, photo-realistic look (empty list when it is)."""
    bad = []
    for name, (lo, hi) in PLAUSIBLE_BOUNDS.items():
        if name in _SCALAR_INDEX:
            v = getattr(p, name)
            if v < lo - tol or v > hi + tol:
                bad.append(f"{name}={v:.3f} outside [{lo}, {hi}]")
    lo, hi = PLAUSIBLE_BOUNDS["hsl"]
    for fname in ("hsl_hue", "hsl_saturation", "hsl_luminance"):
        for band, v in zip(HUE_BANDS, getattr(p, fname)):
            if v < lo - tol or v > hi + tol:
                bad.append(f"{fname}.{band}={v:.3f} outside [{lo}, {hi}]")
    c = p.curve
    if c[0] > PLAUSIBLE_BOUNDS["curve_black"][1] + tol:
        bad.append(f"curve black point {c[0]:.3f} > {PLAUSIBLE_BOUNDS['curve_black'][1]}")
    if c[-1] < PLAUSIBLE_BOUNDS["curve_white"][0] - tol:
        bad.append(f"curve white point {c[-1]:.3f} < {PLAUSIBLE_BOUNDS['curve_white'][0]}")
    for x, y in zip(CURVE_X[1:-1], c[1:-1]):
        if abs(y - x) > CURVE_MAX_DEVIATION + tol:
            bad.append(f"curve at {x} is {y:.3f} (more than {CURVE_MAX_DEVIATION} from identity)")
    s = push_score(p)
    if s > PUSH_BUDGET + tol:
        bad.append(f"push score {s:.2f} > budget {PUSH_BUDGET} (too many sliders pushed at once)")
    return bad


def is_plausible(p: RetouchParams) -> bool:
    """True when ``p`` is within :data:`PLAUSIBLE_BOUNDS` and the push budget."""
    return not plausibility_violations(p)


def make_plausible(p: RetouchParams) -> RetouchParams:
    """Clip ``p`` into :data:`PLAUSIBLE_BOUNDS`, then scale all its deviations from neutral down
    (hues kept) until the push budget holds."""
    d = p.to_dict()
    for name in _SCALAR_INDEX:
        if name in PLAUSIBLE_BOUNDS and not name.endswith("_hue"):
            lo, hi = PLAUSIBLE_BOUNDS[name]
            d[name] = min(max(d[name], lo), hi)
    lo, hi = PLAUSIBLE_BOUNDS["hsl"]
    for fname in ("hsl_hue", "hsl_saturation", "hsl_luminance"):
        d[fname] = [min(max(v, lo), hi) for v in d[fname]]
    c = list(d["curve"])
    c[0] = min(c[0], PLAUSIBLE_BOUNDS["curve_black"][1])
    c[-1] = max(c[-1], PLAUSIBLE_BOUNDS["curve_white"][0])
    for i, x in enumerate(CURVE_X[1:-1], start=1):
        c[i] = min(max(c[i], x - CURVE_MAX_DEVIATION), x + CURVE_MAX_DEVIATION)
    for i in range(1, 5):
        c[i] = max(c[i], c[i - 1])
    d["curve"] = c
    q = RetouchParams.from_dict(d)
    s = push_score(q)
    if s > PUSH_BUDGET:
        q = interpolate(NEUTRAL, q, PUSH_BUDGET / s * (1 - 1e-9))
        # keep the hues of q (interpolate from NEUTRAL keeps them: neutral tint strength is 0)
    return q


# ---------------------------------------------------------------------------------------------
# the sampler


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


_SPLIT_SCHEMES = ("teal-orange", "warm-cool", "mono", "complementary")


def sample_params(rng: int | np.random.Generator | None = None, strength: float = 1.0) -> RetouchParams:
    """A random, plausible, photo-realistic look; deterministic for a seed / generator state.

    Each look combines a few correlated intents: warmth (temperature, with a little tint),
    exposure, contrast (with matching blacks/whites and a curve S), an optional fade (lifted
    black point, softer contrast, less saturation), colourfulness (saturation and vibrance
    together), an optional tonal "recovery" (highlights down, shadows up), an optional split
    toning scheme and a few HSL accents. ``strength`` (0..1.5) scales the whole look towards
    neutral; the result always satisfies :func:`is_plausible`.
    """
    if not 0.0 <= strength <= 1.5:
        raise ValueError(f"strength must be in [0, 1.5], got {strength}")
    g = _rng(rng)
    p: dict[str, Any] = {}

    warmth = float(g.normal(0.0, 0.3))
    p["temperature"] = warmth
    p["tint"] = 0.15 * warmth + float(g.normal(0.0, 0.1))
    p["exposure"] = float(g.normal(0.0, 0.2))

    contrast = float(g.normal(0.05, 0.22))
    p["contrast"] = contrast
    p["blacks"] = -0.25 * contrast + float(g.normal(0.0, 0.06))
    p["whites"] = 0.15 * contrast + float(g.normal(0.0, 0.06))
    curve = list(CURVE_X)
    if g.random() < 0.5:  # an S (or inverse S) in the curve too, following the contrast intent
        s_shape = float(np.clip(0.2 * contrast + g.normal(0.0, 0.02), -0.08, 0.08))
        curve[1] -= s_shape
        curve[3] += s_shape
    curve[2] += float(g.normal(0.0, 0.025))

    colour = float(g.normal(0.0, 0.17))
    p["saturation"] = colour
    p["vibrance"] = 0.6 * colour + float(g.normal(0.05, 0.08))

    if g.random() < 0.3:  # fade / matte
        fade = float(g.uniform(0.2, 1.0))
        curve[0] = 0.11 * fade
        if g.random() < 0.5:
            curve[4] = 1.0 - 0.06 * fade
        p["contrast"] -= 0.15 * fade
        p["saturation"] -= 0.12 * fade
    if g.random() < 0.35:  # tonal recovery (HDR-ish, restrained)
        r = float(g.uniform(0.1, 0.5))
        p["highlights"] = -r
        p["shadows"] = r * float(g.uniform(0.4, 1.0))
    else:
        p["highlights"] = float(g.normal(0.0, 0.08))
        p["shadows"] = float(g.normal(0.0, 0.08))

    if g.random() < 0.3:  # split toning
        scheme = _SPLIT_SCHEMES[int(g.integers(len(_SPLIT_SCHEMES)))]
        if scheme == "teal-orange":
            sh, hh = g.uniform(170, 215), g.uniform(20, 50)
        elif scheme == "warm-cool":
            sh, hh = g.uniform(220, 260), g.uniform(35, 65)
        elif scheme == "mono":
            sh = g.uniform(0, 360)
            hh = sh + g.normal(0, 10)
        else:
            sh = g.uniform(0, 360)
            hh = sh + 180 + g.normal(0, 20)
        p["split_shadow_hue"] = float(sh) % 360.0
        p["split_highlight_hue"] = float(hh) % 360.0
        p["split_shadow_sat"] = float(g.uniform(0.1, 0.45))
        p["split_highlight_sat"] = float(g.uniform(0.1, 0.45))
        p["split_balance"] = float(g.normal(0.0, 0.25))

    hsl = {k: [0.0] * 8 for k in ("hsl_hue", "hsl_saturation", "hsl_luminance")}
    if g.random() < 0.4:  # a few HSL accents
        for band in g.choice(8, size=int(g.integers(1, 4)), replace=False):
            hsl["hsl_hue"][band] = float(g.normal(0.0, 0.12))
            hsl["hsl_saturation"][band] = float(g.normal(0.0, 0.15))
            hsl["hsl_luminance"][band] = float(g.normal(0.0, 0.1))
    p.update(hsl)

    # clip into the valid (hard) ranges before building; then plausibility + strength
    for name, lo, hi, _ in SCALAR_FIELDS:
        if name in p and not name.endswith("_hue"):
            p[name] = min(max(p[name], lo), hi)
    for i in range(1, 5):
        curve[i] = max(curve[i], curve[i - 1])
    p["curve"] = [min(max(c, 0.0), 1.0) for c in curve]
    look = make_plausible(RetouchParams.from_dict(p))
    if strength != 1.0:
        look = make_plausible(interpolate(NEUTRAL, look, strength))
    return look


def sample_looks(n: int, seed: int = 0, strength: float = 1.0) -> list[RetouchParams]:
    """``n`` looks from one seeded generator (deterministic)."""
    g = np.random.default_rng(seed)
    return [sample_params(g, strength) for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# styles


@register_kind("params")
class ParamsStyle(Style):
    """A :class:`RetouchParams` look as a style (a global, per-pixel edit).

    ``strength`` interpolates the parameters from neutral (values above 1 extrapolate,
    clamped to the valid ranges).
    """

    kind = "params"
    is_global = True
    _native_strength = True

    def __init__(
        self,
        params: RetouchParams,
        name: str = "custom",
        description: str = "",
        strength: float = 1.0,
        seed: int | None = None,
    ):
        if not isinstance(params, RetouchParams):
            raise TypeError(f"ParamsStyle needs a RetouchParams, got {type(params).__name__}")
        super().__init__(name, description, strength)
        self.retouch = params
        self.seed = seed

    @property
    def effective(self) -> RetouchParams:
        """The parameters actually applied (after ``strength``)."""
        return self.retouch if self.strength == 1.0 else interpolate(NEUTRAL, self.retouch, self.strength)

    def _render(self, x: torch.Tensor) -> torch.Tensor:
        from prefstyle.imaging.pipeline import apply_retouch

        return apply_retouch(x, self.effective)

    def to_lut(self, size: int = 33, image: torch.Tensor | None = None) -> torch.Tensor:
        from prefstyle.imaging.pipeline import retouch_to_lut

        return retouch_to_lut(self.effective, size)

    def _own_params(self) -> dict[str, Any]:
        d: dict[str, Any] = {"retouch": self.retouch.to_dict()}
        if self.seed is not None:
            d["seed"] = self.seed
        return d

    @classmethod
    def _from_params(cls, d: dict[str, Any]) -> Style:
        if "retouch" not in d:
            raise PrefstyleError(f"{d.get('kind')} style parameters need 'retouch' (RetouchParams fields)")
        try:
            rp = RetouchParams.from_dict(d["retouch"])
        except (TypeError, ValueError) as e:
            raise PrefstyleError(f"bad retouch parameters in style {d.get('name')!r}: {e}") from e
        return cls(rp, name=d.get("name", "custom"), description=d.get("description", ""), seed=d.get("seed"))

    def replace(self, **changes: Any) -> ParamsStyle:
        """A copy with some RetouchParams fields changed (same forms as single_parameter_edits)."""
        p = self.retouch
        for k, v in changes.items():
            p = _set_field(p, k, v)
        return type(self)(p, name=self.name, description=self.description, strength=self.strength, seed=self.seed)


@register_kind("preset")
class PresetStyle(ParamsStyle):
    """A named preset from :data:`PRESETS` (same behaviour as :class:`ParamsStyle`)."""

    kind = "preset"


def sampled_style(seed: int, strength: float = 1.0) -> ParamsStyle:
    """``sample_params(seed)`` as a style named ``sample:<seed>``."""
    return ParamsStyle(
        sample_params(seed), name=f"sample:{seed}", description="sampled look", strength=strength, seed=seed
    )


# ---------------------------------------------------------------------------------------------
# the preset library


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    params: RetouchParams

    def style(self, strength: float = 1.0) -> PresetStyle:
        return PresetStyle(self.params, name=self.name, description=self.description, strength=strength)


def _bands(**kw: float) -> tuple[float, ...]:
    unknown = set(kw) - set(HUE_BANDS)
    if unknown:
        raise ValueError(f"unknown hue bands {unknown}")
    return tuple(float(kw.get(b, 0.0)) for b in HUE_BANDS)


def _p(**kw: Any) -> RetouchParams:
    for k in ("hsl_hue", "hsl_saturation", "hsl_luminance"):
        if isinstance(kw.get(k), dict):
            kw[k] = _bands(**kw[k])
    return RetouchParams(**kw)


_PRESET_LIST: list[Preset] = [
    Preset(
        "warm-film",
        "warm, softly faded film look with yellowish greens",
        _p(
            temperature=0.45,
            tint=0.05,
            contrast=-0.1,
            vibrance=0.1,
            saturation=-0.1,
            curve=(0.05, 0.26, 0.5, 0.74, 0.96),
            hsl_hue={"green": 0.2},
            hsl_saturation={"green": -0.15},
            split_shadow_hue=190.0,
            split_shadow_sat=0.15,
            split_highlight_hue=40.0,
            split_highlight_sat=0.3,
        ),
    ),
    Preset(
        "cool-matte",
        "cool, matte look with lifted blacks and muted colour",
        _p(
            temperature=-0.45,
            tint=0.03,
            contrast=-0.15,
            saturation=-0.2,
            curve=(0.09, 0.28, 0.5, 0.73, 0.95),
            split_shadow_hue=210.0,
            split_shadow_sat=0.3,
        ),
    ),
    Preset(
        "high-contrast-punch",
        "punchy high contrast: deep blacks, bright whites, vivid colour",
        _p(contrast=0.5, blacks=-0.2, whites=0.15, vibrance=0.3, saturation=0.1, curve=(0.0, 0.22, 0.5, 0.78, 1.0)),
    ),
    Preset(
        "pastel",
        "bright, soft, low-contrast pastel colours",
        _p(
            exposure=0.3,
            contrast=-0.35,
            highlights=-0.2,
            shadows=0.3,
            saturation=-0.25,
            vibrance=0.15,
            tint=0.05,
            curve=(0.06, 0.3, 0.55, 0.78, 0.97),
        ),
    ),
    Preset(
        "faded",
        "faded print: strongly lifted blacks, dimmed whites, washed colour",
        _p(contrast=-0.2, saturation=-0.3, curve=(0.12, 0.31, 0.5, 0.71, 0.92)),
    ),
    Preset(
        "teal-orange",
        "blockbuster teal shadows and orange highlights, skin kept warm",
        _p(
            contrast=0.2,
            split_shadow_hue=190.0,
            split_shadow_sat=0.6,
            split_highlight_hue=35.0,
            split_highlight_sat=0.5,
            hsl_hue={"aqua": 0.2, "blue": -0.25, "green": 0.3},
            hsl_saturation={"orange": 0.2, "blue": 0.1, "green": -0.3},
            split_balance=0.1,
        ),
    ),
    Preset(
        "bw-classic",
        "classic black and white with rich contrast",
        _p(saturation=-1.0, contrast=0.3, blacks=-0.1, whites=0.1, curve=(0.0, 0.23, 0.5, 0.77, 1.0)),
    ),
    Preset(
        "sepia",
        "warm-toned monochrome, like an old sepia print",
        _p(
            saturation=-1.0,
            contrast=0.1,
            curve=(0.05, 0.27, 0.5, 0.73, 0.95),
            split_shadow_hue=30.0,
            split_shadow_sat=0.7,
            split_highlight_hue=40.0,
            split_highlight_sat=0.75,
        ),
    ),
    Preset(
        "golden-hour",
        "warm golden light with glowing oranges and yellows",
        _p(
            temperature=0.7,
            tint=0.1,
            exposure=0.1,
            highlights=-0.1,
            vibrance=0.2,
            hsl_saturation={"orange": 0.2, "yellow": 0.2},
            hsl_luminance={"orange": 0.1},
        ),
    ),
    Preset(
        "moody-dark",
        "dark, moody and desaturated with deep blue-greens",
        _p(
            exposure=-0.35,
            contrast=0.25,
            highlights=-0.3,
            shadows=-0.2,
            saturation=-0.25,
            temperature=-0.2,
            hsl_luminance={"blue": -0.2, "green": -0.2},
            hsl_saturation={"green": -0.2},
        ),
    ),
    Preset(
        "bright-airy",
        "bright and airy: open shadows, soft contrast, clean whites",
        _p(
            exposure=0.45,
            shadows=0.35,
            highlights=-0.2,
            contrast=-0.15,
            vibrance=0.1,
            temperature=-0.05,
            hsl_luminance={"orange": 0.1},
        ),
    ),
    Preset(
        "vintage",
        "vintage print: warm, faded, with green-tinted shadows",
        _p(
            temperature=0.35,
            tint=0.08,
            contrast=-0.05,
            saturation=-0.25,
            curve=(0.1, 0.3, 0.52, 0.74, 0.9),
            split_shadow_hue=160.0,
            split_shadow_sat=0.3,
            split_highlight_hue=45.0,
            split_highlight_sat=0.35,
        ),
    ),
    Preset(
        "earthy",
        "earthy tones: olive greens, warm browns, quiet saturation",
        _p(
            temperature=0.2,
            contrast=0.1,
            saturation=-0.1,
            curve=(0.03, 0.25, 0.5, 0.75, 0.98),
            hsl_hue={"green": 0.3, "yellow": -0.1},
            hsl_saturation={"green": -0.4, "blue": -0.2, "orange": 0.1},
        ),
    ),
    Preset(
        "vivid-landscape",
        "rich landscape colour: deep blue skies, lush greens, recovered highlights",
        _p(
            vibrance=0.45,
            saturation=0.15,
            contrast=0.2,
            highlights=-0.3,
            shadows=0.25,
            hsl_saturation={"blue": 0.2, "green": 0.2},
            hsl_luminance={"blue": -0.15},
        ),
    ),
    Preset(
        "portrait-soft",
        "soft, flattering portrait: gentle contrast, luminous skin",
        _p(
            contrast=-0.15,
            highlights=-0.15,
            shadows=0.15,
            temperature=0.15,
            vibrance=-0.05,
            hsl_luminance={"orange": 0.15},
            hsl_saturation={"orange": -0.1, "red": -0.05},
        ),
    ),
    Preset(
        "cross-process",
        "cross-processed film: blue shadows, yellow highlights, hard contrast",
        _p(
            contrast=0.3,
            tint=-0.1,
            curve=(0.02, 0.22, 0.5, 0.78, 0.98),
            split_shadow_hue=220.0,
            split_shadow_sat=0.55,
            split_highlight_hue=60.0,
            split_highlight_sat=0.5,
        ),
    ),
    Preset(
        "blue-hour",
        "cool blue-hour light, slightly darker, clean colour",
        _p(temperature=-0.7, tint=0.12, exposure=-0.1, vibrance=0.2, hsl_saturation={"blue": 0.15}),
    ),
    Preset(
        "crisp-hdr",
        "restrained HDR: recovered highlights, opened shadows, crisp colour",
        _p(highlights=-0.6, shadows=0.55, whites=0.1, blacks=-0.15, vibrance=0.25, contrast=0.1),
    ),
    Preset(
        "retro-chrome",
        "slide-film chrome: saturated reds, deep blues, firm contrast",
        _p(
            contrast=0.3,
            saturation=0.2,
            temperature=0.1,
            blacks=-0.1,
            hsl_saturation={"red": 0.2, "blue": 0.1},
            hsl_hue={"blue": -0.1},
            hsl_luminance={"blue": -0.1},
        ),
    ),
]

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESET_LIST}


def preset_styles(strength: float = 1.0) -> list[PresetStyle]:
    """Every named preset as a style."""
    return [p.style(strength) for p in PRESETS.values()]
