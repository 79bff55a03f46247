"""The style universe: the renditions of a photo that users choose between.

* :mod:`~prefstyle.styles.base` - the :class:`Style` interface and :func:`from_params`.
* :mod:`~prefstyle.styles.presets` - named presets, ``ParamsStyle``, the look sampler and the
  look algebra (``interpolate``, ``perturb``, ``mix``, ``single_parameter_edits``).
* :mod:`~prefstyle.styles.classical` - classical enhancement methods (HE, CLAHE, gamma,
  auto-levels, gray-world, white-patch, MSRCR/MSRCP, LIME, S-curve).
* :mod:`~prefstyle.styles.camera` - camera renderings (picture profiles) and their sampler.
* :mod:`~prefstyle.styles.lut_style` - ``.cube`` / Hald LUT files as styles.
* :mod:`~prefstyle.styles.registry` - ``list_styles()`` and ``get_style(name, **overrides)``.

Names are imported lazily (``from prefstyle.styles import get_style`` works) so that importing
the package does not pull in OpenCV and scikit-image.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Style": "base",
    "STYLE_KINDS": "base",
    "from_params": "base",
    "ParamsStyle": "presets",
    "PresetStyle": "presets",
    "PRESETS": "presets",
    "sample_params": "presets",
    "sample_looks": "presets",
    "interpolate": "presets",
    "perturb": "presets",
    "mix": "presets",
    "single_parameter_edits": "presets",
    "is_plausible": "presets",
    "ClassicalStyle": "classical",
    "CLASSICAL_METHODS": "classical",
    "CameraRendering": "camera",
    "CAMERA_PROFILES": "camera",
    "sample_camera": "camera",
    "LUTStyle": "lut_style",
    "StyleInfo": "registry",
    "list_styles": "registry",
    "get_style": "registry",
}

__all__ = [
    "CAMERA_PROFILES",
    "CLASSICAL_METHODS",
    "PRESETS",
    "STYLE_KINDS",
    "CameraRendering",
    "ClassicalStyle",
    "LUTStyle",
    "ParamsStyle",
    "PresetStyle",
    "Style",
    "StyleInfo",
    "from_params",
    "get_style",
    "interpolate",
    "is_plausible",
    "list_styles",
    "mix",
    "perturb",
    "sample_camera",
    "sample_looks",
    "sample_params",
    "single_parameter_edits",
]


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'prefstyle.styles' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"prefstyle.styles.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
