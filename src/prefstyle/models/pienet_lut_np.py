"""PieNet profiles rendered as one LUT per photo without torch: the network through ONNX Runtime.

``prefstyle enhance`` renders an 8-bit photo of a PieNet profile by its LUT fast path
(:meth:`prefstyle.models.pienet.PieNetModel.luts`): the network runs on a ``render_size``
thumbnail and the 3D LUT that best maps the thumbnail to its rendering is applied to the full
photo. Importing torch for that makes the process about 900 MB resident (docs/BENCHMARKS.md,
issue 19). This module does the same without torch:

* the network is the ONNX file :mod:`prefstyle.models.pienet_onnx` exports once per checkpoint
  into the cache (``$PREFSTYLE_CACHE/pienet-onnx/<checkpoint id>-<versions>.onnx`` and a ``.json``
  record: :func:`network_cache_paths`), run by ONNX Runtime on one thread;
* the thumbnail is :func:`~prefstyle.imaging.lut_np.lut_input_view` resized by Pillow's
  antialiased bilinear filter on float32 planes (torch's ``antialias=True`` follows it: within
  2e-6 on the thumbnails of 12 MP photos);
* the LUT is :func:`~prefstyle.imaging.lut_fit_np.fit_lut_np`, the solver the torch path uses.

:func:`torch_free_network_profile` gives a :class:`NetworkLutProfile` only when everything is in
place and consistent: the profile is a well-formed PieNet profile with no ``--model`` override,
its checkpoint is the one the cache record names (same checkpoint id, same weights file, size
and modification time), prefstyle, torch and the network's code are those that exported it, and
the ONNX file is the one recorded (SHA-256). Anything else gives
None, and ``enhance`` takes the torch path, which says what is wrong with a bad profile and
exports the network for next time. Parity with the torch path: ``tests/test_pienet_torch_free.py``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prefstyle.errors import PrefstyleError
from prefstyle.imaging import lut_np
from prefstyle.imaging.lut_fit_np import fit_lut_np
from prefstyle.imaging.resize import long_side_size
from prefstyle.models.profile_file import PROFILE_FORMAT, PROFILE_VERSION, assets_dir, looks_like_path

__all__ = [
    "NETWORK_FORMAT",
    "NetworkLutProfile",
    "NetworkUnavailable",
    "checkpoint_weights",
    "embedding_cache_path",
    "file_sha256",
    "forget_export",
    "made_by",
    "network_cache_paths",
    "network_record",
    "onnx_session",
    "torch_free_network_profile",
    "weights_stamp",
]

#: the model whose profiles this module renders
_MODEL = "pienet"
#: ``format`` of the cache record beside each exported network
NETWORK_FORMAT = "prefstyle-pienet-onnx"
_RECORD_VERSION = 1


class NetworkUnavailable(PrefstyleError):
    """The cached ONNX network cannot be used (ONNX Runtime failed on it): render through torch."""


def forget_export(onnx_path: Path) -> None:
    """Drop the cache record of the export ``onnx_path`` belongs to (its network or its embedding), so
    that the next ``personalize`` or torch-path ``enhance`` exports the checkpoint again."""
    name = onnx_path.name.removesuffix(".embed.onnx").removesuffix(".onnx")
    with contextlib.suppress(OSError):
        onnx_path.with_name(f"{name}.json").unlink(missing_ok=True)


def network_cache_paths(checkpoint_id: str) -> tuple[Path, Path]:
    """``(network.onnx, record.json)`` of the checkpoint whose id is ``checkpoint_id``, in the cache,
    named also by :func:`made_by` (so that two prefstyle or torch versions sharing a cache keep an
    export each instead of replacing each other's)."""
    from prefstyle.fsutil import cache_root

    tag = hashlib.sha256(json.dumps(made_by(), sort_keys=True).encode()).hexdigest()[:8]
    stem = cache_root() / "pienet-onnx" / f"{checkpoint_id}-{tag}"
    return stem.with_suffix(".onnx"), stem.with_suffix(".json")


def embedding_cache_path(checkpoint_id: str) -> Path:
    """The ONNX file of the checkpoint's preference embedding, beside its network in the cache."""
    onnx_path, _ = network_cache_paths(checkpoint_id)
    return onnx_path.with_suffix(".embed.onnx")


def weights_stamp(weights: Path) -> dict[str, Any]:
    """What identifies a checkpoint's weights file as it is now: resolved path, size and mtime (ns)."""
    st = weights.stat()
    return {"path": str(weights.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@functools.cache
def made_by() -> dict[str, str]:
    """What an export is valid for: the versions of prefstyle and torch (the exporter) and a hash of
    the network's code (``models/pienet.py``, read as text), found without importing torch; read
    once per process (callers must not change the dict)."""
    from importlib.metadata import PackageNotFoundError, version

    from prefstyle import __version__

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "none"
    try:
        code = hashlib.sha256((Path(__file__).parent / "pienet.py").read_bytes()).hexdigest()[:16]
    except OSError:  # no source beside this module (a frozen install): versions alone
        code = "unknown"
    return {"prefstyle": __version__, "torch": torch_version, "network_code": code}


def network_record(checkpoint_id: str, weights: Path, dim: int, render_size: int, lut_size: int) -> dict[str, Any]:
    """The cache record of an exported network, less the ONNX file's ``sha256``."""
    return {
        "format": NETWORK_FORMAT,
        "version": _RECORD_VERSION,
        "model": _MODEL,
        "checkpoint_id": checkpoint_id,
        "made_by": made_by(),
        "weights": weights_stamp(weights),
        "dim": int(dim),
        "render_size": int(render_size),
        "lut_size": int(lut_size),
    }


def onnx_session(path: Path) -> Any:
    """An ONNX Runtime CPU session of the model at ``path`` on one thread, without the memory arena."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of the file at ``path``."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class NetworkLutProfile:
    """A PieNet profile rendered as one LUT per photo by its ONNX network.

    ``preference`` ``(dim,)`` float32: the profile's preference vector; ``network``: the ONNX
    file; ``render_size``: long side the network runs at; ``lut_size``: nodes per axis of each
    photo's LUT; ``model``: the model's name, ``path``: the profile's ``.json``, ``user``: whose
    taste it is.
    """

    path: Path
    model: str
    preference: np.ndarray
    network: Path
    render_size: int
    lut_size: int
    user: str | None = None
    _session: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """The network's rendering ``(3,h,w)`` (unclamped) of ``x`` ``(3,h,w)`` float32 in [0,1].

        Raises :class:`NetworkUnavailable` when ONNX Runtime cannot load or run the cached file
        (``enhance`` then renders the photo through torch)."""
        try:
            with self._lock:
                if self._session is None:
                    # one thread: the network is ~40 ms of a photo's second; the full-size LUT pass
                    # is what --jobs and the strips parallelise
                    self._session = onnx_session(self.network)
                session = self._session
            out = session.run(None, {"image": x[None], "preference": self.preference[None]})[0]
        except Exception as e:  # onnxruntime has its own error types: any failure falls back
            forget_export(self.network)  # so that the torch path exports it again
            raise NetworkUnavailable(f"ONNX Runtime could not run the cached network ({e})", path=self.network) from e
        out = np.asarray(out, dtype=np.float32)
        if out.shape != (1, *x.shape):
            raise NetworkUnavailable(
                f"the cached network gave shape {out.shape} for {(1, *x.shape)}", path=self.network
            )
        return out[0]

    def thumbnail(self, u8: np.ndarray) -> np.ndarray:
        """The ``(3,h,w)`` float32 [0,1] image the network sees for the photo ``u8`` ``(H,W,3)`` uint8:
        what ``PieNetModel.luts`` computes from :func:`~prefstyle.models.render.photo_lut`'s view."""
        from PIL import Image

        view = lut_np.lut_input_view(u8, metered=False)
        x = view.astype(np.float32) * np.float32(1.0 / 255.0)
        h, w = view.shape[:2]
        th, tw = long_side_size(h, w, self.render_size)
        if (th, tw) == (h, w):
            return np.ascontiguousarray(x.transpose(2, 0, 1))
        planes = [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(x[..., c]), "F").resize((tw, th), Image.Resampling.BILINEAR)
            )
            for c in range(3)
        ]
        return np.clip(np.stack(planes), 0.0, 1.0)

    def photo_lut(self, u8: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """The ``(3,S,S,S)`` float32 LUT that renders the photo ``u8`` ``(H,W,3)`` uint8, blended with the
        identity by ``strength``: the network's rendering of :meth:`thumbnail`, fitted as a LUT."""
        lo = self.thumbnail(u8)
        out = np.clip(self._run(lo), 0.0, 1.0)
        x, y = lo.reshape(3, -1).T, out.reshape(3, -1).T  # every pixel, as PieNetModel.luts
        return lut_np.blend_identity(fit_lut_np(x, y, size=self.lut_size), strength)


def torch_free_network_profile(profile: Path, doc: dict[str, Any]) -> NetworkLutProfile | None:
    """The PieNet profile at ``profile`` (its parsed ``.json`` is ``doc``) as a :class:`NetworkLutProfile`,
    or None when it is not one or anything about it needs the torch reader (see the module docstring)."""
    if doc.get("model") != _MODEL or doc.get("version") != PROFILE_VERSION or doc.get("format") != PROFILE_FORMAT:
        return None
    config, names = doc.get("model_config"), doc.get("tensors") or []
    if not isinstance(config, dict) or not isinstance(names, list) or "preference" not in names:
        return None
    checkpoint_id, user = config.get("checkpoint_id"), doc.get("user")
    if (
        not isinstance(checkpoint_id, str)
        or not checkpoint_id.isalnum()
        or (user is not None and not isinstance(user, str))
    ):
        return None
    weights = checkpoint_weights(config.get("source") or _MODEL)
    if weights is None:
        return None
    network, record_path = network_cache_paths(checkpoint_id)
    record = _read_json(record_path)
    if record is None or not network.is_file():
        return None
    try:
        stamp = weights_stamp(weights)
    except OSError:
        return None
    made = {"format": NETWORK_FORMAT, "version": _RECORD_VERSION, "model": _MODEL, "checkpoint_id": checkpoint_id}
    if any(record.get(k) != v for k, v in made.items()) or record.get("weights") != stamp:
        return None
    if record.get("made_by") != made_by():  # another prefstyle or torch: export again
        return None
    sizes = [record.get(k) for k in ("lut_size", "render_size", "dim")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 1 for v in sizes):
        return None
    lut_size, render_size, dim = (int(v) for v in sizes)  # type: ignore[arg-type]  # ints, checked above
    if lut_size > 65:
        return None
    preference = _preference(profile.with_suffix(".safetensors"), dim)
    if preference is None or record.get("sha256") != file_sha256(network):
        return None
    return NetworkLutProfile(
        path=profile,
        model=_MODEL,
        preference=preference,
        network=network,
        render_size=render_size,
        lut_size=lut_size,
        user=user,
    )


def checkpoint_weights(source: Any) -> Path | None:
    """The weights file ``prefstyle.models.load(source)`` would read for a PieNet checkpoint, or None."""
    from prefstyle.errors import PrefstyleError
    from prefstyle.models.card import read_card

    if not isinstance(source, str):
        return None
    if looks_like_path(source):
        where: Path = Path(source)
    else:
        where = assets_dir() / source
        if not (where / "model.json").is_file():
            return None
    try:
        card, weights = read_card(where)
    except (PrefstyleError, OSError, UnicodeDecodeError):
        return None
    task = card.get("task")
    return weights if isinstance(task, dict) and task.get("name") == _MODEL else None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _preference(path: Path, dim: int) -> np.ndarray | None:
    """The profile's ``(dim,)`` float32 preference vector, or None when it is missing or not finite."""
    from safetensors.numpy import load_file

    try:
        p = load_file(str(path)).get("preference")
    except Exception:  # noqa: BLE001 - any failure: the torch reader gives the error
        return None
    if p is None or p.shape != (dim,) or p.dtype.kind != "f" or not np.isfinite(p).all():
        return None
    return p.astype(np.float32)
