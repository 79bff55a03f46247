"""`prefstyle styles list` / `apply` through typer's CliRunner on temporary files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from prefstyle.cli.styles_cmd import app
from prefstyle.imaging.io import read_image, write_image
from prefstyle.styles.registry import get_style


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture()
def inputs(tmp_path):
    """Two small real photos (a JPEG and a 16-bit PNG) and one file that is not an image."""
    from skimage import data

    def small(arr, size=(48, 64)):
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div(255.0)[None]
        return torch.nn.functional.interpolate(t, size=size, mode="area").clamp(0, 1)[0]

    src = tmp_path / "in"
    src.mkdir()
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "PrefstyleTestCam"  # Make
    write_image(src / "astronaut.jpg", small(data.astronaut()), bit_depth=8, exif=exif.tobytes())
    write_image(src / "coffee.png", small(data.coffee()), bit_depth=16)
    (src / "broken.jpg").write_bytes(b"this is not a jpeg")
    return src


def test_list_prints_a_table(runner):
    r = runner.invoke(app, ["list"])
    assert r.exit_code == 0, r.output
    for name in ("warm-film", "teal-orange", "clahe", "msrcr", "camera:vivid"):
        assert name in r.output
    assert "preset" in r.output and "classical" in r.output and "camera" in r.output


def test_list_json_and_kind_filter(runner):
    r = runner.invoke(app, ["list", "--json", "--kind", "camera"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(rows) >= 6 and all(row["kind"] == "camera" for row in rows)


def test_apply_skips_bad_file_writes_others_and_exits_1(runner, inputs, tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, ["apply", "warm-film", str(inputs), "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert "broken.jpg" in r.output and "skipped" in r.output
    skipped_lines = [line for line in r.output.splitlines() if "skipped" in line]
    assert len(skipped_lines) == 1
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.jpg", "coffee.png"]
    assert b"PrefstyleTestCam" in (read_image(out / "astronaut.jpg").exif or b"")  # EXIF kept
    for name in ("astronaut.jpg", "coffee.png"):
        src, dst = read_image(inputs / name), read_image(out / name)
        assert dst.bit_depth == src.bit_depth
        assert dst.pixels.shape == src.pixels.shape
        assert (dst.pixels - src.pixels).abs().mean() > 0.005
    # the output is the style applied to the decoded input (up to quantisation)
    src = read_image(inputs / "coffee.png")
    want = get_style("warm-film").apply(src.pixels[None])[0]
    assert (read_image(out / "coffee.png").pixels - want).abs().max() < 2e-3


def test_apply_good_files_exit_0_with_strength_and_set(runner, inputs, tmp_path):
    out = tmp_path / "o2"
    good = [str(inputs / "astronaut.jpg"), str(inputs / "coffee.png")]
    r = runner.invoke(app, ["apply", "gamma", *good, "--out", str(out), "--strength", "0.5", "--set", "gamma=2.0"])
    assert r.exit_code == 0, r.output
    src = read_image(inputs / "coffee.png").pixels
    want = get_style("gamma", gamma=2.0, strength=0.5).apply(src[None])[0]
    assert (read_image(out / "coffee.png").pixels - want).abs().max() < 2e-3


def test_apply_refuses_to_overwrite_its_input(runner, inputs):
    before = (inputs / "coffee.png").read_bytes()
    r = runner.invoke(app, ["apply", "faded", str(inputs / "coffee.png"), "--out", str(inputs)])
    assert r.exit_code != 0
    assert "overwrite" in str(r.exception) or "overwrite" in r.output
    assert (inputs / "coffee.png").read_bytes() == before


def test_apply_unknown_style_and_missing_input(runner, inputs, tmp_path):
    r = runner.invoke(app, ["apply", "warm-flim", str(inputs / "coffee.png"), "--out", str(tmp_path / "x")])
    assert r.exit_code != 0
    assert "warm-film" in (str(r.exception) + r.output)
    r = runner.invoke(
        app, ["apply", "clahe", str(tmp_path / "nope.jpg"), str(inputs / "coffee.png"), "--out", str(tmp_path / "y")]
    )
    assert r.exit_code == 1
    assert "nope.jpg" in r.output
    assert (tmp_path / "y" / "coffee.png").exists()


def test_apply_through_the_main_entry_point(inputs, tmp_path, capsys):
    from prefstyle.cli import main

    rc = main(["styles", "apply", "camera:vivid", str(inputs / "astronaut.jpg"), "--out", str(tmp_path / "m")])
    assert rc == 0
    assert (tmp_path / "m" / "astronaut.jpg").exists()
    assert main(["styles", "apply", "no-such-style", str(inputs / "astronaut.jpg"), "--out", str(tmp_path / "m")]) == 2
    assert "unknown style" in capsys.readouterr().err


def test_large_images_of_global_styles_go_through_a_lut(inputs, tmp_path, monkeypatch):
    import prefstyle.cli.styles_cmd as cmd

    monkeypatch.setattr(cmd, "LUT_MIN_PIXELS", 100)  # make the small test images "large"
    x = read_image(inputs / "coffee.png").pixels[None]
    for name in ("teal-orange", "gray-world", "camera:flat-log"):
        style = get_style(name)
        baked = cmd._render(style, x)
        assert (baked - style.apply(x)).abs().mean() < 4e-3, name


def test_apply_a_cube_file(runner, inputs, tmp_path):
    from prefstyle.imaging.lut_io import write_cube

    cube = tmp_path / "look.cube"
    write_cube(cube, get_style("faded").to_lut(17))
    out = tmp_path / "o3"
    r = runner.invoke(app, ["apply", f"lut:{cube}", str(inputs / "coffee.png"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    src = read_image(inputs / "coffee.png").pixels
    want = get_style("faded").apply(src[None])[0]
    assert (read_image(out / "coffee.png").pixels - want).abs().mean() < 4e-3
