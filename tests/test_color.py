import csv
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000, rgb2lab

from prefstyle.imaging import color as C

DATA = Path(__file__).parent / "data" / "sharma_ciede2000.csv"


def _sharma():
    with DATA.open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    cols = ("L1", "a1", "b1", "L2", "a2", "b2", "dE00")
    t = torch.tensor([[float(r[k]) for k in cols] for r in rows], dtype=torch.float64)
    # (N, 3) -> (1, 3, N, 1) images
    as_img = lambda x: x.T[None, :, :, None]
    return as_img(t[:, 0:3]), as_img(t[:, 3:6]), t[:, 6]


def _random_lab(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    L = torch.rand(shape, generator=g, dtype=dtype) * 100
    ab = torch.rand((2, *shape), generator=g, dtype=dtype) * 255 - 128
    return torch.stack([L, ab[0], ab[1]], dim=-3)


def _to_np_hwc(x: torch.Tensor) -> np.ndarray:
    return x.movedim(-3, -1).numpy()


def test_sharma_table_all_34_pairs():
    lab1, lab2, expected = _sharma()
    assert expected.numel() == 34
    got = C.delta_e_2000(lab1, lab2)[0, :, 0]
    # float64 rounds to the published 4 decimals, including pairs 10 and 14 (hues exactly 180 apart)
    assert torch.equal(torch.round(got * 1e4) / 1e4, expected), (got - expected).abs().max()
    got32 = C.delta_e_2000(lab1.float(), lab2.float())[0, :, 0].double()
    assert (got32 - expected).abs().max() < 1e-4


def test_sharma_table_matches_skimage_and_is_symmetric():
    lab1, lab2, expected = _sharma()
    ours = C.delta_e_2000(lab1, lab2)
    assert torch.allclose(ours, C.delta_e_2000(lab2, lab1), atol=1e-12)
    ref = deltaE_ciede2000(_to_np_hwc(lab1), _to_np_hwc(lab2))
    # pairs 10 and 14 (hues exactly opposite): skimage's branch depends on how atan2 rounds
    ok = ~np.isin(np.arange(1, 35), [10, 14])
    assert np.abs(ours.numpy()[0, ok, 0] - ref[0, ok, 0]).max() < 1e-10


def test_random_images_match_skimage():
    lab1, lab2 = _random_lab((2, 32, 32), 0), _random_lab((2, 32, 32), 1)
    # include achromatic colours and identical pixels
    lab1[..., 1:, :4, :] = 0.0
    lab2[..., 1:, :, :2] = 0.0
    lab2[..., -4:, :] = lab1[..., -4:, :]
    ours = C.delta_e_2000(lab1, lab2)
    assert ours.shape == (2, 32, 32)
    ref = deltaE_ciede2000(_to_np_hwc(lab1), _to_np_hwc(lab2))
    assert np.abs(ours.numpy() - ref).max() < 1e-3
    for k in [(2.0, 1.0, 1.0), (1.0, 0.5, 3.0)]:
        ref = deltaE_ciede2000(_to_np_hwc(lab1), _to_np_hwc(lab2), *k)
        assert np.abs(C.delta_e_2000(lab1, lab2, *k).numpy() - ref).max() < 1e-3


def test_symmetric_and_zero_on_identical():
    lab1, lab2 = _random_lab((4, 8), 2), _random_lab((4, 8), 3)
    assert torch.allclose(C.delta_e_2000(lab1, lab2), C.delta_e_2000(lab2, lab1), atol=1e-9)
    lab1[..., 1:, 0, :] = 0.0  # greys too
    assert C.delta_e_2000(lab1, lab1).abs().max() == 0
    assert (C.delta_e_2000(lab1, lab2) > 0).all()


def test_delta_e_rgb_matches_skimage():
    g = torch.Generator().manual_seed(4)
    rgb1, rgb2 = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64).unbind(0)
    ours = C.delta_e_2000_rgb(rgb1, rgb2)
    ref = deltaE_ciede2000(rgb2lab(_to_np_hwc(rgb1)), rgb2lab(_to_np_hwc(rgb2)))
    assert ours.shape == (16, 16)
    assert np.abs(ours.numpy() - ref).max() < 1e-3


def test_delta_e_gradcheck_generic_points():
    lab1 = _random_lab((2, 3), 5).requires_grad_()
    lab2 = _random_lab((2, 3), 6).requires_grad_()
    assert torch.autograd.gradcheck(C.delta_e_2000, (lab1, lab2), fast_mode=False)
    g = torch.Generator().manual_seed(7)
    rgb1 = (0.1 + 0.8 * torch.rand(1, 3, 2, 2, generator=g, dtype=torch.float64)).requires_grad_()
    rgb2 = (0.1 + 0.8 * torch.rand(1, 3, 2, 2, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(C.delta_e_2000_rgb, (rgb1, rgb2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_delta_e_gradient_finite_at_singular_points(dtype):
    lab = _random_lab((3, 4), 8, dtype)
    lab[..., 1:, 0, :] = 0.0  # a = b = 0
    cases = [
        (lab, lab.clone()),  # identical (incl. identical greys)
        (lab, lab.flip(-1)),  # grey vs grey / grey vs colour
        (torch.zeros(1, 3, 1, 1, dtype=dtype), torch.zeros(1, 3, 1, 1, dtype=dtype)),  # black vs black
    ]
    for x, y in cases:
        x, y = x.clone().requires_grad_(), y.clone().requires_grad_()
        d = C.delta_e_2000(x, y)
        assert torch.isfinite(d).all()
        gx, gy = torch.autograd.grad(d.sum(), (x, y))
        assert torch.isfinite(gx).all() and torch.isfinite(gy).all()
    # gradient at identical sRGB images too
    rgb = torch.rand(1, 3, 4, 4, dtype=dtype)
    rgb[..., 0, :] = 0.0
    rgb.requires_grad_()
    (g,) = torch.autograd.grad(C.delta_e_2000_rgb(rgb, rgb.detach()).sum(), rgb)
    assert torch.isfinite(g).all()


def test_delta_e_half_precision_and_shapes():
    lab1, lab2 = _random_lab((4, 4), 9), _random_lab((4, 4), 10)
    d = C.delta_e_2000(lab1.half(), lab2.half())
    assert d.dtype == torch.float16 and torch.isfinite(d).all()
    assert torch.allclose(d.double(), C.delta_e_2000(lab1, lab2), rtol=1e-2, atol=0.1)
    assert C.delta_e_2000(lab1[None, None], lab2).shape == (1, 1, 4, 4)  # broadcasting
    with pytest.raises(ValueError):
        C.delta_e_2000(lab1[:2], lab2[:2])
    with pytest.raises(TypeError):
        C.delta_e_2000(lab1.long(), lab2.long())


def test_kornia_lab_takes_srgb_and_matches_skimage():
    g = torch.Generator().manual_seed(11)
    rgb = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64)
    lab = C.rgb_to_lab(rgb)
    assert np.abs(_to_np_hwc(lab) - rgb2lab(_to_np_hwc(rgb))).max() < 1e-4
    # rgb_to_lab linearises inside: it equals the explicit sRGB -> linear -> XYZ -> Lab chain
    xyz = C.rgb_to_xyz(C.srgb_to_linear(rgb))
    assert torch.allclose(C.linear_to_srgb(C.xyz_to_rgb(xyz)), rgb, atol=1e-6)
    # white is (100, -0.0025, 0.0047), not exactly neutral: kornia and skimage use the 6-digit
    # sRGB matrix, whose rows do not sum exactly to their white point (0.95047, 1, 1.08883)
    white = C.rgb_to_lab(torch.ones(1, 3, 1, 1, dtype=torch.float64)).flatten()
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64), atol=1e-2)
    assert torch.allclose(C.lab_to_rgb(lab), rgb, atol=1e-6)  # Lab round trip


def test_oklab_matches_colour_science_and_round_trips():
    colour = pytest.importorskip("colour")
    g = torch.Generator().manual_seed(12)
    rgb = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64)
    ours = _to_np_hwc(C.rgb_to_oklab(rgb))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lin = colour.cctf_decoding(_to_np_hwc(rgb), function="sRGB")
        ref = colour.XYZ_to_Oklab(colour.RGB_to_XYZ(lin, "sRGB"))
    assert np.abs(ours - ref).max() < 5e-4  # colour derives its own sRGB matrix: ~1e-4 apart
    white = C.rgb_to_oklab(torch.ones(1, 3, 1, 1, dtype=torch.float64)).flatten()
    assert torch.allclose(white, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-4)
    # the published 10-digit matrices invert each other to ~1e-7
    assert torch.allclose(C.oklab_to_rgb(C.rgb_to_oklab(rgb)), rgb, atol=1e-5)
    lin = torch.randn(1, 3, 4, 4, generator=g, dtype=torch.float64)  # also out of gamut / negative
    assert torch.allclose(C.oklab_to_linear_rgb(C.linear_rgb_to_oklab(lin)), lin, atol=1e-5)
    assert C.rgb_to_oklab(rgb.float()).dtype == torch.float32


def test_oklab_gradients():
    g = torch.Generator().manual_seed(13)
    lin = (0.05 + 0.9 * torch.rand(1, 3, 2, 2, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(C.linear_rgb_to_oklab, (lin,))
    lab = C.linear_rgb_to_oklab(lin).detach().requires_grad_()
    assert torch.autograd.gradcheck(C.oklab_to_linear_rgb, (lab,))
    black = torch.zeros(1, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    (gb,) = torch.autograd.grad(C.rgb_to_oklab(black).sum(), black)
    assert torch.isfinite(gb).all()


def test_luminance():
    rgb = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    y = C.luminance(rgb)
    assert y.shape == (2, 1, 5, 5)
    assert torch.allclose(y, C.rgb_to_xyz(rgb)[:, 1:2], atol=1e-3)  # the Y of XYZ
    assert torch.allclose(C.luminance(torch.ones(1, 3, 1, 1)), torch.ones(1, 1, 1, 1))


def test_hue_conventions_are_radians():
    # pure red, yellow, green, blue: hue 0, 60, 120, 240 degrees
    rgb = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]]).T[None, :, :, None]
    expected = torch.tensor([0.0, 60, 120, 240]).deg2rad()
    hsv, hls = C.rgb_to_hsv(rgb), C.rgb_to_hls(rgb)
    assert torch.allclose(hsv[0, 0, :, 0], expected, atol=1e-5)
    assert torch.allclose(hls[0, 0, :, 0], expected, atol=1e-5)
    assert torch.allclose(hls[0, 1:, :, 0], torch.tensor([[0.5] * 4, [1.0] * 4]), atol=1e-5)  # (H, L, S)
    x = torch.rand(1, 3, 6, 6)
    assert (C.rgb_to_hsv(x)[:, 0] < 2 * math.pi).all()
    assert torch.allclose(C.hsv_to_rgb(C.rgb_to_hsv(x)), x, atol=1e-5)
    assert torch.allclose(C.hls_to_rgb(C.rgb_to_hls(x)), x, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    lab1, lab2 = _random_lab((8, 8), 14), _random_lab((8, 8), 15)
    cpu = C.delta_e_2000(lab1, lab2)
    gpu = C.delta_e_2000(lab1.cuda(), lab2.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-8)
    rgb = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    assert torch.allclose(C.rgb_to_oklab(rgb.cuda()).cpu(), C.rgb_to_oklab(rgb), atol=1e-10)


def test_values_only_delta_e_equals_the_guarded_one():
    lab1, lab2, expected = _sharma()
    got = C.delta_e_2000_values(lab1, lab2)[0, :, 0]
    assert torch.equal(torch.round(got * 1e4) / 1e4, expected)
    a, b = _random_lab((3, 40, 40), 5), _random_lab((3, 40, 40), 6)
    a[..., 1:, :5, :] = 0.0  # achromatic, with negative zeros too
    b[..., 1:, :3, :] = -0.0
    b[..., :, 30:, :] = a[..., :, 30:, :]  # identical pixels
    for x, y in ((a, b), (a.float(), b.float())):
        ref = C.delta_e_2000(x, y)
        assert torch.allclose(C.delta_e_2000_values(x, y), ref, atol=1e-4, rtol=1e-5), (
            (C.delta_e_2000_values(x, y) - ref).abs().max()
        )


def test_mean_delta_e_2000_cross_is_every_pair_of_sample_sets():
    g = torch.Generator().manual_seed(3)
    scale = torch.tensor([100.0, 120.0, 120.0]).view(1, 3, 1, 1)
    shift = torch.tensor([0.0, 60.0, 60.0]).view(1, 3, 1, 1)
    ideals = torch.rand(7, 3, 4, 5, generator=g) * scale - shift  # (K,3,h,w)
    seen = torch.rand(3, 3, 4, 5, generator=g) * scale - shift  # (M,3,h,w)
    want = torch.stack([torch.stack([C.delta_e_2000(s, i).mean() for i in ideals]) for s in seen])
    got = C.mean_delta_e_2000_cross(ideals, seen)
    assert got.shape == (3, 7)
    assert torch.allclose(got, want, atol=1e-4)
    planes = ideals.flatten(2).transpose(0, 1).contiguous()
    assert torch.equal(C.mean_delta_e_2000_cross(planes, seen), got)
    assert C.mean_delta_e_2000_cross(ideals, seen[:0]).shape == (0, 7)
    with pytest.raises(ValueError, match="sample sets differ"):
        C.mean_delta_e_2000_cross(ideals, seen[..., :4])
