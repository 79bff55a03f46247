"""A simulated crowd whose tastes are real looks (``prefstyle data simulate --tastes looks``).

The slider crowd (:mod:`prefstyle.data.simulate` with ``--tastes sliders``) draws its tastes and
its type-A renditions from the same slider sampler, centred on a neutral source that is already
the population's favourite. This crowd removes both shortcuts:

* **Sources are camera renderings, not finished photos.** Each scene's neutral source is the
  pool photo as a camera would have rendered it (:func:`source_camera`): in
  ``source_flat_fraction`` of scenes a flat picture profile (lower contrast, lifted blacks,
  duller colour), and an exposure error of N(−0.3, 0.45) EV, a small white-balance error.
* **People share part of their taste.** A population is drawn once per dataset
  (:class:`Population`): a shared correction everyone wants (more contrast, deeper blacks, more
  vibrance, and each scene brought towards a mean linear luminance near 0.18), and a popularity
  over the library's looks (Dirichlet over families, Dirichlet over the looks of each family).
* **A person's ideal is a look** (:class:`LookTaste`): the shared correction (scaled by a
  personal factor, with a personal brightness target and gain), then a look from the library
  blended with the identity at a strength in [0.5, 1], for some people a second look (or the same
  look at another strength) for landscape content (a content statistic:
  :func:`landscape_weight`), then for some people a small personal slider edit.
* **Renditions come from other looks** (:class:`LookSource`, PPS type A and E), camera
  renderings (type B) and controlled variations of one base look (strength, exposure or
  temperature; type D).
* **Disjoint look families.** The library's families are split into train / val / test
  (:func:`split_families`, by seed, sized by their number of looks); a person of split X draws
  their looks only from the families of split X. Photos are split as in the slider crowd (each
  scene records its photo's split), so ``evaluate --eval-scenes test`` holds photos out too.

Choices are the slider crowd's (:class:`~prefstyle.data.crowd.Person`,
:class:`~prefstyle.data.crowd.Device`: Bradley–Terry on ΔE00 to the ideal as seen on the device,
careless users, response times). The dataset stores the library it used (``looks.json`` +
``looks.safetensors`` beside ``ground_truth.json``), so it is self-contained.

Images are ``(B,3,H,W)`` float sRGB in [0,1]; LUTs ``(3,S,S,S)`` in the layout of
:mod:`prefstyle.imaging.lut`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefstyle.data.crowd import MAX_SCENE_EV, Person, SimulatedUser, sample_device
from prefstyle.data.looks import Look, LookLibrary, load_looks
from prefstyle.errors import PrefstyleError
from prefstyle.imaging.color import delta_e_2000, luminance, rgb_to_lab, srgb_to_linear
from prefstyle.imaging.lut import apply_lut
from prefstyle.imaging.params import NEUTRAL, RetouchParams
from prefstyle.imaging.pipeline import apply_retouch, apply_retouch_vector
from prefstyle.provenance import made_by

__all__ = [
    "LOOKS_FILE",
    "LookSource",
    "LookTaste",
    "LookVariationSource",
    "LooksCrowdConfig",
    "Population",
    "crowd_settings",
    "landscape_weight",
    "sample_population",
    "simulate_looks_dataset",
    "split_families",
    "synthetic_looks",
]

#: The look library a looks crowd used, stored beside ``ground_truth.json`` (+ ``.safetensors``).
LOOKS_FILE = "looks.json"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LooksCrowdConfig:
    """The looks crowd's population and source parameters (written to ``ground_truth.json``).

    family_alpha, look_alpha: Dirichlet concentrations of the population's popularity over
      families and over the looks of each family (small: a few favourites dominate).
    strength: range of a look's blend with the identity in a person's ideal.
    content_fraction: persons whose taste depends on content (a second look for landscapes).
    edit_fraction, edit_strength: persons with a small personal slider edit on top, and its
      strength for :func:`prefstyle.styles.presets.sample_params`.
    target_brightness, target_sigma: the population's wanted mean linear luminance and the
      log-normal spread of the personal targets; gain: range of the share of the EV gap closed.
    correction_scale: range of each person's scale of the shared correction.
    source_flat_fraction: scenes whose source has a flat picture profile.
    source_ev: mean and spread (EV) of the sources' exposure error (clipped to ±1 EV).
    family_fractions: shares of looks whose families go to train / val / test ideals.
    raw_look_fraction: share of look renditions (types A, D, E) applied straight to the camera
      source; the others follow an editor's basic correction (:func:`editor_correction`).
    metric: the distance people judge renditions by (:data:`prefstyle.data.crowd.PERCEIVED_METRICS`):
      ``"de2000"`` (mean CIEDE2000, as LookTaste's likelihood assumes) or ``"cam16ucs"`` (mean
      CAM16-UCS ΔE). It draws no random numbers: the same seed gives the same people, pairs and
      uniform draws, so two crowds that differ only here differ only in the choices made.
    meter: how a person's brightness target reads a photo (:data:`METERS`): ``"mean"`` linear
      luminance (as LookTaste and SliderTaste meter photos), ``"median"`` or ``"log_mean"``. It too
      draws no random numbers: only the ideals' exposures (and the choices they move) change.
    levels_stretch: whether the wanted correction also stretches levels (:func:`correct`: black
      and white points a share of the way to 0 and 1, the share being the person's brightness
      gain). Crowds written before the stretch existed have none (:func:`crowd_settings`).
    """

    family_alpha: float = 1.0
    look_alpha: float = 0.5
    strength: tuple[float, float] = (0.5, 1.0)
    content_fraction: float = 0.4
    edit_fraction: float = 0.5
    edit_strength: float = 0.25
    target_brightness: float = 0.18
    target_sigma: float = 0.25
    gain: tuple[float, float] = (0.5, 1.0)
    correction_scale: tuple[float, float] = (0.6, 1.2)
    source_flat_fraction: float = 0.6
    source_ev: tuple[float, float] = (-0.3, 0.45)
    family_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    raw_look_fraction: float = 0.3
    metric: str = "de2000"
    meter: str = "mean"
    levels_stretch: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LooksCrowdConfig:
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**kw)

    @classmethod
    def from_overrides(cls, items: list[str]) -> LooksCrowdConfig:
        """The defaults with ``key=value`` overrides (``data simulate --crowd``): a number, or
        comma-separated numbers for the range and fraction fields. Unknown keys, wrong counts and
        out-of-range fractions raise :class:`~prefstyle.errors.PrefstyleError` naming the item."""
        base = asdict(cls())
        for item in items:
            key, sep, text = item.partition("=")
            key = key.strip()
            if not sep or key not in base:
                known = ", ".join(sorted(base))
                raise PrefstyleError(f"--crowd {item!r}: expected KEY=VALUE with KEY one of {known}")
            if key in ("metric", "meter"):
                from prefstyle.data.crowd import PERCEIVED_METRICS

                choices = PERCEIVED_METRICS if key == "metric" else METERS
                if text.strip() not in choices:
                    raise PrefstyleError(f"--crowd {item!r}: {key} is one of {', '.join(choices)}")
                base[key] = text.strip()
                continue
            if key == "levels_stretch":
                flag = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
                if text.strip().lower() not in flag:
                    raise PrefstyleError(f"--crowd {item!r}: levels_stretch is 1 or 0 (true or false)")
                base[key] = flag[text.strip().lower()]
                continue
            try:
                values = tuple(float(v) for v in text.split(","))
            except ValueError:
                raise PrefstyleError(f"--crowd {item!r}: {text!r} is not a number or comma-separated numbers") from None
            want = len(base[key]) if isinstance(base[key], tuple) else 1
            if len(values) != want:
                raise PrefstyleError(f"--crowd {item!r}: {key} takes {want} number{'s' if want > 1 else ''}")
            if (key.endswith("_fraction") or key == "family_fractions") and not all(0 <= v <= 1 for v in values):
                raise PrefstyleError(f"--crowd {item!r}: fractions must lie in [0, 1]")
            base[key] = values if want > 1 else values[0]
        if abs(sum(base["family_fractions"]) - 1.0) > 1e-6:
            raise PrefstyleError("--crowd family_fractions must sum to 1")
        return cls.from_dict(base)


# --------------------------------------------------------------------------------------------
# content and exposure statistics (functions of the image alone, so ideal(img) works anywhere)
# --------------------------------------------------------------------------------------------

STAT_SIZE = 32  # statistics are taken on a 32x32 area-averaged thumbnail


def _thumb(img: torch.Tensor) -> torch.Tensor:
    if img.shape[-2:] == (STAT_SIZE, STAT_SIZE):
        return img
    return torch.nn.functional.interpolate(img, size=(STAT_SIZE, STAT_SIZE), mode="area")


def landscape_weight(img: torch.Tensor) -> torch.Tensor:
    """How much an image ``(B,3,H,W)`` is landscape content: ``(B,)`` in [0,1].

    The share ``f`` of thumbnail pixels that are foliage green (CIELAB hue 95°–200°) or sky/water
    blue (hue 200°–290° with L > 45), with chroma above 8; weight ``clamp((f − 0.15)/0.35, 0, 1)``
    (0 below 15 % such pixels, 1 above 50 %). On the bundled pool: meadows, forests, sea and sky
    score near 1, portraits, objects and interiors near 0.
    """
    lab = rgb_to_lab(_thumb(img.clamp(0, 1)))
    L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    chroma = (a * a + b * b).sqrt()
    hue = torch.rad2deg(torch.atan2(b, a)) % 360.0
    green = (hue > 95) & (hue < 200)
    blue = (hue >= 200) & (hue < 290) & (L > 45)
    frac = ((chroma > 8) & (green | blue)).to(img.dtype).mean(dim=(1, 2))
    return ((frac - 0.15) / 0.35).clamp(0.0, 1.0)


#: how a person's brightness target reads a photo (:func:`exposure_ev`): the mean linear luminance
#: (the default, and what LookTaste's and SliderTaste's metering reads), its median, or its
#: geometric mean
METERS = ("mean", "median", "log_mean")


def exposure_ev(
    img: torch.Tensor, target: torch.Tensor | float, gain: torch.Tensor | float, meter: str = "mean"
) -> torch.Tensor:
    """EV that brings ``img`` ``(B,3,H,W)`` a share ``gain`` of the way to linear luminance ``target``
    as ``meter`` (:data:`METERS`) reads it: ``(B,)`` (or ``(K,B)`` for ``(K,)`` targets/gains), clamped
    to ±``MAX_SCENE_EV``."""
    if meter not in METERS:
        raise ValueError(f"unknown meter {meter!r} (one of {', '.join(METERS)})")
    lum = luminance(srgb_to_linear(_thumb(img.clamp(0, 1)))).flatten(1)
    if meter == "median":
        y = lum.median(dim=1).values.clamp_min(1e-4)
    elif meter == "log_mean":
        y = lum.clamp_min(1e-4).log().mean(dim=1).exp()
    else:
        y = lum.mean(dim=1).clamp_min(1e-4)
    t = torch.as_tensor(target, dtype=img.dtype)
    g = torch.as_tensor(gain, dtype=img.dtype)
    if t.ndim == 1:
        t, g = t[:, None], g[:, None]
    return (g * torch.log2(t / y)).clamp(-MAX_SCENE_EV, MAX_SCENE_EV)


# --------------------------------------------------------------------------------------------
# the population and tastes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Population:
    """What a crowd shares: the correction everyone wants and the looks' popularity.

    correction: scalar slider edit (contrast, blacks, whites, vibrance) everyone wants on top of
      the flat sources, scaled per person; popularity: ``(K,)`` probabilities over the library's
      looks (sums to 1 over the whole library).
    """

    correction: RetouchParams
    popularity: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"correction": self.correction.to_dict(), "popularity": list(self.popularity)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Population:
        return cls(RetouchParams.from_dict(d["correction"]), tuple(float(p) for p in d["popularity"]))


def sample_population(library: LookLibrary, cfg: LooksCrowdConfig, rng: np.random.Generator) -> Population:
    """The shared part of the crowd's taste (one draw per dataset)."""
    fams = library.families()
    fam_p = rng.dirichlet([cfg.family_alpha] * len(fams))
    pop = np.zeros(len(library))
    for f, pf in zip(fams, fam_p):
        idx = [i for i, lk in enumerate(library.looks) if lk.family == f]
        pop[idx] = pf * rng.dirichlet([cfg.look_alpha] * len(idx))
    correction = RetouchParams(
        contrast=float(rng.uniform(0.15, 0.35)),
        blacks=float(rng.uniform(-0.15, -0.05)),
        whites=float(rng.uniform(0.0, 0.1)),
        vibrance=float(rng.uniform(0.1, 0.25)),
    )
    return Population(correction, tuple(float(p) for p in pop / pop.sum()))


def scaled_correction(correction: RetouchParams, scale: float) -> RetouchParams:
    """The shared (scalar-only) correction at ``scale``."""
    return RetouchParams(**{k: scale * getattr(correction, k) for k in ("contrast", "blacks", "whites", "vibrance")})


_LIBRARIES: dict[str, LookLibrary] = {}


def cached_library(path: str | Path) -> LookLibrary:
    """``load_looks(path)``, loaded once per process."""
    key = str(Path(path).resolve())
    if key not in _LIBRARIES:
        _LIBRARIES[key] = load_looks(key)
    return _LIBRARIES[key]


@dataclass(frozen=True)
class LookTaste:
    """A person's ideal rendition built from real looks.

    ``ideal(x)``: (1) the correction ``correction`` with an extra exposure of
    :func:`exposure_ev` ``(x, target_brightness, brightness_gain)``; (2) look ``looks[0]`` blended
    with the identity at ``strengths[0]``; with two looks, the second (at ``strengths[1]``)
    replaces the first by :func:`landscape_weight` ``(x)``; (3) the personal edit ``edit``.
    ``looks`` are library names; ``tables`` ``(n,3,S,S,S)`` their LUTs (held in memory, not in
    :meth:`to_dict`, which names the library file ``library`` instead).
    """

    looks: tuple[str, ...]
    strengths: tuple[float, ...]
    correction: RetouchParams
    target_brightness: float
    brightness_gain: float
    edit: RetouchParams = NEUTRAL
    library: str = ""
    tables: torch.Tensor | None = field(default=None, compare=False, repr=False)
    meter: str = "mean"
    levels: bool = True

    kind = "looks"

    def __post_init__(self) -> None:
        if self.meter not in METERS:
            raise ValueError(f"unknown meter {self.meter!r} (one of {', '.join(METERS)})")

    def luts(self) -> torch.Tensor:
        if self.tables is None:
            if not self.library:
                raise PrefstyleError("a looks taste needs its look tables or the library file")
            lib = cached_library(self.library)
            object.__setattr__(self, "tables", torch.stack([lib.lut(n) for n in self.looks]))
        return self.tables  # type: ignore[return-value]

    def exposure_offsets(self, img: torch.Tensor) -> torch.Tensor:
        return exposure_ev(img, self.target_brightness, self.brightness_gain, self.meter)

    def ideal(self, img: torch.Tensor) -> torch.Tensor:
        """``(B,3,H,W)`` -> ``(B,3,H,W)``, sRGB in [0,1]."""
        tables = self.luts().to(img.dtype)
        n = img.shape[0]
        vec = self.correction.to_vector().to(img.dtype).expand(n, -1)
        share = torch.full((n,), self.brightness_gain if self.levels else 0.0, dtype=img.dtype)
        x = correct(img, vec, self.exposure_offsets(img), share, _thumb(img.clamp(0, 1)))
        out = x + self.strengths[0] * (apply_lut(x, tables[0]).clamp(0, 1) - x)
        if len(self.looks) > 1:
            alt = x + self.strengths[1] * (apply_lut(x, tables[1]).clamp(0, 1) - x)
            w = landscape_weight(img).view(-1, 1, 1, 1)
            out = out + w * (alt - out)
        if not self.edit.is_identity():
            out = apply_retouch(out.clamp(0, 1), self.edit)
        return out.clamp(0, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "looks": list(self.looks),
            "strengths": list(self.strengths),
            "correction": self.correction.to_dict(),
            "target_brightness": self.target_brightness,
            "brightness_gain": self.brightness_gain,
            "edit": self.edit.to_dict(),
            "library": self.library,
            **({} if self.meter == "mean" else {"meter": self.meter}),
            **({} if self.levels else {"levels": False}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], tables: torch.Tensor | None = None) -> LookTaste:
        return cls(
            looks=tuple(d["looks"]),
            strengths=tuple(float(s) for s in d["strengths"]),
            correction=RetouchParams.from_dict(d["correction"]),
            target_brightness=float(d["target_brightness"]),
            brightness_gain=float(d["brightness_gain"]),
            edit=RetouchParams.from_dict(d.get("edit") or {}),
            library=str(d.get("library", "")),
            tables=tables,
            meter=str(d.get("meter", "mean")),
            levels=_flag(d.get("levels", True)),
        )


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"levels must be true or false, not {value!r}")
    return value


def range_points(thumb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Black and white points of images ``(N,3,h,w)``: the 0.5 % and 99.5 % quantiles of encoded
    luma, ``(N,)`` each, the black point at most 0.2, the white point at least 0.6."""
    y = (0.2126 * thumb[:, 0] + 0.7152 * thumb[:, 1] + 0.0722 * thumb[:, 2]).flatten(1)
    q = torch.quantile(y, torch.tensor([0.005, 0.995], dtype=y.dtype), dim=1)
    return q[0].clamp(max=0.2), q[1].clamp(min=0.6)


def correct(
    img: torch.Tensor, vec: torch.Tensor, ev: torch.Tensor, share: torch.Tensor, stats: torch.Tensor
) -> torch.Tensor:
    """The correction a person wants before a look: ``(N,3,h,w)`` -> ``(N,3,h,w)``.

    The slider correction ``vec`` ``(N,D)`` with ``ev`` ``(N,)`` added to its exposure, then a
    levels stretch that moves the black and white points (:func:`range_points` of the corrected
    ``stats`` thumbnails ``(N,3,t,t)``, the images whose statistics decide) a share ``share``
    ``(N,)`` of the way to 0 and 1: a flat camera rendering regains its range.
    """
    v = vec.to(img.dtype).clone()
    v[:, _EXPOSURE_INDEX] = v[:, _EXPOSURE_INDEX] + ev
    x = apply_retouch_vector(img.clamp(0, 1), v, exact=True).clamp(0, 1)  # fused tables cost more per distinct vector
    lo, hi = range_points(apply_retouch_vector(stats.clamp(0, 1), v, exact=True).clamp(0, 1))
    a = (share * lo).view(-1, 1, 1, 1)
    b = (1 - share * (1 - hi)).view(-1, 1, 1, 1)
    return ((x - a) / (b - a)).clamp(0, 1)


def _exposure_index() -> int:
    from prefstyle.imaging.params import SCALAR_FIELDS

    return [n for n, *_ in SCALAR_FIELDS].index("exposure")


_EXPOSURE_INDEX = _exposure_index()


def split_families(library: LookLibrary, fractions: tuple[float, ...], seed: int) -> dict[str, list[str]]:
    """Families -> train / val / test, whole families only, sized by their number of looks.

    Families are ordered by a seeded hash; val and test each take families until they hold their
    share of the looks (at least one family each), train takes the rest. Needs >= 3 families.
    """
    import hashlib

    fams = library.families()
    if len(fams) < 3:
        raise PrefstyleError(
            f"the looks crowd needs at least 3 look families (train/val/test); the library has {len(fams)}"
        )
    count = {f: sum(lk.family == f for lk in library.looks) for f in fams}
    order = sorted(fams, key=lambda f: hashlib.sha256(f"{seed}\x00{f}".encode()).hexdigest())
    total = sum(count.values())
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for name, frac in (("test", fractions[2]), ("val", fractions[1])):
        while order and (not out[name] or sum(count[f] for f in out[name]) < frac * total) and len(order) > 1:
            out[name].append(order.pop(0))
    out["train"] = order
    return {k: sorted(v) for k, v in out.items()}


def sample_look_taste(
    rng: np.random.Generator,
    library: LookLibrary,
    population: Population,
    families: list[str],
    cfg: LooksCrowdConfig,
    library_ref: str = "",
) -> LookTaste:
    """One person's taste, with looks from ``families`` drawn by the population's popularity."""
    from prefstyle.styles.presets import sample_params

    allowed = set(families)
    idx = np.array([i for i, lk in enumerate(library.looks) if lk.family in allowed])
    p = np.array(population.popularity)[idx]
    p = p / p.sum() if p.sum() > 0 else np.full(len(idx), 1.0 / len(idx))
    lo, hi = cfg.strength
    looks = [int(idx[rng.choice(len(idx), p=p)])]
    strengths = [float(rng.uniform(lo, hi))]
    if rng.random() < cfg.content_fraction:
        looks.append(int(idx[rng.choice(len(idx), p=p)]))
        strengths.append(float(rng.uniform(lo, hi)))
    scale = float(rng.uniform(*cfg.correction_scale))
    target = float(cfg.target_brightness * math.exp(rng.normal(0.0, cfg.target_sigma)))
    gain = float(rng.uniform(*cfg.gain))
    edit = sample_params(rng, strength=cfg.edit_strength) if rng.random() < cfg.edit_fraction else NEUTRAL
    return LookTaste(
        looks=tuple(library.looks[i].name for i in looks),
        strengths=tuple(strengths),
        correction=scaled_correction(population.correction, scale),
        target_brightness=target,
        brightness_gain=gain,
        edit=edit,
        library=library_ref,
        tables=library.tables[looks].clone(),
        meter=cfg.meter,
        levels=cfg.levels_stretch,
    )


# --------------------------------------------------------------------------------------------
# sources and renditions
# --------------------------------------------------------------------------------------------


def source_camera(rng: np.random.Generator, cfg: LooksCrowdConfig) -> Any:
    """The camera rendering that turns a pool photo into a scene's neutral source: often flat
    (lower contrast, lifted blacks, duller colour) and mis-exposed."""
    from prefstyle.styles.camera import CameraRendering

    flat = bool(rng.random() < cfg.source_flat_fraction)
    tone = {
        "contrast": float(rng.uniform(-0.45, -0.2)) if flat else float(np.clip(rng.normal(0.0, 0.1), -0.3, 0.3)),
        "gamma": float(np.exp(np.clip(rng.normal(0.0, 0.05), -0.15, 0.15))),
        "black": float(rng.uniform(0.02, 0.07)) if flat else 0.0,
        "white": float(rng.uniform(0.92, 0.98)) if flat else 1.0,
    }
    return CameraRendering(
        "camera:source",
        exposure=float(np.clip(rng.normal(*cfg.source_ev), -1.0, 1.0)),
        wb_temperature=float(np.clip(rng.normal(0.0, 0.12), -0.35, 0.35)),
        wb_tint=float(np.clip(rng.normal(0.0, 0.05), -0.15, 0.15)),
        saturation=float(np.exp(rng.normal(-0.1, 0.08))) * (0.85 if flat else 1.0),
        tone=tone,
        description="flat" if flat else "standard",
    )


#: Share of rendition looks drawn by the population's popularity (editors make what people like);
#: the others are uniform over families, then over the family's looks.
POPULAR_RENDITION_FRACTION = 0.5


def _pick_looks(
    library: LookLibrary, rng: np.random.Generator, k: int, popularity: tuple[float, ...] | None = None
) -> list[int]:
    """``k`` distinct looks: each by ``popularity`` (with probability
    :data:`POPULAR_RENDITION_FRACTION`) or uniform over families, then over the family's looks."""
    fams = library.families()
    by_fam = {f: [i for i, lk in enumerate(library.looks) if lk.family == f] for f in fams}
    pop = None if popularity is None else np.asarray(popularity, dtype=float) / sum(popularity)
    out: list[int] = []
    while len(out) < min(k, len(library)):
        if pop is not None and rng.random() < POPULAR_RENDITION_FRACTION:
            i = int(rng.choice(len(pop), p=pop))
        else:
            f = fams[int(rng.integers(len(fams)))]
            i = by_fam[f][int(rng.integers(len(by_fam[f])))]
        if i not in out:
            out.append(i)
    return out


def _blend_look(scene: torch.Tensor, lut: torch.Tensor, strength: float) -> torch.Tensor:
    return scene + strength * (apply_lut(scene, lut).clamp(0, 1) - scene)


#: Share of look renditions applied straight to the camera source ("one-click filter"); the
#: others are an editor's work: a basic correction first, then the look. The default of
#: :attr:`LooksCrowdConfig.raw_look_fraction`.
RAW_LOOK_FRACTION = 0.3


def editor_correction(scene: torch.Tensor, rng: np.random.Generator) -> RetouchParams:
    """An editor's basic correction of a camera source ``(1,3,H,W)`` before a look: exposure a
    share of the way to a mean linear luminance near 0.18, some contrast, deeper blacks, vibrance.
    Drawn independently per rendition (editors differ), not from any person's taste."""
    target = 0.18 * math.exp(rng.normal(0.0, 0.3))
    ev = float(exposure_ev(scene, target, float(rng.uniform(0.3, 1.0)))[0])
    return RetouchParams(
        exposure=ev,
        contrast=float(rng.uniform(-0.05, 0.4)),
        blacks=float(rng.uniform(-0.2, 0.0)),
        whites=float(rng.uniform(-0.05, 0.1)),
        vibrance=float(rng.uniform(-0.05, 0.3)),
    )


def _edited(
    scene: torch.Tensor, rng: np.random.Generator, raw_fraction: float = RAW_LOOK_FRACTION
) -> tuple[torch.Tensor, RetouchParams]:
    """The scene as an editor would start a look from it (or as it is, for a one-click filter,
    with probability ``raw_fraction``)."""
    if rng.random() < raw_fraction:
        return scene, NEUTRAL
    corr = editor_correction(scene, rng)
    return apply_retouch(scene, corr).clamp(0, 1), corr


class LookSource:
    """Types A and E: the scene rendered with other looks of the library (any family), at strength
    0.6–1, after an editor's basic correction (:func:`editor_correction`) or straight on the source."""

    def __init__(
        self,
        library: LookLibrary,
        origin: str = "A",
        popularity: tuple[float, ...] | None = None,
        raw_fraction: float = RAW_LOOK_FRACTION,
    ):
        self.library, self.origin, self.popularity, self.raw_fraction = library, origin, popularity, raw_fraction

    def render(self, scene, rng, k, scene_id):
        imgs, params = [], []
        for i in _pick_looks(self.library, rng, k, self.popularity):
            base, corr = _edited(scene, rng, self.raw_fraction)
            s = float(rng.uniform(0.6, 1.0))
            imgs.append(_blend_look(base, self.library.lut(i), s))
            params.append(
                {"kind": "look", "look": self.library.looks[i].name, "strength": s, "correction": corr.to_dict()}
            )
        return torch.cat(imgs).clamp(0, 1), params


class LookVariationSource:
    """Type D: one base look varied along one control: its strength, or exposure or temperature after it."""

    origin = "D"

    def __init__(
        self,
        library: LookLibrary,
        popularity: tuple[float, ...] | None = None,
        raw_fraction: float = RAW_LOOK_FRACTION,
    ):
        self.library, self.popularity, self.raw_fraction = library, popularity, raw_fraction

    def render(self, scene, rng, k, scene_id):
        i = _pick_looks(self.library, rng, 1, self.popularity)[0]
        name = self.library.looks[i].name
        lut = self.library.lut(i)
        scene, corr = _edited(scene, rng, self.raw_fraction)
        control = ("strength", "exposure", "temperature")[int(rng.integers(3))]
        if control == "strength":
            values = np.linspace(0.25, 1.0, k)
            imgs = [_blend_look(scene, lut, float(s)) for s in values]
            edits = [NEUTRAL] * k
        else:
            span = 0.9 if control == "exposure" else 0.5
            values = np.linspace(-span, span, k)
            base = _blend_look(scene, lut, 1.0)
            edits = [RetouchParams(**{control: float(v)}) for v in values]
            imgs = [apply_retouch(base.clamp(0, 1), e) for e in edits]
        params = [
            {
                "kind": "look",
                "look": name,
                "strength": float(v) if control == "strength" else 1.0,
                "correction": corr.to_dict(),
                "edit": e.to_dict(),
                "control": control,
            }
            for v, e in zip(values, edits)
        ]
        return torch.cat(imgs).clamp(0, 1), params


class OtherCameraSource:
    """Type B: the photographed scene as other cameras would have rendered it. The source is one
    camera's rendering of the pool photo (:func:`source_camera`); these are ``k`` more draws from
    the same camera distribution, so the source is no more special than any of them."""

    origin = "B"
    from_photo = True

    def __init__(self, cfg: LooksCrowdConfig):
        self.cfg = cfg

    def render(self, scene, rng, k, scene_id):
        cams = [source_camera(rng, self.cfg) for _ in range(k)]
        return torch.cat([c.apply(scene) for c in cams]).clamp(0, 1), [c.params() for c in cams]


def rendition_sources(
    library: LookLibrary, cfg: LooksCrowdConfig, popularity: tuple[float, ...] | None = None
) -> dict[str, Any]:
    """The looks crowd's rendition sources by PPS type."""
    return {
        "A": LookSource(library, "A", popularity, cfg.raw_look_fraction),
        "B": OtherCameraSource(cfg),
        "D": LookVariationSource(library, popularity, cfg.raw_look_fraction),
        "E": LookSource(library, "E", popularity, cfg.raw_look_fraction),
    }


# --------------------------------------------------------------------------------------------
# synthetic libraries (tests and demos without the packaged one)
# --------------------------------------------------------------------------------------------


def synthetic_looks(families: int = 8, per_family: int = 5, size: int = 17, seed: int = 0) -> LookLibrary:
    """A library of smooth random looks (NOT real looks: for tests, and for a crowd where no
    packaged library exists). Each family has a character (a colour matrix and a tone curve
    tendency); its looks vary it: per-channel gamma curves, a contrast S, a colour matrix with
    rows summing to 1, split toning by luminance."""
    from prefstyle.imaging.lut import lut_from_function

    g = torch.Generator().manual_seed(seed)

    def rnd(*s: int) -> torch.Tensor:
        return torch.randn(*s, generator=g)

    looks, tables = [], []
    for f in range(families):
        fam_m = 0.08 * rnd(3, 3)
        fam_gamma = 0.15 * rnd(3)
        fam_contrast = 0.3 * rnd(1)
        for j in range(per_family):
            m = torch.eye(3) + fam_m + 0.04 * rnd(3, 3)
            m = m - (m.sum(1, keepdim=True) - 1.0) / 3.0  # rows sum to 1: greys stay grey before the curves
            gam = torch.exp(fam_gamma + 0.08 * rnd(3)).view(1, 3, 1, 1)
            contrast = float((fam_contrast + 0.15 * rnd(1)).clamp(-0.6, 0.8))
            shadow_tint = 0.04 * rnd(3).view(1, 3, 1, 1)
            high_tint = 0.04 * rnd(3).view(1, 3, 1, 1)

            def fn(x, m=m, gam=gam, contrast=contrast, st=shadow_tint, ht=high_tint):
                y = torch.einsum("ij,bjhw->bihw", m, x).clamp(0, 1) ** gam
                s = y + contrast * (torch.sigmoid(8 * (y - 0.5)) - y) * 0.5
                lum = s.mean(dim=1, keepdim=True)
                return (s + st * (1 - lum) + ht * lum).clamp(0, 1)

            tables.append(lut_from_function(fn, size))
            looks.append(
                Look(
                    name=f"synthetic{f}/look{j}",
                    family=f"synthetic{f}",
                    kind="creative",
                    source="prefstyle.data.looks_crowd.synthetic_looks",
                    author="prefstyle (random)",
                    license="CC0-1.0",
                )
            )
    return LookLibrary(looks, torch.stack(tables))


# --------------------------------------------------------------------------------------------
# users and the dataset
# --------------------------------------------------------------------------------------------


def sample_look_users(
    config: Any,
    cfg: LooksCrowdConfig,
    library: LookLibrary,
    population: Population,
    families: dict[str, list[str]],
    rng: np.random.Generator,
    library_ref: str,
) -> tuple[list[SimulatedUser], dict[str, list[str]]]:
    """``config.users`` users and their split; a person's split decides their looks' families."""
    from prefstyle.data.simulate import DEVICE_NAMES

    users: list[SimulatedUser] = []
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    frac = np.array(config.split_fractions, dtype=float)
    p = 0
    while len(users) < config.users:
        split = SPLITS[int(rng.choice(3, p=frac / frac.sum()))]
        careless = bool(rng.random() < config.careless_fraction)
        person = Person(
            id=f"p{p:04d}",
            taste=sample_look_taste(rng, library, population, families[split], cfg, library_ref),  # type: ignore[arg-type]
            temperature=float(config.temperature_median * math.exp(rng.normal(0, config.temperature_sigma))),
            careless=careless,
            position_bias=float(rng.normal(0, 0.05 if careless else 0.1)),
            rt_median_ms=float(rng.uniform(350, 700) if careless else rng.uniform(1500, 4000)),
            rt_sigma=float(rng.uniform(0.2, 0.5)),
            metric=cfg.metric,
        )
        n_dev = 2 if rng.random() < config.second_device_fraction else 1
        for k in rng.choice(len(DEVICE_NAMES), size=n_dev, replace=False):
            if len(users) < config.users:
                u = SimulatedUser(person, sample_device(rng, DEVICE_NAMES[int(k)]), {"split": split})
                users.append(u)
                splits[split].append(u.id)
        p += 1
    return users, {k: sorted(v) for k, v in splits.items()}


def _judgment_stats(user: SimulatedUser, judgments: list[Any], scenes: list[Any]) -> dict[str, float]:
    """Counts behind the crowd's statistics for one user's main judgments (plain ΔE00 on thumbnails).

    agree: the preferred rendition is the one closer to the ideal; source_closer: the neutral
    source is closer to the ideal than the preferred rendition; preferred_closer_to_source: the
    preferred rendition is the one closer to the source.
    """
    by_id = {sc.id: i for i, sc in enumerate(scenes)}
    main = [j for j in judgments if j.kind == "main"]
    if not main:
        return {"n": 0, "agree": 0, "source_closer": 0, "pref_near_source": 0, "by_origin": {}}
    sidx = [by_id[j.scene] for j in main]
    uniq = sorted(set(sidx))
    pos = {s: i for i, s in enumerate(uniq)}
    with torch.no_grad():
        src = torch.cat([scenes[s].source_thumb for s in uniq])
        ideal = user.ideal(src)
        ideal_lab, src_lab = rgb_to_lab(ideal), rgb_to_lab(src)

        def k_of(path: str) -> int:
            return int(Path(path).stem[1:])

        pref = torch.stack([scenes[s].thumbs[k_of(j.preferred_image)] for s, j in zip(sidx, main)])
        other = torch.stack([scenes[s].thumbs[k_of(j.other_image)] for s, j in zip(sidx, main)])
        rows = torch.tensor([pos[s] for s in sidx])
        il, sl = ideal_lab[rows], src_lab[rows]
        pl, ol = rgb_to_lab(pref), rgb_to_lab(other)

        def d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return delta_e_2000(x, y).mean(dim=(-2, -1))

        dp, do, ds = d(pl, il), d(ol, il), d(sl, il)
        agree = int((dp < do).sum())
        source_closer = int((ds < dp).sum())
        near_src = int((d(pl, sl) < d(ol, sl)).sum())
        by_origin: dict[str, list[int]] = {}
        for s, closer in zip(sidx, (ds < dp).tolist()):
            c = by_origin.setdefault(scenes[s].origin, [0, 0])
            c[0] += int(closer)
            c[1] += 1
    return {
        "n": len(main),
        "agree": agree,
        "source_closer": source_closer,
        "pref_near_source": near_src,
        "by_origin": by_origin,
    }


def simulate_looks_dataset(
    config: Any,
    out_dir: str | Path,
    progress: bool = True,
    overwrite: bool = False,
    crowd: LooksCrowdConfig | None = None,
) -> Path:
    """Simulate the looks crowd (module docstring) into ``out_dir``; ``config`` is a
    :class:`~prefstyle.data.simulate.SimulationConfig` with ``tastes == "looks"`` (``looks``: the
    library file, default the packaged one). Returns ``out_dir``."""
    from tqdm.auto import tqdm

    from prefstyle.data.filters import assess_users
    from prefstyle.data.pairs import PairsDataset, Scene, write_pairs
    from prefstyle.data.simulate import (
        GROUND_TRUTH_FILE,
        _session,
        _write_png,
        build_scenes,
        parallel_map,
    )
    from prefstyle.fsutil import atomic_write_text

    crowd = crowd or LooksCrowdConfig()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise PrefstyleError("output folder is not empty (pass --overwrite to replace it)", path=out)
    library = load_looks(config.looks)
    families = split_families(library, crowd.family_fractions, config.seed)
    torch.manual_seed(config.seed)
    pop_rng = np.random.default_rng([config.seed, 7])
    population = sample_population(library, crowd, pop_rng)

    def prepare(src: torch.Tensor, i: int) -> tuple[torch.Tensor, dict]:
        cam = source_camera(np.random.default_rng([config.seed, 3, i]), crowd)
        return cam.apply(src).clamp(0, 1), cam.params()

    rng = np.random.default_rng(config.seed)
    scenes = build_scenes(
        config,
        rng,
        progress=progress,
        sources=rendition_sources(library, crowd, population.popularity),
        prepare=prepare,
    )
    out.mkdir(parents=True, exist_ok=True)
    lib_path = library.save(out / LOOKS_FILE)
    users, splits = sample_look_users(config, crowd, library, population, families, rng, str(lib_path.resolve()))

    def one(i: int) -> tuple[list[Any], dict[str, float]]:
        js = _session(users[i], i, scenes, config, np.random.default_rng([config.seed, 1, i]))
        return js, _judgment_stats(users[i], js, scenes)

    results = parallel_map(one, len(users), config.workers, progress, "simulate users")
    judgments = [j for js, _ in results for j in js]

    for sc in tqdm(scenes, desc="write images", disable=not progress):
        _write_png(out / sc.source_path, sc.source[0])
        for k in range(sc.renditions.shape[0]):
            _write_png(out / sc.rendition_path(k), sc.renditions[k])
    scene_records = [
        Scene(scene=sc.id, source=sc.source_path, origin=sc.origin, content=sc.content, extra={"split": sc.split})
        for sc in scenes
    ]
    meta = {
        "name": f"prefstyle simulated looks crowd (seed {config.seed})",
        "license": "CC-BY-4.0 for the judgments; images derive from the photos listed in docs/PHOTOS.md "
        "and the looks listed in looks.json",
        "simulated": True,
        "tastes": "looks",
        "ground_truth": GROUND_TRUTH_FILE,
        "looks": LOOKS_FILE,
        "look_families": families,
    }
    write_pairs(out, judgments, scenes=scene_records, splits=splits, meta=meta)

    # statistics: attentive users' answers against the truth, and the PPS quality filters
    stats = crowd_statistics(users, [s for _, s in results])
    report = assess_users(PairsDataset.load(out))
    kept = set(report.kept)
    stats["filters"] = {
        "users": len(users),
        "kept": len(kept),
        "kept_per_split": {s: sum(u in kept for u in splits[s]) for s in SPLITS},
        "careless_kept": sum(u.person.careless and u.id in kept for u in users),
        "careless": sum(u.person.careless for u in users),
        "reason_counts": report.reason_counts(),
    }
    meta["statistics"] = stats
    write_pairs(out, judgments, meta=meta)  # dataset.json again, now with the statistics

    gt_config = asdict(config)
    gt_config["looks"] = LOOKS_FILE
    gt = {
        "format": "prefstyle-ground-truth",
        "version": 1,
        "made_by": made_by(),
        "tastes": "looks",
        "config": gt_config,
        "looks_crowd": asdict(crowd),
        "looks": {"file": LOOKS_FILE, "families": families, "source_library": str(config.looks or "packaged")},
        "population": population.to_dict(),
        "users": [_user_dict(u) for u in users],
        "scenes": {sc.id: {"split": sc.split, "source_rendering": sc.source_params} for sc in scenes},
        "renditions": {
            sc.rendition_path(k): {"scene": sc.id, "origin": sc.origin, "style": sc.rendition_params[k]}
            for sc in scenes
            for k in range(len(sc.rendition_params))
        },
        "statistics": stats,
    }
    atomic_write_text(out / GROUND_TRUTH_FILE, json.dumps(gt, indent=1) + "\n")
    return out


def _user_dict(u: SimulatedUser) -> dict[str, Any]:
    d = u.to_dict()
    d["person"]["taste"]["library"] = LOOKS_FILE  # relative to the dataset folder
    return d


def crowd_statistics(users: list[SimulatedUser], per_user: list[dict[str, float]]) -> dict[str, Any]:
    """Aggregate :func:`_judgment_stats` over attentive users (and over everyone for agreement)."""
    att = [s for u, s in zip(users, per_user) if not u.person.careless]
    n = sum(s["n"] for s in att) or 1
    n_all = sum(s["n"] for s in per_user) or 1
    return {
        "main_judgments_attentive": int(sum(s["n"] for s in att)),
        "agreement_attentive": sum(s["agree"] for s in att) / n,
        "agreement_all": sum(s["agree"] for s in per_user) / n_all,
        "source_closer_than_preferred": sum(s["source_closer"] for s in att) / n,
        "preferred_closer_to_source": sum(s["pref_near_source"] for s in att) / n,
        "source_closer_by_origin": {
            o: sum(s["by_origin"].get(o, [0, 0])[0] for s in att)
            / max(1, sum(s["by_origin"].get(o, [0, 0])[1] for s in att))
            for o in sorted({o for s in att for o in s["by_origin"]})
        },
    }


def crowd_settings(gt: dict[str, Any]) -> LooksCrowdConfig:
    """The looks crowd's settings as a ground-truth document ``gt`` records them.

    Documents written before the levels stretch existed (2026-12-06, before commit eeecbd3) record
    no ``levels_stretch``; they are told apart from later ones without it by the per-origin
    statistics (``source_closer_by_origin``) that the generator began writing one commit earlier.
    Their people's ideals have no stretch: evaluating them with one scores models against ideals
    nobody in the crowd had (on such a crowd the recorded choices agree with the closer rendition
    in 91 % of attentive answers without the stretch and 79 % with it).
    """
    d = dict(gt.get("looks_crowd") or {})
    if "levels_stretch" not in d:
        d["levels_stretch"] = "source_closer_by_origin" in (gt.get("statistics") or {})
    return LooksCrowdConfig.from_dict(d)


def resolve_look_tastes(gt: dict[str, Any], root: Path) -> None:
    """Point every looks taste of a ground-truth document at the dataset's own library, and give
    each the crowd's levels stretch when the document predates its record (in place)."""
    lib = gt.get("looks", {}).get("file") if isinstance(gt.get("looks"), dict) else None
    if not lib:
        return
    path = (root / lib).resolve()
    if not path.is_file():
        raise PrefstyleError("the looks crowd's library is missing from the dataset", path=path)
    levels = crowd_settings(gt).levels_stretch
    for d in gt.get("users", []):
        taste = d.get("person", {}).get("taste", {})
        if taste.get("kind") == LookTaste.kind:
            taste["library"] = str(path)
            taste.setdefault("levels", levels)
