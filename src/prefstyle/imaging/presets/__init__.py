"""Editor presets: a slider taste as files that Lightroom / Camera Raw, darktable and RawTherapee open.

A taste that is a slider edit (:meth:`prefstyle.models.base.PersonalizationModel.slider_edit`)
is a :class:`~prefstyle.imaging.params.RetouchParams` (the ten basic sliders; the curve, HSL and
split-toning controls neutral) plus an adaptive-brightness gain ``g`` in [0, 1]: prefstyle
adds ``g · log2(0.18 / Ȳ)`` EV to the exposure of a photo whose metered linear luminance is
``Ȳ``. Each writer maps the sliders onto the editor's own controls:

=========  =====================  ==========================================================
format     module                 what it writes
=========  =====================  ==========================================================
xmp        :mod:`.xmp`            Adobe Camera Raw / Lightroom Classic preset (``crs:``, PV2012)
dtstyle    :mod:`.dtstyle`        darktable 4.2 style: channelmixerrgb v3, exposure v6,
                                  colorbalancergb v5, rgbcurve v1 (also as a sidecar XMP)
pp3        :mod:`.pp3`            RawTherapee 5.x partial processing profile
=========  =====================  ==========================================================

None of the editors can set the brightness per photo from a partial preset applied to JPEGs,
so the gain is written as a note (:func:`gain_note`) in each file's comment/description, and
the exporting command prints it. The mappings and how close each editor's rendering comes to
``prefstyle enhance`` are in docs/PRESETS.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefstyle.imaging.params import BASIC_SLIDERS, RetouchParams

__all__ = ["FORMATS", "SLIDERS", "check_slider_edit", "gain_note", "piecewise", "preset_text"]

#: format name -> file extension
FORMATS: dict[str, str] = {"xmp": ".xmp", "dtstyle": ".dtstyle", "pp3": ".pp3"}
#: the sliders a preset carries, in RetouchParams' pipeline order
SLIDERS: tuple[str, ...] = BASIC_SLIDERS


def piecewise(table: tuple[Sequence[float], Sequence[float]], value: float) -> float:
    """Piecewise-linear map of ``value`` through ``(xs, ys)`` knots (xs increasing), clamped at the ends."""
    xs, ys = table
    return float(np.interp(float(value), np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)))


def check_slider_edit(params: RetouchParams) -> list[str]:
    """Names of the controls beyond the ten sliders that ``params`` uses (a preset drops them)."""
    neutral = RetouchParams()
    return [
        name
        for name in ("curve", "hsl_hue", "hsl_saturation", "hsl_luminance", "split_shadow_sat", "split_highlight_sat")
        if getattr(params, name) != getattr(neutral, name)
    ]


def gain_note(gain: float, editor: str) -> str:
    """One line: what the adaptive-brightness gain means and how to reproduce it by hand ("" below 5 %)."""
    if gain < 0.05:
        return ""
    return (
        f"prefstyle sets the brightness per photo ({100 * gain:.0f} % adaptive): this {editor} preset holds the "
        f"exposure of a photo already at mid-grey; for another photo add about {gain:.2f} x the EV that would "
        "bring its average to mid-grey (dark photo: more, bright photo: less), or use `prefstyle enhance`"
    )


def preset_text(fmt: str, params: RetouchParams, gain: float, name: str) -> tuple[str, list[str]]:
    """The preset file of format ``fmt`` (:data:`FORMATS`) for a slider taste, and its notes (one line each)."""
    from prefstyle.imaging.presets import dtstyle, pp3, xmp

    if fmt not in FORMATS:
        raise ValueError(f"unknown preset format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not 0.0 <= gain <= 1.0:
        raise ValueError(f"adaptive-brightness gain must be in [0, 1], got {gain}")
    writer = {"xmp": xmp.render_xmp, "dtstyle": dtstyle.render_dtstyle, "pp3": pp3.render_pp3}[fmt]
    editor = {"xmp": "Lightroom/Camera Raw", "dtstyle": "darktable", "pp3": "RawTherapee"}[fmt]
    notes = []
    note = gain_note(gain, editor)
    if note:
        notes.append(note)
    dropped = check_slider_edit(params)
    if dropped:
        notes.append(f"not in the preset (no slider for them here): {', '.join(dropped)}")
    return writer(params, gain, name, notes), notes
