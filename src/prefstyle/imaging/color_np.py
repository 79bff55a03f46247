"""CIELAB and CIEDE2000 in numpy alone (no torch), float32, as :mod:`prefstyle.imaging.color` computes them.

The torch-free ``prefstyle personalize`` (:mod:`prefstyle.models.look_personalize_np`) compares
thousands of candidate looks with the renditions a person saw; importing torch (and kornia,
where :func:`prefstyle.imaging.color.rgb_to_lab` comes from) costs more than that work, so
these mirror the torch functions:

* :func:`rgb_to_lab` - kornia's ``rgb_to_lab`` (sRGB curve, its D65 matrix and white, the CIE
  constants 0.008856 / 7.787): gamma-encoded sRGB ``(3, ...)`` float32 in [0, 1] -> CIELAB
  ``(3, ...)`` float32 (L in [0, 100]);
* :func:`delta_e_2000_values` - :func:`prefstyle.imaging.color.delta_e_2000_values` (Sharma, Wu &
  Dalal 2005, with its conventions for achromatic colours and exactly opposite hues): two CIELAB
  arrays ``(3, ...)``, broadcast against each other -> ``(...)`` float32;
* :func:`area_downsample` (from :mod:`prefstyle.imaging.lut_np`) - ``torch.nn.functional.interpolate(mode="area")``
  (the cells of ``adaptive_avg_pool2d``) of a ``(C, H, W)`` float32 image.

Channels are on axis 0 here (the torch functions have them at axis -3). Everything is float32
as in the torch code; the results agree with it to float32 rounding (transcendental functions
and summation order differ by an ulp or so; ``tests/test_personalize_torch_free.py``).
"""

from __future__ import annotations

import math

import numpy as np

from prefstyle.imaging.lut_np import area_downsample

__all__ = ["area_downsample", "delta_e_2000_values", "rgb_to_lab"]

_F = np.float32
#: kornia's linear sRGB -> XYZ matrix (D65) and reference white
_RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=np.float32,
)
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_POW25_7 = _F(25.0**7)
_TWO_PI = _F(2 * math.pi)


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB curve (float32, [0, 1]) through float32 ``exp2(2.4·log2(·))``: numpy's SIMD exp2 and
    log2 make it about 15x faster than a float64 ``pow`` (the colours of thousands of candidate looks
    are converted per scene); it differs from kornia's float32 ``pow`` by a few ulps."""
    hi = np.exp2(_F(2.4) * np.log2((np.maximum(x, _F(0.04045)) + _F(0.055)) / _F(1.055)))
    return np.where(x > _F(0.04045), hi, x / _F(12.92))


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Gamma-encoded sRGB ``(3, ...)`` in [0, 1] -> CIELAB ``(3, ...)`` float32 (D65, 2° observer)."""
    x = np.asarray(rgb, dtype=np.float32)
    shape = x.shape
    lin = _srgb_to_linear(x.reshape(3, -1))
    xyz = (_RGB_TO_XYZ @ lin) / _WHITE[:, None]
    # kornia: pow(max(t, 0.008856), 1/3) above the threshold, 7.787 t + 4/29 below (cbrt agrees to an ulp)
    f = np.where(xyz > _F(0.008856), np.cbrt(np.maximum(xyz, _F(0.008856))), _F(7.787) * xyz + _F(4.0 / 29.0))
    out = np.empty_like(f)
    out[0] = _F(116.0) * f[1] - _F(16.0)
    out[1] = _F(500.0) * (f[0] - f[1])
    out[2] = _F(200.0) * (f[1] - f[2])
    return out.reshape(shape)


def _pow7(x: np.ndarray) -> np.ndarray:
    x2 = x * x
    return x2 * x2 * x2 * x  # numpy's float32 power is 100x slower than this; they differ by an ulp or two


def _pick(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.where(mask, a, b)`` for finite ``a``, ``b`` (exact: one term is 0), without where's branches."""
    return mask * a + ~mask * b


def delta_e_2000_values(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 (kL = kC = kH = 1) between CIELAB ``lab1`` and ``lab2`` ``(3, ...)`` (broadcast): ``(...)`` float32.

    Finite inputs only (the torch function passes NaN through; here a NaN may spread).
    """
    L1, a1, b1 = (np.asarray(v, dtype=np.float32) for v in lab1)
    L2, a2, b2 = (np.asarray(v, dtype=np.float32) for v in lab2)
    c_mean7 = _pow7(_F(0.5) * (np.sqrt(a1 * a1 + b1 * b1) + np.sqrt(a2 * a2 + b2 * b2)))
    g1 = _F(1.5) - _F(0.5) * np.sqrt(c_mean7 / (c_mean7 + _POW25_7))  # 1 + G
    a1p, a2p = g1 * a1, g1 * a2
    c1p, c2p = np.sqrt(a1p * a1p + b1 * b1), np.sqrt(a2p * a2p + b2 * b2)
    h1p, h2p = np.arctan2(b1, a1p), np.arctan2(b2, a2p)
    h1p = (h1p + (h1p < 0) * _TWO_PI) * (c1p != 0)  # 0 where achromatic (atan2(-0, -0) is -pi)
    h2p = (h2p + (h2p < 0) * _TWO_PI) * (c2p != 0)
    cross, dot = a1p * b2 - b1 * a2p, a1p * a2p + b1 * b2
    dhp = np.arctan2(cross, dot)
    opposite = (cross == 0) & (dot < 0)
    if opposite.any():  # Sharma's |h2' - h1'| = 180 case: h2' - h1'
        dhp = np.where(opposite, np.where(h2p > h1p, np.abs(dhp), -np.abs(dhp)), dhp)
    cc = c1p * c2p
    dHp = _F(2.0) * np.sqrt(cc) * np.sin(_F(0.5) * dhp)
    # torch.remainder(h, 2 pi) for h in (-pi, 3 pi): fmod is exact, a negative result gets 2 pi added
    h = h1p + _F(0.5) * dhp
    h = h - (h >= _TWO_PI) * _TWO_PI
    h = h + (h < 0) * _TWO_PI
    hp_mean = _pick(cc > 0, h, h1p + h2p)
    dLp, dCp = L2 - L1, c2p - c1p
    lp_mean50sq = np.square(_F(0.5) * (L1 + L2) - _F(50.0))
    cp_mean = _F(0.5) * (c1p + c2p)
    t = (
        _F(1.0)
        - _F(0.17) * np.cos(hp_mean - _F(math.radians(30)))
        + _F(0.24) * np.cos(_F(2.0) * hp_mean)
        + _F(0.32) * np.cos(_F(3.0) * hp_mean + _F(math.radians(6)))
        - _F(0.20) * np.cos(_F(4.0) * hp_mean - _F(math.radians(63)))
    )
    d_theta = _F(math.radians(30)) * np.exp(-np.square((hp_mean * _F(180.0 / math.pi) - _F(275.0)) / _F(25.0)))
    cp_mean7 = _pow7(cp_mean)
    r_c = _F(2.0) * np.sqrt(cp_mean7 / (cp_mean7 + _POW25_7))
    s_l = _F(1.0) + _F(0.015) * lp_mean50sq / np.sqrt(_F(20.0) + lp_mean50sq)
    l_term = dLp / s_l
    c_term = dCp / (_F(1.0) + _F(0.045) * cp_mean)
    h_term = dHp / (_F(1.0) + _F(0.015) * cp_mean * t)
    r_t = -np.sin(_F(2.0) * d_theta) * r_c
    total = l_term * l_term + c_term * c_term + h_term * h_term + r_t * c_term * h_term
    return np.sqrt(total * (total > 0))
