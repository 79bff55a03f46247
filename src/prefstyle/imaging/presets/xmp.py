"""Adobe Camera Raw / Lightroom Classic preset (``.xmp``, ``crs:`` settings, process version 2012+).

Import it in Lightroom Classic (Develop > Presets > + > Import Presets) or copy it into Camera
Raw's ``Settings`` folder. Mapping, by the documented meaning of both sides' sliders (no Adobe
software was available to measure it, unlike the darktable and RawTherapee presets):

==============  ==========================  ==================================================
prefstyle       crs: key                    value
==============  ==========================  ==================================================
exposure        Exposure2012                the same EV (both linear-light stops)
contrast        Contrast2012                100 x value
highlights      Highlights2012              100 x value (- recovers, + lifts, both sides)
shadows         Shadows2012                 100 x value
whites          Whites2012                  100 x value
blacks          Blacks2012                  100 x value
temperature     IncrementalTemperature      50 x value (relative: JPEG, TIFF; + warmer)
tint            IncrementalTint             50 x value (relative; + magenta, both sides)
vibrance        Vibrance                    100 x value
saturation      Saturation                  100 x value
==============  ==========================  ==================================================

All values are clipped to Adobe's ranges (EV +-5, others +-100). White balance is written
relative (``Incremental*``), which Camera Raw applies to rendered files (JPEG, TIFF); on raw files
Lightroom presets can only set an absolute temperature, so the white-balance part does not
carry over to raws. The adaptive brightness has no place in a preset: it is in the preset's
description and an XML comment.
"""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape, quoteattr

from prefstyle.imaging.params import RetouchParams

__all__ = ["CRS_NS", "SCALES", "crs_settings", "parse_xmp", "render_xmp"]

CRS_NS = "http://ns.adobe.com/camera-raw-settings/1.0/"
#: prefstyle slider -> (crs key, scale, Adobe's limit)
SCALES: dict[str, tuple[str, float, float]] = {
    "temperature": ("IncrementalTemperature", 50.0, 100.0),
    "tint": ("IncrementalTint", 50.0, 150.0),
    "exposure": ("Exposure2012", 1.0, 5.0),
    "contrast": ("Contrast2012", 100.0, 100.0),
    "highlights": ("Highlights2012", 100.0, 100.0),
    "shadows": ("Shadows2012", 100.0, 100.0),
    "whites": ("Whites2012", 100.0, 100.0),
    "blacks": ("Blacks2012", 100.0, 100.0),
    "vibrance": ("Vibrance", 100.0, 100.0),
    "saturation": ("Saturation", 100.0, 100.0),
}


def crs_settings(params: RetouchParams) -> dict[str, str]:
    """``{crs key: value text}`` of a slider taste (exposure with 2 decimals and a sign, others integers)."""
    out = {}
    for name, (key, scale, limit) in SCALES.items():
        v = min(max(getattr(params, name) * scale, -limit), limit)
        out[key] = f"{v:+.2f}" if name == "exposure" else f"{round(v):+d}".replace("+0", "0")
    return out


def render_xmp(params: RetouchParams, gain: float, name: str, notes: list[str] | tuple[str, ...] = ()) -> str:
    """The ``.xmp`` preset text of a slider taste (module docstring)."""
    settings = crs_settings(params)
    desc = "prefstyle taste" + "".join(f". Note: {n}" for n in notes)
    uid = uuid.uuid5(uuid.NAMESPACE_URL, "prefstyle:" + name + ":" + repr(sorted(settings.items()))).hex.upper()
    attrs = [
        ("crs:PresetType", "Normal"),
        ("crs:Cluster", ""),
        ("crs:UUID", uid),
        ("crs:SupportsAmount", "False"),
        ("crs:SupportsColor", "True"),
        ("crs:SupportsMonochrome", "True"),
        ("crs:SupportsHighDynamicRange", "True"),
        ("crs:SupportsNormalDynamicRange", "True"),
        ("crs:SupportsSceneReferred", "True"),
        ("crs:SupportsOutputReferred", "True"),
        ("crs:CameraModelRestriction", ""),
        ("crs:Copyright", ""),
        ("crs:ContactInfo", ""),
        ("crs:Version", "15.0"),
        ("crs:ProcessVersion", "11.0"),
    ]
    attrs += [(f"crs:{k}", v) for k, v in settings.items()]
    attrs += [("crs:HasSettings", "True")]
    attr_txt = "".join(f"\n   {k}={quoteattr(v)}" for k, v in attrs)

    def alt(tag: str, text: str) -> str:
        return (
            f'   <crs:{tag}>\n    <rdf:Alt>\n     <rdf:li xml:lang="x-default">{escape(text)}</rdf:li>\n'
            f"    </rdf:Alt>\n   </crs:{tag}>\n"
        )

    comment = "".join(f"<!-- note: {n.replace('--', '-')} -->\n" for n in notes)
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000 1.000000">\n'
        + comment
        + ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about=""\n    xmlns:crs="{CRS_NS}"{attr_txt}>\n'
        + alt("Name", name)
        + alt("ShortName", name)
        + alt("SortName", "")
        + alt("Group", "prefstyle")
        + alt("Description", desc)
        + "  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n"
    )


def parse_xmp(text: str) -> dict[str, str]:
    """The ``crs:`` attributes of a preset (``{key without prefix: text}``) plus ``Name`` and ``Description``."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text)
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    desc = root.find(f"{rdf}RDF/{rdf}Description")
    if desc is None:
        raise ValueError("no rdf:Description")
    out = {k[len(CRS_NS) + 2 :]: v for k, v in desc.attrib.items() if k.startswith("{" + CRS_NS + "}")}
    for tag in ("Name", "Description"):
        li = desc.find(f"{{{CRS_NS}}}{tag}/{rdf}Alt/{rdf}li")
        if li is not None:
            out[tag] = li.text or ""
    return out
