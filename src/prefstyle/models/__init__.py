"""Personalization models behind one interface (:mod:`prefstyle.models.base`).

* :func:`load` - the one way in: a registered name, a checkpoint folder or file, a settings
  file, or a packaged model (:mod:`prefstyle.models.loading`); :data:`DEFAULT_MODEL` and
  :data:`DEFAULT_LIKED_MODEL` are the models used when none is named;
* :func:`render_image` / :func:`render_batch` - a model applied to photos (LUT fast path,
  strength blend, shape checks; :mod:`prefstyle.models.render`);
* :func:`create_model`, :func:`list_models`, :func:`register_model` - the registry.

Names are imported on first use, so ``from prefstyle.models import DEFAULT_MODEL`` stays cheap
(no torch) for the command line's start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

from prefstyle.models.defaults import DEFAULT_LIKED_MODEL, DEFAULT_MODEL

_EXPORTS = {
    "PersonalizationModel": "base",
    "Profile": "base",
    "Reference": "base",
    "create_model": "base",
    "list_models": "base",
    "register_model": "base",
    "load": "loading",
    "packaged_models": "loading",
    "render_batch": "render",
    "render_image": "render",
}

__all__ = ["DEFAULT_LIKED_MODEL", "DEFAULT_MODEL", *_EXPORTS]


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'prefstyle.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"prefstyle.models.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
