"""3D / 1D LUT application: identity, baked functions, references, batching, gradients."""

from __future__ import annotations

import math

import colour
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from prefstyle.imaging import lut as lut_mod
from prefstyle.imaging.lut import (
    LUT_METHODS,
    apply_lut,
    apply_lut_1d,
    identity_lut,
    identity_lut_1d,
    lut_from_function,
    resize_lut,
    resize_lut_1d,
)

METHODS = list(LUT_METHODS)


def _rand_img(b=1, h=23, w=31, seed=0, lo=0.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(b, 3, h, w, generator=g)


def _affine(x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor([[0.8, 0.3, -0.1], [0.05, 0.9, 0.1], [-0.2, 0.15, 1.1]])
    off = torch.tensor([0.05, -0.02, 0.03]).view(1, 3, 1, 1)
    return torch.einsum("ij,bjhw->bihw", m, x) + off


def _grid_sample_reference(img: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """The project convention, literally: 3-D grid_sample with grid (x=r, y=g, z=b)."""
    grid = img.clamp(0, 1).permute(0, 2, 3, 1)[:, None] * 2 - 1  # (B, 1, H, W, 3)
    luts = lut[None].expand(img.shape[0], -1, -1, -1, -1) if lut.ndim == 4 else lut
    return F.grid_sample(luts, grid, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]


def _tetra_reference(lut: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Textbook tetrahedral interpolation, one point at a time (lut: (3, S, S, S) [c, b, g, r])."""
    s = lut.shape[-1]
    out = np.empty_like(rgb, dtype=np.float64)
    for n, (r, g, b) in enumerate(np.clip(rgb, 0, 1) * (s - 1)):
        i, j, k = (min(math.floor(v), s - 2) for v in (r, g, b))
        fr, fg, fb = r - i, g - j, b - k

        def c(di, dj, dk, i=i, j=j, k=k):
            return lut[:, k + dk, j + dj, i + di].astype(np.float64)

        if fr >= fg >= fb:
            v = (1 - fr) * c(0, 0, 0) + (fr - fg) * c(1, 0, 0) + (fg - fb) * c(1, 1, 0) + fb * c(1, 1, 1)
        elif fr >= fb >= fg:
            v = (1 - fr) * c(0, 0, 0) + (fr - fb) * c(1, 0, 0) + (fb - fg) * c(1, 0, 1) + fg * c(1, 1, 1)
        elif fb >= fr >= fg:
            v = (1 - fb) * c(0, 0, 0) + (fb - fr) * c(0, 0, 1) + (fr - fg) * c(1, 0, 1) + fg * c(1, 1, 1)
        elif fg >= fr >= fb:
            v = (1 - fg) * c(0, 0, 0) + (fg - fr) * c(0, 1, 0) + (fr - fb) * c(1, 1, 0) + fb * c(1, 1, 1)
        elif fg >= fb >= fr:
            v = (1 - fg) * c(0, 0, 0) + (fg - fb) * c(0, 1, 0) + (fb - fr) * c(0, 1, 1) + fr * c(1, 1, 1)
        else:  # fb >= fg >= fr
            v = (1 - fb) * c(0, 0, 0) + (fb - fg) * c(0, 0, 1) + (fg - fr) * c(0, 1, 1) + fr * c(1, 1, 1)
        out[n] = v
    return out


# --------------------------------------------------------------------------------------
# identity and construction
# --------------------------------------------------------------------------------------


def test_identity_lut_layout():
    lut = identity_lut(5)
    assert lut.shape == (3, 5, 5, 5) and lut.dtype == torch.float32
    # lut[c, b, g, r]
    assert lut[0, 1, 2, 3].item() == pytest.approx(3 / 4)
    assert lut[1, 1, 2, 3].item() == pytest.approx(2 / 4)
    assert lut[2, 1, 2, 3].item() == pytest.approx(1 / 4)
    assert identity_lut(3, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError):
        identity_lut(1)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [2, 17, 33])
def test_identity_is_identity(method, size):
    img = _rand_img(b=2)
    # include the cube's corners, edges and exact nodes
    img[0, :, 0, :4] = torch.tensor([[0.0, 1.0, 0.5, 1.0], [0.0, 1.0, 0.5, 0.0], [0.0, 1.0, 0.5, 1.0]])
    out = apply_lut(img, identity_lut(size), method)
    assert out.shape == img.shape and out.dtype == torch.float32
    assert (out - img).abs().max().item() <= 1e-5


@pytest.mark.parametrize("method", METHODS)
def test_single_image_without_batch_dimension(method):
    img = _rand_img()[0]
    out = apply_lut(img, identity_lut(9), method)
    assert out.shape == img.shape
    assert torch.allclose(out, img, atol=1e-5)


def test_lut_from_function_bakes_nodes_exactly():
    lut = lut_from_function(lambda x: x.flip(1), 7)  # channel swap r <-> b
    ident = identity_lut(7)
    assert torch.equal(lut[0], ident[2]) and torch.equal(lut[2], ident[0]) and torch.equal(lut[1], ident[1])
    with pytest.raises(ValueError, match="shape"):
        lut_from_function(lambda x: x[:, :2], 5)


# --------------------------------------------------------------------------------------
# baked functions are reproduced
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "fn",
    [_affine, lambda x: x[:, [2, 0, 1]], lambda x: 1.0 - x],
    ids=["colour-matrix", "channel-swap", "invert"],
)
def test_affine_functions_are_exact(method, fn):
    # Trilinear and tetrahedral interpolation both reproduce affine maps exactly.
    img = _rand_img(b=2, seed=3)
    out = apply_lut(img, lut_from_function(fn, 9), method)
    assert (out - fn(img)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("method", METHODS)
def test_gamma_is_reproduced_within_interpolation_error(method):
    def fn(x):
        return x**2.2

    size = 33
    img = _rand_img(b=1, h=40, w=40, seed=5)
    out = apply_lut(img, lut_from_function(fn, size), method)
    # linear interpolation error bound: h^2/8 * max|f''| with f'' = 2.2 * 1.2 * x^0.2 <= 2.64
    bound = (1 / (size - 1)) ** 2 / 8 * 2.64
    assert (out - fn(img)).abs().max().item() <= bound + 1e-6
    # at the nodes it is exact
    nodes = identity_lut(size).reshape(1, 3, size * size, size)
    assert torch.allclose(apply_lut(nodes, lut_from_function(fn, size), method), fn(nodes), atol=2e-6)


def test_tetrahedral_and_trilinear_agree_on_affine_luts_but_not_in_general():
    img = _rand_img(b=1, seed=7)
    lut = lut_from_function(_affine, 5)
    a = apply_lut(img, lut, "trilinear")
    b = apply_lut(img, lut, "tetrahedral")
    assert (a - b).abs().max().item() <= 1e-5
    rough = torch.rand(3, 5, 5, 5, generator=torch.Generator().manual_seed(1))
    assert (apply_lut(img, rough, "trilinear") - apply_lut(img, rough, "tetrahedral")).abs().max() > 1e-2


# --------------------------------------------------------------------------------------
# independent references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 5, 33, 65])
def test_trilinear_matches_the_grid_sample_convention(size):
    g = torch.Generator().manual_seed(size)
    img = _rand_img(b=2, seed=size, lo=-0.1, hi=1.1)  # includes clamped values
    rough = torch.rand(3, size, size, size, generator=g)
    smooth = lut_from_function(lambda x: torch.sin(2.5 * x.roll(1, 1)) * 0.6 + 0.3 * x, size)
    assert (apply_lut(img, rough) - _grid_sample_reference(img, rough)).abs().max().item() <= 1e-4
    assert (apply_lut(img, smooth) - _grid_sample_reference(img, smooth)).abs().max().item() <= 2e-6


def test_trilinear_3d_grid_sample_path(monkeypatch):
    # LUTs above _MAX_2D_TRICK_SIZE (and CUDA tensors) go through the 3-D grid_sample.
    monkeypatch.setattr(lut_mod, "_MAX_2D_TRICK_SIZE", 1)
    lut = torch.rand(3, 9, 9, 9, generator=torch.Generator().manual_seed(2))
    for shape in [(2, 3, 11, 13), (1, 3, 5, 7)]:  # even and odd pixel counts per chunk
        img = torch.rand(shape, generator=torch.Generator().manual_seed(4))
        assert (apply_lut(img, lut, chunk_pixels=50) - _grid_sample_reference(img, lut)).abs().max() <= 1e-6


def test_tetrahedral_matches_colour_science():
    g = torch.Generator().manual_seed(11)
    lut = torch.rand(3, 9, 9, 9, generator=g)
    img = _rand_img(b=1, h=16, w=16, seed=12)
    rgb = img[0].reshape(3, -1).t().double().numpy()
    table = lut.permute(3, 2, 1, 0).double().numpy()  # colour-science tables are [r, g, b, c]
    ref_tet = colour.algebra.table_interpolation_tetrahedral(rgb, table)
    ref_tri = colour.algebra.table_interpolation_trilinear(rgb, table)
    ours_tet = apply_lut(img, lut, "tetrahedral")[0].reshape(3, -1).t().double().numpy()
    ours_tri = apply_lut(img, lut, "trilinear")[0].reshape(3, -1).t().double().numpy()
    assert np.abs(ours_tet - ref_tet).max() <= 1e-5
    assert np.abs(ours_tri - ref_tri).max() <= 1e-4
    # and through colour's LUT3D object (which clamps to its domain like we do)
    lut3d = colour.LUT3D(table=table, size=9)
    applied = lut3d.apply(rgb, interpolator=colour.algebra.table_interpolation_tetrahedral)
    assert np.abs(ours_tet - applied).max() <= 1e-5


def test_trilinear_matches_pillow_color3dlut_on_a_photo(astronaut_small):
    from PIL import Image, ImageFilter

    lut = lut_from_function(lambda x: (_affine(x).clamp(0, 1) ** 0.8).roll(1, 1), 17)
    arr = (astronaut_small[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    table = lut.permute(1, 2, 3, 0).contiguous().numpy()  # (b, g, r, c): red fastest, as in .cube
    pil = np.asarray(Image.fromarray(arr).filter(ImageFilter.Color3DLUT(17, table))).astype(np.int16)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
    ours = (apply_lut(x, lut)[0].permute(1, 2, 0) * 255).round().to(torch.int16).numpy()
    diff = np.abs(ours - pil)
    assert diff.max() <= 1 and diff.mean() < 0.1  # Pillow interpolates in 16-bit fixed point


def test_tetrahedral_matches_textbook_loop_including_ties():
    g = torch.Generator().manual_seed(21)
    s = 4
    lut = torch.rand(3, s, s, s, generator=g)
    pts = torch.rand(200, 3, generator=g).tolist()
    third = 1 / (s - 1)
    pts += [
        [0.0, 0.0, 0.0],
        [1.0, 1.0, 1.0],
        [third, 2 * third, 1.0],  # exact nodes
        [0.5, 0.5, 0.2],  # fr == fg
        [0.2, 0.5, 0.5],  # fg == fb
        [0.4, 0.4, 0.4],  # all equal
        [0.1 + third, 0.1, 0.1 + 2 * third],  # equal fractions, different cells
        [1.3, -0.2, 0.5],  # clamped
    ]
    rgb = np.array(pts, dtype=np.float32)
    img = torch.from_numpy(rgb.T.copy()).view(1, 3, 1, -1)
    ours = apply_lut(img, lut, "tetrahedral")[0, :, 0].t().double().numpy()
    ref = _tetra_reference(lut.numpy(), rgb.astype(np.float64))
    assert np.abs(ours - ref).max() <= 1e-5


# --------------------------------------------------------------------------------------
# batching, chunking, domain, dtype
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_batched_luts_one_per_image(method):
    g = torch.Generator().manual_seed(5)
    luts = torch.rand(3, 3, 7, 7, 7, generator=g)
    img = _rand_img(b=3, seed=6)
    out = apply_lut(img, luts, method)
    for i in range(3):
        assert torch.allclose(out[i], apply_lut(img[i : i + 1], luts[i], method)[0], atol=1e-6)
    # a batch of one LUT is shared
    shared = apply_lut(img, luts[:1], method)
    assert torch.allclose(shared, apply_lut(img, luts[0], method))
    with pytest.raises(ValueError, match="3 LUTs for 2 images"):
        apply_lut(img[:2], luts, method)


@pytest.mark.parametrize("method", METHODS)
def test_chunking_and_in_place_output_do_not_change_the_result(method):
    lut = torch.rand(3, 9, 9, 9, generator=torch.Generator().manual_seed(8))
    img = _rand_img(b=2, h=37, w=19, seed=9)
    whole = apply_lut(img, lut, method, chunk_pixels=10**9)
    for chunk in (1, 19, 57, 500):
        assert torch.equal(apply_lut(img, lut, method, chunk_pixels=chunk), whole)
    buf = img.clone()
    res = apply_lut(buf, lut, method, chunk_pixels=100, out=buf)
    assert res.data_ptr() == buf.data_ptr() and torch.equal(buf, whole)
    with pytest.raises(ValueError, match="out must be"):
        apply_lut(img, lut, method, out=torch.empty(1, 3, 37, 19))


@pytest.mark.parametrize("method", METHODS)
def test_domain_min_max(method):
    lo, hi = (-0.5, 0.0, 0.25), (1.5, 2.0, 0.75)
    lo_t, hi_t = torch.tensor(lo).view(3, 1, 1, 1), torch.tensor(hi).view(3, 1, 1, 1)
    lut = lo_t + identity_lut(9) * (hi_t - lo_t)  # identity over that domain
    img = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(3))
    img = torch.tensor(lo).view(1, 3, 1, 1) + img * (hi_t - lo_t).view(1, 3, 1, 1)
    out = apply_lut(img, lut, method, domain_min=lo, domain_max=hi)
    assert (out - img).abs().max().item() <= 1e-5
    # outside the domain: clamped to it
    far = torch.full((1, 3, 1, 1), 5.0)
    assert torch.allclose(apply_lut(far, lut, method, lo, hi)[0, :, 0, 0], torch.tensor(hi), atol=1e-6)
    with pytest.raises(ValueError, match="domain_max must be > domain_min"):
        apply_lut(img, lut, method, domain_min=1.0, domain_max=1.0)


def test_float64_and_validation():
    img = _rand_img().double()
    out = apply_lut(img, identity_lut(5))
    assert out.dtype == torch.float64 and torch.allclose(out, img, atol=1e-12)
    with pytest.raises(ValueError, match="unknown LUT interpolation"):
        apply_lut(img, identity_lut(5), "cubic")
    with pytest.raises(TypeError, match="floating-point image"):
        apply_lut((img * 255).to(torch.uint8), identity_lut(5))
    with pytest.raises(ValueError, match="3D LUT"):
        apply_lut(img, torch.rand(3, 5, 5, 4))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        apply_lut(torch.rand(1, 4, 5, 5), identity_lut(5))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", METHODS)
def test_half_precision_is_computed_in_float32(dtype, method):
    lut = lut_from_function(_affine, 17)
    img = _rand_img().to(dtype)
    out = apply_lut(img, lut.to(dtype), method)
    assert out.dtype == dtype
    assert torch.equal(out, apply_lut(img.float(), lut.to(dtype).float(), method).to(dtype))
    buf = torch.empty_like(img)
    assert apply_lut(img, lut.to(dtype), method, out=buf).data_ptr() == buf.data_ptr() and torch.equal(buf, out)
    assert apply_lut_1d(img, identity_lut_1d(5).to(dtype)).dtype == dtype


def test_empty_images():
    assert apply_lut(torch.rand(1, 3, 0, 5), identity_lut(3)).shape == (1, 3, 0, 5)
    assert apply_lut(torch.rand(0, 3, 4, 5), identity_lut(3), "tetrahedral").shape == (0, 3, 4, 5)
    assert apply_lut_1d(torch.rand(2, 3, 4, 0), identity_lut_1d(3)).shape == (2, 3, 4, 0)


# --------------------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_gradients_flow_to_the_lut_and_the_image(method):
    lut = identity_lut(9).requires_grad_(True)
    img = _rand_img(b=2, seed=1).requires_grad_(True)
    target = _affine(img.detach())
    loss = (apply_lut(img, lut, method, chunk_pixels=100) - target).square().mean()
    loss.backward()
    assert lut.grad is not None and torch.isfinite(lut.grad).all() and lut.grad.abs().sum() > 0
    assert img.grad is not None and torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0
    # a few steps of plain gradient descent on the LUT fit the target (no torch.optim: its
    # first use imports torch._dynamo, seconds of test time)
    lut2 = identity_lut(5).requires_grad_(True)
    first = None
    for _ in range(20):
        loss = (apply_lut(img.detach(), lut2, method) - target).square().mean()
        first = loss.item() if first is None else first
        (grad,) = torch.autograd.grad(loss, lut2)
        with torch.no_grad():
            lut2 -= 50.0 * grad
    assert loss.item() < 0.05 * first


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck(method):
    g = torch.Generator().manual_seed(0)
    lut = torch.rand(3, 3, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    # points away from the cell borders and from ties between fractional parts
    img = torch.tensor(
        [[[[0.13, 0.71, 0.36]], [[0.42, 0.88, 0.05]], [[0.27, 0.60, 0.93]]]], dtype=torch.float64, requires_grad=True
    )
    assert torch.autograd.gradcheck(lambda i, t: apply_lut(i, t, method, chunk_pixels=2), (img, lut))
    luts = torch.rand(2, 3, 3, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    imgs = img.detach().repeat(2, 1, 1, 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda i, t: apply_lut(i, t, method), (imgs, luts))


# --------------------------------------------------------------------------------------
# resizing
# --------------------------------------------------------------------------------------


def test_resize_lut():
    assert torch.allclose(resize_lut(identity_lut(17), 33), identity_lut(33), atol=1e-6)
    aff = lut_from_function(_affine, 5)
    assert torch.allclose(resize_lut(aff, 11), lut_from_function(_affine, 11), atol=1e-5)
    batch = torch.stack([aff, identity_lut(5)])
    out = resize_lut(batch, 3)
    assert out.shape == (2, 3, 3, 3, 3)
    assert torch.allclose(out[1], identity_lut(3), atol=1e-6)
    same = resize_lut(aff, 5)
    assert torch.equal(same, aff) and same.data_ptr() != aff.data_ptr()


# --------------------------------------------------------------------------------------
# 1D LUTs
# --------------------------------------------------------------------------------------


def test_1d_identity_and_layouts():
    img = _rand_img(b=2, seed=2)
    assert (apply_lut_1d(img, identity_lut_1d(2)) - img).abs().max() <= 1e-6
    assert (apply_lut_1d(img, identity_lut_1d(4096)) - img).abs().max() <= 1e-6
    curves = torch.stack([torch.linspace(0, 1, 17) ** p for p in (0.5, 1.0, 2.0)])  # (3, S)
    a = apply_lut_1d(img, curves)
    b = apply_lut_1d(img, curves.t().contiguous())  # (S, 3), the .cube order
    assert torch.equal(a, b)
    assert torch.allclose(a[:, 1], img[:, 1], atol=1e-6)  # the green curve is the identity


def test_1d_matches_numpy_interp_with_domain_and_clamping():
    g = torch.Generator().manual_seed(3)
    table = torch.rand(3, 10, generator=g).cumsum(1)
    lo, hi = (-1.0, 0.0, 0.5), (2.0, 1.0, 4.5)
    img = torch.rand(1, 3, 8, 9, generator=g) * 6 - 2
    out = apply_lut_1d(img, table, lo, hi)
    for c in range(3):
        xp = np.linspace(lo[c], hi[c], 10)
        ref = np.interp(img[0, c].numpy(), xp, table[c].numpy())
        assert np.abs(out[0, c].numpy() - ref).max() <= 1e-5


def test_1d_batched_gradients_and_resize():
    g = torch.Generator().manual_seed(4)
    tables = torch.rand(2, 3, 6, generator=g, dtype=torch.float64, requires_grad=True)
    img = torch.rand(2, 3, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    out = apply_lut_1d(img, tables)
    assert torch.allclose(out[1], apply_lut_1d(img[1:], tables[1])[0])
    assert torch.autograd.gradcheck(lambda i, t: apply_lut_1d(i, t, chunk_pixels=4), (img, tables))
    curve = torch.linspace(0, 1, 5).expand(3, 5) ** 2
    assert resize_lut_1d(curve, 9).shape == (3, 9)
    assert torch.allclose(resize_lut_1d(identity_lut_1d(5), 9), identity_lut_1d(9), atol=1e-7)
    with pytest.raises(ValueError, match="1D LUT"):
        apply_lut_1d(img, torch.rand(4, 5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_cpu(method):
    lut = torch.rand(2, 3, 17, 17, 17, generator=torch.Generator().manual_seed(0))
    img = _rand_img(b=2, h=64, w=48)
    cpu = apply_lut(img, lut, method)
    gpu = apply_lut(img.cuda(), lut.cuda(), method)
    assert (gpu.cpu() - cpu).abs().max() <= 1e-4


def test_apply_lut_uint8_matches_torch_path_within_one_level(astronaut_small):
    import numpy as np

    from prefstyle.imaging.lut import apply_lut, apply_lut_uint8, lut_from_function

    lut = lut_from_function(lambda x: (x**0.8 * torch.tensor([1.05, 1.0, 0.9]).view(1, 3, 1, 1)).clamp(0, 1), 33)
    u8 = (astronaut_small[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    fast = apply_lut_uint8(u8, lut).astype(int)
    ref = apply_lut(torch.from_numpy(u8).permute(2, 0, 1)[None].float() / 255, lut)
    ref = (ref[0].permute(1, 2, 0) * 255).round().to(torch.int64).numpy()
    assert np.abs(fast - ref).max() <= 1
    assert (fast != u8).any()
