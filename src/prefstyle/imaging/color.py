"""Colour spaces and the CIEDE2000 colour difference, as differentiable torch functions.

Every image is a float tensor ``(*, 3, H, W)`` (channels at axis -3). float32 and float64
both work (float64 is what ``gradcheck`` uses). What comes from :mod:`kornia.color` is
re-exported unchanged; this module adds OKLab, luminance and CIEDE2000.

=========================  ==================================  ==================================
function                   input                               output
=========================  ==================================  ==================================
srgb_to_linear             sRGB, gamma-encoded, [0, 1]         linear RGB, [0, 1]
linear_to_srgb             linear RGB, [0, 1]                  sRGB, [0, 1] (not clipped)
rgb_to_xyz                 **linear** RGB                      XYZ, D65, Y of white = 1
xyz_to_rgb                 XYZ, D65                            **linear** RGB (not clipped)
rgb_to_lab                 **sRGB** (linearised inside)        L in [0, 100], a, b ~ [-128, 127]
lab_to_rgb(lab, clip=T)    CIELAB (D65, 2 degree observer)     sRGB, clipped to [0, 1] by default
rgb_to_oklab               **sRGB** (linearised inside)        L in [0, 1], a, b ~ [-0.4, 0.4]
oklab_to_rgb(x, clip=T)    OKLab                               sRGB, clipped to [0, 1] by default
linear_rgb_to_oklab        linear RGB                          OKLab
oklab_to_linear_rgb        OKLab                               linear RGB (not clipped)
rgb_to_hsv                 RGB [0, 1]                          (H, S, V): H in radians [0, 2pi)
hsv_to_rgb                 (H, S, V), H in radians             RGB [0, 1]
rgb_to_hls                 RGB [0, 1]                          (H, L, S): H in radians [0, 2pi)
hls_to_rgb                 (H, L, S), H in radians             RGB [0, 1]
luminance                  linear RGB                          Y = Rec.709 weights, (*, 1, H, W)
delta_e_2000               two CIELAB images                   Delta E 00, (*, H, W)
delta_e_2000_rgb           two sRGB images                     Delta E 00, (*, H, W)
=========================  ==================================  ==================================

Conventions, checked in ``tests/test_color.py``:

* kornia's ``rgb_to_xyz`` is only the matrix: it expects *linear* RGB. kornia's ``rgb_to_lab``
  expects *gamma-encoded* sRGB and applies the sRGB curve itself; it matches
  ``skimage.color.rgb2lab`` (same matrix, D65 white (0.95047, 1, 1.08883) and CIE constants).
* Hue, in both HSV and HLS, is in **radians in [0, 2*pi)**, not degrees and not [0, 1]
  (``torch.rad2deg`` gives degrees, as used by :mod:`prefstyle.imaging.params`). Grey pixels
  have hue 0. Note the HLS channel order is (H, L, S). The conversions are algebraic: pass
  gamma-encoded sRGB to get the usual editor values.
* OKLab is Björn Ottosson's (2020), defined on linear sRGB (https://bottosson.github.io/posts/oklab/).
"""

from __future__ import annotations

import math

import torch
from kornia.color import (
    hls_to_rgb,
    hsv_to_rgb,
    lab_to_rgb,
    rgb_to_hls,
    rgb_to_hsv,
    rgb_to_lab,
    rgb_to_xyz,
    xyz_to_rgb,
)
from kornia.color import linear_rgb_to_rgb as linear_to_srgb
from kornia.color import rgb_to_linear_rgb as srgb_to_linear

__all__ = [
    "delta_e_2000",
    "delta_e_2000_rgb",
    "delta_e_2000_values",
    "hls_to_rgb",
    "hsv_to_rgb",
    "lab_to_rgb",
    "linear_rgb_to_oklab",
    "linear_to_srgb",
    "luminance",
    "mean_delta_e_2000_cross",
    "oklab_to_linear_rgb",
    "oklab_to_rgb",
    "rgb_to_hls",
    "rgb_to_hsv",
    "rgb_to_lab",
    "rgb_to_oklab",
    "rgb_to_xyz",
    "srgb_to_linear",
    "xyz_to_rgb",
]

# Rec.709 / sRGB luminance weights (the Y row of the linear sRGB -> XYZ matrix).
REC709_LUMA = (0.2126, 0.7152, 0.0722)

# OKLab matrices, from Ottosson's reference implementation.
_LINEAR_SRGB_TO_LMS = (
    (0.4122214708, 0.5363325363, 0.0514459929),
    (0.2119034982, 0.6806995451, 0.1073969566),
    (0.0883024619, 0.2817188376, 0.6299787005),
)
_LMS_TO_OKLAB = (
    (0.2104542553, 0.7936177850, -0.0040720468),
    (1.9779984951, -2.4285922050, 0.4505937099),
    (0.0259040371, 0.7827717662, -0.8086757660),
)
_OKLAB_TO_LMS = (
    (1.0, 0.3963377774, 0.2158037573),
    (1.0, -0.1055613458, -0.0638541728),
    (1.0, -0.0894841775, -1.2914855480),
)
_LMS_TO_LINEAR_SRGB = (
    (4.0767416621, -3.3077115913, 0.2309699292),
    (-1.2684380046, 2.6097574011, -0.3413193965),
    (-0.0041960863, -0.7034186147, 1.7076147010),
)

_CBRT_EPS = 1e-9  # below this |x|, cbrt is replaced by the chord through 0 (finite gradient)


def _check_image(image: torch.Tensor, name: str = "image") -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image)}")
    if image.ndim < 3 or image.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (*, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got {image.dtype}")


def _matmul3(matrix: tuple[tuple[float, ...], ...], image: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(matrix, dtype=image.dtype, device=image.device)
    return torch.einsum("ij,...jhw->...ihw", m, image)


def _cbrt(x: torch.Tensor) -> torch.Tensor:
    """Signed cube root; linear for |x| < eps so the gradient is finite at 0 (black)."""
    big = x.abs() > _CBRT_EPS
    root = x.abs().clamp_min(_CBRT_EPS).pow(1.0 / 3.0) * torch.sign(x)
    return torch.where(big, root, x * _CBRT_EPS ** (-2.0 / 3.0))


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) whose gradient is 0 (not inf/NaN) where x <= 0."""
    pos = x > 0
    return torch.where(pos, torch.where(pos, x, torch.ones_like(x)).sqrt(), torch.zeros_like(x))


def _hue(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """atan2(b, a) in [0, 2pi), 0 where the chroma c is 0 (atan2 guarded there for the gradient)."""
    zero = c == 0
    h = torch.atan2(torch.where(zero, torch.zeros_like(b), b), torch.where(zero, torch.ones_like(a), a))
    return torch.where(h < 0, h + 2 * math.pi, h)


def luminance(rgb_linear: torch.Tensor) -> torch.Tensor:
    """Relative luminance Y of *linear* RGB, Rec.709/sRGB weights: ``(*, 3, H, W) -> (*, 1, H, W)``."""
    _check_image(rgb_linear, "rgb_linear")
    w = torch.tensor(REC709_LUMA, dtype=rgb_linear.dtype, device=rgb_linear.device)
    return (rgb_linear * w[:, None, None]).sum(dim=-3, keepdim=True)


def linear_rgb_to_oklab(rgb_linear: torch.Tensor) -> torch.Tensor:
    """Linear sRGB -> OKLab (L in [0, 1] for in-gamut colours, white = (1, 0, 0))."""
    _check_image(rgb_linear, "rgb_linear")
    return _matmul3(_LMS_TO_OKLAB, _cbrt(_matmul3(_LINEAR_SRGB_TO_LMS, rgb_linear)))


def oklab_to_linear_rgb(oklab: torch.Tensor) -> torch.Tensor:
    """OKLab -> linear sRGB (not clipped: out-of-gamut colours give values outside [0, 1])."""
    _check_image(oklab, "oklab")
    return _matmul3(_LMS_TO_LINEAR_SRGB, _matmul3(_OKLAB_TO_LMS, oklab) ** 3)


def rgb_to_oklab(rgb: torch.Tensor) -> torch.Tensor:
    """Gamma-encoded sRGB in [0, 1] -> OKLab (same input convention as :func:`rgb_to_lab`)."""
    return linear_rgb_to_oklab(srgb_to_linear(rgb))


def oklab_to_rgb(oklab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """OKLab -> gamma-encoded sRGB, clipped to [0, 1] unless ``clip=False`` (as :func:`lab_to_rgb`)."""
    rgb = linear_to_srgb(oklab_to_linear_rgb(oklab))
    return rgb.clamp(0.0, 1.0) if clip else rgb


def delta_e_2000(
    lab1: torch.Tensor, lab2: torch.Tensor, kL: float = 1.0, kC: float = 1.0, kH: float = 1.0
) -> torch.Tensor:
    """CIEDE2000 colour difference between two CIELAB images ``(*, 3, H, W)`` -> ``(*, H, W)``.

    Follows Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation
    notes, supplementary test data, and mathematical observations", with their conventions:
    hue is 0 where a' = b = 0, and the hue difference/mean are taken as 0 / h1' + h2' where
    C1' C2' = 0. The hue difference Delta h' is computed as atan2(cross, dot) of the two (a', b)
    vectors, which equals Sharma's three-branch rule without branching on a rounded difference
    of two angles (their pairs 10 and 14 have |h2' - h1'| = 180 exactly, where the rule picks
    h2' - h1'; so do we). The mean hue is then h1' + Delta h' / 2 (mod 360), again equal to the
    paper's rule.

    Differentiable with finite gradients everywhere: square roots, atan2 at a' = b = 0 and the
    final norm use guarded versions (gradient 0 at those points, e.g. at identical inputs).
    The formula itself is discontinuous where the two hues are exactly opposite.
    float16/bfloat16 inputs are computed in float32 (C^7 overflows in half precision).
    """
    _check_image(lab1, "lab1")
    _check_image(lab2, "lab2")
    if lab1.dtype in (torch.float16, torch.bfloat16) or lab2.dtype in (torch.float16, torch.bfloat16):
        out_dtype = torch.promote_types(lab1.dtype, lab2.dtype)
        return delta_e_2000(lab1.float(), lab2.float(), kL, kC, kH).to(out_dtype)

    L1, a1, b1 = lab1.unbind(dim=-3)
    L2, a2, b2 = lab2.unbind(dim=-3)
    pow25_7 = 25.0**7

    # a' = (1 + G) a, with G from the mean chroma of the pair.
    c_mean7 = (0.5 * (_safe_sqrt(a1**2 + b1**2) + _safe_sqrt(a2**2 + b2**2))) ** 7
    g = 0.5 * (1.0 - _safe_sqrt(c_mean7 / (c_mean7 + pow25_7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = _safe_sqrt(a1p**2 + b1**2), _safe_sqrt(a2p**2 + b2**2)
    cc = c1p * c2p
    chromatic = cc > 0

    h1p, h2p = _hue(a1p, b1, c1p), _hue(a2p, b2, c2p)

    # Signed hue difference in (-pi, pi], 0 if either colour is achromatic.
    cross = torch.where(chromatic, a1p * b2 - b1 * a2p, torch.zeros_like(cc))
    dot = torch.where(chromatic, a1p * a2p + b1 * b2, torch.ones_like(cc))
    dhp = torch.atan2(cross, dot)
    # Exactly opposite hues (the paper's |h2' - h1'| = 180 case, pairs 10 and 14): h2' - h1'.
    opposite = (cross == 0) & (dot < 0)
    dhp = torch.where(opposite, torch.where(h2p > h1p, dhp.abs(), -dhp.abs()), dhp)
    dHp = 2.0 * _safe_sqrt(cc) * torch.sin(0.5 * dhp)

    # Mean hue in [0, 2pi); the plain sum when either colour is achromatic.
    hp_mean = torch.where(chromatic, torch.remainder(h1p + 0.5 * dhp, 2 * math.pi), h1p + h2p)

    dLp, dCp = L2 - L1, c2p - c1p
    lp_mean50sq = (0.5 * (L1 + L2) - 50.0) ** 2
    cp_mean = 0.5 * (c1p + c2p)

    t = (
        1.0
        - 0.17 * torch.cos(hp_mean - math.radians(30))
        + 0.24 * torch.cos(2 * hp_mean)
        + 0.32 * torch.cos(3 * hp_mean + math.radians(6))
        - 0.20 * torch.cos(4 * hp_mean - math.radians(63))
    )
    d_theta = math.radians(30) * torch.exp(-(((torch.rad2deg(hp_mean) - 275.0) / 25.0) ** 2))
    cp_mean7 = cp_mean**7
    r_c = 2.0 * _safe_sqrt(cp_mean7 / (cp_mean7 + pow25_7))
    s_l = 1.0 + 0.015 * lp_mean50sq / torch.sqrt(20.0 + lp_mean50sq)
    s_c = 1.0 + 0.045 * cp_mean
    s_h = 1.0 + 0.015 * cp_mean * t
    r_t = -torch.sin(2 * d_theta) * r_c

    l_term, c_term, h_term = dLp / (kL * s_l), dCp / (kC * s_c), dHp / (kH * s_h)
    return _safe_sqrt(l_term**2 + c_term**2 + h_term**2 + r_t * c_term * h_term)


def delta_e_2000_values(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """:func:`delta_e_2000` (kL = kC = kH = 1) for values only, no gradient: the same formula with the
    gradient guards left out, about a third faster. ``(*, 3, H, W)`` CIELAB -> ``(*, H, W)``.

    Where a colour is achromatic (a' = b = 0) its cross and dot products with the other are 0 and
    ``atan2(0, 0) = 0``, which gives the guarded function's values without its ``where`` branches.
    """
    with torch.no_grad():
        L1, a1, b1 = lab1.unbind(dim=-3)
        L2, a2, b2 = lab2.unbind(dim=-3)
        pow25_7 = 25.0**7
        c_mean7 = (0.5 * ((a1 * a1 + b1 * b1).sqrt() + (a2 * a2 + b2 * b2).sqrt())) ** 7
        g1 = 1.5 - 0.5 * (c_mean7 / (c_mean7 + pow25_7)).sqrt()  # 1 + G
        a1p, a2p = g1 * a1, g1 * a2
        c1p, c2p = (a1p * a1p + b1 * b1).sqrt(), (a2p * a2p + b2 * b2).sqrt()
        h1p, h2p = torch.atan2(b1, a1p), torch.atan2(b2, a2p)
        h1p = (h1p + (h1p < 0) * (2 * math.pi)).masked_fill_(c1p == 0, 0.0)  # atan2(-0, -0) is -pi
        h2p = (h2p + (h2p < 0) * (2 * math.pi)).masked_fill_(c2p == 0, 0.0)
        cross, dot = a1p * b2 - b1 * a2p, a1p * a2p + b1 * b2
        dhp = torch.atan2(cross, dot)
        opposite = (cross == 0) & (dot < 0)
        if bool(opposite.any()):
            dhp = torch.where(opposite, torch.where(h2p > h1p, dhp.abs(), -dhp.abs()), dhp)
        cc = c1p * c2p
        dHp = 2.0 * cc.sqrt() * torch.sin(0.5 * dhp)
        hp_mean = torch.where(cc > 0, torch.remainder(h1p + 0.5 * dhp, 2 * math.pi), h1p + h2p)
        dLp, dCp = L2 - L1, c2p - c1p
        lp_mean50sq = (0.5 * (L1 + L2) - 50.0) ** 2
        cp_mean = 0.5 * (c1p + c2p)
        t = (
            1.0
            - 0.17 * torch.cos(hp_mean - math.radians(30))
            + 0.24 * torch.cos(2 * hp_mean)
            + 0.32 * torch.cos(3 * hp_mean + math.radians(6))
            - 0.20 * torch.cos(4 * hp_mean - math.radians(63))
        )
        d_theta = math.radians(30) * torch.exp(-(((hp_mean * (180.0 / math.pi) - 275.0) / 25.0) ** 2))
        cp_mean7 = cp_mean**7
        r_c = 2.0 * (cp_mean7 / (cp_mean7 + pow25_7)).sqrt()
        s_l = 1.0 + 0.015 * lp_mean50sq / (20.0 + lp_mean50sq).sqrt()
        l_term, c_term, h_term = dLp / s_l, dCp / (1.0 + 0.045 * cp_mean), dHp / (1.0 + 0.015 * cp_mean * t)
        r_t = -torch.sin(2 * d_theta) * r_c
        return (l_term * l_term + c_term * c_term + h_term * h_term + r_t * c_term * h_term).clamp_min(0).sqrt()


def mean_delta_e_2000_cross(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 of every sample set in ``lab1`` against every one in ``lab2``, values only.

    ``lab1``: ``(K,3,h,w)`` CIELAB samples (or the same as channel planes ``(3,K,P)``, ``P = h·w``:
    pass those when ``lab1`` is reused, it saves a copy); ``lab2``: ``(M,3,h,w)``. Returns ``(M,K)``,
    the mean over the ``P`` sample positions of :func:`delta_e_2000_values` between matching samples.
    One set of ``lab2`` at a time against contiguous ``(K,P)`` planes: about twice as fast as one
    broadcast over ``(M,K,3,h,w)`` views, whose channel strides make every step gather.
    """
    planes = lab1 if lab1.ndim == 3 else lab1.flatten(2).transpose(0, 1).contiguous()  # (3,K,P)
    other = lab2.flatten(2)  # (M,3,P)
    if other.shape[1:] != (3, planes.shape[2]):
        raise ValueError(f"sample sets differ: {tuple(lab1.shape)} against {tuple(lab2.shape)}")
    return (
        torch.stack([delta_e_2000_values(planes, o[:, None]).mean(-1) for o in other])
        if len(other)
        else (planes.new_zeros(0, planes.shape[1]))
    )


def delta_e_2000_rgb(
    rgb1: torch.Tensor, rgb2: torch.Tensor, kL: float = 1.0, kC: float = 1.0, kH: float = 1.0
) -> torch.Tensor:
    """CIEDE2000 between two gamma-encoded sRGB images in [0, 1]: ``(*, 3, H, W) -> (*, H, W)``."""
    return delta_e_2000(rgb_to_lab(rgb1), rgb_to_lab(rgb2), kL, kC, kH)
