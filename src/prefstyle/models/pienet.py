"""PieNet (Kim et al., "PieNet: Personalized Image Enhancement Network", ECCV 2020).

The authors never released code; this is a re-implementation from the paper's text.

Two networks and one vector per user:

* **Preference embedding** (:class:`PreferenceEmbedding`): a twin (weight-shared) backbone,
  ResNet-18 in the paper, whose pooled feature is projected to ``dim`` = 512 and L2-normalised.
  Images are seen at ``embed_size``² (256 in the paper). Trained with one learnable preference
  vector per training user by the triplet loss (squared Euclidean distance, margin 0.2) on
  (user, preferred, non-preferred) triplets, with rot90 augmentation.
* **PieNet** (:class:`PieNetNet`): a backbone encoder and a decoder of four personalized
  up-sampling blocks (PUBs, :class:`PersonalizedUpBlock`), each taking the previous block's
  output (upsampled ×2), a skip input of its scale and the (projected, tiled) preference
  vector, fused by a convolution and refined by a residual block; a final convolution predicts
  the delta image ΔI, and the output is ``I + ΔI``. ``wiring="paper"``: the decoder starts
  from the encoder's stride-16 features (after residual blocks 6); the skips of the four PUBs
  are the features after residual blocks 4 and 2, after conv1, and the input image itself (the
  fourth PUB runs at full resolution). ``wiring="legacy"`` is this package's first version,
  kept so its checkpoints (the packaged CPU model among them) load and render identically: a
  global start vector from the pooled feature, plain conv–conv blocks at strides 16..2 (conv1
  features in the fourth) and the input image concatenated before a two-layer head. A
  checkpoint whose card has no ``wiring`` is legacy. Loss (see
  :mod:`prefstyle.train.tasks.pienet`): L1 + 0.4·Lp (distance of the output's and the target's
  preference embeddings) + 0.01·Lt (edge-aware TV of ΔI); preference vectors perturbed by noise
  of norm 0.1.
* **New users** (:meth:`PieNetModel.personalize`): scheme 2 (default) averages the embeddings
  of the user's preferred images (and re-normalises); scheme 1 optimises a new preference vector
  by the triplet loss, embedding frozen, each preferred image against ``scheme1_negatives``
  (3, as in the paper) non-preferred images.

Full resolution (:meth:`PieNetModel.render`): the network runs on a copy whose long side is
``render_size`` (512 in the paper); its output is carried to the full-size image by
:func:`guided_upsample`, a colour guided filter (He et al.'s fast guided filter) on the delta:
per low-res pixel the delta ``out − in`` is fitted as a local affine function of the input colour
(``A·in + b``, 3×3 + 3), the coefficients are smoothed, upsampled bilinearly and applied to the
full-resolution input. The delta therefore follows the full-size image's edges. For 8-bit
photos ``prefstyle enhance`` takes a faster path (:meth:`PieNetModel.luts`): the 3D LUT that
best reproduces the thumbnail's rendering, applied to the full image (global edits only).

Checkpoints: what :mod:`prefstyle.train` writes (``model.safetensors`` + ``model.json``); build
the inference model with ``PieNetModel(checkpoint=PATH)``, ``create_model("pienet",
checkpoint=PATH)`` or ``prefstyle.models.load(PATH)``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.resize import resize_long_side
from prefstyle.losses import triplet_loss
from prefstyle.models.backbones import (
    Backbone,
    EfficientNetLite0Backbone,
    ResNet18Backbone,
    _torchvision_resnet18_file,
    create_backbone,
    resize_to,
)
from prefstyle.models.base import (
    PersonalizationModel,
    Profile,
    Reference,
    register_model,
)
from prefstyle.models.card import read_card
from prefstyle.models.loading import register_architecture

log = logging.getLogger(__name__)

__all__ = [
    "PersonalizedUpBlock",
    "PieNetConfig",
    "PieNetModel",
    "PieNetNet",
    "PieNetSystem",
    "PreferenceEmbedding",
    "build_pienet_system",
    "guided_upsample",
    "optimize_preference",
    "perturb_preference",
]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------

#: nodes per axis of the per-photo LUT of the 8-bit fast path (:meth:`PieNetModel.luts`)
LUT_FAST_PATH_SIZE = 17
#: decoder wirings (see the module docstring); a checkpoint without the option is "legacy"
WIRINGS = ("paper", "legacy")


@dataclass
class PieNetConfig:
    """Architecture of a PieNet system (what a checkpoint's ``task.model`` section holds).

    backbone / embed_backbone: ``resnet18`` or ``efficientnet_lite0`` for PieNet's encoder and
    for the embedding network. weights / embed_weights: ``"default"`` (ImageNet for
    efficientnet_lite0, random for resnet18), ``None``, ``"imagenet"``, a path to torchvision's
    resnet18 state dict (a missing file is a one-line error; nothing is ever downloaded;
    :func:`prefstyle.models.backbones.create_backbone`), or ``"auto"``: ImageNet where the torch
    hub cache has it, random init otherwise. width: ResNet width (64 = ResNet-18).
    dim: preference-vector size. embed_size: side of the square the embedding sees.
    decoder: channels of the four up-sample blocks (strides 8, 4, 2, 1; legacy: 16, 8, 4, 2). pref_channels:
    channels each block gives the (projected, tiled) preference vector. head_channels: channels
    of the final layer. users: training users, in the order of the preference-vector rows.
    render_size: long side PieNet runs at when rendering larger images. guided_radius /
    guided_eps: the full-resolution guided upsampling (radius in low-res pixels). wiring:
    ``paper`` (default) or ``legacy`` (the decoder of checkpoints written before the option;
    :meth:`from_dict` reads a missing ``wiring`` as legacy; head_channels is used by legacy only).
    """

    backbone: str = "resnet18"
    embed_backbone: str = "resnet18"
    weights: Any = "default"
    embed_weights: Any = "default"
    width: int = 64
    dim: int = 512
    embed_size: int = 256
    decoder: tuple[int, ...] = (256, 128, 64, 32)
    pref_channels: int = 64
    head_channels: int = 16
    users: list[str] = field(default_factory=list)
    render_size: int = 512
    guided_radius: int = 2
    guided_eps: float = 1e-4
    wiring: str = "paper"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PieNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PrefstyleError(f"unknown PieNet option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        kw = dict(d)
        if "decoder" in kw:
            kw["decoder"] = tuple(int(c) for c in kw["decoder"])
        if "users" in kw:
            kw["users"] = [str(u) for u in kw["users"]]
        kw.setdefault("wiring", "legacy")  # checkpoints from before the option
        cfg = cls(**kw)
        if cfg.wiring not in WIRINGS:
            raise PrefstyleError(f"unknown PieNet wiring {cfg.wiring!r} (expected one of {', '.join(WIRINGS)})")
        if len(cfg.decoder) != 4:
            raise PrefstyleError(f"PieNet decoder needs 4 block widths (one per PUB), got {list(cfg.decoder)}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["decoder"] = list(self.decoder)
        return d


def _auto_weights(name: str, width: int) -> Any:
    """``weights="auto"``: ImageNet weights where they are on this machine, else random init.

    resnet18: torchvision's ``resnet18-*.pth`` in the torch hub cache (``$TORCH_HOME`` or
    ``~/.cache/torch/hub/checkpoints``; nothing is downloaded), only at width 64;
    efficientnet_lite0: its packaged weights.
    """
    if name != "resnet18":
        return "imagenet"
    path = _torchvision_resnet18_file() if width == 64 else None
    log.info("pienet %s init: %s", name, path or "random (no local ImageNet resnet18-*.pth, or width != 64)")
    return path


def _backbone(name: str, weights: Any, width: int) -> Backbone:
    """Backbone ``name``; ``weights``: see :class:`PieNetConfig` (``"auto"``: :func:`_auto_weights`)."""
    if weights == "auto":
        weights = _auto_weights(name, width)
    kw = {"width": width} if name == "resnet18" else {}
    return create_backbone(name, weights=weights, **kw)


def _features_only(encoder: Backbone) -> Backbone:
    """Drop the stages after the stride-16 features (unused by the paper wiring's decoder), so
    every parameter left gets a gradient; the encoder is then called with ``pool=False`` only."""
    if isinstance(encoder, ResNet18Backbone):
        del encoder.layer4
    elif isinstance(encoder, EfficientNetLite0Backbone):
        encoder.blocks = encoder.blocks[:5]
        del encoder.conv_head, encoder.bn2
    return encoder


# --------------------------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------------------------


class PreferenceEmbedding(nn.Module):
    """Twin embedding network: images ``(B,3,H,W)`` in [0,1] -> L2-normalised ``(B, dim)``.

    Images are resized to ``size``² (antialiased bilinear) first. :meth:`features` gives the
    backbone's four feature maps at that size (the perceptual loss's features).
    """

    def __init__(
        self, backbone: str = "resnet18", weights: Any = "default", dim: int = 512, size: int = 256, width: int = 64
    ):
        super().__init__()
        self.backbone = _backbone(backbone, weights, width)
        self.head = nn.Linear(self.backbone.pooled_dim, dim)
        self.size = int(size)
        self.dim = int(dim)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return resize_to(x, self.size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(self._prep(x))
        return F.normalize(self.head(out.pooled), dim=1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four backbone feature maps of ``x`` seen at ``size``² (strides 2..16)."""
        return self.backbone(self._prep(x), pool=False).features


class ResidualBlock(nn.Module):
    """``relu(x + conv3×3(relu(conv3×3(x))))``: ``(B,C,H,W)`` -> ``(B,C,H,W)``."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class PersonalizedUpBlock(nn.Module):
    """One PUB: ``[up(prev), skip, tile(P·p)]`` -> conv3×3 -> ReLU -> residual block.

    prev ``(B,C_in,h,w)`` is resized (bilinear) to the skip input's size ``(B,C_skip,H,W)``;
    the preference vector ``(B,dim)`` is projected to ``pref_channels`` and tiled over it.
    Output ``(B,C_out,H,W)``. ``residual=False``: the legacy block (conv3×3 -> ReLU -> conv3×3
    -> ReLU, no residual connection).
    """

    def __init__(self, in_ch: int, skip_ch: int, dim: int, pref_ch: int, out_ch: int, residual: bool = True):
        super().__init__()
        self.pref = nn.Linear(dim, pref_ch)
        self.conv1 = nn.Conv2d(in_ch + skip_ch + pref_ch, out_ch, 3, padding=1)
        self.residual = bool(residual)
        if self.residual:
            self.res = ResidualBlock(out_ch)
        else:
            self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)

    def forward(self, prev: torch.Tensor, skip: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        if prev.shape[-2:] != skip.shape[-2:]:
            prev = F.interpolate(prev, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        pe = F.relu(self.pref(p))[:, :, None, None].expand(-1, -1, *skip.shape[-2:])
        h = F.relu(self.conv1(torch.cat([prev, skip, pe], dim=1)))
        return self.res(h) if self.residual else F.relu(self.conv2(h))


class PieNetNet(nn.Module):
    """Preference-conditioned encoder-decoder: ``(x (B,3,H,W) in [0,1], p (B,dim)) -> x + ΔI``.

    The output is *not* clamped (training losses see the raw sum; rendering clamps). The final
    layer starts with tiny weights (std 1e-3) and zero bias: an untrained network is almost the
    identity, yet gradients reach every layer from the first step. :meth:`delta` gives ΔI alone.
    Wiring (``cfg.wiring``): see the module docstring.
    """

    def __init__(self, cfg: PieNetConfig):
        super().__init__()
        self.wiring = cfg.wiring
        self.encoder = _backbone(cfg.backbone, cfg.weights, cfg.width)
        c2, c4, c8, c16 = self.encoder.channels
        d = cfg.decoder
        dim, pc = cfg.dim, cfg.pref_channels
        if self.wiring == "legacy":
            self.start = nn.Linear(self.encoder.pooled_dim + dim, d[0])
            self.blocks = nn.ModuleList(
                [
                    PersonalizedUpBlock(d[0], c16, dim, pc, d[0], residual=False),
                    PersonalizedUpBlock(d[0], c8, dim, pc, d[1], residual=False),
                    PersonalizedUpBlock(d[1], c4, dim, pc, d[2], residual=False),
                    PersonalizedUpBlock(d[2], c2, dim, pc, d[3], residual=False),
                ]
            )
            self.head1 = nn.Conv2d(d[3] + 3, cfg.head_channels, 3, padding=1)
            self.head2 = nn.Conv2d(cfg.head_channels, 3, 3, padding=1)
        else:
            _features_only(self.encoder)
            self.blocks = nn.ModuleList(
                [
                    PersonalizedUpBlock(c16, c8, dim, pc, d[0]),
                    PersonalizedUpBlock(d[0], c4, dim, pc, d[1]),
                    PersonalizedUpBlock(d[1], c2, dim, pc, d[2]),
                    PersonalizedUpBlock(d[2], 3, dim, pc, d[3]),
                ]
            )
            self.head2 = nn.Conv2d(d[3], 3, 3, padding=1)
        nn.init.normal_(self.head2.weight, std=1e-3)
        nn.init.zeros_(self.head2.bias)  # type: ignore[arg-type]  # Conv2d built with bias=True

    def delta(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The delta image ΔI ``(B,3,H,W)`` for images ``x`` and preference vectors ``p`` ``(B,dim)``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (B,3,H,W), got {tuple(x.shape)}")
        if p.ndim != 2 or p.shape[0] != x.shape[0]:
            raise ValueError(f"expected one preference vector per image (B,dim), got {tuple(p.shape)}")
        if self.wiring == "legacy":
            enc = self.encoder(x)
            f2, f4, f8, f16 = enc.features
            h = F.relu(self.start(torch.cat([enc.pooled, p], dim=1)))[:, :, None, None]
            h = h.expand(-1, -1, *f16.shape[-2:])
            for block, skip in zip(self.blocks, (f16, f8, f4, f2)):
                h = block(h, skip, p)
            h = F.interpolate(h, size=x.shape[-2:], mode="bilinear", align_corners=False)
            h = F.relu(self.head1(torch.cat([h, x], dim=1)))
            return self.head2(h)
        f2, f4, f8, f16 = self.encoder(x, pool=False).features
        h = f16
        for block, skip in zip(self.blocks, (f8, f4, f2, x)):
            h = block(h, skip, p)
        return self.head2(h)

    def forward(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return x + self.delta(x, p)


class PieNetSystem(nn.Module):
    """Everything PieNet trains: the embedding, PieNet, and one preference vector per training user.

    ``user_vectors`` ``(U, dim)`` are raw parameters (the triplet loss's anchors);
    :meth:`preference` returns them L2-normalised. ``user_centroids`` ``(U, dim)`` (a buffer,
    valid when ``centroids_ready`` is 1) holds each training user's scheme-2 vector: the
    normalised mean embedding of some of their preferred images, i.e. exactly what a new user
    gets. :meth:`conditioning` is what PieNet is trained with: the centroids when they are
    set, else the learned vectors.
    """

    user_centroids: torch.Tensor
    centroids_ready: torch.Tensor

    def __init__(self, cfg: PieNetConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = PreferenceEmbedding(cfg.embed_backbone, cfg.embed_weights, cfg.dim, cfg.embed_size, cfg.width)
        self.net = PieNetNet(cfg)
        n = max(len(cfg.users), 1)
        self.user_vectors = nn.Parameter(F.normalize(torch.randn(n, cfg.dim), dim=1))
        self.register_buffer("user_centroids", torch.zeros(n, cfg.dim))
        self.register_buffer("centroids_ready", torch.zeros(()))

    def preference(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised preference vectors of training users ``idx`` (all when None): ``(B, dim)``."""
        v = self.user_vectors if idx is None else self.user_vectors[idx]
        return F.normalize(v, dim=1)

    def conditioning(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """The vectors PieNet is conditioned on for training users ``idx``: ``(B, dim)``."""
        if bool(self.centroids_ready > 0):
            c = self.user_centroids if idx is None else self.user_centroids[idx]
            return F.normalize(c, dim=1)
        return self.preference(idx)

    def mean_preference(self) -> torch.Tensor:
        """The normalised mean of the training users' conditioning vectors ``(dim,)``: an 'average user'."""
        return F.normalize(self.conditioning().mean(0), dim=0)


def perturb_preference(p: torch.Tensor, noise: torch.Tensor, norm: float = 0.1) -> torch.Tensor:
    """``p + norm · noise/‖noise‖`` per row: ``(B,dim)`` -> ``(B,dim)`` (``noise`` e.g. Gaussian)."""
    return p + norm * F.normalize(noise, dim=1)


def optimize_preference(
    pos: torch.Tensor,
    neg: torch.Tensor,
    init: torch.Tensor,
    steps: int = 200,
    lr: float = 0.05,
    margin: float = 0.2,
    negatives: int = 1,
) -> torch.Tensor:
    """Scheme 1: a new preference vector ``(dim,)`` by the triplet loss, embedding frozen.

    ``pos``/``neg``: embeddings ``(N,dim)`` / ``(M,dim)`` of the preferred and non-preferred
    images. ``negatives``: non-preferred images per preferred one (the paper: 3): preferred
    image ``i`` is paired with non-preferred images ``i, i+1, .., i+negatives-1`` (mod ``M``);
    at most ``M`` per positive. ``init`` ``(dim,)``: the starting point (scheme 2's mean).
    Adam on the raw vector; the result is L2-normalised, as the triplet loss sees it.
    """
    v = init.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([v], lr=lr)
    pos, neg = pos.detach(), neg.detach()
    k = max(1, min(int(negatives), neg.shape[0]))
    rows = torch.arange(pos.shape[0])
    pos = pos.repeat(k, 1)
    neg = neg[torch.cat([(rows + j) % neg.shape[0] for j in range(k)])]
    with torch.enable_grad():
        for _ in range(steps):
            loss = triplet_loss(F.normalize(v, dim=0), pos, neg, margin=margin)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return F.normalize(v.detach(), dim=0)


# --------------------------------------------------------------------------------------------
# full-resolution rendering
# --------------------------------------------------------------------------------------------


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a ``(2r+1)²`` window, edges handled by reflection (``r=0``: identity)."""
    if r <= 0:
        return x
    k = 2 * r + 1
    if min(x.shape[-2:]) <= r:
        xp = F.pad(x, (r, r, r, r), mode="replicate")
    else:
        xp = F.pad(x, (r, r, r, r), mode="reflect")
    return F.avg_pool2d(xp, k, stride=1)


def guided_coefficients(lo_in: torch.Tensor, lo_out: torch.Tensor, radius: int = 2, eps: float = 1e-4) -> torch.Tensor:
    """Local affine colour transforms ``(B,12,h,w)`` (3×3 ``A`` row-major, then ``b``) with
    ``lo_out ≈ A·lo_in + b`` in every ``(2r+1)²`` window, ridge ``eps`` on ``A``, smoothed as in
    the guided filter. ``lo_in``, ``lo_out``: ``(B,3,h,w)``."""
    B, _, h, w = lo_in.shape
    I, O = lo_in.double(), lo_out.double()  # noqa: E741 - the guided filter's guide I and output O
    mI, mO = _box(I, radius), _box(O, radius)
    ii = torch.stack([I[:, i] * I[:, j] for i in range(3) for j in range(3)], 1)
    io = torch.stack([O[:, i] * I[:, j] for i in range(3) for j in range(3)], 1)
    cov_ii = _box(ii, radius) - torch.stack([mI[:, i] * mI[:, j] for i in range(3) for j in range(3)], 1)
    cov_io = _box(io, radius) - torch.stack([mO[:, i] * mI[:, j] for i in range(3) for j in range(3)], 1)
    sigma = cov_ii.permute(0, 2, 3, 1).reshape(B, h, w, 3, 3) + eps * torch.eye(3, dtype=I.dtype)
    cross = cov_io.permute(0, 2, 3, 1).reshape(B, h, w, 3, 3)  # [out i, in j]
    # A Σ = cross  <=>  Σ Aᵀ = crossᵀ (Σ symmetric)
    A = torch.linalg.solve(sigma, cross.transpose(-1, -2)).transpose(-1, -2)
    A = A.reshape(B, h, w, 9).permute(0, 3, 1, 2)
    b = mO - torch.einsum("bijhw,bjhw->bihw", A.reshape(B, 3, 3, h, w), mI)
    coef = torch.cat([_box(A, radius), _box(b, radius)], dim=1)
    return coef.float()


def apply_coefficients(img: torch.Tensor, coef: torch.Tensor, chunk_rows: int = 256) -> torch.Tensor:
    """Apply ``(B,12,h,w)`` coefficients, upsampled bilinearly (``align_corners=False``), to
    ``img`` ``(B,3,H,W)``: ``out = A·img + b`` per pixel, in row chunks (bounded memory)."""
    B, _, H, W = img.shape
    out = torch.empty_like(img)
    xs = (torch.arange(W, dtype=torch.float32, device=img.device) + 0.5) / W * 2 - 1
    for r0 in range(0, H, chunk_rows):
        r1 = min(H, r0 + chunk_rows)
        ys = (torch.arange(r0, r1, dtype=torch.float32, device=img.device) + 0.5) / H * 2 - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1)[None].expand(B, -1, -1, -1)
        c = F.grid_sample(coef.to(img.dtype), grid, mode="bilinear", padding_mode="border", align_corners=False)
        part = img[:, :, r0:r1]
        A = c[:, :9].reshape(B, 3, 3, r1 - r0, W)
        out[:, :, r0:r1] = (A * part[:, None]).sum(2) + c[:, 9:]
    return out


def guided_upsample(
    lo_in: torch.Tensor, lo_out: torch.Tensor, hi_in: torch.Tensor, radius: int = 2, eps: float = 1e-4
) -> torch.Tensor:
    """Carry a low-res edit to full resolution: the delta, edge-aware, by a colour guided filter.

    ``lo_in``/``lo_out``: ``(B,3,h,w)`` the downscaled input and the model's output for it;
    ``hi_in``: ``(B,3,H,W)`` the full-size input. The delta ``lo_out − lo_in`` is modelled in
    every window as a local affine function of the input colour (ridge ``eps`` towards a constant
    delta, so flat regions get the local mean delta and a zero delta stays exactly zero); the
    smoothed coefficients are upsampled and applied to ``hi_in``, so the delta follows the
    full-size image's edges. Returns ``hi_in + delta`` ``(B,3,H,W)``, not clamped.
    """
    if lo_in.shape != lo_out.shape or lo_in.shape[:2] != hi_in.shape[:2]:
        raise ValueError(f"shapes do not fit: {tuple(lo_in.shape)}, {tuple(lo_out.shape)}, {tuple(hi_in.shape)}")
    coef = guided_coefficients(lo_in, lo_out - lo_in, radius, eps)
    return hi_in + apply_coefficients(hi_in, coef)


# --------------------------------------------------------------------------------------------
# the inference model
# --------------------------------------------------------------------------------------------


@register_model("pienet")
class PieNetModel(PersonalizationModel):
    """PieNet behind the common interface (see the module docstring).

    Build from a checkpoint (``checkpoint=PATH``) or from a trained :class:`PieNetSystem`
    (``system=``, as the trainer does). ``scheme`` 2 (default: mean of the preferred images'
    embeddings) or 1 (triplet optimisation with the preferred and non-preferred images;
    ``scheme1_steps``, ``scheme1_lr``, ``scheme1_negatives``: non-preferred images per
    preferred one, 3 as in the paper, drawn from all the references' non-preferred images). ``render_size``: long side the network runs at
    (default: the checkpoint's); larger images get the guided upsampling.
    """

    name = "pienet"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        system: PieNetSystem | None = None,
        scheme: int = 2,
        render_size: int | None = None,
        scheme1_steps: int = 200,
        scheme1_lr: float = 0.05,
        scheme1_negatives: int = 3,
        device: str = "cpu",
        card: dict[str, Any] | None = None,
    ):
        from prefstyle.fsutil import load_safetensors

        if scheme not in (1, 2):
            raise PrefstyleError(f"PieNet personalization scheme must be 1 or 2, got {scheme}")
        if (checkpoint is None) == (system is None):
            if checkpoint is None:
                raise PrefstyleError(
                    "pienet needs trained weights: pass a checkpoint (--model runs/NAME) or train one with "
                    "`prefstyle train configs/pienet_cpu.yaml`"
                )
            raise ValueError("pass either checkpoint= or system=, not both")
        self.card: dict[str, Any] = dict(card or {})
        if checkpoint is not None:
            card_, weights = read_card(checkpoint)
            if card_.get("task", {}).get("name") != self.name:
                raise PrefstyleError("not a PieNet checkpoint", path=weights.with_suffix(".json"))
            self.card = card_
            system = build_pienet_system(card_["task"].get("model", {}))
            missing, unexpected = system.load_state_dict(load_safetensors(weights, "checkpoint weights"), strict=False)
            if missing or unexpected:
                raise PrefstyleError(
                    f"checkpoint does not fit the PieNet architecture (missing {missing[:3]}, unexpected {unexpected[:3]})",
                    path=weights,
                )
            self.checkpoint_path: str | None = str(weights.parent.resolve())
            self.weights_path: Path | None = weights
        else:
            self.checkpoint_path, self.weights_path = None, None
        assert system is not None
        self.system = system.to(device).eval()
        for prm in self.system.parameters():
            prm.requires_grad_(False)
        self.cfg: PieNetConfig = system.cfg
        self.scheme, self.scheme1_steps, self.scheme1_lr = scheme, scheme1_steps, scheme1_lr
        self.scheme1_negatives = int(scheme1_negatives)
        self.render_size = int(render_size or self.cfg.render_size)
        self.device = torch.device(device)
        self.checkpoint_id = self._weights_id()

    def _weights_id(self) -> str:
        h = hashlib.sha256()
        for k, v in sorted(self.system.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes()[:4096])
        return h.hexdigest()[:16]

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "checkpoint_id": self.checkpoint_id,
            "scheme": self.scheme,
            "render_size": self.render_size,
            "backbone": self.cfg.backbone,
            "embed_backbone": self.cfg.embed_backbone,
            "dim": self.cfg.dim,
            "wiring": self.cfg.wiring,
        }

    def check_profile(self, profile: Profile) -> None:
        super().check_profile(profile)
        made_by = profile.model_config.get("checkpoint_id")
        if made_by is not None and made_by != self.checkpoint_id:
            raise PrefstyleError(
                f"this profile was made by another PieNet checkpoint ({made_by}, this one is {self.checkpoint_id}); "
                "personalize again with this model"
            )
        p = profile.tensors.get("preference")
        if p is None or p.shape != (self.cfg.dim,):
            raise PrefstyleError(f"PieNet profile has no preference vector of size {self.cfg.dim}")

    # -- personalization -----------------------------------------------------------------

    @torch.no_grad()
    def embed(self, imgs: Sequence[torch.Tensor], batch: int = 16) -> torch.Tensor:
        """Embeddings ``(N, dim)`` of images ``(3,H,W)`` (any sizes) in [0,1]."""
        out = []
        size = self.cfg.embed_size
        for i in range(0, len(imgs), batch):
            x = torch.stack([resize_to(im[None].float(), size)[0] for im in imgs[i : i + batch]]).to(self.device)
            out.append(self.system.embedding(x.clamp(0, 1)).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.cfg.dim)

    def preference_from(self, refs: list[Reference], scheme: int | None = None) -> torch.Tensor:
        """The preference vector ``(dim,)`` of a user with references ``refs``."""
        scheme = self.scheme if scheme is None else scheme
        if not refs:
            return self.system.mean_preference().detach().cpu()
        pos = self.embed([r.preferred for r in refs])
        p = F.normalize(pos.mean(0), dim=0)
        if scheme == 1:
            neg = self.embed([r.other for r in refs])
            p = optimize_preference(
                pos, neg, p, steps=self.scheme1_steps, lr=self.scheme1_lr, negatives=self.scheme1_negatives
            )
        return p

    def training_users(self) -> list[str]:
        """The names of the users PieNet was trained with (rows of the learned preference vectors)."""
        return list(self.cfg.users)

    def training_user_profile(self, name: str) -> Profile:
        """The profile of training user ``name``: the vector PieNet was conditioned on for it in
        training (its learned preference vector f_k, or its centroid under ``condition: centroid``).
        This is how the paper scores the FiveK experts in its multi-user protocol."""
        if name not in self.cfg.users:
            shown = ", ".join(self.cfg.users[:8]) + (" ..." if len(self.cfg.users) > 8 else "")
            raise PrefstyleError(f"no training user {name!r} in this PieNet checkpoint (users: {shown})")
        idx = torch.tensor([self.cfg.users.index(name)], device=self.device)
        p = self.system.conditioning(idx)[0].detach().cpu()
        return Profile(
            model=self.name,
            user=name,
            model_config=self.config(),
            data={"scheme": "training-user", "training_user": name},
            tensors={"preference": p.float()},
        )

    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        p = self.preference_from(refs)
        return Profile(
            model=self.name,
            user=user,
            model_config=self.config(),
            data={"scheme": self.scheme if refs else 0, "n_refs": len(refs)},
            tensors={"preference": p.float()},
        )

    def personalize_liked(self, images: list[torch.Tensor], user: str | None = None) -> Profile:
        """PieNet's scheme 2 on photos the user likes: the normalised mean of their embeddings."""
        if not images:
            raise PrefstyleError("no liked photos to personalize from")
        p = F.normalize(self.embed(images).mean(0), dim=0)
        return Profile(
            model=self.name,
            user=user,
            model_config=self.config(),
            data={"scheme": 2, "n_liked": len(images)},
            tensors={"preference": p.float()},
        )

    def prepare_torch_free(self) -> None:
        """Export the network to ONNX into the cache (:mod:`prefstyle.models.pienet_onnx`), so that
        ``enhance`` renders 8-bit photos of this checkpoint's profiles without torch."""
        from prefstyle.models.pienet_onnx import export_network

        export_network(self, LUT_FAST_PATH_SIZE)

    # -- rendering -----------------------------------------------------------------------

    @torch.no_grad()
    def render_vector(self, img: torch.Tensor, p: torch.Tensor, full_size: bool = False) -> torch.Tensor:
        """Render ``(B,3,H,W)`` with preference vector ``p`` ``(dim,)`` or ``(B,dim)``; clamped to [0,1].

        Images whose long side exceeds ``render_size`` run downscaled and are guided-upsampled,
        unless ``full_size`` (then the network runs on the full image: slower, more memory).
        """
        x = img[None] if img.ndim == 3 else img
        dev_in = x.device
        x = x.to(self.device, torch.float32)
        p = p.to(self.device, torch.float32)
        pb = p.expand(x.shape[0], -1) if p.ndim == 1 else p
        if full_size or max(x.shape[-2:]) <= self.render_size:
            out = self.system.net(x, pb)
        else:
            lo = resize_long_side(x, self.render_size).clamp(0, 1)
            lo_out = self.system.net(lo, pb)
            out = guided_upsample(lo, lo_out, x, self.cfg.guided_radius, self.cfg.guided_eps)
        out = out.clamp_(0, 1).to(dev_in)
        return out[0] if img.ndim == 3 else out

    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        self.check_profile(profile)
        return self.render_vector(img, profile.tensors["preference"])

    @torch.no_grad()
    def luts(self, img: torch.Tensor, profile: Profile, size: int = LUT_FAST_PATH_SIZE) -> torch.Tensor:
        """Per-image 3D LUTs ``(B,3,size,size,size)`` that reproduce PieNet's rendering of ``img``.

        The fast path of ``prefstyle enhance`` for 8-bit photos: the network runs at
        ``render_size`` as in :meth:`render`, and the LUT that best maps that thumbnail to its
        rendering (:func:`~prefstyle.imaging.lut_fit.fit_lut`) is applied to the full image.
        It keeps every global colour and tone change and drops what varies across the frame
        (PieNet's local edits, which :meth:`render` carries by guided upsampling): on 12 MP
        photos of the crowd's users the two differ by 0.1–0.3 mean ΔE00 (docs/BENCHMARKS.md).
        ``img``: ``(B,3,H,W)`` in [0,1].
        """
        from prefstyle.imaging.lut_fit import fit_lut, lut_samples

        self.check_profile(profile)
        x = (img[None] if img.ndim == 3 else img).to(self.device, torch.float32)
        lo = resize_long_side(x, self.render_size).clamp(0, 1)
        p = profile.tensors["preference"].to(self.device, torch.float32)
        lo_out = self.system.net(lo, p.expand(lo.shape[0], -1)).clamp(0, 1).cpu()
        lo = lo.cpu()
        # every pixel of the thumbnail (binned by fit_lut): the torch-free path fits the same samples
        every = lo.shape[-2] * lo.shape[-1]
        pairs = zip(lo, lo_out, strict=True)
        return torch.stack([fit_lut(*lut_samples([a], [b], max_per_image=every), size=size) for a, b in pairs])


# --------------------------------------------------------------------------------------------
# rebuilding from a checkpoint
# --------------------------------------------------------------------------------------------


def build_pienet_system(opts: dict[str, Any], pretrained: bool = False) -> PieNetSystem:
    """The untrained :class:`PieNetSystem` of a checkpoint's (or config's) ``task.model`` options.

    Options that are not :class:`PieNetConfig` fields (``objective``: training) are ignored.
    ``pretrained``: read the backbones' pretrained ImageNet weights (training from scratch);
    False when a checkpoint's weights are loaded into the system anyway.
    """
    known = {f.name for f in fields(PieNetConfig)}
    cfg = PieNetConfig.from_dict({k: v for k, v in opts.items() if k in known})
    if not pretrained:
        cfg.weights, cfg.embed_weights = None, None
    return PieNetSystem(cfg)


def pienet_from_system(system: nn.Module, opts: dict[str, Any]) -> PieNetModel:
    """A trained :class:`PieNetSystem` (on its device) behind the model interface."""
    assert isinstance(system, PieNetSystem)
    return PieNetModel(system=system, device=str(next(system.parameters()).device))


register_architecture(PieNetModel.name, build_pienet_system, pienet_from_system)
