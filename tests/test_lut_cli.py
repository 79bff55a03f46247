"""`prefstyle lut apply` / `lut convert` end to end on small files."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from prefstyle.cli import main
from prefstyle.imaging.lut import identity_lut
from prefstyle.imaging.lut_io import read_cube, read_hald, write_cube


def _warm_lut(size: int = 9) -> torch.Tensor:
    lut = identity_lut(size)
    lut[0] = (lut[0] * 1.1).clamp(0, 1)
    lut[2] = lut[2] * 0.85
    return lut


def test_lut_apply_writes_styled_images_and_skips_bad(tmp_path: Path, astronaut_small):
    cube = tmp_path / "warm.cube"
    write_cube(cube, _warm_lut(), title="warm")
    src = tmp_path / "in"
    src.mkdir()
    arr = (astronaut_small[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).save(src / "a.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    rc = main(["lut", "apply", str(cube), str(src), "--out", str(out)])
    assert rc == 1  # the broken file was skipped and reported
    res = np.asarray(Image.open(out / "a.png")).astype(float)
    assert res[..., 0].mean() > arr[..., 0].mean() + 3
    assert res[..., 2].mean() < arr[..., 2].mean() - 3
    assert not (out / "broken.jpg").exists()


def test_lut_apply_missing_lut_is_one_line_error(tmp_path: Path, capsys):
    rc = main(["lut", "apply", str(tmp_path / "nope.cube"), str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.cube" in err[0]


def test_lut_convert_cube_hald_round_trip(tmp_path: Path):
    cube = tmp_path / "warm.cube"
    lut = _warm_lut(16)
    write_cube(cube, lut)
    hald = tmp_path / "warm.png"
    assert main(["lut", "convert", str(cube), str(hald), "--level", "4"]) == 0
    back = tmp_path / "back.cube"
    assert main(["lut", "convert", str(hald), str(back)]) == 0
    assert torch.allclose(read_hald(hald), lut, atol=1 / 65535 + 1e-6)
    assert torch.allclose(read_cube(back).lut3d, lut, atol=1e-4)
    # Existing outputs are not overwritten without --force.
    before = back.read_bytes()
    assert main(["lut", "convert", str(hald), str(back)]) == 2
    assert back.read_bytes() == before
