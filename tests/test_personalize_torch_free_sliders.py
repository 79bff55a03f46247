"""``prefstyle personalize --model sliders`` without torch (:mod:`prefstyle.models.slider_personalize_np`).

The prior particles against the torch model's (the same numbers), the numpy slider pipeline on
images against ``apply_retouch_vector(exact=True)``, the profile against
``load("sliders").personalize(load_references(...))`` on a micro dataset, the CLI in a fresh
process (no torch imported, the same profile file, the same words), and checkpoints the numpy
path does not take (left to the torch loader).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prefstyle.eval.protocol import load_references
from prefstyle.imaging.pipeline import apply_retouch_vector
from prefstyle.models import look_personalize_np as lp
from prefstyle.models import slider_personalize_np as sp
from test_personalize_torch_free import _references, _run_cli, data  # noqa: F401 - the micro dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sliders_model():
    from prefstyle.models import load

    return load("sliders")


@pytest.fixture(scope="module")
def settings():
    path = sp.checkpoint_path("sliders")
    assert path is not None
    s = sp.read_checkpoint(path)
    assert s is not None
    return s


def test_prior_and_pipeline_on_images_match_the_model(settings, sliders_model):
    vecs = sp.prior_vectors(settings.k, settings.prior_scale, settings.seed)
    assert np.array_equal(vecs, sliders_model.prior.numpy())
    assert np.array_equal(sp.prior_gains(settings.k, settings.adapt, settings.seed), sliders_model.prior_gains.numpy())
    img = torch.rand(64, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    want = apply_retouch_vector(img, torch.from_numpy(vecs[:64]), exact=True).numpy()
    assert np.abs(sp._apply(img.numpy(), vecs[:64]) - want).max() < 1e-5


@pytest.mark.parametrize("user", ["u0", "u1", "u3"])
def test_profile_matches_the_torch_model(data, settings, sliders_model, user):  # noqa: F811
    ds, js = _references(data, user)
    refs = lp.load_references(ds, js)
    assert refs is not None
    got = sp.personalize(settings, refs, user=user)
    want = sliders_model.personalize(load_references(ds, js), user=user)
    assert got.model == want.model == "sliders" and got.user == want.user
    assert got.model_config == want.model_config and list(got.model_config) == list(want.model_config)
    assert set(got.data) == set(want.data) and got.data["kept"] == want.data["kept"]
    assert (got.data["n_refs"], got.data["n_used"]) == (want.data["n_refs"], want.data["n_used"])
    assert got.data["effective_particles"] == pytest.approx(want.data["effective_particles"], rel=1e-3)
    for name, value in want.data["sliders"].items():
        assert got.data["sliders"][name] == pytest.approx(value, abs=2e-4), name
    assert np.array_equal(got.tensors["vectors"], want.tensors["vectors"].numpy())
    assert np.array_equal(got.tensors["gains"], want.tensors["gains"].numpy())
    assert np.abs(got.tensors["weights"] - want.tensors["weights"].numpy()).max() < 1e-4
    assert sp.describe(got.data) == sliders_model.describe(want) or got.data["sliders"] != want.data["sliders"]


def test_cli_does_not_import_torch_and_writes_the_models_profile(data, sliders_model, tmp_path):  # noqa: F811
    out = tmp_path / "p.json"
    rc, torch_in, err = _run_cli(["personalize", str(data), "--user", "u2", "--model", "sliders", "--out", str(out)])
    assert rc == 0 and not torch_in, err
    assert f"sliders: profile of u2 from 12 judgment(s) written to {out}" in err and "your sliders:" in err
    doc = json.loads(out.read_text())
    assert doc["model_config"] == {**sliders_model.config(), "source": "sliders"}
    assert doc["tensors"] == ["gains", "vectors", "weights"]  # as the torch writer lists them
    # the profile renders: enhance takes it (torch-free too) and the torch model accepts it
    from prefstyle.models.base import Profile

    sliders_model.check_profile(Profile.load(out))


def test_unusual_checkpoints_are_left_to_the_torch_loader(tmp_path, settings):
    src = json.loads(sp.checkpoint_path("sliders").read_text())  # type: ignore[union-attr]
    for change in ({"distance": "de76"}, {"meter": "spot"}, {"particles": "many"}, {"lapse": 1.5}):
        doc = {**src, "model_config": {**src["model_config"], **change}}
        (tmp_path / "c.json").write_text(json.dumps(doc))
        assert sp.read_checkpoint(tmp_path / "c.json") is None, change
    (tmp_path / "c.json").write_text(json.dumps({**src, "model": "looks"}))
    assert sp.read_checkpoint(tmp_path / "c.json") is None
    assert sp.checkpoint_path("pienet") is None
