"""``prefstyle export-preset`` without torch: a ``sliders`` profile (``SliderLutProfile.slider_edit``,
the numpy tone curve of the preset writers) and a ``looks`` profile (the closest slider edit of
:mod:`prefstyle.models.slider_fit_np`, which the model itself uses): the same presets and notes as
the torch path (``--model`` forces it) and, in a fresh process, no torch imported."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from prefstyle.cli import main
from prefstyle.models.lut_forms import SliderLutProfile, torch_free_lut_profile
from test_enhance_torch_free import _save_profile as _looks_profile
from test_enhance_torch_free_sliders import _save_profile as _sliders_profile

pytestmark = pytest.mark.usefixtures("one_thread")


def _floats(text: str) -> np.ndarray:
    """Every number of a preset: decimal ones, and the float32 words of darktable's hex parameters."""
    text = re.sub(r'UUID="[0-9A-F]+"', "", text)
    words = [
        np.frombuffer(bytes.fromhex(h), dtype="<f4") for h in re.findall(r"<op_params>([0-9a-f]+)</op_params>", text)
    ]
    decimal = [float(x) for x in re.findall(r"-?\d+\.\d+", re.sub(r"<op_params>[0-9a-f]+</op_params>", "", text))]
    return np.concatenate([np.asarray(decimal, dtype=np.float64), *[w.astype(np.float64) for w in words]])


def test_slider_edit_matches_the_model(tmp_path):
    from prefstyle.models import load
    from prefstyle.models.base import Profile

    path = _sliders_profile(tmp_path / "p.json")
    form = torch_free_lut_profile(path)
    assert isinstance(form, SliderLutProfile)
    got, gain = form.slider_edit()
    want, want_gain = load("sliders").slider_edit(Profile.load(path))
    assert np.allclose(got.to_list(), want.to_list(), atol=1e-6) and gain == pytest.approx(want_gain, abs=1e-6)


@pytest.mark.parametrize("fmt", ["xmp", "dtstyle", "pp3"])
def test_presets_match_the_torch_path(tmp_path, fmt):
    path = _sliders_profile(tmp_path / "p.json")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tmp_path / "a" / f"me.{fmt}", tmp_path / "b" / f"me.{fmt}"
    assert main(["export-preset", "--profile", str(path), "--format", fmt, "--out", str(a)]) == 0
    assert main(["export-preset", "--profile", str(path), "--format", fmt, "--out", str(b), "--model", "sliders"]) == 0
    ta, tb = a.read_text(), b.read_text()
    assert len(ta.splitlines()) == len(tb.splitlines())
    fa, fb = _floats(ta), _floats(tb)
    assert fa.shape == fb.shape and np.allclose(fa, fb, rtol=1e-5, atol=1e-6)  # float32 ulps at most


@pytest.mark.parametrize("fmt", ["xmp", "pp3"])
def test_looks_presets_and_notes_match_the_torch_path(tmp_path, capsys, fmt):
    path = _looks_profile(tmp_path / "p.json", gain=0.6)
    outs = []
    for sub, extra in (("a", []), ("b", ["--model", "looks"])):
        (tmp_path / sub).mkdir()
        out = tmp_path / sub / f"me.{fmt}"
        assert main(["export-preset", "--profile", str(path), "--format", fmt, "--out", str(out), *extra]) == 0
        err = capsys.readouterr().err
        outs.append((re.sub(r'UUID="[0-9A-F]+"', "", out.read_text()), err.replace(str(out), "OUT")))
    assert outs[0] == outs[1]
    assert "looks: " in outs[0][1] and "dE00 from it on average" in outs[0][1]


def test_no_torch_for_sliders_or_looks(tmp_path):
    sliders, looks = _sliders_profile(tmp_path / "s.json"), _looks_profile(tmp_path / "l.json")
    for profile, torch_expected in ((sliders, False), (looks, False)):
        out = tmp_path / f"{profile.stem}.pp3"
        code = (
            "import sys\nfrom prefstyle.cli import main\n"
            f"rc = main(['export-preset', '--profile', {str(profile)!r}, '--format', 'pp3', '--out', {str(out)!r}])\n"
            "print(rc, 'torch' in sys.modules)\n"
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert res.stdout.split() == ["0", str(torch_expected)], res.stderr
        assert out.is_file() and "preset of t written to" in res.stderr
