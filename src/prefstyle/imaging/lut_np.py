"""3D LUT maths in numpy alone (no torch): what ``prefstyle enhance`` needs for a LUT profile.

Importing torch makes a process about 600 MB resident (docs/BENCHMARKS.md, issue 19), so the
8-bit LUT path of ``enhance`` uses these numpy mirrors of the torch functions instead:

* :func:`metering_thumbnail` / :func:`metered_ev` - the photo's metered EV, as
  :func:`prefstyle.models.slider_taste.metered_ev` computes it from the thumbnail
  :func:`lut_input_view` gives it (``(H,W,3)`` uint8 -> float EV in [-3, 3]);
* :func:`identity_grid`, :func:`exposed`, :func:`sample_table` - the identity LUT's nodes, an
  exposure in linear light (:func:`prefstyle.imaging.ops.exposure`), a trilinear look-up
  (:func:`prefstyle.models.look_space.sample_tables`);
* :func:`lut_input_view` - the strided view of an 8-bit photo a LUT model is shown;
* :func:`blend_identity` - the strength blend of a LUT with the identity;
* :func:`area_downsample` - ``F.interpolate(mode="area")`` of a ``(C,H,W)`` float32 image as two
  matrix products per channel (metering here; the sample colours of :mod:`prefstyle.imaging.color_np`);
* :func:`lut_filtered_image` - an ``(H,W,3)`` uint8 photo through a ``(3,S,S,S)`` LUT by Pillow's
  ``Color3DLUT``, in strips (also the back end of :func:`prefstyle.models.render.lut_filtered_image`).

LUTs are ``(3,S,S,S)`` float32, ``lut[c, b, g, r]`` (red varies fastest), as in
:mod:`prefstyle.imaging.lut`. The mirrors agree with the torch functions to float32 rounding
(``tests/test_enhance_torch_free.py``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    "MAX_ADAPT_EV",
    "METER_SIDE",
    "METER_STRIDE_DIVISOR",
    "MID_GREY",
    "MIN_THUMBNAIL_SIDE",
    "area_downsample",
    "area_downsample_u8",
    "blend_identity",
    "exposed",
    "identity_grid",
    "lut_filtered_image",
    "lut_input_view",
    "metered_ev",
    "metering_thumbnail",
    "sample_table",
]

# Coupled to prefstyle.models.slider_taste (_METER_SIDE, MID_GREY, MAX_ADAPT_EV) and
# prefstyle.imaging.color.REC709_LUMA, which import torch; tests/test_enhance_torch_free.py
# checks that the values agree.
#: side of the area-averaged luminance image a photo is metered on
METER_SIDE = 64
#: the linear luminance a metered photo is exposed to
MID_GREY = 0.18
#: the metered EV is clamped to ``±MAX_ADAPT_EV``
MAX_ADAPT_EV = 3.0
_LUMA = (np.float32(0.2126), np.float32(0.7152), np.float32(0.0722))
_F = np.float32


# The powers are taken in float64 and rounded: torch's float32 pow is not correctly rounded
# either, but this way 1-2 % of the values differ from its by one ulp instead of about 20 %
# (the per-photo LUT then matches the model's more often to the bit).


def _pow(base: np.ndarray, exponent: float) -> np.ndarray:
    return np.power(base.astype(np.float64), np.float64(_F(exponent))).astype(np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded ``x`` (float32, any shape, [0,1]) -> linear light, float32."""
    hi = _pow((np.maximum(x, _F(0.04045)) + _F(0.055)) / _F(1.055), 2.4)
    return np.where(x > _F(0.04045), hi, x / _F(12.92)).astype(np.float32, copy=False)


def linear_to_srgb(y: np.ndarray) -> np.ndarray:
    """Linear ``y`` (float32) -> sRGB-encoded, float32 (values above 1 stay above 1)."""
    hi = _F(1.055) * _pow(np.maximum(y, _F(0.0031308)), 1.0 / 2.4) - _F(0.055)
    return np.where(y > _F(0.0031308), hi, y * _F(12.92)).astype(np.float32, copy=False)


@functools.cache
def _u8_to_linear() -> np.ndarray:
    """``(256,)`` float32: :func:`srgb_to_linear` of every 8-bit code ``k / 255`` (a table look-up
    gives the same values as the formula on the photo, about 40x faster)."""
    return srgb_to_linear(np.multiply(np.arange(256, dtype=np.uint8), _F(1.0 / 255.0), dtype=np.float32))


#: The metering of the LUT models (:func:`metered_ev`) reads every
#: ``long_side // METER_STRIDE_DIVISOR``-th pixel of the photo.
METER_STRIDE_DIVISOR = 4 * METER_SIDE
#: Thumbnails shown to ``model.luts`` keep at least this many pixels on their long side.
MIN_THUMBNAIL_SIDE = 1024


def lut_input_view(u8: np.ndarray, metered: bool) -> np.ndarray:
    """Every ``s``-th pixel of ``u8`` ``(H,W,3)``: the thumbnail ``model.luts`` is shown.

    The LUT models that only meter the photo's brightness (``metered``: sliders, looks, which
    carry :func:`metered_ev`'s ``meter`` setting) read every
    ``q = long_side // METER_STRIDE_DIVISOR``-th pixel; they get exactly those pixels
    (``s = q``), so their EV, and the rendering, are the same to the bit. Other models (PieNet,
    which resizes the photo for its network) get the largest ``s`` dividing ``q`` that keeps
    the long side at least :data:`MIN_THUMBNAIL_SIDE`, or the full photo when none does.
    """
    side = max(u8.shape[:2])
    q = max(1, side // METER_STRIDE_DIVISOR)
    if metered:
        s = q
    else:
        s = max(d for d in range(1, q + 1) if q % d == 0 and (d == 1 or side // d >= MIN_THUMBNAIL_SIDE))
    return u8 if s == 1 else np.ascontiguousarray(u8[::s, ::s])


def metering_thumbnail(u8: np.ndarray) -> np.ndarray:
    """Every ``max(1, long_side // (4·METER_SIDE))``-th pixel of ``u8`` ``(H,W,3)`` uint8: the pixels
    :func:`metered_ev` reads (:func:`lut_input_view` of a metered model)."""
    return lut_input_view(u8, metered=True)


def _cell_bounds(n: int, m: int, offset: int = 0, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` of the cells ``offset, offset + step, ...`` of torch's ``adaptive_avg_pool`` of ``n``
    inputs to ``m`` (cell ``i`` is ``[floor(i·n/m), ceil((i+1)·n/m))``)."""
    i = np.arange(offset, m, step)
    return (i * n) // m, -((-(i + 1) * n) // m)


def _cells(n: int, m: int, offset: int = 0, step: int = 1) -> np.ndarray:
    """``(len, n)`` float64 0/1 rows: which of ``n`` inputs fall in the cells ``offset, offset + step, ...``
    of torch's ``adaptive_avg_pool`` to ``m`` (:func:`_cell_bounds`)."""
    lo, hi = _cell_bounds(n, m, offset, step)
    j = np.arange(n)
    return ((j >= lo[:, None]) & (j < hi[:, None])).astype(np.float64)


def area_downsample(img: np.ndarray, oh: int, ow: int, step: int = 1, offset: int = 0) -> np.ndarray:
    """``(C, H, W)`` float32 averaged over torch's ``interpolate(size=(oh, ow), mode="area")`` cells:
    ``(C, oh, ow)`` float32, or only the cells ``offset::step`` of it along both axes.

    Two matrix products per channel, the cell sums in float64, rounded once: torch sums in float32,
    so the two agree to a float32 ulp or so. Fast for the thumbnails it serves (metering, sample
    colours: 0.3 ms at 256² -> 24²); for a whole 8-bit photo use :func:`area_downsample_u8`.
    """
    c, h, w = img.shape
    rows, cols = _cells(h, oh, offset, step), _cells(w, ow, offset, step).T
    count = rows.sum(1)[:, None] * cols.sum(0)[None, :]
    out = np.empty((c, rows.shape[0], cols.shape[1]), dtype=np.float32)
    for k in range(c):  # one channel at a time in float64: a big photo's copy stays one plane
        out[k] = (rows @ img[k].astype(np.float64) @ cols) / count
    return out


def _cell_sums(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int) -> np.ndarray:
    """Sums of ``x`` over ``[lo[i], hi[i])`` along ``axis`` (int64): one ``reduceat`` over the segments
    between consecutive cell edges, then differences of the segments' prefix sums (cells may overlap)."""
    n = x.shape[axis]
    edges = np.unique(np.concatenate([lo, hi]))
    starts = edges[edges < n]
    seg = np.add.reduceat(x, starts, axis=axis, dtype=np.int32 if x.dtype == np.uint8 else np.int64).astype(np.int64)
    shape = list(seg.shape)
    shape[axis] = 1
    prefix = np.concatenate([np.zeros(shape, dtype=np.int64), np.cumsum(seg, axis=axis)], axis=axis)
    where = np.append(starts, n)
    return np.take(prefix, np.searchsorted(where, hi), axis=axis) - np.take(
        prefix, np.searchsorted(where, lo), axis=axis
    )


def area_downsample_u8(u8: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """:func:`area_downsample` of an ``(H, W, 3)`` uint8 photo read as float32 in [0, 1]: ``(3, oh, ow)``
    float32. The cell sums are exact (integer sums of the codes, no float copy of the photo: a
    12 MP photo in about 0.15 s), divided once."""
    h, w, _ = u8.shape
    r0, r1 = _cell_bounds(h, oh)
    c0, c1 = _cell_bounds(w, ow)
    count = ((r1 - r0)[:, None] * (c1 - c0)[None, :]).astype(np.float64) * 255.0
    out = np.empty((3, oh, ow), dtype=np.float32)
    for k in range(3):  # a contiguous plane at a time: numpy's reductions over strided channels are slow
        plane = np.ascontiguousarray(u8[:, :, k])
        out[k] = _cell_sums(_cell_sums(plane, r0, r1, axis=0), c0, c1, axis=1) / count
    return out


def metered_ev(u8: np.ndarray, meter: str = "mean") -> float:
    """The EV that brings the photo ``u8`` ``(H,W,3)`` uint8 to mid-grey, ``log2(MID_GREY / Ȳ)`` in
    ``[-MAX_ADAPT_EV, MAX_ADAPT_EV]``: ``Ȳ`` the linear luminance of every few pixels, area-averaged
    to ``METER_SIDE`` px, then averaged (``meter="mean"``) or log-averaged (``"log_mean"``).

    Give it the photo or its :func:`metering_thumbnail` (the same pixels are read).
    """
    if meter not in ("mean", "log_mean"):
        raise ValueError(f"meter must be 'mean' or 'log_mean', got {meter!r}")
    u8 = metering_thumbnail(u8)
    step = max(1, max(u8.shape[:2]) // (4 * METER_SIDE))
    lin = _u8_to_linear()[u8[::step, ::step]]  # srgb_to_linear(u8 / 255), as decode.rgb8_to_float scales
    y = lin[..., 0] * _LUMA[0] + lin[..., 1] * _LUMA[1] + lin[..., 2] * _LUMA[2]
    h, w = y.shape
    s = METER_SIDE / max(h, w)
    if s < 1:
        y = area_downsample(y[None], max(1, round(h * s)), max(1, round(w * s)))[0]
    y = np.maximum(y, _F(1e-4)).ravel()
    ybar = y.mean(dtype=np.float32) if meter == "mean" else np.exp(np.log(y).mean(dtype=np.float32))
    ev = np.log2(_F(MID_GREY) / ybar)
    return float(np.clip(ev, -MAX_ADAPT_EV, MAX_ADAPT_EV))


def identity_grid(size: int) -> np.ndarray:
    """The nodes of the identity ``size``³ LUT, ``(3, S³)`` float32, red fastest (``k/(S−1)``)."""
    v = (np.arange(size, dtype=np.float64) / (size - 1)).astype(np.float32)
    b, g, r = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()])


def exposed(x: np.ndarray, ev: float) -> np.ndarray:
    """Colours ``x`` ``(3,...)`` sRGB [0,1] float32 exposed by ``ev`` stops in linear light, clipped to [0,1]."""
    if ev == 0.0:
        return x
    gain = _F(np.exp(np.float64(_F(math.log(2.0)) * _F(ev))))  # the float32 product, as torch forms it
    return np.clip(linear_to_srgb(srgb_to_linear(x) * gain), 0.0, 1.0).astype(np.float32, copy=False)


def sample_table(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The ``(3,S,S,S)`` ``table`` looked up (trilinear) at colours ``x`` ``(3,P)`` (clamped to [0,1]): ``(3,P)``."""
    s = table.shape[-1]
    u = np.clip(x, 0.0, 1.0).astype(np.float32) * _F(s - 1)
    i0 = np.minimum(np.floor(u), s - 2).astype(np.int64)
    f = (u - i0).astype(np.float32)
    flat = table.reshape(3, -1).astype(np.float32, copy=False)
    out = np.zeros(x.shape, dtype=np.float32)
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                idx = (i0[2] + db) * s * s + (i0[1] + dg) * s + (i0[0] + dr)
                wgt = (f[0] if dr else 1 - f[0]) * (f[1] if dg else 1 - f[1]) * (f[2] if db else 1 - f[2])
                out += flat[:, idx] * wgt
    return out


def blend_identity(lut: np.ndarray, strength: float) -> np.ndarray:
    """``I + strength·(lut − I)`` for a ``(3,S,S,S)`` LUT (``lut`` itself at strength 1)."""
    if strength == 1.0:
        return lut
    s = lut.shape[-1]
    ident = identity_grid(s).reshape(3, s, s, s)
    return (ident + _F(strength) * (lut - ident)).astype(np.float32, copy=False)


def lut_filtered_image(u8: np.ndarray, lut: np.ndarray, threads: int = 1) -> Image.Image:
    """``(H,W,3)`` uint8 through the ``(3,S,S,S)`` float LUT (clamped to [0,1]) by Pillow's
    ``Color3DLUT``, as a Pillow ``RGB`` image, in ``threads`` threads (Pillow releases the GIL).

    Photos of a megapixel or more are filtered in ``4 · threads`` strips, so that the copies in
    flight (a Pillow copy of each strip and its filtered copy) stay small; the pixels are those
    of one pass over the whole photo.
    """
    from concurrent.futures import ThreadPoolExecutor

    size = lut.shape[-1]
    table = np.clip(lut.astype(np.float32, copy=False), 0.0, 1.0).transpose(1, 2, 3, 0).reshape(-1)
    flt = ImageFilter.Color3DLUT(size, np.ascontiguousarray(table))
    threads = max(1, int(threads))
    h = u8.shape[0]
    if u8.shape[0] * u8.shape[1] < (1 << 20):
        return Image.fromarray(np.ascontiguousarray(u8), "RGB").filter(flt)
    out = Image.new("RGB", (u8.shape[1], h))
    strips = min(h, 4 * threads)
    bounds = np.linspace(0, h, strips + 1).astype(int)

    def strip(i: int) -> None:
        a, b = int(bounds[i]), int(bounds[i + 1])
        out.paste(Image.fromarray(np.ascontiguousarray(u8[a:b]), "RGB").filter(flt), (0, a))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(strip, range(strips)))
    return out
