"""``prefstyle export-lut`` of ``looks`` and ``sliders`` profiles without torch
(:mod:`prefstyle.models.lut_export_np`, :mod:`prefstyle.imaging.cube_text`).

The .cube text against :func:`prefstyle.imaging.lut_io.format_cube` (byte for byte), the exported
LUT against the torch path's (``--model`` forces it) to the file's six decimals, the fall-back to
the torch path when the pool's thumbnails are not cached yet (which caches them), and, in a fresh
process, that the torch-free export never imports torch.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from prefstyle.cli import main
from prefstyle.imaging.cube_text import cube_text_3d
from prefstyle.imaging.lut import identity_lut
from prefstyle.imaging.lut_io import CubeLUT, format_cube, read_cube
from prefstyle.models.lut_export_np import cached_photos_u8
from test_enhance_torch_free import _save_profile as _looks_profile
from test_enhance_torch_free_sliders import _save_profile as _sliders_profile

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private thumbnail cache, empty."""
    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cube_text_is_format_cube_byte_for_byte():
    g = torch.Generator().manual_seed(0)
    for lut in (torch.rand(3, 5, 5, 5, generator=g), torch.rand(3, 9, 9, 9, generator=g) * 20 - 9):
        for title in (None, 'my "warm"   look'):
            assert cube_text_3d(lut.numpy(), title) == format_cube(CubeLUT(title=title, lut3d=lut))
    with pytest.raises(ValueError, match="3D LUT"):
        cube_text_3d(np.zeros((3, 4, 4, 5), np.float32))


@pytest.mark.parametrize("kind", ["looks", "sliders"])
def test_export_matches_the_torch_path(tmp_path, cache, kind):
    path = (_looks_profile if kind == "looks" else _sliders_profile)(tmp_path / "p.json")
    first, free, ref = tmp_path / "first.cube", tmp_path / "free.cube", tmp_path / "torch.cube"
    assert cached_photos_u8() is None  # nothing cached yet: the torch path runs (and caches)
    assert main(["export-lut", "--profile", str(path), "--out", str(first)]) == 0
    photos = cached_photos_u8()
    assert photos and all(p.dtype == np.uint8 and p.shape[2] == 3 for p in photos)
    assert main(["export-lut", "--profile", str(path), "--out", str(free)]) == 0
    assert main(["export-lut", "--profile", str(path), "--out", str(ref), "--model", kind]) == 0
    a, b, c = (read_cube(p) for p in (free, ref, first))
    assert a.title == b.title == c.title == f"prefstyle {kind} t"
    assert a.lut3d is not None and b.lut3d is not None and c.lut3d is not None
    assert a.lut3d.shape == (3, 33, 33, 33)
    assert float((a.lut3d - b.lut3d).abs().max()) <= 2e-6  # the six decimals of the file
    assert torch.equal(b.lut3d, c.lut3d)
    assert float((a.lut3d - identity_lut(33)).abs().mean()) > 1e-3  # a taste, not the identity


def test_torch_free_export_does_not_import_torch(tmp_path, cache):
    path = _looks_profile(tmp_path / "p.json", gain=0.5)
    assert main(["export-lut", "--profile", str(path), "--out", str(tmp_path / "warm.cube")]) == 0  # caches
    code = (
        "import sys\n"
        "from prefstyle.cli import main\n"
        f"rc = main(['export-lut', '--profile', {str(path)!r}, '--out', {str(tmp_path / 'x.cube')!r}, '--size', '17'])\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    env = {"PREFSTYLE_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.stdout.split() == ["0", "False"], res.stderr
    assert "fitted on" in res.stderr and "50 % adaptive" in res.stderr
    lut = read_cube(tmp_path / "x.cube").lut3d
    assert lut is not None and lut.shape == (3, 17, 17, 17)
