"""PieNet's network exported to ONNX, so that ``enhance`` can render its profiles without torch.

:func:`export_network` writes the network of a checkpoint-loaded
:class:`~prefstyle.models.pienet.PieNetModel` (the image ``(1,3,h,w)`` and the preference vector
``(1,dim)`` in, the unclamped rendering out; ``h`` and ``w`` free) with torch's TorchScript
exporter into the cache, with a record of what it was made from
(:func:`prefstyle.models.pienet_lut_np.network_cache_paths`, :func:`~prefstyle.models.pienet_lut_np.network_record`
plus the file's SHA-256), and beside it the preference embedding (images ``(n,3,E,E)`` in,
L2-normalised ``(n,dim)`` out) that ``personalize --liked`` runs without torch
(:mod:`prefstyle.models.pienet_personalize_np`). It runs where torch is loaded anyway (``personalize`` and the torch path
of ``enhance``), once per checkpoint: about two seconds and 26 MB (network 14.7 MB, embedding
11.7 MB) for the packaged checkpoint. The
ONNX graph matches the network to 3e-7 at every thumbnail shape tried (``tests/test_pienet_torch_free.py``).
A failed export is logged and costs nothing else: ``enhance`` keeps using torch.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from prefstyle.fsutil import atomic_path, atomic_write_text
from prefstyle.models.pienet_lut_np import embedding_cache_path, file_sha256, network_cache_paths, network_record

if TYPE_CHECKING:
    from prefstyle.models.pienet import PieNetModel

log = logging.getLogger(__name__)

__all__ = ["ONNX_OPSET", "export_network"]

#: ONNX operator set of the exported graph (onnxruntime 1.31 runs 7..23)
ONNX_OPSET = 17
#: the record's fields that are the files' hashes
_SHAS = ("sha256", "embed_sha256")


def _read_record(path: Path) -> Any:
    """The cache record at ``path``, or None when there is none or it is damaged (then the
    network is exported again and the record rewritten, instead of failing on every call)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def export_network(model: PieNetModel, lut_size: int) -> Path | None:
    """The cached ONNX file of ``model``'s network, exported now (with its preference embedding,
    :func:`prefstyle.models.pienet_lut_np.embedding_cache_path`) if the cache has none for its
    weights as they are; None when the model was not loaded from a checkpoint, ``onnx`` or
    ``onnxruntime`` is not installed, or the export fails (logged)."""
    if model.weights_path is None or any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime")):
        return None
    onnx_path, record_path = network_cache_paths(model.checkpoint_id)
    embed_path = embedding_cache_path(model.checkpoint_id)
    try:
        record = {
            **network_record(model.checkpoint_id, model.weights_path, model.cfg.dim, model.cfg.render_size, lut_size),
            "embed_size": int(model.cfg.embed_size),
            "model_config": model.config(),
        }
        old = _read_record(record_path)
        if isinstance(old, dict) and {k: v for k, v in old.items() if k not in _SHAS} == record:
            files = {"sha256": onnx_path, "embed_sha256": embed_path}
            if all(f.is_file() and old.get(k) == file_sha256(f) for k, f in files.items()):
                return onnx_path
        side = min(model.cfg.render_size, 256)
        x, p = torch.rand(1, 3, side * 3 // 4, side), torch.zeros(1, model.cfg.dim)
        e = model.cfg.embed_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent branches
            with atomic_path(onnx_path) as tmp:
                torch.onnx.export(
                    model.system.net,
                    (x, p),
                    str(tmp),
                    dynamo=False,
                    opset_version=ONNX_OPSET,
                    input_names=["image", "preference"],
                    output_names=["rendering"],
                    dynamic_axes={"image": {2: "h", 3: "w"}, "rendering": {2: "h", 3: "w"}},
                )
            with atomic_path(embed_path) as tmp:
                torch.onnx.export(
                    model.system.embedding,
                    (torch.rand(2, 3, e, e),),
                    str(tmp),
                    dynamo=False,
                    opset_version=ONNX_OPSET,
                    input_names=["image"],
                    output_names=["embedding"],
                    dynamic_axes={"image": {0: "n"}, "embedding": {0: "n"}},
                )
        shas = {"sha256": file_sha256(onnx_path), "embed_sha256": file_sha256(embed_path)}
        atomic_write_text(record_path, json.dumps({**record, **shas}, indent=1) + "\n")
    except Exception as e:  # noqa: BLE001 - a cache: any failure leaves enhance on its torch path
        log.warning("could not export the PieNet network for torch-free rendering: %s", e)
        return None
    return onnx_path
