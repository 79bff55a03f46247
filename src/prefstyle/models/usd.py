"""User-Specific Decoder (USD), baseline (a) of the PPS paper (CVPR 2026).

A shared encoder ``E`` and one decoder per user. The decoder is an implicit neural
representation in the style of LIIF (Chen et al., CVPR 2021): it predicts the RGB value at any
continuous coordinate ``c ∈ [0,1]²`` from the encoder's feature map, with LIIF's four devices:

* **feature unfolding**: each feature vector is concatenated with its 3×3 neighbourhood;
* **relative coordinates**: the query's offset from the nearest latent code, in latent pixels;
* **cell size**: the query pixel's size, so the decoder knows the output resolution;
* **local ensemble**: the four latent codes around the query each predict, and the
  predictions are blended with bilinear (area) weights.

Training from pairs (the paper's objective, see :mod:`prefstyle.models.pps`): each step
feeds ``I_p`` or ``I_n`` (at random) of a training user's judgment through ``E`` and that user's
decoder and supervises the predicted pixels with ``w·L(Î, I_p) + (1 − w)·L(Î, I_n)``, ``w``
rising 0.5 → 1.5 (``L``: ``task.loss``, L1 by default; the paper's, in our reading, is L2:
:mod:`prefstyle.models.pps.objective`). Queries are random pixels of a target grid whose size
is drawn per step from ``target_sizes`` (LIIF's random-scale training).

New users (:meth:`USDModel.personalize`): inference-time training. ``E`` is frozen, a new
decoder is initialised and trained on the user's ``N`` reference pairs with the same objective
(``adapt_steps`` Adam steps; the profile records how long it took).

Rendering (:meth:`USDModel.render`), any resolution: the decoder is queried at every pixel of
the image when it has at most ``render_side``² pixels; larger images are queried on a coarse
grid (longer side ``render_side``) and the edit is taken to full resolution by
:func:`~prefstyle.models.pps.guided_upsample` (a per-channel local affine fit of output
against input, upsampled and applied to the full-size input: edge-aware, unlike upsampling the
residual).

Where this departs from the paper's text (which gives the structure, not these details):

* ``E`` is an EDSR-baseline body (no upsampler, as in LIIF) but narrower by default for the
  CPU (32 features, 4 residual blocks; the paper-size 64/16 is ``n_feats=64, n_resblocks=16``),
  and it sees a ``enc_size``-pixel thumbnail of the image (the encoder's job here is the
  image's colour and content, not detail).
* The decoder predicts the *residual* to the input colour at ``c`` (``Î(c) = I(c) + MLP(...)``,
  the last layer starting at zero, so every decoder starts as the identity), and with
  ``pixel_input`` (default) the MLP also sees the input colour ``I(c)``. LIIF predicts RGB
  from the latent code alone; for retouching, where the output is a colour transform of a
  full-resolution input, these two additions keep the input's detail at any output size.
* A new user's decoder is initialised from a *generic* decoder (slot 0), trained alongside
  the user decoders on every batch, not from scratch (``adapt_init="random"`` gives LIIF's
  default initialisation instead). Both are "a new decoder"; the generic start needs far
  fewer inference-time steps.
* The decoder MLP is smaller than LIIF's 4×256 (``hidden=(64, 64)``). ``configs/usd_paper.yaml``
  has the paper's sizes (EDSR 64/16, 4×256 MLP).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.resize import resize_long_side
from prefstyle.models.base import (
    PersonalizationModel,
    Profile,
    Reference,
    register_model,
)
from prefstyle.models.loading import register_architecture
from prefstyle.models.pps import (
    guided_upsample,
    pairwise_loss,
    pps_weight,
    square_thumbs,
    weights_fingerprint,
)

__all__ = ["EDSREncoder", "USDModel", "USDNet", "UserDecoders", "make_coord"]


# --------------------------------------------------------------------------------------------
# encoder
# --------------------------------------------------------------------------------------------


class _ResBlock(nn.Module):
    def __init__(self, c: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class EDSREncoder(nn.Module):
    """EDSR-baseline without the upsampler (LIIF's encoder): ``(B,3,h,w)`` [0,1] -> ``(B,C,h,w)``."""

    def __init__(self, n_feats: int = 32, n_resblocks: int = 4, res_scale: float = 1.0):
        super().__init__()
        self.head = nn.Conv2d(3, n_feats, 3, padding=1)
        self.body = nn.Sequential(
            *[_ResBlock(n_feats, res_scale) for _ in range(n_resblocks)], nn.Conv2d(n_feats, n_feats, 3, padding=1)
        )
        self.out_dim = n_feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x - 0.5)
        return self.body(h) + h


# --------------------------------------------------------------------------------------------
# decoders, one per user
# --------------------------------------------------------------------------------------------


class UserDecoders(nn.Module):
    """``slots`` MLPs of identical shape stored as stacked weights ``W (slots, in, out)``, ``b (slots, out)``.

    A decoder is given either as ``slots (B,)`` (decoder ``slots[b]`` for sample ``b``) or as
    explicit ``weights`` (a list of ``(W (in,out), b (out))`` shared by the batch). ReLU between
    layers; the last layer is initialised to zero; every slot starts from the same weights.
    """

    def __init__(self, slots: int, in_dim: int, hidden: Sequence[int], out_dim: int = 3):
        super().__init__()
        dims = [in_dim, *hidden, out_dim]
        self.dims = dims
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            lin = nn.Linear(a, b)
            w = lin.weight.detach().t().contiguous()
            bias = lin.bias.detach().clone()
            if i == len(dims) - 2:
                w.zero_()
                bias.zero_()
            self.weights.append(nn.Parameter(w[None].repeat(slots, 1, 1)))
            self.biases.append(nn.Parameter(bias[None].repeat(slots, 1)))

    @property
    def slots(self) -> int:
        return self.weights[0].shape[0]

    def slot(self, i: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Decoder ``i`` as a list of ``(W, b)`` (detached copies)."""
        return [(w[i].detach().clone(), b[i].detach().clone()) for w, b in zip(self.weights, self.biases)]

    def layer(
        self, i: int, slots: torch.Tensor | None, weights: Sequence[tuple[torch.Tensor, torch.Tensor]] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``i``: ``(W, b)`` as ``(in,out)``/``(out,)`` (explicit) or ``(B,in,out)``/``(B,out)`` (slots)."""
        if weights is not None:
            return weights[i]
        return self.weights[i][slots], self.biases[i][slots]

    def forward_from(
        self,
        x: torch.Tensor,
        start: int,
        slots: torch.Tensor | None = None,
        weights: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Run layers ``start..`` on ``x (B,Q,d)`` (``x`` is the output of layer ``start-1`` before its ReLU)."""
        n = len(self.dims) - 1
        for i in range(start, n):
            x = F.relu(x)
            w, b = self.layer(i, slots, weights)
            x = x @ w + b if w.ndim == 2 else torch.baddbmm(b[:, None, :], x, w)
        return x


def make_coord(h: int, w: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pixel-centre coordinates of an ``h×w`` grid in [-1,1]: ``(h, w, 2)`` as ``(y, x)`` (LIIF's order)."""
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------


class USDNet(nn.Module):
    """Encoder + ``n_users + 1`` LIIF decoders (slot 0 is the generic decoder, slot ``k+1`` user ``k``).

    The decoder MLP's input is LIIF's ``[unfolded code (9C), relative coord (2), cell (2)]``
    plus, with ``pixel_input``, the input colour (3). Implementation: the first layer's part that
    acts on the unfolded code is applied once per latent code (a 3×3 convolution of the feature
    map, since unfolding followed by a linear map is exactly that) and the result is looked up
    per query, which equals evaluating it per query (LIIF looks codes up with nearest
    sampling) at a fraction of the cost when queries outnumber codes.
    """

    def __init__(
        self,
        n_users: int,
        n_feats: int = 32,
        n_resblocks: int = 4,
        hidden: Sequence[int] = (64, 64),
        enc_size: int = 48,
        pixel_input: bool = True,
        feat_unfold: bool = True,
        local_ensemble: bool = True,
        cell_decode: bool = True,
        min_cell: float = 0.0,
    ):
        super().__init__()
        if not hidden:
            raise PrefstyleError("usd: the decoder needs at least one hidden layer")
        self.n_users, self.enc_size = int(n_users), int(enc_size)
        self.pixel_input, self.feat_unfold = bool(pixel_input), bool(feat_unfold)
        self.local_ensemble, self.cell_decode = bool(local_ensemble), bool(cell_decode)
        self.min_cell = float(min_cell)
        self.encoder = EDSREncoder(n_feats, n_resblocks)
        self.code_dim = n_feats * (9 if self.feat_unfold else 1)
        in_dim = self.code_dim + 2 + (2 if self.cell_decode else 0) + (3 if self.pixel_input else 0)
        self.decoders = UserDecoders(self.n_users + 1, in_dim, list(hidden))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B,3,h,w)`` encoder input -> feature map ``(B,C,h,w)``."""
        return self.encoder(x)

    def forward(
        self,
        x_enc: torch.Tensor,
        coord: torch.Tensor,
        cell: torch.Tensor,
        pix: torch.Tensor,
        slots: torch.Tensor,
        generic: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training forward: encoder inputs ``(B,3,e,e)``, queries ``coord``/``cell (B,Q,2)``,
        ``pix (B,Q,3)`` -> (predictions of decoders ``slots (B,)``, of the generic decoder or None),
        each ``(B,Q,3)``; the encoder runs once for both."""
        feat = self.features(x_enc)
        pred = self.query(self.project(feat, slots=slots), coord, cell, pix, slots=slots)
        if not generic:
            return pred, None
        zero = torch.zeros_like(slots)
        return pred, self.query(self.project(feat, slots=zero), coord, cell, pix, slots=zero)

    def project(
        self,
        feat: torch.Tensor,
        slots: torch.Tensor | None = None,
        weights: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """The first decoder layer on every (unfolded) latent code: ``(B,C,h,w)`` -> ``(B,H1,h,w)`` (bias included)."""
        w, b = self.decoders.layer(0, slots, weights)
        c = feat.shape[1]
        k = 3 if self.feat_unfold else 1
        wf = w[..., : self.code_dim, :]
        if wf.ndim == 2:
            kern = wf.t().reshape(-1, c, k, k)
            return F.conv2d(feat, kern, b, padding=k // 2)
        bsz, _, h1 = wf.shape
        kern = wf.transpose(1, 2).reshape(bsz * h1, c, k, k)
        out = F.conv2d(feat.reshape(1, bsz * c, *feat.shape[-2:]), kern, padding=k // 2, groups=bsz)
        return out.view(bsz, h1, *feat.shape[-2:]) + b[:, :, None, None]

    def query(
        self,
        proj: torch.Tensor,
        coord: torch.Tensor,
        cell: torch.Tensor,
        pix: torch.Tensor,
        slots: torch.Tensor | None = None,
        weights: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """RGB at coordinates: ``proj`` from :meth:`project` ``(B,H1,h,w)``, ``coord (B,Q,2)`` (y,x in
        [-1,1]), ``cell (B,Q,2)`` (the query pixel's size in the same units), ``pix (B,Q,3)`` (the
        input colour there) -> ``(B,Q,3)`` = ``pix`` + the decoder's residual (local ensemble)."""
        b, h1, h, w = proj.shape
        q = coord.shape[1]
        w0, _ = self.decoders.layer(0, slots, weights)
        w_rest = w0[..., self.code_dim :, :]  # rows for [rel (2), cell (2)?, pix (3)?]
        hw = torch.tensor([h, w], dtype=coord.dtype, device=coord.device)
        if self.local_ensemble:
            shifts, eps = [(-1, -1), (-1, 1), (1, -1), (1, 1)], 1e-6
        else:
            shifts, eps = [(0, 0)], 0.0
        flat = proj.flatten(2)  # (B,H1,h·w)
        pre, areas = [], []
        for vx, vy in shifts:
            c = coord.clone()
            c[..., 0] += vx / h + eps
            c[..., 1] += vy / w + eps
            c = c.clamp(-1 + 1e-6, 1 - 1e-6)
            idx = ((c + 1) * hw / 2).floor().long()  # nearest latent code (grid_sample "nearest")
            iy, ix = idx[..., 0].clamp(0, h - 1), idx[..., 1].clamp(0, w - 1)
            q_coord = torch.stack([(iy * 2 + 1) / h - 1, (ix * 2 + 1) / w - 1], dim=-1).to(coord.dtype)
            rel = (coord - q_coord) * hw
            gathered = flat.gather(2, (iy * w + ix)[:, None, :].expand(-1, h1, -1)).transpose(1, 2)  # (B,Q,H1)
            parts = [rel]
            if self.cell_decode:
                parts.append(cell.clamp_min(self.min_cell) * hw)
            if self.pixel_input:
                parts.append(pix * 2 - 1)
            extra = torch.cat(parts, dim=-1)
            lin = extra @ w_rest if w_rest.ndim == 2 else torch.bmm(extra, w_rest)
            pre.append(gathered + lin)
            areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
        x = torch.cat(pre, dim=1)  # (B, k·Q, H1)
        pred = self.decoders.forward_from(x, 1, slots=slots, weights=weights).view(b, len(shifts), q, 3)
        if self.local_ensemble:
            area = torch.stack([areas[3], areas[2], areas[1], areas[0]], dim=1)  # LIIF's diagonal swap
            res = (pred * (area / area.sum(dim=1, keepdim=True))[..., None]).sum(dim=1)
        else:
            res = pred[:, 0]
        return pix + res

    def render_grid(
        self,
        img: torch.Tensor,
        feat: torch.Tensor,
        weights: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
        slots: torch.Tensor | None = None,
        chunk: int = 65536,
    ) -> torch.Tensor:
        """Query the decoder at every pixel of ``img (B,3,H,W)`` -> ``(B,3,H,W)`` (not clamped)."""
        b, _, h, w = img.shape
        proj = self.project(feat, slots=slots, weights=weights)
        coord = make_coord(h, w, img.device, img.dtype).view(1, h * w, 2).expand(b, -1, -1)
        cell = torch.tensor([2.0 / h, 2.0 / w], dtype=img.dtype, device=img.device).view(1, 1, 2)
        pix = img.flatten(2).transpose(1, 2)
        out = torch.empty_like(pix)
        for i in range(0, h * w, chunk):
            sl = slice(i, min(h * w, i + chunk))
            n = sl.stop - sl.start
            out[:, sl] = self.query(proj, coord[:, sl], cell.expand(b, n, 2), pix[:, sl], slots=slots, weights=weights)
        return out.transpose(1, 2).reshape(b, 3, h, w)


def sample_points(img: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``img (B,3,s,s)``, flat pixel indices ``idx (B,Q)`` -> ``(B,Q,3)``."""
    return img.flatten(2).gather(2, idx[:, None, :].expand(-1, 3, -1)).transpose(1, 2)


def coords_of(idx: torch.Tensor, s: int, dtype: torch.dtype) -> torch.Tensor:
    ys = torch.div(idx, s, rounding_mode="floor").to(dtype)
    xs = (idx % s).to(dtype)
    return torch.stack([(ys * 2 + 1) / s - 1, (xs * 2 + 1) / s - 1], dim=-1)


def pair_step_loss(
    net: USDNet,
    feat: torch.Tensor,
    fed: torch.Tensor,
    i_p: torch.Tensor,
    i_n: torch.Tensor,
    w: float | torch.Tensor,
    queries: int,
    loss: str = "l1",
    slots: torch.Tensor | None = None,
    weights: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The pairwise loss of one decoder on ``queries`` random pixels of the target grid.

    ``feat`` latent codes of the fed images; ``fed``, ``i_p``, ``i_n`` ``(B,3,s,s)`` on the target
    grid. All pixels when ``queries >= s²``.
    """
    b, _, s, _ = fed.shape
    if queries >= s * s:
        idx = torch.arange(s * s, device=fed.device)[None].expand(b, -1)
    else:
        idx = torch.randint(0, s * s, (b, queries), device=fed.device, generator=generator)
    coord = coords_of(idx, s, fed.dtype)
    cell = torch.full_like(coord, 2.0 / s)
    proj = net.project(feat, slots=slots, weights=weights)
    pred = net.query(proj, coord, cell, sample_points(fed, idx), slots=slots, weights=weights)
    return pairwise_loss(pred, sample_points(i_p, idx), sample_points(i_n, idx), w, loss)


# --------------------------------------------------------------------------------------------
# the personalization model
# --------------------------------------------------------------------------------------------


@register_model("usd")
class USDModel(PersonalizationModel):
    """USD behind the common interface: ``personalize`` = inference-time training of a new decoder.

    Build from a trained :class:`USDNet` (what the ``usd`` training task's ``to_inference``
    does) or, untrained, from architecture keywords (``USDModel(n_users=0, ...)``: a warning is
    the caller's business; an untrained USD is the identity edit plus whatever the
    inference-time training learns). Options:

    ``adapt_steps`` (60), ``adapt_lr`` (1e-2), ``adapt_queries`` (1024 pixels per image and
    step), ``adapt_size`` (the target grid, 32 px: with 1024 queries, every pixel),
    ``adapt_init`` (``generic`` | ``random``), ``adapt_schedule`` (``linear``: w from
    ``adapt_w_start`` 0.5 to ``adapt_w_end`` 1.5 over the adaptation steps), ``adapt_seed``;
    ``render_side`` (256): images with more pixels than ``render_side``² are queried on a grid of
    that longer side and guided-upsampled (``guide_radius`` 1, ``guide_eps`` 1e-4).
    """

    name = "usd"

    def __init__(
        self,
        net: USDNet | None = None,
        adapt_steps: int = 60,
        adapt_lr: float = 1e-2,
        adapt_queries: int = 1024,
        adapt_size: int = 32,
        adapt_init: str = "generic",
        adapt_schedule: str = "linear",
        adapt_loss: str = "l1",
        adapt_seed: int = 0,
        adapt_w_start: float = 0.5,
        adapt_w_end: float = 1.5,
        render_side: int = 256,
        guide_radius: int = 1,
        guide_eps: float = 1e-4,
        **arch: Any,
    ):
        self.net = net if net is not None else USDNet(n_users=int(arch.pop("n_users", 0)), **arch).eval()
        if adapt_init not in ("generic", "random"):
            raise PrefstyleError(f"usd: adapt_init must be 'generic' or 'random', got {adapt_init!r}")
        self.adapt_steps, self.adapt_lr, self.adapt_queries = int(adapt_steps), float(adapt_lr), int(adapt_queries)
        self.adapt_size, self.adapt_init, self.adapt_schedule = int(adapt_size), adapt_init, adapt_schedule
        self.adapt_loss, self.adapt_seed = adapt_loss, int(adapt_seed)
        self.adapt_w = (float(adapt_w_start), float(adapt_w_end))
        self.render_side, self.guide_radius, self.guide_eps = int(render_side), int(guide_radius), float(guide_eps)
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.net.encoder)
        return self._fingerprint

    def config(self) -> dict[str, Any]:
        n = self.net
        return {
            "name": self.name,
            "n_feats": n.encoder.out_dim,
            "hidden": n.decoders.dims[1:-1],
            "enc_size": n.enc_size,
            "pixel_input": n.pixel_input,
            "feat_unfold": n.feat_unfold,
            "local_ensemble": n.local_ensemble,
            "cell_decode": n.cell_decode,
            "min_cell": n.min_cell,
            "train_users": n.n_users,
            "adapt_steps": self.adapt_steps,
            "adapt_lr": self.adapt_lr,
            "adapt_queries": self.adapt_queries,
            "adapt_size": self.adapt_size,
            "adapt_init": self.adapt_init,
            "adapt_schedule": self.adapt_schedule,
            "adapt_w": list(self.adapt_w),
            "render_side": self.render_side,
            "encoder_weights": self.fingerprint,
        }

    # -- personalize -------------------------------------------------------------------------

    def _new_decoder(self, gen: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.adapt_init == "generic":
            return self.net.decoders.slot(0)
        dims = self.net.decoders.dims
        out = []
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            bound = 1 / math.sqrt(a)
            w = (torch.rand(a, b, generator=gen) * 2 - 1) * bound
            bias = (torch.rand(b, generator=gen) * 2 - 1) * bound
            if i == len(dims) - 2:
                w.zero_()
                bias.zero_()
            out.append((w, bias))
        return out

    def adapt(self, refs: Sequence[Reference]) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], dict[str, Any]]:
        """Inference-time training of a new decoder on ``refs`` (encoder frozen) -> (decoder, stats).

        Stats: ``seconds``, ``steps``, and ``fit_before`` / ``fit_after``: mean L1 between the
        decoder's output and ``I_p`` over the references (both sides fed), before and after.
        """
        gen = torch.Generator().manual_seed(self.adapt_seed)
        dec = self._new_decoder(gen)
        stats: dict[str, Any] = {"steps": 0, "seconds": 0.0}
        if not refs:
            return dec, stats
        t0 = time.perf_counter()
        s, e = self.adapt_size, self.net.enc_size
        i_p = torch.cat([square_thumbs(r.preferred, s) for r in refs])
        i_n = torch.cat([square_thumbs(r.other, s) for r in refs])
        with torch.no_grad():
            f_p = self.net.features(square_thumbs(i_p, e))
            f_n = self.net.features(square_thumbs(i_n, e))
        params = [(w.clone().requires_grad_(True), b.clone().requires_grad_(True)) for w, b in dec]
        flat = [t for pair in params for t in pair]
        opt = torch.optim.Adam(flat, lr=self.adapt_lr)

        def fit() -> float:
            with torch.no_grad():
                both_f, both_x = torch.cat([f_p, f_n]), torch.cat([i_p, i_n])
                target = torch.cat([i_p, i_p])
                out = self.net.render_grid(both_x, both_f, weights=params)
                return float((out - target).abs().mean())

        stats["fit_before"] = fit()
        n = len(refs)
        steps = max(self.adapt_steps, 0)
        for k in range(steps):
            side = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1, 1)
            feat = torch.where(side, f_p, f_n)
            fed = torch.where(side, i_p, i_n)
            w = pps_weight(k / max(steps - 1, 1), self.adapt_schedule, *self.adapt_w, n=n, generator=gen)
            loss = pair_step_loss(
                self.net, feat, fed, i_p, i_n, w, self.adapt_queries, self.adapt_loss, weights=params, generator=gen
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        stats["fit_after"] = fit()
        stats["steps"] = steps
        stats["seconds"] = time.perf_counter() - t0
        return [(w.detach(), b.detach()) for w, b in params], stats

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        with torch.enable_grad():
            dec, stats = self.adapt(refs)
        tensors = {}
        for i, (w, b) in enumerate(dec):
            tensors[f"decoder.{i}.weight"] = w.contiguous()
            tensors[f"decoder.{i}.bias"] = b.contiguous()
        return Profile(
            model=self.name,
            user=user,
            model_config=self.config(),
            tensors=tensors,
            data={"n_refs": len(refs), "adapt": stats, "encoder_weights": self.fingerprint},
        )

    # -- render ------------------------------------------------------------------------------

    def decoder_of(self, profile: Profile) -> list[tuple[torch.Tensor, torch.Tensor]]:
        self.check_profile(profile)
        got = profile.data.get("encoder_weights")
        if got is not None and got != self.fingerprint:
            raise PrefstyleError(
                "this usd profile was made with another encoder (other weights); personalize again with this model"
            )
        n = len(self.net.decoders.dims) - 1
        try:
            dec = [(profile.tensors[f"decoder.{i}.weight"], profile.tensors[f"decoder.{i}.bias"]) for i in range(n)]
        except KeyError:
            raise PrefstyleError("usd profile has no decoder weights (damaged or made by another version)") from None
        for (w, _), a, b in zip(dec, self.net.decoders.dims[:-1], self.net.decoders.dims[1:]):
            if tuple(w.shape) != (a, b):
                raise PrefstyleError(f"usd profile decoder shape {tuple(w.shape)} does not fit this model ({a}, {b})")
        return dec

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        dec = self.decoder_of(profile)
        return render_with(self.net, img, dec, self.render_side, self.guide_radius, self.guide_eps)


def render_with(
    net: USDNet,
    img: torch.Tensor,
    dec: Sequence[tuple[torch.Tensor, torch.Tensor]] | None,
    render_side: int,
    guide_radius: int = 1,
    guide_eps: float = 1e-4,
    slots: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(B,3,H,W)`` -> ``(B,3,H,W)`` in [0,1] with decoder ``dec`` (or ``slots``), any resolution."""
    squeeze = img.ndim == 3
    x = img[None] if squeeze else img
    with torch.no_grad():
        dec = None if dec is None else [(w.to(x.dtype), b.to(x.dtype)) for w, b in dec]
        feat = net.features(resize_long_side(x, net.enc_size, mode="area").clamp(0, 1))
        h, w = x.shape[-2:]
        if h * w <= render_side * render_side:
            out = net.render_grid(x, feat, weights=dec, slots=slots)
        else:
            lo = resize_long_side(x, render_side, mode="area").clamp(0, 1)
            lo_out = net.render_grid(lo, feat, weights=dec, slots=slots)
            out = guided_upsample(lo, lo_out, x, guide_radius, guide_eps)
        out = out.clamp(0, 1)
    return out[0] if squeeze else out


#: the ``task.model`` options that shape the network, and those of inference (the rest configure training)
USD_ARCH_KEYS = (
    "n_feats",
    "n_resblocks",
    "hidden",
    "enc_size",
    "pixel_input",
    "feat_unfold",
    "local_ensemble",
    "cell_decode",
    "min_cell",
)
USD_INFER_KEYS = (
    "adapt_steps",
    "adapt_lr",
    "adapt_queries",
    "adapt_size",
    "adapt_init",
    "adapt_schedule",
    "adapt_loss",
    "adapt_seed",
    "adapt_w_start",
    "adapt_w_end",
    "render_side",
    "guide_radius",
    "guide_eps",
)


def build_usd_net(opts: dict[str, Any]) -> USDNet:
    """The untrained :class:`USDNet` of a checkpoint's ``task.model`` options (``n_users`` required)."""
    if opts.get("n_users") is None:
        raise PrefstyleError("usd: the model options have no n_users (the number of training users)")
    arch = {k: opts[k] for k in USD_ARCH_KEYS if k in opts}
    arch.setdefault("min_cell", 2.0 / max(int(s) for s in opts.get("target_sizes", [48, 96])))
    return USDNet(n_users=int(opts["n_users"]), **arch)


def usd_from_net(net: nn.Module, opts: dict[str, Any]) -> USDModel:
    """The trained network behind the model interface, with the inference options of ``opts``."""
    assert isinstance(net, USDNet)
    return USDModel(net=net, **{k: opts[k] for k in USD_INFER_KEYS if k in opts})


register_architecture(USDModel.name, build_usd_net, usd_from_net)
