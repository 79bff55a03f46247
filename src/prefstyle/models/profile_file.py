"""What a profile file is, without torch: its format tag, where packaged models live, how a model
spec names a path, and how a profile's two files are written.

A profile is ``NAME.json`` (format, version, model, model config, user, prefstyle version, JSON
data, the names of its tensors) and, when it has tensors, ``NAME.safetensors`` beside it.
:class:`prefstyle.models.base.Profile` (torch tensors) and the torch-free paths
(:mod:`prefstyle.models.lut_forms`, :mod:`prefstyle.models.look_personalize_np`) share this
module, so the format is written in one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prefstyle import __version__
from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_path, atomic_write_text

__all__ = ["PROFILE_FORMAT", "PROFILE_VERSION", "assets_dir", "looks_like_path", "write_profile"]

PROFILE_FORMAT = "prefstyle-profile"
PROFILE_VERSION = 1


def assets_dir() -> Path:
    """``src/prefstyle/assets/models``: packaged default weights, one folder per model name."""
    return Path(__file__).resolve().parent.parent / "assets" / "models"


def looks_like_path(spec: str) -> bool:
    """Whether ``--model`` value ``spec`` names a file or folder rather than a registered model."""
    return (
        "/" in spec
        or "\\" in spec
        or spec.endswith((".json", ".safetensors"))
        or spec.startswith(".")
        or Path(spec).exists()
    )


def write_profile(
    path: str | Path,
    model: str,
    model_config: dict[str, Any],
    user: str | None,
    data: dict[str, Any],
    tensors: Iterable[tuple[str, bool]],
    save_tensors: Callable[[Path], None] | None,
) -> Path:
    """Write a profile's ``.json`` (and, through ``save_tensors(tmp_path)``, its ``.safetensors``), atomically.

    ``tensors``: ``(name, all values finite)`` of each tensor. A profile with NaN or infinite
    numbers in its JSON or tensors (a model that went wrong) is refused, never written.
    Returns the ``.json`` path (``path`` with that suffix).
    """
    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    tensors = list(tensors)
    doc = {
        "format": PROFILE_FORMAT,
        "version": PROFILE_VERSION,
        "model": model,
        "model_config": model_config,
        "user": user,
        "prefstyle_version": __version__,
        "data": data,
        "tensors": sorted(name for name, _ in tensors),
    }
    try:
        text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    except ValueError:
        raise PrefstyleError(f"refusing to write a '{model}' profile with NaN or infinite values", path=path) from None
    for name, finite in tensors:
        if not finite:
            raise PrefstyleError(
                f"refusing to write a '{model}' profile: tensor '{name}' holds NaN or infinite values", path=path
            )
    if not (tensors and save_tensors is not None):
        atomic_write_text(path, text)
        return path
    # Both files are written in full before either is renamed (the tensors first, then the JSON
    # that names them), so a full disk leaves neither a new file nor a replaced one behind.
    with atomic_path(path) as json_tmp, atomic_path(path.with_suffix(".safetensors")) as tensors_tmp:
        save_tensors(tensors_tmp)
        json_tmp.write_text(text, encoding="utf-8")
    return path
