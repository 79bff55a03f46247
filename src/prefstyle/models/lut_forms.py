"""Profiles whose rendering is one LUT per photo, read and applied without torch.

A ``looks`` profile (:class:`prefstyle.models.look_taste.LookTasteModel`) holds a look ``(3,S,S,S)``
and a gain ``g``: a photo's LUT is the look sampled at the identity grid exposed by ``g · EV``
(the photo's metered EV), ``lut_size`` nodes per axis. :func:`torch_free_lut_profile` reads
such a profile with numpy and ``safetensors.numpy`` (importing torch alone makes a process
about 600 MB resident), so that ``prefstyle enhance`` can render 8-bit photos with
:mod:`prefstyle.imaging.lut_np` and Pillow. This module imports no torch, even indirectly
(``tests/test_enhance_torch_free.py``).

A ``sliders`` profile (:class:`prefstyle.models.slider_taste.SliderTasteModel`) holds particles:
slider vectors, adaptive-brightness gains and weights. A photo's LUT is the weighted mean of the
particles' edits of the identity grid, each with exposure moved by its gain times the photo's
metered EV (:class:`SliderLutProfile`, through the numpy slider pipeline
:mod:`prefstyle.imaging.retouch_np`).

Coupling, checked by tests: :meth:`LutProfile.photo_lut` mirrors ``LookTasteModel.luts`` and
:meth:`SliderLutProfile.photo_lut` ``SliderTasteModel.luts`` (to 1e-5); :func:`_read` mirrors
``LookTasteModel.check_profile``'s checks and messages; a ``sliders`` profile that fails any of
``SliderTasteModel.check_profile``'s checks is left to the torch reader (which says what is
wrong); the settings come from the model checkpoint ``prefstyle.models.load`` would use for the
profile.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefstyle.errors import PrefstyleError
from prefstyle.imaging import lut_np
from prefstyle.models.profile_file import PROFILE_FORMAT, PROFILE_VERSION, assets_dir

if TYPE_CHECKING:
    from prefstyle.models.pienet_lut_np import NetworkLutProfile

__all__ = [
    "LutProfile",
    "SliderLutProfile",
    "TorchFreeProfile",
    "torch_free_enhance_profile",
    "torch_free_lut_profile",
]

#: the models whose profiles have a torch-free form
_MODEL, _SLIDERS = "looks", "sliders"
_ASSETS = assets_dir()
_FORMAT, _VERSION = PROFILE_FORMAT, PROFILE_VERSION


class _LutCache:
    """At most 64 LUTs by key, shared by the threads of ``enhance --jobs``."""

    def __init__(self) -> None:
        self._luts: dict[float, np.ndarray] = {}
        self._lock = threading.Lock()

    def get(self, key: float, make: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            hit = self._luts.get(key)
        if hit is not None:
            return hit
        out = make()
        with self._lock:
            if len(self._luts) >= 64:
                self._luts.pop(next(iter(self._luts)))
            self._luts[key] = out
        return out


class _PerPhotoLut:
    """What both profile forms share: a photo's LUT from its metered EV (:meth:`lut`)."""

    meter: str

    def lut(self, ev: float) -> np.ndarray:
        raise NotImplementedError

    def photo_lut(self, u8: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """The ``(3,S,S,S)`` float32 LUT in [0,1] that renders the photo ``u8`` ``(H,W,3)`` uint8 (or its
        :func:`~prefstyle.imaging.lut_np.metering_thumbnail`), blended with the identity by ``strength``."""
        return lut_np.blend_identity(self.lut(lut_np.metered_ev(u8, self.meter)), strength)


@dataclass
class LutProfile(_PerPhotoLut):
    """A profile rendered as one LUT per photo: ``look`` ``(3,S,S,S)`` float32 in about [0,1] (the
    taste), ``gain`` in [0,1], ``meter`` (``"mean"`` or ``"log_mean"``), ``lut_size`` nodes per
    axis of each photo's LUT; ``model``: the model's name, ``path``: the profile's ``.json``, ``user``:
    whose taste it is."""

    path: Path
    model: str
    look: np.ndarray
    gain: float
    meter: str
    lut_size: int
    user: str | None = None
    _cache: _LutCache = field(default_factory=_LutCache, repr=False)

    def lut(self, ev: float) -> np.ndarray:
        """The look for a photo whose metered EV is ``ev``: ``(3,S,S,S)``, the exposure ``gain · ev``
        (rounded to 1/1000 EV, as the model does) composed in, clamped to [0,1]."""
        shift = round(self.gain * float(ev), 3)
        s = self.lut_size

        def make() -> np.ndarray:
            grid = lut_np.exposed(lut_np.identity_grid(s), shift)
            return np.clip(lut_np.sample_table(self.look, grid), 0.0, 1.0).reshape(3, s, s, s)

        return self._cache.get(shift, make)


@dataclass
class SliderLutProfile(_PerPhotoLut):
    """A ``sliders`` profile rendered as one LUT per photo: ``vectors`` ``(K,VECTOR_DIM)``, ``gains``
    ``(K,)`` in [0,1] and ``weights`` ``(K,)`` (sum 1) float32, ``meter``, ``lut_size`` nodes per axis;
    ``model``: the model's name, ``path``: the profile's ``.json``, ``user``: whose taste it is,
    ``adaptive``: the profile's read-out of its adaptive brightness (``data["sliders"]``)."""

    path: Path
    model: str
    vectors: np.ndarray
    gains: np.ndarray
    weights: np.ndarray
    meter: str
    lut_size: int
    user: str | None = None
    adaptive: float = 0.0
    _cache: _LutCache = field(default_factory=_LutCache, repr=False)

    def lut(self, ev: float) -> np.ndarray:
        """The posterior-mean edit for a photo whose metered EV is ``ev`` (rounded to 1/1000 EV, and 0
        when no particle adapts, as the model does): ``(3,S,S,S)``."""
        from prefstyle.imaging.retouch_np import adapted_vectors, edits_on_grid

        ev = round(float(ev), 3) if bool((self.gains > 0).any()) else 0.0
        s = self.lut_size

        def make() -> np.ndarray:
            edits = np.clip(edits_on_grid(adapted_vectors(self.vectors, self.gains, ev), s), 0, 1)
            return np.tensordot(self.weights, edits, axes=1).reshape(3, s, s, s).astype(np.float32)

        return self._cache.get(ev, make)

    def slider_edit(self) -> tuple[Any, float]:
        """``SliderTasteModel.slider_edit``: the posterior mean of the ten sliders (a ``RetouchParams``,
        each clamped to its range) and of the adaptive-brightness gain (in [0, 1])."""
        from prefstyle.imaging.params import NEUTRAL, SCALAR_FIELDS
        from prefstyle.models.slider_personalize_np import PRIOR_WIDTHS

        w = self.weights.astype(np.float32)
        mean = (w[:, None] * self.vectors).sum(0) / w.sum()
        gain = float((w * self.gains).sum() / w.sum())
        index = {name: (i, lo, hi) for i, (name, lo, hi, _) in enumerate(SCALAR_FIELDS)}
        kw = {name: min(max(float(mean[index[name][0]]), index[name][1]), index[name][2]) for name in PRIOR_WIDTHS}
        return NEUTRAL.replace(**kw), min(max(gain, 0.0), 1.0)


#: what :func:`torch_free_lut_profile` gives
TorchFreeProfile = LutProfile | SliderLutProfile


def torch_free_lut_profile(profile: Path, model: str | None = None) -> TorchFreeProfile | None:
    """The profile at ``profile`` (a ``.json``) as a :class:`LutProfile`, or None when it does not have
    that form or anything about it needs the full reader (another model, a ``model`` override, a
    checkpoint that is not a settings file, a file the torch reader must judge: then the caller
    takes :func:`prefstyle.cli.personalize_cmd.load_profile_and_model`, which gives today's errors).

    A profile of this form whose values are wrong (no ``(3,S,S,S)`` LUT, non-finite or out-of-range
    values, a gain outside [0,1], an unknown meter) is a one-line :class:`PrefstyleError` naming it.
    """
    if model is not None:
        return None
    doc = _json(profile)
    kind = None if doc is None else doc.get("model")
    if doc is None or kind not in (_MODEL, _SLIDERS) or doc.get("version") != _VERSION or doc.get("format") != _FORMAT:
        return None
    config, data, names = doc.get("model_config", {}), doc.get("data", {}), doc.get("tensors") or []
    needed = {"lut"} if kind == _MODEL else {"vectors", "weights"}
    if not isinstance(config, dict) or not isinstance(data, dict) or not isinstance(names, list) or needed - set(names):
        return None
    if doc.get("user") is not None and not isinstance(doc.get("user"), str):
        return None
    settings = _checkpoint_settings(kind, config.get("source") or kind)
    if settings is None:
        return None
    lut_size, default_meter = settings
    tensors = _tensors(profile.with_suffix(".safetensors"), names)
    if tensors is None:
        return None
    user = doc.get("user")
    if kind == _SLIDERS:
        form = _read_sliders(profile, tensors, data, default_meter, lut_size)
        if form is not None:
            form.user = user
        return form
    look, gain, meter = _read(profile, tensors, data, default_meter)
    return LutProfile(path=profile, model=_MODEL, look=look, gain=gain, meter=meter, lut_size=lut_size, user=user)


def torch_free_enhance_profile(profile: Path, model: str | None = None) -> TorchFreeProfile | NetworkLutProfile | None:
    """What ``enhance`` can render without torch: :func:`torch_free_lut_profile`'s forms, or a PieNet
    profile through its network exported to ONNX
    (:func:`prefstyle.models.pienet_lut_np.torch_free_network_profile`); None otherwise."""
    form = torch_free_lut_profile(profile, model)
    if form is not None or model is not None:
        return form
    doc = _json(profile)
    if doc is None:
        return None
    from prefstyle.models.pienet_lut_np import torch_free_network_profile

    return torch_free_network_profile(profile, doc)


def _json(path: Path) -> dict[str, Any] | None:
    def finite(text: str) -> float:
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(text)
        return value

    def no_constant(name: str) -> float:
        raise ValueError(name)

    try:
        doc = json.loads(path.read_text(encoding="utf-8"), parse_float=finite, parse_constant=no_constant)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _checkpoint_settings(kind: str, source: Any) -> tuple[int, str] | None:
    """``(lut_size, meter)`` of the model :func:`prefstyle.models.load` gives for ``source``, when that is
    a settings checkpoint of model ``kind`` (the packaged one for its name, or a ``.json`` path); else None."""
    if not isinstance(source, str):
        return None
    if source == kind:
        if (_ASSETS / kind / "model.json").is_file():
            return None
        path = _ASSETS / kind / f"{kind}.json"
    elif source.endswith(".json"):
        path = Path(source).expanduser()
    else:
        return None
    doc = _json(path) if path.is_file() else None
    if doc is None or doc.get("model") != kind or doc.get("format") != _FORMAT:
        return None
    # looks keeps its settings in "data"; sliders in "model_config" (SliderTasteModel's checkpoint)
    d = doc.get("data") if kind == _MODEL else doc.get("model_config")
    if not isinstance(d, dict):
        return None
    meter, size = d.get("meter", "mean"), d.get("lut_size", 33)
    if meter not in ("mean", "log_mean") or not isinstance(size, int) or not 2 <= size <= 65:
        return None
    return size, meter


def _tensors(path: Path, names: list[Any]) -> dict[str, np.ndarray] | None:
    """The profile's tensors as numpy arrays, or None when the file is missing or not all readable
    here (the torch reader then says what is wrong, or reads dtypes numpy lacks)."""
    from safetensors.numpy import load_file

    if not path.is_file():
        return None
    try:
        tensors = load_file(str(path))
    except Exception:  # noqa: BLE001 - any failure: the torch reader gives the error
        return None
    if set(names) - set(tensors) or ("lut" in tensors and tensors["lut"].dtype.kind != "f"):
        return None
    for t in tensors.values():
        if t.dtype.kind == "f" and not np.isfinite(t).all():
            return None
    return tensors


def _read(path: Path, tensors: dict[str, np.ndarray], data: dict[str, Any], default_meter: str) -> tuple:
    """``(look, gain, meter)`` with LookTasteModel.check_profile's checks (same messages, naming ``path``)."""
    lut = tensors["lut"]
    if lut.ndim != 4 or lut.shape[0] != 3 or not (lut.shape[1] == lut.shape[2] == lut.shape[3]) or lut.shape[1] < 2:
        raise PrefstyleError("looks profile has no (3,S,S,S) LUT (damaged or another model)", path=path)
    look = lut.astype(np.float32)
    if not np.isfinite(look).all() or float(np.abs(look).max()) > 4:
        raise PrefstyleError("looks profile LUT holds NaN, infinite or out-of-range values", path=path)
    g = data.get("gain", 0.0)
    if not isinstance(g, (int, float)) or not 0 <= float(g) <= 1:
        raise PrefstyleError(f"looks profile gain must be in [0, 1], got {g!r}", path=path)
    meter = data.get("meter", default_meter)
    if meter not in ("mean", "log_mean"):
        raise PrefstyleError("looks profile meter must be 'mean' or 'log_mean'", path=path)
    return look, float(g), str(meter)


def _read_sliders(
    path: Path, tensors: dict[str, np.ndarray], data: dict[str, Any], meter: str, lut_size: int
) -> SliderLutProfile | None:
    """The particles of a ``sliders`` profile, or None when any of ``SliderTasteModel.check_profile``'s
    checks fails (the torch reader then names the problem)."""
    from prefstyle.imaging.params import SCALAR_FIELDS, VECTOR_DIM

    v, w = tensors["vectors"], tensors["weights"]
    g = tensors.get("gains")
    if v.ndim != 2 or v.shape[1] != VECTOR_DIM or w.shape != (v.shape[0],) or v.shape[0] == 0:
        return None
    if g is not None and g.shape != w.shape:
        return None
    if any(t.dtype.kind != "f" for t in (v, w, *(() if g is None else (g,)))):
        return None
    tol = 1e-4
    n_scalar = len(SCALAR_FIELDS)
    lo = np.array([f[1] for f in SCALAR_FIELDS] + [0.0] * 5 + [-1.0] * (VECTOR_DIM - n_scalar - 5))
    hi = np.array([f[2] for f in SCALAR_FIELDS] + [1.0] * (VECTOR_DIM - n_scalar))
    vd, wd = v.astype(np.float64), w.astype(np.float64)
    if ((vd < lo - tol) | (vd > hi + tol)).any() or (wd < 0).any() or abs(float(wd.sum()) - 1.0) > 1e-3:
        return None
    if g is not None and ((g < -tol) | (g > 1 + tol)).any():
        return None
    sliders = data.get("sliders")
    if sliders is not None:
        if not isinstance(sliders, dict) or any(
            isinstance(x, bool) or not isinstance(x, (int, float)) for x in sliders.values()
        ):
            return None
        ranges = {f[0]: (f[1], f[2]) for f in SCALAR_FIELDS} | {"adaptive_brightness": (0.0, 1.0)}
        for name, x in sliders.items():
            r = ranges.get(name)
            if r is not None and not r[0] - tol <= float(x) <= r[1] + tol:
                return None
    gains = np.zeros(len(w), dtype=np.float32) if g is None else g.astype(np.float32)
    adaptive = float((sliders or {}).get("adaptive_brightness") or 0.0)
    return SliderLutProfile(
        path=path,
        model=_SLIDERS,
        vectors=v.astype(np.float32),
        gains=gains,
        weights=w.astype(np.float32),
        meter=meter,
        lut_size=lut_size,
        adaptive=adaptive,
    )
