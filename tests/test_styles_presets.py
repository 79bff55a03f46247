"""The parametric preset space: the named library, the sampler and the look algebra."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.params import NEUTRAL, SCALAR_FIELDS, RetouchParams
from prefstyle.styles.presets import (
    CURVE_MAX_DEVIATION,
    PLAUSIBLE_BOUNDS,
    PRESETS,
    PUSH_BUDGET,
    PUSH_FIELDS,
    ParamsStyle,
    interpolate,
    is_plausible,
    make_plausible,
    mix,
    perturb,
    plausibility_violations,
    push_score,
    sample_looks,
    sample_params,
    single_parameter_edits,
)


def test_library_has_at_least_15_valid_presets_with_descriptions():
    assert len(PRESETS) >= 15
    for name, preset in PRESETS.items():
        assert name == preset.name and name == name.lower() and " " not in name
        assert isinstance(preset.params, RetouchParams)
        assert RetouchParams.from_dict(json.loads(json.dumps(preset.params.to_dict()))) == preset.params
        assert not preset.params.is_identity(), name
        assert 10 <= len(preset.description) <= 100, name
    # the looks the issue names
    for wanted in ("warm-film", "cool-matte", "high-contrast-punch", "pastel", "faded", "teal-orange"):
        assert wanted in PRESETS
    # presets are distinct from one another
    vecs = np.stack([p.params.to_vector().numpy() for p in PRESETS.values()])
    d = np.abs(vecs[:, None] - vecs[None]).sum(-1)
    assert (d + np.eye(len(vecs)) * 1e9).min() > 0.1


def _assert_within_bounds(p: RetouchParams) -> None:
    for name, (lo, hi) in PLAUSIBLE_BOUNDS.items():
        if hasattr(p, name) and not name.endswith("_hue"):
            assert lo - 1e-9 <= getattr(p, name) <= hi + 1e-9, (name, getattr(p, name))
    lo, hi = PLAUSIBLE_BOUNDS["hsl"]
    for f in ("hsl_hue", "hsl_saturation", "hsl_luminance"):
        assert all(lo - 1e-9 <= v <= hi + 1e-9 for v in getattr(p, f)), f
    assert abs(p.exposure) <= 0.7 + 1e-9
    assert -0.5 - 1e-9 <= p.saturation <= 0.5 + 1e-9
    assert p.curve[0] <= PLAUSIBLE_BOUNDS["curve_black"][1] + 1e-9
    assert p.curve[-1] >= PLAUSIBLE_BOUNDS["curve_white"][0] - 1e-9
    assert all(abs(y - x) <= CURVE_MAX_DEVIATION + 1e-9 for x, y in zip((0.25, 0.5, 0.75), p.curve[1:4]))
    assert push_score(p) <= PUSH_BUDGET + 1e-9
    # no look pushes every slider to its bound at once
    assert sum(abs(getattr(p, f)) > 0.8 * PLAUSIBLE_BOUNDS[f][1] for f in PUSH_FIELDS) <= 3


def test_sampler_outputs_valid_plausible_varied_looks():
    looks = sample_looks(300, seed=1)
    for p in looks:
        assert isinstance(p, RetouchParams)
        _assert_within_bounds(p)
        assert is_plausible(p), plausibility_violations(p)
    assert len({p for p in looks}) == len(looks)  # all different
    for f in ("temperature", "tint", "exposure", "contrast", "saturation", "vibrance", "highlights", "shadows"):
        vals = np.array([getattr(p, f) for p in looks])
        assert vals.std() > 0.05, f
        assert (vals > 0).mean() > 0.15 and (vals < 0).mean() > 0.15, f  # both directions occur
    # the optional intents all occur, in a minority of looks
    faded = np.mean([p.curve[0] > 0.01 for p in looks])
    split = np.mean([p.split_shadow_sat > 0 for p in looks])
    hsl = np.mean([any(p.hsl_saturation) for p in looks])
    for frac in (faded, split, hsl):
        assert 0.1 < frac < 0.6


def test_sampler_is_deterministic_by_seed_and_generator():
    assert sample_params(7) == sample_params(7)
    assert sample_params(7) != sample_params(8)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert [sample_params(g1) for _ in range(5)] == [sample_params(g2) for _ in range(5)]
    assert sample_looks(4, seed=2) == sample_looks(4, seed=2)


def test_sampler_strength_scales_towards_neutral():
    assert sample_params(11, strength=0.0) == NEUTRAL
    full, half = sample_params(11), sample_params(11, strength=0.5)
    assert push_score(half) == pytest.approx(push_score(full) / 2, rel=1e-6)
    assert is_plausible(sample_params(11, strength=1.5))
    with pytest.raises(ValueError):
        sample_params(1, strength=3.0)


def test_make_plausible_tames_an_absurd_look():
    absurd = RetouchParams(
        **{n: hi for n, lo, hi, _ in SCALAR_FIELDS if not n.endswith("_hue")}, curve=(0.5, 0.5, 0.5, 0.6, 0.7)
    )
    assert not is_plausible(absurd)
    assert len(plausibility_violations(absurd)) > 5
    tamed = make_plausible(absurd)
    assert is_plausible(tamed), plausibility_violations(tamed)


def test_interpolate_endpoints_midpoint_and_hue_wrap():
    p, q = sample_params(1), sample_params(2)
    assert interpolate(p, q, 0.0) == p
    assert interpolate(p, q, 1.0) == q
    m = interpolate(p, q, 0.5)
    assert m.exposure == pytest.approx((p.exposure + q.exposure) / 2)
    a = NEUTRAL.replace(split_shadow_hue=350.0, split_shadow_sat=0.4)
    b = NEUTRAL.replace(split_shadow_hue=10.0, split_shadow_sat=0.2)
    h = interpolate(a, b, 0.5).split_shadow_hue
    assert min(h, 360 - h) < 1e-6  # the short way round: 0 degrees, not 180
    # a tint of zero strength does not pull the hue
    assert interpolate(NEUTRAL, a, 0.5).split_shadow_hue == pytest.approx(350.0)
    # extrapolation is clamped into the valid ranges
    far = interpolate(NEUTRAL, NEUTRAL.replace(exposure=2.0), 3.0)
    assert far.exposure == 3.0


def test_mix_is_a_weighted_average():
    p, q = sample_params(3), sample_params(4)
    assert mix([p, q], [1.0, 0.0]) == p
    assert mix([p]) == p
    m = mix([p, q], [3, 1])
    assert m.contrast == pytest.approx(0.75 * p.contrast + 0.25 * q.contrast)
    assert np.allclose(mix([p, q]).to_vector().numpy(), interpolate(p, q, 0.5).to_vector().numpy(), atol=1e-5)
    with pytest.raises(ValueError):
        mix([p, q], [1.0, -1.0])
    with pytest.raises(ValueError):
        mix([])


def test_perturb_is_deterministic_small_and_valid():
    base = PRESETS["warm-film"].params
    a = perturb(base, 5, scale=0.1)
    assert a == perturb(base, 5, scale=0.1)
    assert a != base
    assert abs(a.exposure - base.exposure) < 0.35  # 5 sigma of 0.07
    assert perturb(base, 5, scale=0.0) == base
    for seed in range(50):  # always a valid RetouchParams, even at a large scale
        perturb(base, seed, scale=2.0)


def test_single_parameter_edits():
    base = PRESETS["pastel"].params
    edits = single_parameter_edits(base, "saturation", [-0.5, 0.0, 0.5])
    assert [e.saturation for e in edits] == [-0.5, 0.0, 0.5]
    for e in edits:  # nothing else moves
        assert e.replace(saturation=base.saturation) == base
    assert [e.exposure for e in single_parameter_edits(base, "brightness", [0.2, -0.2])] == [0.2, -0.2]
    orange = single_parameter_edits(base, "hsl_saturation.orange", [0.3])[0]
    assert orange.hsl_saturation[1] == 0.3 and orange.hsl_saturation[0] == base.hsl_saturation[0]
    assert single_parameter_edits(base, "hsl_hue[3]", [0.1])[0].hsl_hue[3] == 0.1
    assert single_parameter_edits(base, "curve", [(0, 0.2, 0.5, 0.8, 1)])[0].curve == (0, 0.2, 0.5, 0.8, 1)
    with pytest.raises(PrefstyleError, match="unknown RetouchParams field"):
        single_parameter_edits(base, "sharpness", [1.0])
    with pytest.raises(ValueError):
        single_parameter_edits(base, "saturation", [5.0])


def test_params_style_strength_scales_parameters():
    s = ParamsStyle(PRESETS["golden-hour"].params, name="x")
    assert s.with_strength(0.0).effective == NEUTRAL
    assert s.with_strength(0.5).effective.temperature == pytest.approx(PRESETS["golden-hour"].params.temperature / 2)
    assert s.effective == PRESETS["golden-hour"].params
