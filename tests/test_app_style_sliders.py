"""The taste as sliders on "your style": values with units, nudging them (preview and downloads), bad values."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from app.helpers import answer_n, client_for, folder_study, join, open_state, wait_style

SID = "n"


@pytest.fixture(scope="module")
def sliders_state(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sliders")
    st = open_state(tmp, folder_study(tmp, sid=SID, main=8, consistency=2, style_after=4, heldout=1, model="sliders"))
    yield st
    st.db.dispose()


def _ready_participant(state, person: str):
    c = client_for(state)
    join(c, SID, person=person)
    answer_n(c, SID, 5)
    wait_style(c, SID)
    return c


def _learned_edit(c):
    """The learned slider edit of the participant's downloaded profile (as the model gives it)."""
    import tempfile
    from pathlib import Path

    from prefstyle.models import create_model
    from prefstyle.models.base import Profile

    z = zipfile.ZipFile(io.BytesIO(c.get(f"/s/{SID}/me/profile.zip").content))
    with tempfile.TemporaryDirectory() as d:
        z.extractall(d)
        prof = Profile.load(Path(d) / "profile.json")
    return create_model("sliders").slider_edit(prof)


def _nudge(c, query: str, timeout: float = 60) -> dict:
    t0 = time.monotonic()
    while True:
        r = c.get(f"/s/{SID}/api/nudge?{query}")
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["state"] != "failed", d
        if d["ready"]:
            return d
        assert time.monotonic() - t0 < timeout, d
        time.sleep(0.05)


def _mean(c, url: str) -> float:
    from PIL import Image

    r = c.get(url)
    assert r.status_code == 200
    return float(np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), dtype=np.float64).mean())


def test_the_style_page_shows_the_learned_sliders_with_units(sliders_state):
    c = _ready_participant(sliders_state, "Sam")
    page = c.get(f"/s/{SID}/style").text
    assert 'id="sliders"' in page and "Your taste as sliders" in page
    params, _gain = _learned_edit(c)
    for name in ("temperature", "tint", "exposure", "contrast", "highlights", "shadows", "vibrance", "saturation"):
        assert f'id="sl-{name}"' in page
    # exposure in EV, the others on Lightroom's scale (x100, white balance x50), as the XMP preset writes them
    exp = f"{params.exposure:+.2f}" if round(params.exposure, 2) != 0 else "0.00"
    assert f'<output id="out-exposure" for="sl-exposure">{exp} EV</output>' in page
    sat = round(params.saturation * 100)
    assert f'<output id="out-saturation" for="sl-saturation">{sat:+d}' in page or sat == 0
    assert "EV (stops)" in page and "Lightroom units" in page
    # the presets are offered beside the .cube and the profile
    for fmt in ("xmp", "dtstyle", "pp3"):
        assert f'id="dl-{fmt}" href="/s/{SID}/me/preset.{fmt}"' in page
    xmp = c.get(f"/s/{SID}/me/preset.xmp")
    assert xmp.status_code == 200 and "prefstyle-n.xmp" in xmp.headers["content-disposition"]
    from prefstyle.imaging.presets.xmp import parse_xmp

    assert float(parse_xmp(xmp.text)["Exposure2012"]) == pytest.approx(params.exposure, abs=0.006)
    for fmt in ("dtstyle", "pp3"):
        assert c.get(f"/s/{SID}/me/preset.{fmt}").status_code == 200


def test_a_nudge_changes_the_preview_and_the_downloads(sliders_state):
    from prefstyle.imaging.lut_io import parse_cube
    from prefstyle.imaging.presets.xmp import parse_xmp

    c = _ready_participant(sliders_state, "Nia")
    params, _ = _learned_edit(c)
    learned = c.get(f"/s/{SID}/api/nudge").json()
    assert learned["ready"] and learned["learned"] and "?" not in learned["downloads"]["cube"]
    brighter = min(3.0, round(round((params.exposure + 1.0) / 0.05) * 0.05, 2))  # on the slider's 0.05 EV steps
    d = _nudge(c, f"exposure={brighter}")
    assert not d["learned"] and d["values"]["exposure"] == pytest.approx(brighter)
    assert d["previews"][0]["url"] != learned["previews"][0]["url"]
    assert _mean(c, d["previews"][0]["url"]) > _mean(c, learned["previews"][0]["url"]) + 3
    # the presets hold the nudged value; the others stay learned
    url = d["downloads"]["xmp"]
    assert url == f"/s/{SID}/me/preset.xmp?" + "&".join(f"{k}={v:g}" for k, v in d["values"].items())
    nudged = parse_xmp(c.get(url).text)
    base = parse_xmp(c.get(f"/s/{SID}/me/preset.xmp").text)
    assert float(nudged["Exposure2012"]) == pytest.approx(brighter, abs=0.006)
    assert float(base["Exposure2012"]) == pytest.approx(params.exposure, abs=0.006)
    assert nudged["Contrast2012"] == base["Contrast2012"] and nudged["Saturation"] == base["Saturation"]
    # the .cube too: prepared in the background (a page that says so), then brighter than the learned one
    r = c.get(d["downloads"]["cube"])
    if r.status_code == 202:
        assert "Preparing your adjusted .cube LUT" in r.text and "api/nudge?" in r.text
        _nudge(c, f"exposure={brighter}&lut=1")
        r = c.get(d["downloads"]["cube"])
    assert r.status_code == 200 and "adjusted" in r.headers["content-disposition"]
    wait_style(c, SID, lut=True)
    plain = parse_cube(c.get(f"/s/{SID}/me/style.cube").text).lut3d
    moved = parse_cube(r.text).lut3d
    assert moved.shape == plain.shape and float(moved.mean()) > float(plain.mean()) + 0.03


@pytest.mark.parametrize(
    "query",
    ["exposure=abc", "exposure=99", "exposure=nan", "exposure=inf", "temperature=-1000", "sharpness=5", "exposure="],
)
def test_bad_nudge_values_are_refused(sliders_state, query):
    c = _ready_participant(sliders_state, f"Bad{abs(hash(query)) % 10**6}")
    r = c.get(f"/s/{SID}/api/nudge?{query}")
    assert r.status_code == 400 and r.json()["error"]
    assert c.get(f"/s/{SID}/me/preset.xmp?{query}").status_code == 400
    assert c.get(f"/s/{SID}/me/style.cube?{query}").status_code == 400


def test_unknown_preset_format_and_nudging_before_the_style(sliders_state):
    c = client_for(sliders_state)
    join(c, SID, person="Early")
    answer_n(c, SID, 1)
    assert c.get(f"/s/{SID}/api/nudge?exposure=1").status_code == 409
    assert c.get(f"/s/{SID}/me/preset.exe").status_code == 404


def test_a_look_taste_gets_its_closest_sliders_and_presets_with_a_note(tmp_path):
    """`looks` (the default model) is a colour look: the page shows the closest slider edit, offers
    presets of it with a note on how close they are, and the .cube holds the look itself."""
    st = open_state(tmp_path, folder_study(tmp_path, sid=SID, main=8, consistency=2, heldout=1, model="looks"))
    try:
        c = _ready_participant(st, "Lou")
        page = c.get(f"/s/{SID}/style").text
        assert "Your look as sliders" in page and 'id="dl-xmp"' in page and 'id="no-presets"' not in page
        assert 'class="muted small preset-note">Note: a preset holds the slider edit closest to this look' in page
        learned = c.get(f"/s/{SID}/api/nudge").json()
        assert set(learned["downloads"]) == {"cube", "xmp", "dtstyle", "pp3"}
        d = _nudge(c, "exposure=-1")
        assert _mean(c, d["previews"][0]["url"]) < _mean(c, learned["previews"][0]["url"]) - 3
        xmp = c.get(f"/s/{SID}/me/preset.xmp")
        assert xmp.status_code == 200 and "Exposure" in xmp.text
    finally:
        st.db.dispose()


def test_preset_formats_named_by_the_server_are_the_writers():
    from prefstyle.app.nudge import PRESETS
    from prefstyle.imaging.presets import FORMATS

    assert {k: v[0] for k, v in PRESETS.items()} == FORMATS


def test_the_slider_table_and_nudges_need_no_torch_in_the_server():
    code = (
        "import sys, json; from prefstyle.app import nudge, routes_participant;"
        "t = nudge.SliderTable.from_json(json.loads(sys.argv[1]));"
        "v = nudge.parse_values(t, {'exposure': '0.52'}); print(v['exposure'], nudge.is_learned(t, v));"
        "print('torch' in sys.modules)"
    )
    table = {
        "absolute": True,
        "gain": 0.5,
        "controls": [{"name": "exposure", "label": "Exposure", "unit": "EV", "scale": 1, "min": -3, "max": 3,
                     "step": 0.05, "value": 0.31}],
    }  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, json.dumps(table)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0.5", "False", "False"]
