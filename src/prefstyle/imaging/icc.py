"""Colour management for :mod:`prefstyle.imaging.decode`: embedded ICC profiles read, compared with
sRGB, and applied (the **Colour** rules of :mod:`prefstyle.imaging.io`'s docstring).

* :func:`srgb_icc_profile` - LittleCMS's sRGB profile, what outputs embed;
* ``_icc_info`` - what a profile is (colour space, colorants, tone curves, sRGB or not);
* ``_plan_conversion`` - how a decoded array is brought to sRGB: ``cms8`` (8-bit RGB through
  LittleCMS, :func:`_apply_cms_uint8`), ``matrix`` / ``grid`` / ``gray`` (16-bit and float, applied
  by ``decode._to_float`` row block by row block through :meth:`_Conversion.apply_rgb`).
"""

from __future__ import annotations

import functools
import io
import logging
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageCms

if TYPE_CHECKING:
    import torch

__all__ = ["srgb_icc_profile"]

log = logging.getLogger("prefstyle.imaging.io")


@functools.lru_cache(maxsize=1)
def srgb_icc_profile() -> bytes:
    """LittleCMS's sRGB profile (v4, matrix/TRC) as bytes, with a fixed date so outputs are reproducible."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    if data[84:100] == bytes(16):  # no profile ID (MD5) to keep in step with the date
        data[24:36] = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)
    return bytes(data)


class _Curve:
    """An ICC tone curve (``curv`` or ``para``): device value in [0, 1] -> linear in [0, 1]."""

    def __init__(self, kind: str, gamma: float = 1.0, table: np.ndarray | None = None, params: tuple = ()):
        self.kind = kind
        self.gamma = gamma
        self.table = table
        self.params = params

    def __call__(self, x: np.ndarray) -> np.ndarray:
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        x = np.clip(np.asarray(x, dtype=dtype), 0.0, 1.0)
        if self.kind == "identity":
            y = x
        elif self.kind == "gamma":
            y = np.power(x, dtype.type(self.gamma))
        elif self.kind == "table":
            t = self.table
            y = np.interp(x, np.linspace(0.0, 1.0, len(t)), t).astype(dtype, copy=False)
        else:
            y = self._para(x, dtype)
        return np.clip(y, 0.0, 1.0).astype(dtype, copy=False)

    @np.errstate(divide="ignore", invalid="ignore")
    def _para(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ftype, p = self.params
        g = p[0]

        def pw(v):
            return np.power(np.maximum(v, 0.0), g)

        if ftype == 0:
            return pw(x)
        a, b = p[1], p[2]
        lin = a * x + b
        if ftype == 1:
            return np.where(x >= -b / a, pw(lin), 0.0)
        if ftype == 2:
            c = p[3]
            return np.where(x >= -b / a, pw(lin) + c, c)
        c, d = p[3], p[4]
        if ftype == 3:
            return np.where(x >= d, pw(lin), c * x)
        e, f = p[5], p[6]
        return np.where(x >= d, pw(lin) + e, c * x + f)


_PARA_NPARAMS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


@dataclass(frozen=True)
class _IccInfo:
    valid: bool
    color_space: str = ""
    description: str = ""
    has_lut: bool = False
    matrix: np.ndarray | None = None  # columns: rXYZ, gXYZ, bXYZ (D50 PCS)
    curves: tuple[_Curve, ...] | None = None  # (r, g, b) or (k,)
    is_srgb: bool = False


def _srgb_eotf(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, np.power((np.maximum(x, 0.04045) + 0.055) / 1.055, 2.4))


def _parse_curve(data: bytes, off: int) -> _Curve:
    sig = data[off : off + 4]
    if sig == b"curv":
        (n,) = struct.unpack_from(">I", data, off + 8)
        if n == 0:
            return _Curve("identity")
        if n == 1:
            (g,) = struct.unpack_from(">H", data, off + 12)
            return _Curve("gamma", gamma=g / 256.0)
        table = np.frombuffer(data, dtype=">u2", count=n, offset=off + 12).astype(np.float64) / 65535.0
        return _Curve("table", table=table)
    if sig == b"para":
        (ftype,) = struct.unpack_from(">H", data, off + 8)
        if ftype not in _PARA_NPARAMS:
            raise ValueError(f"unknown parametric curve type {ftype}")
        n = _PARA_NPARAMS[ftype]
        params = tuple(v / 65536.0 for v in struct.unpack_from(f">{n}i", data, off + 12))
        return _Curve("para", params=(ftype, params))
    raise ValueError(f"unsupported curve type {sig!r}")


@functools.lru_cache(maxsize=64)
def _icc_info(data: bytes) -> _IccInfo:
    """What we need to know about an ICC profile; ``valid=False`` when LittleCMS cannot use it."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        description = (profile.profile.profile_description or "").strip()
        if len(data) < 132 or data[36:40] != b"acsp":
            raise ValueError("not an ICC profile")
        color_space = data[16:20].decode("latin-1").strip()
        pcs = data[20:24].decode("latin-1").strip()
        (count,) = struct.unpack_from(">I", data, 128)
        tags: dict[bytes, int] = {}
        for i in range(count):
            sig, off, size = struct.unpack_from(">4sII", data, 132 + 12 * i)
            if off + size <= len(data):
                tags[sig] = off
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, struct.error) as exc:
        log.debug("unusable ICC profile: %s", exc)
        return _IccInfo(valid=False)

    has_lut = any(t in tags for t in (b"A2B0", b"A2B1", b"A2B2", b"D2B0", b"D2B1", b"D2B2"))
    matrix = curves = None
    try:
        if (
            color_space == "RGB"
            and pcs == "XYZ"
            and all(t in tags for t in (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"))
        ):
            cols = []
            for t in (b"rXYZ", b"gXYZ", b"bXYZ"):
                off = tags[t]
                cols.append([v / 65536.0 for v in struct.unpack_from(">3i", data, off + 8)])
            matrix = np.array(cols, dtype=np.float64).T
            curves = tuple(_parse_curve(data, tags[t]) for t in (b"rTRC", b"gTRC", b"bTRC"))
        elif color_space == "GRAY" and b"kTRC" in tags:
            curves = (_parse_curve(data, tags[b"kTRC"]),)
    except (ValueError, struct.error) as exc:
        log.debug("ICC profile %r: cannot read its curves (%s)", description, exc)
        matrix = curves = None

    is_srgb = False
    if color_space == "RGB":
        if matrix is not None and not has_lut:
            is_srgb = _matches_srgb(matrix, curves)
        else:
            is_srgb = "srgb" in description.lower()
    elif color_space == "GRAY" and curves is not None:
        is_srgb = _curve_matches_srgb(curves[0])
    return _IccInfo(True, color_space, description, has_lut, matrix, curves, is_srgb)


_SRGB_TOL = 0.002


def _curve_matches_srgb(curve: _Curve) -> bool:
    x = np.linspace(0.0, 1.0, 1024)
    return float(np.max(np.abs(curve(x) - _srgb_eotf(x)))) < _SRGB_TOL


def _matches_srgb(matrix: np.ndarray, curves: Sequence[_Curve]) -> bool:
    ref = _srgb_matrix()
    return bool(np.max(np.abs(matrix - ref)) < _SRGB_TOL) and all(_curve_matches_srgb(c) for c in curves)


@functools.lru_cache(maxsize=1)
def _srgb_matrix() -> np.ndarray:
    """Colorants (D50) of LittleCMS's sRGB, read from the profile itself: linear sRGB -> XYZ."""
    data = srgb_icc_profile()
    (count,) = struct.unpack_from(">I", data, 128)
    tags = dict(struct.unpack_from(">4sI", data, 132 + 12 * i) for i in range(count))
    cols = [[v / 65536.0 for v in struct.unpack_from(">3i", data, tags[t] + 8)] for t in (b"rXYZ", b"gXYZ", b"bXYZ")]
    return np.array(cols, dtype=np.float64).T


@functools.lru_cache(maxsize=16)
def _cms_transform(icc: bytes, in_mode: str) -> ImageCms.ImageCmsTransform:
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    dst = ImageCms.ImageCmsProfile(io.BytesIO(srgb_icc_profile()))
    return ImageCms.buildTransform(src, dst, in_mode, "RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL)


class _Conversion:
    """How to bring pixels in a given profile to sRGB.

    ``kind``: ``cms8`` (8-bit RGB: LittleCMS through ImageCms), ``matrix`` (16-bit/float RGB,
    matrix/TRC profile: float, from the profile's own data), ``grid`` (16-bit/float RGB,
    LUT-based profile: a table sampled from LittleCMS), ``gray`` (a gray profile's kTRC, in
    float).
    """

    def __init__(self, kind: str, info: _IccInfo, icc: bytes):
        self.kind = kind
        self.icc = icc
        self.curves: tuple = ()  # per-channel curves applied first (by _to_float)
        if kind in ("matrix", "grid"):
            import torch  # only for float conversions: 8-bit files (cms8) are converted without it
        if kind == "matrix":
            self.curves = tuple(info.curves or ())
            self.matrix = torch.from_numpy(np.linalg.solve(_srgb_matrix(), info.matrix).astype(np.float32))
        elif kind == "gray":
            self.curves = (_GrayToSrgb(info.curves[0]),)
        elif kind == "grid":
            self.lut = _grid_lut(icc)
            wide = _icc_info(_wide_profile(0)).matrix  # its colorants as stored (s15Fixed16)
            self.matrix = torch.from_numpy(np.linalg.solve(_srgb_matrix(), wide).astype(np.float32))

    def apply_rgb(self, flat: torch.Tensor) -> torch.Tensor:
        """(3, N): linear source RGB (matrix) or encoded source RGB (grid) -> sRGB, new tensor."""
        import torch

        if self.kind == "grid":
            # grid_sample's (x, y, z) index the last, middle and first LUT axes: (b, g, r)
            grid = flat.flip(0).t().mul(2.0).sub_(1.0).reshape(1, 1, 1, -1, 3)
            res = torch.nn.functional.grid_sample(
                self.lut, grid, mode="bilinear", padding_mode="border", align_corners=True
            )
            flat = res.reshape(3, -1).clamp_(0.0, 1.0).pow_(_WIDE_GAMMA)
        return _srgb_encode_(torch.mm(self.matrix, flat).clamp_(0.0, 1.0))


class _GrayToSrgb:
    """A gray profile's kTRC followed by the sRGB encoding: gray code value -> sRGB gray."""

    def __init__(self, k: _Curve):
        self.k = k

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.k(x)
        enc = np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(np.maximum(y, 0.0031308), 1 / 2.4) - 0.055)
        return np.clip(enc, 0.0, 1.0).astype(y.dtype, copy=False)


@functools.lru_cache(maxsize=16)
def _luts(icc: bytes, kind: str, maxval: int) -> tuple[np.ndarray, ...]:
    """The per-channel curves of a ``matrix``/``gray`` conversion tabulated at every code value."""
    info = _icc_info(icc)
    curves = info.curves if kind == "matrix" else (_GrayToSrgb(info.curves[0]),)
    x = np.arange(maxval + 1, dtype=np.float64) / maxval
    return tuple(c(x).astype(np.float32) for c in curves)


_SRGB_KNEE = 0.0031308


def _srgb_encode_(y: torch.Tensor) -> torch.Tensor:
    """Linear [0, 1] -> sRGB-encoded; overwrites ``y``.

    ``min(12.92 y, 1.055 max(y, knee)^(1/2.4) - 0.055)`` is the piecewise sRGB curve: below
    the knee the power branch is pinned at its knee value, above it the line is the larger.
    """
    import torch

    t = y.clamp(min=_SRGB_KNEE).pow_(1 / 2.4).mul_(1.055).sub_(0.055)
    return torch.minimum(t, y.mul_(12.92), out=t)


_GRID_N = 52  # 8-bit nodes 0, 5, ..., 255
_WIDE_GAMMA = 2.2
_DITHER = 16  # grid values are averaged over this many offset samplings: about 4 extra bits
_WIDE_RANGE = 254 / 255  # encoded values sit in [o, o + 254/255], o < 1/255, so offsets never clip


def _wide_matrix() -> np.ndarray:
    """ProPhoto (ROMM) primaries with the ICC D50 white: linear wide RGB -> XYZ (D50)."""
    xy = np.array([[0.7347, 0.2653], [0.1596, 0.8404], [0.0366, 0.0001]])
    white = np.array([0.9642, 1.0, 0.8249])
    prim = np.stack([xy[:, 0] / xy[:, 1], np.ones(3), (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]])
    return prim * np.linalg.solve(prim, white)


def _s15(values: Iterable[float]) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


@functools.lru_cache(maxsize=_DITHER)
def _wide_profile(k: int = 0) -> bytes:
    """The grid's working space: ProPhoto primaries and a 2.2 gamma, encoding shifted by ``k``.

    Sampling a LUT profile straight into sRGB would put sRGB's gamut clipping and its steep
    curve near black between the grid nodes; in this wide, smooth space they are not there,
    and both are applied exactly, per pixel, afterwards. Variant ``k`` encodes a linear value
    ``Y`` as ``o_k + (254/255) Y^(1/2.2)`` with ``o_k = k / (_DITHER * 255)``: averaging the
    8-bit samplings of all variants gives each node about 12 bits (subtractive dither).
    """
    white = (0.9642, 1.0, 0.8249)
    m = _wide_matrix()
    o = k / (_DITHER * 255.0)
    d = np.linspace(0.0, 1.0, 4096)
    trc = np.power(np.clip((d - o) / _WIDE_RANGE, 0.0, 1.0), _WIDE_GAMMA)
    curve = b"curv\0\0\0\0" + struct.pack(">I", len(d)) + np.round(trc * 65535).astype(">u2").tobytes()
    text = b"prefstyle wide working space\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    tags = [(b"desc", desc), (b"wtpt", b"XYZ \0\0\0\0" + _s15(white))]
    tags += [(sig, b"XYZ \0\0\0\0" + _s15(m[:, i])) for i, sig in enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))]
    table = 4 + 12 * (len(tags) + 3)
    entries, body = b"", b""
    for sig, payload in tags:
        body += bytes(-len(body) % 4)
        entries += struct.pack(">4sII", sig, 128 + table + len(body), len(payload))
        body += payload
    body += bytes(-len(body) % 4)
    for sig in (b"rTRC", b"gTRC", b"bTRC"):  # the three curves share one copy
        entries += struct.pack(">4sII", sig, 128 + table + len(body), len(curve))
    body += curve + bytes(-len(curve) % 4)
    size = 128 + table + len(body)
    header = struct.pack(
        ">I4sI4s4s4s6H4s", size, b"\0\0\0\0", 0x02100000, b"mntr", b"RGB ", b"XYZ ", 2000, 1, 1, 0, 0, 0, b"acsp"
    )
    header += bytes(68 - len(header)) + _s15(white)
    header += bytes(128 - len(header))
    return header + struct.pack(">I", len(tags) + 3) + entries + body


@functools.lru_cache(maxsize=8)
def _grid_lut(icc: bytes) -> torch.Tensor:
    """(1, 3, N, N, N): the profile's colours at a regular 8-bit grid (r, g, b), wide-encoded."""
    import torch

    n = _GRID_N
    v = np.linspace(0, 255, n).round().astype(np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    src = Image.fromarray(np.stack([r, g, b], axis=-1).reshape(n * n, n, 3), "RGB")
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    acc = np.zeros((n * n, n, 3), dtype=np.float64)
    for k in range(_DITHER):
        transform = ImageCms.buildTransform(
            source,
            ImageCms.ImageCmsProfile(io.BytesIO(_wide_profile(k))),
            "RGB",
            "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
        acc += np.asarray(ImageCms.applyTransform(src, transform), dtype=np.float64) / 255.0 - k / (_DITHER * 255.0)
    enc = acc / _DITHER / _WIDE_RANGE  # rounding errors average out over the evenly spread offsets
    lut = torch.from_numpy(np.clip(enc, 0.0, 1.0).astype(np.float32).reshape(n, n, n, 3))
    return lut.permute(3, 0, 1, 2).unsqueeze(0).contiguous()  # (1, 3, r, g, b)


def _plan_conversion(icc: bytes, is_gray: bool, dtype: np.dtype, path: Path) -> _Conversion | None:
    info = _icc_info(icc)
    if not info.valid:
        log.warning("%s: embedded ICC profile is damaged; reading the pixels as sRGB", path)
        return None
    if info.is_srgb:
        return None
    if is_gray:
        if info.color_space == "GRAY" and info.curves is not None:
            return _Conversion("gray", info, icc)
        if info.color_space != "GRAY":
            log.warning("%s: %s ICC profile on a gray image; ignored", path, info.color_space)
        else:
            log.warning("%s: gray ICC profile without a usable curve; ignored", path)
        return None
    if info.color_space != "RGB":
        log.warning("%s: %s ICC profile on an RGB image; ignored", path, info.color_space or "unknown")
        return None
    if np.dtype(dtype) == np.uint8:
        return _Conversion("cms8", info, icc)
    if info.matrix is not None and not info.has_lut:
        return _Conversion("matrix", info, icc)
    return _Conversion("grid", info, icc)


def _apply_cms_uint8(arr: np.ndarray, order: Sequence[int], has_alpha: bool, icc: bytes) -> np.ndarray:
    rgb = arr[..., list(order[:3])] if tuple(order[:3]) != (0, 1, 2) or arr.shape[2] != 3 else arr
    im = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    out = np.asarray(ImageCms.applyTransform(im, _cms_transform(icc, "RGB")))
    if has_alpha:
        out = np.concatenate([out, arr[..., order[3] : order[3] + 1]], axis=2)
    return out
