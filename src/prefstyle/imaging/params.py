"""`RetouchParams`: the parameters of a raw-editor style global retouch.

Every field has a neutral value (the identity edit) and a documented range. The pipeline
that applies them lives in :mod:`prefstyle.imaging.pipeline`; the individual operators in
:mod:`prefstyle.imaging.ops`.

Ranges (all floats):

===================  ===============  ===========================================================
field                range            meaning
===================  ===============  ===========================================================
exposure             [-3, 3]          EV stops, applied in linear light (x * 2**ev)
contrast             [-1, 1]          S-curve around mid-grey (+) or flattening (-)
highlights           [-1, 1]          lift (+) / recover (-) the bright tones
shadows              [-1, 1]          lift (+) / deepen (-) the dark tones
whites               [-1, 1]          move the white point region
blacks               [-1, 1]          move the black point region
temperature          [-1, 1]          white balance: + warmer (amber), - cooler (blue)
tint                 [-1, 1]          white balance: + magenta, - green
vibrance             [-1, 1]          saturation weighted towards muted colours
saturation           [-1, 1]          uniform saturation scale (-1 = greyscale)
curve                5 values [0,1]   monotone tone curve outputs at inputs 0, .25, .5, .75, 1
hsl_hue              8 values [-1,1]  per hue band shift, 1 = +30 degrees
hsl_saturation       8 values [-1,1]  per hue band saturation scale
hsl_luminance        8 values [-1,1]  per hue band luminance shift
split_shadow_hue     [0, 360)         hue of the shadow tint, degrees
split_shadow_sat     [0, 1]           strength of the shadow tint
split_highlight_hue  [0, 360)         hue of the highlight tint, degrees
split_highlight_sat  [0, 1]           strength of the highlight tint
split_balance        [-1, 1]          + favours highlights, - favours shadows
===================  ===============  ===========================================================

Hue bands, in order: red (0), orange (30), yellow (60), green (120), aqua (180), blue (240),
purple (270), magenta (300) degrees.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a vector is made: the numpy mirrors read these fields without it
    import torch

HUE_BANDS: tuple[str, ...] = ("red", "orange", "yellow", "green", "aqua", "blue", "purple", "magenta")
HUE_CENTRES_DEG: tuple[float, ...] = (0.0, 30.0, 60.0, 120.0, 180.0, 240.0, 270.0, 300.0)
CURVE_X: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
IDENTITY_CURVE: tuple[float, ...] = CURVE_X

# (name, low, high, neutral) for every scalar field, in pipeline order.
#: the ten sliders of a raw editor's basic panel, in the pipeline's order (presets, slider tastes)
BASIC_SLIDERS: tuple[str, ...] = (
    "temperature",
    "tint",
    "exposure",
    "contrast",
    "highlights",
    "shadows",
    "whites",
    "blacks",
    "vibrance",
    "saturation",
)
SCALAR_FIELDS: tuple[tuple[str, float, float, float], ...] = (
    ("temperature", -1.0, 1.0, 0.0),
    ("tint", -1.0, 1.0, 0.0),
    ("exposure", -3.0, 3.0, 0.0),
    ("contrast", -1.0, 1.0, 0.0),
    ("highlights", -1.0, 1.0, 0.0),
    ("shadows", -1.0, 1.0, 0.0),
    ("whites", -1.0, 1.0, 0.0),
    ("blacks", -1.0, 1.0, 0.0),
    ("vibrance", -1.0, 1.0, 0.0),
    ("saturation", -1.0, 1.0, 0.0),
    ("split_shadow_hue", 0.0, 360.0, 0.0),
    ("split_shadow_sat", 0.0, 1.0, 0.0),
    ("split_highlight_hue", 0.0, 360.0, 0.0),
    ("split_highlight_sat", 0.0, 1.0, 0.0),
    ("split_balance", -1.0, 1.0, 0.0),
)
VECTOR_FIELDS: tuple[tuple[str, int], ...] = (("curve", 5), ("hsl_hue", 8), ("hsl_saturation", 8), ("hsl_luminance", 8))
VECTOR_DIM = len(SCALAR_FIELDS) + sum(n for _, n in VECTOR_FIELDS)


@dataclass(frozen=True)
class RetouchParams:
    """One global retouch. The default instance is the identity edit."""

    temperature: float = 0.0
    tint: float = 0.0
    exposure: float = 0.0
    contrast: float = 0.0
    highlights: float = 0.0
    shadows: float = 0.0
    whites: float = 0.0
    blacks: float = 0.0
    vibrance: float = 0.0
    saturation: float = 0.0
    curve: tuple[float, ...] = IDENTITY_CURVE
    hsl_hue: tuple[float, ...] = (0.0,) * 8
    hsl_saturation: tuple[float, ...] = (0.0,) * 8
    hsl_luminance: tuple[float, ...] = (0.0,) * 8
    split_shadow_hue: float = 0.0
    split_shadow_sat: float = 0.0
    split_highlight_hue: float = 0.0
    split_highlight_sat: float = 0.0
    split_balance: float = 0.0

    def __post_init__(self) -> None:
        for name, lo, hi, _ in SCALAR_FIELDS:
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < lo - 1e-6 or v > hi + 1e-6:
                raise ValueError(f"RetouchParams.{name}={v} outside [{lo}, {hi}]")
            object.__setattr__(self, name, v)
        for name, n in VECTOR_FIELDS:
            vals = tuple(float(v) for v in getattr(self, name))
            if len(vals) != n:
                raise ValueError(f"RetouchParams.{name} needs {n} values, got {len(vals)}")
            lo, hi = (0.0, 1.0) if name == "curve" else (-1.0, 1.0)
            if any(not math.isfinite(v) or v < lo - 1e-6 or v > hi + 1e-6 for v in vals):
                raise ValueError(f"RetouchParams.{name}={vals} outside [{lo}, {hi}]")
            object.__setattr__(self, name, vals)
        if any(b < a - 1e-6 for a, b in zip(self.curve, self.curve[1:])):
            raise ValueError(f"RetouchParams.curve={self.curve} is not monotone")

    def is_identity(self, tol: float = 1e-9) -> bool:
        """True when this edit leaves every image unchanged."""
        return all(abs(a - b) <= tol for a, b in zip(self.to_list(), NEUTRAL.to_list()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RetouchParams:
        """Inverse of :meth:`to_dict`; missing keys take neutral values, unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown RetouchParams fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in d.items()})

    def replace(self, **changes: Any) -> RetouchParams:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_vector(self) -> torch.Tensor:
        """Flat float32 vector of length :data:`VECTOR_DIM` (scalars, then curve, then HSL)."""
        import torch

        return torch.tensor(self.to_list(), dtype=torch.float32)

    def to_list(self) -> list[float]:
        """:meth:`to_vector`'s values as Python floats, without torch (the numpy mirrors)."""
        vals = [getattr(self, n) for n, *_ in SCALAR_FIELDS]
        for n, _ in VECTOR_FIELDS:
            vals.extend(getattr(self, n))
        return [float(v) for v in vals]

    @classmethod
    def from_vector(cls, v: torch.Tensor | list[float], clamp: bool = True) -> RetouchParams:
        """Inverse of :meth:`to_vector`. With ``clamp`` values are clipped into range and the curve made monotone."""
        vals = [float(x) for x in (v.tolist() if hasattr(v, "tolist") else v)]
        if len(vals) != VECTOR_DIM:
            raise ValueError(f"expected a vector of length {VECTOR_DIM}, got {len(vals)}")
        kw: dict[str, Any] = {}
        i = 0
        for name, lo, hi, _ in SCALAR_FIELDS:
            kw[name] = min(max(vals[i], lo), hi) if clamp else vals[i]
            i += 1
        for name, n in VECTOR_FIELDS:
            chunk = vals[i : i + n]
            i += n
            if clamp:
                lo, hi = (0.0, 1.0) if name == "curve" else (-1.0, 1.0)
                chunk = [min(max(x, lo), hi) for x in chunk]
                if name == "curve":
                    for j in range(1, n):
                        chunk[j] = max(chunk[j], chunk[j - 1])
            kw[name] = tuple(chunk)
        return cls(**kw)


NEUTRAL = RetouchParams()
