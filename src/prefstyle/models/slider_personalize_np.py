"""SliderTaste's personalization in numpy alone (no torch): ``prefstyle personalize --model sliders``.

Importing torch takes a process about 1.2–1.5 s and 520 MB, several times the model's own work
for 16 answers. This module mirrors :meth:`prefstyle.models.slider_taste.SliderTasteModel.personalize`
for a ``sliders`` settings checkpoint with the CIEDE2000 distance: the same prior particles
(:func:`prior_vectors`, :func:`prior_gains`: the same random streams), each particle's ideal of a
scene's ``thumb``-px area thumbnail through the numpy slider pipeline
(:mod:`prefstyle.imaging.retouch_np`) with exposure moved by its gain times the scene's metered
EV, the Bradley–Terry likelihood with lapse, and the kept particles (the heaviest holding
``mass`` of the posterior, at most ``max_kept``). The profile is the torch model's to float32
rounding (``tests/test_personalize_torch_free.py``). Images are ``(H,W,3)`` uint8 as
:func:`prefstyle.models.look_personalize_np.load_references` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prefstyle.imaging import lut_np, retouch_np
from prefstyle.imaging.color_np import area_downsample, rgb_to_lab
from prefstyle.imaging.params import IDENTITY_CURVE, SCALAR_FIELDS, VECTOR_DIM
from prefstyle.models.look_personalize_np import NpProfile, RefImages, _distance, _json, _one_blas_thread, _to_float
from prefstyle.models.profile_file import assets_dir

__all__ = [
    "MODEL_NAME",
    "PRIOR_WIDTHS",
    "SliderSettings",
    "checkpoint_path",
    "describe",
    "personalize",
    "prior_gains",
    "prior_vectors",
    "read_checkpoint",
]

MODEL_NAME = "sliders"
#: the sliders the taste lives on, and each one's prior standard deviation at ``prior_scale=1``
#: (in the slider's own units: EV for exposure, [-1, 1] for the others)
PRIOR_WIDTHS: dict[str, float] = {
    "temperature": 0.3,
    "tint": 0.2,
    "exposure": 0.5,
    "contrast": 0.3,
    "highlights": 0.3,
    "shadows": 0.3,
    "whites": 0.2,
    "blacks": 0.2,
    "vibrance": 0.3,
    "saturation": 0.3,
}
_INDEX = {name: i for i, (name, *_rest) in enumerate(SCALAR_FIELDS)}
_RANGE = {name: (lo, hi) for name, lo, hi, _ in SCALAR_FIELDS}
_F = np.float32
#: ``SliderTasteModel.config()``'s keys, in its order (a profile's ``model_config``)
_CONFIG_KEYS = (
    "name",
    "particles",
    "prior_scale",
    "temperature",
    "lapse",
    "thumb",
    "distance",
    "adapt",
    "meter",
    "lut_size",
    "mass",
    "max_kept",
    "seed",
    "fit",
)


@dataclass(frozen=True)
class SliderSettings:
    """The settings of a ``sliders`` checkpoint that personalization reads (its ``model_config``)."""

    k: int
    prior_scale: float
    temperature: float
    lapse: float
    thumb: int
    adapt: float
    meter: str
    mass: float
    max_kept: int
    seed: int
    config: dict[str, Any]


def checkpoint_path(spec: str) -> Path | None:
    """The settings file of ``spec`` (the packaged ``sliders`` or a ``.json`` path), or None."""
    if spec == MODEL_NAME:
        path = assets_dir() / MODEL_NAME / f"{MODEL_NAME}.json"
        return path if path.is_file() and not (assets_dir() / MODEL_NAME / "model.json").is_file() else None
    return Path(spec).expanduser() if spec.endswith(".json") else None


def read_checkpoint(path: Path) -> SliderSettings | None:
    """The settings, or None when the file is not a ``sliders`` settings checkpoint this module
    mirrors (then the torch model reads it, and says what is wrong)."""
    doc = _json(path) if path.is_file() else None
    if not isinstance(doc, dict) or doc.get("model") != MODEL_NAME or doc.get("tensors"):
        return None
    c = doc.get("model_config")
    if not isinstance(c, dict) or c.get("distance", "de2000") != "de2000" or c.get("meter") not in ("mean", "log_mean"):
        return None
    try:
        s = SliderSettings(
            k=int(c["particles"]),
            prior_scale=float(c["prior_scale"]),
            temperature=float(c["temperature"]),
            lapse=float(c["lapse"]),
            thumb=int(c["thumb"]),
            adapt=float(c["adapt"]),
            meter=str(c["meter"]),
            mass=float(c["mass"]),
            max_kept=int(c["max_kept"]),
            seed=int(c["seed"]),
            config={k: c[k] for k in _CONFIG_KEYS if k in c},
        )
    except (KeyError, TypeError, ValueError):
        return None
    ok = s.k >= 1 and s.thumb >= 1 and s.temperature > 0 and 0 <= s.lapse < 1 and s.max_kept >= 1 and 0 <= s.adapt <= 1
    return s if ok else None


def prior_vectors(k: int, scale: float, seed: int = 0) -> np.ndarray:
    """``(k, VECTOR_DIM)`` float32: row 0 neutral, the rest clipped Gaussians around neutral on the
    sliders of :data:`PRIOR_WIDTHS` (``slider_taste.prior_vectors``, the same numbers)."""
    rng = np.random.default_rng(seed)
    neutral = np.zeros(VECTOR_DIM, dtype=_F)
    neutral[: len(SCALAR_FIELDS)] = [nv for *_, nv in SCALAR_FIELDS]
    neutral[len(SCALAR_FIELDS) : len(SCALAR_FIELDS) + len(IDENTITY_CURVE)] = IDENTITY_CURVE
    vecs = np.repeat(neutral[None], k, axis=0)
    for name in PRIOR_WIDTHS:
        lo, hi = _RANGE[name]
        vals = np.clip(rng.normal(0.0, scale * PRIOR_WIDTHS[name], size=k), lo, hi)
        vals[0] = 0.0
        vecs[:, _INDEX[name]] = vals.astype(_F)
    return vecs


def prior_gains(k: int, adapt: float, seed: int = 0) -> np.ndarray:
    """``(k,)`` float32 adaptive-brightness gains, uniform on ``[0, adapt]``, entry 0 zero."""
    g = np.random.default_rng([seed, 1]).uniform(0.0, adapt, size=k)
    g[0] = 0.0
    return g.astype(_F)


_apply = retouch_np.apply_vectors  # ``apply_retouch_vector(img, vecs, exact=True)`` for (K,3,h,w) and (K,D)


def personalize(s: SliderSettings, refs: Sequence[RefImages], user: str | None = None) -> NpProfile:
    """``SliderTasteModel.personalize``: the profile (``vectors`` ``(K',D)``, ``gains`` ``(K',)``,
    ``weights`` ``(K',)`` float32; ``data``: ``n_refs, n_used, sliders, effective_particles, kept``)."""
    with _one_blas_thread():
        return _personalize(s, refs, user)


def _personalize(s: SliderSettings, refs: Sequence[RefImages], user: str | None) -> NpProfile:
    prior, gains = prior_vectors(s.k, s.prior_scale, s.seed), prior_gains(s.k, s.adapt, s.seed)

    def thumb(u8: np.ndarray) -> np.ndarray:
        return area_downsample(np.clip(_to_float(u8), 0, 1), s.thumb, s.thumb)

    scenes: dict[bytes, np.ndarray] = {}
    cols = []
    used = [r for r in refs if r.source is not None]
    for r in used:
        assert r.source is not None
        t = thumb(r.source)
        ev = lut_np.metered_ev(r.source, s.meter)
        key = t.tobytes() + f"{ev:.4f}".encode()
        if key not in scenes:
            vecs = retouch_np.adapted_vectors(prior, gains, ev)
            ideal = np.clip(_apply(np.broadcast_to(t, (s.k, *t.shape)).copy(), vecs), 0, 1)
            scenes[key] = rgb_to_lab(np.ascontiguousarray(ideal.reshape(s.k, 3, -1).transpose(1, 0, 2)))
        seen = rgb_to_lab(np.stack([thumb(r.preferred), thumb(r.other)]).reshape(2, 3, -1).transpose(1, 0, 2))
        d = _distance(scenes[key], np.ascontiguousarray(seen.transpose(1, 0, 2)))  # (2, K)
        cols.append(d[1].astype(np.float64) - d[0].astype(np.float64))
    gaps = np.stack(cols, 1) if cols else np.zeros((s.k, 0))
    p = s.lapse / 2 + (1 - s.lapse) / (1.0 + np.exp(-gaps / s.temperature))
    ll = np.log(p).sum(1)
    w = np.exp(ll - ll.max())
    w /= w.sum()
    order = np.argsort(-w, kind="stable")
    cum = np.cumsum(w[order])
    n_keep = int(min(s.max_kept, int((cum < s.mass).sum()) + 1))
    keep = order[:n_keep]
    wk = (w[keep] / w[keep].sum()).astype(_F)
    vk, gk = prior[keep], gains[keep]
    mean = (wk[:, None] * vk).sum(0)
    sliders = {name: round(float(mean[_INDEX[name]]), 4) for name in PRIOR_WIDTHS}
    sliders["adaptive_brightness"] = round(float((wk * gk).sum()), 4)
    return NpProfile(
        model=MODEL_NAME,
        user=user,
        model_config=dict(s.config),
        tensors={"vectors": vk, "gains": gk, "weights": wk},
        data={
            "n_refs": len(refs),
            "n_used": len(used),
            "sliders": sliders,
            "effective_particles": round(float(1.0 / (w**2).sum()), 2),
            "kept": n_keep,
        },
    )


def describe(data: dict[str, Any]) -> str:
    """The taste in a raw editor's words, the five largest moves first, e.g. ``your sliders:
    exposure +0.31 EV, temperature +0.22, ..., brightness follows the photo 60 %``
    (``SliderTasteModel.describe``)."""
    sliders = dict(data.get("sliders") or {})
    if not sliders:
        return ""
    adaptive = sliders.pop("adaptive_brightness", None)
    top = sorted(sliders.items(), key=lambda kv: -abs(kv[1]))[:5]
    words = [f"{k} {v:+.2f}{' EV' if k == 'exposure' else ''}" for k, v in top]
    if adaptive is not None:  # 100 %: every photo brought to the same brightness
        words.append(f"brightness follows the photo {100 * adaptive:.0f} %")
    return "your sliders: " + ", ".join(words)
