"""LookTaste's personalization in numpy alone (no torch): ``prefstyle personalize`` for ``looks``.

:meth:`prefstyle.models.look_taste.LookTasteModel.personalize` from a pairs dataset is a few
hundred milliseconds of arithmetic on thumbnails; importing torch (and kornia) to do it took
longer than the work (docs/BENCHMARKS.md, issue 19). This module mirrors it step by step, in
float32 as the torch code computes:

* :func:`read_checkpoint` reads a ``looks`` settings checkpoint (the packaged
  ``assets/models/looks/looks.json`` + ``.safetensors``, or a ``.json`` path) with
  ``safetensors.numpy`` into a :class:`LookSpace`; anything it does not read cleanly gives None
  (the caller then takes the torch path, which says what is wrong);
* :func:`load_references` reads the judgments' images (:func:`prefstyle.imaging.decode.read_image`)
  as plain 8-bit RGB; any other image (16-bit, alpha, gray, colour-converted) or a pair of
  unequal sizes gives None;
* :func:`personalize` - the posterior over the taste particles (``evidence``: the mean CIEDE2000
  between every particle's ideal and the two renditions on a scene's 25 sample colours; the
  choice likelihood; the prior), the Bayes action (``decide``), the profile's LUT and its
  ``data`` fields; :class:`NpProfile` writes the profile in :class:`prefstyle.models.base.Profile`'s
  format (same keys, dtypes and JSON fields); :func:`describe` gives ``LookTasteModel.describe``'s words.

Coupling, checked by ``tests/test_personalize_torch_free.py``: the profile agrees with the torch
model's (same gain, LUT to 1e-4, nearest looks; expected ΔE00 and effective particles to 1e-3
relative); the constants below equal ``look_taste``'s / ``look_space``'s. This module imports
no torch, even indirectly.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefstyle.imaging import lut_np
from prefstyle.imaging.color_np import area_downsample, delta_e_2000_values, rgb_to_lab
from prefstyle.models.profile_file import PROFILE_FORMAT, PROFILE_VERSION, assets_dir, looks_like_path, write_profile

if TYPE_CHECKING:
    from prefstyle.data.pairs import Judgment, PairsDataset

__all__ = [
    "MODEL_NAME",
    "LookSpace",
    "NpProfile",
    "RefImages",
    "checkpoint_path",
    "describe",
    "load_references",
    "personalize",
    "read_checkpoint",
    "settings_config",
]

_F = np.float32
#: the model whose personalization this module mirrors
MODEL_NAME = "looks"
_FORMAT, _VERSION = PROFILE_FORMAT, PROFILE_VERSION
_ASSETS = assets_dir()
# look_space.SAMPLE_SIDE / SAMPLE_STEP and look_taste's decision and user-look constants
SAMPLE_SIDE, SAMPLE_STEP = 24, 5
FIT_SIDE, FIT_STEP = 32, 2
USER_STRENGTHS = (0.5, 1.0)
DECISION_PARTICLES, DECISION_CANDIDATES, DECISION_SCENES = 128, 8, 8
#: particles per block of the CIEDE2000 arithmetic
_CHUNK = 1024


# -- the checkpoint -------------------------------------------------------------------------


@dataclass
class LookSpace:
    """A ``looks`` checkpoint read with numpy: ``basis`` ``(D,3,S,S,S)``, ``coeffs`` ``(K,D)``, ``gains``
    ``(K,)``, ``pop_log_prior`` ``(K,)``, ``look_coeffs`` ``(L,D)`` (all float32), the look names and
    the settings (as :class:`~prefstyle.models.look_taste.LookTasteModel` holds them)."""

    basis: np.ndarray
    coeffs: np.ndarray
    gains: np.ndarray
    pop_log_prior: np.ndarray
    look_coeffs: np.ndarray
    look_names: list[str]
    temperature: float
    lapse: float
    floor: float
    user_mass: float
    meter: str
    lut_size: int
    fit_info: dict[str, Any]
    nodes: np.ndarray = field(init=False, repr=False)  # (S³, 3D), look_space.node_major

    def __post_init__(self) -> None:
        d = self.basis.shape[0]
        self.nodes = np.ascontiguousarray(self.basis.reshape(d * 3, -1).T)

    def config(self) -> dict[str, Any]:
        """``LookTasteModel.config()``."""
        return settings_config(MODEL_NAME, self)

    def log_prior(self) -> np.ndarray:
        """``LookTasteModel.log_prior()``: ``(K,)`` float32."""
        k = len(self.coeffs)
        pop = np.exp(self.pop_log_prior)
        pop = pop / pop.sum(dtype=np.float32)
        mix = _F(1 - self.floor) * pop + _F(self.floor / k)
        return np.log(np.maximum(mix, _F(1e-30))) + _F(math.log(1 - self.user_mass))


def settings_config(name: str, m: Any) -> dict[str, Any]:
    """The ``model_config`` a looks profile records, from a model or :class:`LookSpace` ``m`` (its
    settings, ``coeffs`` ``(K,D)`` and ``basis`` ``(D,3,S,S,S)``, torch or numpy)."""
    return {
        "name": name,
        "temperature": m.temperature,
        "lapse": m.lapse,
        "floor": m.floor,
        "user_mass": m.user_mass,
        "meter": m.meter,
        "lut_size": m.lut_size,
        "particles": len(m.coeffs),
        "basis_dim": int(m.basis.shape[0]),
        "fit": m.fit_info,
    }


def checkpoint_path(spec: str) -> Path | None:
    """The settings checkpoint ``prefstyle.models.load(spec)`` reads when that is a ``looks`` one this
    module can take (the packaged ``looks.json`` for the name, or a ``.json`` path), else None."""
    if looks_like_path(spec):
        path = Path(spec)
        return path if path.suffix == ".json" and path.is_file() else None
    if spec != MODEL_NAME or (_ASSETS / MODEL_NAME / "model.json").is_file():
        return None
    path = _ASSETS / MODEL_NAME / f"{MODEL_NAME}.json"
    return path if path.is_file() else None


def _json(path: Path) -> Any:
    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value

    def no_constant(name: str) -> float:
        raise ValueError(name)

    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_float=finite, parse_constant=no_constant)
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_checkpoint(path: Path) -> LookSpace | None:
    """The ``looks`` checkpoint at ``path`` (``.json``; tensors beside it), or None when it is not one
    or anything about it is not as ``LookTasteModel`` writes it (then the torch loader judges it)."""
    from safetensors.numpy import load_file

    doc = _json(path)
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or doc.get("version") != _VERSION:
        return None
    d, names = doc.get("data", {}), doc.get("tensors") or []
    if doc.get("model") != MODEL_NAME or not isinstance(d, dict) or not isinstance(doc.get("model_config", {}), dict):
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    if doc.get("user") is not None and not isinstance(doc.get("user"), str):
        return None
    need = ("basis", "coeffs", "gains", "log_prior", "look_coeffs")
    tpath = path.with_suffix(".safetensors")
    if not set(need) <= set(names) or not tpath.is_file():
        return None
    try:
        t = load_file(str(tpath))
    except Exception:  # noqa: BLE001 - any failure (a dtype numpy lacks, a damaged file): the torch reader judges
        return None
    if set(names) - set(t) or any(v.dtype.kind == "f" and not np.isfinite(v).all() for v in t.values()):
        return None
    if any(t[n].dtype.kind != "f" for n in need):
        return None
    settings = [_number(d.get(k)) for k in ("temperature", "lapse", "floor", "user_mass")]
    meter, lut_size, fit = d.get("meter", "mean"), d.get("lut_size", 33), d.get("fit", {})
    look_names = d.get("look_names", [])
    if any(v is None for v in settings) or meter not in ("mean", "log_mean") or not isinstance(fit, dict):
        return None
    if not isinstance(lut_size, int) or isinstance(lut_size, bool) or not isinstance(look_names, list):
        return None
    temperature, lapse, floor, user_mass = (float(v) for v in settings if v is not None)
    if not (temperature > 0 and 0 <= lapse < 1 and 0 <= floor <= 1 and 0 <= user_mass < 1):
        return None
    basis, coeffs, gains = (t[n].astype(np.float32) for n in ("basis", "coeffs", "gains"))
    log_prior, look_coeffs = t["log_prior"].astype(np.float32), t["look_coeffs"].astype(np.float32)
    if basis.ndim != 5 or basis.shape[1] != 3 or not (basis.shape[2] == basis.shape[3] == basis.shape[4] >= 2):
        return None
    dim, k = basis.shape[0], len(coeffs)
    if coeffs.ndim != 2 or coeffs.shape[1] != dim or gains.shape != (k,) or log_prior.shape != (k,):
        return None
    if look_coeffs.ndim != 2 or look_coeffs.shape[1] != dim or len(look_names) != len(look_coeffs):
        return None
    if not all(isinstance(n, str) for n in look_names):
        return None
    return LookSpace(
        basis=np.ascontiguousarray(basis),
        coeffs=np.ascontiguousarray(coeffs),
        gains=gains,
        pop_log_prior=log_prior,
        look_coeffs=np.ascontiguousarray(look_coeffs),
        look_names=list(look_names),
        temperature=temperature,
        lapse=lapse,
        floor=floor,
        user_mass=user_mass,
        meter=str(meter),
        lut_size=lut_size,
        fit_info=dict(fit),
    )


# -- the references -------------------------------------------------------------------------


@dataclass
class RefImages:
    """One judgment's images as ``(H,W,3)`` uint8 (the preferred and the other rendition, the scene's
    source or None), as :class:`prefstyle.models.base.Reference` holds them as floats (``u8 / 255``)."""

    scene: str
    preferred: np.ndarray
    other: np.ndarray
    source: np.ndarray | None
    source_key: str | None = None


def load_references(dataset: PairsDataset, judgments: Sequence[Judgment]) -> list[RefImages] | None:
    """``prefstyle.eval.protocol.load_references`` without torch: the judgments' images, in the same
    order (an unreadable file is the same :class:`PrefstyleError`), or None when one is not plain
    8-bit RGB or a rendition or source differs in size from the preferred one (the torch path
    converts and resizes those)."""
    from prefstyle.imaging.decode import read_image

    cache: dict[str, np.ndarray | None] = {}

    def get(rel: str) -> np.ndarray | None:
        if rel not in cache:
            cache[rel] = read_image(dataset.image_path(rel)).rgb8
        return cache[rel]

    out = []
    for j in judgments:
        pref, other = get(j.preferred_image), get(j.other_image)
        sc = dataset.scenes.get(j.scene)
        rel = sc.source if sc is not None and sc.source else None
        src = get(rel) if rel is not None else None
        if pref is None or other is None or (rel is not None and src is None):
            return None
        if other.shape != pref.shape or (src is not None and src.shape != pref.shape):
            return None
        out.append(RefImages(scene=j.scene, preferred=pref, other=other, source=src, source_key=rel))
    return out


# -- the model --------------------------------------------------------------------------------


def _to_float(u8: np.ndarray) -> np.ndarray:
    """``(H,W,3)`` uint8 -> ``(3,H,W)`` float32 ``u8 / 255`` exactly as the decoder makes it."""
    return np.multiply(u8.transpose(2, 0, 1), _F(1.0 / 255.0), dtype=np.float32)


def sample_colours(img: np.ndarray, side: int = SAMPLE_SIDE, step: int = SAMPLE_STEP) -> np.ndarray:
    """``look_space.sample_colours``: ``(3,h,w)`` every ``step``-th pixel of the ``side``-px area thumbnail
    of ``img`` ``(3,H,W)`` float32."""
    return area_downsample(np.clip(img, _F(0.0), _F(1.0)), side, side, step=step, offset=step // 2)


def sample_tables(nodes: np.ndarray, size: int, x: np.ndarray) -> np.ndarray:
    """``look_space.sample_tables``: tables laid out node by node ``(S³, 3D)`` looked up (trilinear) at
    colours ``x`` ``(3,P)``: ``(D,3,P)`` float32."""
    u = np.clip(x, _F(0.0), _F(1.0)).astype(np.float32) * _F(size - 1)
    i0 = np.minimum(np.floor(u), _F(size - 2))
    f = u - i0
    i0i = i0.astype(np.int64)
    idx, w = [], []
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                idx.append((i0i[2] + db) * size * size + (i0i[1] + dg) * size + (i0i[0] + dr))
                w.append((f[0] if dr else 1 - f[0]) * (f[1] if dg else 1 - f[1]) * (f[2] if db else 1 - f[2]))
    p, d3 = x.shape[1], nodes.shape[1]
    rows = nodes[np.stack(idx, 1).reshape(-1)].reshape(p, 8, d3)
    out = np.matmul(np.stack(w, 1)[:, None, :], rows)[:, 0]  # (P,3D)
    return np.ascontiguousarray(out.reshape(p, d3 // 3, 3).transpose(1, 2, 0))


class _Scene:
    """``look_taste._Scene``: a scene's sample colours and the basis looked up at them, per exposure."""

    def __init__(self, source: np.ndarray, space: LookSpace):
        x = _to_float(source)
        self.colours = sample_colours(x)  # (3,h,w)
        self.ev = lut_np.metered_ev(source, space.meter)
        self.fit_colours = sample_colours(x, FIT_SIDE, FIT_STEP)
        self._space = space
        self._at: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._shared_lab: np.ndarray | None = None

    def at_gain(self, g: float) -> tuple[np.ndarray, np.ndarray]:
        """``(x (3,P), Bs (D,3P))``: the sample colours exposed for gain ``g`` and the basis at them."""
        g = round(float(g), 4)
        hit = self._at.get(g)
        if hit is None:
            sp = self._space
            x = lut_np.exposed(self.colours.reshape(3, -1), g * self.ev)
            bs = sample_tables(sp.nodes, sp.basis.shape[-1], x).reshape(sp.basis.shape[0], -1)
            hit = (x, bs)
            self._at[g] = hit
        return hit

    def ideals(self, coeffs: np.ndarray, gains: np.ndarray) -> np.ndarray:
        """Ideal sample colours ``(K,3,P)`` sRGB [0,1] of tastes ``(K,D)`` with gains ``(K,)``."""
        p = self.colours.shape[1] * self.colours.shape[2]
        uniq, inverse = np.unique(gains, return_inverse=True)
        out = np.empty((len(coeffs), 3 * p), dtype=np.float32)
        for i, g in enumerate(uniq.tolist()):
            sel = inverse == i
            x, bs = self.at_gain(g)
            out[sel] = coeffs[sel] @ bs + x.reshape(1, -1)
        return np.clip(out, _F(0.0), _F(1.0)).reshape(-1, 3, p)

    def shared_lab(self) -> np.ndarray:
        """Every shared particle's ideal as CIELAB planes ``(3,K,P)`` (kept)."""
        if self._shared_lab is None:
            sp = self._space
            self._shared_lab = _lab_planes(self.ideals(sp.coeffs, sp.gains))
        return self._shared_lab


def _lab_planes(rgb: np.ndarray) -> np.ndarray:
    """``(K,3,P)`` sRGB -> CIELAB planes ``(3,K,P)``."""
    return rgb_to_lab(np.ascontiguousarray(rgb.transpose(1, 0, 2)))


def _distance(planes: np.ndarray, labs: np.ndarray) -> np.ndarray:
    """``mean_delta_e_2000_cross``: ``(M,K)`` mean CIEDE2000 of ``(3,K,P)`` planes against ``(M,3,P)`` samples."""
    if not len(labs):
        return np.zeros((0, planes.shape[1]), dtype=np.float32)
    k, n = planes.shape[1], _CHUNK
    # blocks of particles: the formula's ~70 temporaries then stay in the cache (2x faster than whole)
    return np.stack(
        [
            np.concatenate(
                [
                    delta_e_2000_values(planes[:, i : i + n], o[:, None]).mean(-1, dtype=np.float32)
                    for i in range(0, k, n)
                ]
            )
            for o in labs
        ]
    )


def _fit_rendition(space: LookSpace, sc: _Scene, rendition: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """``LookTasteModel.fit_rendition``: coefficients ``(D,)`` of the look that best turns the source into
    ``rendition`` ``(H,W,3)`` uint8 (least squares on 256 sample colours, a small ridge)."""
    x = sc.fit_colours.reshape(3, -1)
    y = sample_colours(_to_float(rendition), FIT_SIDE, FIT_STEP).reshape(3, -1)
    a = sample_tables(space.nodes, space.basis.shape[-1], x).reshape(space.basis.shape[0], -1).astype(np.float64)
    r = (y - x).reshape(-1).astype(np.float64)
    lhs = a @ a.T + ridge * np.eye(a.shape[0]) * a.shape[1]
    return np.linalg.solve(lhs, a @ r).astype(np.float32)


@dataclass
class NpProfile:
    """A profile as :class:`prefstyle.models.base.Profile` holds it, with numpy tensors."""

    model: str
    data: dict[str, Any]
    tensors: dict[str, np.ndarray]
    user: str | None = None
    model_config: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """``Profile.save``: ``path`` (``.json``) and ``<stem>.safetensors`` beside it, the same
        format (:func:`~prefstyle.models.profile_file.write_profile`); NaN or infinite values are refused."""
        from safetensors.numpy import save_file

        tensors = {k: np.ascontiguousarray(v) for k, v in self.tensors.items()}
        return write_profile(
            path,
            self.model,
            self.model_config,
            self.user,
            self.data,
            [(k, v.dtype.kind != "f" or bool(np.isfinite(v).all())) for k, v in tensors.items()],
            lambda tmp: save_file(tensors, str(tmp)),
        )


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """numpy's BLAS on one thread: OpenBLAS threads spin-wait between the many small products here,
    which made them (and what followed them) several times slower on a busy two-core machine."""
    try:
        from threadpoolctl import threadpool_limits  # scikit-learn's dependency
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def personalize(space: LookSpace, refs: Sequence[RefImages], user: str | None = None) -> NpProfile:
    """``LookTasteModel.personalize`` on references read by :func:`load_references`: the profile
    (``lut`` ``(3,S,S,S)`` float32; ``data``: ``n_refs, n_used, gain, meter, expected_de00,
    effective_particles, nearest_looks``; ``model_config``: the model's config)."""
    with _one_blas_thread():
        return _personalize(space, refs, user)


def _personalize(space: LookSpace, refs: Sequence[RefImages], user: str | None) -> NpProfile:
    scenes: dict[str, _Scene] = {}

    def scene(r: RefImages) -> _Scene:
        assert r.source is not None
        key = r.source_key or str(id(r.source))
        if key not in scenes:
            scenes[key] = _Scene(r.source, space)
        return scenes[key]

    used = [r for r in refs if r.source is not None]
    # evidence: d(other) − d(preferred) per particle and answer
    d = space.basis.shape[0]
    uc, ug = np.zeros((0, d), dtype=np.float32), np.zeros(0, dtype=np.float32)
    if space.user_mass > 0:
        cs = [_fit_rendition(space, scene(r), img) for r in used for img in (r.preferred, r.other)]
        if cs:
            c = np.stack(cs)
            uc = np.concatenate([_F(s) * c for s in USER_STRENGTHS for _ in (0.0, 1.0)])
            ug = np.concatenate([np.full(len(c), g, dtype=np.float32) for _ in USER_STRENGTHS for g in (0.0, 1.0)])
    k, ku = len(space.coeffs), len(uc)
    lp = space.log_prior()
    if ku:
        lp = np.concatenate([lp, np.full(ku, math.log(space.user_mass / ku), dtype=np.float32)])
    else:
        lp = lp - _F(math.log(1 - space.user_mass))
    cols = []
    for r in used:
        sc = scene(r)
        seen = np.stack([sample_colours(_to_float(r.preferred)), sample_colours(_to_float(r.other))])
        seen = _lab_planes(seen.reshape(2, 3, -1)).transpose(1, 0, 2)  # (2,3,P)
        dist = _distance(sc.shared_lab(), seen)  # (2,K)
        if ku:
            dist = np.concatenate([dist, _distance(_lab_planes(sc.ideals(uc, ug)), seen)], 1)
        cols.append((dist[1] - dist[0]).astype(np.float64))
    gaps = np.stack(cols, 1) if cols else np.zeros((k + ku, 0))
    # posterior
    e, t = space.lapse, space.temperature
    with np.errstate(over="ignore"):  # exp(-x) -> inf is sigmoid(x) = 0
        loglik = np.log(e / 2 + (1 - e) / (1 + np.exp(-(gaps / t)))).sum(1)
    z = loglik + lp.astype(np.float64)
    z = np.exp(z - z.max())
    w = (z / z.sum()).astype(np.float32)
    coeffs, gains = np.concatenate([space.coeffs, uc]), np.concatenate([space.gains, ug])
    decide_scenes = [scene(r) for r in used][:DECISION_SCENES]
    c_best, g_best, expected = _decide(w, coeffs, gains, decide_scenes)
    s = space.basis.shape[-1]
    lut = lut_np.identity_grid(s).reshape(3, s, s, s) + (c_best[None] @ space.basis.reshape(d, -1)).reshape(3, s, s, s)
    return NpProfile(
        model=MODEL_NAME,
        user=user,
        model_config=space.config(),
        tensors={"lut": np.ascontiguousarray(lut, dtype=np.float32)},
        data={
            "n_refs": len(refs),
            "n_used": len(used),
            "gain": round(g_best, 4),
            "meter": space.meter,
            "expected_de00": None if math.isnan(expected) else round(expected, 3),
            "effective_particles": round(float(1.0 / (w.astype(np.float64) ** 2).sum()), 2),
            "nearest_looks": _nearest_looks(space, c_best),
        },
    )


def _decide(
    w: np.ndarray, coeffs: np.ndarray, gains: np.ndarray, scenes: Sequence[_Scene]
) -> tuple[np.ndarray, float, float]:
    """``LookTasteModel.decide``: the Bayes action ``(coefficients (D,), gain, expected ΔE00)``."""
    top = np.argsort(-w, kind="stable")[:DECISION_PARTICLES]
    wt = w[top] / w[top].sum(dtype=np.float32)
    ct, gt = coeffs[top], gains[top]
    mean_c, mean_g = (wt[:, None] * ct).sum(0, dtype=np.float32), float((wt * gt).sum(dtype=np.float32))
    cands_c = [mean_c] + [mean_c + _F(a) * (ct[0] - mean_c) for a in (0.25, 0.5, 0.75)] + list(ct[:DECISION_CANDIDATES])
    cands_g = (
        [mean_g] + [mean_g + a * (float(gt[0]) - mean_g) for a in (0.25, 0.5, 0.75)] + gt[:DECISION_CANDIDATES].tolist()
    )
    cc, cg = np.stack(cands_c).astype(np.float32), np.array(cands_g, dtype=np.float32)
    if not scenes:
        return cc[0], float(cg[0]), float("nan")
    loss = np.zeros(len(cc), dtype=np.float32)
    for sc in scenes:
        ideal = _lab_planes(sc.ideals(ct, gt))  # (3,T,P)
        cand = _lab_planes(sc.ideals(cc, cg)).transpose(1, 0, 2)  # (C,3,P)
        loss += (_distance(ideal, cand) * wt[None]).sum(1, dtype=np.float32)
    best = int(np.argmin(loss))
    return cc[best], float(cg[best]), float(loss[best] / _F(len(scenes)))


def _nearest_looks(space: LookSpace, c: np.ndarray, n: int = 3) -> list[list[Any]]:
    """``LookTasteModel._nearest_looks``: the library looks closest to ``c`` and how much of each."""
    if not len(space.look_coeffs):
        return []
    lc = space.look_coeffs
    strength = (lc @ c) / np.maximum((lc * lc).sum(1, dtype=np.float32), _F(1e-9))
    resid = np.linalg.norm(c[None] - np.clip(strength, _F(0.0), _F(1.5))[:, None] * lc, axis=1)
    order = np.argsort(resid, kind="stable")[:n]
    return [[space.look_names[i], round(float(strength[i]), 2)] for i in order.tolist()]


def describe(data: dict[str, Any]) -> str:
    """``LookTasteModel.describe``: the taste in words from a profile's ``data``."""
    words = []
    near = data.get("nearest_looks") or []
    if near:
        words.append("closest looks: " + ", ".join(f"{n} ({100 * min(1.0, max(0.0, s)):.0f} %)" for n, s in near))
    g = float(data.get("gain", 0.0))
    words.append(f"brightness follows the photo {100 * g:.0f} %")
    return "your look: " + "; ".join(words)
