"""The `Style` abstraction: one rendition of a photo that a user can choose.

A style is a deterministic function of an image (and of its own parameters): the same input
and the same :meth:`Style.params` always give the same output. Every style can say its
parameters as a JSON-able dict, and :func:`from_params` rebuilds the style from that dict
(dispatching on its ``"kind"``).

Images are float tensors ``(B, 3, H, W)`` (a single ``(3, H, W)`` is accepted too) holding
sRGB-encoded values in ``[0, 1]``; outputs have the same shape, dtype and device, in ``[0, 1]``.

``is_global`` is True when the style is a per-pixel colour transform (the output at a pixel
depends only on that pixel's colour, possibly through statistics of the whole image). Such a
style can be baked into a 3D LUT with :meth:`Style.to_lut`; ``image_dependent`` is True when
that LUT depends on the image (gray-world, auto-levels, histogram equalisation), in which case
``to_lut`` needs the image to take its statistics from.
"""

from __future__ import annotations

import abc
import copy
import json
from typing import Any, ClassVar

import torch

STYLE_KINDS: tuple[str, ...] = ("preset", "params", "classical", "camera", "lut")

_KINDS: dict[str, type[Style]] = {}


def register_kind(kind: str):
    """Class decorator: ``from_params`` rebuilds dicts with this ``kind`` through ``cls._from_params``."""

    def deco(cls: type[Style]) -> type[Style]:
        _KINDS[kind] = cls
        return cls

    return deco


def as_batch(img: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Validate an image tensor; return it as float ``(B,3,H,W)`` and whether it was unbatched."""
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor image, got {type(img).__name__}")
    squeeze = img.dim() == 3
    x = img[None] if squeeze else img
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an image of shape (B,3,H,W) or (3,H,W), got {tuple(img.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point image in [0,1], got dtype {img.dtype}")
    return x, squeeze


def identity_grid(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Identity LUT ``(3,S,S,S)`` in the project's layout ``lut[c, b, g, r]`` (c = output R,G,B)."""
    if size < 2:
        raise ValueError(f"LUT size must be >= 2, got {size}")
    a = torch.linspace(0.0, 1.0, size, device=device)
    b, g, r = torch.meshgrid(a, a, a, indexing="ij")
    return torch.stack([r, g, b], dim=0)


def lut_as_image(lut: torch.Tensor) -> torch.Tensor:
    """View a ``(3,S,S,S)`` LUT as a ``(1,3,S,S*S)`` image (so a style can be run on its grid)."""
    s = lut.shape[-1]
    return lut.reshape(1, 3, s, s * s)


def image_as_lut(img: torch.Tensor, size: int) -> torch.Tensor:
    """Inverse of :func:`lut_as_image`."""
    return img.reshape(3, size, size, size)


class Style(abc.ABC):
    """One rendition. Subclasses implement :meth:`_render` and :meth:`_own_params`.

    ``strength`` (default 1) blends the rendition with the input (``x + s * (f(x) - x)``);
    styles whose parameters have a natural neutral point (presets) scale their parameters
    instead.
    """

    kind: ClassVar[str] = ""
    is_global: ClassVar[bool] = False
    image_dependent: ClassVar[bool] = False
    # When True, _render already honours self.strength (no output blending in apply()).
    _native_strength: ClassVar[bool] = False

    def __init__(self, name: str, description: str = "", strength: float = 1.0):
        self.name = str(name)
        self.description = str(description)
        self.strength = float(strength)
        if not (0.0 <= self.strength <= 2.0):
            raise ValueError(f"style strength must be in [0, 2], got {self.strength}")

    # -- to implement -------------------------------------------------------------------
    @abc.abstractmethod
    def _render(self, x: torch.Tensor) -> torch.Tensor:
        """Render a float32 batch ``(B,3,H,W)`` in [0,1]; may return values slightly outside."""

    @abc.abstractmethod
    def _own_params(self) -> dict[str, Any]:
        """The kind-specific parameters (JSON-able), without ``kind``/``name``/``strength``."""

    @classmethod
    @abc.abstractmethod
    def _from_params(cls, d: dict[str, Any]) -> Style:
        """Rebuild from a dict made by :meth:`params` (``kind`` already checked)."""

    # -- public API -----------------------------------------------------------------------
    def apply(self, img: torch.Tensor) -> torch.Tensor:
        """Render ``img`` (``(B,3,H,W)`` or ``(3,H,W)``, sRGB in [0,1]); same shape/dtype/device out."""
        x, squeeze = as_batch(img)
        dtype = x.dtype
        x = x.float().clamp(0.0, 1.0)
        if x.shape[0] == 0:
            out = x
        else:
            out = self._render(x)
            if not self._native_strength and self.strength != 1.0:
                out = x + self.strength * (out - x)
            out = torch.nan_to_num(out, nan=0.0).clamp(0.0, 1.0)
        out = out.to(dtype)
        return out[0] if squeeze else out

    __call__ = apply

    def params(self) -> dict[str, Any]:
        """JSON-able dict with everything needed to rebuild this style (see :func:`from_params`)."""
        d: dict[str, Any] = {"kind": self.kind, "name": self.name}
        d.update(self._own_params())
        if self.strength != 1.0:
            d["strength"] = self.strength
        if self.description:
            d["description"] = self.description
        return d

    def to_json(self, **kw: Any) -> str:
        """:meth:`params` as a JSON string."""
        return json.dumps(self.params(), **kw)

    def with_strength(self, strength: float) -> Style:
        """A copy of this style at another strength (0 = the input, 1 = the full style)."""
        other = copy.copy(self)
        other.strength = float(strength)
        if not (0.0 <= other.strength <= 2.0):
            raise ValueError(f"style strength must be in [0, 2], got {other.strength}")
        return other

    def to_lut(self, size: int = 33, image: torch.Tensor | None = None) -> torch.Tensor:
        """Bake this (global) style into a ``(3,S,S,S)`` LUT, layout ``lut[c, b, g, r]``.

        Image-dependent styles take their statistics from ``image`` (required for them).
        """
        if not self.is_global:
            raise ValueError(f"style {self.name!r} is spatially varying and cannot be baked into a LUT")
        if self.image_dependent and image is None:
            raise ValueError(f"style {self.name!r} depends on the image: pass image= to to_lut")
        grid = identity_grid(size)
        if self.image_dependent:
            assert image is not None
            out = self.apply_with_reference(lut_as_image(grid), image)
        else:
            out = self.apply(lut_as_image(grid))
        return image_as_lut(out, size)

    def apply_with_reference(self, img: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Render ``img`` with the statistics of ``reference`` (image-dependent global styles).

        For styles that do not depend on the image this is just :meth:`apply`.
        """
        return self.apply(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_json()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Style) and type(other) is type(self) and other.params() == self.params()

    def __hash__(self) -> int:
        return hash(self.to_json(sort_keys=True))


def from_params(d: dict[str, Any] | str) -> Style:
    """Rebuild any style from :meth:`Style.params` (a dict, or its JSON string)."""
    from prefstyle.errors import PrefstyleError

    if isinstance(d, str):
        d = json.loads(d)
    if not isinstance(d, dict) or "kind" not in d:
        raise PrefstyleError(f"style parameters need a 'kind' (one of {', '.join(STYLE_KINDS)}); got {d!r}")
    _ensure_kinds_loaded()
    kind = d["kind"]
    cls = _KINDS.get(kind)
    if cls is None:
        raise PrefstyleError(f"unknown style kind {kind!r}; known kinds: {', '.join(sorted(_KINDS))}")
    d = dict(d)
    strength = float(d.pop("strength", 1.0))
    style = cls._from_params(d)
    if "description" in d and not style.description:
        style.description = str(d["description"])
    return style.with_strength(strength) if strength != 1.0 else style


def _ensure_kinds_loaded() -> None:
    # Importing the modules registers their kinds.
    from prefstyle.styles import camera, classical, lut_style, presets  # noqa: F401
