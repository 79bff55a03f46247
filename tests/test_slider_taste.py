"""SliderTaste (``sliders``): prior, posterior from answers, rendering through one LUT, profiles, empirical Bayes."""

from __future__ import annotations

import json

import pytest
import torch
from _pps_data import make_pairs_dataset

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.params import NEUTRAL, RetouchParams
from prefstyle.imaging.pipeline import apply_retouch
from prefstyle.models.base import Profile, Reference, create_model
from prefstyle.models.slider_taste import (
    PRIOR_WIDTHS,
    SLIDERS,
    SliderTasteModel,
    metered_ev,
    prior_gains,
    prior_vectors,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def _refs(photos: list[torch.Tensor], preferred: RetouchParams, other: RetouchParams, n: int) -> list[Reference]:
    out = []
    for i in range(n):
        x = photos[i % len(photos)]
        x = torch.roll(x, shifts=7 * i, dims=-1)  # a different "scene" each time
        out.append(
            Reference(
                scene=f"s{i}",
                preferred=apply_retouch(x[None], preferred)[0].clamp(0, 1),
                other=apply_retouch(x[None], other)[0].clamp(0, 1),
                source=x,
            )
        )
    return out


def test_prior_is_seeded_starts_at_neutral_and_stays_in_range():
    v = prior_vectors(256, 1.0, seed=3)
    assert v.shape == (256, NEUTRAL.to_vector().numel())
    assert torch.equal(v[0], NEUTRAL.to_vector()) and torch.equal(v, prior_vectors(256, 1.0, seed=3))
    exposure = v[:, 2]
    assert 0.35 < float(exposure.std()) < 0.65  # PRIOR_WIDTHS["exposure"] = 0.5
    for row in v[:20]:
        RetouchParams.from_vector(row, clamp=False)  # every draw is a valid edit
    wider = prior_vectors(256, 2.0, seed=3)
    assert float(wider[:, 0].std()) > 1.5 * float(v[:, 0].std())
    assert set(SLIDERS) == set(PRIOR_WIDTHS)


def test_answers_move_the_posterior_and_the_rendering(astronaut_small, coffee_small):
    m = SliderTasteModel(particles=512)
    photos = [astronaut_small[0], coffee_small[0]]
    bright = RetouchParams(exposure=0.6, temperature=0.3)
    dark = RetouchParams(exposure=-0.6, temperature=-0.3)
    up = m.personalize(_refs(photos, bright, dark, 12), "bright-lover")
    down = m.personalize(_refs(photos, dark, bright, 12), "dark-lover")
    assert up.data["n_used"] == 12 and up.data["sliders"]["exposure"] > 0.2 > -0.2 > down.data["sliders"]["exposure"]
    assert up.data["sliders"]["temperature"] > down.data["sliders"]["temperature"]
    new = torch.flip(astronaut_small, dims=[-1])  # a photo it was not shown
    assert float(m.render(new, up).mean()) > float(new.mean()) + 0.02
    assert float(m.render(new, down).mean()) < float(new.mean()) - 0.02
    # no answers: the prior's mean edit, close to the input
    none = m.personalize([], "nobody")
    assert none.data["n_used"] == 0 and float((m.render(new, none) - new).abs().mean()) < 0.04
    # answers without a neutral source carry no evidence here
    no_src = [Reference(scene=r.scene, preferred=r.preferred, other=r.other) for r in _refs(photos, bright, dark, 4)]
    assert m.personalize(no_src).data["n_used"] == 0


def test_metering_and_gains():
    grey = torch.full((1, 3, 40, 60), 0.4613)  # sRGB of linear 0.18
    assert abs(float(metered_ev(grey))) < 0.01 and abs(float(metered_ev(grey, "log_mean"))) < 0.01
    dark, bright = grey * 0.5, (grey * 1.8).clamp(0, 1)
    assert float(metered_ev(dark)) > 1.5 and float(metered_ev(bright)) < -1.0
    half = torch.cat([torch.zeros(1, 3, 40, 30), torch.ones(1, 3, 40, 30)], dim=-1)  # a bright sky over black ground
    assert float(metered_ev(half, "log_mean")) > float(metered_ev(half, "mean"))  # the geometric mean sees the shadows
    assert float(metered_ev(torch.zeros(2, 3, 8, 8))[1]) == 3.0  # clamped
    with pytest.raises(ValueError, match="meter"):
        metered_ev(grey, "spot")
    g = prior_gains(500, 0.5, seed=1)
    assert g[0] == 0 and 0 <= float(g.min()) and float(g.max()) <= 0.5 and torch.equal(g, prior_gains(500, 0.5, seed=1))
    assert torch.equal(
        prior_vectors(64, 1.0), SliderTasteModel(particles=64, adapt=0.0).prior
    )  # gains do not move the sliders


def _graded(x: torch.Tensor, ev: float) -> torch.Tensor:
    return apply_retouch(x[None], RetouchParams(exposure=ev))[0].clamp(0, 1)


def test_adaptive_brightness_is_learned_and_rendered_per_photo(astronaut_small):
    """A person who wants every photo at the same brightness: shown a darkened and a brightened
    version of a scene, they pick the one nearer mid-grey. The posterior learns a high gain, and
    the rendering lifts a dark photo more than a bright one; a fixed-edit model cannot."""
    base = astronaut_small[0]
    refs = []
    for i, ev in enumerate([-1.5, -1.0, 1.0, 1.2, -1.2, 0.8, -0.8, 1.5] * 2):
        src = _graded(torch.roll(base, shifts=11 * i, dims=-1), ev)  # scenes of very different brightness
        corr = float(metered_ev(src))  # what brings this scene to mid-grey
        better, worse = _graded(src, corr), _graded(src, -0.7 * corr)
        refs.append(Reference(scene=f"s{i}", preferred=better, other=worse, source=src))
    adaptive = SliderTasteModel(particles=1024, adapt=1.0)
    prof = adaptive.personalize(refs, "auto")
    assert (
        prof.data["sliders"]["adaptive_brightness"] > 0.5
        and prof.tensors["gains"].shape == prof.tensors["weights"].shape
    )
    dark, bright = _graded(base, -1.3), _graded(base, 1.0)
    lifted = float(adaptive.render(dark, prof).mean()) - float(dark.mean())
    held = float(adaptive.render(bright, prof).mean()) - float(bright.mean())
    assert lifted > 0.05 and held < -0.02
    luts = adaptive.luts(torch.stack([dark, bright]), prof)
    assert luts.shape[0] == 2 and not torch.allclose(luts[0], luts[1])
    fixed = SliderTasteModel(particles=1024, adapt=0.0).personalize(refs, "auto")
    assert fixed.data["sliders"]["adaptive_brightness"] == 0.0
    # the adaptive model explains these answers better: its posterior is less surprised
    gaps_a = adaptive.distance_gaps(refs)
    gaps_f = SliderTasteModel(particles=1024, adapt=0.0).distance_gaps(refs)
    ml = [float(torch.logsumexp(m.log_likelihood(g), 0)) for m, g in ((adaptive, gaps_a), (adaptive, gaps_f))]
    assert ml[0] > ml[1] + 2.0


def test_profiles_without_gains_render_as_fixed_edits(astronaut_small):
    m = SliderTasteModel(particles=256, adapt=0.0)
    prof = m.personalize(_refs([astronaut_small[0]], RetouchParams(exposure=0.5), RetouchParams(exposure=-0.5), 6), "u")
    old = Profile(model="sliders", tensors={"vectors": prof.tensors["vectors"], "weights": prof.tensors["weights"]})
    x = astronaut_small
    assert torch.equal(m.render(x, old), m.render(x, prof))
    bad = Profile(model="sliders", tensors={**old.tensors, "gains": torch.zeros(3)})
    with pytest.raises(PrefstyleError, match="gains of the wrong shape"):
        m.render(x, bad)


def test_profile_layout_and_refusals(tmp_path, astronaut_small):
    """(The LUT path, saving and loading, other models' profiles: tests/test_model_contract.py.)"""
    m = SliderTasteModel(particles=256)
    prof = m.personalize(_refs([astronaut_small[0]], RetouchParams(contrast=0.5), RetouchParams(contrast=-0.5), 8), "u")
    assert prof.tensors["vectors"].shape[0] == prof.tensors["weights"].shape[0] == prof.data["kept"]
    u8 = (astronaut_small[0] * 255).round() / 255
    words = m.describe(prof)
    assert words.startswith("your sliders: ") and "contrast" in words and "brightness follows the photo" in words
    with pytest.raises(PrefstyleError, match="no particles"):
        m.render(u8[None], Profile(model="sliders"))


def test_empirical_bayes_fit_and_checkpoint(tmp_path):
    root = make_pairs_dataset(tmp_path / "data", users=6, main=12)
    from prefstyle.data.pairs import PairsDataset

    ds = PairsDataset.load(root)
    m = SliderTasteModel(particles=128).fit(ds, scales=(0.5, 1.0), temperatures=(1.0, 4.0))
    table = m.fit_info["log_marginal"]
    assert set(table) == {"0.5/1", "0.5/4", "1/1", "1/4"}
    assert table[f"{m.prior_scale:g}/{m.temperature:g}"] == max(table.values())
    path = m.save(tmp_path / "sliders.json")
    loaded = create_model("sliders", checkpoint=path)
    assert (loaded.prior_scale, loaded.temperature) == (m.prior_scale, m.temperature)
    with pytest.raises(PrefstyleError, match="not a sliders checkpoint"):
        create_model("sliders", checkpoint=Profile(model="identity").save(tmp_path / "other.json"))


def test_fitted_checkpoint_loads_by_path(tmp_path):
    from prefstyle.train.loading import load_model

    path = SliderTasteModel(particles=64, prior_scale=0.75, temperature=2.0).save(tmp_path / "fitted.json")
    m = load_model(path)
    assert isinstance(m, SliderTasteModel) and (m.k, m.prior_scale, m.temperature) == (64, 0.75, 2.0)
    assert isinstance(load_model("sliders"), SliderTasteModel)


def test_prefstyle_train_runs_the_fit_of_the_committed_config(tmp_path):
    """`prefstyle train configs/sliders.yaml` fits the two numbers and writes a loadable sliders.json."""
    from pathlib import Path

    from prefstyle.train import train
    from prefstyle.train.loading import load_model

    root = make_pairs_dataset(tmp_path / "data", users=6, main=10)
    config = Path(__file__).resolve().parents[1] / "configs" / "sliders.yaml"
    res = train(
        config,
        [
            f"data.path={root}",
            f"out={tmp_path / 'run'}",
            "task.particles=64",
            "task.scales=[0.5,1.0]",
            "task.temperatures=[1.0]",
        ],
        progress=False,
    )
    assert res.finished and res.model_path == tmp_path / "run" / "sliders.json"
    m = load_model(res.model_path)
    assert isinstance(m, SliderTasteModel) and m.k == 64 and m.prior_scale in (0.5, 1.0)
    # 2 scales x (fixed edits, adaptive with either meter) x 1 temperature
    table = m.fit_info["log_marginal"]
    assert m.fit_info["users"] == 4 and len(table) == 6 and "1/1/0/mean" in table and "1/1/1/log_mean" in table
    assert table[f"{m.prior_scale:g}/{m.temperature:g}/{m.adapt:g}/{m.meter}"] == max(table.values())


def test_bad_checkpoints_and_configs_give_one_line_errors(tmp_path):
    from prefstyle.train import train
    from prefstyle.train.loading import load_model

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PrefstyleError) as e:
        load_model(bad)
    assert "bad.json" in str(e.value) and "\n" not in str(e.value)
    for key, value in (("meter", "spot"), ("adapt", 5), ("temperature", "warm"), ("prior_scale", None)):
        path = SliderTasteModel(particles=8).save(tmp_path / f"bad_{key}.json")
        doc = json.loads(path.read_text())
        doc["data"][key] = value
        path.write_text(json.dumps(doc))
        with pytest.raises(PrefstyleError) as e:
            load_model(path)
        assert f"bad_{key}.json" in str(e.value) and "bad sliders settings" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(PrefstyleError, match="no such dataset folder"):
        train(
            {"task": {"name": "sliders"}, "data": {"path": str(tmp_path / "missing")}, "out": str(tmp_path / "o")},
            progress=False,
        )
    with pytest.raises(PrefstyleError, match="data.path"):
        train({"task": {"name": "sliders"}, "data": {}, "out": str(tmp_path / "o")}, progress=False)
    assert not (tmp_path / "o" / "sliders.json").exists()


def test_question_values_prefer_pairs_about_what_is_still_unknown(astronaut_small, coffee_small):
    """Expected information gain: zero for two equal renditions, symmetric, and once the answers
    have pinned the exposure down, a pair that differs in exposure loses its value,
    much more than one that differs in white balance."""
    m = SliderTasteModel(particles=512, adapt=0.0)
    x = coffee_small[0]
    rend = [x, x.clone()] + [
        apply_retouch(x[None], p)[0].clamp(0, 1)
        for p in (
            RetouchParams(exposure=0.8),
            RetouchParams(exposure=-0.8),
            RetouchParams(temperature=0.5),
            RetouchParams(temperature=-0.5),
        )
    ]
    before = m.question_values([], [(x, rend)])[0]
    assert before.shape == (6, 6) and torch.allclose(before, before.T) and float(before.min()) >= 0
    assert float(before[0, 1]) < 1e-4 < float(before[2, 3])
    photos = [astronaut_small[0]]
    refs = _refs(photos, RetouchParams(exposure=0.5), RetouchParams(exposure=-0.5), 6) + _refs(
        photos, RetouchParams(exposure=0.5), RetouchParams(exposure=1.5), 6
    )
    after, again = m.question_values(refs, [(x, rend), (x, rend[:3])])
    assert again.shape == (3, 3) and torch.allclose(again, after[:3, :3])
    assert float(after[2, 3]) < 0.5 * float(before[2, 3])
    assert float(after[4, 5]) / float(before[4, 5]) > 2 * float(after[2, 3]) / float(before[2, 3])
    assert float(after[4, 5]) > float(after[2, 3])
    # the renditions' distances now come from the cache: the same values as a fresh model's
    fresh = SliderTasteModel(particles=512, adapt=0.0).question_values(refs, [(x, rend)])[0]
    assert len(m._rendition_cache) == 5 and torch.allclose(after, fresh, atol=1e-6)  # two renditions are equal


def test_answer_gaps_are_cached_and_follow_the_priors_settings(astronaut_small):
    """A study recomputes a participant's posterior after every answer: earlier answers' gaps come
    from the cache (identical values), and a changed prior does not reuse them."""
    m = SliderTasteModel(particles=128)
    refs = _refs([astronaut_small[0]], RetouchParams(exposure=0.4), RetouchParams(exposure=-0.4), 5)
    first = m.distance_gaps(refs[:3])
    assert len(m._gap_cache) == 3
    again = m.distance_gaps(refs)
    assert len(m._gap_cache) == 5 and torch.equal(again[:, :3], first)
    fresh = SliderTasteModel(particles=128).distance_gaps(refs)
    assert torch.allclose(again, fresh, atol=1e-5)
    m.prior_scale, m._vecs = 2.0, None
    assert not torch.allclose(m.distance_gaps(refs), again, atol=1e-2)


def test_keyed_answers_skip_the_thumbnails_until_the_settings_change(astronaut_small, monkeypatch):
    """With ``Reference.key`` an answer's gap is found without resampling its images; a changed
    prior still recomputes (the key names the images, not the model's settings)."""
    import dataclasses

    import prefstyle.models.slider_taste as st

    refs = _refs([astronaut_small[0]], RetouchParams(exposure=0.4), RetouchParams(exposure=-0.4), 4)
    keyed = [dataclasses.replace(r, key=("s", i)) for i, r in enumerate(refs)]
    m = SliderTasteModel(particles=128)
    first = m.distance_gaps(keyed)
    assert torch.equal(first, SliderTasteModel(particles=128).distance_gaps(refs))
    calls = []
    real = st.metered_ev
    monkeypatch.setattr(st, "metered_ev", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert torch.equal(m.distance_gaps(keyed), first) and not calls
    m.prior_scale, m._vecs = 2.0, None
    assert not torch.allclose(m.distance_gaps(keyed), first, atol=1e-2) and calls
