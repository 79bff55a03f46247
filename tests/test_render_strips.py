"""`enhance`'s 8-bit fast path on photos of a megapixel or more, which Pillow filters in strips
(:func:`prefstyle.models.render.lut_filtered_image`): the file written is the one a single
``Color3DLUT`` pass over the whole photo gives, whatever the thread count, with EXIF orientation
and ICC profiles (sRGB kept, Adobe RGB converted on reading); 16-bit photos keep the float path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from test_enhance_fast_path import _adobe_icc, _exif, _profile

from prefstyle.cli.batch_io import enhance_file
from prefstyle.imaging.io import read_image, srgb_icc_profile, write_image, write_like
from prefstyle.models import load
from prefstyle.models.render import photo_lut, render_image

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 1001, 1300  # 1.3 MP (strips), an odd height (uneven strips)


@pytest.fixture(scope="module")
def model_profile():
    m = load("sliders")
    return m, _profile(m)


def _photo() -> np.ndarray:
    g = np.random.default_rng(0)
    yy, xx = np.meshgrid(np.linspace(0, 1, H), np.linspace(0, 1, W), indexing="ij")
    img = np.stack([0.2 + 0.6 * xx, 0.15 + 0.5 * yy, 0.5 + 0.4 * np.sin(6 * xx * yy)], -1)
    return (np.clip(img + 0.03 * g.standard_normal((H, W, 3)), 0, 1) * 255).round().astype(np.uint8)


@pytest.mark.parametrize(
    ("name", "orientation", "icc"), [("a.jpg", 1, "srgb"), ("b.jpg", 6, "adobe"), ("c.png", 8, None)]
)
def test_strips_write_the_same_file_as_one_pass(tmp_path, model_profile, name, orientation, icc):
    m, prof = model_profile
    src = tmp_path / name
    kw = {"exif": _exif(orientation)}
    if icc:
        kw["icc_profile"] = srgb_icc_profile() if icc == "srgb" else _adobe_icc()
    Image.fromarray(_photo()).save(src, **({"quality": 92} if src.suffix == ".jpg" else {}), **kw)
    data = read_image(src, keep_alpha=True)
    assert data.rgb8 is not None and data.rgb8.shape[:2] == ((W, H) if orientation == 6 or orientation == 8 else (H, W))
    lut = photo_lut(m, prof, data)
    assert lut is not None
    table = lut.clamp(0, 1).permute(1, 2, 3, 0).reshape(-1).numpy()
    whole = Image.fromarray(data.rgb8, "RGB").filter(ImageFilter.Color3DLUT(lut.shape[-1], table))
    ref = tmp_path / f"ref{src.suffix}"
    write_like(ref, whole, data, quality=95)
    for threads in (1, 2, 3):
        dst = tmp_path / f"out{threads}{src.suffix}"
        enhance_file(m, prof, src, dst, threads=threads)
        assert dst.read_bytes() == ref.read_bytes(), threads


def test_16bit_photos_keep_the_float_path(tmp_path, model_profile):
    m, prof = model_profile
    x = torch.from_numpy(_photo()).permute(2, 0, 1).float() / 255
    src = tmp_path / "d16.png"
    write_image(src, x, bit_depth=16, icc=srgb_icc_profile())
    enhance_file(m, prof, src, tmp_path / "out.png", threads=2)
    out = read_image(tmp_path / "out.png")
    assert out.bit_depth == 16
    expected = render_image(m, prof, read_image(src), lut_path=True)
    assert float((out.pixels - expected).abs().max()) <= 1 / 65535 + 1e-7
