"""Camera renderings (PPS source type B): the same scene as different cameras' ISPs would render it.

A :class:`CameraRendering` re-renders an sRGB photo as another camera's picture profile might:

1. decode to linear light (:func:`prefstyle.imaging.color.srgb_to_linear`);
2. white-balance bias: per-channel gains from ``wb_temperature`` / ``wb_tint``, normalised so a
   grey keeps its luminance (both 0 = no bias);
3. a 3x3 colour matrix (the sensor/ISP colour "character") whose rows sum to 1, so greys stay
   grey, followed by a saturation matrix (mix with luminance, rows also sum to 1);
4. exposure bias (EV) and a clip to the displayable range;
5. re-encode to sRGB and apply the profile's tone curve (:class:`ToneCurve`: contrast S-curve,
   midtone gamma, shadow lift, highlight roll-off, black and white levels), the same curve on
   every channel, as ISPs apply their picture-profile curve.

Named profiles (:data:`CAMERA_PROFILES`) are *in the spirit of* common picture profiles
(standard, vivid, phone-like, flat/log-like, warm portrait, cool landscape, film-like, muted);
they make no claim to match any brand's rendering. :func:`sample_camera` makes more.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from prefstyle.errors import PrefstyleError
from prefstyle.styles.base import Style, register_kind

LUMA = (0.2126, 0.7152, 0.0722)
IDENTITY_MATRIX: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

# Plausible ranges (validated on construction; the sampler stays well inside them).
TONE_RANGES: dict[str, tuple[float, float]] = {
    "contrast": (-0.7, 1.0),
    "pivot": (0.3, 0.7),
    "gamma": (0.6, 1.6),
    "shadow_lift": (-0.2, 0.2),
    "highlight_rolloff": (-0.2, 0.35),
    "black": (0.0, 0.15),
    "white": (0.8, 1.0),
}
CAMERA_RANGES: dict[str, tuple[float, float]] = {
    "exposure": (-1.0, 1.0),
    "wb_temperature": (-1.0, 1.0),
    "wb_tint": (-1.0, 1.0),
    "saturation": (0.0, 2.0),
}
MAX_CROSSTALK = 0.35  # |off-diagonal| of the character matrix
OUTPUT_TABLE_SIZE = 4096  # nodes of the (linear -> sRGB -> tone curve) 1D table


def _sigmoid01(x: np.ndarray, k: float, pivot: float) -> np.ndarray:
    lo = 1.0 / (1.0 + math.exp(k * pivot))
    hi = 1.0 / (1.0 + math.exp(-k * (1.0 - pivot)))
    return (1.0 / (1.0 + np.exp(-k * (x - pivot))) - lo) / (hi - lo)


@dataclass(frozen=True)
class ToneCurve:
    """A picture-profile tone curve on display-encoded values, ``[0,1] -> [black, white]``.

    ``y = x ** gamma``; then ``y += contrast * (S(y) - y)`` with a fixed sigmoid ``S`` around
    ``pivot`` (negative contrast flattens); then ``shadow_lift`` adds a bump peaking at 1/4
    (negative deepens the shadows, like a film toe) and ``highlight_rolloff`` one peaking at 3/4
    (positive: a soft shoulder that approaches white gently); the result is made monotone and
    mapped to ``[black, white]``.
    """

    contrast: float = 0.0
    pivot: float = 0.5
    gamma: float = 1.0
    shadow_lift: float = 0.0
    highlight_rolloff: float = 0.0
    black: float = 0.0
    white: float = 1.0

    def __post_init__(self) -> None:
        for k, (lo, hi) in TONE_RANGES.items():
            v = float(getattr(self, k))
            if not (math.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9):
                raise PrefstyleError(f"tone curve {k}={v} outside [{lo}, {hi}]")
            object.__setattr__(self, k, v)
        if self.white - self.black < 0.5:
            raise PrefstyleError(f"tone curve black={self.black} / white={self.white} leave too little range")

    def table(self, n: int = 4096) -> np.ndarray:
        """The curve sampled at ``n`` evenly spaced inputs in [0, 1] (monotone, float64)."""
        return self.evaluate(np.linspace(0.0, 1.0, n))

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """The curve at **sorted** inputs ``x`` in [0, 1] (float64)."""
        x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
        y = x**self.gamma
        y = y + self.contrast * (_sigmoid01(y, 8.0, self.pivot) - y)
        bump_s = x * (1 - x) ** 3 / 0.10546875  # max 1 at x = 1/4
        bump_h = x**3 * (1 - x) / 0.10546875  # max 1 at x = 3/4
        y = y + self.shadow_lift * bump_s + self.highlight_rolloff * bump_h
        y = np.maximum.accumulate(np.clip(y, 0.0, 1.0))
        return self.black + (self.white - self.black) * y

    def apply(self, x: torch.Tensor, n: int = 4096) -> torch.Tensor:
        """Apply to a tensor of values in [0, 1] (linear interpolation in :meth:`table`)."""
        table = torch.as_tensor(self.table(n), dtype=torch.float32, device=x.device)
        pos = x.clamp(0.0, 1.0) * (n - 1)
        i0 = pos.floor().long().clamp(0, n - 2)
        frac = pos - i0.to(pos.dtype)
        return table[i0] + frac * (table[i0 + 1] - table[i0])


def character_matrix(
    red: tuple[float, float] = (0.0, 0.0),
    green: tuple[float, float] = (0.0, 0.0),
    blue: tuple[float, float] = (0.0, 0.0),
) -> tuple[tuple[float, ...], ...]:
    """A colour matrix with rows summing to 1 from per-row cross-talk.

    ``red = (a, b)`` makes ``R' = R + a (G - R) + b (B - R)``; likewise ``green = (R-, B-)``
    and ``blue = (R-, G-)`` weights. Positive cross-talk mutes a primary and turns it towards the
    other (e.g. red picking up green turns reds orange); negative purifies it.
    """
    (rg, rb), (gr, gb), (br, bg) = red, green, blue
    return (
        (1.0 - rg - rb, rg, rb),
        (gr, 1.0 - gr - gb, gb),
        (br, bg, 1.0 - br - bg),
    )


def saturation_matrix(s: float) -> np.ndarray:
    """Linear-light saturation ``s * I + (1 - s) * 1 w^T`` (w = Rec.709 luma); rows sum to 1."""
    w = np.array(LUMA)
    return s * np.eye(3) + (1.0 - s) * np.outer(np.ones(3), w)


def wb_gains(temperature: float, tint: float) -> np.ndarray:
    """Per-channel linear gains for a white-balance bias; + temperature warmer, + tint magenta.

    Normalised so that a grey keeps its luminance.
    """
    log2 = np.array([0.35 * temperature + 0.1 * tint, -0.2 * tint, -0.35 * temperature + 0.1 * tint])
    g = 2.0**log2
    return g / float(np.dot(LUMA, g))


@register_kind("camera")
class CameraRendering(Style):
    """A camera picture profile applied to an sRGB photo (see the module docstring)."""

    kind = "camera"
    is_global = True

    def __init__(
        self,
        name: str = "camera:custom",
        *,
        exposure: float = 0.0,
        wb_temperature: float = 0.0,
        wb_tint: float = 0.0,
        matrix: Any = IDENTITY_MATRIX,
        saturation: float = 1.0,
        tone: ToneCurve | dict[str, float] | None = None,
        description: str = "",
        strength: float = 1.0,
    ):
        super().__init__(name, description, strength)
        self.exposure = float(exposure)
        self.wb_temperature = float(wb_temperature)
        self.wb_tint = float(wb_tint)
        self.saturation = float(saturation)
        for k, (lo, hi) in CAMERA_RANGES.items():
            v = getattr(self, k)
            if not (math.isfinite(v) and lo <= v <= hi):
                raise PrefstyleError(f"camera rendering {k}={v} outside [{lo}, {hi}]")
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (3, 3) or not np.all(np.isfinite(m)):
            raise PrefstyleError(f"camera colour matrix must be 3x3 finite numbers, got {matrix!r}")
        if np.abs(m.sum(axis=1) - 1.0).max() > 1e-4:
            raise PrefstyleError(
                f"camera colour matrix rows must sum to 1 (so grey stays grey), got sums {m.sum(axis=1)}"
            )
        off = m - np.diag(np.diag(m))
        if np.abs(off).max() > MAX_CROSSTALK + 1e-9:
            raise PrefstyleError(f"camera colour matrix cross-talk above {MAX_CROSSTALK}: {m.tolist()}")
        self.matrix = tuple(tuple(float(v) for v in row) for row in m)
        self.tone = tone if isinstance(tone, ToneCurve) else ToneCurve(**(tone or {}))

    def linear_transform(self) -> np.ndarray:
        """The 3x3 linear-light matrix: saturation @ character @ diag(WB gains) * 2**exposure."""
        g = np.diag(wb_gains(self.wb_temperature, self.wb_tint))
        return saturation_matrix(self.saturation) @ np.asarray(self.matrix) @ g * 2.0**self.exposure

    def output_table(self, n: int = OUTPUT_TABLE_SIZE) -> np.ndarray:
        """Linear light -> display value: the sRGB encoding followed by the tone curve, sampled at
        ``n`` evenly spaced linear values (interpolation error below 5e-4 at the default size)."""
        lin = np.linspace(0.0, 1.0, n)
        enc = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1.0 / 2.4) - 0.055)
        return self.tone.evaluate(enc)

    def _render(self, x: torch.Tensor) -> torch.Tensor:
        from prefstyle.imaging.color import srgb_to_linear
        from prefstyle.imaging.lut import apply_lut_1d

        m = torch.as_tensor(self.linear_transform(), dtype=torch.float32, device=x.device)
        lin = torch.einsum("ij,bjhw->bihw", m, srgb_to_linear(x)).clamp(0.0, 1.0)
        table = torch.as_tensor(self.output_table(), dtype=torch.float32, device=x.device).expand(3, -1)
        return apply_lut_1d(lin, table)

    def _own_params(self) -> dict[str, Any]:
        return {
            "exposure": self.exposure,
            "wb_temperature": self.wb_temperature,
            "wb_tint": self.wb_tint,
            "matrix": [list(r) for r in self.matrix],
            "saturation": self.saturation,
            "tone": asdict(self.tone),
        }

    @classmethod
    def _from_params(cls, d: dict[str, Any]) -> Style:
        known = {"kind", "name", "description", "exposure", "wb_temperature", "wb_tint", "matrix", "saturation", "tone"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PrefstyleError(f"unknown camera rendering parameter(s): {', '.join(unknown)}")
        kw = {k: d[k] for k in ("exposure", "wb_temperature", "wb_tint", "matrix", "saturation", "tone") if k in d}
        return cls(name=d.get("name", "camera:custom"), description=d.get("description", ""), **kw)

    def replace(self, **changes: Any) -> CameraRendering:
        """A copy with some parameters changed (tone curve fields may be given directly)."""
        p = self._own_params()
        tone = dict(p.pop("tone"))
        for k, v in changes.items():
            if k in tone:
                tone[k] = v
            elif k in p or k in ("name", "description"):
                p[k] = v
            else:
                raise PrefstyleError(f"camera rendering has no parameter {k!r}; parameters: {', '.join([*p, *tone])}")
        name = p.pop("name", self.name)
        desc = p.pop("description", self.description)
        return CameraRendering(name, tone=tone, description=desc, strength=self.strength, **p)


def _profile(name: str, description: str, **kw: Any) -> CameraRendering:
    tone = {k: kw.pop(k) for k in list(kw) if k in TONE_RANGES}
    return CameraRendering(f"camera:{name}", tone=tone, description=description, **kw)


def _build_profiles() -> dict[str, CameraRendering]:
    profiles = [
        _profile(
            "standard",
            "neutral picture profile: mild contrast, faithful colour",
            contrast=0.12,
            highlight_rolloff=0.05,
            saturation=1.05,
        ),
        _profile(
            "vivid",
            "vivid profile: strong contrast, rich saturated colour",
            contrast=0.35,
            saturation=1.35,
            highlight_rolloff=0.05,
            matrix=character_matrix(red=(-0.04, 0.0), green=(0.0, -0.03), blue=(0.0, 0.04)),
        ),
        _profile(
            "punchy-phone",
            "consumer phone look: bright, lifted shadows, punchy saturated colour",
            exposure=0.2,
            contrast=0.3,
            shadow_lift=0.1,
            highlight_rolloff=0.12,
            saturation=1.3,
            wb_temperature=0.06,
            matrix=character_matrix(red=(0.03, 0.0), blue=(0.0, 0.05)),
        ),
        _profile(
            "flat-log",
            "flat, log-like profile: low contrast, raised blacks, muted colour",
            contrast=-0.55,
            gamma=0.9,
            highlight_rolloff=0.12,
            black=0.06,
            white=0.94,
            saturation=0.75,
        ),
        _profile(
            "warm-skin",
            "portrait profile: warm balance, soft contrast, flattering orange skin tones",
            wb_temperature=0.22,
            wb_tint=0.05,
            contrast=0.08,
            gamma=0.95,
            highlight_rolloff=0.1,
            saturation=1.02,
            matrix=character_matrix(red=(0.06, 0.0), green=(0.03, 0.0)),
        ),
        _profile(
            "cool-landscape",
            "landscape profile: cool balance, deep blues and greens, crisp contrast",
            wb_temperature=-0.2,
            contrast=0.25,
            saturation=1.22,
            shadow_lift=-0.04,
            matrix=character_matrix(green=(-0.03, -0.03), blue=(-0.02, 0.03)),
        ),
        _profile(
            "film-negative",
            "colour-negative-film-like: soft shoulder, lifted blacks, warm, greens towards yellow",
            wb_temperature=0.08,
            contrast=0.05,
            shadow_lift=0.03,
            highlight_rolloff=0.22,
            black=0.03,
            saturation=0.9,
            matrix=character_matrix(red=(0.04, 0.0), green=(0.06, 0.0), blue=(0.02, 0.06)),
        ),
        _profile(
            "muted-mirrorless",
            "understated profile: gentle contrast, slightly green-leaning, lower saturation",
            wb_tint=-0.06,
            contrast=0.06,
            gamma=1.04,
            saturation=0.9,
            matrix=character_matrix(red=(0.02, 0.02), blue=(0.02, 0.0)),
        ),
    ]
    return {p.name: p for p in profiles}


CAMERA_PROFILES: dict[str, CameraRendering] = _build_profiles()


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def sample_camera(rng: int | np.random.Generator | None = None, name: str | None = None) -> CameraRendering:
    """A random but plausible camera rendering; deterministic for a given seed / generator state.

    Bounds: |exposure| <= 0.35 EV, |wb_temperature| <= 0.35, |wb_tint| <= 0.15, saturation in
    [0.7, 1.45], |cross-talk| <= 0.1, contrast in [-0.5, 0.45], gamma in [0.82, 1.2], black <= 0.06,
    white >= 0.94 (see :data:`SAMPLE_BOUNDS`).
    """
    seed = rng if isinstance(rng, int) else None
    g = _rng(rng)
    b = SAMPLE_BOUNDS

    def clip(v: float, key: str) -> float:
        lo, hi = b[key]
        return float(min(max(v, lo), hi))

    xt = [clip(v, "crosstalk") for v in g.normal(0.0, 0.035, size=6)]
    flat = g.random() < 0.15
    tone = {
        "contrast": clip(g.uniform(-0.5, -0.25) if flat else g.normal(0.15, 0.15), "contrast"),
        "gamma": clip(float(np.exp(g.normal(0.0, 0.07))), "gamma"),
        "shadow_lift": clip(g.normal(0.0, 0.04), "shadow_lift"),
        "highlight_rolloff": clip(g.normal(0.08, 0.06), "highlight_rolloff"),
        "black": clip(g.uniform(0.02, 0.06) if flat else 0.0, "black"),
        "white": clip(g.uniform(0.94, 0.99) if flat else 1.0, "white"),
    }
    cam = CameraRendering(
        name or (f"camera:sample:{seed}" if seed is not None else "camera:sample"),
        exposure=clip(g.normal(0.0, 0.12), "exposure"),
        wb_temperature=clip(g.normal(0.0, 0.12), "wb_temperature"),
        wb_tint=clip(g.normal(0.0, 0.05), "wb_tint"),
        saturation=clip(float(np.exp(g.normal(0.08, 0.14))) * (0.85 if flat else 1.0), "saturation"),
        matrix=character_matrix(red=(xt[0], xt[1]), green=(xt[2], xt[3]), blue=(xt[4], xt[5])),
        tone=tone,
        description="sampled camera rendering",
    )
    return cam


SAMPLE_BOUNDS: dict[str, tuple[float, float]] = {
    "exposure": (-0.35, 0.35),
    "wb_temperature": (-0.35, 0.35),
    "wb_tint": (-0.15, 0.15),
    "saturation": (0.7, 1.45),
    "crosstalk": (-0.1, 0.1),
    "contrast": (-0.5, 0.45),
    "gamma": (0.82, 1.2),
    "shadow_lift": (-0.1, 0.1),
    "highlight_rolloff": (-0.05, 0.2),
    "black": (0.0, 0.06),
    "white": (0.94, 1.0),
}
