"""The packaged library of real looks (prefstyle.data.looks) and the tiled lookup-image reader."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from prefstyle.data.looks import Look, LookLibrary, load_looks, packaged_looks_path
from prefstyle.errors import PrefstyleError
from prefstyle.imaging.color import delta_e_2000_rgb
from prefstyle.imaging.lut import identity_lut

KINDS = {"film", "creative", "camera", "expert", "preset"}


@pytest.fixture(scope="module")
def lib() -> LookLibrary:
    return load_looks()


def _test_image(n: int = 16) -> torch.Tensor:
    """A (1,3,n,n) image of colours spread over the cube (a fixed random sample, sRGB)."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, n, n, generator=g)


def test_packaged_library_size_and_families(lib):
    assert packaged_looks_path().is_file()
    assert len(lib) >= 300
    fams = Counter(lk.family for lk in lib.looks)
    assert len(fams) >= 15
    # every split is by family: no family may dominate the library
    assert max(fams.values()) <= 0.25 * len(lib), fams.most_common(3)
    assert lib.size in (17, 33)


def test_source_groups(lib):
    from prefstyle.data.looks import family_group

    groups = lib.groups()
    assert set(groups) == set(lib.families())
    assert family_group("sfl-bw") == family_group("sfl-kodak-cine") == "spectral-film-lut"
    assert family_group("cssgram") == family_group("instagram-css")
    assert family_group("digikam") == "digikam"
    assert len(set(groups.values())) >= 10


def test_tables_finite_and_in_a_sane_range(lib):
    assert torch.isfinite(lib.tables).all()
    assert lib.tables.min() > -0.5 and lib.tables.max() < 1.5


def test_every_look_has_provenance(lib):
    for lk in lib.looks:
        assert lk.kind in KINDS, lk
        assert lk.name.startswith(lk.family + "/"), lk
        for field in (lk.source, lk.author, lk.license):
            assert field.strip(), lk
    assert len(set(lib.names())) == len(lib)


def test_held_out_collection_is_absent(lib):
    """The RawTherapee film-simulation HaldCLUTs (Pat David et al.) stay out of the library."""
    banned = ("haldclut", "hald_clut", "t3mujin", "film simulation", "film-simulation", "gmic", "g'mic", "pat david")
    for lk in lib.looks:
        text = " ".join((lk.name, lk.source, lk.author)).lower()
        assert not any(b in text for b in banned), lk


def test_looks_are_real_edits_not_identity(lib):
    img = _test_image()
    ident = identity_lut(lib.size)
    diff = (lib.tables - ident).abs().flatten(1).amax(1)
    assert (diff > 1.0 / 255).all()
    from prefstyle.imaging.lut import apply_lut

    out = apply_lut(img.expand(len(lib), -1, -1, -1), lib.tables).clamp(0, 1)
    de = delta_e_2000_rgb(out, img.expand_as(out)).mean(dim=(1, 2)).numpy()
    # a library of looks: visible on average, none of them a wholesale colour replacement
    assert 3.0 < np.median(de) < 25.0, np.median(de)
    assert de.max() < 60.0
    assert (de > 1.0).mean() > 0.95


def test_save_load_round_trip(lib, tmp_path):
    sub = lib.subset(lib.families()[:2])
    path = sub.save(tmp_path / "mini")
    back = LookLibrary.load(path)
    assert back.looks == sub.looks
    assert torch.allclose(back.tables, sub.tables, atol=2e-3)
    assert back.size == sub.size


def _write_ok(tmp_path):
    looks = [Look(f"f/a{i}", "f", "creative", "src", "me", "CC0-1.0") for i in range(2)]
    tables = identity_lut(5).expand(2, -1, -1, -1, -1).clone()
    tables[1, 0] *= 0.9
    return LookLibrary(looks, tables).save(tmp_path / "lib")


def _one_line_error(path) -> str:
    with pytest.raises(PrefstyleError) as e:
        LookLibrary.load(path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_malformed_json_is_one_line_error(tmp_path):
    path = _write_ok(tmp_path)
    path.write_text("{ not json")
    msg = _one_line_error(path)
    assert str(path) in msg and "malformed JSON" in msg


def test_wrong_format_and_version(tmp_path):
    path = _write_ok(tmp_path)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "format": "something-else"}))
    assert str(path) in _one_line_error(path)
    path.write_text(json.dumps({**doc, "version": 99}))
    assert "version" in _one_line_error(path)


def test_missing_or_broken_tables(tmp_path):
    path = _write_ok(tmp_path)
    tables = path.with_suffix(".safetensors")
    tables.write_bytes(b"garbage")
    assert str(tables) in _one_line_error(path)
    tables.unlink()
    assert str(tables) in _one_line_error(path)


def test_count_mismatch_and_nan_tables(tmp_path):
    from safetensors.torch import save_file

    path = _write_ok(tmp_path)
    tables = path.with_suffix(".safetensors")
    save_file({"tables": identity_lut(5).expand(3, -1, -1, -1, -1).half().contiguous()}, str(tables))
    assert "2 looks but 3 tables" in _one_line_error(path)
    bad = identity_lut(5).expand(2, -1, -1, -1, -1).clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    save_file({"tables": bad.half().contiguous()}, str(tables))
    assert "NaN" in _one_line_error(path)


def test_missing_file_and_bad_entry(tmp_path):
    assert "not found" in _one_line_error(tmp_path / "nothing.json")
    path = _write_ok(tmp_path)
    doc = json.loads(path.read_text())
    doc["looks"][0] = {"name": "f/a0"}
    path.write_text(json.dumps(doc))
    assert "malformed look entry" in _one_line_error(path)


# ---------------------------------------------------------------------------------------
# tiled lookup images
# ---------------------------------------------------------------------------------------


def _tiled_identity(n: int, per_row: int) -> np.ndarray:
    """An identity lookup image: tile b at (b // per_row, b % per_row), x = red, y = green."""
    rows = n // per_row
    img = np.zeros((rows * n, per_row * n, 3), np.uint8)
    v = np.round(np.arange(n) * 255 / (n - 1)).astype(np.uint8)
    for b in range(n):
        ty, tx = divmod(b, per_row)
        tile = img[ty * n : (ty + 1) * n, tx * n : (tx + 1) * n]
        tile[..., 0] = v[None, :]
        tile[..., 1] = v[:, None]
        tile[..., 2] = v[b]
    return img


@pytest.mark.parametrize("n, per_row", [(16, 16), (16, 4), (64, 8)])
def test_tiled_identity_reads_as_identity(tmp_path, n, per_row):
    from PIL import Image

    from prefstyle.imaging.lut_tiles import read_lut_image, read_tiled_lut

    f = tmp_path / "id.png"
    Image.fromarray(_tiled_identity(n, per_row)).save(f)
    lut = read_tiled_lut(f)
    assert lut.shape == (3, n, n, n)
    assert (lut - identity_lut(n)).abs().max() < 1 / 255 + 1e-6
    assert (read_lut_image(f) - lut).abs().max() == 0


def test_lut_image_prefers_hald_when_it_is_one(tmp_path):
    from prefstyle.imaging.lut_io import write_hald
    from prefstyle.imaging.lut_tiles import read_lut_image

    f = tmp_path / "hald.png"
    lut = identity_lut(9) ** 1.2  # a smooth non-identity table, Hald level 3 (27x27 pixels)
    write_hald(f, lut)
    assert (read_lut_image(f) - lut).abs().max() < 1 / 255 + 1e-6


def test_bad_lookup_image_is_one_line_error(tmp_path):
    from PIL import Image

    from prefstyle.errors import InputFormatError
    from prefstyle.imaging.lut_tiles import read_lut_image, read_tiled_lut

    f = tmp_path / "odd.png"
    Image.fromarray(np.zeros((10, 30, 3), np.uint8)).save(f)
    for reader in (read_tiled_lut, read_lut_image):
        with pytest.raises(InputFormatError) as e:
            reader(f)
        assert str(f) in str(e.value) and "\n" not in str(e.value)
    g = tmp_path / "text.png"
    g.write_text("not an image")
    with pytest.raises(InputFormatError):
        read_tiled_lut(g)


# ---------------------------------------------------------------------------------------
# scripts/build_looks.py: the renderers of presets (CSS filters, DNG profile look tables)
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def build():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "build_looks.py"
    spec = importlib.util.spec_from_file_location("build_looks", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_css_filter_functions_follow_the_w3c_matrices(build):
    rgb = np.random.default_rng(0).random((50, 3))
    white = np.ones((1, 3))
    assert np.allclose(build.css_filter(white, "sepia(1)"), [[1.0, 1.0, 0.937]], atol=1e-3)
    grey = build.css_filter(rgb, "grayscale(100%)")
    assert np.allclose(grey[:, 0], grey[:, 2]) and np.allclose(grey[:, 0], rgb @ [0.2126, 0.7152, 0.0722])
    assert np.allclose(build.css_filter(rgb, "hue-rotate(0deg) saturate(1) brightness(1) contrast(1)"), rgb)
    assert np.allclose(build.css_filter(rgb, "contrast(2)"), np.clip((rgb - 0.5) * 2 + 0.5, 0, 1))
    with pytest.raises(ValueError, match="unknown CSS filter"):
        build.css_filter(rgb, "wobble(3)")


def test_css_blend_modes(build):
    cb = np.random.default_rng(1).random((40, 3))
    assert np.allclose(build.css_blend(cb, np.ones(3), "multiply"), cb)
    assert np.allclose(build.css_blend(cb, np.zeros(3), "screen"), cb)
    assert np.allclose(build.css_blend(cb, np.full(3, 0.5), "soft-light"), cb)
    lum = build.css_blend(cb, np.array([0.2, 0.5, 0.9]), "color") @ np.array([0.3, 0.59, 0.11])
    assert np.allclose(lum, cb @ np.array([0.3, 0.59, 0.11]), atol=1e-6)


def test_css_stylesheet_parsing_keeps_pointwise_looks_only(build):
    css = """
    .f-a { filter: sepia(.2) contrast(1.1); }
    .f-a::before { background: rgba(255, 0, 0, .5); mix-blend-mode: multiply; }
    .f-b { filter: saturate(1.5); }
    .f-b::after { background: radial-gradient(circle, transparent 0, black 100%); }
    """
    looks = build.parse_css_filters(css, "f-")
    assert set(looks) == {"a", "b"}
    assert looks["b"]["spatial"] and not looks["a"]["spatial"]
    out = build.css_look(np.ones((1, 3)), looks["a"])
    # white under a half-opaque red multiply overlay is pink before the filter
    assert out[0, 0] > out[0, 1] and out[0, 0] > out[0, 2]


def test_dcp_hsv_round_trip_and_neutral_table(build):
    rgb = np.random.default_rng(2).random((100, 3))
    h, s, v = build._rgb_to_hsv(rgb)
    assert np.allclose(build._hsv_to_rgb(h, s, v), rgb, atol=1e-9)
    table = np.tile(np.array([0.0, 1.0, 1.0]), 6 * 4 * 3)  # hue shift 0, scales 1
    out = build._look_table(rgb, (6, 4, 3), table, srgb_value=True)
    assert np.allclose(out, rgb, atol=1e-6)
