"""Classical enhancement methods as styles ("method users" in PieNet's expanded benchmark).

Every method is a :class:`ClassicalStyle` subclass with a few named settings (``settings``),
deterministic for given settings. They take sRGB tensors ``(B,3,H,W)`` in [0,1]; the
image-processing ones go through NumPy / scikit-image / OpenCV one image at a time.

=================  ==========  ==================================================================
name               global?     what it does
=================  ==========  ==================================================================
``hist-eq``        per image   histogram equalisation of HSV value (``skimage.exposure``), hue kept
``clahe``          no          CLAHE on Lab lightness (``skimage.exposure.equalize_adapthist``)
``gamma``          yes         ``x ** (1 / gamma)`` per channel (gamma > 1 brightens)
``auto-levels``    per image   percentile stretch, per channel (also removes casts) or on luma
``gray-world``     per image   gray-world white balance, gains computed and applied in linear light
``white-patch``    per image   white-patch (percentile max-RGB) white balance in linear light
``msrcr``          no          multi-scale retinex with colour restoration + simplest colour balance
``msrcp``          no          multi-scale retinex on intensity, chromaticity preserved (IPOL 2014)
``lime``           no          LIME-style illumination-map enhancement (see :class:`LIME`)
``s-curve``        yes         per-channel sigmoid S-curve through (0,0) and (1,1)
=================  ==========  ==================================================================

"per image" methods are global colour transforms whose parameters come from statistics of the
image (``is_global=True``, ``image_dependent=True``): they can be baked into a LUT given the
image (:meth:`Style.to_lut` with ``image=``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from skimage import exposure

from prefstyle.errors import PrefstyleError
from prefstyle.styles.base import Style, as_batch, register_kind

CLASSICAL_METHODS: dict[str, type[ClassicalStyle]] = {}


def _method(cls: type[ClassicalStyle]) -> type[ClassicalStyle]:
    CLASSICAL_METHODS[cls.method] = cls
    return cls


# ---------------------------------------------------------------------------------------------
# NumPy helpers (H,W,3 float32 arrays in [0,1])


def srgb_to_linear_np(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0.0, 1.0)
    return np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb_np(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0.0, 1.0)
    return np.where(a <= 0.0031308, a * 12.92, 1.055 * np.power(a, 1.0 / 2.4) - 0.055).astype(np.float32)


def _to_np_list(x: torch.Tensor) -> list[np.ndarray]:
    return [np.ascontiguousarray(im.permute(1, 2, 0).detach().cpu().numpy().astype(np.float32)) for im in x]


def _from_np_list(arrs: list[np.ndarray], like: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1) for a in arrs]).to(
        like.device, torch.float32
    )


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (reflect border). Large sigmas blur a downsampled copy (fast, smooth anyway)."""
    if sigma <= 0:
        return img.copy()
    h, w = img.shape[:2]
    factor = sigma / 8.0
    if factor > 2.0 and min(h, w) / factor >= 4:
        sh, sw = max(4, round(h / factor)), max(4, round(w / factor))
        small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(
            small, (0, 0), sigmaX=sigma * sw / w, sigmaY=sigma * sh / h, borderType=cv2.BORDER_REFLECT
        )
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        out = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    return out.reshape(img.shape).astype(np.float32)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide, grey source) with OpenCV box filters."""
    k = (2 * radius + 1, 2 * radius + 1)

    def box(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, cv2.CV_32F, k, normalize=True, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    cov_ip = box(guide * src) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return (box(a) * guide + box(b)).astype(np.float32)


def _luma(a: np.ndarray) -> np.ndarray:
    return (0.2126 * a[..., 0] + 0.7152 * a[..., 1] + 0.0722 * a[..., 2]).astype(np.float32)


# ---------------------------------------------------------------------------------------------


@register_kind("classical")
class ClassicalStyle(Style):
    """Base of the classical methods. Subclasses set ``method``, ``summary``, ``defaults``.

    Spatially varying methods implement :meth:`_process` (one ``(H,W,3)`` array);
    image-dependent global ones implement :meth:`_stats` and :meth:`_transform`; pure
    global ones may override :meth:`_render` with torch code.
    """

    kind = "classical"
    method: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, name: str | None = None, description: str | None = None, strength: float = 1.0, **settings: Any):
        unknown = sorted(set(settings) - set(self.defaults))
        if unknown:
            raise PrefstyleError(
                f"classical method {self.method!r} has no setting(s) {', '.join(unknown)}; "
                f"its settings are: {', '.join(self.defaults) or '(none)'}"
            )
        merged = dict(self.defaults)
        for k, v in settings.items():
            d = self.defaults[k]
            merged[k] = [float(x) for x in v] if isinstance(d, list) else type(d)(v)
        self.settings: dict[str, Any] = merged
        super().__init__(name or self.method, self.summary if description is None else description, strength)
        self._validate()

    def _validate(self) -> None:
        """Raise PrefstyleError on settings outside their sensible range."""

    def _check(self, key: str, lo: float, hi: float) -> None:
        v = self.settings[key]
        if not (lo <= v <= hi):
            raise PrefstyleError(f"{self.method}: setting {key}={v} outside [{lo}, {hi}]")

    def _own_params(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "settings": {k: (list(v) if isinstance(v, list) else v) for k, v in self.settings.items()},
        }

    @classmethod
    def _from_params(cls, d: dict[str, Any]) -> Style:
        method = d.get("method")
        sub = CLASSICAL_METHODS.get(method)  # type: ignore[arg-type]
        if sub is None:
            raise PrefstyleError(f"unknown classical method {method!r}; known: {', '.join(sorted(CLASSICAL_METHODS))}")
        return sub(name=d.get("name"), description=d.get("description"), **d.get("settings", {}))

    # -- rendering ----------------------------------------------------------------------
    def _process(self, a: np.ndarray) -> np.ndarray:
        if self.image_dependent:
            return self._transform(a, self._stats(a))
        raise NotImplementedError

    def _stats(self, a: np.ndarray) -> Any:
        raise NotImplementedError

    def _transform(self, a: np.ndarray, stats: Any) -> np.ndarray:
        raise NotImplementedError

    def _render(self, x: torch.Tensor) -> torch.Tensor:
        return _from_np_list([self._process(a) for a in _to_np_list(x)], x)

    def apply_with_reference(self, img: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        if not self.image_dependent:
            return self.apply(img)
        ref, _ = as_batch(reference)
        if ref.shape[0] != 1:
            raise ValueError("apply_with_reference needs a single reference image")
        stats = self._stats(_to_np_list(ref.float().clamp(0, 1))[0])
        x, squeeze = as_batch(img)
        xf = x.float().clamp(0, 1)
        out = _from_np_list([self._transform(a, stats) for a in _to_np_list(xf)], xf)
        if self.strength != 1.0:
            out = xf + self.strength * (out - xf)
        out = out.clamp(0, 1).to(x.dtype)
        return out[0] if squeeze else out


# -- global, image-dependent -----------------------------------------------------------------


@_method
class HistogramEqualization(ClassicalStyle):
    """Histogram equalisation of the HSV value channel; RGB is scaled by V'/V so hue and HSV
    saturation are kept. The CDF comes from ``skimage.exposure.cumulative_distribution`` (what
    ``equalize_hist`` uses), so the mapping is a per-image tone curve on V."""

    method = "hist-eq"
    summary = "histogram equalisation of the HSV value channel (hue kept)"
    defaults: ClassVar[dict[str, Any]] = {"nbins": 256}
    is_global = True
    image_dependent = True

    def _validate(self) -> None:
        self._check("nbins", 16, 65536)

    def _stats(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = a.max(axis=2)
        if float(v.max() - v.min()) < 1e-6:
            return np.array([0.0, 1.0]), np.array([0.0, 1.0])
        cdf, centers = exposure.cumulative_distribution(v, nbins=int(self.settings["nbins"]))
        return centers.astype(np.float64), cdf.astype(np.float64)

    def _transform(self, a: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        centers, cdf = stats
        v = a.max(axis=2)
        v2 = np.interp(v, centers, cdf).astype(np.float32)
        ratio = v2 / np.maximum(v, 1e-6)
        out = a * ratio[..., None]
        dark = v < 1e-6
        out[dark] = v2[dark][:, None]
        return np.clip(out, 0, 1)


@_method
class AutoLevels(ClassicalStyle):
    """Auto-levels: stretch the ``low``..``high`` percentiles to 0..1 (``skimage.exposure.
    rescale_intensity``), per channel (which also neutralises casts, like Photoshop's "enhance
    per-channel contrast") or on luma with the same gain for every channel."""

    method = "auto-levels"
    summary = "percentile levels stretch (per channel, removes casts)"
    defaults: ClassVar[dict[str, Any]] = {"low": 0.5, "high": 99.5, "per_channel": True, "min_range": 0.1}
    is_global = True
    image_dependent = True

    def _validate(self) -> None:
        self._check("low", 0.0, 49.0)
        self._check("high", 51.0, 100.0)
        self._check("min_range", 0.01, 1.0)

    def _stats(self, a: np.ndarray) -> np.ndarray:
        lo_q, hi_q, mr = self.settings["low"], self.settings["high"], self.settings["min_range"]
        if self.settings["per_channel"]:
            lo = np.percentile(a.reshape(-1, 3), lo_q, axis=0)
            hi = np.percentile(a.reshape(-1, 3), hi_q, axis=0)
        else:
            y = _luma(a)
            lo = np.full(3, np.percentile(y, lo_q))
            hi = np.full(3, np.percentile(y, hi_q))
        # Never stretch a channel by more than 1/min_range (flat images would explode).
        mid = (lo + hi) / 2
        half = np.maximum((hi - lo) / 2, mr / 2)
        lo, hi = np.clip(mid - half, 0, 1 - mr), np.clip(mid + half, mr, 1)
        return np.stack([lo, hi])

    def _transform(self, a: np.ndarray, stats: np.ndarray) -> np.ndarray:
        out = np.empty_like(a)
        for c in range(3):
            out[..., c] = exposure.rescale_intensity(
                a[..., c], in_range=(float(stats[0, c]), float(stats[1, c])), out_range=(0.0, 1.0)
            )
        return out.astype(np.float32)


@_method
class GrayWorld(ClassicalStyle):
    """Gray-world white balance: per-channel gains make the mean colour grey. Means are taken in
    linear light over unclipped, non-black pixels; gains keep the mean luminance and are limited
    to ``[1/max_gain, max_gain]``."""

    method = "gray-world"
    summary = "gray-world white balance (linear light)"
    defaults: ClassVar[dict[str, Any]] = {"max_gain": 2.0}
    is_global = True
    image_dependent = True

    def _validate(self) -> None:
        self._check("max_gain", 1.0, 8.0)

    def _stats(self, a: np.ndarray) -> np.ndarray:
        lin = srgb_to_linear_np(a).reshape(-1, 3)
        mask = (a.reshape(-1, 3).max(axis=1) < 0.98) & (a.reshape(-1, 3).max(axis=1) > 0.02)
        if mask.sum() < 16:
            mask = np.ones(len(lin), dtype=bool)
        m = lin[mask].mean(axis=0) + 1e-6
        lum = 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]
        gains = lum / m
        g = self.settings["max_gain"]
        return np.clip(gains, 1.0 / g, g)

    def _transform(self, a: np.ndarray, gains: np.ndarray) -> np.ndarray:
        return linear_to_srgb_np(srgb_to_linear_np(a) * gains.astype(np.float32))


@_method
class WhitePatch(ClassicalStyle):
    """White-patch (max-RGB) white balance: the ``percentile`` of each channel, in linear light,
    becomes white. Using a high percentile rather than the maximum ignores specular/clipped
    outliers; gains are limited to ``max_gain``."""

    method = "white-patch"
    summary = "white-patch (percentile max-RGB) white balance"
    defaults: ClassVar[dict[str, Any]] = {"percentile": 97.0, "max_gain": 4.0}
    is_global = True
    image_dependent = True

    def _validate(self) -> None:
        self._check("percentile", 50.0, 100.0)
        self._check("max_gain", 1.0, 16.0)

    def _stats(self, a: np.ndarray) -> np.ndarray:
        lin = srgb_to_linear_np(a).reshape(-1, 3)
        p = np.percentile(lin, self.settings["percentile"], axis=0)
        return np.clip(1.0 / np.maximum(p, 1e-6), 1.0, self.settings["max_gain"])

    def _transform(self, a: np.ndarray, gains: np.ndarray) -> np.ndarray:
        return linear_to_srgb_np(srgb_to_linear_np(a) * gains.astype(np.float32))


# -- global, fixed (torch; GPU-friendly) ------------------------------------------------------


@_method
class Gamma(ClassicalStyle):
    """Gamma correction ``x ** (1 / gamma)`` on each sRGB channel: gamma > 1 brightens."""

    method = "gamma"
    summary = "gamma correction x^(1/gamma), gamma > 1 brightens"
    defaults: ClassVar[dict[str, Any]] = {"gamma": 1.5}
    is_global = True

    def _validate(self) -> None:
        self._check("gamma", 0.2, 5.0)

    def _render(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(0.0).pow(1.0 / self.settings["gamma"])


def sigmoid_curve(x: torch.Tensor, amount: float, pivot: float = 0.5, gain: float = 10.0) -> torch.Tensor:
    """Normalised sigmoid through (0,0) and (1,1), slope ``gain*amount`` at ``pivot``; amount 0 = identity."""
    k = gain * amount
    if k < 1e-4:
        return x

    def sig(t: float | torch.Tensor) -> Any:
        return torch.sigmoid(t) if isinstance(t, torch.Tensor) else 1.0 / (1.0 + math.exp(-t))

    lo, hi = sig(-k * pivot), sig(k * (1.0 - pivot))
    return (sig(k * (x - pivot)) - lo) / (hi - lo)


@_method
class SCurve(ClassicalStyle):
    """A contrast S-curve: a normalised sigmoid through (0,0) and (1,1) around ``pivot`` on
    each sRGB channel (so it also adds a little saturation, as an RGB curve does)."""

    method = "s-curve"
    summary = "contrast S-curve (sigmoid through black and white)"
    defaults: ClassVar[dict[str, Any]] = {"amount": 0.4, "pivot": 0.5}
    is_global = True

    def _validate(self) -> None:
        self._check("amount", 0.0, 1.0)
        self._check("pivot", 0.2, 0.8)

    def _render(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid_curve(x, self.settings["amount"], self.settings["pivot"])


# -- spatially varying -------------------------------------------------------------------------


@_method
class CLAHE(ClassicalStyle):
    """Contrast-limited adaptive histogram equalisation of Lab lightness
    (``skimage.exposure.equalize_adapthist``); a and b are kept. The tile size is
    ``kernel_frac`` of the image's shorter side so the look does not depend on resolution."""

    method = "clahe"
    summary = "contrast-limited adaptive histogram equalisation of Lab lightness"
    defaults: ClassVar[dict[str, Any]] = {"clip_limit": 0.01, "kernel_frac": 0.125, "nbins": 256}

    def _validate(self) -> None:
        self._check("clip_limit", 0.0, 1.0)
        self._check("kernel_frac", 0.02, 1.0)
        self._check("nbins", 16, 65536)

    def _process(self, a: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(np.clip(a, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
        h, w = a.shape[:2]
        ks = max(2, round(min(h, w) * self.settings["kernel_frac"]))
        L = exposure.equalize_adapthist(
            np.clip(lab[..., 0] / 100.0, 0, 1),
            kernel_size=ks,
            clip_limit=self.settings["clip_limit"],
            nbins=int(self.settings["nbins"]),
        )
        lab[..., 0] = (L * 100.0).astype(np.float32)
        return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1)


@_method
class MSRCR(ClassicalStyle):
    """Multi-scale retinex with colour restoration (Jobson, Rahman & Woodell 1997), then the
    "simplest colour balance" (per-channel percentile stretch) so the result looks like a photo.

    ``R = mean_s [log I - log G_s * I]``, ``C = beta * (log(alpha I) - log sum_c I)``,
    ``MSRCR = gain * (R * C + offset)``; Gaussian scales ``sigmas`` are given for an image whose
    longer side is ``reference_size`` and scale with the image, so the look is
    resolution-independent. ``blend`` mixes the result with the input (1 = pure MSRCR).
    """

    method = "msrcr"
    summary = "multi-scale retinex with colour restoration (scales 15/80/250)"
    defaults: ClassVar[dict[str, Any]] = {
        "sigmas": [15.0, 80.0, 250.0],
        "reference_size": 512.0,
        "alpha": 125.0,
        "beta": 46.0,
        "gain": 192.0,
        "offset": -30.0,
        "low_clip": 2.0,
        "high_clip": 99.8,
        "blend": 1.0,
    }

    def _validate(self) -> None:
        if not self.settings["sigmas"] or any(s <= 0 for s in self.settings["sigmas"]):
            raise PrefstyleError(f"msrcr: sigmas must be positive, got {self.settings['sigmas']}")
        self._check("reference_size", 16, 100000)
        self._check("low_clip", 0.0, 20.0)
        self._check("high_clip", 80.0, 100.0)
        self._check("blend", 0.0, 1.0)

    def _process(self, a: np.ndarray) -> np.ndarray:
        s = self.settings
        img = np.clip(a, 0, 1).astype(np.float32) * 255.0 + 1.0
        scale = max(a.shape[:2]) / s["reference_size"]
        retinex = _msr(img, s["sigmas"], scale)
        color = s["beta"] * (np.log(s["alpha"] * img) - np.log(img.sum(axis=2, keepdims=True)))
        msrcr = s["gain"] * (retinex * color + s["offset"])
        out = np.empty_like(msrcr)
        for c in range(3):
            ch = msrcr[..., c]
            lo, hi = np.percentile(ch, [s["low_clip"], s["high_clip"]])
            out[..., c] = (ch - lo) / max(hi - lo, 1e-6)
        out = np.clip(out, 0, 1)
        return (s["blend"] * out + (1 - s["blend"]) * a).astype(np.float32)


def _msr(channel: np.ndarray, sigmas: list[float], scale: float) -> np.ndarray:
    log_i = np.log(channel)
    out = np.zeros_like(channel)
    for sigma in sigmas:
        out += log_i - np.log(np.maximum(gaussian_blur(channel, sigma * scale), 1e-3))
    return out / len(sigmas)


@_method
class MSRCP(MSRCR):
    """Multi-scale retinex with chromaticity preservation (Petro, Sbert & Morel, IPOL 2014):
    MSR on the intensity ``(R+G+B)/3``, a simplest-colour-balance stretch of it, then every
    pixel's RGB scaled by the same factor (capped so no channel clips) - colours keep their
    chromaticity, so the result is punchier and less washed-out than MSRCR."""

    method = "msrcp"
    summary = "multi-scale retinex with chromaticity preservation (intensity MSR)"
    defaults: ClassVar[dict[str, Any]] = {
        "sigmas": [15.0, 80.0, 250.0],
        "reference_size": 512.0,
        "low_clip": 1.0,
        "high_clip": 99.0,
        "blend": 1.0,
    }

    def _process(self, a: np.ndarray) -> np.ndarray:
        s = self.settings
        img = np.clip(a, 0, 1).astype(np.float32) * 255.0 + 1.0
        intensity = img.mean(axis=2)
        r = _msr(intensity, s["sigmas"], max(a.shape[:2]) / s["reference_size"])
        lo, hi = np.percentile(r, [s["low_clip"], s["high_clip"]])
        i2 = np.clip((r - lo) / max(hi - lo, 1e-6), 0, 1) * 254.0 + 1.0
        ratio = np.minimum(256.0 / img.max(axis=2), i2 / intensity)
        out = np.clip((img * ratio[..., None] - 1.0) / 255.0, 0, 1)
        return (s["blend"] * out + (1 - s["blend"]) * a).astype(np.float32)


@_method
class LIME(ClassicalStyle):
    """LIME-style low-light enhancement (Guo, Li & Ling 2017), simplified.

    The initial illumination is max-RGB, as in LIME. Instead of LIME's structure-aware
    optimisation the map is refined with a guided filter (He et al.) guided by the image's luma,
    which likewise keeps strong edges while smoothing texture. The map is then gamma-adjusted
    (``gamma``, LIME's 0.8) and the image divided by it: ``R = I / max(T, floor) ** gamma``.
    The filter radius is ``radius_frac`` of the longer side (resolution-independent).
    """

    method = "lime"
    summary = "LIME-style illumination-map enhancement (max-RGB map, guided-filter refinement)"
    defaults: ClassVar[dict[str, Any]] = {"gamma": 0.8, "radius_frac": 0.02, "eps": 0.001, "floor": 0.08}

    def _validate(self) -> None:
        self._check("gamma", 0.1, 2.0)
        self._check("radius_frac", 0.001, 0.5)
        self._check("eps", 1e-6, 1.0)
        self._check("floor", 0.01, 1.0)

    def _process(self, a: np.ndarray) -> np.ndarray:
        s = self.settings
        a = np.clip(a, 0, 1).astype(np.float32)
        t0 = a.max(axis=2)
        r = max(1, round(max(a.shape[:2]) * s["radius_frac"]))
        t = guided_filter(_luma(a), t0, r, s["eps"])
        t = np.clip(np.maximum(t, t0 * 0.5), s["floor"], 1.0) ** s["gamma"]
        return np.clip(a / t[..., None], 0, 1)


def classical_styles() -> list[ClassicalStyle]:
    """One instance of every classical method at its default settings."""
    return [cls() for cls in CLASSICAL_METHODS.values()]
