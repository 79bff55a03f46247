"""``prefstyle personalize`` without torch for the default model (:mod:`prefstyle.models.look_personalize_np`,
:mod:`prefstyle.imaging.color_np`).

The numpy mirrors against the torch functions they copy (CIELAB, CIEDE2000 on random colours
and Sharma's pairs, the area thumbnail, the basis look-up), the profile against
``load("looks").personalize(load_references(...))`` on a micro dataset (also for a checkpoint
whose users' own rendition looks take part), the CLI in a fresh process (no torch imported, the
same profile file), and the silent fallback to the torch path for a 16-bit image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _pps_data import make_pairs_dataset
from prefstyle.data.pairs import PairsDataset
from prefstyle.eval.protocol import load_references
from prefstyle.imaging import color_np
from prefstyle.imaging.color import delta_e_2000_values, rgb_to_lab
from prefstyle.models import look_personalize_np as lp
from test_color import _random_lab, _sharma

pytestmark = pytest.mark.usefixtures("one_thread")

USERS = ("u0", "u1", "u2", "u3")


def test_shared_constants_agree():
    from prefstyle.models import look_space, look_taste
    from prefstyle.models.base import PROFILE_FORMAT, PROFILE_VERSION
    from prefstyle.models.loading import assets_dir

    assert (lp.SAMPLE_SIDE, lp.SAMPLE_STEP) == (look_space.SAMPLE_SIDE, look_space.SAMPLE_STEP)
    assert (lp.FIT_SIDE, lp.FIT_STEP, lp.USER_STRENGTHS) == (
        look_taste.FIT_SIDE,
        look_taste.FIT_STEP,
        look_taste.USER_STRENGTHS,
    )
    assert (lp.DECISION_PARTICLES, lp.DECISION_CANDIDATES, lp.DECISION_SCENES) == (
        look_taste.DECISION_PARTICLES,
        look_taste.DECISION_CANDIDATES,
        look_taste.DECISION_SCENES,
    )
    assert assets_dir() == lp._ASSETS and (lp._FORMAT, lp._VERSION) == (PROFILE_FORMAT, PROFILE_VERSION)


def test_lab_matches_kornia():
    g = np.random.default_rng(0)
    rgb = g.random((3, 40, 50)).astype(np.float32)
    rgb[:, 0] = 0.0
    rgb[:, 1] = 1.0
    rgb[:, 2] = 0.04045  # the ends of the sRGB curve's and of CIELAB's pieces
    rgb[:, 3, :10] = np.float32(0.008856) ** (1 / 2.4)
    want = rgb_to_lab(torch.from_numpy(rgb)).numpy()
    got = color_np.rgb_to_lab(rgb)
    assert got.dtype == np.float32 and np.abs(got - want).max() < 2e-4  # L in [0, 100]: float32 rounding


def test_fast_srgb_curve_is_within_a_few_ulps_of_the_exact_one():
    """rgb_to_lab takes the sRGB curve through float32 exp2/log2: within ulps of the float64 pow rounded once."""
    from prefstyle.imaging.lut_np import srgb_to_linear

    x = np.concatenate([np.arange(256, dtype=np.float32) / np.float32(255), np.random.default_rng(2).random(10_000)])
    x = x.astype(np.float32)
    got, want = color_np._srgb_to_linear(x), srgb_to_linear(x)
    assert got.dtype == np.float32
    # 9 ulps at most over 1e6 random values on this AVX-512 machine; other SIMD paths differ a little
    assert np.all(np.abs(got - want) <= 32 * np.spacing(np.maximum(want, np.float32(1e-6))))


def test_ciede2000_matches_torch_on_random_colours_and_sharmas_pairs():
    lab1, lab2 = _random_lab((64, 64), 1, torch.float32), _random_lab((64, 64), 2, torch.float32)
    lab2[..., :8] = lab1[..., :8]  # identical colours
    lab2[:, 1:, 8:16] = 0.0  # achromatic ones
    want = delta_e_2000_values(lab1, lab2).numpy()
    got = color_np.delta_e_2000_values(lab1.numpy(), lab2.numpy())
    assert got.dtype == np.float32 and np.abs(got - want).max() < 1e-4
    s1, s2, expected = _sharma()  # (1,3,34,1) float64 images
    got = color_np.delta_e_2000_values(s1[0, :, :, 0].float().numpy(), s2[0, :, :, 0].float().numpy())
    assert np.abs(got - expected.numpy()).max() < 1e-4  # including pairs 10 and 14 (hues 180 degrees apart)
    # broadcast of one sample set against many, as the likelihood uses it
    planes, one = lab1.numpy().reshape(3, 64, 64), lab2.numpy()[:, :1]
    want = delta_e_2000_values(torch.from_numpy(planes), torch.from_numpy(one)).numpy()
    assert np.abs(color_np.delta_e_2000_values(planes, one) - want).max() < 1e-4


@pytest.mark.parametrize("hw", [(256, 256), (70, 100), (23, 40), (10, 7), (301, 257)])
def test_area_thumbnail_matches_torch(hw):
    from prefstyle.models.look_space import sample_colours

    x = np.random.default_rng(3).random((3, *hw)).astype(np.float32)
    want = F.interpolate(torch.from_numpy(x)[None], size=(24, 24), mode="area")[0].numpy()
    assert np.abs(color_np.area_downsample(x, 24, 24) - want).max() < 1e-6
    assert np.abs(color_np.area_downsample(x, 24, 24, step=4, offset=2) - want[:, 2::4, 2::4]).max() < 1e-6
    for side, step in ((24, 4), (32, 2)):
        assert (
            np.abs(lp.sample_colours(x, side, step) - sample_colours(torch.from_numpy(x), side, step).numpy()).max()
            < 1e-6
        )


@pytest.fixture(scope="module")
def space():
    path = lp.checkpoint_path("looks")
    assert path is not None
    got = lp.read_checkpoint(path)
    assert got is not None
    return got


@pytest.fixture(scope="module")
def looks_model():
    from prefstyle.models import load

    return load("looks")


def test_checkpoint_and_basis_lookup_match_the_model(space, looks_model):
    from prefstyle.models.look_space import sample_tables

    assert space.config() == looks_model.config()
    assert np.array_equal(space.basis, looks_model.basis.numpy()) and space.look_names == looks_model.look_names
    assert np.abs(space.log_prior() - looks_model.log_prior().numpy()).max() < 1e-5
    x = np.random.default_rng(4).random((3, 50)).astype(np.float32)
    x[:, :3] = [[0, 1, 0.5]] * 3  # the cube's corners and centre
    want = sample_tables(looks_model.basis, torch.from_numpy(x)).numpy()
    assert np.abs(lp.sample_tables(space.nodes, space.basis.shape[-1], x) - want).max() < 1e-6


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # 70-px scenes: thumbnail cells of unequal sizes; 12 answers per user over 6 scenes
    return make_pairs_dataset(tmp_path_factory.mktemp("pt") / "data", users=6, scenes=6, size=70, main=12, seed=3)


def _references(root, user, n=16):
    ds = PairsDataset.load(root, check_images=False, users=[user])
    js = ds.references(user, n)
    return ds, js


def _assert_same_profile(got, want):
    """The torch-free profile (``NpProfile`` or a profile file's pieces) against the model's ``Profile``."""
    gd, wd = got.data, want.data
    assert set(gd) == set(wd) and gd["gain"] == wd["gain"] and gd["meter"] == wd["meter"]
    assert (gd["n_refs"], gd["n_used"]) == (wd["n_refs"], wd["n_used"])
    assert [n for n, _ in gd["nearest_looks"]] == [n for n, _ in wd["nearest_looks"]]
    assert np.allclose([s for _, s in gd["nearest_looks"]], [s for _, s in wd["nearest_looks"]], atol=0.011)
    for key in ("expected_de00", "effective_particles"):
        assert (gd[key] is None and wd[key] is None) or gd[key] == pytest.approx(wd[key], rel=1e-3, abs=2e-3), key
    lut, ref = np.asarray(got.tensors["lut"]), want.tensors["lut"].numpy()
    assert lut.dtype == np.float32 and lut.shape == ref.shape and np.abs(lut - ref).max() < 1e-4


@pytest.mark.parametrize("user", USERS)
def test_profile_matches_the_torch_model(data, space, looks_model, user):
    ds, js = _references(data, user)
    refs = lp.load_references(ds, js)
    assert refs is not None and len(refs) == 12
    got = lp.personalize(space, refs, user=user)
    want = looks_model.personalize(load_references(ds, js), user=user)
    _assert_same_profile(got, want)
    assert got.model == want.model and got.user == want.user and got.model_config == want.model_config


def test_no_answers_and_answers_without_sources(data, space, looks_model):
    ds, js = _references(data, "u0", 0)
    assert js == []
    _assert_same_profile(lp.personalize(space, [], user="u0"), looks_model.personalize([], user="u0"))
    ds, js = _references(data, "u1", 5)
    for sc in ds.scenes.values():  # no neutral sources: nothing is evidence, the prior decides
        sc.source = None
    refs = lp.load_references(ds, js)
    assert refs is not None and all(r.source is None for r in refs)
    got = lp.personalize(space, refs, user="u1")
    assert got.data["n_used"] == 0 and got.data["expected_de00"] is None
    _assert_same_profile(got, looks_model.personalize(load_references(ds, js), user="u1"))


def test_users_own_rendition_looks_match(data, tmp_path):
    """A checkpoint with ``user_mass > 0``: each answered rendition's look is fitted (least squares)."""
    from prefstyle.models.look_taste import LookTasteModel

    base = LookTasteModel(checkpoint=lp.checkpoint_path("looks"))
    base.user_mass = 0.2
    ckpt = base.save(tmp_path / "mass.json")
    space = lp.read_checkpoint(ckpt)
    assert space is not None and space.user_mass == 0.2
    model = LookTasteModel(checkpoint=ckpt)
    for user in USERS[:2]:
        ds, js = _references(data, user)
        refs = lp.load_references(ds, js)
        assert refs is not None
        _assert_same_profile(lp.personalize(space, refs, user=user), model.personalize(load_references(ds, js), user))


def test_unusual_checkpoints_are_left_to_the_torch_loader(tmp_path):
    src = lp.checkpoint_path("looks")
    assert src is not None
    assert lp.checkpoint_path("sliders") is None and lp.checkpoint_path(str(tmp_path)) is None
    doc = json.loads(src.read_text())
    for change in ({"temperature": -1.0}, {"meter": "spot"}, {"look_names": ["one"]}, {"lut_size": "33"}):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**doc, "data": {**doc["data"], **change}}))
        shutil.copy(src.with_suffix(".safetensors"), bad.with_suffix(".safetensors"))
        assert lp.checkpoint_path(str(bad)) == bad and lp.read_checkpoint(bad) is None, change
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    bad.write_text(json.dumps(doc))
    assert lp.read_checkpoint(bad) is None


def _run_cli(args: list[str]) -> tuple[int, bool, str]:
    """``prefstyle ARGS`` in a fresh process: exit status, whether torch was imported, stderr."""
    code = f"import sys\nfrom prefstyle.cli import main\nrc = main({args!r})\nprint(rc, 'torch' in sys.modules)\n"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    rc, torch_in = res.stdout.split()[-2:]
    return int(rc), torch_in == "True", res.stderr


def _file_profile(path):
    from prefstyle.models.base import Profile

    return Profile.load(path)


def test_cli_does_not_import_torch_and_writes_the_models_profile(data, looks_model, tmp_path):
    out = tmp_path / "p.json"
    rc, torch_in, err = _run_cli(["personalize", str(data), "--user", "u2", "--out", str(out)])
    assert rc == 0 and not torch_in, err
    assert f"looks: profile of u2 from 12 judgment(s) written to {out}" in err
    ds, js = _references(data, "u2")
    want = looks_model.personalize(load_references(ds, js), user="u2")
    assert looks_model.describe(want) in err  # the same words
    got = _file_profile(out)
    own = {k: v for k, v in got.data.items() if k not in ("dataset", "n_references")}  # what the CLI adds
    _assert_same_profile(type("P", (), {"data": own, "tensors": got.tensors}), want)
    doc = json.loads(out.read_text())
    assert doc["model_config"] == {**looks_model.config(), "source": "looks"} and doc["tensors"] == ["lut"]
    assert doc["data"]["dataset"] == str(data.resolve()) and doc["data"]["n_references"] == 12
    assert list(doc) == ["format", "version", "model", "model_config", "user", "prefstyle_version", "data", "tensors"]
    # the same safetensors header as torch's writer gives (names, dtype, shape)
    want.save(tmp_path / "t.json")
    head = lambda p: p.read_bytes()[: 8 + int.from_bytes(p.read_bytes()[:8], "little")]  # noqa: E731
    assert head(out.with_suffix(".safetensors")) == head(tmp_path / "t.safetensors")
    # a checkpoint path (the packaged settings file) takes the same path and records where it is
    ckpt = str(lp.checkpoint_path("looks"))
    rc, torch_in, err = _run_cli(
        ["personalize", str(data), "--user", "u2", "--out", str(out), "--model", ckpt, "--force"]
    )
    assert rc == 0 and not torch_in, err
    assert json.loads(out.read_text())["model_config"]["source"] == ckpt


def test_a_16_bit_image_falls_back_to_the_torch_path(data, looks_model, tmp_path):
    from prefstyle.imaging.io import read_image, write_image

    root = tmp_path / "d16"
    shutil.copytree(data, root)
    ds, js = _references(root, "u3")
    rel = js[0].preferred_image
    write_image(root / rel, read_image(root / rel).pixels, bit_depth=16)
    assert lp.load_references(ds, js) is None
    out = tmp_path / "p.json"
    rc, torch_in, err = _run_cli(["personalize", str(root), "--user", "u3", "--out", str(out)])
    assert rc == 0 and torch_in, err
    assert "looks: profile of u3 from 12 judgment(s)" in err
    got = _file_profile(out)
    want = looks_model.personalize(load_references(ds, js), user="u3")
    assert got.data["gain"] == want.data["gain"] and torch.equal(got.tensors["lut"], want.tensors["lut"])


@pytest.mark.parametrize("hw", [(70, 70), (700, 1000), (1300, 257)])
def test_scene_exposure_metering_matches_the_model(hw, space):
    from prefstyle.imaging.decode import rgb8_to_float
    from prefstyle.models.slider_taste import metered_ev

    u8 = (np.random.default_rng(5).random((*hw, 3)) ** 2 * 255).astype(np.uint8)
    want = float(metered_ev(rgb8_to_float(u8), "mean")[0])
    assert lp._Scene(u8, space).ev == pytest.approx(want, abs=2e-6)


def test_errors_are_the_same_as_the_torch_paths(data, tmp_path, capsys):
    from prefstyle.cli import main

    rc = main(["personalize", str(data), "--user", "nobody", "--out", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert rc != 0 and "'nobody'" in err and "\n" not in err.strip()
    root = tmp_path / "gone"
    shutil.copytree(data, root)
    ds, js = _references(root, "u0")
    source = ds.scenes[js[0].scene].source
    (root / source).unlink()
    rc = main(["personalize", str(root), "--user", "u0", "--out", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert rc != 0 and f"source {source} does not exist" in err
    assert not (tmp_path / "p.json").exists()
