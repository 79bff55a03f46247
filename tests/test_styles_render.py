"""Every registered style renders a real photo: in range, not the identity, deterministic, and
rebuilt exactly from its JSON parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prefstyle.errors import PrefstyleError
from prefstyle.styles.base import STYLE_KINDS, Style, from_params
from prefstyle.styles.camera import (
    CAMERA_PROFILES,
    CameraRendering,
    ToneCurve,
    character_matrix,
    sample_camera,
)
from prefstyle.styles.classical import CLASSICAL_METHODS
from prefstyle.styles.registry import get_style, list_styles, style_names


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """skimage's astronaut, downscaled to (1,3,128,128)."""
    from skimage import data

    t = torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1).float().div(255.0)[None]
    return torch.nn.functional.interpolate(t, size=(128, 128), mode="area").clamp(0, 1)


@pytest.fixture(scope="module")
def photos(photo) -> torch.Tensor:
    """A batch of two: the astronaut and a darker, blue-cast copy of it."""
    dark = (photo**1.8 * torch.tensor([0.85, 0.95, 1.1]).view(1, 3, 1, 1)).clamp(0, 1)
    return torch.cat([photo, dark])


NAMES = style_names() + ["sample:0", "sample:12345", "camera:sample:0", "camera:sample:7"]


def test_registry_lists_every_kind():
    infos = list_styles()
    kinds = {s.kind for s in infos}
    assert kinds == {"preset", "classical", "camera"}
    assert len([s for s in infos if s.kind == "preset"]) >= 15
    assert len([s for s in infos if s.kind == "camera"]) >= 6
    assert {s.name for s in infos if s.kind == "classical"} >= {
        "hist-eq",
        "clahe",
        "gamma",
        "auto-levels",
        "gray-world",
        "white-patch",
        "msrcr",
        "lime",
        "s-curve",
    }
    assert len(set(style_names())) == len(infos)
    assert all(s.description for s in infos)
    assert list_styles("camera") == [s for s in infos if s.kind == "camera"]


@pytest.mark.parametrize("name", NAMES)
def test_style_renders_in_range_not_identity_and_deterministic(name, photos):
    style = get_style(name)
    assert isinstance(style, Style) and style.kind in STYLE_KINDS
    out = style.apply(photos)
    assert out.shape == photos.shape and out.dtype == photos.dtype
    assert torch.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    diff = (out - photos).abs().mean(dim=(1, 2, 3))
    assert (diff > 2e-3).all(), f"{name} leaves an image (almost) unchanged: {diff.tolist()}"
    assert torch.equal(out, style.apply(photos)), "not deterministic"
    assert torch.equal(out, get_style(name).apply(photos)), "a fresh instance renders differently"
    # one image at a time gives the same as the batch; (3,H,W) input works too
    assert torch.allclose(style.apply(photos[1]), out[1], atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trip_rebuilds_the_same_style(name, photo):
    style = get_style(name)
    text = json.dumps(style.params())
    rebuilt = from_params(json.loads(text))
    assert type(rebuilt) is type(style)
    assert rebuilt.params() == style.params()
    assert torch.equal(rebuilt.apply(photo), style.apply(photo))
    assert from_params(text).params() == style.params()  # a JSON string works too


@pytest.mark.parametrize("name", ["warm-film", "gamma", "clahe", "camera:vivid", "sample:3"])
def test_strength_blends_and_round_trips(name, photo):
    style = get_style(name)
    full = style.apply(photo)
    assert torch.allclose(style.with_strength(0.0).apply(photo), photo, atol=1e-5)
    half = get_style(name, strength=0.5)
    out = half.apply(photo)
    d_half, d_full = (out - photo).abs().mean(), (full - photo).abs().mean()
    assert 0.2 * d_full < d_half < 0.8 * d_full
    rebuilt = from_params(json.loads(json.dumps(half.params())))
    assert rebuilt.strength == 0.5 and torch.equal(rebuilt.apply(photo), out)


def test_global_flags_match_the_issue():
    glob = {s.name: get_style(s.name).is_global for s in list_styles()}
    for n in ("gamma", "s-curve", "gray-world", "white-patch", "auto-levels", "hist-eq"):
        assert glob[n], n
    for n in ("clahe", "msrcr", "msrcp", "lime"):
        assert not glob[n], n
    assert all(glob[s.name] for s in list_styles() if s.kind in ("preset", "camera"))
    with pytest.raises(ValueError, match="spatially varying"):
        get_style("clahe").to_lut(9)
    with pytest.raises(ValueError, match="image="):
        get_style("gray-world").to_lut(9)


@pytest.mark.parametrize(
    "name",
    ["warm-film", "teal-orange", "gamma", "s-curve", "camera:punchy-phone", "gray-world", "white-patch", "auto-levels"],
)
def test_global_styles_bake_into_a_lut(name, photos):
    from prefstyle.imaging.lut import apply_lut

    style = get_style(name)
    for img in photos:
        lut = style.to_lut(33, image=img[None] if style.image_dependent else None)
        assert lut.shape == (3, 33, 33, 33)
        direct = style.apply(img[None])
        baked = apply_lut(img[None], lut)
        assert (baked - direct).abs().mean() < 4e-3, name
        assert (baked - direct).abs().max() < 0.1, name


def test_image_dependent_styles_use_the_reference_statistics(photos):
    style = get_style("gray-world")
    same = style.apply_with_reference(photos[1:], photos[1:])
    assert torch.allclose(same, style.apply(photos[1:]), atol=1e-6)
    other = style.apply_with_reference(photos[1:], photos[:1])
    assert not torch.allclose(other, same, atol=1e-3)


def test_classical_settings_overrides_and_errors(photo):
    g2 = get_style("gamma", gamma=2.2)
    assert g2.params()["settings"]["gamma"] == 2.2
    assert g2.apply(photo).mean() > get_style("gamma").apply(photo).mean()
    with pytest.raises(PrefstyleError, match="no setting"):
        get_style("gamma", sharpness=1)
    with pytest.raises(PrefstyleError, match="outside"):
        get_style("gamma", gamma=50.0)
    with pytest.raises(PrefstyleError, match="did you mean: clahe"):
        get_style("clahee")
    with pytest.raises(PrefstyleError, match="unknown style"):
        get_style("nothing-like-this-at-all")
    with pytest.raises(PrefstyleError, match="unknown style kind"):
        from_params({"kind": "oil-painting"})
    with pytest.raises(PrefstyleError, match="unknown classical method"):
        from_params({"kind": "classical", "method": "sharpen"})


def test_preset_and_camera_overrides(photo):
    p = get_style("warm-film", exposure=0.5)
    assert p.params()["retouch"]["exposure"] == 0.5
    c = get_style("camera:vivid", saturation=1.0, contrast=0.0)
    assert c.params()["saturation"] == 1.0 and c.params()["tone"]["contrast"] == 0.0
    with pytest.raises(PrefstyleError):
        get_style("camera:vivid", sparkle=1.0)
    assert set(CLASSICAL_METHODS) <= set(style_names())


def test_style_json_as_name(tmp_path, photo):
    style = get_style("sample:5")
    assert get_style(style.to_json()) == style
    f = tmp_path / "look.json"
    f.write_text(style.to_json())
    assert torch.equal(get_style(str(f)).apply(photo), style.apply(photo))


# -- camera renderings ---------------------------------------------------------------------


def _greys() -> torch.Tensor:
    ramp = torch.linspace(0, 1, 64)
    return ramp.view(1, 1, 1, 64).expand(1, 3, 4, 64).contiguous()


@pytest.mark.parametrize(
    "cam", [*CAMERA_PROFILES.values(), *[sample_camera(s) for s in range(20)]], ids=lambda c: c.name
)
def test_camera_renderings_keep_greys_neutral_without_wb_bias(cam):
    neutral = cam.replace(wb_temperature=0.0, wb_tint=0.0)
    out = neutral.apply(_greys())
    assert (out.amax(dim=1) - out.amin(dim=1)).max() < 2e-3
    # and the tone curve is monotone on greys
    g = out[0, 0, 0]
    assert (g[1:] - g[:-1] >= -1e-6).all()


def test_camera_wb_bias_tints_greys_and_matrix_rules():
    warm = CameraRendering(wb_temperature=0.5).apply(_greys())
    assert (warm[:, 0] - warm[:, 2]).mean() > 0.02
    with pytest.raises(PrefstyleError, match="sum to 1"):
        CameraRendering(matrix=[[1.2, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(PrefstyleError, match="outside"):
        CameraRendering(tone=ToneCurve(contrast=3.0))
    m = np.asarray(character_matrix(red=(0.1, 0.0), blue=(0.0, -0.05)))
    assert np.allclose(m.sum(axis=1), 1.0)


def test_camera_profiles_differ_and_sampler_is_deterministic(photo):
    outs = [c.apply(photo) for c in CAMERA_PROFILES.values()]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            assert (outs[i] - outs[j]).abs().mean() > 5e-3
    assert sample_camera(4).params() == sample_camera(4).params()
    assert sample_camera(4).params() != sample_camera(5).params()
    a = [sample_camera(np.random.default_rng(0)).params() for _ in range(2)]
    assert a[0] == a[1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["warm-film", "clahe", "gray-world", "gamma", "camera:vivid", "sample:1"])
def test_styles_run_on_cuda_and_match_cpu(name, photo):
    style = get_style(name)
    out = style.apply(photo.cuda())
    assert out.is_cuda
    assert (out.cpu() - style.apply(photo)).abs().max() < 2e-3
