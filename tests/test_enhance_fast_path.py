"""The uint8 path of ``prefstyle enhance`` (:func:`prefstyle.cli.batch_io.enhance_file`,
:func:`prefstyle.models.render.render_image_uint8`) against the generic path it replaced: the
photo decoded to float, ``model.render`` at full resolution, quantized on writing.

Photos of 1100 x 825 px (so the metering thumbnail is a real subsample), 8-bit JPEG/PNG with an
EXIF orientation and an ICC profile (sRGB, and Adobe RGB, which is converted on reading), and
16-bit PNG/TIFF (which keep the float path). Models: the default ``sliders``, and ``looks``
(slow: its personalization takes seconds).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from prefstyle.cli.batch_io import enhance_file
from prefstyle.imaging.decode import rgb8_to_float
from prefstyle.imaging.io import read_image, srgb_icc_profile, write_image, write_like
from prefstyle.models import load
from prefstyle.models.base import Reference
from prefstyle.models.render import _metering_view, render_batch, render_image_uint8

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 825, 1100


def _photo(seed: int = 0) -> torch.Tensor:
    """``(3,H,W)``: smooth colour gradients with texture, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    img = torch.stack([0.2 + 0.6 * xx, 0.15 + 0.5 * yy, 0.5 + 0.4 * torch.sin(6 * xx * yy)])
    return (img + 0.03 * torch.randn((3, H, W), generator=g)).clamp(0, 1)


def _exif(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[271], ex[274] = "Test", orientation
    return ex.tobytes()


def _adobe_icc() -> bytes:
    """A matrix/TRC profile that is not sRGB (so 8-bit pixels are converted by LittleCMS)."""
    p = ImageCms.createProfile("sRGB")
    prof = ImageCms.ImageCmsProfile(p)
    data = bytearray(prof.tobytes())
    # gamma 2.2 curves instead of sRGB's: find the rTRC/gTRC/bTRC tags and overwrite them
    import struct

    (count,) = struct.unpack_from(">I", data, 128)
    for i in range(count):
        sig, off, size = struct.unpack_from(">4sII", data, 132 + 12 * i)
        if sig in (b"rTRC", b"gTRC", b"bTRC") and size >= 14:
            data[off : off + 14] = b"curv\0\0\0\0" + struct.pack(">IH", 1, int(2.2 * 256))
    return bytes(data)


def _profile(model):
    x = _photo(3)[None]
    small = torch.nn.functional.interpolate(x, size=(48, 64), mode="area")
    refs = [
        Reference(
            scene=f"s{i}",
            preferred=(small[0] * (1.1 + 0.02 * i)).clamp(0, 1),
            other=(small[0] * (0.8 - 0.02 * i)).clamp(0, 1),
            source=small[0],
        )
        for i in range(6)
    ]
    return model.personalize(refs, user="t")


@pytest.fixture(scope="module", params=["sliders", pytest.param("looks", marks=pytest.mark.slow)])
def model_profile(request):
    m = load(request.param)
    return m, _profile(m)


def _write_8bit(path, orientation: int, icc: bytes | None) -> None:
    arr = (_photo(1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    kw = {"exif": _exif(orientation)}
    if icc:
        kw["icc_profile"] = icc
    Image.fromarray(arr).save(path, **({"quality": 95} if path.suffix == ".jpg" else {}), **kw)


@pytest.mark.parametrize(
    ("name", "orientation", "icc"),
    [
        ("upright_srgb.jpg", 1, "srgb"),
        ("rotated_adobe.jpg", 6, "adobe"),
        ("mirrored_srgb.png", 2, "srgb"),
        ("untagged.png", 8, None),
    ],
)
def test_8bit_uint8_path_matches_the_float_render(tmp_path, model_profile, name, orientation, icc):
    m, prof = model_profile
    src = tmp_path / name
    _write_8bit(src, orientation, {"srgb": srgb_icc_profile(), "adobe": _adobe_icc(), None: None}[icc])
    data = read_image(src, keep_alpha=True)
    assert data.rgb8 is not None and data._pixels is None  # no float copy made by decoding
    assert (data.height, data.width) == ((W, H) if orientation in (6, 8) else (H, W))
    ref = render_batch(m, prof, data.pixels[None])[0]  # the generic path: float pixels, model.render
    torch.testing.assert_close(data.pixels, rgb8_to_float(data.rgb8), rtol=0, atol=0)

    fresh = read_image(src, keep_alpha=True)
    y8 = render_image_uint8(m, prof, fresh, threads=1)
    assert y8 is not None and y8.dtype == np.uint8 and y8.shape == (data.height, data.width, 3)
    assert fresh._pixels is None  # the fast path never made the photo's float copy
    diff = np.abs(y8.astype(np.float32) / 255 - ref.permute(1, 2, 0).numpy())
    assert diff.max() <= 1.01 / 255 and diff.mean() <= 0.5 / 255  # quantization and Pillow's fixed point

    out = tmp_path / "out" / f"{src.stem}.png"  # lossless output: the written pixels are comparable
    enhance_file(m, prof, src, out, threads=1)
    back = read_image(out)
    assert np.array_equal(back.rgb8, y8)
    assert back.exif is not None and Image.Exif().load(back.exif) is None
    assert back.icc == data.output_icc
    jpg = tmp_path / "out" / f"{src.stem}.jpg"  # written from a Pillow image: the same file as from y8
    enhance_file(m, prof, src, jpg, threads=2)
    write_like(tmp_path / "ref.jpg", y8, read_image(src, keep_alpha=True))
    assert jpg.read_bytes() == (tmp_path / "ref.jpg").read_bytes()


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_keeps_the_float_path(tmp_path, model_profile, ext):
    m, prof = model_profile
    src = tmp_path / f"deep{ext}"
    write_image(src, _photo(2), bit_depth=16, exif=_exif(3), icc=srgb_icc_profile())
    data = read_image(src, keep_alpha=True)
    assert data.bit_depth == 16 and data.rgb8 is None
    assert render_image_uint8(m, prof, data) is None
    out = tmp_path / "out" / src.name
    enhance_file(m, prof, src, out)
    back = read_image(out)
    assert back.bit_depth == 16
    ref = render_batch(m, prof, data.pixels[None])[0]
    assert float((back.pixels - ref).abs().max()) <= 1.01 / 65535


def test_metering_thumbnail_holds_exactly_the_metered_pixels():
    from prefstyle.models.slider_taste import metered_ev

    rng = np.random.default_rng(0)
    for h, w in [(3000, 4000), (2000, 3000), (825, 1100), (300, 5900), (300, 200)]:  # 5900 // 256 is prime
        u8 = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        thumb = _metering_view(u8, metered=True)
        full = metered_ev(rgb8_to_float(u8)[None])
        assert torch.equal(metered_ev(rgb8_to_float(thumb)[None]), full)
        other = _metering_view(u8, metered=False)
        assert max(other.shape[:2]) >= min(1024, max(h, w))
