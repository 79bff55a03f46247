"""Retouching operators: pure, differentiable, per-pixel functions over RGB images.

Every operator takes a batch of gamma-encoded sRGB images ``img`` of shape ``(B, 3, H, W)``
with values in ``[0, 1]`` and returns a new tensor of the same shape, also in ``[0, 1]``. It
never modifies its input. Parameters are a Python float (one value for the whole batch) or a
tensor of shape ``(B,)`` (one value per image); vector parameters (curve, HSL) are a sequence /
tensor of shape ``(K,)`` or ``(B, K)``. Every operator is differentiable with respect to the
image and to its parameters, so a model can predict parameters and back-propagate through
:func:`prefstyle.imaging.pipeline.apply_retouch_vector`.

At the neutral parameter value (listed below) every operator is the identity to within
float32 round-off (1e-6).

======================  =====================  =======  ==============================================
operator                parameter range        neutral  where / what
======================  =====================  =======  ==============================================
white_balance           temperature, tint      0, 0     linear light; per-channel gains, grey luminance
                        in [-1, 1]                      kept; +T warmer (R up, B down), +tint magenta
exposure                ev in [-3, 3]          0        linear light; ``x * 2**ev``
contrast                [-1, 1]                0        per channel, gamma space; logistic S-curve
                                                        about 0.5
highlights              [-1, 1]                0        per channel, gamma space; bump peaking at 0.8
shadows                 [-1, 1]                0        per channel, gamma space; bump peaking at 0.2
whites                  [-1, 1]                0        per channel; moves the white point (+ clips)
blacks                  [-1, 1]                0        per channel; moves the black point (+ fades)
tone_curve              5 outputs in [0, 1]    x        per channel; monotone cubic (PCHIP) through
                        non-decreasing                  (0, .25, .5, .75, 1) -> points
hsl                     3 x 8 values [-1, 1]   0        HLS space; per hue band hue shift (1 = +30 deg),
                                                        saturation scale, lightness shift
vibrance                [-1, 1]                0        luma/chroma; boosts muted colours, spares
                                                        saturated ones and skin tones
saturation              [-1, 1]                0        luma/chroma; uniform chroma scale (-1 = grey)
split_toning            hues [0, 360),         sats 0   adds a zero-luma tint to shadows / highlights
                        sats [0, 1], balance
                        [-1, 1]
======================  =====================  =======  ==============================================

Design notes

* The tone operators (contrast .. tone_curve) are monotone maps ``[0, 1] -> [0, 1]`` applied to
  each channel alike, as a raw editor's RGB curves are. Together with white balance and
  exposure (per-channel gains in linear light) the whole first half of the pipeline is a
  per-channel 1-D map, which the pipeline exploits.
* Chroma operators (vibrance, saturation) scale the distance from the pixel's luma (Rec.709
  weights on the encoded values) with a soft gamut limit, so boosting never clips a channel
  and never shifts hue; ``saturation=-1`` gives the luma greyscale.
* Every output passes through :func:`clamp01`: a clamp to ``[0, 1]`` whose gradient leaks
  ``CLAMP_LEAK`` (instead of 0) outside the range, so that e.g. an over-exposed image still
  tells the exposure parameter which way to go.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from prefstyle.imaging.op_strengths import (  # the operators' strengths, shared with the numpy mirror
    BLACKS_GAIN,
    CONTRAST_STEEPNESS,
    GAMUT_SOFTNESS,
    HIGHLIGHTS_GAIN,
    HSL_HUE_DEG,
    LUMA_WEIGHTS,
    SHADOWS_GAIN,
    SKIN_HUE_DEG,
    SPLIT_TONING_GAIN,
    VIBRANCE_SKIN_PROTECTION,
    WB_TEMPERATURE_STOPS,
    WB_TINT_STOPS,
    WHITES_GAIN,
)
from prefstyle.imaging.params import CURVE_X, HUE_CENTRES_DEG

__all__ = [
    "CLAMP_LEAK",
    "Amount",
    "band_interp",
    "blacks",
    "clamp01",
    "contrast",
    "exposure",
    "highlights",
    "hsl",
    "linear_to_srgb",
    "luma",
    "pchip_coefficients",
    "saturation",
    "shadows",
    "split_toning",
    "srgb_to_linear",
    "tone_curve",
    "vibrance",
    "white_balance",
    "whites",
]

Amount = float | torch.Tensor

#: gradient of :func:`clamp01` outside [0, 1] (1 inside).
CLAMP_LEAK = 0.05


_EPS = 1e-6


# --------------------------------------------------------------------------------------------
# helpers


def _check(img: torch.Tensor) -> None:
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"img must be a torch.Tensor, got {type(img)}")
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"img must have shape (B, 3, H, W), got {tuple(img.shape)}")
    if not img.is_floating_point():
        raise TypeError(f"img must be floating point, got {img.dtype}")


def _scalar(amount: Amount, img: torch.Tensor, name: str = "amount") -> torch.Tensor:
    """A float or a (B,) / (1,) tensor -> a tensor of shape (B or 1, 1, 1, 1) matching ``img``."""
    a = torch.as_tensor(amount, dtype=img.dtype, device=img.device)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1 or a.shape[0] not in (1, img.shape[0]):
        raise ValueError(f"{name} must be a float or a tensor of shape ({img.shape[0]},), got {tuple(a.shape)}")
    return a.reshape(-1, 1, 1, 1)


def _vector(values: Sequence[float] | torch.Tensor, k: int, img: torch.Tensor, name: str) -> torch.Tensor:
    """A (K,) or (B, K) sequence / tensor -> a tensor of shape (B or 1, K) matching ``img``."""
    v = torch.as_tensor(values, dtype=img.dtype, device=img.device)
    if v.ndim == 1:
        v = v.reshape(1, -1)
    if v.ndim != 2 or v.shape[1] != k or v.shape[0] not in (1, img.shape[0]):
        raise ValueError(f"{name} must have shape ({k},) or ({img.shape[0]}, {k}), got {tuple(v.shape)}")
    return v


def clamp01(x: torch.Tensor, leak: float = CLAMP_LEAK) -> torch.Tensor:
    """Clamp to [0, 1]. Value: exactly ``x.clamp(0, 1)``; gradient: 1 on [0, 1] (ends included), ``leak`` outside.

    (``torch.clamp`` has gradient 0 *at* the bounds, which would freeze e.g. a curve point that
    sits at 0 or 1.) Without autograd this is a plain clamp.
    """
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x.clamp(0.0, 1.0)
    inside = (x >= 0.0) & (x <= 1.0)
    scale = torch.where(inside, 1.0, leak).to(x.dtype)
    return x.detach().clamp(0.0, 1.0) + scale * (x - x.detach())


def luma(img: torch.Tensor) -> torch.Tensor:
    """Rec.709-weighted luma of gamma-encoded RGB: ``(B, 3, H, W) -> (B, 1, H, W)``."""
    r, g, b = img.unbind(1)
    return (LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b).unsqueeze(1)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function decode (IEC 61966-2-1), with finite gradients everywhere."""
    hi = ((x.clamp_min(0.04045) + 0.055) / 1.055).pow(2.4)
    return torch.where(x > 0.04045, hi, x / 12.92)


def linear_to_srgb(y: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function encode; values above 1 stay above 1 (clip afterwards)."""
    hi = 1.055 * y.clamp_min(0.0031308).pow(1.0 / 2.4) - 0.055
    return torch.where(y > 0.0031308, hi, y * 12.92)


def _rgb_hue_deg(img: torch.Tensor, mx: torch.Tensor, mn: torch.Tensor) -> torch.Tensor:
    """HSV/HLS hue in degrees [0, 360) from RGB and its channel max/min, shape (B, 1, H, W)."""
    r, g, b = img[:, 0:1], img[:, 1:2], img[:, 2:3]
    c = mx - mn
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    h_r = torch.remainder((g - b) / safe_c, 6.0)
    h_g = (b - r) / safe_c + 2.0
    h_b = (r - g) / safe_c + 4.0
    h = torch.where(mx == r, h_r, torch.where(mx == g, h_g, h_b))
    return torch.where(c > 0, h * 60.0, torch.zeros_like(h))


# --------------------------------------------------------------------------------------------
# linear-light operators


def white_balance(img: torch.Tensor, temperature: Amount, tint: Amount) -> torch.Tensor:
    """White balance in linear light. ``temperature``, ``tint`` in [-1, 1], neutral 0.

    Per-channel gains ``R = 2**(k_T T)``, ``G = 2**(-k_M tint)``, ``B = 2**(-k_T T)``, divided by
    the luminance of the gain vector so that greys keep their brightness. Positive temperature
    warms (amber), negative cools (blue); positive tint adds magenta, negative green.
    """
    _check(img)
    t = _scalar(temperature, img, "temperature")
    m = _scalar(tint, img, "tint")
    ln2 = math.log(2.0)
    gr = torch.exp(ln2 * WB_TEMPERATURE_STOPS * t)
    gg = torch.exp(-ln2 * WB_TINT_STOPS * m)
    gb = torch.exp(-ln2 * WB_TEMPERATURE_STOPS * t)
    norm = LUMA_WEIGHTS[0] * gr + LUMA_WEIGHTS[1] * gg + LUMA_WEIGHTS[2] * gb
    gains = torch.cat(torch.broadcast_tensors(gr, gg, gb), dim=1) / norm  # (B, 3, 1, 1)
    return clamp01(linear_to_srgb(srgb_to_linear(img) * gains))


def exposure(img: torch.Tensor, ev: Amount) -> torch.Tensor:
    """Exposure in EV stops, [-3, 3], neutral 0: linear light times ``2**ev``, clipped at white."""
    _check(img)
    e = _scalar(ev, img, "ev")
    return clamp01(linear_to_srgb(srgb_to_linear(img) * torch.exp(math.log(2.0) * e)))


# --------------------------------------------------------------------------------------------
# tone operators (per channel, gamma-encoded values, monotone maps of [0, 1])


def _contrast_map(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    # t + a (S(t) - t), S the logistic curve of steepness k rescaled to fix 0 and 1.
    k = CONTRAST_STEEPNESS
    lo = 1.0 / (1.0 + math.exp(k / 2.0))
    s = (torch.sigmoid(k * (t - 0.5)) - lo) / (1.0 - 2.0 * lo)
    return t + a * (s - t)


def contrast(img: torch.Tensor, amount: Amount) -> torch.Tensor:
    """Contrast, [-1, 1], neutral 0: blend towards a logistic S-curve (+) or its mirror (-), pivot 0.5.

    Monotone over the whole range; +1 steepens mid-tones to slope 1.66 and flattens the ends to
    0.3 (strong, never posterised: every input level stays distinct); -1 flattens mid-tones to
    0.34. Black, mid-grey (0.5) and white stay put.
    """
    _check(img)
    return clamp01(_contrast_map(img, _scalar(amount, img)))


def _highlights_map(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    gain = torch.where(a < 0, HIGHLIGHTS_GAIN[0], HIGHLIGHTS_GAIN[1]) * a
    t2 = t * t
    return t + gain * (t2 * t2 * (1.0 - t))


def highlights(img: torch.Tensor, amount: Amount) -> torch.Tensor:
    """Highlights, [-1, 1], neutral 0: ``t + g t^4 (1 - t)``, a bump peaking at t = 0.8.

    -1 recovers bright tones (0.8 -> 0.64, 0.9 -> 0.77), +1 lifts them (0.8 -> 0.88); tones below
    0.3 move by less than 0.02 and black / white are fixed. Monotone over the whole range.
    """
    _check(img)
    return clamp01(_highlights_map(img, _scalar(amount, img)))


def _shadows_map(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    gain = torch.where(a < 0, SHADOWS_GAIN[0], SHADOWS_GAIN[1]) * a
    u = 1.0 - t
    u2 = u * u
    return t + gain * (t * u2 * u2)


def shadows(img: torch.Tensor, amount: Amount) -> torch.Tensor:
    """Shadows, [-1, 1], neutral 0: ``t + g t (1 - t)^4``, a bump peaking at t = 0.2.

    +1 lifts dark tones (0.2 -> 0.36), -1 deepens them (0.2 -> 0.12); tones above 0.7 move by
    less than 0.02 and black / white are fixed. Monotone over the whole range.
    """
    _check(img)
    return clamp01(_shadows_map(img, _scalar(amount, img)))


def _whites_map(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    t2 = t * t
    return t + (WHITES_GAIN * a) * (t2 * t2)


def whites(img: torch.Tensor, amount: Amount) -> torch.Tensor:
    """Whites, [-1, 1], neutral 0: ``t + 0.15 a t^4``.

    +1 pushes the top of the range past white (more clipping, brighter whites), -1 pulls the
    white point down to 0.85. Dark tones are barely touched (t^4 weight).
    """
    _check(img)
    return clamp01(_whites_map(img, _scalar(amount, img)))


def _blacks_map(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    u = 1.0 - t
    u2 = u * u
    return t + (BLACKS_GAIN * a) * (u2 * u2)


def blacks(img: torch.Tensor, amount: Amount) -> torch.Tensor:
    """Blacks, [-1, 1], neutral 0: ``t + 0.15 a (1 - t)^4``.

    +1 lifts the black point to 0.15 (a faded look), -1 crushes the bottom of the range to
    black. Bright tones are barely touched ((1 - t)^4 weight).
    """
    _check(img)
    return clamp01(_blacks_map(img, _scalar(amount, img)))


def pchip_coefficients(points: torch.Tensor) -> torch.Tensor:
    """Cubic coefficients of the monotone (Fritsch-Carlson / PCHIP) curve through the points.

    ``points``: (B, 5) outputs at ``x = (0, .25, .5, .75, 1)``, non-decreasing. Returns (B, 4, 4):
    for segment k, ``y(x) = c0 + c1 u + c2 u^2 + c3 u^3`` with ``u = 4 x - k`` in [0, 1]. The slopes
    are scipy's ``PchipInterpolator`` ones (harmonic-mean interior slopes, the shape-preserving
    three-point end slopes), so the curve is monotone and stays within the points' range.
    """
    n = len(CURVE_X)
    h = 1.0 / (n - 1)
    y = points
    delta = (y[:, 1:] - y[:, :-1]) / h  # (B, 4) secants, >= 0 for monotone points
    d0, d1 = delta[:, :-1], delta[:, 1:]
    prod = d0 * d1
    # weighted harmonic mean for equal spacing: 2 d0 d1 / (d0 + d1); 0 where the secants disagree
    hm = 2.0 * prod / torch.where(prod > 0, d0 + d1, torch.ones_like(d0))
    inner = torch.where(prod > 0, hm, torch.zeros_like(hm))
    first = torch.minimum(((3.0 * delta[:, 0] - delta[:, 1]) / 2.0).clamp_min(0.0), 3.0 * delta[:, 0])
    last = torch.minimum(((3.0 * delta[:, -1] - delta[:, -2]) / 2.0).clamp_min(0.0), 3.0 * delta[:, -1])
    slopes = torch.cat([first[:, None], inner, last[:, None]], dim=1)  # (B, 5)
    y0, y1 = y[:, :-1], y[:, 1:]
    m0, m1 = slopes[:, :-1] * h, slopes[:, 1:] * h
    c0 = y0
    c1 = m0
    c2 = 3.0 * (y1 - y0) - 2.0 * m0 - m1
    c3 = 2.0 * (y0 - y1) + m0 + m1
    return torch.stack([c0, c1, c2, c3], dim=2)


def _eval_pchip(t: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Evaluate (B, 4, 4) segment cubics at ``t`` (B, ...), t in [0, 1]."""
    b = t.shape[0]
    nseg = coef.shape[1]
    flat = t.reshape(b, -1)
    s = flat * nseg
    k = s.detach().floor().clamp_(0, nseg - 1)
    u = s - k
    k = k.long()
    coef = coef.expand(b, -1, -1)
    c = [torch.gather(coef[:, :, j], 1, k) for j in range(4)]
    out = ((c[3] * u + c[2]) * u + c[1]) * u + c[0]
    return out.reshape(t.shape)


def tone_curve(img: torch.Tensor, points: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Monotone tone curve through ``(CURVE_X[i], points[i])``, applied to each channel.

    ``points``: 5 non-decreasing values in [0, 1] (or (B, 5)); neutral ``(0, .25, .5, .75, 1)``.
    Interpolation is monotone cubic (PCHIP), so the curve never overshoots its control points.
    """
    _check(img)
    p = _vector(points, len(CURVE_X), img, "points")
    coef = pchip_coefficients(p).expand(img.shape[0], -1, -1)
    return clamp01(_eval_pchip(img.clamp(0.0, 1.0), coef))


# --------------------------------------------------------------------------------------------
# colour operators


def _band_weights(hue_deg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Segment index (B, N) in 0..7 and raised-cosine weight (B, N) of the next band for hues (B, 1, H, W).

    Between two neighbouring band centres the weights are ``(1 + cos(pi u)) / 2`` and
    ``(1 - cos(pi u)) / 2`` of the position ``u`` between them: a partition of unity, so a hue
    exactly on a band centre gets that band's value and equal values give a constant.
    """
    centres = torch.tensor((*HUE_CENTRES_DEG, HUE_CENTRES_DEG[0] + 360.0), dtype=hue_deg.dtype, device=hue_deg.device)
    flat = hue_deg.reshape(hue_deg.shape[0], -1)
    seg = torch.bucketize(flat.detach(), centres[1:-1], right=True)  # 0..7
    lo = centres[seg]
    width = centres[seg + 1] - lo
    u = (flat - lo) / width
    return seg, 0.5 - 0.5 * torch.cos(math.pi * u)


def _band_values(seg: torch.Tensor, w1: torch.Tensor, values: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Interpolate 8 per-band values (B or 1, 8) at the positions of :func:`_band_weights` -> ``shape``."""
    vals = values.expand(seg.shape[0], -1)
    ext = torch.cat([vals, vals[:, :1]], dim=1)  # wrap magenta -> red
    v0 = torch.gather(ext, 1, seg)
    v1 = torch.gather(ext, 1, seg + 1)
    return (v0 + w1 * (v1 - v0)).reshape(shape)


def band_interp(hue_deg: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Smoothly interpolate 8 per-band values around the hue circle (raised-cosine weights).

    ``hue_deg``: (B, 1, H, W) in [0, 360); ``values``: (B or 1, 8) for the bands of
    ``HUE_CENTRES_DEG``. Returns (B, 1, H, W).
    """
    seg, w1 = _band_weights(hue_deg)
    return _band_values(seg, w1, values, hue_deg.shape)


def hsl(
    img: torch.Tensor,
    hue: Sequence[float] | torch.Tensor,
    sat: Sequence[float] | torch.Tensor,
    lum: Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    """Per hue band HSL adjustments, each 8 values in [-1, 1] (bands of ``HUE_CENTRES_DEG``), neutral 0.

    Works in HLS: a pixel's hue selects a smooth (raised-cosine) blend of the two nearest bands'
    values. ``hue`` shifts the hue by up to +-30 degrees; ``sat`` scales HLS saturation by
    ``1 + sat`` (softly limited to 1 when boosting); ``lum`` moves lightness by
    ``lum * S * L (1 - L)`` (monotone in L, so -1 darkens the hue, +1 lightens it towards a
    pastel). Greys (S = 0) are untouched by all three.
    """
    _check(img)
    hv = _vector(hue, 8, img, "hue")
    sv = _vector(sat, 8, img, "sat")
    lv = _vector(lum, 8, img, "lum")
    mx = img.amax(dim=1, keepdim=True)
    mn = img.amin(dim=1, keepdim=True)
    c = mx - mn
    light = 0.5 * (mx + mn)
    denom = 1.0 - (mx + mn - 1.0).abs()
    s = c / torch.where(denom > _EPS, denom, torch.ones_like(denom))
    s = s.clamp(0.0, 1.0)
    h = _rgb_hue_deg(img, mx, mn)

    seg, w1 = _band_weights(h)
    dh = _band_values(seg, w1, hv, h.shape)
    ds = _band_values(seg, w1, sv, h.shape)
    dl = _band_values(seg, w1, lv, h.shape)

    h2 = h + HSL_HUE_DEG * dh
    # saturation: scale by (1 + ds); when boosting, the excess is softly limited so S <= 1
    grow = (s * ds).clamp_min(0.0)
    room = 1.0 - s
    s2 = torch.where(ds > 0, s + _soft_min(grow, room), s * (1.0 + ds))
    l2 = light + dl * s * light * (1.0 - light)

    # HLS -> RGB: c_n = L - a * clamp(min(k - 3, 9 - k), -1, 1), k = (n + H/30) mod 12
    a = s2 * torch.minimum(l2, 1.0 - l2)
    h30 = h2 / 30.0
    chans = []
    for n in (0.0, 8.0, 4.0):
        k = torch.remainder(h30 + n, 12.0)
        chans.append(l2 - a * torch.minimum(k - 3.0, 9.0 - k).clamp(-1.0, 1.0))
    return clamp01(torch.cat(chans, dim=1))


def _soft_min(a: torch.Tensor, b: torch.Tensor, p: float = GAMUT_SOFTNESS) -> torch.Tensor:
    """Smooth minimum of non-negative ``a`` and ``b``: ``a / (1 + (a/b)^p)^(1/p)``; 0 at a = 0, slope 1 there."""
    ratio = a / (b + _EPS)
    return a / (1.0 + ratio.pow(p)).pow(1.0 / p)


def _scale_chroma(img: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Move every pixel away from (factor > 1) or towards (< 1) its luma; no clipping, no hue shift.

    Boosts are softly limited to the largest factor that keeps all channels in [0, 1].
    ``factor``: broadcastable to (B, 1, H, W), >= 0.
    """
    y = luma(img)
    d = img - y
    dmax = d.amax(dim=1, keepdim=True)
    dmin = d.amin(dim=1, keepdim=True)
    # largest scale that keeps y + s d inside [0, 1]: (1 - y)/dmax and y/(-dmin)
    lim_hi = (1.0 - y).clamp_min(0.0) / dmax.clamp_min(_EPS)
    lim_lo = y.clamp_min(0.0) / (-dmin).clamp_min(_EPS)
    room = (torch.minimum(lim_hi, lim_lo) - 1.0).clamp_min(0.0)
    boost = (factor - 1.0).clamp_min(0.0)
    g = torch.where(factor > 1.0, 1.0 + _soft_min(boost, room), factor)
    return clamp01(y + g * d)


def saturation(img: torch.Tensor, amount: Amount) -> torch.Tensor:
    """Saturation, [-1, 1], neutral 0: scale chroma about the luma by ``1 + amount``.

    -1 gives the Rec.709-luma greyscale; +1 doubles chroma, softly limited by the gamut so no
    channel clips and hue is kept.
    """
    _check(img)
    return _scale_chroma(img, 1.0 + _scalar(amount, img))


def _skin_weight(img: torch.Tensor, mx: torch.Tensor, mn: torch.Tensor) -> torch.Tensor:
    """1 on typical skin hues (HSV ~0..50 degrees, with R >= G >= B), smoothly 0 elsewhere."""
    r, g, b = img[:, 0:1], img[:, 1:2], img[:, 2:3]
    c = mx - mn
    hue = 60.0 * (g - b) / torch.where(c > 0, c, torch.ones_like(c))
    u = (hue - SKIN_HUE_DEG[0]) / SKIN_HUE_DEG[1]
    w = (1.0 - u * u).clamp_min(0.0)
    w = w * w
    in_sector = (r >= g) & (g >= b) & (c > 0)
    return torch.where(in_sector, w, torch.zeros_like(w))


def vibrance(img: torch.Tensor, amount: Amount) -> torch.Tensor:
    """Vibrance, [-1, 1], neutral 0: a saturation change weighted towards muted colours.

    The chroma factor is ``1 + amount (1 - S) (1 - 0.6 skin)`` with S the HSV saturation and
    ``skin`` a smooth weight on skin hues; so saturated colours and faces change much less than
    muted ones. Boosts are gamut-limited like :func:`saturation`.
    """
    _check(img)
    a = _scalar(amount, img)
    mx = img.amax(dim=1, keepdim=True)
    mn = img.amin(dim=1, keepdim=True)
    s = (mx - mn) / mx.clamp_min(_EPS)
    w = (1.0 - s) * (1.0 - VIBRANCE_SKIN_PROTECTION * _skin_weight(img, mx, mn))
    return _scale_chroma(img, 1.0 + a * w)


def _tint_vector(hue_deg: torch.Tensor) -> torch.Tensor:
    """Zero-luma chroma direction of a hue: (B, 1, 1, 1) degrees -> (B, 3, 1, 1)."""
    rad = hue_deg * (math.pi / 180.0)
    rgb = torch.cat([0.5 + 0.5 * torch.cos(rad - o) for o in (0.0, 2 * math.pi / 3, 4 * math.pi / 3)], dim=1)
    return rgb - luma(rgb)


def split_toning(
    img: torch.Tensor,
    shadow_hue: Amount,
    shadow_sat: Amount,
    highlight_hue: Amount,
    highlight_sat: Amount,
    balance: Amount = 0.0,
) -> torch.Tensor:
    """Split toning: tint shadows and highlights. Hues in degrees [0, 360), sats in [0, 1]
    (neutral 0), balance in [-1, 1] (neutral 0; + favours the highlight tint).

    Adds ``0.3 * sat * w(Y) * tint(hue)`` where ``tint`` is the zero-luma chroma direction of the
    hue and the weights are ``w_hi = Y^(2 * 2^-balance)``, ``w_sh = (1 - Y)^(2 * 2^balance)`` of the
    pixel's luma Y. Luma is unchanged except where a channel clips.
    """
    _check(img)
    hs = _scalar(shadow_hue, img, "shadow_hue")
    ss = _scalar(shadow_sat, img, "shadow_sat")
    hh = _scalar(highlight_hue, img, "highlight_hue")
    sh = _scalar(highlight_sat, img, "highlight_sat")
    bal = _scalar(balance, img, "balance")
    y = luma(img).clamp(_EPS, 1.0 - _EPS)
    p_hi = 2.0 * torch.exp(-math.log(2.0) * bal)
    p_sh = 2.0 * torch.exp(math.log(2.0) * bal)
    w_hi = torch.exp(p_hi * torch.log(y))
    w_sh = torch.exp(p_sh * torch.log1p(-y))
    t_sh = (SPLIT_TONING_GAIN * ss) * _tint_vector(hs)
    t_hi = (SPLIT_TONING_GAIN * sh) * _tint_vector(hh)
    return clamp01(img + w_sh * t_sh + w_hi * t_hi)
