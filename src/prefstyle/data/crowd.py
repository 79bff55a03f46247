"""Simulated people, devices and their tastes: the ground truth behind a simulated crowd.

A simulated *user* is a person on one device (``person@device``), as in the pairs format.

* :class:`Taste` is the person's latent preference: an ideal rendition for every image. It is a
  target retouch in the style universe: a :class:`~prefstyle.imaging.params.RetouchParams`
  (parametric), optionally on top of a base style (a camera rendering or preset baked as a
  look, "LUT-based"), and optionally scene dependent (the person wants dark scenes brighter).
* :class:`Device` is the display through which the person sees both images: gamma, white point
  and brightness.
* :class:`Person` chooses between two renditions by a Bradley-Terry model on the perceptual
  distance (mean CIEDE2000 in CIELAB *as seen on the device*) of each rendition to their ideal,
  with a per-person temperature; careless persons answer fast and near-randomly.

Images are float tensors ``(B, 3, H, W)``, sRGB-encoded, in ``[0, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from prefstyle.imaging.color import delta_e_2000, luminance, rgb_to_lab, srgb_to_linear
from prefstyle.imaging.params import RetouchParams
from prefstyle.imaging.pipeline import apply_retouch_vector

# Scene dependence: exposure change (EV) at most this far from the person's base exposure.
MAX_SCENE_EV = 1.5


@dataclass(frozen=True)
class Device:
    """A display. ``view`` maps an sRGB image to CIELAB of what the viewer sees on it.

    gamma: display gamma (2.2 is a standard display; 1.8..2.6 here), applied to encoded values.
    white_shift: [-1, 1], + warmer white point (red gain up, blue gain down, 8 % at 1).
    brightness: relative peak luminance (0.6..1.2); a dim display darkens everything it shows.
    """

    name: str
    gamma: float = 2.2
    white_shift: float = 0.0
    brightness: float = 1.0

    def view(self, img: torch.Tensor) -> torch.Tensor:
        """``(B,3,H,W)`` sRGB in [0,1] -> ``(B,3,H,W)`` CIELAB as seen on this display."""
        return rgb_to_lab(self.seen_srgb(img))

    def seen_srgb(self, img: torch.Tensor) -> torch.Tensor:
        """``(B,3,H,W)`` sRGB in [0,1] -> the sRGB encoding ``(B,3,H,W)`` of the light this display emits."""
        lin = img.clamp(0.0, 1.0).pow(self.gamma)
        gains = torch.tensor(
            [1.0 + 0.08 * self.white_shift, 1.0, 1.0 - 0.08 * self.white_shift], dtype=img.dtype, device=img.device
        ).view(1, 3, 1, 1)
        lin = (lin * gains * self.brightness).clamp(0.0, 1.0)
        # Back to an sRGB encoding only so that colour conversions (which linearise sRGB) see `lin`.
        return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp_min(1e-12).pow(1 / 2.4) - 0.055)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "gamma": self.gamma, "white_shift": self.white_shift, "brightness": self.brightness}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Device:
        return cls(**d)


@dataclass(frozen=True)
class Taste:
    """A person's ideal rendition of any image.

    params: the target retouch (applied last).
    base_style: JSON params of a style from :mod:`prefstyle.styles` applied first (a "look"), or None.
    base_mix: [0, 1] how much of ``base_style`` (0 = none, 1 = fully).
    target_brightness: mean linear luminance the person wants a scene to have, or None for a
        scene-independent taste. ``brightness_gain`` in [0, 1] is how much of the gap in EV the
        person's ideal closes (at most :data:`MAX_SCENE_EV`).
    """

    params: RetouchParams
    base_style: dict[str, Any] | None = None
    base_mix: float = 0.0
    target_brightness: float | None = None
    brightness_gain: float = 0.0

    def exposure_offsets(self, img: torch.Tensor) -> torch.Tensor:
        """Scene-dependent extra exposure ``(B,)`` in EV for ``img`` ``(B,3,H,W)``."""
        if self.target_brightness is None or self.brightness_gain == 0.0:
            return torch.zeros(img.shape[0], dtype=img.dtype, device=img.device)
        y = luminance(srgb_to_linear(img.clamp(0, 1))).mean(dim=(1, 2, 3)).clamp_min(1e-4)
        ev = self.brightness_gain * torch.log2(torch.as_tensor(self.target_brightness, dtype=img.dtype) / y)
        return ev.clamp(-MAX_SCENE_EV, MAX_SCENE_EV)

    def ideal(self, img: torch.Tensor) -> torch.Tensor:
        """The person's ideal rendition: ``(B,3,H,W)`` -> ``(B,3,H,W)``, both sRGB in [0,1]."""
        x = img
        if self.base_style is not None and self.base_mix > 0:
            from prefstyle.styles.base import from_params

            styled = from_params(self.base_style).apply(img)
            x = img + self.base_mix * (styled - img)
        vec = self.params.to_vector().to(img.dtype).expand(img.shape[0], -1).clone()
        vec[:, _EXPOSURE_INDEX] = (vec[:, _EXPOSURE_INDEX] + self.exposure_offsets(img)).clamp(-3.0, 3.0)
        return apply_retouch_vector(x.clamp(0, 1), vec)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params.to_dict(),
            "base_style": self.base_style,
            "base_mix": self.base_mix,
            "target_brightness": self.target_brightness,
            "brightness_gain": self.brightness_gain,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Taste:
        """A taste from :meth:`to_dict`; a looks crowd's taste (``"kind": "looks"``) comes back as
        :class:`prefstyle.data.looks_crowd.LookTaste` (same ``ideal`` interface)."""
        if d.get("kind") == "looks":
            from prefstyle.data.looks_crowd import LookTaste

            return LookTaste.from_dict(d)  # type: ignore[return-value]
        return cls(
            params=RetouchParams.from_dict(d["params"]),
            base_style=d.get("base_style"),
            base_mix=float(d.get("base_mix", 0.0)),
            target_brightness=d.get("target_brightness"),
            brightness_gain=float(d.get("brightness_gain", 0.0)),
        )


def _exposure_index() -> int:
    from prefstyle.imaging.params import SCALAR_FIELDS

    return [n for n, *_ in SCALAR_FIELDS].index("exposure")


_EXPOSURE_INDEX = _exposure_index()


@dataclass(frozen=True)
class Person:
    """A simulated person: taste, decisiveness and answering behaviour.

    temperature: Bradley-Terry temperature in Delta E00 units: P(a) = sigmoid((d_b - d_a) / T).
    careless: answers are random (with ``position_bias`` towards "a") and fast.
    rt_median_ms, rt_sigma: log-normal response times; hard pairs (similar distances) take longer.
    metric: how the person sees a rendition's distance to the ideal (:data:`PERCEIVED_METRICS`):
      ``"de2000"`` (mean CIEDE2000, the default) or ``"cam16ucs"`` (mean CAM16-UCS ΔE, Li et al.
      2017, through colour-science: a colour-appearance model that weighs lightness, chroma and hue
      otherwise, for crowds whose choice model is not the one LookTaste's likelihood assumes).
    """

    id: str
    taste: Taste
    temperature: float = 1.0
    careless: bool = False
    position_bias: float = 0.0
    rt_median_ms: float = 2500.0
    rt_sigma: float = 0.35
    metric: str = "de2000"

    def __post_init__(self) -> None:
        if self.metric not in PERCEIVED_METRICS:
            raise ValueError(f"unknown perceived metric {self.metric!r} (one of {', '.join(PERCEIVED_METRICS)})")

    def prob_a(self, d_a: torch.Tensor, d_b: torch.Tensor) -> torch.Tensor:
        """Probability of choosing rendition a given seen distances ``(N,)`` to the ideal."""
        if self.careless:
            return torch.full_like(d_a, 0.5 + self.position_bias)
        return torch.sigmoid((d_b - d_a) / self.temperature + self.position_bias)

    def response_times(self, d_a: torch.Tensor, d_b: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
        """Response times in ms ``(N,)``: slower for pairs whose distances are close."""
        gap = (d_a - d_b).abs().cpu().numpy()
        difficulty = 1.0 if self.careless else 1.0 + 0.6 / (1.0 + gap)
        rt = self.rt_median_ms * difficulty * np.exp(rng.normal(0.0, self.rt_sigma, size=gap.shape))
        return np.maximum(rt, 150.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "taste": self.taste.to_dict(),
            "temperature": self.temperature,
            "careless": self.careless,
            "position_bias": self.position_bias,
            "rt_median_ms": self.rt_median_ms,
            "rt_sigma": self.rt_sigma,
            **({} if self.metric == "de2000" else {"metric": self.metric}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Person:
        d = dict(d)
        d["taste"] = Taste.from_dict(d["taste"])
        return cls(**d)


@dataclass(frozen=True)
class SimulatedUser:
    """A person on a device: the unit that judges pairs and that models personalize to."""

    person: Person
    device: Device
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.person.id}@{self.device.name}"

    def ideal(self, img: torch.Tensor) -> torch.Tensor:
        """The ground-truth ideal rendition of any image ``(B,3,H,W)``."""
        return self.person.taste.ideal(img)

    def seen_distance(self, renditions: torch.Tensor, ideals: torch.Tensor) -> torch.Tensor:
        """Mean distance between renditions and ideals as seen on the device, by the person's metric
        (Delta E00 unless :attr:`Person.metric` says otherwise): ``(B,3,H,W) x2 -> (B,)``."""
        if self.person.metric == "cam16ucs":
            return cam16ucs_distance(self.device.seen_srgb(renditions), self.device.seen_srgb(ideals))
        return delta_e_2000(self.device.view(renditions), self.device.view(ideals)).mean(dim=(-2, -1))

    def choose(
        self, a: torch.Tensor, b: torch.Tensor, ideals: torch.Tensor, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Answer N pairs. ``a``, ``b``, ``ideals``: ``(N,3,H,W)``.

        Returns ``(chose_a (N,) bool, response_ms (N,) int, p_a (N,) float)``.
        """
        d_a = self.seen_distance(a, ideals)
        d_b = self.seen_distance(b, ideals)
        p_a = self.person.prob_a(d_a, d_b).cpu().numpy()
        chose_a = rng.random(p_a.shape) < p_a
        rt = self.person.response_times(d_a, d_b, rng).round().astype(int)
        return chose_a, rt, p_a

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.id, "person": self.person.to_dict(), "device": self.device.to_dict(), **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimulatedUser:
        extra = {k: v for k, v in d.items() if k not in ("user", "person", "device")}
        return cls(Person.from_dict(d["person"]), Device.from_dict(d["device"]), extra)


#: the distances a simulated person may judge renditions by (:attr:`Person.metric`)
PERCEIVED_METRICS = ("de2000", "cam16ucs")


def cam16ucs_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean CAM16-UCS colour difference between sRGB images ``(B,3,H,W)`` in [0,1]: ``(B,)`` float32.

    colour-science's ``sRGB_to_XYZ`` and ``XYZ_to_CAM16UCS`` with its default viewing conditions
    (D65 white, average surround, adapting luminance 64/π · 0.2 cd/m², background 20; white is
    J' = 100) and ``delta_E_CAM16UCS``.
    """
    import colour

    def jab(x: torch.Tensor) -> np.ndarray:
        arr = x.detach().permute(0, 2, 3, 1).cpu().double().numpy()
        return np.asarray(colour.XYZ_to_CAM16UCS(colour.sRGB_to_XYZ(arr)))

    with np.errstate(invalid="ignore", divide="ignore"):
        d = colour.difference.delta_E_CAM16UCS(jab(a), jab(b))
    d = np.nan_to_num(np.asarray(d, dtype=np.float64), nan=0.0)
    return torch.from_numpy(d.mean(axis=(1, 2))).float()


def sample_device(rng: np.random.Generator, name: str) -> Device:
    """A plausible display: most near standard, some dim, warm, cool or high-gamma."""
    return Device(
        name=name,
        gamma=float(np.clip(rng.normal(2.2, 0.15), 1.8, 2.6)),
        white_shift=float(np.clip(rng.normal(0.0, 0.35), -1.0, 1.0)),
        brightness=float(np.clip(rng.normal(0.95, 0.1), 0.6, 1.2)),
    )


def logistic_accuracy(temperature: float, gap: float) -> float:
    """Probability that a person with ``temperature`` picks the closer of two renditions ``gap`` Delta E apart."""
    return 1.0 / (1.0 + math.exp(-gap / temperature))
