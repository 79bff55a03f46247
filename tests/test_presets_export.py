"""Editor presets (imaging/presets, `prefstyle export-preset`): the files' structure and numbers.

The real programs (RawTherapee, darktable) render the presets in the `slow` tests at the end,
when they are installed.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from prefstyle.errors import PrefstyleError
from prefstyle.imaging import ops
from prefstyle.imaging.params import RetouchParams
from prefstyle.imaging.pipeline import apply_retouch
from prefstyle.imaging.presets import FORMATS, dtstyle, gain_note, pp3, preset_text, xmp
from prefstyle.models.base import Profile

TASTE = RetouchParams(
    temperature=0.3,
    tint=-0.2,
    exposure=0.45,
    contrast=0.25,
    highlights=-0.3,
    shadows=0.2,
    whites=0.1,
    blacks=-0.15,
    vibrance=0.2,
    saturation=-0.1,
)


def _profile(params: RetouchParams, gain: float = 0.0) -> Profile:
    return Profile(
        model="sliders",
        user="ana",
        model_config={"source": "sliders"},
        tensors={"vectors": params.to_vector()[None], "gains": torch.tensor([gain]), "weights": torch.ones(1)},
    )


def test_xmp_preset_parses_with_every_slider_in_adobe_ranges():
    text, notes = preset_text("xmp", TASTE, 0.6, "ana")
    crs = xmp.parse_xmp(text)
    assert crs["PresetType"] == "Normal" and crs["Name"] == "ana" and crs["HasSettings"] == "True"
    assert float(crs["Exposure2012"]) == pytest.approx(0.45)
    assert int(crs["IncrementalTemperature"]) > 0 and int(crs["IncrementalTint"]) < 0  # warmer, greener
    assert int(crs["Highlights2012"]) == -30 and int(crs["Shadows2012"]) == 20 and int(crs["Blacks2012"]) == -15
    for key, _scale, limit in xmp.SCALES.values():
        assert abs(float(crs[key])) <= limit
    # the adaptive brightness cannot be a setting: it is the description and a comment
    assert "60 % adaptive" in crs["Description"] and "60 % adaptive" in notes[0] and "<!-- note:" in text
    extreme = xmp.crs_settings(RetouchParams(exposure=3.0, contrast=1.0, temperature=-1.0))
    assert extreme["Exposure2012"] == "+3.00" and extreme["Contrast2012"] == "+100"


def test_dtstyle_blobs_decode_back_to_the_numbers_written():
    text, _ = preset_text("dtstyle", TASTE, 0.0, "ana")
    root = ET.fromstring(text)
    assert root.tag == "darktable_style" and root.findtext("info/name") == "ana"
    ops_written = [p.findtext("operation") for p in root.iter("plugin")]
    assert ops_written == ["channelmixerrgb", "exposure", "colorbalancergb", "rgbcurve"]  # darktable's order
    for plugin in root.iter("plugin"):
        op = plugin.findtext("operation")
        assert len(bytes.fromhex(plugin.findtext("op_params"))) == dtstyle.MODULES[op][1]
        assert int(plugin.findtext("module")) == dtstyle.MODULES[op][0]
    mods = dtstyle.parse_dtstyle(text)
    assert mods["exposure"]["exposure"] == pytest.approx(0.45) and mods["exposure"]["mode"] == 0
    assert mods["exposure"]["black"] == 0
    cb = mods["colorbalancergb"]
    assert cb["vibrance"] > 0 and cb["chroma_global"] < 0 and cb["contrast"] == 0
    assert cb["grey_fulcrum"] == pytest.approx(0.1845) and cb["saturation_formula"] == 1
    # the tone sliders: one monotone curve in linear light, the same for R, G and B
    rc = mods["rgbcurve"]
    n = dtstyle.RGBCURVE_NODES
    assert [rc[f"curve_num_nodes[{c}]"] for c in range(3)] == [n] * 3 and rc["preserve_colors"] == 0
    nodes = [(rc[f"curve_nodes[0][{i}].x"], rc[f"curve_nodes[0][{i}].y"]) for i in range(n)]
    assert nodes == [(rc[f"curve_nodes[2][{i}].x"], rc[f"curve_nodes[2][{i}].y"]) for i in range(n)]
    xs, ys = torch.tensor(nodes, dtype=torch.float64).T
    assert xs[0] == 0 and xs[-1] == pytest.approx(1) and bool((xs.diff() > 0).all()) and bool((ys.diff() >= 0).all())
    tone = RetouchParams(contrast=0.25, highlights=-0.3, shadows=0.2, whites=0.1, blacks=-0.15)
    enc = ops.linear_to_srgb(xs.float()).clamp(0, 1)
    want = apply_retouch(enc.reshape(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous(), tone, method="exact")[0, 0, 0]
    torch.testing.assert_close(ops.linear_to_srgb(ys.float()), want, atol=2e-4, rtol=0)
    m = dtstyle.wb_matrix_rec2020(0.3, -0.2)
    got = np.array([[mods["channelmixerrgb"][f"{row}[{i}]"] for i in range(3)] for row in ("red", "green", "blue")])
    np.testing.assert_allclose(got, m, atol=1e-6)
    assert mods["channelmixerrgb"]["adaptation"] == 4 and mods["channelmixerrgb"]["illuminant"] == 0
    # the identity taste changes no module
    assert dtstyle.parse_dtstyle(preset_text("dtstyle", RetouchParams(), 0.0, "id")[0]) == {}


def test_darktable_white_balance_matrix_is_prefstyles_white_balance():
    """The channel mixer's Rec.2020 matrix does, on linear colours, what prefstyle's white balance does."""
    rng = np.random.default_rng(0)
    srgb = torch.from_numpy(rng.uniform(0.05, 0.6, size=(1, 3, 4, 4))).float()
    want = ops.white_balance(srgb, 0.5, 0.3)
    lin = ops.srgb_to_linear(srgb).permute(0, 2, 3, 1).double().numpy()
    t = dtstyle._SRGB_TO_REC2020
    rec = lin @ t.T
    rec2 = rec @ dtstyle.wb_matrix_rec2020(0.5, 0.3).T
    back = torch.from_numpy(rec2 @ np.linalg.inv(t).T).permute(0, 3, 1, 2).float()
    got = ops.linear_to_srgb(back).clamp(0, 1)
    torch.testing.assert_close(got, want, atol=2e-4, rtol=0)


def test_pp3_profile_holds_exposure_white_balance_and_the_tone_curve():
    text, _ = preset_text("pp3", TASTE, 0.6, "ana")
    assert text.startswith("# ana:") and "# note: prefstyle sets the brightness per photo" in text
    pp = pp3.parse_pp3(text)
    assert float(pp["Exposure"]["Compensation"]) == pytest.approx(0.45)
    # white balance: prefstyle's own gains as the channel mixer's diagonal (tenths of a percent), relative
    assert "White Balance" not in pp and pp["Color Management"]["WorkingProfile"] == "sRGB"
    mix = {row: [int(v) for v in pp["Channel Mixer"][row].rstrip(";").split(";")] for row in ("Red", "Green", "Blue")}
    want = [round(1000 * g) for g in pp3.wb_gains(0.3, -0.2)]
    assert [mix["Red"][0], mix["Green"][1], mix["Blue"][2]] == want and pp["Channel Mixer"]["Enabled"] == "true"
    assert want[0] > 1000 > want[2]  # warmer: red up, blue down
    assert want[1] > round(1000 * pp3.wb_gains(0.3, 0.0)[1])  # greener than without the tint
    assert mix["Red"][1:] == [0, 0] and mix["Green"][0] == mix["Green"][2] == 0
    assert pp["Vibrance"]["Enabled"] == "true" and int(pp["Vibrance"]["Pastels"]) > 0
    assert int(pp["Luminance Curve"]["Chromaticity"]) < 0 and int(pp["Exposure"]["Saturation"]) == 0
    vals = [float(v) for v in pp["Exposure"]["Curve"].rstrip(";").split(";")]
    assert vals[0] == 4 and len(vals) == 1 + 2 * pp3.TONE_CURVE_POINTS
    xs, ys = np.array(vals[1::2]), np.array(vals[2::2])
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) >= 0) and xs[0] == 0 and xs[-1] == 1
    tone = RetouchParams(contrast=0.25, highlights=-0.3, shadows=0.2, whites=0.1, blacks=-0.15)
    ramp = torch.tensor(xs, dtype=torch.float32).reshape(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous()
    want = apply_retouch(ramp, tone, method="exact")[0, 0, 0].numpy()
    np.testing.assert_allclose(ys, want, atol=1e-4)
    # neutral tone sliders: no curve
    assert pp3.parse_pp3(pp3.render_pp3(RetouchParams(exposure=1.0), 0.0, "e"))["Exposure"]["Curve"] == "0;"


def test_gain_note_only_for_adaptive_tastes():
    assert gain_note(0.0, "x") == "" and gain_note(0.04, "x") == ""
    assert "35 % adaptive" in gain_note(0.35, "darktable")
    with pytest.raises(ValueError, match="gain"):
        preset_text("pp3", TASTE, 1.5, "x")
    with pytest.raises(ValueError, match="unknown preset format"):
        preset_text("lrtemplate", TASTE, 0.0, "x")


def test_slider_edit_of_a_sliders_profile_and_of_other_models():
    from prefstyle.models.base import create_model
    from prefstyle.models.slider_taste import SliderTasteModel

    m = SliderTasteModel(particles=8)
    params, gain = m.slider_edit(_profile(TASTE, 0.4))
    assert gain == pytest.approx(0.4)
    for name in ("temperature", "exposure", "contrast", "saturation"):
        assert getattr(params, name) == pytest.approx(getattr(TASTE, name), abs=1e-6)
    # a posterior of two particles: the weighted mean of their sliders
    two = Profile(
        model="sliders",
        tensors={
            "vectors": torch.stack([RetouchParams(exposure=1.0).to_vector(), RetouchParams(exposure=-0.2).to_vector()]),
            "gains": torch.tensor([1.0, 0.0]),
            "weights": torch.tensor([0.25, 0.75]),
        },
    )
    p2, g2 = m.slider_edit(two)
    assert p2.exposure == pytest.approx(0.1) and g2 == pytest.approx(0.25)
    assert create_model("identity").slider_edit(Profile(model="identity")) is None


def _cli(args):
    from prefstyle.cli import app

    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_preset_cli_writes_refuses_to_overwrite_and_forces(tmp_path, fmt):
    prof = _profile(TASTE, 0.5).save(tmp_path / "ana.json")
    out = tmp_path / "presets" / f"ana{FORMATS[fmt]}"
    r = _cli(["export-preset", "--profile", str(prof), "--format", fmt, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file() and "50 % adaptive" in r.output and "exposure +0.45" in r.output
    first = out.read_text()
    r = _cli(["export-preset", "--profile", str(prof), "--format", fmt, "--out", str(out)])
    assert isinstance(r.exception, PrefstyleError) and "--force" in str(r.exception)
    prof2 = _profile(TASTE.replace(exposure=-0.5), 0.5).save(tmp_path / "bo.json")
    r = _cli(["export-preset", "--profile", str(prof2), "--format", fmt, "--out", str(out), "--force"])
    assert r.exit_code == 0, r.output
    assert out.read_text() != first
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_export_preset_cli_errors_are_one_line(tmp_path):
    prof = _profile(TASTE).save(tmp_path / "ana.json")
    r = _cli(["export-preset", "--profile", str(prof), "--format", "pp3", "--out", str(tmp_path / "x.xmp")])
    assert isinstance(r.exception, PrefstyleError) and ".pp3 file" in str(r.exception)
    r = _cli(["export-preset", "--profile", str(prof), "--format", "cube", "--out", str(tmp_path / "x.cube")])
    assert isinstance(r.exception, PrefstyleError) and "unknown preset format" in str(r.exception)
    ident = Profile(model="identity").save(tmp_path / "id.json")
    r = _cli(["export-preset", "--profile", str(ident), "--format", "xmp", "--out", str(tmp_path / "id.xmp")])
    assert isinstance(r.exception, PrefstyleError)
    msg = str(r.exception)
    assert "not a slider edit" in msg and "export-lut" in msg and "\n" not in msg
    assert not (tmp_path / "id.xmp").exists()


# -- the real programs ------------------------------------------------------------------------


def _need(program: str) -> None:
    from prefstyle.imaging.presets.programs import available

    if available()[program] is None:
        pytest.skip(f"{program} is not installed (Debian package '{program}')")


def _photo(tmp_path, astronaut):
    from prefstyle.imaging.io import write_image

    path = tmp_path / "astronaut.png"
    write_image(path, astronaut[0] if astronaut.ndim == 4 else astronaut, bit_depth=16)
    return path


def _de(a, b):
    from prefstyle.imaging.color import delta_e_2000, rgb_to_lab

    return float(delta_e_2000(rgb_to_lab(a.clamp(0, 1)), rgb_to_lab(b.clamp(0, 1))).mean())


@pytest.mark.slow
@pytest.mark.parametrize("program", ["rawtherapee", "darktable"])
def test_real_editor_renders_the_preset_close_to_prefstyle(tmp_path, astronaut_small, program):
    """With the identity taste the editor leaves the photo unchanged; with a slider taste its
    rendering is within about 1 ΔE00 of prefstyle's (the edit itself is 7.4); exposure is exact.
    (Measured: RawTherapee 0.007 / 0.87 / 0.18, darktable 0.0007 / 0.34 / 0.002.)"""
    from prefstyle.imaging.io import read_image
    from prefstyle.imaging.presets.programs import render_darktable, render_rawtherapee

    _need(program)
    path = _photo(tmp_path, astronaut_small)
    x = read_image(path).pixels[None]

    def run(params):
        if program == "rawtherapee":
            return render_rawtherapee(path, pp3.render_pp3(params, 0.0, "t"))
        return render_darktable(path, dtstyle.render_darktable_xmp(params))

    assert _de(run(RetouchParams()), x) < 0.1
    taste = RetouchParams(temperature=0.4, exposure=0.5, contrast=0.2, shadows=0.2, vibrance=0.2)
    ours = apply_retouch(x, taste, method="exact")
    theirs = run(taste)
    assert theirs.shape == ours.shape and _de(x, ours) > 5.0
    assert _de(theirs, ours) < 1.5
    e = RetouchParams(exposure=0.5)
    assert _de(run(e), apply_retouch(x, e, method="exact")) < 0.5
    assert not math.isnan(_de(theirs, ours))


@pytest.mark.slow
def test_darktable_imports_the_dtstyle_file_and_applies_it(tmp_path, astronaut_small):
    """The .dtstyle itself, imported by darktable and applied with darktable-cli --style: its
    white balance (channel mixer, after the input profile in any module order) is exact."""
    from prefstyle.imaging.io import read_image
    from prefstyle.imaging.presets.programs import render_darktable_style

    _need("darktable")
    path = _photo(tmp_path, astronaut_small)
    x = read_image(path).pixels[None]
    wb = RetouchParams(temperature=0.4, tint=0.2)
    theirs = render_darktable_style(path, preset_text("dtstyle", wb, 0.0, "wb")[0], "wb")
    ours = apply_retouch(x, wb, method="exact")
    assert _de(x, ours) > 2.0 and _de(theirs, ours) < 0.1
