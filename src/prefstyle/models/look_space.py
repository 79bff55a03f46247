"""The taste space of LookTaste: global colour looks as 3D LUTs in a low-dimensional basis.

A look is a LUT ``L`` (layout of :mod:`prefstyle.imaging.lut`). LookTaste writes every look it
considers as the identity plus a combination of ``D`` basis *displacements*:

    L_c = I + Σ_d c_d B_d,        B: (D,3,S,S,S),  c: (D,)

The basis is the leading right singular vectors of a set of example displacements (real looks
from the look library, raw-editor slider edits), so it spans film looks, split toning, channel
curves and ordinary slider edits alike; blends of looks are blends of their coefficients.
Trilinear interpolation is linear in the LUT's entries, so the colours a look gives to a photo's
sample pixels ``x`` are ``x + c @ Bs(x)`` with ``Bs(x) = sample_tables(B, x)`` ``(D,3,P)``: one small
matrix product per scene for thousands of candidate tastes at once.

A taste may also move the exposure with the photo's brightness (as a camera's auto-exposure
does): gain ``g ∈ [0, 1]``, the photo first exposed by ``g · log2(0.18 / Ȳ)`` EV (``Ȳ`` its mean
linear luminance, :func:`prefstyle.models.slider_taste.metered_ev`), then the look applied.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prefstyle.imaging.lut import identity_lut
from prefstyle.imaging.ops import exposure

__all__ = [
    "GAINS",
    "SAMPLE_SIDE",
    "SAMPLE_STEP",
    "exposed",
    "fit_basis",
    "node_major",
    "project",
    "sample_colours",
    "sample_tables",
    "tables_from_coefficients",
    "trilinear_weights",
]

#: the adaptive-brightness gains a taste can take
GAINS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
#: side of the area thumbnail the likelihood compares, and the stride of the pixels it keeps:
#: 24 px (what a glance at a pair on a screen resolves of global colour), every 5th pixel: 5 x 5 =
#: 25 colours (36, every 4th, until the ninth session: level on test people, 30 % slower;
#: docs/BENCHMARKS.md, "25 sample colours")
SAMPLE_SIDE = 24
SAMPLE_STEP = 5


def sample_colours(img: torch.Tensor, side: int = SAMPLE_SIDE, step: int = SAMPLE_STEP) -> torch.Tensor:
    """``(3,h,w)`` colours of an image ``(3,H,W)`` or ``(1,3,H,W)`` sRGB [0,1]: its ``side``-px area
    thumbnail, every ``step``-th pixel (the same positions for every image of a scene, so a
    rendition's samples are its source's samples retouched)."""
    x = img[None] if img.ndim == 3 else img
    t = F.interpolate(x[:1].float().clamp(0, 1), size=(side, side), mode="area")
    o = step // 2
    return t[0, :, o::step, o::step].contiguous()


def trilinear_weights(x: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where colours ``x`` ``(3,P)`` in [0,1] fall in an ``size``³ LUT: flat node indices ``(P,8)``
    (into ``lut.reshape(3, -1)``, red fastest) and their trilinear weights ``(P,8)`` (rows sum to 1)."""
    u = x.float().clamp(0, 1) * (size - 1)
    i0 = u.floor().clamp(max=size - 2).long()
    f = u - i0
    idx, w = [], []
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                idx.append((i0[2] + db) * size * size + (i0[1] + dg) * size + (i0[0] + dr))
                w.append((f[0] if dr else 1 - f[0]) * (f[1] if dg else 1 - f[1]) * (f[2] if db else 1 - f[2]))
    return torch.stack(idx, 1), torch.stack(w, 1)


def node_major(tables: torch.Tensor) -> torch.Tensor:
    """Tables ``(D,3,S,S,S)`` laid out node by node, ``(S³, D·3)``, for :func:`sample_tables`."""
    d = tables.shape[0]
    return tables.reshape(d * 3, -1).T.contiguous()


def sample_tables(tables: torch.Tensor, x: torch.Tensor, nodes: torch.Tensor | None = None) -> torch.Tensor:
    """Tables ``(D,3,S,S,S)`` looked up (trilinear) at colours ``x`` ``(3,P)``: ``(D,3,P)``.

    ``nodes``: :func:`node_major` of ``tables`` when the caller keeps it (a row gather per
    colour instead of a strided one: several times faster for many tables).
    """
    d, s = tables.shape[0], tables.shape[-1]
    idx, w = trilinear_weights(x, s)
    if nodes is None:
        nodes = node_major(tables)
    rows = nodes.index_select(0, idx.reshape(-1)).reshape(idx.shape[0], 8, d * 3)  # (P,8,3D)
    return torch.bmm(w[:, None, :], rows).reshape(-1, d, 3).permute(1, 2, 0)


def exposed(x: torch.Tensor, ev: float | torch.Tensor) -> torch.Tensor:
    """Colours ``x`` ``(3,...)`` sRGB [0,1] exposed by ``ev`` stops in linear light (clipped at white)."""
    if isinstance(ev, float) and ev == 0.0:
        return x
    shape = x.shape
    return exposure(x.reshape(1, 3, 1, -1), ev).reshape(shape)


def tables_from_coefficients(coeffs: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """LUTs ``I + c @ B``: coefficients ``(K,D)`` and basis ``(D,3,S,S,S)`` -> ``(K,3,S,S,S)``."""
    s = basis.shape[-1]
    delta = (coeffs.float() @ basis.reshape(basis.shape[0], -1)).reshape(-1, 3, s, s, s)
    return identity_lut(s)[None] + delta


def fit_basis(displacements: torch.Tensor, max_dim: int = 64, energy: float = 0.995) -> tuple[torch.Tensor, dict]:
    """An orthonormal basis ``(D,3,S,S,S)`` for example displacements ``(M,3,S,S,S)`` (LUT − identity).

    The leading right singular vectors (uncentred: the identity is the origin), as many as hold
    ``energy`` of the examples' squared norm, at most ``max_dim``. Returns the basis and a summary
    (``dim``, ``energy`` kept, relative reconstruction error of the examples).
    """
    m = displacements.shape[0]
    shape = displacements.shape[1:]
    x = displacements.reshape(m, -1).float()
    # the Gram matrix's eigenvectors: M x M instead of an SVD of M x 3S³ (M ≤ a few thousand)
    gram = (x.double() @ x.double().T) if m <= 4096 else None
    if gram is None:
        raise ValueError(f"too many example looks for the basis ({m} > 4096)")
    evals, evecs = torch.linalg.eigh(gram)
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
    cum = evals.cumsum(0) / evals.sum().clamp_min(1e-300)
    dim = int(min(max_dim, int((cum < energy).sum()) + 1, m))
    sv = evals[:dim].sqrt().clamp_min(1e-12)
    basis = (evecs[:, :dim] / sv).T.float() @ x  # right singular vectors
    basis = torch.linalg.qr(basis.T.double()).Q.T.float()  # re-orthonormalised against rounding
    rec = (x @ basis.T) @ basis
    err = float((rec - x).norm() / x.norm().clamp_min(1e-12))
    return basis.reshape(dim, *shape).contiguous(), {
        "dim": dim,
        "energy": round(float(cum[dim - 1]), 5),
        "examples": m,
        "relative_error": round(err, 5),
    }


def project(displacements: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Coefficients ``(M,D)`` of displacements ``(M,3,S,S,S)`` on an orthonormal basis ``(D,3,S,S,S)``."""
    flat = basis.reshape(basis.shape[0], -1)
    return displacements.reshape(displacements.shape[0], flat.shape[1]).float() @ flat.T
