"""darktable style (``.dtstyle``) and sidecar XMP: the taste as four darktable modules.

darktable stores each module's settings as the raw bytes of its C ``params`` struct. The
layouts below are those of darktable 4.2 (read from the modules' introspection data of the
Debian 4.2.1 build; darktable converts older module versions forward, so newer releases load
them):

===============  =======  =====  ===========================================================
module           version  bytes  fields used
===============  =======  =====  ===========================================================
channelmixerrgb  3        160    a 3x3 matrix in the pipeline's linear Rec.2020 RGB with no
                                 chromatic adaptation (illuminant "as set in the pipeline",
                                 adaptation "none (bypass)"), gamut compression off
exposure         6        24     mode manual, exposure (EV); black 0, deflicker defaults
colorbalancergb  5        132    vibrance, chroma_global; everything else at its default
rgbcurve         1        516    one curve for R, G and B ("RGB, linked channels", preserve
                                 colours: none), 20 monotone-Hermite nodes in linear light
===============  =======  =====  ===========================================================

Mapping:

* temperature, tint -> channelmixerrgb: prefstyle's own white-balance gains (linear sRGB, grey
  luminance kept) as the same transform in Rec.2020 (exact up to gamut clipping);
* exposure -> exposure EV (both linear light);
* contrast, highlights, shadows, whites, blacks -> rgbcurve: the per-channel tone curve the five
  sliders make in prefstyle (sRGB-encoded), carried into linear light. darktable's own tone
  controls (color balance rgb's contrast and 4-ways) act on luminance in a perceptual space and
  came no closer to prefstyle's rendering than the untouched photo in a first check, so the
  curve is the faithful form;
* vibrance, saturation -> colorbalancergb's vibrance and global chroma, with scales fitted by
  least squares against ``darktable-cli`` renderings of training photos (:data:`SLIDER_MAP`,
  docs/PRESETS.md).

Module order: darktable 4.2 gives every new image, JPEGs included, its "v3.0" order, which runs
the exposure module *before* the input colour profile: on a JPEG it then scales the encoded
values, not linear light (a +0.5 EV becomes about +1 EV in the highlights), while on raw files it
is right. darktable's "v3.0 JPEG" order (module order module) puts the input profile first and
makes the style's exposure exact; the style's description says so. The white balance (channel
mixer), color balance rgb and rgb curve come after the input profile in both orders. docs/PRESETS.md
measures both.

darktable applies a style's modules with their default blending (blend parameters are left
empty, which darktable replaces by the module's defaults). Its automatic exposure
("deflicker") reads the raw histogram and does nothing on JPEGs, so the adaptive brightness
is a note in the style's description.
"""

from __future__ import annotations

import struct
from xml.sax.saxutils import escape

import numpy as np

from prefstyle.imaging.params import RetouchParams
from prefstyle.imaging.presets import piecewise

__all__ = [
    "MODULES",
    "SLIDER_MAP",
    "decode_params",
    "module_params",
    "parse_dtstyle",
    "render_darktable_xmp",
    "render_dtstyle",
    "wb_matrix_rec2020",
]

#: prefstyle slider value -> darktable value, piecewise linear (xs, ys); fitted, see docs/PRESETS.md
SLIDER_MAP: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # benchmarks/results/presets_calibration_darktable.json
    "vibrance": ((-1.0, -0.6, 0.0, 0.6, 1.0), (-0.2077, -0.1246, 0.0, 0.4164, 0.694)),  # colorbalancergb: vibrance
    "saturation": (
        (-1.0, -0.6, 0.0, 0.6, 1.0),
        (-0.8933, -0.536, 0.0, 0.4458, 0.743),
    ),  # colorbalancergb: chroma_global
}

# (field name, struct format) in struct order, per module: darktable 4.2's introspection
_EXPOSURE_FIELDS = (
    ("mode", "i"),
    ("black", "f"),
    ("exposure", "f"),
    ("deflicker_percentile", "f"),
    ("deflicker_target_level", "f"),
    ("compensate_exposure_bias", "i"),
)
_CBRGB_FIELDS = tuple(
    (n, "f")
    for n in (
        "shadows_Y",
        "shadows_C",
        "shadows_H",
        "midtones_Y",
        "midtones_C",
        "midtones_H",
        "highlights_Y",
        "highlights_C",
        "highlights_H",
        "global_Y",
        "global_C",
        "global_H",
        "shadows_weight",
        "white_fulcrum",
        "highlights_weight",
        "chroma_shadows",
        "chroma_highlights",
        "chroma_global",
        "chroma_midtones",
        "saturation_global",
        "saturation_highlights",
        "saturation_midtones",
        "saturation_shadows",
        "hue_angle",
        "brilliance_global",
        "brilliance_highlights",
        "brilliance_midtones",
        "brilliance_shadows",
        "mask_grey_fulcrum",
        "vibrance",
        "grey_fulcrum",
        "contrast",
    )
) + (("saturation_formula", "i"),)
_CMIX_FIELDS = (
    tuple((f"{row}[{i}]", "f") for row in ("red", "green", "blue", "saturation", "lightness", "grey") for i in range(4))
    + tuple((f"normalize_{n}", "i") for n in ("R", "G", "B", "sat", "light", "grey"))
    + (
        ("illuminant", "i"),
        ("illum_fluo", "i"),
        ("illum_led", "i"),
        ("adaptation", "i"),
        ("x", "f"),
        ("y", "f"),
        ("temperature", "f"),
        ("gamut", "f"),
        ("clip", "i"),
        ("version", "i"),
    )
)

RGBCURVE_NODES = 20  # darktable's DT_IOP_RGBCURVE_MAXNODES
_RGBCURVE_FIELDS = (
    tuple((f"curve_nodes[{c}][{i}].{a}", "f") for c in range(3) for i in range(RGBCURVE_NODES) for a in "xy")
    + tuple((f"curve_num_nodes[{c}]", "i") for c in range(3))
    + tuple((f"curve_type[{c}]", "i") for c in range(3))
    + (("curve_autoscale", "i"), ("compensate_middle_grey", "i"), ("preserve_colors", "i"))
)
_MONOTONE_HERMITE, _SCALE_AUTOMATIC_RGB, _NORM_NONE = 2, 0, 0  # rgbcurve's enums

#: operation -> (module version, struct size, fields)
MODULES: dict[str, tuple[int, int, tuple[tuple[str, str], ...]]] = {
    "channelmixerrgb": (3, 160, _CMIX_FIELDS),
    "exposure": (6, 24, _EXPOSURE_FIELDS),
    "colorbalancergb": (5, 132, _CBRGB_FIELDS),
    "rgbcurve": (1, 516, _RGBCURVE_FIELDS),
}
_ORDER = ("channelmixerrgb", "exposure", "colorbalancergb", "rgbcurve")  # darktable's pipeline order
_IOP_ORDER_V30, _IOP_ORDER_V30_JPG = 2, 3  # darktable's dt_iop_order_t
#: in every style's description: darktable's default module order runs exposure before the input profile
JPEG_ORDER_NOTE = (
    "on JPEG/PNG/TIFF photos set the module order to 'v3.0 JPEG' (module order module) so that "
    "exposure acts in linear light as in prefstyle; raw files need nothing"
)
_BLEND_VERSION = 11  # darktable 4.2; the empty blend parameters are replaced by the defaults

# linear sRGB -> linear Rec.2020 (both D65), ITU-R BT.2087
_SRGB_TO_REC2020 = np.array(
    [[0.6274039, 0.3292830, 0.0433131], [0.0690973, 0.9195404, 0.0113623], [0.0163914, 0.0880133, 0.8955953]]
)


def _pack(op: str, values: dict[str, float]) -> bytes:
    _, size, fields = MODULES[op]
    blob = struct.pack(
        "<" + "".join(f for _, f in fields), *[int(values[n]) if f == "i" else float(values[n]) for n, f in fields]
    )
    assert len(blob) == size, (op, len(blob), size)
    return blob


def decode_params(op: str, blob: bytes) -> dict[str, float]:
    """The named fields of a module's params blob (inverse of the packing; for tests and checks)."""
    _, size, fields = MODULES[op]
    if len(blob) != size:
        raise ValueError(f"{op} params must be {size} bytes, got {len(blob)}")
    vals = struct.unpack("<" + "".join(f for _, f in fields), blob)
    return {n: v for (n, _), v in zip(fields, vals)}


def wb_matrix_rec2020(temperature: float, tint: float) -> np.ndarray:
    """``(3, 3)``: prefstyle's white balance (per-channel gains in linear sRGB, :func:`prefstyle.imaging.ops.white_balance`)
    expressed in linear Rec.2020, ``M = T diag(g) T⁻¹``."""
    from prefstyle.imaging.presets.pp3 import wb_gains

    g = np.array(wb_gains(temperature, tint))
    return _SRGB_TO_REC2020 @ np.diag(g) @ np.linalg.inv(_SRGB_TO_REC2020)


def rgbcurve_nodes(params: RetouchParams) -> list[tuple[float, float]]:
    """The per-channel tone map of the contrast, highlights, shadows, whites and blacks sliders as
    :data:`RGBCURVE_NODES` ``(x, y)`` nodes in linear light (rgbcurve's domain), spaced evenly in
    sRGB-encoded values; [] when the five sliders are neutral."""
    from prefstyle.imaging.presets.pp3 import tone_curve_points

    pts = tone_curve_points(params, RGBCURVE_NODES)
    if not pts:
        return []
    x = np.clip(np.asarray(pts, dtype=np.float64), 0.0, 1.0)
    lin = np.where(x > 0.04045, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)
    return [(float(a), float(b)) for a, b in lin.tolist()]


def module_params(params: RetouchParams) -> dict[str, dict[str, float]]:
    """Every module's field values for a slider taste (only modules that change something)."""
    out: dict[str, dict[str, float]] = {}
    if params.temperature or params.tint:
        m = wb_matrix_rec2020(params.temperature, params.tint)
        v: dict[str, float] = {}
        for r, row in enumerate(("red", "green", "blue")):
            for i in range(4):
                v[f"{row}[{i}]"] = float(m[r, i]) if i < 3 else 0.0
        for row in ("saturation", "lightness", "grey"):
            for i in range(4):
                v[f"{row}[{i}]"] = 0.0
        v.update({f"normalize_{n}": 0 for n in ("R", "G", "B", "sat", "light", "grey")})
        v.update(
            illuminant=0,
            illum_fluo=2,
            illum_led=4,
            adaptation=4,
            x=0.333,
            y=0.333,
            temperature=5003.0,
            gamut=0.0,
            clip=1,
            version=2,
        )
        out["channelmixerrgb"] = v
    if params.exposure:
        out["exposure"] = {
            "mode": 0,
            "black": 0.0,
            "exposure": params.exposure,
            "deflicker_percentile": 50.0,
            "deflicker_target_level": -4.0,
            "compensate_exposure_bias": 0,
        }
    cb = {n: 0.0 for n, _ in _CBRGB_FIELDS}
    cb.update(
        shadows_weight=1.0, highlights_weight=1.0, mask_grey_fulcrum=0.1845, grey_fulcrum=0.1845, saturation_formula=1
    )
    cb["vibrance"] = min(max(piecewise(SLIDER_MAP["vibrance"], params.vibrance), -1.0), 1.0)
    cb["chroma_global"] = min(max(piecewise(SLIDER_MAP["saturation"], params.saturation), -1.0), 1.0)
    if cb["vibrance"] or cb["chroma_global"]:
        out["colorbalancergb"] = cb
    curve = rgbcurve_nodes(params)
    if curve:
        rc: dict[str, float] = {}
        for c in range(3):
            for i in range(RGBCURVE_NODES):
                x, y = curve[i] if i < len(curve) else (0.0, 0.0)
                rc[f"curve_nodes[{c}][{i}].x"], rc[f"curve_nodes[{c}][{i}].y"] = x, y
            rc[f"curve_num_nodes[{c}]"] = len(curve)
            rc[f"curve_type[{c}]"] = _MONOTONE_HERMITE
        rc.update(curve_autoscale=_SCALE_AUTOMATIC_RGB, compensate_middle_grey=0, preserve_colors=_NORM_NONE)
        out["rgbcurve"] = rc
    return out


def _items(params: RetouchParams) -> list[tuple[str, int, str]]:
    """(operation, module version, hex params) in pipeline order."""
    mods = module_params(params)
    return [(op, MODULES[op][0], _pack(op, mods[op]).hex()) for op in _ORDER if op in mods]


def render_dtstyle(params: RetouchParams, gain: float, name: str, notes: list[str] | tuple[str, ...] = ()) -> str:
    """The ``.dtstyle`` XML of a slider taste (import it in darktable's styles module)."""
    desc = "prefstyle taste (see docs/PRESETS.md); " + JPEG_ORDER_NOTE + "".join(f"; note: {n}" for n in notes)
    plugins = []
    for num, (op, ver, hexp) in enumerate(_items(params)):
        plugins.append(
            "  <plugin>\n"
            f"   <num>{num}</num>\n   <module>{ver}</module>\n   <operation>{op}</operation>\n"
            f"   <op_params>{hexp}</op_params>\n   <enabled>1</enabled>\n   <blendop_params></blendop_params>\n"
            f"   <blendop_version>{_BLEND_VERSION}</blendop_version>\n   <multi_priority>0</multi_priority>\n"
            "   <multi_name></multi_name>\n  </plugin>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<darktable_style version="1.0">\n<info>\n'
        f" <name>{escape(name)}</name>\n <description>{escape(desc)}</description>\n"
        "</info>\n<style>\n" + "".join(plugins) + "</style>\n</darktable_style>\n"
    )


def render_darktable_xmp(params: RetouchParams, notes: list[str] | tuple[str, ...] = (), raw: bool = False) -> str:
    """A darktable sidecar XMP whose history holds the same modules (``darktable-cli in.jpg this.xmp out.jpg``).

    The module order is darktable's default for the kind of file: "v3.0 JPEG" (input profile
    first, so exposure acts in linear light) for JPEG/PNG/TIFF, "v3.0" for raw files (``raw``)."""
    items = _items(params)
    lis = "".join(
        "     <rdf:li\n"
        f'      darktable:num="{num}"\n      darktable:operation="{op}"\n      darktable:enabled="1"\n'
        f'      darktable:modversion="{ver}"\n      darktable:params="{hexp}"\n      darktable:multi_name=""\n'
        f'      darktable:multi_priority="0"\n      darktable:blendop_version="{_BLEND_VERSION}"\n'
        '      darktable:blendop_params=""/>\n'
        for num, (op, ver, hexp) in enumerate(items)
    )
    desc = "; ".join(notes) if notes else "prefstyle taste"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n    xmlns:darktable="http://darktable.sf.net/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        f'   darktable:xmp_version="5"\n   darktable:auto_presets_applied="1"\n'
        f'   darktable:history_end="{len(items)}"\n'
        f'   darktable:iop_order_version="{_IOP_ORDER_V30 if raw else _IOP_ORDER_V30_JPG}">\n'
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(desc)}</rdf:li></rdf:Alt></dc:description>\n'
        "   <darktable:history>\n    <rdf:Seq>\n" + lis + "    </rdf:Seq>\n   </darktable:history>\n"
        "  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n"
    )


def parse_dtstyle(text: str) -> dict[str, dict[str, float]]:
    """``{operation: fields}`` of a ``.dtstyle`` written here (XML parsed, params decoded)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text)
    if root.tag != "darktable_style":
        raise ValueError("not a darktable style")
    out = {}
    for plugin in root.iter("plugin"):
        op = plugin.findtext("operation") or ""
        ver = int(plugin.findtext("module") or -1)
        if op not in MODULES or MODULES[op][0] != ver:
            raise ValueError(f"unexpected module {op} v{ver}")
        out[op] = decode_params(op, bytes.fromhex(plugin.findtext("op_params") or ""))
    return out
