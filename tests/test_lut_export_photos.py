"""The photos `prefstyle export-lut` averages over: reduced-scale JPEG decode and the thumbnail cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from prefstyle.eval import lut_export


def _photo(h: int = 1200, w: int = 1800) -> np.ndarray:
    """A smooth, colourful ``(h, w, 3)`` uint8 test picture (JPEG-friendly)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(x / 97.0)
    g = 0.5 + 0.4 * np.cos(y / 131.0)
    b = 0.5 + 0.4 * np.sin((x + y) / 173.0)
    return (np.stack([r, g, b], -1) * 255).round().astype(np.uint8)


def _full(path, side: int) -> torch.Tensor:
    """The reference: the full decode, area-averaged to the same size."""
    from prefstyle.data.photos import long_side_size
    from prefstyle.imaging.io import read_image
    from prefstyle.imaging.resize import resize_long_side

    img = read_image(path).pixels
    out = resize_long_side(img[None], side, mode="area")[0]
    assert tuple(out.shape[-2:]) == long_side_size(*img.shape[-2:], side, upscale=True)
    return out


def test_reduced_scale_jpeg_decode_matches_the_full_decode(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(_photo()).save(path, quality=95)
    fast = lut_export.draft_thumbnail(path, 192)
    assert fast is not None and fast.shape == (3, 128, 192) and fast.dtype == torch.float32
    assert float((fast - _full(path, 192)).abs().mean()) < 0.01


def test_jpeg_with_an_icc_profile_is_converted_and_rotated_or_non_jpeg_files_decode_fully(tmp_path):
    from prefstyle.imaging.icc import srgb_icc_profile

    arr = _photo(600, 900)
    tagged = tmp_path / "tagged.jpg"
    Image.fromarray(arr).save(tagged, quality=95, icc_profile=srgb_icc_profile())
    fast = lut_export.draft_thumbnail(tagged, 96)
    assert fast is not None and float((fast - _full(tagged, 96)).abs().mean()) < 0.01
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[lut_export.ORIENTATION_TAG] = 6
    Image.fromarray(arr).save(rotated, exif=exif)
    png = tmp_path / "p.png"
    Image.fromarray(arr).save(png)
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(arr).convert("CMYK").save(cmyk)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    for path in (rotated, png, cmyk, broken):
        assert lut_export.draft_thumbnail(path, 96) is None, path.name


def test_default_images_are_cached_and_give_the_same_lut(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    first = lut_export.default_images(system=False)
    if not first:
        pytest.skip("no bundled photos")
    assert list((tmp_path / "cache" / "lut-photos").glob("*.npz"))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(lut_export, "draft_thumbnail", no_decoding)
    again = lut_export.default_images(system=False)
    assert len(again) == len(first) and all(torch.equal(a, b) for a, b in zip(first, again))
    # a damaged cache is decoded again, not an error
    monkeypatch.undo()
    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    for f in (tmp_path / "cache" / "lut-photos").glob("*.npz"):
        f.write_bytes(b"garbage")
    assert all(torch.equal(a, b) for a, b in zip(first, lut_export.default_images(system=False)))


def test_the_fast_photos_move_an_adaptive_sliders_lut_by_well_under_half_a_delta_e(tmp_path, monkeypatch):
    """The LUT from the fast thumbnails against the one from the content pool's full decode."""
    from prefstyle.data.pool import ContentPool
    from prefstyle.imaging.color import delta_e_2000, rgb_to_lab
    from prefstyle.imaging.params import RetouchParams
    from prefstyle.models import create_model
    from prefstyle.models.base import Profile

    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    pool = ContentPool.bundled(system=False)
    full = [pool.scene_image(f"{pid}#0", size=192)[None] for pid in pool.photo_ids]
    fast = [x[None] for x in lut_export.default_images(system=False)]
    taste = RetouchParams(exposure=0.4, contrast=0.3, temperature=0.3, saturation=0.2, shadows=0.2)
    prof = Profile(
        model="sliders",
        model_config={"source": "sliders"},
        tensors={"vectors": taste.to_vector()[None], "gains": torch.tensor([0.8]), "weights": torch.ones(1)},
    )
    model = create_model("sliders")
    a = lut_export.profile_to_lut(model, prof, size=17, images=full)
    b = lut_export.profile_to_lut(model, prof, size=17, images=fast)
    d = delta_e_2000(rgb_to_lab(a.reshape(1, 3, -1, 1)), rgb_to_lab(b.reshape(1, 3, -1, 1)))
    assert float(d.max()) < 0.5
