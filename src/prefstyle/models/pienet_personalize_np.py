"""``prefstyle personalize`` of PieNet without torch: its scheme 2 through ONNX Runtime.

PieNet learns a taste by averaging preference embeddings: of the photos a person likes
(:meth:`prefstyle.models.pienet.PieNetModel.personalize_liked`: each photo read, reduced to a long
side of 512 px by area averaging, resized to the embedding's ``E``² by antialiased bilinear
filtering, embedded) or of the renditions they preferred in pairwise answers
(:meth:`~prefstyle.models.pienet.PieNetModel.personalize`, scheme 2: each preferred image resized
to ``E``² and embedded); the profile's preference vector is the normalised mean. Once the
checkpoint's networks are in the cache (:mod:`prefstyle.models.pienet_onnx`, written by the first
``personalize`` or ``enhance`` of the checkpoint), :func:`personalize_liked` and
:func:`personalize_pairs` do the same with numpy, Pillow and ONNX Runtime, and write the same
profile (:class:`~prefstyle.models.look_personalize_np.NpProfile`).

It gives None, and the command loads the model, whenever anything needs the torch reader: no
cache record for the checkpoint's weights as they are now (or for these prefstyle and torch
versions), a photo that is not plain 8-bit RGB (16-bit, alpha, grey, another colour space, raw) or
cannot be read (the torch path says which). Parity: ``tests/test_pienet_torch_free.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prefstyle.imaging import lut_np
from prefstyle.imaging.resize import long_side_size
from prefstyle.models.look_personalize_np import NpProfile, RefImages
from prefstyle.models.pienet_lut_np import (
    NETWORK_FORMAT,
    checkpoint_weights,
    embedding_cache_path,
    file_sha256,
    forget_export,
    made_by,
    network_cache_paths,
    onnx_session,
    weights_stamp,
)

__all__ = ["LIKED_SIDE", "cached", "personalize_liked", "personalize_pairs"]

#: long side the liked photos are reduced to before embedding (as the command's torch path)
LIKED_SIDE = 512


def _record_for(weights: Path) -> dict[str, Any] | None:
    """The cache record of the checkpoint whose weights file is ``weights`` as it is now, or None."""
    _, any_record = network_cache_paths("0")
    try:
        stamp = weights_stamp(weights)
        candidates = sorted(any_record.parent.glob(f"*{any_record.name[1:]}"))  # this version's records
    except OSError:
        return None
    for path in candidates:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("format") == NETWORK_FORMAT and rec.get("weights") == stamp:
            return rec if rec.get("made_by") == made_by() else None
    return None


def embedding_input(u8: np.ndarray, size: int, side: int | None = LIKED_SIDE) -> np.ndarray:
    """The ``(3,size,size)`` float32 [0,1] image PieNet's embedding sees for the photo ``u8`` ``(H,W,3)``
    uint8: reduced by area averaging to a long side of ``side`` (None: not), then to ``size``² by
    Pillow's antialiased bilinear filter on float planes (torch's ``antialias=True`` follows it)."""
    from PIL import Image

    h, w = u8.shape[:2]
    oh, ow = (h, w) if side is None else long_side_size(h, w, side)
    if (oh, ow) != (h, w):
        x = lut_np.area_downsample_u8(u8, oh, ow)
    else:
        x = np.ascontiguousarray(u8.transpose(2, 0, 1)).astype(np.float32) * np.float32(1.0 / 255.0)
    if x.shape[1:] == (size, size):
        return x
    planes = [
        np.asarray(Image.fromarray(np.ascontiguousarray(p), "F").resize((size, size), Image.Resampling.BILINEAR))
        for p in x
    ]
    return np.clip(np.stack(planes), 0.0, 1.0)


def cached(spec: str) -> bool:
    """Whether the cache holds the networks of the PieNet checkpoint ``spec`` as it is now."""
    weights = checkpoint_weights(spec)
    return weights is not None and _record_for(weights) is not None


def _embedding(spec: str) -> tuple[Any, int, int, dict[str, Any]] | None:
    """``(session, E, dim, model_config)`` of the checkpoint's cached embedding, or None."""
    weights = checkpoint_weights(spec)
    record = _record_for(weights) if weights is not None else None
    if record is None or not isinstance(record.get("model_config"), dict):
        return None
    size, dim = record.get("embed_size"), record.get("dim")
    embed = embedding_cache_path(str(record.get("checkpoint_id")))
    if not isinstance(size, int) or not isinstance(dim, int) or not embed.is_file():
        return None
    if record.get("embed_sha256") != file_sha256(embed):
        return None
    try:
        session = onnx_session(embed)
    except Exception:  # noqa: BLE001 - a file ONNX Runtime cannot load: the torch path (which exports again)
        forget_export(embed)
        return None
    return session, size, dim, dict(record["model_config"])


def _preference(session: Any, batch: list[np.ndarray], dim: int) -> np.ndarray | None:
    """The normalised mean ``(dim,)`` float32 of the embeddings of ``batch`` (``(3,E,E)`` images), or None
    when ONNX Runtime fails on the cached file (the torch path then does it)."""
    try:
        emb = np.concatenate(
            [session.run(None, {"image": np.stack(batch[i : i + 16])})[0] for i in range(0, len(batch), 16)]
        ).astype(np.float64)
    except Exception:  # noqa: BLE001 - onnxruntime's own error types
        return None
    if emb.shape != (len(batch), dim) or not np.isfinite(emb).all():
        return None
    mean = emb.mean(0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)  # F.normalize's eps


def _profile(p: np.ndarray | None, data: dict[str, Any], user: str | None, config: dict[str, Any]) -> NpProfile | None:
    """The PieNet profile with preference vector ``p`` (None when there is none: the torch path)."""
    if p is None:
        return None
    return NpProfile(model="pienet", data=data, tensors={"preference": p}, user=user, model_config=config)


def personalize_liked(spec: str, photos: list[Path], user: str | None) -> NpProfile | None:
    """PieNet's profile of the person who likes ``photos`` (the files the command lists), made with the
    checkpoint ``spec`` through its cached ONNX embedding; None when the torch path must do it
    (module docstring). ``data``: ``scheme`` 2, ``n_liked``."""
    from prefstyle.imaging.decode import read_image

    found = _embedding(spec)
    if found is None or not photos:
        return None
    session, size, dim, config = found
    batch = []
    for f in photos:
        try:
            data = read_image(f)
        except Exception:  # noqa: BLE001 - the torch path names the unreadable file
            return None
        if data.rgb8 is None:
            return None
        batch.append(embedding_input(data.rgb8, size))
    return _profile(_preference(session, batch, dim), {"scheme": 2, "n_liked": len(batch)}, user, config)


def personalize_pairs(spec: str, refs: Sequence[RefImages], user: str | None) -> NpProfile | None:
    """``PieNetModel.personalize`` (scheme 2) of the answers ``refs`` (read by
    :func:`prefstyle.models.look_personalize_np.load_references`) through the cached ONNX embedding;
    None when the torch path must do it (no answers, a checkpoint configured for scheme 1, no cache).
    ``data``: ``scheme`` 2, ``n_refs``."""
    found = _embedding(spec) if refs else None
    if found is None:
        return None
    session, size, dim, config = found
    if config.get("scheme") != 2:
        return None
    p = _preference(session, [embedding_input(r.preferred, size, side=None) for r in refs], dim)
    return _profile(p, {"scheme": 2, "n_refs": len(refs)}, user, config)
