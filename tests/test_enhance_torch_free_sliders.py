"""``prefstyle enhance`` of ``sliders`` profiles without torch (:mod:`prefstyle.imaging.retouch_np`,
:class:`prefstyle.models.lut_forms.SliderLutProfile`).

The numpy slider pipeline against the torch one it mirrors (every operator alone and together,
extreme and neutral edits, to 1e-5), the profile's per-photo LUT against ``SliderTasteModel``'s,
the files written against the torch path (``--model sliders`` forces it), profiles the torch
reader must judge, and, in a fresh process, that the torch-free path never imports torch.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from prefstyle.cli import main
from prefstyle.imaging import retouch_np
from prefstyle.imaging.params import NEUTRAL, SCALAR_FIELDS, VECTOR_DIM, RetouchParams
from prefstyle.models.base import Profile
from prefstyle.models.lut_forms import SliderLutProfile, torch_free_lut_profile
from prefstyle.models.slider_taste import _edits_on_grid, adapted_vectors, prior_gains, prior_vectors
from test_enhance_torch_free import _photo, enhance_in_fresh_process, photos  # noqa: F401 - the shared photos fixture

pytestmark = pytest.mark.usefixtures("one_thread")

#: one edit per operator, each alone (the pipeline skips neutral operators: each skip is exercised)
SINGLE_EDITS = [
    RetouchParams(temperature=0.6, tint=-0.4),
    RetouchParams(exposure=-1.2),
    RetouchParams(contrast=0.8),
    RetouchParams(highlights=-0.9),
    RetouchParams(shadows=0.7),
    RetouchParams(whites=0.5),
    RetouchParams(blacks=-0.6),
    RetouchParams(curve=(0.05, 0.3, 0.55, 0.7, 0.95)),
    RetouchParams(hsl_hue=(0.5, -0.3, 0, 0.2, 0, -0.8, 0, 0.1), hsl_saturation=(0.6,) * 8, hsl_luminance=(-0.4,) * 8),
    RetouchParams(vibrance=0.9),
    RetouchParams(saturation=-0.7),
    RetouchParams(split_shadow_hue=220.0, split_shadow_sat=0.6, split_highlight_hue=40.0, split_highlight_sat=0.5),
]


@pytest.fixture(scope="module")
def sliders_model():
    from prefstyle.models import load

    return load("sliders")


def _save_profile(path, k: int = 24, seed: int = 0, **data):
    from prefstyle.models import load

    m = load("sliders")
    vecs = prior_vectors(200, 1.0, seed=seed)[:k]
    gains = prior_gains(200, 1.0, seed=seed)[:k]
    w = torch.from_numpy(np.random.default_rng(seed).dirichlet(np.ones(k))).float()
    prof = Profile(
        model="sliders",
        user="t",
        model_config=m.config(),
        tensors={"vectors": vecs, "gains": gains, "weights": w},
        data={"sliders": {"exposure": 0.1, "adaptive_brightness": 0.5}, **data},
    )
    return prof.save(path)


@pytest.mark.parametrize("size", [17, 9])
def test_pipeline_matches_torch_for_every_operator(size):
    vecs = torch.stack([p.to_vector() for p in [NEUTRAL, *SINGLE_EDITS]])
    for batch in ([0], list(range(len(vecs))), *[[i] for i in range(1, len(vecs))]):
        v = vecs[batch]
        want = _edits_on_grid(v, size).numpy()
        got = retouch_np.edits_on_grid(v.numpy(), size)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.abs(got - want).max() < 1e-5, batch


def test_pipeline_matches_torch_on_prior_and_out_of_range_vectors():
    v = prior_vectors(300, 1.0, seed=5)
    wild = v.clone()
    wild[150:] *= 4.0  # far out of range: both clamp the same way
    wild[150:, [n for n, *_ in SCALAR_FIELDS].index("split_shadow_hue")] = -500.0  # hue wraps
    for vv in (v, wild):
        diff = np.abs(retouch_np.edits_on_grid(vv.numpy(), 17) - _edits_on_grid(vv, 17).numpy())
        assert diff.max() < 1e-5
    g = prior_gains(300, 1.0, seed=5)
    for ev in (0.0, 1.7, -2.9):
        assert np.array_equal(retouch_np.adapted_vectors(v.numpy(), g.numpy(), ev), adapted_vectors(v, g, ev).numpy())
    assert retouch_np.unpack_vector(np.zeros((2, VECTOR_DIM), np.float32))["curve"].shape == (2, 5)


def test_lut_matches_the_model(tmp_path, sliders_model):
    from prefstyle.imaging.decode import ImageData
    from prefstyle.models.render import photo_lut

    path = _save_profile(tmp_path / "p.json")
    form = torch_free_lut_profile(path)
    assert isinstance(form, SliderLutProfile) and form.lut_size == sliders_model.lut_size
    prof = Profile.load(path)
    for ev in (0.0, 0.4567, -1.3, 3.0):
        assert np.abs(form.lut(ev) - sliders_model.lut(prof, ev).numpy()).max() < 1e-5, ev
    u8 = _photo(600, 900, 2)
    for strength in (1.0, 0.6):
        want = photo_lut(sliders_model, prof, ImageData(rgb8=u8), strength).numpy()
        assert np.abs(form.photo_lut(u8, strength) - want).max() < 1e-5


def test_outputs_match_the_torch_path(tmp_path, photos):  # noqa: F811
    path = _save_profile(tmp_path / "p.json")
    free, ref = tmp_path / "free", tmp_path / "torch"
    assert main(["enhance", str(photos), "--profile", str(path), "--out", str(free), "--strength", "0.9"]) == 0
    assert (
        main(
            [
                "enhance",
                str(photos),
                "--profile",
                str(path),
                "--out",
                str(ref),
                "--strength",
                "0.9",
                "--model",
                "sliders",
            ]
        )
        == 0
    )
    for name in ("a.jpg", "b.jpg", "c.png", "d.png"):
        a, b = Image.open(free / name), Image.open(ref / name)
        assert a.size == b.size and a.mode == b.mode and a.getexif() == b.getexif()
        diff = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
        if name.endswith(".png"):
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-4, name
        else:
            assert diff.mean() < 0.01, name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": torch.full((24,), 0.5)}, "sum to 1"),
        ({"gains": torch.full((24,), 2.0)}, "0..1"),
        ({"vectors": torch.full((24, VECTOR_DIM), 9.0)}, "out of its range"),
    ],
)
def test_profiles_the_torch_reader_must_judge_fall_back_to_it(tmp_path, change, message):
    path = _save_profile(tmp_path / "p.json")
    prof = Profile.load(path)
    prof.tensors.update(change)
    prof.save(path)
    assert torch_free_lut_profile(path) is None
    Image.fromarray(_photo(40, 50, 0)).save(tmp_path / "in.jpg")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefstyle",
            "enhance",
            str(tmp_path / "in.jpg"),
            "--profile",
            str(path),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0 and message in res.stderr and str(path) in res.stderr
    assert not (tmp_path / "o" / "in.jpg").exists()


def test_torch_free_path_does_not_import_torch(tmp_path, photos):  # noqa: F811
    enhance_in_fresh_process(tmp_path, photos, _save_profile(tmp_path / "p.json"))
