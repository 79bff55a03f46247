"""RawTherapee processing profile (``.pp3``, a partial profile: only the tools it names change).

Mapping (RawTherapee 5.9, measured against ``rawtherapee-cli`` in docs/PRESETS.md):

* temperature, tint -> ``[Channel Mixer]``: prefstyle's own white-balance gains (per channel in
  linear sRGB, grey luminance kept) as the mixer's diagonal, in tenths of a percent. With the
  sRGB working profile below this is exact (0.06 ΔE00 from prefstyle's rendering), and it is
  relative: on a raw file it adds to the camera's white balance, which the profile leaves alone
  (RawTherapee's own ``[White Balance]`` temperature is absolute on raws);
* exposure -> ``[Exposure] Compensation`` (EV, both in linear light);
* contrast, highlights, shadows, whites, blacks -> ``[Exposure] Curve``: the per-channel tone
  curve those five sliders make in prefstyle (``CurveMode=Standard``, RawTherapee's per-channel
  RGB curve, 17 Catmull-Rom points). RawTherapee's own Contrast / Highlight compression /
  Shadows & Highlights tools act differently (the last one locally), so the curve is the
  faithful form;
* vibrance -> ``[Vibrance] Pastels`` and ``Saturated`` (linked), saturation -> ``[Luminance Curve]
  Chromaticity`` (a CIELAB chroma scale; the Exposure tool's Saturation was much further from
  prefstyle's chroma scale in a first check, 12.9 against 3.3 ΔE00 at -0.6); their scales were fitted by least squares against ``rawtherapee-cli`` renderings
  of training photos (:data:`SLIDER_MAP`).

The profile also sets RawTherapee's working profile to sRGB: the per-channel curve then acts on
the same channels as prefstyle's, and RawTherapee's neutral pipeline reproduces a JPEG within
0.01 ΔE00 (with its default ProPhoto working space it brightens the tones by about 1 % and
shifts colours by 2.5 ΔE00 on average). For raw files with colours outside sRGB, delete that
line to keep the wider working space.

The adaptive brightness cannot be written (RawTherapee's Auto Levels also changes contrast and
black point): it is a comment at the top of the file.
"""

from __future__ import annotations

import math

import numpy as np

from prefstyle.imaging.params import RetouchParams
from prefstyle.imaging.presets import piecewise

__all__ = ["SLIDER_MAP", "TONE_CURVE_POINTS", "parse_pp3", "render_pp3", "tone_curve_points", "wb_gains"]

#: prefstyle slider value -> RawTherapee value, piecewise linear (xs, ys); fitted, see docs/PRESETS.md
SLIDER_MAP: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # benchmarks/results/presets_calibration_rawtherapee.json
    "vibrance": ((-1.0, -0.6, 0.0, 0.6, 1.0), (-4.9028, -2.9417, 0.0, 33.4369, 55.7282)),
    # benchmarks/results/presets_calibration_rawtherapee_saturation.json
    "saturation": ((-1.0, -0.6, 0.0, 0.6, 1.0), (-92.8802, -55.7281, 0.0, 8.2039, 13.6732)),
}
TONE_CURVE_POINTS = 17
_CATMULL_ROM = 4  # RawTherapee's curve type id (DCT_CatumullRom)


def wb_gains(temperature: float, tint: float) -> tuple[float, float, float]:
    """prefstyle's white-balance gains (R, G, B) on linear sRGB (:func:`prefstyle.imaging.ops.white_balance`)."""
    from prefstyle.imaging import op_strengths as ops

    ln2 = math.log(2.0)
    g = (
        math.exp(ln2 * ops.WB_TEMPERATURE_STOPS * temperature),
        math.exp(-ln2 * ops.WB_TINT_STOPS * tint),
        math.exp(-ln2 * ops.WB_TEMPERATURE_STOPS * temperature),
    )
    norm = sum(w * x for w, x in zip(ops.LUMA_WEIGHTS, g))
    return (g[0] / norm, g[1] / norm, g[2] / norm)


def tone_curve_points(params: RetouchParams, n: int = TONE_CURVE_POINTS) -> list[tuple[float, float]]:
    """``n`` points ``(x, y)`` in [0, 1] of the per-channel tone map made by the contrast, highlights,
    shadows, whites and blacks sliders (gamma-encoded values in and out); [] when it is the identity."""
    from prefstyle.imaging.retouch_np import apply_vectors

    tone = RetouchParams(
        contrast=params.contrast,
        highlights=params.highlights,
        shadows=params.shadows,
        whites=params.whites,
        blacks=params.blacks,
    )
    if tone.is_identity():
        return []
    x = np.linspace(0.0, 1.0, n).astype(np.float32)
    ramp = np.ascontiguousarray(np.broadcast_to(x, (1, 3, 1, n)))
    y = apply_vectors(ramp, np.asarray([tone.to_list()], dtype=np.float32))[0, 1, 0]
    return [(float(a), float(b)) for a, b in zip(x, y)]


def _fmt(v: float, nd: int = 4) -> str:
    s = f"{v:.{nd}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def render_pp3(params: RetouchParams, gain: float, name: str, notes: list[str] | tuple[str, ...] = ()) -> str:
    """The ``.pp3`` text of a slider taste (module docstring); ``notes`` become ``#`` comment lines."""
    lines = [f"# {name}: prefstyle taste as a RawTherapee partial processing profile (see docs/PRESETS.md)"]
    lines += [f"# note: {n}" for n in notes]
    lines += ["", "[Version]", "AppVersion=5.9", "Version=346", ""]
    gains = [round(1000 * g) for g in wb_gains(params.temperature, params.tint)]
    curve = tone_curve_points(params)
    curve_txt = f"{_CATMULL_ROM};" + "".join(f"{_fmt(x, 5)};{_fmt(y, 5)};" for x, y in curve) if curve else "0;"
    lines += [
        "[Exposure]",
        "Auto=false",
        f"Compensation={_fmt(params.exposure, 3)}",
        "Brightness=0",
        "Contrast=0",
        "Saturation=0",
        "Black=0",
        "HighlightCompr=0",
        "ShadowCompr=50",
        "CurveMode=Standard",
        "CurveMode2=Standard",
        f"Curve={curve_txt}",
        "Curve2=0;",
        "",
        "[Channel Mixer]",
        f"Enabled={'true' if gains != [1000, 1000, 1000] else 'false'}",
        f"Red={gains[0]};0;0;",
        f"Green=0;{gains[1]};0;",
        f"Blue=0;0;{gains[2]};",
        "",
        "[Color Management]",
        "WorkingProfile=sRGB",
        "",
    ]
    chroma = round(piecewise(SLIDER_MAP["saturation"], params.saturation))
    lines += ["[Luminance Curve]", f"Enabled={'true' if chroma else 'false'}", f"Chromaticity={chroma}", ""]
    vib = round(piecewise(SLIDER_MAP["vibrance"], params.vibrance))
    lines += [
        "[Vibrance]",
        f"Enabled={'true' if vib else 'false'}",
        f"Pastels={vib}",
        f"Saturated={vib}",
        "PSThreshold=0;75;",
        "ProtectSkins=false",
        "AvoidColorShift=true",
        "PastSatTog=true",
        "",
    ]
    return "\n".join(lines)


def parse_pp3(text: str) -> dict[str, dict[str, str]]:
    """``{section: {key: value}}`` of a ``.pp3`` text (comments dropped); for tests and checks."""
    out: dict[str, dict[str, str]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            out.setdefault(section, {})
        elif "=" in line and section is not None:
            k, v = line.split("=", 1)
            out[section][k] = v
        else:
            raise ValueError(f"not a pp3 line: {raw!r}")
    return out
