"""Tests for prefstyle.imaging.io: formats, bit depth, EXIF, ICC, orientation, safety."""

from __future__ import annotations

import io as stdio
import logging
import struct
import sys
import time
import types
import zlib
from pathlib import Path

import colour
import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, ImageOps

from prefstyle.errors import PrefstyleError
from prefstyle.imaging import io as pio
from prefstyle.imaging.io import (
    DEFAULT_MAX_PIXELS,
    ImageData,
    list_images,
    load_image,
    read_image,
    srgb_icc_profile,
    write_image,
    write_like,
)

# --------------------------------------------------------------------------------------------
# Helpers: ICC profiles built byte by byte, EXIF blocks, test pictures
# --------------------------------------------------------------------------------------------

ICC_D50 = np.array([0.9642, 1.0, 0.8249])


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _desc_tag(text: str) -> bytes:
    a = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(a)) + a + bytes(4 + 4 + 2 + 1 + 67)


def _gamma_curve(g: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(g * 256)) + b"\0\0"


def _para_curve(ftype: int, params) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">HH", ftype, 0) + b"".join(_s15(p) for p in params)


SRGB_PARA = _para_curve(3, (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))


def _lut16_tag(matrix: np.ndarray, gamma: float) -> bytes:
    """An A2B0 ``mft2`` tag equivalent to a gamma + matrix profile (a 2-point CLUT is exact for a linear map)."""
    n_in = 256
    x = np.linspace(0, 1, n_in)
    in_table = np.round(np.power(x, gamma) * 65535).astype(">u2").tobytes() * 3
    clut = []
    for r in (0, 1):
        for g in (0, 1):
            for b in (0, 1):
                xyz = matrix @ np.array([r, g, b], float)
                clut.extend(np.clip(np.round(xyz * 32768), 0, 65535).astype(int).tolist())  # u1Fixed15
    clut_b = np.array(clut, dtype=">u2").tobytes()
    out_table = np.round(np.linspace(0, 65535, 2)).astype(">u2").tobytes() * 3
    ident = b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    return b"mft2\0\0\0\0" + bytes([3, 3, 2, 0]) + ident + struct.pack(">HH", n_in, 2) + in_table + clut_b + out_table


def make_icc(description: str, tags: list[tuple[bytes, bytes]], color_space: bytes = b"RGB ") -> bytes:
    """A minimal ICC v2 display profile holding ``tags`` (tags with equal data share it)."""
    tags = [
        (b"desc", _desc_tag(description)),
        (b"cprt", b"text\0\0\0\0No copyright\0"),
        (b"wtpt", _xyz_tag(ICC_D50)),
    ] + tags
    table_size = 4 + 12 * len(tags)
    data = b""
    entries = b""
    placed: dict[bytes, int] = {}
    for sig, payload in tags:
        if payload not in placed:
            while len(data) % 4:
                data += b"\0"
            placed[payload] = 128 + table_size + len(data)
            data += payload
        entries += struct.pack(">4sII", sig, placed[payload], len(payload))
    while len(data) % 4:
        data += b"\0"
    size = 128 + table_size + len(data)
    header = struct.pack(
        ">I4sI4s4s4s6H4s", size, b"\0\0\0\0", 0x02100000, b"mntr", color_space, b"XYZ ", 2024, 1, 1, 0, 0, 0, b"acsp"
    )
    header += bytes(4 * 5 + 8)  # platform, flags, manufacturer, model, intent; attributes
    header = header[:64] + struct.pack(">I", 0) + b"".join(_s15(v) for v in ICC_D50) + bytes(4 + 16 + 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + entries + data


def d50_colorants(space: str) -> np.ndarray:
    """Linear RGB -> XYZ (ICC D50, Bradford), columns = colorants, as an ICC profile stores them."""
    cs = colour.RGB_COLOURSPACES[space]
    cat = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        colour.xy_to_XYZ(cs.whitepoint), ICC_D50, transform="Bradford"
    )
    return cat @ cs.matrix_RGB_to_XYZ


def matrix_profile(description: str, matrix: np.ndarray, curve: bytes) -> bytes:
    cols = [(sig, _xyz_tag(matrix[:, i])) for i, sig in enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))]
    return make_icc(description, cols + [(b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)])


ADOBE_GAMMA = 563 / 256
ADOBE_ICC = matrix_profile("Adobe RGB (1998) test", d50_colorants("Adobe RGB (1998)"), _gamma_curve(ADOBE_GAMMA))
P3_ICC = matrix_profile("Display P3 test", d50_colorants("Display P3"), SRGB_PARA)
SRGB_CLONE_ICC = matrix_profile("Some vendor's sRGB", pio._srgb_matrix(), SRGB_PARA)
ADOBE_LUT_ICC = make_icc(
    "Adobe RGB as a LUT profile", [(b"A2B0", _lut16_tag(d50_colorants("Adobe RGB (1998)"), ADOBE_GAMMA))]
)
GRAY22_ICC = make_icc("Gray gamma 2.2 test", [(b"kTRC", _gamma_curve(2.2))], color_space=b"GRAY")


def adobe_to_srgb(rgb: np.ndarray) -> np.ndarray:
    """Reference: colour-science, Adobe RGB (1998) encoded -> sRGB encoded, clipped."""
    out = colour.RGB_to_RGB(
        np.asarray(rgb, float),
        colour.RGB_COLOURSPACES["Adobe RGB (1998)"],
        colour.RGB_COLOURSPACES["sRGB"],
        apply_cctf_decoding=True,
        apply_cctf_encoding=False,
    )
    return colour.RGB_COLOURSPACES["sRGB"].cctf_encoding(np.clip(out, 0, 1))


def make_exif(orientation: int = 1, make: str = "TestMake") -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    ex[0x010F] = make
    ex[0x0110] = "TestModel"
    ex[0x0131] = "SomeEditor 1.0"
    sub = ex.get_ifd(0x8769)
    sub[0x9003] = "2024:05:06 07:08:09"
    sub[0x829A] = 0.004  # exposure time
    sub[0xA005] = {1: "R98", 2: b"0100"}  # interoperability IFD
    gps = ex.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 0.0)
    return ex.tobytes()


def asym_rgb(h: int = 6, w: int = 10) -> np.ndarray:
    """An image with no symmetry: every pixel differs."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 20 + 5, y * 35 + 10, (x * 7 + y * 13) % 250], axis=-1).astype(np.uint8)


def random_chw(h: int = 24, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((3, h, w), dtype=np.float32))


def u8(pixels: torch.Tensor) -> np.ndarray:
    return (pixels * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def u16(pixels: torch.Tensor) -> np.ndarray:
    return (pixels.double() * 65535).round().to(torch.int64).permute(1, 2, 0).numpy().astype(np.uint16)


def read_u16_file(path: Path) -> np.ndarray:
    """The raw 16-bit RGB samples of a PNG/TIFF, read independently of the module."""
    if path.suffix == ".png":
        return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    return tifffile.imread(path)


# --------------------------------------------------------------------------------------------
# Round trips and bit depth
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff"])
def test_8bit_lossless_round_trip_is_exact(tmp_path, ext):
    x = random_chw()
    p = tmp_path / f"a{ext}"
    assert write_image(p, x, bit_depth=8) == 8
    img = read_image(p)
    assert img.bit_depth == 8 and img.format in ("PNG", "TIFF")
    assert img.pixels.dtype == torch.float32 and img.pixels.shape == (3, 24, 32)
    np.testing.assert_array_equal(u8(img.pixels), u8(x))
    np.testing.assert_array_equal(np.asarray(Image.open(p).convert("RGB")), u8(x))


@pytest.mark.parametrize("ext", [".jpg", ".jpeg"])
def test_jpeg_round_trip_is_close(tmp_path, ext):
    x = torch.nn.functional.interpolate(random_chw(6, 8)[None], size=(48, 64), mode="bilinear")[0]
    p = tmp_path / f"a{ext}"
    write_image(p, x, quality=95)
    img = read_image(p)
    assert img.format == "JPEG" and img.bit_depth == 8
    assert float((img.pixels - x).abs().mean()) < 0.01


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip_preserves_every_value(tmp_path, ext):
    codes = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    arr = np.stack([codes, codes[::-1], codes.T], axis=-1)
    x = torch.from_numpy(arr.astype(np.float32) / 65535).permute(2, 0, 1)
    p = tmp_path / f"deep{ext}"
    assert write_image(p, x, bit_depth=16) == 16
    np.testing.assert_array_equal(read_u16_file(p), arr)  # what is on disk
    img = read_image(p)
    assert img.bit_depth == 16
    np.testing.assert_array_equal(u16(img.pixels), arr)  # and what comes back


def test_16bit_request_on_jpeg_writes_8bit(tmp_path):
    p = tmp_path / "a.jpg"
    assert write_image(p, random_chw(), bit_depth=16) == 8
    assert read_image(p).bit_depth == 8


def test_quantization_rounds_and_clamps(tmp_path):
    vals = torch.tensor([-0.5, 0.0, 0.49 / 255, 0.51 / 255, 0.5, 254.6 / 255, 1.0, 7.0, float("nan")])
    x = vals.view(1, 1, -1).expand(3, 1, -1).contiguous()
    p = tmp_path / "q.png"
    write_image(p, x[None])  # a (1, 3, H, W) batch works too
    got = np.asarray(Image.open(p))[0, :, 0]
    np.testing.assert_array_equal(got, [0, 0, 0, 1, 128, 255, 255, 255, 0])


def test_write_does_not_modify_input(tmp_path):
    x = torch.tensor([[[-1.0, 2.0]]]).expand(3, 1, 2).contiguous()
    before = x.clone()
    write_image(tmp_path / "a.png", x)
    assert torch.equal(x, before)


def test_load_image_returns_batch(tmp_path):
    p = tmp_path / "a.png"
    write_image(p, random_chw(5, 7))
    t = load_image(p)
    assert t.shape == (1, 3, 5, 7) and t.dtype == torch.float32


def test_write_rejects_bad_arguments(tmp_path):
    x = random_chw(4, 4)
    with pytest.raises(PrefstyleError, match=r"a\.gif.*cannot write '\.gif'"):
        write_image(tmp_path / "a.gif", x)
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "a.png", x, bit_depth=12)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        write_image(tmp_path / "a.png", x[:2])
    with pytest.raises(ValueError, match="batch"):
        write_image(tmp_path / "a.png", torch.stack([x, x]))
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "a.jpg", x, quality=0)


def test_write_creates_parent_folders(tmp_path):
    p = tmp_path / "out" / "deeper" / "a.tif"
    write_image(p, random_chw(4, 4))
    assert p.exists()


# --------------------------------------------------------------------------------------------
# Metadata: EXIF and ICC kept on write
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ext", "bits"), [(".jpg", 8), (".png", 8), (".png", 16), (".tif", 8), (".tif", 16)])
def test_exif_and_icc_are_written(tmp_path, ext, bits):
    p = tmp_path / f"m{bits}{ext}"
    write_image(p, random_chw(8, 8), bit_depth=bits, exif=make_exif(orientation=6), icc=ADOBE_ICC)
    with Image.open(p) as im:
        assert im.info.get("icc_profile") == ADOBE_ICC
        ex = im.getexif()
        assert ex[0x010F] == "TestMake" and ex[0x0110] == "TestModel"
        assert ex.get(0x0112, 1) == 1  # pixels are upright, so orientation is written as 1
        sub = ex.get_ifd(0x8769)
        assert sub[0x9003] == "2024:05:06 07:08:09"
        assert abs(float(sub[0x829A]) - 0.004) < 1e-9
        assert ex.get_ifd(0xA005)[1] == "R98"
        assert ex.get_ifd(0x8825)[1] == "N" and tuple(map(float, ex.get_ifd(0x8825)[2])) == (51.0, 30.0, 0.0)


@pytest.mark.parametrize(("ext", "bits"), [(".jpg", 8), (".png", 8), (".png", 16), (".tif", 8), (".tif", 16)])
def test_metadata_round_trip_through_read_and_write_like(tmp_path, ext, bits):
    src = tmp_path / f"src{ext}"
    write_image(src, random_chw(8, 8), bit_depth=bits, exif=make_exif(), icc=SRGB_CLONE_ICC)
    img = read_image(src)
    assert img.bit_depth == bits
    assert img.icc == SRGB_CLONE_ICC and not img.source_icc_converted
    assert img.output_icc == SRGB_CLONE_ICC  # an sRGB profile is kept as it was
    dst = tmp_path / f"dst{ext}"
    assert write_like(dst, img.pixels, img) == bits
    again = read_image(dst)
    assert again.icc == SRGB_CLONE_ICC and again.bit_depth == bits
    with Image.open(dst) as im:
        assert im.getexif()[0x010F] == "TestMake"
        assert im.getexif().get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_unparseable_exif_does_not_break_a_write(tmp_path, caplog):
    junk = b"Exif\x00\x00II*\x00" + b"\xff" * 40
    for ext in (".jpg", ".png", ".tif"):
        p = tmp_path / f"junk{ext}"
        write_image(p, random_chw(4, 4), exif=junk)
        assert read_image(p).pixels.shape == (3, 4, 4)
    write_image(tmp_path / "none.png", random_chw(4, 4), exif=b"not exif at all")
    with Image.open(tmp_path / "none.png") as im:
        assert "exif" not in im.info


def test_jpeg_exif_bytes_survive_unchanged_except_orientation(tmp_path):
    exif = make_exif(orientation=1)
    p = tmp_path / "a.jpg"
    write_image(p, random_chw(8, 8), exif=exif)
    assert read_image(p).exif == exif
    with Image.open(p) as im:
        assert im.info["exif"] == exif


def test_no_metadata_means_none(tmp_path):
    p = tmp_path / "plain.png"
    write_image(p, random_chw(4, 4))
    img = read_image(p)
    assert img.exif is None and img.icc is None and img.output_icc is None
    assert not img.source_icc_converted
    with Image.open(p) as im:
        assert "icc_profile" not in im.info and "exif" not in im.info


def test_srgb_profile_is_valid_and_reproducible():
    prof = ImageCms.ImageCmsProfile(stdio.BytesIO(srgb_icc_profile()))
    assert "sRGB" in prof.profile.profile_description
    assert pio._icc_info(srgb_icc_profile()).is_srgb
    assert srgb_icc_profile() == srgb_icc_profile()


def test_repr_is_short(tmp_path):
    p = tmp_path / "a.png"
    write_image(p, random_chw(4, 4), exif=make_exif(), icc=ADOBE_ICC)
    text = repr(read_image(p))
    assert len(text) < 300 and "bit_depth=8" in text


# --------------------------------------------------------------------------------------------
# Colour management
# --------------------------------------------------------------------------------------------

PATCHES_8 = np.array(
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128], [40, 180, 90], [200, 160, 60], [255, 255, 255], [0, 0, 0]],
    dtype=np.uint8,
)


def _patch_image(colors: np.ndarray, size: int = 4) -> np.ndarray:
    return np.repeat(np.repeat(colors[None], size, axis=0), size, axis=1)  # (size, n*size, 3)


def _patch_means(pixels: torch.Tensor, n: int, size: int = 4) -> np.ndarray:
    a = pixels.permute(1, 2, 0).numpy()
    return np.stack([a[:, i * size : (i + 1) * size].reshape(-1, 3).mean(0) for i in range(n)])


def test_profile_classification():
    assert pio._icc_info(SRGB_CLONE_ICC).is_srgb
    for icc in (ADOBE_ICC, P3_ICC, ADOBE_LUT_ICC):
        info = pio._icc_info(icc)
        assert info.valid and info.color_space == "RGB" and not info.is_srgb
    assert pio._icc_info(ADOBE_LUT_ICC).has_lut
    assert pio._icc_info(GRAY22_ICC).color_space == "GRAY"
    assert not pio._icc_info(b"definitely not a profile").valid


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif"])
def test_8bit_adobe_rgb_is_converted_like_colour_science(tmp_path, fmt):
    arr = _patch_image(PATCHES_8, size=8)
    p = tmp_path / f"adobe.{fmt}"
    kwargs = {"quality": 100, "subsampling": 0} if fmt == "jpg" else {}
    Image.fromarray(arr).save(p, icc_profile=ADOBE_ICC, **kwargs)
    img = read_image(p)
    assert img.source_icc_converted and img.icc == ADOBE_ICC
    assert img.output_icc == srgb_icc_profile()  # converted pixels are written as sRGB
    got = _patch_means(img.pixels, len(PATCHES_8), size=8)
    want = adobe_to_srgb(PATCHES_8 / 255.0)
    tol = 1.5 / 255 if fmt != "jpg" else 4 / 255
    np.testing.assert_allclose(got, want, atol=tol)
    # the conversion really changed something: the Adobe green is far outside sRGB's green
    assert abs(got[4, 0] - 40 / 255) > 0.05


@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_16bit_adobe_rgb_is_converted_in_float(tmp_path, fmt):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 65536, size=(16, 16, 3), dtype=np.uint16)
    p = tmp_path / f"adobe16.{fmt}"
    write_image(p, torch.from_numpy(arr.astype(np.float32) / 65535).permute(2, 0, 1), bit_depth=16, icc=ADOBE_ICC)
    img = read_image(p)
    assert img.bit_depth == 16 and img.source_icc_converted
    got = img.pixels.permute(1, 2, 0).numpy().astype(np.float64)
    # 1. against colour-science: the ICC route (s15Fixed16 colorants through D50) and the
    #    direct D65 one agree to about 1e-4 in linear light, under an 8-bit step when encoded
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    want = adobe_to_srgb(arr / 65535.0)
    np.testing.assert_allclose(srgb.cctf_decoding(got), srgb.cctf_decoding(want), atol=3e-4)
    np.testing.assert_allclose(got, want, atol=2.5e-3)
    # 2. against the same ICC arithmetic in float64: the float32 path keeps 16-bit precision
    m = np.linalg.solve(pio._srgb_matrix(), pio._icc_info(ADOBE_ICC).matrix)
    lin = np.clip((arr / 65535.0) ** ADOBE_GAMMA @ m.T, 0, 1)
    np.testing.assert_allclose(got, srgb.cctf_encoding(lin), atol=2e-5)


def test_16bit_float_path_agrees_with_imagecms_8bit(tmp_path):
    v = np.arange(256, dtype=np.uint16)
    arr8 = np.stack([v, v[::-1], (v * 7) % 256], axis=-1).reshape(16, 16, 3).astype(np.uint8)
    p8, p16 = tmp_path / "a8.png", tmp_path / "a16.tif"
    Image.fromarray(arr8).save(p8, icc_profile=P3_ICC)
    tifffile.imwrite(p16, arr8.astype(np.uint16) * 257, photometric="rgb", iccprofile=P3_ICC)
    a, b = read_image(p8), read_image(p16)
    assert a.source_icc_converted and b.source_icc_converted and b.bit_depth == 16
    assert float((a.pixels - b.pixels).abs().max()) <= 1.01 / 255


def test_lut_profile_is_converted(tmp_path):
    rng = np.random.default_rng(4)
    arr = rng.integers(0, 65536, size=(12, 12, 3), dtype=np.uint16)
    p = tmp_path / "lut16.tif"
    tifffile.imwrite(p, arr, photometric="rgb", iccprofile=ADOBE_LUT_ICC)
    img = read_image(p)
    assert img.source_icc_converted
    got = img.pixels.permute(1, 2, 0).numpy()
    err = np.abs(got - adobe_to_srgb(arr / 65535.0))
    assert err.max() < 2 / 255 and err.mean() < 0.2 / 255
    # on 8 bits the same profile goes through LittleCMS directly; its own 8-bit optimisation
    # is coarser near the gamut edge, but on average it agrees
    p8 = tmp_path / "lut8.png"
    arr8 = (arr // 257).astype(np.uint8)
    Image.fromarray(arr8).save(p8, icc_profile=ADOBE_LUT_ICC)
    img8 = read_image(p8)
    assert img8.source_icc_converted
    err8 = np.abs(img8.pixels.permute(1, 2, 0).numpy() - adobe_to_srgb(arr8 / 255.0))
    assert err8.mean() < 1 / 255


def test_srgb_tagged_pixels_are_untouched(tmp_path):
    arr = _patch_image(PATCHES_8)
    p = tmp_path / "s.png"
    Image.fromarray(arr).save(p, icc_profile=srgb_icc_profile())
    img = read_image(p)
    assert not img.source_icc_converted
    np.testing.assert_array_equal(u8(img.pixels), arr)


def test_gray_profile_is_converted(tmp_path):
    v = np.arange(256, dtype=np.uint8).reshape(16, 16)
    p = tmp_path / "g.png"
    Image.fromarray(v, "L").save(p, icc_profile=GRAY22_ICC)
    img = read_image(p)
    assert img.source_icc_converted and img.output_icc == srgb_icc_profile()
    want = colour.RGB_COLOURSPACES["sRGB"].cctf_encoding((v / 255.0) ** 2.2)
    for c in range(3):
        np.testing.assert_allclose(img.pixels[c].numpy(), want, atol=2e-3)


def test_damaged_or_mismatched_profile_is_ignored_with_a_warning(tmp_path, caplog):
    arr = _patch_image(PATCHES_8)
    p = tmp_path / "bad.png"
    Image.fromarray(arr).save(p, icc_profile=b"garbage" * 30)
    with caplog.at_level(logging.WARNING, logger="prefstyle.imaging.io"):
        img = read_image(p)
    assert "damaged" in caplog.text and str(p) in caplog.text
    assert not img.source_icc_converted
    assert img.output_icc == srgb_icc_profile()
    np.testing.assert_array_equal(u8(img.pixels), arr)
    caplog.clear()
    p2 = tmp_path / "mismatch.png"
    Image.fromarray(arr).save(p2, icc_profile=GRAY22_ICC)
    with caplog.at_level(logging.WARNING, logger="prefstyle.imaging.io"):
        img2 = read_image(p2)
    assert "GRAY ICC profile on an RGB image" in caplog.text
    np.testing.assert_array_equal(u8(img2.pixels), arr)


# --------------------------------------------------------------------------------------------
# Orientation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_exif_transpose(tmp_path, orientation):
    arr = asym_rgb()
    p = tmp_path / f"o{orientation}.png"
    Image.fromarray(arr).save(p, exif=make_exif(orientation))
    with Image.open(p) as im:
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    img = read_image(p)
    np.testing.assert_array_equal(u8(img.pixels), want)
    assert pio._exif_orientation(img.exif) == 1
    ex = Image.Exif()  # everything else in the EXIF block is kept
    ex.load(img.exif)
    assert ex[0x010F] == "TestMake" and ex.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpeg_fast_path_and_pillow_path_agree(tmp_path, mode):
    arr = np.asarray(Image.fromarray(asym_rgb(48, 64)).convert(mode))
    p = tmp_path / "a.jpg"
    Image.fromarray(arr).save(p, quality=90, exif=make_exif(6))
    fast = read_image(p)  # ends with EOI: decoded by OpenCV
    q = tmp_path / "trailer.jpg"
    q.write_bytes(p.read_bytes() + b"camera trailer")  # no EOI at the end: Pillow decodes it
    slow = read_image(q)
    assert fast.pixels.shape == slow.pixels.shape == (3, 64, 48)
    assert torch.equal(fast.pixels, slow.pixels)
    assert fast.exif == slow.exif


def test_rgb8_is_kept_exactly_when_the_file_is_plain_8bit_rgb(tmp_path):
    """ImageData.rgb8: the 8-bit pixels, upright and in RGB order, only where pixels == rgb8 / 255."""
    arr = asym_rgb(40, 56)
    for name, kwargs in [
        ("a.jpg", {"quality": 95, "exif": make_exif(6)}),
        ("b.png", {"exif": make_exif(3)}),
        ("c.tif", {}),
        ("d.jpg", {"quality": 95, "icc_profile": ADOBE_ICC}),
    ]:
        Image.fromarray(arr).save(tmp_path / name, **kwargs)
        img = read_image(tmp_path / name)
        assert img.rgb8 is not None and img.rgb8.dtype == np.uint8 and img.rgb8.flags.c_contiguous, name
        assert img.rgb8.shape == (img.height, img.width, 3), name
        np.testing.assert_array_equal(img.rgb8, u8(img.pixels), err_msg=name)
    np.testing.assert_array_equal(read_image(tmp_path / "b.png").rgb8, np.rot90(arr, 2))
    Image.fromarray(np.dstack([arr, np.full(arr.shape[:2], 128, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(arr[..., 0]).save(tmp_path / "gray.png")
    write_image(tmp_path / "deep.png", torch.rand(3, 8, 8), bit_depth=16)
    for name in ("rgba.png", "gray.png", "deep.png"):
        assert read_image(tmp_path / name).rgb8 is None, name


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_on_jpeg(tmp_path, orientation):
    blocks = np.zeros((2, 3, 3), np.uint8)
    blocks[0, 0] = (255, 0, 0)
    blocks[0, 2] = (0, 255, 0)
    blocks[1, 1] = (0, 0, 255)
    arr = np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1)
    p = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(arr).save(p, exif=make_exif(orientation), quality=98, subsampling=0)
    img = read_image(p)
    expected = {3: np.rot90(arr, 2), 6: np.rot90(arr, -1), 8: np.rot90(arr, 1)}[orientation]
    assert img.pixels.shape == (3, *expected.shape[:2])
    assert np.abs(u8(img.pixels).astype(int) - expected).mean() < 3


@pytest.mark.parametrize("orientation", [3, 5, 6, 7, 8])
def test_orientation_on_16bit_png_and_tiff(tmp_path, orientation):
    arr = asym_rgb().astype(np.uint16) * 257 + 3
    x = torch.from_numpy(arr.astype(np.float32) / 65535).permute(2, 0, 1)
    ref = tmp_path / "ref.png"
    Image.fromarray(asym_rgb()).save(ref, exif=make_exif(orientation))
    with Image.open(ref) as im:  # Pillow's answer on the 8-bit twin, lifted to 16 bits
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(np.uint16) * 257 + 3
    for ext in (".png", ".tif"):
        p = tmp_path / f"o{orientation}{ext}"
        write_image(p, x, bit_depth=16)
        if ext == ".png":  # re-tag: write_image always writes orientation 1
            data = p.read_bytes()
            i = data.index(b"IDAT") - 4
            p.write_bytes(data[:i] + pio._png_chunk(b"eXIf", make_exif(orientation)[6:]) + data[i:])
        else:
            tifffile.imwrite(p, arr, photometric="rgb", extratags=[(274, "H", 1, orientation, True)])
        img = read_image(p)
        assert img.bit_depth == 16
        np.testing.assert_array_equal(u16(img.pixels), want)


# --------------------------------------------------------------------------------------------
# Channel layouts
# --------------------------------------------------------------------------------------------


def test_grayscale_becomes_three_channels(tmp_path):
    v = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    p = tmp_path / "g.png"
    Image.fromarray(v, "L").save(p)
    img = read_image(p)
    assert img.pixels.shape == (3, 8, 8)
    for c in range(3):
        np.testing.assert_array_equal((img.pixels[c] * 255).round().numpy(), v)


def test_16bit_grayscale(tmp_path):
    v = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000 + 7).astype(np.uint16)
    for name in ("g16.png", "g16.tif"):
        p = tmp_path / name
        if name.endswith(".png"):
            cv2.imwrite(str(p), v)
        else:
            tifffile.imwrite(p, v)
        img = read_image(p)
        assert img.bit_depth == 16 and img.pixels.shape == (3, 8, 8)
        np.testing.assert_array_equal((img.pixels[1].double() * 65535).round().numpy(), v)


def test_alpha_is_composited_over_white(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, 0] = 200
    rgba[0, :, 3] = [0, 255, 128]
    p = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(p)
    img = read_image(p)
    r = img.pixels[0, 0].numpy()
    g = img.pixels[1, 0].numpy()
    np.testing.assert_allclose(r, [1.0, 200 / 255, (200 * 128 + 255 * 127) / 255 / 255], atol=1e-5)
    np.testing.assert_allclose(g, [1.0, 0.0, 127 / 255], atol=1e-5)


def test_16bit_rgba_png_and_gray_alpha(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint16)
    rgba[..., 2] = 65535  # blue
    rgba[..., 3] = [[0, 65535], [32768, 65535]]
    p = tmp_path / "a16.png"
    cv2.imwrite(str(p), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    img = read_image(p)
    assert img.bit_depth == 16
    np.testing.assert_allclose(img.pixels[:, 0, 0].numpy(), [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(img.pixels[:, 0, 1].numpy(), [0, 0, 1], atol=1e-6)
    la = Image.fromarray(np.array([[[100, 0], [100, 255]]], np.uint8), "LA")
    p2 = tmp_path / "la.png"
    la.save(p2)
    np.testing.assert_allclose(read_image(p2).pixels[:, 0].numpy().T, [[1, 1, 1], [100 / 255] * 3], atol=1e-6)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 1)
    p = tmp_path / "p.png"
    im.save(p, transparency=0)
    img = read_image(p)
    np.testing.assert_allclose(img.pixels[:, 0, 0].numpy(), [1, 1, 1])  # transparent -> white
    np.testing.assert_allclose(img.pixels[:, 0, 1].numpy(), [0, 0, 1])


def test_cmyk_jpeg_is_converted(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red
    p = tmp_path / "cmyk.jpg"
    cmyk.save(p, quality=100)
    img = read_image(p)
    assert img.pixels.shape == (3, 16, 16)
    with Image.open(p) as im:
        want = np.asarray(im.convert("RGB"))
    assert np.abs(u8(img.pixels).astype(int) - want).max() <= 1
    r, g, b = img.pixels.mean(dim=(1, 2)).tolist()
    assert r > 0.9 and g < 0.1 and b < 0.1


def test_lzw_and_planar_tiffs(tmp_path):
    arr = (np.random.default_rng(1).random((9, 11, 3)) * 65535).astype(np.uint16)
    p = tmp_path / "lzw.tif"
    _, buf = cv2.imencode(".tiff", cv2.cvtColor(arr, cv2.COLOR_RGB2BGR))  # OpenCV writes LZW
    p.write_bytes(buf.tobytes())
    img = read_image(p)
    assert img.bit_depth == 16
    np.testing.assert_array_equal(u16(img.pixels), arr)
    p2 = tmp_path / "planar.tif"
    tifffile.imwrite(p2, np.moveaxis(arr, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(u16(read_image(p2).pixels), arr)


def test_float_tiff_counts_as_16bit(tmp_path):
    arr = np.random.default_rng(2).random((5, 6, 3)).astype(np.float32)
    p = tmp_path / "f.tif"
    tifffile.imwrite(p, arr, photometric="rgb")
    img = read_image(p)
    assert img.bit_depth == 16
    np.testing.assert_allclose(img.pixels.permute(1, 2, 0).numpy(), arr, atol=1e-7)


def test_premultiplied_and_miniswhite_tiffs(tmp_path):
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = (100, 0, 0, 128)  # premultiplied: colour already scaled by alpha
    rgba[0, 1] = (0, 0, 0, 0)
    p = tmp_path / "assoc.tif"
    tifffile.imwrite(p, rgba, photometric="rgb", extrasamples=["assocalpha"])
    img = read_image(p)
    np.testing.assert_allclose(img.pixels[:, 0, 0].numpy(), [(100 + 127) / 255, 127 / 255, 127 / 255], atol=1e-6)
    np.testing.assert_allclose(img.pixels[:, 0, 1].numpy(), [1, 1, 1], atol=1e-6)
    v = np.array([[0, 64, 255]], np.uint8)
    p2 = tmp_path / "white.tif"
    tifffile.imwrite(p2, v, photometric="miniswhite")
    np.testing.assert_allclose(read_image(p2).pixels[0, 0].numpy(), [1, 191 / 255, 0], atol=1e-6)


def test_float_tiff_with_profile_is_converted(tmp_path):
    arr = np.random.default_rng(6).random((6, 7, 3)).astype(np.float32)
    p = tmp_path / "f_adobe.tif"
    tifffile.imwrite(p, arr, photometric="rgb", iccprofile=ADOBE_ICC)
    img = read_image(p)
    assert img.source_icc_converted and img.bit_depth == 16
    np.testing.assert_allclose(img.pixels.permute(1, 2, 0).numpy(), adobe_to_srgb(arr), atol=2.5e-3)


def test_webp_round_trip(tmp_path):
    p = tmp_path / "a.webp"
    x = torch.from_numpy(asym_rgb().astype(np.float32) / 255).permute(2, 0, 1)
    assert write_image(p, x, bit_depth=16, quality=100, exif=make_exif(3), icc=SRGB_CLONE_ICC) == 8  # lossless
    img = read_image(p)
    assert img.format == "WEBP" and img.bit_depth == 8 and img.icc == SRGB_CLONE_ICC
    np.testing.assert_array_equal(u8(img.pixels), asym_rgb())  # orientation 3 was written as 1
    with Image.open(p) as im:
        assert im.getexif()[0x010F] == "TestMake" and im.getexif()[0x0112] == 1


def test_exif_too_large_for_jpeg_loses_maker_note_not_the_rest(tmp_path, caplog):
    ex = Image.Exif()
    ex.load(make_exif())
    ex.get_ifd(0x8769)[0x927C] = b"M" * 70_000  # a huge maker note
    big = ex.tobytes()
    assert len(big) > 65533
    p = tmp_path / "big_exif.jpg"
    with caplog.at_level(logging.WARNING, logger="prefstyle.imaging.io"):
        write_image(p, random_chw(8, 8), exif=big)
    assert "maker note" in caplog.text
    with Image.open(p) as im:
        kept = im.getexif()
        assert kept[0x010F] == "TestMake" and 0x927C not in kept.get_ifd(0x8769)
    write_image(tmp_path / "big_exif.tif", random_chw(8, 8), exif=big)  # TIFF has no such limit
    with Image.open(tmp_path / "big_exif.tif") as im:
        assert len(im.getexif().get_ifd(0x8769)[0x927C]) == 70_000


def test_format_is_sniffed_not_trusted_from_extension(tmp_path):
    p = tmp_path / "actually_png.jpg"
    Image.fromarray(asym_rgb()).save(p, format="PNG")
    img = read_image(p)
    assert img.format == "PNG"
    np.testing.assert_array_equal(u8(img.pixels), asym_rgb())


# --------------------------------------------------------------------------------------------
# Refusals: bombs, truncation, non-images, missing files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ext", "bits"), [(".jpg", 8), (".png", 8), (".png", 16), (".tif", 16)])
def test_too_many_pixels_is_refused(tmp_path, ext, bits):
    p = tmp_path / f"big{ext}"
    write_image(p, random_chw(20, 30), bit_depth=bits)
    with pytest.raises(PrefstyleError, match=r"big\..*30x20.*decompression-bomb"):
        read_image(p, max_pixels=599)
    assert read_image(p, max_pixels=600).pixels.shape == (3, 20, 30)


def test_bomb_is_refused_from_the_header_before_decoding(tmp_path):
    # A PNG whose header claims 100000 x 100000 pixels, with a few bytes of data.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + pio._png_chunk(b"IHDR", ihdr)
    data += pio._png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + pio._png_chunk(b"IEND", b"")
    p = tmp_path / "bomb.png"
    p.write_bytes(data)
    with pytest.raises(PrefstyleError, match=r"bomb\.png.*10000\.0 MP.*limit of 200 MP"):
        read_image(p)
    assert DEFAULT_MAX_PIXELS == 200_000_000


def test_zip_bomb_profile_in_16bit_png_is_dropped(tmp_path):
    p = tmp_path / "iccbomb.png"
    write_image(p, random_chw(4, 4), bit_depth=16)
    data = p.read_bytes()
    bomb = pio._png_chunk(b"iCCP", b"x\0\0" + zlib.compress(b"\0" * (64 << 20)))
    p.write_bytes(data[:33] + bomb + data[33:])  # right after IHDR
    img = read_image(p)
    assert img.icc is None and img.bit_depth == 16


def test_pillows_own_limit_does_not_override_ours(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow would refuse > 200 pixels
    p = tmp_path / "a.jpg"
    write_image(p, random_chw(20, 30))
    assert read_image(p, max_pixels=10_000).pixels.shape == (3, 20, 30)
    assert Image.MAX_IMAGE_PIXELS == 100  # restored


@pytest.mark.parametrize(("ext", "bits"), [(".jpg", 8), (".png", 8), (".png", 16), (".tif", 8), (".tif", 16)])
def test_truncated_file_is_refused(tmp_path, ext, bits):
    p = tmp_path / f"cut{ext}"
    write_image(p, random_chw(64, 64), bit_depth=bits)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(PrefstyleError, match=r"cut\..*truncated or corrupt image"):
        read_image(p)


def test_corrupt_header_is_refused(tmp_path):
    p = tmp_path / "bad.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    with pytest.raises(PrefstyleError, match=r"bad\.jpg.*truncated or corrupt"):
        read_image(p)


def test_non_image_and_empty_and_missing_files(tmp_path):
    txt = tmp_path / "notes.jpg"
    txt.write_text("this is not an image\n" * 10)
    with pytest.raises(PrefstyleError, match=r"notes\.jpg: not a supported image file"):
        read_image(txt)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(PrefstyleError, match=r"empty\.png: empty file"):
        read_image(empty)
    with pytest.raises(PrefstyleError, match=r"nope\.png: file not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(PrefstyleError, match="is a folder"):
        read_image(tmp_path)


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def _fail_halfway(*args, **kwargs):
    target = args[1] if len(args) > 1 else args[0]
    Path(target).write_bytes(b"partial garbage")
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif"])
def test_failed_write_leaves_existing_file_untouched(tmp_path, monkeypatch, ext):
    p = tmp_path / f"keep{ext}"
    write_image(p, random_chw(8, 8))
    before = p.read_bytes()
    if ext == ".jpg":
        monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: _fail_halfway(fp))
    elif ext == ".png":
        from prefstyle.imaging import encode  # the PNG encoder lives there since io.py was split

        monkeypatch.setattr(
            encode, "_encode_png", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device"))
        )
    else:
        monkeypatch.setattr(pio.tifffile, "imwrite", lambda fp, *a, **k: _fail_halfway(fp))
    with pytest.raises(PrefstyleError, match=r"keep\..*cannot write image: No space left"):
        write_image(p, random_chw(8, 8, seed=9))
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == [p.name]  # no temporary left behind


# --------------------------------------------------------------------------------------------
# list_images and RAW
# --------------------------------------------------------------------------------------------


def test_list_images_expands_folders_sorted_and_skips_hidden(tmp_path):
    root = tmp_path / "photos"
    (root / "b_sub").mkdir(parents=True)
    (root / ".hidden_dir").mkdir()
    for name in ["z.JPG", "a.png", "m.tiff", "notes.txt", ".a.jpg.part.jpg", "._z.JPG", "raw.NEF"]:
        (root / name).write_bytes(b"x")
    (root / "b_sub" / "c.jpeg").write_bytes(b"x")
    (root / ".hidden_dir" / "d.jpg").write_bytes(b"x")
    found = list_images([root])
    assert [f.relative_to(root).as_posix() for f in found] == ["a.png", "b_sub/c.jpeg", "m.tiff", "raw.NEF", "z.JPG"]
    flat = list_images([root], recursive=False)
    assert [f.name for f in flat] == ["a.png", "m.tiff", "raw.NEF", "z.JPG"]
    # explicit files are kept in order (whatever their extension), duplicates dropped
    explicit = list_images([root / "notes.txt", root, root / "a.png"])
    assert explicit[0].name == "notes.txt" and len(explicit) == 6
    with pytest.raises(PrefstyleError, match="no such file or folder"):
        list_images([tmp_path / "missing"])


def test_raw_without_rawpy_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rawpy", None)  # import rawpy -> ImportError
    p = tmp_path / "IMG_0001.CR2"
    p.write_bytes(b"II*\x00" + bytes(100))
    with pytest.raises(PrefstyleError, match=r"IMG_0001\.CR2.*need the optional 'rawpy' package"):
        read_image(p)


def test_raw_with_rawpy_develops_16bit(tmp_path, monkeypatch):
    developed = (np.random.default_rng(5).random((6, 4, 3)) * 65535).astype(np.uint16)
    calls = {}

    class FakeRaw:
        sizes = types.SimpleNamespace(width=4, height=6)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def postprocess(self, **kwargs):
            calls.update(kwargs)
            return developed

    class LibRawError(Exception):
        pass

    def imread(path):
        if "bad" in path:
            raise LibRawError("data corrupted")
        return FakeRaw()

    fake = types.SimpleNamespace(imread=imread, ColorSpace=types.SimpleNamespace(sRGB="sRGB"), LibRawError=LibRawError)
    monkeypatch.setitem(sys.modules, "rawpy", fake)
    p = tmp_path / "shot.nef"
    p.write_bytes(b"not really raw")
    img = read_image(p)
    assert img.format == "RAW" and img.bit_depth == 16
    np.testing.assert_array_equal(u16(img.pixels), developed)
    assert calls["output_bps"] == 16 and calls["use_camera_wb"]
    with pytest.raises(PrefstyleError, match=r"shot\.nef.*more than the limit"):
        read_image(p, max_pixels=10)
    bad = tmp_path / "bad.dng"
    bad.write_bytes(b"x")
    with pytest.raises(PrefstyleError, match=r"bad\.dng: truncated or corrupt RAW file"):
        read_image(bad)


def test_imagedata_is_a_plain_dataclass(tmp_path):
    p = tmp_path / "a.png"
    write_image(p, random_chw(4, 5))
    img = read_image(p)
    assert isinstance(img, ImageData) and img.path == p and (img.height, img.width) == (4, 5)


# --------------------------------------------------------------------------------------------
# Efficiency (slow: run with `make test-slow`)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reading_a_12mp_jpeg_is_dominated_by_decoding(tmp_path):
    h, w = 3000, 4000
    small = np.random.default_rng(0).integers(0, 256, (h // 10, w // 10, 3), dtype=np.uint8)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    p = tmp_path / "12mp.jpg"
    Image.fromarray(big).save(p, quality=95, exif=make_exif(6))

    def best(fn, n=3):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    def decode_only():
        with Image.open(p) as im:
            im.load()

    t_decode = best(decode_only)
    t_read = best(lambda: read_image(p))  # includes a 90-degree rotation
    img = read_image(p)
    assert img.pixels.shape == (3, w, h) and img.pixels.dtype == torch.float32
    assert t_read < 4 * t_decode + 0.2, (t_read, t_decode)
