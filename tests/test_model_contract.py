"""The contract every personalization model keeps, checked over every registered model that is
not a reference point: as shipped (packaged weights or settings) or, for a trainable model
without packaged weights, untrained with a small architecture.

personalize from a few references -> a profile of this model -> render (any size, same shape,
in [0,1]) -> the profile saved and loaded renders the same -> a profile of another model is
refused -> ``luts`` (when the model gives them) agree with ``render`` -> the one render path
(:func:`prefstyle.models.render.render_image`) honours strength 0 and 1 -> the optional
abilities answer with the declared types.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.io import ImageData
from prefstyle.imaging.lut import apply_lut
from prefstyle.models import list_models, load
from prefstyle.models.base import PersonalizationModel, Profile, Reference
from prefstyle.models.loading import architecture
from prefstyle.models.reference import ALL_REFERENCE_POINTS
from prefstyle.models.render import render_batch, render_image

pytestmark = pytest.mark.usefixtures("one_thread")

#: small architectures for trainable models that ship no weights (their tests are about the
#: contract, not quality); options of the card's ``task.model`` section
UNTRAINED = {
    "usd": {
        "n_users": 0,
        "n_feats": 8,
        "n_resblocks": 1,
        "hidden": [16],
        "enc_size": 16,
        "adapt_steps": 3,
        "adapt_queries": 64,
        "adapt_size": 16,
        "render_side": 32,
    },
    "upe": {
        "backbone_size": 64,
        "d_model": 32,
        "n_layers": 1,
        "n_heads": 2,
        "ff": 64,
        "style_dim": 16,
        "thumb": 32,
        "n_basis": 4,
        "lut_size": 9,
        "decoder_hidden": 32,
    },
    "exemplar": {
        "backbone_size": 64,
        "d_model": 32,
        "n_layers": 1,
        "n_heads": 2,
        "ff": 64,
        "style_dim": 16,
        "style_size": 16,
        "thumb": 32,
        "n_basis": 4,
        "lut_size": 9,
        "decoder_hidden": 32,
    },
}

NAMES = [n for n in list_models() if n not in ALL_REFERENCE_POINTS]


def _build(name: str) -> PersonalizationModel:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load(name)
    except PrefstyleError:
        arch = architecture(name)
        if arch is None:
            pytest.skip(f"{name}: no packaged weights and no architecture to build untrained")
        torch.manual_seed(0)
        opts = UNTRAINED.get(name, {})
        return arch.to_model(arch.build(opts).eval(), opts)


@pytest.fixture(scope="module", params=NAMES)
def model(request) -> PersonalizationModel:
    return _build(request.param)


@pytest.fixture(scope="module")
def photo(astronaut_small) -> torch.Tensor:
    """``(1,3,72,96)``: a landscape crop of the astronaut (not square: both sides matter)."""
    return astronaut_small[..., 12:84, :].contiguous()


def _refs(img: torch.Tensor, n: int = 3) -> list[Reference]:
    warm = img.clone()
    warm[:, 0] = (warm[:, 0] * 1.25).clamp(0, 1)
    warm[:, 2] = warm[:, 2] * 0.8
    cold = img.clone()
    cold[:, 2] = (cold[:, 2] * 1.25).clamp(0, 1)
    return [Reference(scene=f"s{i}", preferred=warm[0], other=cold[0], source=img[0]) for i in range(n)]


@pytest.fixture(scope="module")
def profile(model, photo) -> Profile:
    return model.personalize(_refs(photo), user="u")


def test_contract_covers_the_shipped_models():
    assert "sliders" in NAMES and "pienet" in NAMES and not set(NAMES) & set(ALL_REFERENCE_POINTS)


def test_personalize_gives_a_profile_of_this_model(model, profile):
    assert profile.model == model.name and profile.user == "u"
    model.check_profile(profile)
    assert profile.model_config.get("name", model.name) == model.name


def test_render_keeps_shape_and_range(model, profile, photo):
    for x in (photo, torch.cat([photo, photo.flip(-1)])):
        y = render_batch(model, profile, x)
        assert y.shape == x.shape and bool(torch.isfinite(y).all())
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_saved_profile_renders_the_same(model, profile, photo, tmp_path):
    back = Profile.load(profile.save(tmp_path / "me.json"))
    assert back.model == profile.model and sorted(back.tensors) == sorted(profile.tensors)
    torch.testing.assert_close(render_batch(model, back, photo), render_batch(model, profile, photo), atol=1e-5, rtol=0)


def test_profile_of_another_model_is_refused(model, photo):
    other = Profile(model="not-" + model.name, data={}, user="u")
    with pytest.raises(PrefstyleError, match="made by model"):
        model.check_profile(other)
    with pytest.raises(PrefstyleError):
        model.render(photo, other)


def test_luts_agree_with_render(model, profile, photo):
    luts = model.luts(photo, profile)
    if luts is None:
        return
    s = luts.shape[-1]
    assert luts.shape == (1, 3, s, s, s)
    via_lut = apply_lut(photo, luts[0]).clamp(0, 1)
    # a LUT holds the global part of a rendering: a model with local edits (PieNet) differs a little
    assert float((via_lut - render_batch(model, profile, photo)).abs().mean()) < 0.02


def test_render_image_strength_and_the_8bit_path(model, profile, photo):
    u8 = ((photo[0] * 255).round() / 255).contiguous()
    data = ImageData(pixels=u8, bit_depth=8)
    full = render_image(model, profile, data, strength=1.0, lut_path=False)
    torch.testing.assert_close(full, render_batch(model, profile, u8[None])[0])
    for lut_path in (True, False):
        none = render_image(model, profile, data, strength=0.0, lut_path=lut_path)
        assert float((none - u8).abs().max()) <= 1.0 / 255
    fast = render_image(model, profile, data, strength=0.5, lut_path=True)
    slow = render_image(model, profile, data, strength=0.5, lut_path=False)
    assert fast.shape == u8.shape and float((fast - slow).abs().mean()) < 0.02


def test_optional_abilities_answer_with_their_types(model, profile, photo):
    assert isinstance(model.describe(profile), str)
    notes = model.export_notes(profile)
    assert isinstance(notes, list) and all(isinstance(n, str) for n in notes)
    assert model.reference_point is False
    renditions = [photo[0], (photo[0] * 0.8), (photo[0] * 1.2).clamp(0, 1)]
    values = model.question_values(_refs(photo, 1), [(photo[0], renditions)])
    if values is not None:
        assert len(values) == 1 and values[0].shape == (3, 3)
        torch.testing.assert_close(values[0], values[0].T)
