""".cube and Hald CLUT reading/writing: round trips, interop, and malformed files."""

from __future__ import annotations

from pathlib import Path

import colour
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from prefstyle.errors import InputFormatError
from prefstyle.imaging import lut_io
from prefstyle.imaging.lut import (
    apply_lut,
    identity_lut,
    identity_lut_1d,
    lut_from_function,
)
from prefstyle.imaging.lut_io import (
    CubeLUT,
    parse_cube,
    read_cube,
    read_hald,
    write_cube,
    write_hald,
)


def _rand_lut(size: int, seed: int = 0, lo: float = -0.2, hi: float = 1.2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(3, size, size, size, generator=g)


def _rounded(x: torch.Tensor) -> torch.Tensor:
    """What the writer promises to read back: each value rounded to 6 decimals, as float32."""
    flat = x.detach().double().reshape(-1).tolist()
    return torch.tensor([float(f"{v:.6f}") for v in flat], dtype=torch.float32).view(x.shape)


def _write(tmp_path: Path, text: str, name: str = "t.cube", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


# --------------------------------------------------------------------------------------
# .cube round trips
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 17, 33])
def test_cube_3d_round_trip(tmp_path, size):
    lut = _rand_lut(size, seed=size)
    first = tmp_path / "a.cube"
    write_cube(first, lut, title="random")
    cube = read_cube(first)
    assert cube.title == "random" and cube.lut1d is None
    assert cube.lut3d.shape == (3, size, size, size) and cube.lut3d.dtype == torch.float32
    # read(write(x)) == x rounded to the written precision, exactly
    assert torch.equal(cube.lut3d, _rounded(lut))
    assert (cube.lut3d - lut).abs().max() <= 5e-7 + 1e-7
    # write(read(write(x))) is byte-identical
    second = tmp_path / "b.cube"
    write_cube(second, cube)
    assert second.read_bytes() == first.read_bytes()
    assert torch.equal(read_cube(second).lut3d, cube.lut3d)


def test_cube_text_layout_red_fastest(tmp_path):
    lut = identity_lut(2)
    path = tmp_path / "id.cube"
    write_cube(path, lut)
    rows = [line for line in path.read_text().splitlines() if line and line[0].isdigit()]
    assert rows[:3] == ["0.000000 0.000000 0.000000", "1.000000 0.000000 0.000000", "0.000000 1.000000 0.000000"]
    assert rows[4] == "0.000000 0.000000 1.000000" and len(rows) == 8
    assert "LUT_3D_SIZE 2" in path.read_text() and "DOMAIN_MIN" not in path.read_text()


def test_cube_hdr_values_read_back_exactly_and_stably(tmp_path):
    lut = _rand_lut(5, seed=3, lo=-20.0, hi=20.0)
    lut[0, 0, 0, 0] = 7.9999995  # rounds to 8.000000 in %.6f: written with full digits
    lut[1, 0, 0, 0] = 1234.5678
    lut[2, 0, 0, 0] = -0.0
    path = tmp_path / "hdr.cube"
    write_cube(path, lut)
    back = read_cube(path).lut3d
    big = lut.abs() >= 7.9999995
    assert torch.equal(back[big], lut[big])  # exact where |x| >= 8
    assert torch.equal(back[~big], _rounded(lut)[~big])
    again = tmp_path / "again.cube"
    write_cube(again, read_cube(path))
    assert again.read_bytes() == path.read_bytes()


def test_cube_1d_round_trip_and_layouts(tmp_path):
    curves = torch.stack([torch.linspace(0, 1, 1024) ** p for p in (0.45, 1.0, 2.2)])
    path = tmp_path / "curve.cube"
    write_cube(path, curves.t().contiguous(), title="gamma")  # (S, 3) is accepted too
    cube = read_cube(path)
    assert cube.lut3d is None and cube.lut1d.shape == (3, 1024)
    assert torch.equal(cube.lut1d, _rounded(curves))
    assert "LUT_1D_SIZE 1024" in path.read_text()
    again = tmp_path / "again.cube"
    write_cube(again, cube)
    assert again.read_bytes() == path.read_bytes()


def test_cube_comments_domain_and_crlf(tmp_path):
    lut = _rand_lut(3, seed=4)
    path = tmp_path / "d.cube"
    write_cube(
        path,
        lut,
        title='my "look"',
        comments=["made by a test", "second line"],
        domain_min=(-0.5, 0.0, 0.1),
        domain_max=(1.5, 2.0, 1.0),
    )
    text = path.read_text()
    assert "DOMAIN_MIN -0.500000 0.000000 0.100000" in text and "DOMAIN_MAX 1.500000 2.000000 1.000000" in text
    cube = read_cube(path)
    assert cube.comments == ["made by a test", "second line"]
    assert cube.title == "my 'look'"
    assert cube.domain_min == pytest.approx((-0.5, 0.0, 0.1)) and cube.domain_max == pytest.approx((1.5, 2.0, 1.0))
    crlf = _write(tmp_path, text, "crlf.cube", newline="\r\n")
    cube2 = read_cube(crlf)
    assert torch.equal(cube2.lut3d, cube.lut3d) and cube2.comments == cube.comments
    assert (cube2.domain_min, cube2.domain_max, cube2.title) == (cube.domain_min, cube.domain_max, cube.title)
    again = tmp_path / "again.cube"
    write_cube(again, cube2)
    assert again.read_bytes() == path.read_bytes()
    # the domain is honoured when applying
    img = torch.full((1, 3, 1, 1), 1.5)
    assert torch.allclose(cube.apply(img), apply_lut(img, cube.lut3d, "trilinear", cube.domain_min, cube.domain_max))


def test_hand_written_file_with_comments_blank_lines_and_inline_comments(tmp_path):
    text = """# header comment
TITLE "Hand made"

LUT_3D_SIZE 2   # two nodes per axis
DOMAIN_MIN 0 0 0
DOMAIN_MAX 1 1 1
#between
0 0 0
1 0 0

0 1 0
1 1 0
# in the data
0 0 1
1 0 1
0 1 1
1e0 1.0 +1
"""
    cube = read_cube(_write(tmp_path, text))
    assert cube.title == "Hand made"
    assert parse_cube('TITLE "a # b" # note\nLUT_1D_SIZE 2\n0 0 0\n1 1 1\n').title == "a # b"
    assert parse_cube("TITLE plain words\nLUT_1D_SIZE 2\n0 0 0\n1 1 1\n").title == "plain words"
    assert cube.comments == ["header comment", "between", "in the data"]
    assert torch.equal(cube.lut3d, identity_lut(2))


def test_bom_and_latin1_text(tmp_path):
    body = 'TITLE "Caf\u00e9"\nLUT_3D_SIZE 2\n' + "0 0 0\n1 0 0\n0 1 0\n1 1 0\n0 0 1\n1 0 1\n0 1 1\n1 1 1\n"
    (tmp_path / "bom.cube").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    (tmp_path / "latin1.cube").write_bytes(body.encode("latin-1"))
    for name in ("bom.cube", "latin1.cube"):
        cube = read_cube(tmp_path / name)
        assert cube.title == "Caf\u00e9" and torch.equal(cube.lut3d, identity_lut(2))


def test_shaper_plus_3d_resolve_style(tmp_path):
    shaper = torch.stack([torch.linspace(0, 1, 6) ** 0.5] * 3)  # (3, 6)
    lut3d = lut_from_function(lambda x: x.flip(1), 3)
    cube = CubeLUT(
        title="shaped",
        lut3d=lut3d,
        lut1d=shaper,
        domain_min=(0, 0, 0),
        domain_max=(1, 1, 1),
        domain_min_1d=(-0.25,) * 3,
        domain_max_1d=(4.0,) * 3,
    )
    path = tmp_path / "shaper.cube"
    write_cube(path, cube)
    text = path.read_text()
    assert "LUT_1D_SIZE 6" in text and "LUT_3D_SIZE 3" in text
    assert "LUT_1D_INPUT_RANGE -0.250000 4.000000" in text and "LUT_3D_INPUT_RANGE" not in text
    back = read_cube(path)
    assert back.domain_1d() == ((-0.25,) * 3, (4.0,) * 3) and back.domain_min == (0.0,) * 3
    assert torch.equal(back.lut1d, _rounded(shaper)) and torch.equal(back.lut3d, _rounded(lut3d))
    # 1D first, then 3D
    img = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 4
    from prefstyle.imaging.lut import apply_lut_1d

    expected = apply_lut(apply_lut_1d(img, back.lut1d, -0.25, 4.0), back.lut3d)
    assert torch.allclose(back.apply(img), expected)
    # per-channel domains cannot be written in a two-table file
    bad = CubeLUT(lut3d=lut3d, lut1d=shaper, domain_min_1d=(0, 0, 0.5), domain_max_1d=(1, 1, 1))
    with pytest.raises(ValueError, match="same 1D domain"):
        write_cube(tmp_path / "bad.cube", bad)


def test_resolve_input_range_keywords_are_read(tmp_path):
    text = "LUT_3D_SIZE 2\nLUT_3D_INPUT_RANGE -0.5 1.5\n" + "0 0 0\n" * 8
    cube = parse_cube(text)
    assert cube.domain_min == (-0.5,) * 3 and cube.domain_max == (1.5,) * 3
    text = "LUT_1D_SIZE 2\nLUT_1D_INPUT_RANGE 0 2\n0 0 0\n1 1 1\n"
    cube = parse_cube(text)
    assert cube.domain_max == (2.0,) * 3 and cube.domain_max_1d is None


def test_write_cube_resamples_and_validates(tmp_path):
    lut = lut_from_function(lambda x: 0.5 * x + 0.25, 5)
    path = tmp_path / "r.cube"
    write_cube(path, lut, size=9)
    assert torch.allclose(read_cube(path).lut3d, lut_from_function(lambda x: 0.5 * x + 0.25, 9), atol=1e-6)
    write_cube(path, identity_lut_1d(4), size=7)
    assert torch.allclose(read_cube(path).lut1d, identity_lut_1d(7), atol=1e-6)
    with pytest.raises(ValueError, match="size must be in 2..256"):
        write_cube(path, identity_lut(2), size=257)
    with pytest.raises(ValueError, match="LUT_1D_SIZE"):
        write_cube(path, torch.rand(3, 65537))
    bad = identity_lut(2)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        write_cube(tmp_path / "nan.cube", bad)
    assert not (tmp_path / "nan.cube").exists()  # atomic: nothing half-written
    with pytest.raises(ValueError):
        write_cube(path, torch.rand(2, 3, 2, 2, 2))


def test_fast_parser_gives_the_same_result_and_errors(tmp_path, monkeypatch):
    lut = _rand_lut(9, seed=8)
    path = tmp_path / "f.cube"
    write_cube(path, lut)
    slow = read_cube(path)
    monkeypatch.setattr(lut_io, "_FAST_PARSE_MIN_ROWS", 0)
    fast = read_cube(path)
    assert torch.equal(fast.lut3d, slow.lut3d)
    lines = path.read_text().splitlines()
    lines[100] = "0.1 0.2"
    bad = _write(tmp_path, "\n".join(lines) + "\n", "bad.cube")
    with pytest.raises(InputFormatError) as err:
        read_cube(bad)
    assert err.value.line == 101


# --------------------------------------------------------------------------------------
# interop with colour-science
# --------------------------------------------------------------------------------------


def test_colour_science_reads_ours_and_we_read_theirs(tmp_path):
    lut = _rand_lut(5, seed=9, lo=0.0, hi=1.0)
    ours = tmp_path / "ours.cube"
    write_cube(ours, lut, title="interop")
    theirs = colour.io.read_LUT_IridasCube(str(ours))
    # colour-science tables are indexed [r, g, b, c]
    assert np.abs(theirs.table - _rounded(lut).permute(3, 2, 1, 0).numpy()).max() <= 1e-7
    rgb = np.random.default_rng(0).random((50, 3))
    mine = apply_lut(torch.from_numpy(rgb.T.copy()).float().view(1, 3, 1, 50), read_cube(ours).lut3d)
    assert np.abs(mine[0, :, 0].t().numpy() - theirs.apply(rgb)).max() <= 1e-5

    table = np.random.default_rng(1).random((4, 4, 4, 3))
    path = tmp_path / "theirs.cube"
    colour.io.write_LUT_IridasCube(colour.LUT3D(table=table, name="theirs", comments=["hello"]), str(path))
    cube = read_cube(path)
    assert cube.title == "theirs" and "hello" in cube.comments
    assert np.abs(cube.lut3d.permute(3, 2, 1, 0).numpy() - table).max() <= 1e-6


# --------------------------------------------------------------------------------------
# malformed .cube files: each reports its line
# --------------------------------------------------------------------------------------

_GOOD_2 = "0 0 0\n1 0 0\n0 1 0\n1 1 0\n0 0 1\n1 0 1\n0 1 1\n1 1 1\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('TITLE "x"\nLUT_3D_SIZE 2\nFOO 1\n' + _GOOD_2, 3, "unknown keyword 'FOO'"),
        ("LUT_3D_SIZE 2\n" + _GOOD_2.replace("1 1 0\n", "1 1\n"), 5, "expected 3 numbers"),
        ("LUT_3D_SIZE 2\n" + _GOOD_2.replace("0 1 1\n", "0 1 1 0\n"), 8, "expected 3 numbers"),
        ("LUT_3D_SIZE 2\n" + _GOOD_2.replace("1 0 1\n", "1 zero 1\n"), 7, "'zero' is not a number"),
        ("LUT_3D_SIZE 2\n" + _GOOD_2.replace("1 0 1\n", "1 nan 1\n"), 7, "not a finite number"),
        ("LUT_3D_SIZE 2\n" + _GOOD_2 + "0.5 0.5 0.5\n", 10, "too many table lines"),
        ("LUT_3D_SIZE 2\n" + _GOOD_2 + "\n# trailing comment\n\n0.5 0.5 0.5\n", 13, "too many table lines"),
        ("LUT_3D_SIZE 2\n" + _GOOD_2.replace("1 1 1\n", "") + "\n# end\n", 10, "too few table lines"),
        ("LUT_3D_SIZE 2\n", 1, "too few table lines: expected 8, got 0"),
        ("LUT_3D_SIZE 1\n0 0 0\n", 1, "out of range"),
        ("# c\nLUT_3D_SIZE 257\n", 2, "out of range"),
        ("LUT_1D_SIZE 65537\n", 1, "out of range"),
        ("LUT_3D_SIZE 2.5\n" + _GOOD_2, 1, "not an integer"),
        ("LUT_3D_SIZE\n" + _GOOD_2, 1, "needs one integer"),
        ('TITLE "no size"\n\n' + _GOOD_2, 3, "missing LUT_3D_SIZE or LUT_1D_SIZE"),
        ("", 1, "missing LUT_3D_SIZE"),
        ("LUT_3D_SIZE 2\nLUT_3D_SIZE 2\n" + _GOOD_2, 2, "appears twice"),
        ("LUT_3D_SIZE 2\n" + _GOOD_2[:12] + "DOMAIN_MIN 0 0 0\n" + _GOOD_2[12:], 4, "after the table data"),
        ("LUT_3D_SIZE 2\nDOMAIN_MIN 0 0\n" + _GOOD_2, 2, "DOMAIN_MIN needs 3 numbers"),
        ("LUT_3D_SIZE 2\nDOMAIN_MAX 1 x 1\n" + _GOOD_2, 2, "'x' is not a number"),
        ("DOMAIN_MAX 1 1 1\nLUT_3D_SIZE 2\nDOMAIN_MIN 1 0 0\n" + _GOOD_2, 3, "domain max must be > domain min"),
        ("LUT_3D_SIZE 2\nLUT_3D_INPUT_RANGE 1 0\n" + _GOOD_2, 2, "must be greater than min"),
        ("LUT_1D_SIZE 3\n0 0 0\n1 1 1\n", 3, "too few table lines"),
    ],
)
def test_malformed_cube_reports_the_line(tmp_path, text, line, message):
    path = _write(tmp_path, text, "bad.cube")
    with pytest.raises(InputFormatError) as err:
        read_cube(path)
    assert err.value.line == line, str(err.value)
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}:{line}: ")
    # same with CRLF line ends
    with pytest.raises(InputFormatError) as err2:
        read_cube(_write(tmp_path, text, "bad_crlf.cube", newline="\r\n"))
    assert err2.value.line == line


def test_binary_file_is_rejected(tmp_path):
    path = tmp_path / "bin.cube"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(InputFormatError, match="not a text file"):
        read_cube(path)


# --------------------------------------------------------------------------------------
# Hald CLUTs
# --------------------------------------------------------------------------------------


def test_hald_identity_layout(tmp_path):
    path = tmp_path / "id2.png"
    write_hald(path, 2)
    img = np.asarray(Image.open(path))
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    flat = img.reshape(-1, 3)
    # pixel i = node (i % 4, i // 4 % 4, i // 16), value k * 255 / 3 (red fastest)
    assert flat[1].tolist() == [85, 0, 0] and flat[4].tolist() == [0, 85, 0] and flat[16].tolist() == [0, 0, 85]
    assert flat[-1].tolist() == [255, 255, 255]
    lut = read_hald(path)
    assert lut.shape == (3, 4, 4, 4) and torch.allclose(lut, identity_lut(4), atol=0.5 / 255)


@pytest.mark.parametrize("level", [2, 8])
@pytest.mark.parametrize(("bits", "ext"), [(8, ".png"), (16, ".png"), (16, ".tif")])
def test_hald_round_trip(tmp_path, level, bits, ext):
    size = level * level
    lut = lut_from_function(lambda x: (x.roll(1, 1) * 0.8 + 0.1) ** 1.3, size)
    path = tmp_path / f"h{level}_{bits}{ext}"
    write_hald(path, lut, bits=bits)
    back = read_hald(path)
    top = 255 if bits == 8 else 65535
    assert back.shape == lut.shape and back.dtype == torch.float32
    assert (back - lut).abs().max().item() <= 0.5 / top + 1e-7
    # quantised values survive a second round trip exactly
    again = tmp_path / f"again{ext}"
    write_hald(again, back, bits=bits)
    assert torch.equal(read_hald(again), back)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == (np.uint8 if bits == 8 else np.uint16) and raw.shape == (level**3, level**3, 3)


def test_hald_and_equivalent_cube_give_the_same_image(tmp_path):
    lut = lut_from_function(lambda x: torch.stack([x[:, 1] ** 0.8, x[:, 2], 0.9 * x[:, 0] + 0.05], 1), 16)
    write_hald(tmp_path / "look.png", lut)
    hald = read_hald(tmp_path / "look.png")
    write_cube(tmp_path / "look.cube", hald)
    cube = read_cube(tmp_path / "look.cube").lut3d
    img = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a, b = apply_lut(img, hald), apply_lut(img, cube)
    assert (a - b).abs().max().item() <= 1e-6
    assert (a - apply_lut(img, lut)).abs().max().item() <= 0.5 / 255 + 1e-6


def test_write_hald_levels_and_errors(tmp_path):
    with pytest.raises(ValueError, match="not a Hald size"):
        write_hald(tmp_path / "x.png", identity_lut(5))
    write_hald(tmp_path / "r.png", identity_lut(5), level=3)  # resampled to 9 nodes
    assert torch.allclose(read_hald(tmp_path / "r.png"), identity_lut(9), atol=0.5 / 255)
    with pytest.raises(ValueError, match="level"):
        write_hald(tmp_path / "x.png", 17)
    with pytest.raises(ValueError, match="PNG or TIFF"):
        write_hald(tmp_path / "x.jpg", 2, bits=16)
    with pytest.raises(ValueError, match="bits"):
        write_hald(tmp_path / "x.png", 2, bits=12)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("shape", "mode", "message"),
    [
        ((8, 9, 3), "RGB", "square"),
        ((10, 10, 3), "RGB", "level\\*\\*3"),
        ((1, 1, 3), "RGB", "level\\*\\*3"),
        ((8, 8), "L", "RGB image"),
    ],
)
def test_read_hald_rejects_bad_images(tmp_path, shape, mode, message):
    path = tmp_path / "bad.png"
    Image.fromarray(np.zeros(shape, dtype=np.uint8), mode).save(path)
    with pytest.raises(InputFormatError, match=message):
        read_hald(path)


def test_read_hald_accepts_rgba_and_rejects_garbage(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = np.asarray(Image.open(_hald2(tmp_path)))
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert torch.allclose(read_hald(tmp_path / "rgba.png"), identity_lut(4), atol=0.5 / 255)
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(InputFormatError, match="cannot decode"):
        read_hald(tmp_path / "junk.png")
    with pytest.raises(FileNotFoundError):
        read_hald(tmp_path / "missing.png")


def _hald2(tmp_path: Path) -> Path:
    path = tmp_path / "id2.png"
    write_hald(path, 2)
    return path
