"""3D and 1D colour lookup tables (LUTs) applied to image tensors.

Layout (project-wide convention)
--------------------------------
A 3D LUT is a tensor of shape ``(3, S, S, S)`` indexed ``lut[c, b, g, r]``: the entry at
node ``(r, g, b) = (i, j, k) / (S - 1)`` of the input cube holds the output RGB in
``lut[:, k, j, i]``. Red varies fastest in memory, exactly as in Adobe ``.cube`` files and
Hald CLUT images, and the layout is the one ``torch.nn.functional.grid_sample`` expects
for a 5-D input: with ``grid[..., :] = (x=r, y=g, z=b)`` mapped to ``[-1, 1]``,
``F.grid_sample(lut[None], grid, mode="bilinear", align_corners=True)`` applies the LUT.
A batch of LUTs, one per image, is ``(B, 3, S, S, S)``.

A 1D LUT is ``(3, S)`` (row ``c`` is the curve of channel ``c``); ``(S, 3)`` (the ``.cube``
data order) and batched ``(B, 3, S)`` are accepted too. A square ``(3, 3)`` table is read as
``(3, S)``.

Inputs outside the LUT's domain (``[domain_min, domain_max]``, per channel, ``[0, 1]`` by
default) are clamped to it, as in every ``.cube`` implementation. Output values are not
clamped (LUTs may produce values outside ``[0, 1]``).

Implementation notes (why it is fast on a 2-core CPU)
-----------------------------------------------------
* Everything runs on row chunks of the image (``chunk_pixels`` pixels at a time), so the
  temporaries stay a few megabytes whatever the image size, and are recycled by the
  allocator instead of being page-faulted in again for every operation.
* Trilinear: PyTorch's CPU ``grid_sample`` is vectorised for 2-D inputs only, and both the
  2-D and the 3-D CPU kernels parallelise over the batch dimension only. So on the CPU the
  LUT's blue slices are laid out as tiles of a 2-D texture (see :class:`_Tri2D`), sampled
  bilinearly in (r, g) on the two slices that bracket each pixel (a batch of 2, so both
  cores work), then blended linearly in blue. That is exactly trilinear interpolation,
  about twice as fast as the 3-D kernel, and differentiable w.r.t. the image and the LUT
  like ``grid_sample`` itself. It agrees with the 3-D ``grid_sample`` to float32 rounding
  of the texture coordinates (about 1e-6 of the output range per unit LUT slope); as that
  grows with the texture size, LUTs larger than ``_MAX_2D_TRICK_SIZE`` (and all non-CPU
  tensors) use the 3-D ``grid_sample`` directly.
* Tetrahedral: gather-based (``index_select`` with int32 indices on a ``(3, S**3)`` view of
  the LUT), branch-free selection of the tetrahedron with ``maximum``/``minimum``/``where``;
  differentiable w.r.t. the LUT (and the image, almost everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "DEFAULT_CHUNK_PIXELS",
    "LUT_METHODS",
    "apply_lut",
    "apply_lut_1d",
    "identity_lut",
    "identity_lut_1d",
    "lut_from_function",
    "resize_lut",
    "resize_lut_1d",
]

#: Pixels processed at a time on the CPU (bounds the temporaries to a few MB).
DEFAULT_CHUNK_PIXELS = 1 << 18
#: Pixels processed at a time on an accelerator.
DEFAULT_CHUNK_PIXELS_CUDA = 1 << 24
#: Interpolation methods of :func:`apply_lut`.
LUT_METHODS = ("trilinear", "tetrahedral")
# Largest LUT applied through the 2-D texture on the CPU (see module docstring): up to this
# size the coordinate rounding stays below 2e-4 of a node spacing.
_MAX_2D_TRICK_SIZE = 129

DomainLike = float | Sequence[float] | Tensor


# --------------------------------------------------------------------------------------
# construction
# --------------------------------------------------------------------------------------


def _check_size(size: int, what: str = "LUT size") -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"{what} must be an integer >= 2, got {size!r}")
    return size


def _ramp(size: int, dtype: torch.dtype, device: torch.device | str | None) -> Tensor:
    # k / (S - 1), correctly rounded (linspace in float32 is not always).
    return (torch.arange(size, dtype=torch.float64) / (size - 1)).to(dtype=dtype, device=device)


def identity_lut(size: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The identity 3D LUT of ``size`` nodes per axis.

    Returns:
        ``(3, S, S, S)`` tensor with ``lut[0, b, g, r] = r / (S-1)``, ``lut[1, ...] = g / (S-1)``,
        ``lut[2, ...] = b / (S-1)``.
    """
    _check_size(size)
    v = _ramp(size, dtype, device)
    lut = torch.empty((3, size, size, size), dtype=dtype, device=device)
    lut[0] = v[None, None, :]
    lut[1] = v[None, :, None]
    lut[2] = v[:, None, None]
    return lut


def identity_lut_1d(size: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The identity 1D LUT: ``(3, S)`` with every row ``k / (S-1)``."""
    _check_size(size)
    return _ramp(size, dtype, device)[None].expand(3, size).contiguous()


def lut_from_function(
    fn: Callable[[Tensor], Tensor],
    size: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Bake a per-pixel colour transform into a 3D LUT.

    Args:
        fn: maps a ``(1, 3, H, W)`` image to a ``(1, 3, H, W)`` image, pixel by pixel
            (any spatial dependence would be baked in meaninglessly). It is called once on
            the ``S**3`` nodes of the identity cube, laid out as an image of ``H = S*S``
            rows (blue-major, then green) and ``W = S`` columns (red).
        size: nodes per axis ``S`` (>= 2).

    Returns:
        ``(3, S, S, S)`` LUT, ``lut[:, b, g, r] = fn(identity)[:, b, g, r]``.
    """
    grid = identity_lut(size, dtype=dtype, device=device).reshape(1, 3, size * size, size)
    out = fn(grid)
    if not isinstance(out, Tensor) or out.shape != grid.shape:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"lut_from_function: fn must return a tensor of shape {tuple(grid.shape)}, got {got}")
    return out.reshape(3, size, size, size)


def resize_lut(lut: Tensor, size: int) -> Tensor:
    """Resample a 3D LUT to ``size`` nodes per axis by trilinear interpolation.

    Args:
        lut: ``(3, S, S, S)`` or ``(B, 3, S, S, S)``.
        size: new ``S'`` (>= 2).

    Returns:
        ``(3, S', S', S')`` or ``(B, 3, S', S', S')``, same dtype and device. Differentiable.
    """
    _check_size(size)
    if lut.ndim == 5:
        return torch.stack([resize_lut(one, size) for one in lut])
    _lut_size(lut)
    if lut.shape[-1] == size:
        return lut.clone()
    return lut_from_function(lambda im: apply_lut(im, lut), size, dtype=lut.dtype, device=lut.device)


def resize_lut_1d(lut1d: Tensor, size: int) -> Tensor:
    """Resample a 1D LUT (any accepted layout) to ``size`` nodes by linear interpolation: ``(3, S')``."""
    _check_size(size)
    table = _as_lut1d(lut1d)
    if table.ndim == 3:
        return torch.stack([resize_lut_1d(one, size) for one in table])
    ramp = _ramp(size, table.dtype, table.device)
    return apply_lut_1d(ramp.expand(1, 3, 1, size), table)[0, :, 0]


# --------------------------------------------------------------------------------------
# argument handling
# --------------------------------------------------------------------------------------


def _triple(value: DomainLike, name: str) -> tuple[float, float, float]:
    if isinstance(value, Tensor):
        value = value.detach().reshape(-1).tolist()
    if isinstance(value, (int, float)):
        vals = [float(value)] * 3
    else:
        vals = [float(v) for v in value]
        if len(vals) == 1:
            vals = vals * 3
    if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{name} must be a finite number or 3 finite numbers, got {value!r}")
    return (vals[0], vals[1], vals[2])


def _domain(domain_min: DomainLike, domain_max: DomainLike) -> tuple[tuple[float, ...], tuple[float, ...]]:
    lo = _triple(domain_min, "domain_min")
    hi = _triple(domain_max, "domain_max")
    if any(h <= low for low, h in zip(lo, hi, strict=True)):
        raise ValueError(f"domain_max must be > domain_min in every channel, got {lo} .. {hi}")
    return lo, hi


def _image(img: Tensor) -> tuple[Tensor, bool]:
    if not isinstance(img, Tensor):
        raise TypeError(f"expected an image tensor, got {type(img).__name__}")
    squeeze = img.ndim == 3
    if squeeze:
        img = img[None]
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"expected an image of shape (B, 3, H, W) or (3, H, W), got {tuple(img.shape)}")
    if not img.is_floating_point():
        raise TypeError(f"expected a floating-point image with values in [0, 1], got {img.dtype}")
    return img, squeeze


def _lut_size(lut: Tensor) -> int:
    if lut.ndim not in (4, 5) or lut.shape[-4] != 3 or not (lut.shape[-1] == lut.shape[-2] == lut.shape[-3]):
        raise ValueError(f"expected a 3D LUT of shape (3, S, S, S) or (B, 3, S, S, S), got {tuple(lut.shape)}")
    if lut.shape[-1] < 2:
        raise ValueError(f"a 3D LUT needs at least 2 nodes per axis, got {tuple(lut.shape)}")
    return int(lut.shape[-1])


def _as_lut1d(lut1d: Tensor) -> Tensor:
    """``(3, S)`` / ``(S, 3)`` / ``(B, 3, S)`` -> ``(3, S)`` or ``(B, 3, S)`` (a view where possible)."""
    if not isinstance(lut1d, Tensor):
        raise TypeError(f"expected a 1D LUT tensor, got {type(lut1d).__name__}")
    if lut1d.ndim == 2:
        if lut1d.shape[0] == 3:
            table = lut1d
        elif lut1d.shape[1] == 3:
            table = lut1d.t()
        else:
            raise ValueError(f"expected a 1D LUT of shape (3, S) or (S, 3), got {tuple(lut1d.shape)}")
    elif lut1d.ndim == 3 and lut1d.shape[1] == 3:
        table = lut1d
    else:
        raise ValueError(f"expected a 1D LUT of shape (3, S), (S, 3) or (B, 3, S), got {tuple(lut1d.shape)}")
    if table.shape[-1] < 2:
        raise ValueError(f"a 1D LUT needs at least 2 entries, got {tuple(lut1d.shape)}")
    return table


def _dtypes(img: Tensor, lut: Tensor) -> tuple[torch.dtype, torch.dtype]:
    """(result dtype, working dtype): half-precision inputs are computed in float32."""
    if not lut.is_floating_point():
        raise TypeError(f"expected a floating-point LUT, got {lut.dtype}")
    dtype = torch.promote_types(img.dtype, lut.dtype)
    return dtype, (torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype)


def _per_image(lut: Tensor, batch: int, ndim_single: int, what: str) -> list[Tensor]:
    """Split a LUT argument into one LUT per image (shared when not batched)."""
    if lut.ndim == ndim_single:
        return [lut] * batch
    if lut.shape[0] == 1:
        return [lut[0]] * batch
    if lut.shape[0] != batch:
        raise ValueError(f"{what}: {lut.shape[0]} LUTs for {batch} images")
    return list(lut.unbind(0))


def _chunk_rows(chunk_pixels: int | None, width: int, device: torch.device) -> int:
    if chunk_pixels is None:
        chunk_pixels = DEFAULT_CHUNK_PIXELS_CUDA if device.type == "cuda" else DEFAULT_CHUNK_PIXELS
    if chunk_pixels < 1:
        raise ValueError(f"chunk_pixels must be >= 1, got {chunk_pixels}")
    return max(1, chunk_pixels // max(1, width))


def _col(values: Sequence[float], like: Tensor) -> Tensor:
    """A ``(3, 1)`` tensor of per-channel constants, in ``like``'s dtype and device."""
    return torch.tensor(values, dtype=torch.float64).to(dtype=like.dtype, device=like.device).view(3, 1)


def _execute(
    img: Tensor,
    dtype: torch.dtype,
    out: Tensor | None,
    squeeze: bool,
    grad: bool,
    run: Callable[[Tensor | None], Tensor],
) -> Tensor:
    """Validate ``out``, call ``run(out or None)`` on the working dtype, cast, unsqueeze."""
    target = None
    if out is not None:
        if grad:
            raise ValueError("out= is not supported when gradients are required")
        target = out[None] if squeeze else out
        if target.shape != img.shape or target.dtype != dtype or target.device != img.device:
            target = None
        if target is None or not target.is_contiguous():
            raise ValueError(f"out must be a contiguous {dtype} tensor of shape {tuple(img.shape[squeeze:])}")
    if img.dtype == dtype:
        result = run(target)
    else:  # half precision, computed in float32
        result = run(None).to(dtype)
        if target is not None:
            result = target.copy_(result)
    return result[0] if squeeze else result


def _run_chunks(
    img: Tensor,
    luts: list,
    kernel: Callable[[Tensor, object, Tensor | None], Tensor],
    chunk_pixels: int | None,
    grad: bool,
    out: Tensor | None = None,
) -> Tensor:
    """Apply ``kernel(x (3, n), prepared_lut, out (3, n) | None)`` to every row chunk of every image.

    Each chunk is read completely before its output is written, so ``out`` may be ``img``.
    """
    batch, _, height, width = img.shape
    if out is None:
        out = torch.empty((batch, 3, height, width), dtype=img.dtype, device=img.device)
    rows = _chunk_rows(chunk_pixels, width, img.device)
    for b in range(batch):
        for r0 in range(0, height, rows):
            r1 = min(height, r0 + rows)
            x = img[b, :, r0:r1].reshape(3, -1)
            if grad:
                out[b, :, r0:r1] = kernel(x, luts[b], None).view(3, r1 - r0, width)
            else:
                kernel(x, luts[b], out[b, :, r0:r1].view(3, -1))
    return out


# --------------------------------------------------------------------------------------
# 3D LUT kernels; each maps x (3, n) -> (3, n)
# --------------------------------------------------------------------------------------


def _clamp_channels(x: Tensor, lo: Sequence[float], hi: Sequence[float]) -> Tensor:
    """``x`` (3, n) clamped to ``[lo[c], hi[c]]`` per channel (one op when all channels agree)."""
    if len(set(lo)) == 1 and len(set(hi)) == 1:
        return x.clamp(lo[0], hi[0])
    return torch.stack([x[c].clamp(lo[c], hi[c]) for c in range(3)])


def _channel_maps(
    lo: Sequence[float], hi: Sequence[float], scale: Sequence[float], base: Sequence[float]
) -> list[tuple[float, float]]:
    """Per channel ``(scale', offset)`` mapping the domain ``[lo, hi]`` onto ``base + [0, scale]``."""
    maps = []
    for c in range(3):
        sc = scale[c] / (hi[c] - lo[c])
        maps.append((sc, base[c] - lo[c] * sc))
    return maps


class _Tri2D:
    """Trilinear lookup through a 2-D ``grid_sample`` on tiled blue slices (CPU).

    Two textures hold the blue slices ``0 .. S-2`` and ``1 .. S-1``, each slice a tile
    padded by one replicated node on every side (so that float32 rounding at a tile edge
    can only reach an identical texel), tiles in a near-square grid (which keeps the
    normalised coordinates, and so their rounding, small). Every pixel is sampled at the
    same (x, y) in both textures (a batch of 2, so the CPU kernel uses 2 threads) and the
    two results are blended linearly in blue.
    """

    def __init__(self, lut: Tensor, lo: Sequence[float], hi: Sequence[float]):
        s = lut.shape[-1]
        self.s = s
        tile = s + 2
        k = math.ceil(math.sqrt(s - 1))  # tiles per texture row
        rows = math.ceil((s - 1) / k)
        self.k = float(k)
        padded = torch.cat([lut[..., :1], lut, lut[..., -1:]], dim=-1)  # replicate-pad red and green
        padded = torch.cat([padded[..., :1, :], padded, padded[..., -1:, :]], dim=-2)  # (3, S, S+2, S+2)
        filler = padded.new_zeros((3, rows * k - (s - 1), tile, tile))

        def texture(slices: Tensor) -> Tensor:
            t = torch.cat([slices, filler], dim=1).reshape(3, rows, k, tile, tile)
            return t.permute(0, 1, 3, 2, 4).reshape(3, rows * tile, k * tile)

        self.tex = torch.stack([texture(padded[:, :-1]), texture(padded[:, 1:])])  # (2, 3, Ht, Wt)
        xs = 2.0 / (k * tile - 1)  # one texel in normalised grid units
        ys = 2.0 / (rows * tile - 1)
        # grid (x, y) = offsets[b0] + (red, green) * xy_scale, where offsets[t] is the
        # normalised position of node (0, 0) of tile t (past its padding texel), less the
        # domain start; computed in float64, rounded once.
        sx = (s - 1) * xs / (hi[0] - lo[0])
        sy = (s - 1) * ys / (hi[1] - lo[1])
        t = torch.arange(s - 1, dtype=torch.float64)
        trow = torch.floor(t / k)
        tcol = t - k * trow
        offsets = torch.stack([tcol * tile * xs + xs - 1.0 - lo[0] * sx, trow * tile * ys + ys - 1.0 - lo[1] * sy], 1)
        self.offsets = offsets.to(dtype=lut.dtype, device=lut.device)  # (S-1, 2)
        self.xy_scale = torch.tensor([sx, sy], dtype=torch.float64).to(dtype=lut.dtype, device=lut.device)
        self.b_scale = (s - 1) / (hi[2] - lo[2])
        self.b_offset = -lo[2] * self.b_scale
        self.lo, self.hi = tuple(lo), tuple(hi)

    def __call__(self, x: Tensor, out: Tensor | None) -> Tensor:
        n = x.shape[1]
        s = self.s
        inplace = out is not None
        xc = _clamp_channels(x, self.lo, self.hi)
        pb = torch.mul(xc[2], self.b_scale)  # blue in node units
        if self.b_offset != 0.0:
            pb = pb.add_(self.b_offset).clamp_(0.0, s - 1.0)
        b0 = pb.floor().clamp_(0.0, s - 2.0)  # blue slice = tile index
        fb = pb.sub_(b0) if inplace else pb - b0
        grid = self.offsets.index_select(0, b0.to(torch.int32))  # (n, 2)
        if inplace:
            grid.addcmul_(xc[:2].t(), self.xy_scale)
        else:
            grid = torch.addcmul(grid, xc[:2].t(), self.xy_scale)
        o = F.grid_sample(
            self.tex,
            grid.view(1, 1, n, 2).expand(2, -1, -1, -1),
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
        )
        if inplace:
            return torch.lerp(o[0, :, 0], o[1, :, 0], fb, out=out)
        return torch.lerp(o[0, :, 0], o[1, :, 0], fb)


class _Tri3D:
    """Trilinear lookup through the 3-D ``grid_sample`` (the reference convention).

    On the CPU the pixels are split into a batch of 2 (with the LUT expanded, not copied)
    because the CPU kernel only parallelises over the batch.
    """

    def __init__(self, lut: Tensor, lo: Sequence[float], hi: Sequence[float]):
        self.lut = lut[None]
        self.maps = _channel_maps(lo, hi, [2.0] * 3, [-1.0] * 3)
        self.parts = 2 if lut.device.type == "cpu" else 1

    def __call__(self, x: Tensor, out: Tensor | None) -> Tensor:
        n = x.shape[1]
        parts = self.parts if n % self.parts == 0 else 1
        m = n // parts
        grid = torch.stack([x[c] * self.maps[c][0] + self.maps[c][1] for c in range(3)], dim=-1)  # (n, 3)
        lut = self.lut.expand(parts, -1, -1, -1, -1)
        o = F.grid_sample(lut, grid.view(parts, 1, 1, m, 3), mode="bilinear", padding_mode="border", align_corners=True)
        o = o.view(parts, 3, m).transpose(0, 1)  # (3, parts, m)
        if out is not None:
            out.view(3, parts, m).copy_(o)
            return out
        return o.reshape(3, n)


class _Tetra:
    """Tetrahedral lookup by gathers on a ``(3, S**3)`` view of the LUT."""

    def __init__(self, lut: Tensor, lo: Sequence[float], hi: Sequence[float]):
        s = lut.shape[-1]
        self.s = s
        self.flat = lut.reshape(3, s**3)
        self.lo, self.hi = tuple(lo), tuple(hi)
        maps = _channel_maps(lo, hi, [s - 1.0] * 3, [0.0] * 3)
        self.uniform = len(set(maps)) == 1
        self.scale = _col([m[0] for m in maps], lut)
        self.offset = _col([m[1] for m in maps], lut)
        self.maps = maps
        self.index_dtype = torch.int32 if s**3 < 2**31 else torch.int64

    def __call__(self, x: Tensor, out: Tensor | None) -> Tensor:
        s = self.s
        inplace = out is not None
        xc = _clamp_channels(x, self.lo, self.hi)
        if self.uniform:  # one scalar map for all channels (the usual [0, 1] domain)
            p = torch.mul(xc, self.maps[0][0])
            if self.maps[0][1] != 0.0:
                p = p.add_(self.maps[0][1])
        else:
            p = torch.addcmul(self.offset, xc, self.scale)
        i = p.floor().clamp_(0.0, s - 2.0)
        f = p.sub_(i) if inplace else p - i  # (3, n) fractional parts
        base = i[0].add_(i[1], alpha=s).add_(i[2], alpha=s * s)  # r + S g + S^2 b, exact in float32
        fr, fg, fb = f.unbind(0)
        # The tetrahedron is given by the order of the fractional parts: walk from the base
        # corner along the axis with the largest fraction, then the middle one, then the last.
        mx = torch.maximum(fr, fg)
        mn = torch.minimum(fr, fg)
        fmax = torch.maximum(mx, fb)
        fmin = torch.minimum(mn, fb)
        fmid = torch.maximum(mn, torch.minimum(mx, fb))
        # Ties may pick either axis: the weights of the affected corners are then zero.
        step_max = torch.where(mx >= fb, torch.where(fr >= fg, 1.0, float(s)), float(s * s))
        step_min = torch.where(mn <= fb, torch.where(fr <= fg, 1.0, float(s)), float(s * s))
        last = float(1 + s + s * s)
        i0 = base.to(self.index_dtype)
        i1 = step_max.add_(base).to(self.index_dtype)
        i2 = step_min.sub_(base).sub_(last).neg_().to(self.index_dtype)  # base + last - step_min
        i3 = base.add_(last).to(self.index_dtype)
        flat = self.flat
        if inplace:
            res = torch.mul(flat.index_select(1, i0), torch.sub(1.0, fmax), out=out)
            res.addcmul_(flat.index_select(1, i1), fmax.sub_(fmid))
            res.addcmul_(flat.index_select(1, i2), fmid.sub_(fmin))
            return res.addcmul_(flat.index_select(1, i3), fmin)
        res = flat.index_select(1, i0) * (1.0 - fmax)
        res = res + flat.index_select(1, i1) * (fmax - fmid)
        res = res + flat.index_select(1, i2) * (fmid - fmin)
        return res + flat.index_select(1, i3) * fmin


def apply_lut(
    img: Tensor,
    lut: Tensor,
    method: str = "trilinear",
    domain_min: DomainLike = 0.0,
    domain_max: DomainLike = 1.0,
    *,
    chunk_pixels: int | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Apply a 3D LUT to images.

    Args:
        img: ``(B, 3, H, W)`` (or ``(3, H, W)``) floating-point RGB; values inside the LUT's
            domain (``[0, 1]`` by default), others are clamped to it.
        lut: ``(3, S, S, S)`` shared by all images, or ``(B, 3, S, S, S)`` one per image,
            indexed ``lut[c, b, g, r]`` (see the module docstring). Any S >= 2.
        method: ``"trilinear"`` (exactly what ``F.grid_sample(..., align_corners=True)``
            computes; exact for affine colour transforms) or ``"tetrahedral"``.
        domain_min, domain_max: input values mapped to the first and last LUT nodes, a
            number or one per channel (``.cube`` ``DOMAIN_MIN``/``DOMAIN_MAX``).
        chunk_pixels: pixels processed at a time (bounds peak memory); default
            ``DEFAULT_CHUNK_PIXELS`` on the CPU.
        out: optional contiguous tensor shaped like the result to write into (it may be
            ``img`` itself, for an in-place application); not with autograd.

    Returns:
        ``(B, 3, H, W)`` (or ``(3, H, W)``) in the promoted dtype of ``img`` and ``lut``
        (float16 / bfloat16 are computed in float32), on ``img``'s device. Differentiable
        w.r.t. ``img`` and ``lut`` for both methods.
    """
    img, squeeze = _image(img)
    if method not in LUT_METHODS:
        raise ValueError(f"unknown LUT interpolation method {method!r}; expected one of {LUT_METHODS}")
    size = _lut_size(lut)
    lo, hi = _domain(domain_min, domain_max)
    dtype, work = _dtypes(img, lut)
    img = img.to(work)
    lut = lut.to(device=img.device, dtype=work)
    grad = torch.is_grad_enabled() and (img.requires_grad or lut.requires_grad)
    if method == "tetrahedral":
        kind: type = _Tetra
    elif img.device.type == "cpu" and size <= _MAX_2D_TRICK_SIZE:
        kind = _Tri2D
    else:
        kind = _Tri3D
    per_image = _per_image(lut, img.shape[0], 4, "apply_lut")
    prepared: dict[int, object] = {}
    luts = []
    for one in per_image:  # prepare each distinct LUT once
        if id(one) not in prepared:
            prepared[id(one)] = kind(one, lo, hi)
        luts.append(prepared[id(one)])

    def run(target: Tensor | None) -> Tensor:
        return _run_chunks(img, luts, lambda x, k, o: k(x, o), chunk_pixels, grad, target)

    return _execute(img, dtype, out, squeeze, grad, run)


# --------------------------------------------------------------------------------------
# 1D LUTs
# --------------------------------------------------------------------------------------


def apply_lut_1d(
    img: Tensor,
    lut1d: Tensor,
    domain_min: DomainLike = 0.0,
    domain_max: DomainLike = 1.0,
    *,
    chunk_pixels: int | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Apply a per-channel 1D LUT (curves) with linear interpolation.

    Args:
        img: ``(B, 3, H, W)`` (or ``(3, H, W)``) floating-point RGB.
        lut1d: ``(3, S)``, ``(S, 3)`` (``.cube`` order) or ``(B, 3, S)``; S >= 2 entries spread
            evenly over ``[domain_min, domain_max]`` (per channel), inputs outside clamped.
        chunk_pixels, out: as in :func:`apply_lut`.

    Returns:
        ``(B, 3, H, W)`` (or ``(3, H, W)``); differentiable w.r.t. ``img`` and ``lut1d``.
    """
    img, squeeze = _image(img)
    table = _as_lut1d(lut1d)
    lo, hi = _domain(domain_min, domain_max)
    dtype, work = _dtypes(img, table)
    img = img.to(work)
    table = table.to(device=img.device, dtype=work)
    s = table.shape[-1]
    grad = torch.is_grad_enabled() and (img.requires_grad or table.requires_grad)
    sc = [(s - 1) / (h - low) for low, h in zip(lo, hi, strict=True)]
    scale = _col(sc, table)
    offset = _col([-lo[i] * sc[i] for i in range(3)], table)

    def kernel(x: Tensor, tab: Tensor, out: Tensor | None) -> Tensor:
        p = torch.addcmul(offset, x, scale).clamp(0, s - 1)
        i = p.floor().clamp_(max=s - 2)
        f = p - i
        il = i.long()
        lo_v = torch.gather(tab, 1, il)
        hi_v = torch.gather(tab, 1, il + 1)
        if out is not None:
            return torch.lerp(lo_v, hi_v, f, out=out)
        return torch.lerp(lo_v, hi_v, f)

    tables = [t.contiguous() for t in _per_image(table, img.shape[0], 2, "apply_lut_1d")]

    def run(target: Tensor | None) -> Tensor:
        return _run_chunks(img, tables, kernel, chunk_pixels, grad, target)

    return _execute(img, dtype, out, squeeze, grad, run)


def apply_lut_uint8(rgb: np.ndarray, lut: Tensor, threads: int | None = None) -> np.ndarray:
    """Apply a ``(3, S, S, S)`` LUT (domain [0, 1], S in 2..65) to an 8-bit ``(H, W, 3)`` uint8 array.

    Uses Pillow's C ``ImageFilter.Color3DLUT`` (trilinear with 16-bit fixed-point weights, at
    most one 8-bit level from :func:`apply_lut`; see ``tests/test_lut.py``). It is several
    times faster than the torch path on a CPU, so full-resolution 8-bit outputs take it; it
    has no gradients and no float output, which is what the torch path is for. Pillow releases
    the GIL while filtering, so large images are cut into ``threads`` horizontal strips
    filtered concurrently (default: ``torch.get_num_threads()``; the result is identical).
    """
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image, ImageFilter

    size = _lut_size(lut)
    if lut.ndim != 4 or not 2 <= size <= 65:
        raise ValueError(f"apply_lut_uint8 needs one (3,S,S,S) LUT with 2 <= S <= 65, got {tuple(lut.shape)}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    # lut[c, b, g, r] -> rows (b, g, r) of (R, G, B): red varies fastest, as Pillow wants.
    table = lut.detach().to("cpu", torch.float32).clamp(0, 1).permute(1, 2, 3, 0).reshape(-1).numpy()
    flt = ImageFilter.Color3DLUT(size, table)
    threads = max(1, torch.get_num_threads() if threads is None else int(threads))
    if threads == 1 or rgb.shape[0] * rgb.shape[1] < (1 << 20):
        return np.array(Image.fromarray(np.ascontiguousarray(rgb), "RGB").filter(flt))
    out = np.empty_like(rgb)
    bounds = np.linspace(0, rgb.shape[0], threads + 1).astype(int)

    def strip(i: int) -> None:
        a, b = bounds[i], bounds[i + 1]
        out[a:b] = np.asarray(Image.fromarray(np.ascontiguousarray(rgb[a:b]), "RGB").filter(flt))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(strip, range(threads)))
    return out
