"""``prefstyle enhance`` without torch for LUT profiles (:mod:`prefstyle.models.lut_forms`,
:mod:`prefstyle.imaging.lut_np`, :func:`prefstyle.cli.batch_io.enhance_file_torch_free`).

The numpy mirrors against the torch functions they copy (metered EV, the profile's per-photo
LUT to 1e-5, the constants they share), the files written against the torch path
(``--model looks`` forces it) on an 8-bit JPEG with an EXIF orientation, an Adobe RGB JPEG
(converted on reading), a PNG and a 16-bit PNG (handed to the torch path), the profile checks,
and, in a fresh process, that the torch-free path never imports torch.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from prefstyle.cli import main
from prefstyle.errors import PrefstyleError
from prefstyle.imaging import lut_np
from prefstyle.imaging.decode import rgb8_to_float
from prefstyle.imaging.io import srgb_icc_profile, write_image
from prefstyle.imaging.lut import identity_lut
from prefstyle.models.base import Profile
from prefstyle.models.lut_forms import torch_free_lut_profile
from prefstyle.models.render import _metering_view
from test_enhance_fast_path import _adobe_icc, _exif

pytestmark = pytest.mark.usefixtures("one_thread")


def _look(size: int = 17) -> torch.Tensor:
    """A smooth non-trivial look (warmer shadows, a little more contrast), ``(3,S,S,S)``."""
    ident = identity_lut(size)
    return (ident + 0.06 * torch.sin(3.0 * ident.flip(0)) - 0.03 * torch.cos(2.0 * ident)).clamp(-0.05, 1.05)


def _save_profile(path, gain=0.7, meter="mean", lut=None, **config):
    cfg = {"name": "looks", "meter": "mean", "lut_size": 33, "source": "looks", **config}
    prof = Profile(
        model="looks",
        user="t",
        model_config=cfg,
        tensors={"lut": _look() if lut is None else lut},
        data={"gain": gain, "meter": meter},
    )
    return prof.save(path)


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    img = np.stack([0.15 + 0.7 * xx, 0.1 + 0.5 * yy, 0.45 + 0.4 * np.sin(5 * xx * yy)], -1)
    return (np.clip(img + 0.03 * g.standard_normal((h, w, 3)), 0, 1) * 255).round().astype(np.uint8)


def test_shared_constants_agree():
    from prefstyle.imaging.color import REC709_LUMA
    from prefstyle.models import lut_forms
    from prefstyle.models.base import PROFILE_FORMAT, PROFILE_VERSION
    from prefstyle.models.loading import assets_dir
    from prefstyle.models.slider_taste import _METER_SIDE, MAX_ADAPT_EV, MID_GREY

    assert (lut_np.METER_SIDE, lut_np.MID_GREY, lut_np.MAX_ADAPT_EV) == (_METER_SIDE, MID_GREY, MAX_ADAPT_EV)
    assert tuple(float(v) for v in lut_np._LUMA) == pytest.approx(REC709_LUMA, abs=1e-7)
    assert assets_dir() == lut_forms._ASSETS
    assert (lut_forms._FORMAT, lut_forms._VERSION) == (PROFILE_FORMAT, PROFILE_VERSION)


@pytest.mark.parametrize("shape", [(3000, 4000), (825, 1100), (120, 90), (1001, 1300)])
@pytest.mark.parametrize("meter", ["mean", "log_mean"])
def test_metered_ev_matches_the_model(shape, meter):
    from prefstyle.models.slider_taste import metered_ev

    u8 = (np.random.default_rng(1).random((*shape, 3)) ** 2 * 255).astype(np.uint8)
    want = float(metered_ev(rgb8_to_float(_metering_view(u8, True))[None], meter)[0])
    assert lut_np.metered_ev(u8, meter) == pytest.approx(want, abs=2e-6)


def test_metering_table_is_the_curve_on_every_8_bit_code():
    codes = np.arange(256, dtype=np.uint8)
    want = lut_np.srgb_to_linear(np.multiply(codes, np.float32(1.0 / 255.0), dtype=np.float32))
    assert np.array_equal(lut_np._u8_to_linear(), want) and lut_np._u8_to_linear().dtype == np.float32


@pytest.fixture(scope="module")
def looks_model():
    from prefstyle.models import load

    return load("looks")


def test_lut_matches_the_model(tmp_path, looks_model):
    from prefstyle.imaging.decode import ImageData
    from prefstyle.models.render import photo_lut

    path = _save_profile(tmp_path / "p.json", gain=0.8)
    form = torch_free_lut_profile(path)
    assert form is not None and form.lut_size == looks_model.lut_size
    prof = Profile.load(path)
    for ev in (0.0, 0.4567, -1.3, 3.0, -3.0):
        diff = np.abs(form.lut(ev) - looks_model.lut(prof, ev).numpy()).max()
        assert diff < 1e-5, (ev, diff)
    u8 = _photo(600, 900, 2)
    for strength in (1.0, 0.6):
        want = photo_lut(looks_model, prof, ImageData(rgb8=u8), strength).numpy()
        assert np.abs(form.photo_lut(u8, strength) - want).max() < 1e-5


def test_form_is_only_taken_for_looks_profiles_without_an_override(tmp_path):
    path = _save_profile(tmp_path / "p.json")
    assert torch_free_lut_profile(path, model="looks") is None  # --model given: today's path
    other = Profile(model="sliders", tensors={"lut": _look()}, data={"gain": 0.5}).save(tmp_path / "s.json")
    assert torch_free_lut_profile(other) is None
    elsewhere = _save_profile(tmp_path / "q.json", source=str(tmp_path / "nowhere"))
    assert torch_free_lut_profile(elsewhere) is None
    (tmp_path / "p.safetensors").unlink()  # the torch reader says what is missing
    assert torch_free_lut_profile(path) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gain": 1.5}, "gain must be in [0, 1]"),
        ({"meter": "spot"}, "meter must be"),
        ({"lut": torch.full((3, 5, 5, 5), 9.0)}, "out-of-range"),
        ({"lut": torch.zeros(3, 5, 4, 5)}, "no (3,S,S,S) LUT"),
    ],
)
def test_bad_profiles_are_one_line_errors_naming_the_file(tmp_path, looks_model, kwargs, message):
    path = _save_profile(tmp_path / "bad.json", **kwargs)
    with pytest.raises(PrefstyleError) as e:
        torch_free_lut_profile(path)
    assert message in str(e.value) and e.value.path == str(path) and "\n" not in str(e.value)
    with pytest.raises(PrefstyleError) as t:  # the model's own check says the same
        looks_model.check_profile(Profile.load(path))
    assert str(e.value) == f"{path}: {t.value}"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("in")
    exif = _exif(6)  # stored sideways: read upright as 700 x 1000
    Image.fromarray(_photo(700, 1000, 0)).save(d / "a.jpg", quality=92, exif=exif, icc_profile=srgb_icc_profile())
    write_image(d / "b.jpg", torch.from_numpy(_photo(640, 960, 1)).permute(2, 0, 1).float() / 255, icc=_adobe_icc())
    Image.fromarray(_photo(300, 410, 2)).save(d / "c.png")
    write_image(d / "d.png", torch.from_numpy(_photo(200, 260, 3)).permute(2, 0, 1).float() / 255, bit_depth=16)
    return d


def assert_outputs_match_the_torch_path(tmp_path, photos, profile, model: str, png_changed: float = 1e-4) -> None:
    """``enhance`` of ``photos`` with ``profile`` on the torch-free path and on the torch path (``--model``)
    write the same files: size, mode, ICC profile and EXIF equal; PNG pixels at most one level apart
    (on at most a ``png_changed`` share of the values), JPEG pixels 0.01 level apart on average."""
    free, ref = tmp_path / "free", tmp_path / "torch"
    assert main(["enhance", str(photos), "--profile", str(profile), "--out", str(free), "--strength", "0.8"]) == 0
    args = ["enhance", str(photos), "--profile", str(profile), "--out", str(ref), "--strength", "0.8"]
    assert main([*args, "--model", model]) == 0
    for name in ("a.jpg", "b.jpg", "c.png", "d.png"):
        a, b = Image.open(free / name), Image.open(ref / name)
        assert a.size == b.size and a.mode == b.mode
        assert a.info.get("icc_profile") == b.info.get("icc_profile") and a.getexif() == b.getexif()
        diff = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
        if name.endswith(".png"):
            assert diff.max() <= 1, name  # the LUTs agree to float32 rounding
            assert (diff > 0).mean() < png_changed, name
        else:  # a pixel one level off before encoding moves its JPEG block a little
            assert diff.mean() < 0.01, name
    assert Image.open(free / "a.jpg").size == (700, 1000)  # EXIF orientation 6 applied


def test_outputs_match_the_torch_path(tmp_path, photos):
    assert_outputs_match_the_torch_path(tmp_path, photos, _save_profile(tmp_path / "p.json", gain=0.8), "looks")


def test_filtered_pixels_match_the_torch_path(tmp_path, photos, looks_model):
    from prefstyle.imaging.io import read_image
    from prefstyle.models.render import render_image_pil

    path = _save_profile(tmp_path / "p.json", gain=0.8)
    form, prof = torch_free_lut_profile(path), Profile.load(path)
    assert form is not None
    for name in ("a.jpg", "b.jpg", "c.png"):
        data = read_image(photos / name, keep_alpha=True)
        for strength in (1.0, 0.8):
            want = np.asarray(render_image_pil(looks_model, prof, data, strength, threads=2)).astype(int)
            got = np.asarray(lut_np.lut_filtered_image(data.rgb8, form.photo_lut(data.rgb8, strength), 2))
            diff = np.abs(got.astype(int) - want)
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-4, (name, strength)


def enhance_in_fresh_process(tmp_path, photos, profile, *extra: str) -> None:
    """``enhance`` of three 8-bit photos with ``profile`` in a new interpreter: it succeeds, writes
    them all and never imports torch."""
    (tmp_path / "in").mkdir(exist_ok=True)
    for name in ("a.jpg", "b.jpg", "c.png"):
        (tmp_path / "in" / name).write_bytes((photos / name).read_bytes())
    code = (
        "import sys\n"
        "from prefstyle.cli import main\n"
        f"rc = main(['enhance', {str(tmp_path / 'in')!r}, '--profile', {str(profile)!r}, '--out', "
        f"{str(tmp_path / 'out')!r}, *{list(extra)!r}])\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["0", "False"], res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "b.jpg", "c.png"]


def test_torch_free_path_does_not_import_torch(tmp_path, photos):
    enhance_in_fresh_process(tmp_path, photos, _save_profile(tmp_path / "p.json"), "--jobs", "2")
