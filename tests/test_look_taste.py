"""LookTaste (``looks``): its taste-space maths, inference on a small known taste, profiles."""

from __future__ import annotations

import math

import pytest
import torch

from prefstyle.data.looks import Look, LookLibrary
from prefstyle.errors import PrefstyleError
from prefstyle.imaging.lut import apply_lut, identity_lut, lut_from_function
from prefstyle.models.base import Profile, Reference
from prefstyle.models.look_fit import build_space
from prefstyle.models.look_space import fit_basis, project, sample_tables, tables_from_coefficients
from prefstyle.models.look_taste import LookTasteModel


def _library(n: int = 8, size: int = 17, seed: int = 0) -> LookLibrary:
    """Small looks made of channel curves and a colour matrix (split-toning-like), ``n`` of them."""
    g = torch.Generator().manual_seed(seed)
    looks, tables = [], []
    for i in range(n):
        gam = 0.7 + 0.6 * torch.rand(3, generator=g)
        mix = torch.eye(3) + 0.15 * torch.randn(3, 3, generator=g)
        lift = 0.08 * torch.rand(3, generator=g)

        def fn(rgb: torch.Tensor, gam=gam, mix=mix, lift=lift) -> torch.Tensor:  # (1,3,H,W)
            y = torch.einsum("ij,bjhw->bihw", mix, rgb.clamp(0, 1) ** gam.reshape(1, 3, 1, 1))
            return (lift.reshape(1, 3, 1, 1) + (1 - lift.reshape(1, 3, 1, 1)) * y).clamp(0, 1)

        tables.append(lut_from_function(fn, size))
        looks.append(
            Look(
                name=f"fam{i % 4}/look{i}",
                family=f"fam{i % 4}",
                kind="creative",
                source="test",
                author="test",
                license="CC0-1.0",
            )
        )
    return LookLibrary(looks, torch.stack(tables))


@pytest.fixture(scope="module")
def space():
    torch.manual_seed(0)
    return build_space(_library(), n_sliders=48, n_blends=16, max_dim=24)


def _photo(seed: int, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(base[None], size=(size, size), mode="bilinear", align_corners=False)[
        0
    ].clamp(0, 1)


def test_sampling_the_basis_is_trilinear_lookup():
    lut = identity_lut(9) + 0.05 * torch.randn(3, 9, 9, 9, generator=torch.Generator().manual_seed(1))
    x = torch.rand(3, 50, generator=torch.Generator().manual_seed(2))
    want = apply_lut(x.reshape(1, 3, 5, 10), lut).reshape(3, 50)
    got = sample_tables(lut[None], x)[0]
    assert torch.allclose(got, want, atol=1e-5)


def test_basis_is_orthonormal_and_reconstructs_its_examples():
    d = torch.randn(30, 3, 5, 5, 5, generator=torch.Generator().manual_seed(3))
    basis, info = fit_basis(d, max_dim=40, energy=0.9999)
    flat = basis.reshape(basis.shape[0], -1)
    assert torch.allclose(flat @ flat.T, torch.eye(len(flat)), atol=1e-4)
    rec = project(d, basis) @ flat
    assert info["relative_error"] < 0.02
    assert torch.allclose(rec, d.reshape(30, -1), atol=0.05)


def test_space_holds_every_look(space):
    lib = _library()
    tables = tables_from_coefficients(space["look_coeffs"], space["basis"])
    err = (tables - lib.tables).abs().mean()
    assert err < 0.01, f"library looks reconstructed {err:.4f} off"
    assert space["coeffs"].shape[1] == space["basis"].shape[0]
    assert set(space["gains"].tolist()) <= {0.0, 0.25, 0.5, 0.75, 1.0}


def _answers(ideal_lut: torch.Tensor, n: int, seed: int) -> list[Reference]:
    """``n`` noiseless answers of a person whose ideal is ``ideal_lut`` applied to the source."""
    from prefstyle.imaging.color import delta_e_2000_rgb

    lib = _library(12, seed=99)  # renditions: other looks
    refs = []
    for i in range(n):
        src = _photo(seed * 100 + i)
        a, b = lib.apply(i % 12, src), lib.apply((i + 5) % 12, src)
        ideal = apply_lut(src[None], ideal_lut)[0]
        da, db = delta_e_2000_rgb(a[None], ideal[None]).mean(), delta_e_2000_rgb(b[None], ideal[None]).mean()
        pref, other = (a, b) if da < db else (b, a)
        refs.append(Reference(scene=f"s{i}", preferred=pref, other=other, source=src))
    return refs


def test_answers_move_the_taste_towards_the_ideal(space):
    from prefstyle.imaging.color import delta_e_2000_rgb

    model = LookTasteModel.from_space(space, temperature=1.0, lapse=0.05)
    ideal_lut = _library().tables[3]
    prof = model.personalize(_answers(ideal_lut, 12, seed=1), user="p")
    held = [_photo(500 + i) for i in range(4)]
    d_model = sum(
        float(delta_e_2000_rgb(model.render(x, prof)[None], apply_lut(x[None], ideal_lut)).mean()) for x in held
    )
    d_input = sum(float(delta_e_2000_rgb(x[None], apply_lut(x[None], ideal_lut)).mean()) for x in held)
    assert d_model < 0.6 * d_input, (d_model, d_input)
    assert prof.data["n_used"] == 12 and prof.data["effective_particles"] >= 1
    assert model.describe(prof).startswith("your look:")


def test_no_answers_gives_a_valid_profile_near_identity(space):
    model = LookTasteModel.from_space(space)
    prof = model.personalize([], user="nobody")
    x = _photo(7)
    assert model.render(x, prof).shape == x.shape
    assert math.isnan(prof.data["expected_de00"] or float("nan"))


def test_luts_render_and_round_trip(space, tmp_path):
    model = LookTasteModel.from_space(space)
    prof = model.personalize(_answers(_library().tables[1], 6, seed=2), user="p")
    x = _photo(9, 64)[None]
    lut = model.luts(x, prof)
    assert lut.shape == (1, 3, model.lut_size, model.lut_size, model.lut_size)
    assert torch.allclose(apply_lut(x, lut[0]).clamp(0, 1), model.render(x, prof), atol=1e-6)
    path = prof.save(tmp_path / "p.json")
    again = Profile.load(path)
    assert torch.allclose(model.render(x, again), model.render(x, prof))
    ck = model.save(tmp_path / "model.json")
    reloaded = LookTasteModel(checkpoint=ck)
    assert torch.allclose(reloaded.render(x, again), model.render(x, prof), atol=1e-6)


def test_bad_profiles_are_refused(space):
    model = LookTasteModel.from_space(space)
    prof = model.personalize([], user="p")
    bad = Profile(
        model="looks", data=dict(prof.data), tensors={"lut": torch.full_like(prof.tensors["lut"], float("nan"))}
    )
    with pytest.raises(PrefstyleError, match="NaN"):
        model.render(_photo(1), bad)
    with pytest.raises(PrefstyleError, match="gain"):
        model.render(_photo(1), Profile(model="looks", data={**prof.data, "gain": 3.0}, tensors=prof.tensors))
    with pytest.raises(PrefstyleError, match="made by model"):
        model.render(_photo(1), Profile(model="sliders", data={}, tensors={}))


def test_question_values_are_symmetric_information(space):
    model = LookTasteModel.from_space(space)
    src = _photo(3)
    lib = _library(4, seed=5)
    rends = [lib.apply(i, src) for i in range(4)]
    (v,) = model.question_values([], [(src, rends)])
    assert v.shape == (4, 4)
    assert torch.allclose(v, v.T, atol=1e-6) and float(v.diagonal().abs().max()) == 0.0
    assert float(v.max()) > 0 and float(v.max()) <= math.log(2) + 1e-6


def test_config_options_are_the_fit_settings():
    import inspect

    from prefstyle.models.look_fit import fit_look_taste

    params = set(inspect.signature(fit_look_taste).parameters) - {"dataset", "library", "progress"}
    assert set(LookTasteModel.OPTIONS) == params | {"library"}


def test_broken_checkpoints_are_one_line_errors(space, tmp_path):
    garbage = tmp_path / "looks.json"
    garbage.write_text("{not json", encoding="utf-8")
    with pytest.raises(PrefstyleError, match=r"looks\.json"):
        LookTasteModel(checkpoint=garbage)
    other = Profile(model="sliders", data={"prior_scale": 1.0}).save(tmp_path / "sliders.json")
    with pytest.raises(PrefstyleError, match="not a looks checkpoint"):
        LookTasteModel(checkpoint=other)
    ck = LookTasteModel.from_space(space).save(tmp_path / "ok.json")
    (tmp_path / "ok.safetensors").write_bytes(b"truncated")
    with pytest.raises(PrefstyleError):
        LookTasteModel(checkpoint=ck)


def test_closest_slider_edit_recovers_a_slider_look_and_presets_say_how_close(space):
    from prefstyle.imaging.params import NEUTRAL
    from prefstyle.imaging.pipeline import apply_retouch
    from prefstyle.models.slider_fit_np import closest_slider_edit

    want = NEUTRAL.replace(exposure=0.4, temperature=0.2, contrast=0.3, saturation=-0.2)
    lut = lut_from_function(lambda x: apply_retouch(x, want), 17)
    got, err = closest_slider_edit(lut.numpy())
    assert err < 0.5
    for name in ("exposure", "temperature", "contrast", "saturation"):
        assert getattr(got, name) == pytest.approx(getattr(want, name), abs=0.05), name
    model = LookTasteModel.from_space(space)
    prof = Profile(model="looks", tensors={"lut": lut}, data={"gain": 0.5, "meter": "mean"})
    params, gain = model.slider_edit(prof)
    assert gain == 0.5 and params.exposure == pytest.approx(0.4, abs=0.05)
    (note,) = model.preset_notes(prof)
    assert "dE00" in note and float(note.split(": ")[1].split(" ")[0]) < 0.5


def test_gaussian_looks_are_added_after_the_others_and_follow_the_library(space):
    """``n_gaussian``: that many more particles, drawn from the library looks' Gaussian, appended
    last; every other particle (and its gain) is as without them."""
    torch.manual_seed(0)
    more = build_space(_library(), n_sliders=48, n_blends=16, max_dim=24, n_gaussian=400)
    k = len(space["coeffs"])
    assert len(more["coeffs"]) == k + 400 and more["info"]["gaussian"] == 400
    assert torch.equal(more["coeffs"][:k], space["coeffs"]) and torch.equal(more["gains"][:k], space["gains"])
    drawn, looks = more["coeffs"][k:], space["look_coeffs"]
    assert torch.allclose(drawn.mean(0), looks.mean(0), atol=4 * float(looks.std(0).max()) / 20)
    assert float(drawn.std(0).mean()) == pytest.approx(float(looks.std(0).mean()), rel=0.25)


def test_keyed_answers_are_computed_once_and_change_nothing(space, monkeypatch):
    """Active sampling ranks after every answer: answers with a ``Reference.key`` are worked out
    once, with the same posterior as without keys; other images under a new key are not reused."""
    import dataclasses

    import prefstyle.models.look_taste as lt

    refs = _answers(_library().tables[2], 6, seed=4)
    keyed = [dataclasses.replace(r, key=("study", i)) for i, r in enumerate(refs)]
    with_own = LookTasteModel.from_space(space, user_mass=0.1)  # the person's own looks: always recomputed
    assert torch.allclose(with_own.posterior(keyed)[0], with_own.posterior(refs)[0], atol=1e-6)
    plain = LookTasteModel.from_space(space, user_mass=0.0).posterior(refs)[0]
    model = LookTasteModel.from_space(space, user_mass=0.0)  # as packaged
    first = model.posterior(keyed)[0]
    assert torch.allclose(first, plain, atol=1e-6)
    calls = []
    real = lt.sample_colours
    monkeypatch.setattr(lt, "sample_colours", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert torch.equal(model.posterior(keyed)[0], first) and not calls  # nothing recomputed
    flipped = [
        Reference(scene=r.scene, preferred=r.other, other=r.preferred, source=r.source, key=("flip", i))
        for i, r in enumerate(refs)
    ]
    w_flip = model.posterior(flipped)[0]
    assert calls and not torch.allclose(w_flip, first, atol=1e-3)
