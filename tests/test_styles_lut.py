"""LUT styles: .cube and Hald files written by the lut module become styles."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.lut import identity_lut
from prefstyle.imaging.lut_io import CubeLUT, write_cube, write_hald
from prefstyle.styles.base import from_params
from prefstyle.styles.lut_style import LUTStyle
from prefstyle.styles.registry import get_style


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    from skimage import data

    t = torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1).float().div(255.0)[None]
    return torch.nn.functional.interpolate(t, size=(128, 128), mode="area").clamp(0, 1)


@pytest.fixture()
def preset_cube(tmp_path):
    """The teal-orange preset baked into a 33^3 .cube file."""
    lut = get_style("teal-orange").to_lut(33)
    path = tmp_path / "teal orange.cube"
    write_cube(path, lut, title="teal-orange")
    return path


def test_cube_file_becomes_a_style(preset_cube, photo):
    style = get_style(f"lut:{preset_cube}")
    assert isinstance(style, LUTStyle) and style.kind == "lut" and style.is_global
    assert style.name == "lut:teal orange.cube" and style.size == 33
    out = style.apply(photo)
    assert out.shape == photo.shape and 0 <= out.min() and out.max() <= 1
    assert (out - photo).abs().mean() > 5e-3
    assert torch.equal(out, style.apply(photo))
    # renders what was baked (up to .cube's 6 decimals and the LUT interpolation)
    assert (out - get_style("teal-orange").apply(photo)).abs().mean() < 4e-3


def test_lut_style_params_round_trip_and_hash_check(preset_cube, photo):
    style = LUTStyle.from_file(preset_cube)
    p = json.loads(json.dumps(style.params()))
    assert p["kind"] == "lut" and p["path"] == str(preset_cube.resolve()) and len(p["sha256"]) == 64
    rebuilt = from_params(p)
    assert torch.equal(rebuilt.apply(photo), style.apply(photo))
    # the file changes: the saved style refuses to silently render something else
    write_cube(preset_cube, identity_lut(9))
    with pytest.raises(PrefstyleError, match="changed"):
        from_params(p)


def test_hald_image_becomes_a_style(tmp_path, photo):
    lut = get_style("camera:film-negative").to_lut(16)  # level 4 Hald
    path = tmp_path / "film.png"
    write_hald(path, lut, bits=16)
    style = get_style(f"lut:{path}")
    assert style.size == 16
    ref = get_style("camera:film-negative").apply(photo)
    assert (style.apply(photo) - ref).abs().mean() < 6e-3
    assert torch.equal(from_params(style.params()).apply(photo), style.apply(photo))


def test_cube_with_shaper_and_domain(tmp_path, photo):
    # a 1D shaper (1 - (1 - x)^2) followed by an identity 3D table: the shaper is applied
    shaper = (1 - (1 - torch.linspace(0, 1, 1024)) ** 2).expand(3, -1).contiguous()
    path = tmp_path / "shaper.cube"
    write_cube(path, CubeLUT(lut3d=identity_lut(17), lut1d=shaper))
    assert torch.allclose(get_style(f"lut:{path}").apply(photo), 1 - (1 - photo) ** 2, atol=1e-4)
    # a 3D table over a wider DOMAIN_MAX: inputs are mapped into it
    path = tmp_path / "domain.cube"
    write_cube(path, CubeLUT(lut3d=identity_lut(17) * 2.0, domain_max=(2.0, 2.0, 2.0)))
    assert torch.allclose(get_style(f"lut:{path}").apply(photo), photo, atol=1e-5)


def test_to_lut_and_bad_files(preset_cube, tmp_path):
    style = LUTStyle.from_file(preset_cube)
    assert style.to_lut(33).shape == (3, 33, 33, 33)
    small = style.to_lut(9)
    assert small.shape == (3, 9, 9, 9)
    with pytest.raises(PrefstyleError, match="not found"):
        get_style(f"lut:{tmp_path / 'missing.cube'}")
    bad = tmp_path / "bad.cube"
    bad.write_text("LUT_3D_SIZE 2\n0 0 0\n")
    with pytest.raises(PrefstyleError):
        get_style(f"lut:{bad}")
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(PrefstyleError, match="not a LUT file"):
        get_style(f"lut:{txt}")
    with pytest.raises(PrefstyleError, match="path"):
        from_params(LUTStyle(identity_lut(5)).params())
