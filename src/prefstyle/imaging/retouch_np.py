"""The slider pipeline on a LUT's nodes in numpy alone (no torch): ``sliders`` profiles in ``enhance``.

A ``sliders`` profile renders a photo through one LUT per photo: the posterior mean, over its
particles, of each particle's slider edit applied to the identity LUT's nodes, with exposure
moved by the particle's adaptive-brightness gain times the photo's metered EV. Importing torch
alone makes a process about 520 MB resident (docs/BENCHMARKS.md, issue 19), so this module
mirrors, for that one use, what the torch code does:

* :func:`unpack_vector` - :func:`prefstyle.imaging.pipeline.unpack_vector` with ``clamp=True``;
* the operators of :mod:`prefstyle.imaging.ops` on float32 arrays ``(K,3,...)`` with per-edit
  amounts ``(K,)`` (white balance .. tone curve act on each channel alone, hsl .. split toning on
  colours), skipped when neutral for every edit as :func:`prefstyle.imaging.pipeline._active_steps`
  skips them;
* :func:`edits_on_grid` - :func:`prefstyle.models.slider_taste._edits_on_grid`;
* :func:`adapted_vectors` - :func:`prefstyle.models.slider_taste.adapted_vectors`.

Values are float32 sRGB in [0, 1]; the mirrors agree with the torch code to float32 rounding
(``tests/test_enhance_torch_free.py``). Constants come from :mod:`prefstyle.imaging.op_strengths`
and :mod:`prefstyle.imaging.params`, which import no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from prefstyle.imaging import op_strengths as K_
from prefstyle.imaging.params import CURVE_X, HUE_CENTRES_DEG, IDENTITY_CURVE, SCALAR_FIELDS, VECTOR_FIELDS

__all__ = ["active_steps", "adapted_vectors", "apply_vectors", "edits_on_grid", "unpack_vector"]

_EPS = 1e-6
_LN2 = math.log(2.0)
_F = np.float32
Fields = dict[str, np.ndarray]


def unpack_vector(vecs: np.ndarray) -> Fields:
    """``(K, VECTOR_DIM)`` slider vectors -> named float32 fields (scalars ``(K,)``, vectors ``(K,n)``),
    each brought into its range, hues wrapped into [0, 360), the curve made monotone."""
    v = np.asarray(vecs, dtype=_F)
    out: Fields = {}
    i = 0
    for name, lo, hi, _ in SCALAR_FIELDS:
        x = v[:, i]
        if name.endswith("_hue"):
            x = np.mod(x, _F(360.0))
        else:
            x = _F(lo) + _F(hi - lo) * np.clip((x - _F(lo)) / _F(hi - lo), 0, 1)
        out[name] = x.astype(_F)
        i += 1
    for name, n in VECTOR_FIELDS:
        x = v[:, i : i + n]
        if name == "curve":
            x = np.maximum.accumulate(np.clip(x, 0, 1), axis=1)
        else:
            x = _F(2.0) * np.clip((x + _F(1.0)) / _F(2.0), 0, 1) - _F(1.0)
        out[name] = x.astype(_F)
        i += n
    return out


def adapted_vectors(vecs: np.ndarray, gains: np.ndarray, ev: float) -> np.ndarray:
    """``vecs`` ``(K, VECTOR_DIM)`` with exposure moved by ``gains · ev`` (kept in the slider's range)."""
    if ev == 0.0 or not bool((gains != 0).any()):
        return vecs
    names = [n for n, *_ in SCALAR_FIELDS]
    i = names.index("exposure")
    lo, hi = SCALAR_FIELDS[i][1], SCALAR_FIELDS[i][2]
    out = np.array(vecs, dtype=_F, copy=True)
    out[:, i] = np.clip(out[:, i] + gains.astype(_F) * _F(ev), lo, hi)
    return out


# -- helpers (shapes: x (K,3,...), amounts (K,) broadcast as (K,1,...)) -------------------------------


def _a(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    return v.reshape((-1,) + (1,) * (x.ndim - 1))


def _luma(x: np.ndarray) -> np.ndarray:
    w = K_.LUMA_WEIGHTS
    return (_F(w[0]) * x[:, 0] + _F(w[1]) * x[:, 1] + _F(w[2]) * x[:, 2])[:, None]


def _to_linear(x: np.ndarray) -> np.ndarray:
    hi = ((np.maximum(x, _F(0.04045)) + _F(0.055)) / _F(1.055)) ** _F(2.4)
    return np.where(x > _F(0.04045), hi, x / _F(12.92))


def _to_srgb(y: np.ndarray) -> np.ndarray:
    hi = _F(1.055) * np.maximum(y, _F(0.0031308)) ** _F(1.0 / 2.4) - _F(0.055)
    return np.where(y > _F(0.0031308), hi, y * _F(12.92))


def _hue_deg(x: np.ndarray, mx: np.ndarray, mn: np.ndarray) -> np.ndarray:
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    c = mx - mn
    safe = np.where(c > 0, c, _F(1.0))
    h = np.where(mx == r, np.mod((g - b) / safe, _F(6.0)), np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4))
    return np.where(c > 0, h * _F(60.0), _F(0.0))


def _soft_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    p = K_.GAMUT_SOFTNESS
    ratio = a / (b + _F(_EPS))
    return a / (_F(1.0) + ratio ** _F(p)) ** _F(1.0 / p)


# -- per-channel steps ----------------------------------------------------------------------------


def _white_balance(x: np.ndarray, f: Fields) -> np.ndarray:
    t, m = _a(f["temperature"], x), _a(f["tint"], x)
    gr = np.exp(_F(_LN2 * K_.WB_TEMPERATURE_STOPS) * t)
    gg = np.exp(_F(-_LN2 * K_.WB_TINT_STOPS) * m)
    gb = np.exp(_F(-_LN2 * K_.WB_TEMPERATURE_STOPS) * t)
    w = K_.LUMA_WEIGHTS
    norm = _F(w[0]) * gr + _F(w[1]) * gg + _F(w[2]) * gb
    gains = np.concatenate(np.broadcast_arrays(gr, gg, gb), axis=1) / norm
    return np.clip(_to_srgb(_to_linear(x) * gains), 0, 1)


def _exposure(x: np.ndarray, f: Fields) -> np.ndarray:
    return np.clip(_to_srgb(_to_linear(x) * np.exp(_F(_LN2) * _a(f["exposure"], x))), 0, 1)


def _contrast(x: np.ndarray, f: Fields) -> np.ndarray:
    k = K_.CONTRAST_STEEPNESS
    lo = 1.0 / (1.0 + math.exp(k / 2.0))
    s = (_F(1.0) / (_F(1.0) + np.exp(-_F(k) * (x - _F(0.5)))) - _F(lo)) / _F(1.0 - 2.0 * lo)
    return np.clip(x + _a(f["contrast"], x) * (s - x), 0, 1)


def _highlights(x: np.ndarray, f: Fields) -> np.ndarray:
    a = _a(f["highlights"], x)
    gain = np.where(a < 0, _F(K_.HIGHLIGHTS_GAIN[0]), _F(K_.HIGHLIGHTS_GAIN[1])) * a
    t2 = x * x
    return np.clip(x + gain * (t2 * t2 * (_F(1.0) - x)), 0, 1)


def _shadows(x: np.ndarray, f: Fields) -> np.ndarray:
    a = _a(f["shadows"], x)
    gain = np.where(a < 0, _F(K_.SHADOWS_GAIN[0]), _F(K_.SHADOWS_GAIN[1])) * a
    u = _F(1.0) - x
    u2 = u * u
    return np.clip(x + gain * (x * u2 * u2), 0, 1)


def _whites(x: np.ndarray, f: Fields) -> np.ndarray:
    t2 = x * x
    return np.clip(x + (_F(K_.WHITES_GAIN) * _a(f["whites"], x)) * (t2 * t2), 0, 1)


def _blacks(x: np.ndarray, f: Fields) -> np.ndarray:
    u = _F(1.0) - x
    u2 = u * u
    return np.clip(x + (_F(K_.BLACKS_GAIN) * _a(f["blacks"], x)) * (u2 * u2), 0, 1)


def _pchip(points: np.ndarray) -> np.ndarray:
    """``(K,5)`` curve outputs -> ``(K,4,4)`` segment cubics (:func:`prefstyle.imaging.ops.pchip_coefficients`)."""
    h = _F(1.0 / (len(CURVE_X) - 1))
    y = points
    delta = (y[:, 1:] - y[:, :-1]) / h
    d0, d1 = delta[:, :-1], delta[:, 1:]
    prod = d0 * d1
    hm = _F(2.0) * prod / np.where(prod > 0, d0 + d1, _F(1.0))
    inner = np.where(prod > 0, hm, _F(0.0))
    first = np.minimum(np.maximum((_F(3.0) * delta[:, 0] - delta[:, 1]) / _F(2.0), 0), _F(3.0) * delta[:, 0])
    last = np.minimum(np.maximum((_F(3.0) * delta[:, -1] - delta[:, -2]) / _F(2.0), 0), _F(3.0) * delta[:, -1])
    slopes = np.concatenate([first[:, None], inner, last[:, None]], axis=1)
    y0, y1 = y[:, :-1], y[:, 1:]
    m0, m1 = slopes[:, :-1] * h, slopes[:, 1:] * h
    c2 = _F(3.0) * (y1 - y0) - _F(2.0) * m0 - m1
    c3 = _F(2.0) * (y0 - y1) + m0 + m1
    return np.stack([y0, m0, c2, c3], axis=2).astype(_F)


def _tone_curve(x: np.ndarray, f: Fields) -> np.ndarray:
    coef = _pchip(f["curve"])
    b, nseg = x.shape[0], coef.shape[1]
    s = np.clip(x, 0, 1).reshape(b, -1) * _F(nseg)
    k = np.clip(np.floor(s), 0, nseg - 1)
    u = s - k
    ki = k.astype(np.intp)
    c = [np.take_along_axis(coef[:, :, j], ki, axis=1) for j in range(4)]
    out = ((c[3] * u + c[2]) * u + c[1]) * u + c[0]
    return np.clip(out.reshape(x.shape), 0, 1)


# -- colour steps -----------------------------------------------------------------------------------


def _band_values(hue: np.ndarray, values: np.ndarray) -> np.ndarray:
    """8 per-band values ``(K,8)`` interpolated at hues ``(K,1,...)`` (raised-cosine weights)."""
    centres = np.array((*HUE_CENTRES_DEG, HUE_CENTRES_DEG[0] + 360.0), dtype=_F)
    flat = hue.reshape(hue.shape[0], -1)
    seg = np.searchsorted(centres[1:-1], flat, side="right")
    lo = centres[seg]
    u = (flat - lo) / (centres[seg + 1] - lo)
    w1 = _F(0.5) - _F(0.5) * np.cos(_F(math.pi) * u)
    ext = np.concatenate([values, values[:, :1]], axis=1)
    v0, v1 = np.take_along_axis(ext, seg, axis=1), np.take_along_axis(ext, seg + 1, axis=1)
    return (v0 + w1 * (v1 - v0)).reshape(hue.shape)


def _hsl(x: np.ndarray, f: Fields) -> np.ndarray:
    mx, mn = x.max(axis=1, keepdims=True), x.min(axis=1, keepdims=True)
    c = mx - mn
    light = _F(0.5) * (mx + mn)
    denom = _F(1.0) - np.abs(mx + mn - _F(1.0))
    s = np.clip(c / np.where(denom > _F(_EPS), denom, _F(1.0)), 0, 1)
    h = _hue_deg(x, mx, mn)
    dh, ds, dl = (_band_values(h, f[k]) for k in ("hsl_hue", "hsl_saturation", "hsl_luminance"))
    h2 = h + _F(K_.HSL_HUE_DEG) * dh
    grow = np.maximum(s * ds, 0)
    s2 = np.where(ds > 0, s + _soft_min(grow, _F(1.0) - s), s * (_F(1.0) + ds))
    l2 = light + dl * s * light * (_F(1.0) - light)
    a = s2 * np.minimum(l2, _F(1.0) - l2)
    h30 = h2 / _F(30.0)
    chans = []
    for n in (0.0, 8.0, 4.0):
        k = np.mod(h30 + _F(n), _F(12.0))
        chans.append(l2 - a * np.clip(np.minimum(k - _F(3.0), _F(9.0) - k), -1, 1))
    return np.clip(np.concatenate(chans, axis=1), 0, 1)


def _scale_chroma(x: np.ndarray, factor: np.ndarray) -> np.ndarray:
    y = _luma(x)
    d = x - y
    dmax, dmin = d.max(axis=1, keepdims=True), d.min(axis=1, keepdims=True)
    lim_hi = np.maximum(_F(1.0) - y, 0) / np.maximum(dmax, _F(_EPS))
    lim_lo = np.maximum(y, 0) / np.maximum(-dmin, _F(_EPS))
    room = np.maximum(np.minimum(lim_hi, lim_lo) - _F(1.0), 0)
    boost = np.maximum(factor - _F(1.0), 0)
    g = np.where(factor > 1.0, _F(1.0) + _soft_min(boost, room), factor)
    return np.clip(y + g * d, 0, 1)


def _vibrance(x: np.ndarray, f: Fields) -> np.ndarray:
    a = _a(f["vibrance"], x)
    mx, mn = x.max(axis=1, keepdims=True), x.min(axis=1, keepdims=True)
    s = (mx - mn) / np.maximum(mx, _F(_EPS))
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    c = mx - mn
    hue = _F(60.0) * (g - b) / np.where(c > 0, c, _F(1.0))
    u = (hue - _F(K_.SKIN_HUE_DEG[0])) / _F(K_.SKIN_HUE_DEG[1])
    skin = np.maximum(_F(1.0) - u * u, 0) ** 2
    skin = np.where((r >= g) & (g >= b) & (c > 0), skin, _F(0.0))
    w = (_F(1.0) - s) * (_F(1.0) - _F(K_.VIBRANCE_SKIN_PROTECTION) * skin)
    return _scale_chroma(x, _F(1.0) + a * w)


def _saturation(x: np.ndarray, f: Fields) -> np.ndarray:
    return _scale_chroma(x, _F(1.0) + _a(f["saturation"], x))


def _tint(hue: np.ndarray, like: np.ndarray) -> np.ndarray:
    rad = _a(hue, like) * _F(math.pi / 180.0)
    rgb = np.concatenate([_F(0.5) + _F(0.5) * np.cos(rad - _F(o)) for o in (0.0, 2 * math.pi / 3, 4 * math.pi / 3)], 1)
    return rgb - _luma(rgb)


def _split_toning(x: np.ndarray, f: Fields) -> np.ndarray:
    bal = _a(f["split_balance"], x)
    y = np.clip(_luma(x), _F(_EPS), _F(1.0 - _EPS))
    w_hi = np.exp(_F(2.0) * np.exp(-_F(_LN2) * bal) * np.log(y))
    w_sh = np.exp(_F(2.0) * np.exp(_F(_LN2) * bal) * np.log1p(-y))
    t_sh = (_F(K_.SPLIT_TONING_GAIN) * _a(f["split_shadow_sat"], x)) * _tint(f["split_shadow_hue"], x)
    t_hi = (_F(K_.SPLIT_TONING_GAIN) * _a(f["split_highlight_sat"], x)) * _tint(f["split_highlight_hue"], x)
    return np.clip(x + w_sh * t_sh + w_hi * t_hi, 0, 1)


Step = Callable[[np.ndarray, Fields], np.ndarray]
#: (operator, the fields that make it active) in pipeline order, as prefstyle.imaging.pipeline._STEPS
_STEPS: tuple[tuple[str, tuple[str, ...], Step], ...] = (
    ("white_balance", ("temperature", "tint"), _white_balance),
    ("exposure", ("exposure",), _exposure),
    ("contrast", ("contrast",), _contrast),
    ("highlights", ("highlights",), _highlights),
    ("shadows", ("shadows",), _shadows),
    ("whites", ("whites",), _whites),
    ("blacks", ("blacks",), _blacks),
    ("tone_curve", ("curve",), _tone_curve),
    ("hsl", ("hsl_hue", "hsl_saturation", "hsl_luminance"), _hsl),
    ("vibrance", ("vibrance",), _vibrance),
    ("saturation", ("saturation",), _saturation),
    ("split_toning", ("split_shadow_sat", "split_highlight_sat"), _split_toning),
)
#: the first steps map each channel on its own
N_PER_CHANNEL_STEPS = 8
_NEUTRAL = {name: nv for name, _, _, nv in SCALAR_FIELDS}


def _neutral(f: Fields, names: tuple[str, ...]) -> bool:
    for name in names:
        v = f[name]
        if name == "curve":
            if not bool((v == np.asarray(IDENTITY_CURVE, dtype=_F)).all()):
                return False
        elif name.endswith("_hue"):
            continue
        elif name in _NEUTRAL:
            if not bool((v == _NEUTRAL[name]).all()):
                return False
        elif not bool((v == 0).all()):
            return False
    return True


def active_steps(f: Fields, lo: int = 0, hi: int = len(_STEPS)) -> list[Step]:
    """The operators of ``_STEPS[lo:hi]`` that are not neutral for every edit, in order."""
    return [fn for _, names, fn in _STEPS[lo:hi] if not _neutral(f, names)]


def apply_vectors(img: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """``apply_retouch_vector(img, vecs, exact=True)``: every active operator in order on ``(K,3,H,W)``
    float32 images with one ``(K, VECTOR_DIM)`` (or ``(1, VECTOR_DIM)``) edit each."""
    f = unpack_vector(vecs)
    x = np.asarray(img, dtype=_F)
    for fn in active_steps(f):
        x = fn(x, f)
    return x


def edits_on_grid(vecs: np.ndarray, size: int) -> np.ndarray:
    """``(K, 3, S, S²)`` float32: each slider edit ``vecs`` ``(K, VECTOR_DIM)`` applied to the identity
    LUT's nodes (red fastest), unclamped after the last step as the torch mirror leaves it: the
    per-channel steps on the ``S`` node values of each channel, the colour steps on every node."""
    f = unpack_vector(vecs)
    k, n = len(vecs), size
    ramp = (np.arange(n, dtype=np.float64) / (n - 1)).astype(_F)
    t = np.broadcast_to(ramp, (k, 3, 1, n)).copy()
    for fn in active_steps(f, 0, N_PER_CHANNEL_STEPS):
        t = fn(t, f)
    t = t.reshape(k, 3, n)
    grid = np.empty((k, 3, n, n, n), dtype=_F)
    grid[:, 0] = t[:, 0, None, None, :]
    grid[:, 1] = t[:, 1, None, :, None]
    grid[:, 2] = t[:, 2, :, None, None]
    x = grid.reshape(k, 3, n, n * n)
    for fn in active_steps(f, N_PER_CHANNEL_STEPS):
        x = fn(x, f)
    return x.astype(_F, copy=False)
