"""The taste as sliders on "your style", and a participant's nudges of them (server side, no torch).

A render worker writes ``v<N>/sliders.json`` beside the style (:func:`prefstyle.app.personal.slider_table`):
the ten basic sliders of a raw editor in the units a photographer reads (exposure in EV, the others on
Lightroom's scale, as the XMP preset writes them), with the learned values when the model's taste is a
slider edit (``absolute``: the model's ``slider_edit``) or 0 when it is not (then the sliders are
adjustments on top of the learned look). This module reads that table, checks the values a
participant sends (query parameters named after the sliders) and names the folder their rendering
lives in (``v<N>/nudge-<key>/``), without importing torch or any image code.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from prefstyle.app.flow import FlowError

if TYPE_CHECKING:
    from prefstyle.app.db import Database
    from prefstyle.app.models import Participant
    from prefstyle.app.render import RenderQueue
    from prefstyle.app.state import LoadedStudy

TABLE_FILE = "sliders.json"
#: query parameters that are not sliders (ignored by :func:`parse_values`)
OTHER_PARAMS = frozenset({"lut"})


@dataclass(frozen=True)
class Slider:
    """One slider as shown: ``value`` (learned, display units) within ``[lo, hi]``, moved in ``step``s;
    display value = ``scale`` x the :class:`~prefstyle.imaging.params.RetouchParams` value."""

    name: str
    label: str
    unit: str
    scale: float
    lo: float
    hi: float
    step: float
    value: float
    minus: str = ""
    plus: str = ""

    @property
    def digits(self) -> int:
        return max(0, -math.floor(math.log10(self.step) + 1e-9))

    def show(self, v: float) -> str:
        """``+0.35 EV`` / ``+12``: the value as the page writes it."""
        text = f"{v:+.{self.digits}f}"
        if float(text) == 0:
            text = f"{0:.{self.digits}f}"
        return text + (f" {self.unit}" if self.unit == "EV" else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "unit": self.unit,
            "scale": self.scale,
            "min": self.lo,
            "max": self.hi,
            "step": self.step,
            "value": self.value,
            "minus": self.minus,
            "plus": self.plus,
        }


@dataclass(frozen=True)
class SliderTable:
    """What ``sliders.json`` holds: the sliders, whether their values are the taste itself
    (``absolute``) or adjustments on top of it, and the adaptive-brightness gain (or None)."""

    sliders: tuple[Slider, ...]
    absolute: bool
    gain: float | None = None
    #: caveats of a preset of these sliders (the model's ``preset_notes``: how close they are to the taste)
    notes: tuple[str, ...] = ()

    def by_name(self) -> dict[str, Slider]:
        return {s.name: s for s in self.sliders}

    def learned(self) -> dict[str, float]:
        return {s.name: s.value for s in self.sliders}

    def to_json(self) -> dict[str, Any]:
        return {
            "absolute": self.absolute,
            "gain": self.gain,
            "notes": list(self.notes),
            "controls": [s.to_json() for s in self.sliders],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SliderTable:
        sliders = tuple(
            Slider(
                name=str(d["name"]),
                label=str(d["label"]),
                unit=str(d.get("unit", "")),
                scale=float(d["scale"]),
                lo=float(d["min"]),
                hi=float(d["max"]),
                step=float(d["step"]),
                value=float(d["value"]),
                minus=str(d.get("minus", "")),
                plus=str(d.get("plus", "")),
            )
            for d in doc["controls"]
        )
        gain = doc.get("gain")
        notes = tuple(str(n) for n in doc.get("notes") or ())
        return cls(sliders, bool(doc["absolute"]), None if gain is None else float(gain), notes)


def read_table(folder: Path) -> SliderTable | None:
    """The slider table of a rendered style version (None for a version rendered without one)."""
    path = folder / TABLE_FILE
    if not path.is_file():
        return None
    try:
        return SliderTable.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError):
        return None


def parse_values(table: SliderTable, params: Mapping[str, str]) -> dict[str, float]:
    """The slider values a request asks for (display units), the learned ones for sliders it leaves
    out. A given value is rounded to its slider's step, and one within half a step of the learned
    value is the learned value (a browser's range input snaps to its steps).

    Raises :class:`FlowError` (400) naming the slider for an unknown slider, a value that is not a
    finite number, or one outside the slider's range.
    """
    known = table.by_name()
    values = table.learned()
    for name, text in params.items():
        if name in OTHER_PARAMS:
            continue
        s = known.get(name)
        if s is None:
            raise FlowError(400, f"{name}: there is no such slider (known: {', '.join(known)})")
        try:
            v = float(text)
        except (TypeError, ValueError):
            raise FlowError(400, f"{name}: {text!r} is not a number") from None
        if not math.isfinite(v):
            raise FlowError(400, f"{name}: {text!r} is not a finite number")
        if not s.lo - 1e-9 <= v <= s.hi + 1e-9:
            raise FlowError(400, f"{name}: {v:g} is outside the slider's range [{s.lo:g}, {s.hi:g}]")
        if abs(v - s.value) >= s.step / 2:
            values[name] = round(round(v / s.step) * s.step, 6)
    return values


def is_learned(table: SliderTable, values: Mapping[str, float]) -> bool:
    """True when ``values`` are the learned ones (nothing nudged)."""
    return all(abs(values[s.name] - s.value) < s.step / 2 for s in table.sliders)


def nudge_key(values: Mapping[str, float]) -> str:
    """A short name for a set of slider values (the folder of their rendering)."""
    text = ",".join(f"{k}={values[k]:.6f}" for k in sorted(values))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def query(values: Mapping[str, float]) -> str:
    """``exposure=0.3&...``: the query string that asks for ``values``."""
    return urlencode({k: f"{v:g}" for k, v in values.items()})


def nudge_dir(version_folder: Path, values: Mapping[str, float]) -> Path:
    return version_folder / f"nudge-{nudge_key(values)}"


#: preset formats offered for download: format -> (file extension, the editor that opens it);
#: the same formats as :data:`prefstyle.imaging.presets.FORMATS` (a test checks), named here so
#: that the server does not import the image code
PRESETS: dict[str, tuple[str, str]] = {
    "xmp": (".xmp", "Lightroom / Camera Raw"),
    "dtstyle": (".dtstyle", "darktable"),
    "pp3": (".pp3", "RawTherapee"),
}


def downloads(sid: str, table: SliderTable, values: Mapping[str, float]) -> dict[str, str]:
    """``{"cube": url, "xmp": url, ...}`` for ``values`` (presets only for a slider taste)."""
    q = "" if is_learned(table, values) else "?" + query(values)
    out = {"cube": f"/s/{sid}/me/style.cube{q}"}
    if table.absolute:
        out.update({fmt: f"/s/{sid}/me/preset.{fmt}{q}" for fmt in PRESETS})
    return out


def nudge_status(
    db: Database,
    queue: RenderQueue,
    study: LoadedStudy,
    participant: Participant,
    values: Mapping[str, float],
    want_lut: bool = False,
) -> dict[str, Any]:
    """Where the rendering of the participant's style with the sliders at ``values`` stands,
    submitting what is missing (never waits): ``{"ready", "state", "text", "message", "values",
    "learned", "previews": [{"scene", "url"}], "downloads", "lut_ready"}``."""
    from prefstyle.app import personal, render

    status = render.style_status(db, queue, study, participant)
    if not status["style_ready"]:
        raise FlowError(409, "your style is not rendered yet: wait for it, then move the sliders")
    version = status["version"]
    result = personal.style_result(study, participant.id, version)
    table = read_table(result.folder)
    if table is None:
        raise FlowError(409, "this version of your style has no sliders; reload the page")
    vals = dict(values)
    learned = is_learned(table, vals)
    out: dict[str, Any] = {
        "values": vals,
        "learned": learned,
        "version": version,
        "downloads": downloads(study.id, table, vals),
        "message": None,
    }
    pid, states = participant.id, []
    folder = nudge_dir(result.folder, vals)
    if learned:
        out["previews"] = [{"scene": sid, "url": f"/s/{study.id}/me/file/{name}"} for sid, name in result.heldout]
    elif (folder / "done").is_file():
        out["previews"] = [
            {"scene": s.id, "url": f"/s/{study.id}/me/file/v{version}/{folder.name}/heldout-{s.id}.jpg"}
            for s in study.heldout
        ]
    else:
        out["previews"] = []
        key = (study.id, pid, "nudge", version, folder.name)
        states.append(render._try(queue, key, "build_nudge", study, pid, version, vals, group=(study.id, pid, "nudge")))
    cube = (result.folder / "style.cube") if learned else personal.nudged_lut_path(result, vals)
    out["lut_ready"] = cube.is_file()
    if want_lut and not out["lut_ready"]:
        if learned:
            states.append(render._try(queue, (study.id, pid, "lut", version), "build_lut", study, pid, version))
        else:
            key = (study.id, pid, "nudge-lut", version, folder.name)
            states.append(render._try(queue, key, "build_nudged_lut", study, pid, version, vals))
    if not states:
        out.update(ready=True, state="ready")
    elif "failed" in states:
        out.update(ready=False, state="failed", message="this could not be rendered; move a slider to try again")
    else:
        st = "rendering" if "rendering" in states else ("queued" if "queued" in states else "busy")
        out.update(ready=False, state=st)
    out["text"] = out["message"] or render.STATE_TEXT.get(out["state"], "")
    return out
