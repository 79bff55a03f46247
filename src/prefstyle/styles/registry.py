"""Find styles by name.

Names:

==========================  ===========================================================
``warm-film``, ...          a named preset (:data:`prefstyle.styles.presets.PRESETS`)
``clahe``, ``gamma``, ...   a classical method at its default settings
``camera:vivid``, ...       a camera profile (:data:`prefstyle.styles.camera.CAMERA_PROFILES`)
``sample:SEED``             a sampled look, ``sample_params(SEED)``
``camera:sample:SEED``      a sampled camera rendering, ``sample_camera(SEED)``
``lut:PATH``                a ``.cube`` or Hald image file
``{...}`` / ``FILE.json``   a style's own parameters (:meth:`Style.params`) as JSON
==========================  ===========================================================

``get_style(name, **overrides)`` changes settings on the way: ``strength`` for every style, a
classical method's settings (``get_style("gamma", gamma=2.0)``), RetouchParams fields of a
preset or sampled look (``get_style("warm-film", exposure=0.3)``), a camera rendering's
parameters and tone-curve fields (``get_style("camera:vivid", saturation=1.1)``).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefstyle.errors import PrefstyleError
from prefstyle.styles.base import Style, from_params


@dataclass(frozen=True)
class StyleInfo:
    name: str
    kind: str
    description: str


def list_styles(kind: str | None = None) -> list[StyleInfo]:
    """Every named style (presets, classical methods, camera profiles), optionally of one kind.

    Sampled looks (``sample:SEED``, ``camera:sample:SEED``) and LUT files (``lut:PATH``) are
    open-ended and not listed.
    """
    from prefstyle.styles.camera import CAMERA_PROFILES
    from prefstyle.styles.classical import CLASSICAL_METHODS
    from prefstyle.styles.presets import PRESETS

    out = [StyleInfo(p.name, "preset", p.description) for p in PRESETS.values()]
    out += [StyleInfo(m, "classical", cls.summary) for m, cls in CLASSICAL_METHODS.items()]
    out += [StyleInfo(c.name, "camera", c.description) for c in CAMERA_PROFILES.values()]
    if kind is not None:
        out = [s for s in out if s.kind == kind]
    return out


def style_names() -> list[str]:
    """The names :func:`list_styles` lists."""
    return [s.name for s in list_styles()]


def _seed(text: str, name: str) -> int:
    try:
        seed: int | None = int(text)
    except ValueError:
        seed = None
    if seed is None or seed < 0:
        raise PrefstyleError(f"style {name!r}: the seed must be a whole number >= 0, got {text!r}")
    return seed


def _with_overrides(style: Style, overrides: dict[str, Any]) -> Style:
    overrides = dict(overrides)
    strength = overrides.pop("strength", None)
    if overrides:
        from prefstyle.styles.camera import CameraRendering
        from prefstyle.styles.classical import ClassicalStyle
        from prefstyle.styles.presets import ParamsStyle

        try:
            if isinstance(style, ClassicalStyle):
                style = type(style)(name=style.name, strength=style.strength, **{**style.settings, **overrides})
            elif isinstance(style, (ParamsStyle, CameraRendering)):
                style = style.replace(**overrides)
            else:
                raise PrefstyleError(
                    f"style {style.name!r} ({style.kind}) takes no settings other than strength; got {', '.join(overrides)}"
                )
        except (TypeError, ValueError) as e:
            if isinstance(e, PrefstyleError):
                raise
            raise PrefstyleError(f"style {style.name!r}: {e}") from e
    if strength is not None:
        try:
            style = style.with_strength(float(strength))
        except ValueError as e:
            raise PrefstyleError(str(e)) from e
    return style


def get_style(name: str, **overrides: Any) -> Style:
    """The style called ``name`` (see the module docstring), with ``overrides`` applied.

    Unknown names raise :class:`PrefstyleError` listing close matches.
    """
    from prefstyle.styles.camera import CAMERA_PROFILES, sample_camera
    from prefstyle.styles.classical import CLASSICAL_METHODS
    from prefstyle.styles.presets import PRESETS, sampled_style

    name = name.strip()
    style: Style
    if name in PRESETS:
        style = PRESETS[name].style()
    elif name in CLASSICAL_METHODS:
        style = CLASSICAL_METHODS[name]()
    elif name in CAMERA_PROFILES:
        style = CAMERA_PROFILES[name]
    elif name.startswith("camera:sample:"):
        style = sample_camera(_seed(name.removeprefix("camera:sample:"), name))
    elif name.startswith("sample:"):
        style = sampled_style(_seed(name.removeprefix("sample:"), name))
    elif name.startswith("lut:"):
        from prefstyle.styles.lut_style import LUTStyle

        style = LUTStyle.from_file(name.removeprefix("lut:"))
    elif name.startswith("{"):
        try:
            style = from_params(json.loads(name))
        except json.JSONDecodeError as e:
            raise PrefstyleError(f"style given as JSON is not valid JSON: {e}") from e
    elif name.lower().endswith(".json") and Path(name).is_file():
        try:
            style = from_params(json.loads(Path(name).read_text(encoding="utf-8")))
        except json.JSONDecodeError as e:
            raise PrefstyleError(f"not valid JSON: {e}", name, e.lineno) from e
    else:
        names = style_names()
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f"did you mean: {', '.join(close)}?" if close else "run `prefstyle styles list` to see them"
        raise PrefstyleError(
            f"unknown style {name!r}; {hint} (also: sample:SEED, camera:sample:SEED, lut:PATH.cube, a style JSON file)"
        )
    return _with_overrides(style, overrides) if overrides else style
