"""Camera raw files (imaging/raw.py): a real DNG, made here, developed by rawpy/LibRaw.

The DNG is a Bayer (RGGB) mosaic of known colour patches, with a camera white balance
(AsShotNeutral) that the neutral rendering must undo, written with tifffile in a few
milliseconds, so the test needs no sample file and no network.
"""

from __future__ import annotations

import collections
import datetime as dt
from fractions import Fraction

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from typer.testing import CliRunner

rawpy = pytest.importorskip("rawpy", reason="rawpy (LibRaw) is not installed: pip install rawpy==0.28.0")

from prefstyle.cli.batch_io import output_name  # noqa: E402
from prefstyle.errors import PrefstyleError  # noqa: E402
from prefstyle.imaging.io import list_images, read_image  # noqa: E402
from prefstyle.imaging.raw import RAW_EXTENSIONS, develop_raw, raw_exif  # noqa: E402

# linear sRGB colours of the patches: red, green, blue (top row), and a grey below
PATCHES = {"red": (0.50, 0.08, 0.05), "green": (0.06, 0.40, 0.08), "blue": (0.05, 0.10, 0.50), "grey": (0.2, 0.2, 0.2)}
NEUTRAL = (0.5, 1.0, 0.7)  # the camera's response to white: R and B weaker than G
_XYZ_TO_SRGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
)


def _rationals(vals):
    out = []
    for v in vals:
        f = Fraction(float(v)).limit_denominator(100000)
        out += [f.numerator, f.denominator]
    return out


def write_dng(path, h=64, w=96, white=4095, black=64):
    """A CFA DNG (RGGB, 12 bit) of the PATCHES; returns the linear sRGB image (h, w, 3) it encodes."""
    img = np.zeros((h, w, 3))
    img[: h // 2, : w // 3] = PATCHES["red"]
    img[: h // 2, w // 3 : 2 * w // 3] = PATCHES["green"]
    img[: h // 2, 2 * w // 3 :] = PATCHES["blue"]
    img[h // 2 :] = PATCHES["grey"]
    cam = img * np.array(NEUTRAL)
    cfa = np.empty((h, w))
    cfa[0::2, 0::2], cfa[0::2, 1::2] = cam[0::2, 0::2, 0], cam[0::2, 1::2, 1]
    cfa[1::2, 0::2], cfa[1::2, 1::2] = cam[1::2, 0::2, 1], cam[1::2, 1::2, 2]
    data = np.round(black + cfa * (white - black)).astype(np.uint16)
    color_matrix = (np.diag(NEUTRAL) @ _XYZ_TO_SRGB).ravel()  # XYZ (D65) -> camera
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "prefstyle synthetic camera", True),  # UniqueCameraModel
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: R G / G B
        (50721, "2i", 9, _rationals(color_matrix), True),  # ColorMatrix1
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, _rationals(NEUTRAL), True),  # AsShotNeutral
        (50717, "I", 1, white, True),  # WhiteLevel
        (50714, "H", 1, black, True),  # BlackLevel
        (271, "s", 0, "Prefstyle", True),  # Make
        (272, "s", 0, "Synthetic DNG", True),  # Model
        (306, "s", 0, "2026:01:02 03:04:05", True),  # DateTime
    ]
    tifffile.imwrite(path, data, photometric=32803, extratags=tags, subfiletype=0)
    return img


def _patch_means(pixels: torch.Tensor) -> dict[str, np.ndarray]:
    h, w = pixels.shape[-2:]
    x = pixels.numpy()
    cut = lambda r0, r1, c0, c1: x[:, r0 + 4 : r1 - 4, c0 + 4 : c1 - 4].reshape(3, -1).mean(1)  # noqa: E731
    return {
        "red": cut(0, h // 2, 0, w // 3),
        "green": cut(0, h // 2, w // 3, 2 * w // 3),
        "blue": cut(0, h // 2, 2 * w // 3, w),
        "grey": cut(h // 2, h, 0, w),
    }


def test_dng_is_developed_to_16bit_srgb_with_the_camera_white_balance(tmp_path):
    path = tmp_path / "IMG_0001.DNG"
    write_dng(path)
    img = read_image(path)
    assert img.format == "RAW" and img.bit_depth == 16 and (img.height, img.width) == (64, 96)
    m = _patch_means(img.pixels)
    # the camera's weak red/blue response is undone by its as-shot white balance: grey stays grey
    assert np.ptp(m["grey"]) < 0.03, m["grey"]
    assert m["red"].argmax() == 0 and m["green"].argmax() == 1 and m["blue"].argmax() == 2
    # each patch keeps its hue: the channel ratios of the encoded values follow the linear colours
    enc = lambda v: np.where(v > 0.0031308, 1.055 * np.power(v, 1 / 2.4) - 0.055, 12.92 * v)  # noqa: E731
    for name in ("red", "green", "blue"):
        want = enc(np.array(PATCHES[name])) / enc(np.array(PATCHES["grey"])).mean()
        got = m[name] / m["grey"].mean()
        np.testing.assert_allclose(got, want, atol=0.12, err_msg=name)


def test_dng_keeps_its_exif(tmp_path):
    path = tmp_path / "shot.dng"
    write_dng(path)
    img = read_image(path)
    assert img.exif is not None
    exif = Image.Exif()
    exif.load(img.exif)
    assert exif.get(271) == "Prefstyle" and exif.get(272) == "Synthetic DNG"
    assert exif.get(0x0112, 1) == 1  # upright


def test_raw_exif_from_librarys_metadata():
    Other = collections.namedtuple("Other", "aperture artist focal_length iso_speed shutter_speed timestamp")
    fake = type("Raw", (), {"other": Other(2.8, "Ana", 35.0, 400.0, 1 / 250, dt.datetime(2025, 5, 6, 7, 8, 9))})()
    block = raw_exif(fake)
    assert block.startswith(b"Exif\0\0")
    exif = Image.Exif()
    exif.load(block)
    sub = exif.get_ifd(0x8769)
    assert exif[0x013B] == "Ana" and exif[0x0132] == "2025:05:06 07:08:09"
    assert (
        sub[0x8827] == 400 and float(sub[0x829D]) == pytest.approx(2.8) and float(sub[0x829A]) == pytest.approx(0.004)
    )
    empty = type("Raw", (), {"other": Other(0.0, "", 0.0, 0.0, 0.0, None)})()
    assert raw_exif(empty) is None


def test_raw_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.NEF"
    bad.write_bytes(b"II*\x00" + bytes(200))
    with pytest.raises(PrefstyleError, match=r"broken\.NEF.*RAW file"):
        read_image(bad)
    good = tmp_path / "big.dng"
    write_dng(good)
    with pytest.raises(PrefstyleError, match=r"big\.dng.*more than the limit"):
        develop_raw(good, max_pixels=1000)


def test_folders_list_raw_files_and_outputs_default_to_tif(tmp_path):
    for name in ("a.DNG", "b.cr3", "c.RAF", "d.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = sorted(p.name for p in list_images([tmp_path]))
    assert found == ["a.DNG", "b.cr3", "c.RAF", "d.jpg"]
    assert {".dng", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2"} <= RAW_EXTENSIONS
    assert output_name(tmp_path / "x.CR3").suffix == ".tif" and output_name(tmp_path / "y.jpg").suffix == ".jpg"


def test_enhance_a_raw_folder_writes_16bit_tiffs(tmp_path):
    from prefstyle.cli import app
    from prefstyle.imaging.params import RetouchParams
    from prefstyle.models.base import Profile

    raws = tmp_path / "raws"
    raws.mkdir()
    write_dng(raws / "IMG_0002.dng")
    prof = Profile(
        model="sliders",
        model_config={"source": "sliders"},
        tensors={
            "vectors": RetouchParams(exposure=0.5).to_vector()[None],
            "gains": torch.zeros(1),
            "weights": torch.ones(1),
        },
    ).save(tmp_path / "me.json")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["enhance", str(raws), "--profile", str(prof), "--out", str(out)])
    assert r.exit_code == 0, r.output
    tif = out / "IMG_0002.tif"
    arr = tifffile.imread(tif)
    assert arr.dtype == np.uint16 and arr.shape == (64, 96, 3)
    src = read_image(raws / "IMG_0002.dng").pixels
    assert arr.mean() / 65535 > float(src.mean()) + 0.03  # +0.5 EV brighter than the neutral rendering
    assert Image.open(tif).getexif().get(271) == "Prefstyle"  # the raw's EXIF travels to the output
    r = CliRunner().invoke(app, ["enhance", str(raws), "--profile", str(prof), "--out", str(out), "--format", "jpeg"])
    assert r.exit_code == 0, r.output
    with Image.open(out / "IMG_0002.jpg") as im:
        assert im.format == "JPEG" and im.size == (96, 64)
    r = CliRunner().invoke(app, ["enhance", str(raws), "--profile", str(prof), "--out", str(out), "--format", "gif"])
    assert isinstance(r.exception, PrefstyleError) and "choose jpeg, tif or png" in str(r.exception)
