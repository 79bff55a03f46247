"""Fitting a LUT to colour mappings, and `prefstyle export-lut` (checked with Pillow's own LUT filter)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.io import write_image
from prefstyle.imaging.lut import apply_lut, identity_lut
from prefstyle.imaging.lut_fit import bin_samples, fit_lut, lut_samples
from prefstyle.imaging.lut_io import read_cube
from prefstyle.imaging.params import RetouchParams
from prefstyle.imaging.pipeline import apply_retouch, retouch_to_lut
from prefstyle.models.base import Profile

PARAMS = RetouchParams(temperature=0.3, contrast=0.25, vibrance=0.35, split_shadow_hue=200.0, split_shadow_sat=0.25)


def _photos(side: int = 96) -> list[torch.Tensor]:
    from skimage import data

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        t = torch.from_numpy(np.ascontiguousarray(getattr(data, name)())).permute(2, 0, 1).float().div(255)
        out.append(F.interpolate(t[None], size=(side, side), mode="area")[0].clamp(0, 1))
    return out


def test_fit_reproduces_a_known_lut_on_the_colours_it_saw():
    true = retouch_to_lut(PARAMS, 17)
    imgs = _photos()
    outs = [apply_lut(i[None], true)[0] for i in imgs]
    x, y = lut_samples(imgs, outs)
    lut = fit_lut(x, y, size=17)
    fitted = torch.stack([apply_lut(i[None], lut)[0] for i in imgs])
    err = (fitted - torch.stack(outs)).abs()
    assert float(err.mean()) * 255 < 0.5
    # an unfitted identity is far worse: the test can fail
    assert float((torch.stack(imgs) - torch.stack(outs)).abs().mean()) * 255 > 5


def test_unvisited_colours_continue_the_displacement_smoothly():
    # only dark-to-mid greys are seen, all brightened by +0.1: the bright corner should follow
    v = torch.linspace(0.0, 0.5, 200)
    x = torch.stack([v, v, v], 1)
    lut = fit_lut(x, x + 0.1, size=9)
    bright = apply_lut(torch.full((1, 3, 1, 1), 0.8), lut).flatten()
    assert torch.allclose(bright, torch.full((3,), 0.9), atol=0.03)


def test_identity_mapping_gives_the_identity_lut():
    imgs = _photos(48)
    x, y = lut_samples(imgs, imgs)
    assert torch.allclose(fit_lut(x, y, size=9), identity_lut(9), atol=1e-3)


def test_binning_keeps_means_and_counts():
    x = torch.tensor([[0.1, 0.1, 0.1], [0.1001, 0.1, 0.1], [0.9, 0.2, 0.3]])
    y = torch.tensor([[0.2, 0.2, 0.2], [0.4, 0.4, 0.4], [0.0, 0.0, 0.0]])
    _, ys, n = bin_samples(x, y, 64)
    assert sorted(n.tolist()) == [1.0, 2.0]
    assert torch.allclose(ys[n == 2], torch.full((1, 3), 0.3))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        fit_lut(torch.rand(10, 3), torch.rand(9, 3))
    with pytest.raises(ValueError):
        fit_lut(torch.rand(10, 3), torch.rand(10, 3), size=1)
    with pytest.raises(ValueError):
        lut_samples([torch.rand(3, 4, 4)], [torch.rand(3, 5, 4)])


def _pillow_apply(cube_path, img: torch.Tensor) -> torch.Tensor:
    cube = read_cube(cube_path)
    s = cube.lut3d.shape[-1]
    table = cube.lut3d.permute(1, 2, 3, 0).reshape(-1).clamp(0, 1).tolist()  # r fastest, as .cube and Pillow
    arr = (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    out = Image.fromarray(arr).filter(ImageFilter.Color3DLUT(s, table))
    return torch.from_numpy(np.array(out)).permute(2, 0, 1).float() / 255


def test_export_lut_cli_matches_the_models_own_rendering(tmp_path):
    from prefstyle.cli import app

    photos = tmp_path / "photos"
    imgs = _photos(128)
    for k, im in enumerate(imgs[:3]):
        write_image(photos / f"p{k}.png", im)
    prof = Profile(
        model="global-style",
        user="ann@phone",
        data={"params": PARAMS.to_dict()},
        model_config={"source": "global-style"},
    )
    prof_path = prof.save(tmp_path / "ann.json")
    out = tmp_path / "ann.cube"
    r = CliRunner().invoke(
        app, ["export-lut", "--profile", str(prof_path), "--out", str(out), "--size", "33", "--photos", str(photos)]
    )
    assert r.exit_code == 0, r.output
    # a photo the fit did not see, through Pillow's LUT filter vs. prefstyle's own rendering
    held_out = imgs[3]
    ours = apply_retouch(held_out[None], PARAMS)[0].clamp(0, 1)
    theirs = _pillow_apply(out, held_out)
    assert float((ours - theirs).abs().mean()) * 255 < 2.0
    # refuses to overwrite without --force, and non-.cube outputs
    r = CliRunner().invoke(app, ["export-lut", "--profile", str(prof_path), "--out", str(out), "--photos", str(photos)])
    assert isinstance(r.exception, PrefstyleError) and "exists" in str(r.exception)
    r = CliRunner().invoke(app, ["export-lut", "--profile", str(prof_path), "--out", str(tmp_path / "x.png")])
    assert isinstance(r.exception, PrefstyleError) and ".cube" in str(r.exception)


def test_export_lut_of_an_adaptive_sliders_taste_says_what_a_cube_cannot_hold(tmp_path):
    """A SliderTaste profile whose brightness follows the photo exports one LUT fitted over the
    photos, and says so."""
    from prefstyle.cli import app
    from prefstyle.models.slider_taste import SliderTasteModel

    photos = tmp_path / "photos"
    for k, im in enumerate(_photos(96)[:3]):
        write_image(photos / f"p{k}.png", im)
    m = SliderTasteModel(particles=8, adapt=1.0)
    vec = torch.zeros(1, m.prior.shape[1])
    vec[0, 2] = 0.4  # exposure +0.4 EV
    prof = Profile(
        model="sliders",
        user="bo",
        tensors={"vectors": vec, "gains": torch.ones(1), "weights": torch.ones(1)},
        data={"sliders": {"exposure": 0.4, "adaptive_brightness": 1.0}},
        model_config={"source": "sliders"},
    )
    out = tmp_path / "bo.cube"
    r = CliRunner().invoke(
        app,
        [
            "export-lut",
            "--profile",
            str(prof.save(tmp_path / "bo.json")),
            "--out",
            str(out),
            "--size",
            "17",
            "--photos",
            str(photos),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "100 % adaptive" in r.output and out.is_file()
