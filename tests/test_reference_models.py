"""The reference-point models: identity, global-style, nearest-preferred, oracle, bayes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _eval_data import _photo, make_sim_dataset

from prefstyle.data.crowd import Device
from prefstyle.data.pairs import PairsDataset
from prefstyle.data.simulate import load_ground_truth, sample_taste
from prefstyle.errors import PrefstyleError
from prefstyle.eval.protocol import load_references
from prefstyle.imaging.params import RetouchParams
from prefstyle.imaging.pipeline import apply_retouch
from prefstyle.metrics.functional import delta_e00
from prefstyle.models.base import Profile, Reference, create_model, list_models
from prefstyle.models.reference import (
    BayesModel,
    GlobalStyleModel,
    apply_poly2,
    content_features,
    fit_global_style,
    fit_poly2,
    ideal_with_offsets,
    view_batch,
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = make_sim_dataset(tmp_path_factory.mktemp("sim"), users=5, scenes=6, main=24, temperature=0.3, test_users=2)
    return PairsDataset.load(root), load_ground_truth(root), root


def test_all_reference_points_registered():
    assert {"identity", "global-style", "nearest-preferred", "oracle", "bayes"} <= set(list_models())


def test_identity_returns_input(astronaut_small, tmp_path):
    m = create_model("identity")
    prof = m.personalize([], "u")
    out = m.render(astronaut_small, prof)
    assert torch.equal(out, astronaut_small)
    loaded = Profile.load(prof.save(tmp_path / "p.json"))
    assert torch.equal(m.render(astronaut_small, loaded), astronaut_small)


def test_global_style_learns_the_shared_preference(tmp_path):
    src = torch.cat([_photo(i, 32) for i in range(5)])
    warm = apply_retouch(src, RetouchParams(temperature=0.5, saturation=0.2)).clamp(0, 1)
    cool = apply_retouch(src, RetouchParams(temperature=-0.5)).clamp(0, 1)
    params = fit_global_style(warm, cool, steps=80, batch=8, pixels=128, seed=0)
    assert params.temperature > 0.1  # pulled towards the preferred (warm) side

    m = GlobalStyleModel(params=params)
    with pytest.raises(PrefstyleError, match="not fitted"):
        GlobalStyleModel().personalize([], "u")
    path = m.save(tmp_path / "global.json")
    again = GlobalStyleModel(checkpoint=path)
    assert again.params == params
    out = again.render(src, again.personalize([], "anyone"))
    assert out.shape == src.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    with pytest.raises(PrefstyleError, match="checkpoint"):
        GlobalStyleModel(checkpoint=create_model("identity").personalize([]).save(tmp_path / "id.json"))


def test_global_style_fits_on_a_dataset(sim):
    ds, _, _ = sim
    m = GlobalStyleModel(steps=10).fit(ds, ds.splits["train"])
    assert m.fitted and m.fit_info["users"] == len(ds.splits["train"])
    assert m.fit_info["pairs"] == sum(len(ds.by_user(u)) for u in ds.splits["train"])


def test_poly2_fit_recovers_a_colour_map(astronaut_small):
    dst = apply_retouch(astronaut_small, RetouchParams(temperature=0.3, contrast=0.2, saturation=0.2)).clamp(0, 1)
    coef = fit_poly2(astronaut_small[0], dst[0])
    out = apply_poly2(astronaut_small, coef)
    assert float(delta_e00(out, dst)) < 0.5 * float(delta_e00(astronaut_small, dst))
    ident = fit_poly2(astronaut_small[0], astronaut_small[0])
    assert torch.allclose(apply_poly2(astronaut_small, ident), astronaut_small, atol=2e-3)


def test_content_features_ignore_global_edits(astronaut_small, coffee_small):
    edited = apply_retouch(astronaut_small, RetouchParams(exposure=0.7, temperature=0.4, contrast=0.3)).clamp(0, 1)
    f = content_features(torch.cat([astronaut_small, edited, coffee_small]))
    assert f.shape == (3, 3 * 64 + 8)
    assert torch.dist(f[0], f[1]) < 0.5 * torch.dist(f[0], f[2])


def test_nearest_preferred_transfers_the_nearest_edit(astronaut_small, coffee_small, tmp_path):
    warm = RetouchParams(temperature=0.6)
    cool = RetouchParams(temperature=-0.6)
    refs = [
        Reference("astro", apply_retouch(astronaut_small, warm)[0].clamp(0, 1), astronaut_small[0], astronaut_small[0]),
        Reference("coffee", apply_retouch(coffee_small, cool)[0].clamp(0, 1), coffee_small[0], coffee_small[0]),
    ]
    m = create_model("nearest-preferred")
    prof = Profile.load(m.personalize(refs, "u").save(tmp_path / "np.json"))
    query = apply_retouch(astronaut_small, RetouchParams(exposure=0.3)).clamp(0, 1)  # the astronaut, edited
    assert m.nearest(torch.cat([query, coffee_small]), prof).tolist() == [0, 1]
    out = m.render(torch.cat([query, coffee_small]), prof)
    # red minus blue goes up for the astronaut (warm edit), down for the coffee (cool edit)
    rb = lambda x: float((x[0] - x[2]).mean())
    assert rb(out[0]) > rb(query[0]) + 0.02
    assert rb(out[1]) < rb(coffee_small[0]) - 0.02
    # without references it is the identity
    assert torch.equal(m.render(query, m.personalize([], "u")), query)
    # without a source, the edit is fitted from the non-preferred image
    no_src = [Reference(r.scene, r.preferred, r.other, None) for r in refs]
    assert torch.allclose(m.render(query, m.personalize(no_src)), out[:1], atol=1e-5)


def test_oracle_renders_the_true_ideal(sim, tmp_path):
    ds, gt, root = sim
    user = ds.splits["test"][0]
    m = create_model("oracle", ground_truth=root)
    prof = Profile.load(m.personalize([], user).save(tmp_path / "o.json"))
    x = _photo(2, 32)
    assert torch.allclose(m.render(x, prof), gt[user].ideal(x).clamp(0, 1))
    with pytest.raises(PrefstyleError, match="not in the ground truth"):
        m.personalize([], "nobody")


def test_simulated_only_models_refuse_without_ground_truth(tmp_path):
    root = make_sim_dataset(tmp_path / "d", users=2, scenes=2, main=3, test_users=1)
    (root / "ground_truth.json").unlink()
    for name in ("oracle", "bayes"):
        with pytest.raises(PrefstyleError, match="ground truth"):
            create_model(name, ground_truth=root)
        with pytest.raises(PrefstyleError, match="ground truth"):
            create_model(name)


def test_bayes_building_blocks_match_the_simulator():
    rng = np.random.default_rng(3)
    x = torch.cat([_photo(0, 24), _photo(3, 24)])
    for _ in range(6):
        t = sample_taste(rng)
        assert torch.allclose(ideal_with_offsets(x, t, t.exposure_offsets(x)), t.ideal(x), atol=1e-5)
    devices = [Device("a", 2.0, 0.3, 0.8), Device("b", 2.4, -0.5, 1.1)]
    got = view_batch(
        x,
        torch.tensor([d.gamma for d in devices]),
        torch.tensor([d.white_shift for d in devices]),
        torch.tensor([d.brightness for d in devices]),
    )
    want = torch.cat([d.view(x[i : i + 1]) for i, d in enumerate(devices)])
    assert torch.allclose(got, want, atol=1e-4)


def test_bayes_posterior(sim):
    ds, gt, root = sim
    m = BayesModel(ground_truth=root, particles=96, seed=1)
    user = ds.splits["test"][0]
    refs = load_references(ds, ds.references(user, 16, seed=0))

    # no references: the prior (uniform weights)
    prior = m.personalize([], user)
    assert prior.data["ess"] == pytest.approx(96, rel=1e-6)
    post = m.personalize(refs, user)
    assert post.data["ess"] < 0.5 * 96  # the judgments are informative
    assert sum(p["weight"] for p in post.data["particles"]) == pytest.approx(1.0)

    # rendering through the blended LUTs is the posterior mean of the kept particles' ideals
    from prefstyle.data.crowd import Taste

    x = torch.cat([_photo(1, 32), _photo(4, 32)])
    exact = sum(p["weight"] * Taste.from_dict(p["taste"]).ideal(x) for p in post.data["particles"]).clamp(0, 1)
    assert float(delta_e00(m.render(x, post), exact).max()) < 0.6

    # the posterior estimate is closer to the truth than the prior mean, on photos not in the dataset
    srcs = torch.cat([_photo(i, 32) for i in (6, 7, 8, 9)])
    ideal = gt[user].ideal(srcs)
    d_post = float(delta_e00(m.render(srcs, post), ideal).mean())
    d_prior = float(delta_e00(m.render(srcs, prior), ideal).mean())
    assert d_post < d_prior
    with pytest.raises(PrefstyleError, match="neutral source"):
        m.personalize([Reference("s", refs[0].preferred, refs[0].other, None)], user)
