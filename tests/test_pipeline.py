"""The RetouchParams pipeline: identity, order, batched/vector version, baked LUT, fast paths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prefstyle.imaging import ops
from prefstyle.imaging import pipeline as pl
from prefstyle.imaging.lut import identity_lut
from prefstyle.imaging.params import NEUTRAL, SCALAR_FIELDS, VECTOR_DIM, RetouchParams

EDIT = RetouchParams(
    temperature=0.3,
    tint=-0.1,
    exposure=0.4,
    contrast=0.3,
    highlights=-0.5,
    shadows=0.4,
    whites=0.2,
    blacks=-0.2,
    vibrance=0.3,
    saturation=0.1,
    curve=(0.0, 0.2, 0.5, 0.8, 1.0),
    hsl_hue=(0.1, -0.2, 0.0, 0.3, 0.0, -0.2, 0.0, 0.1),
    hsl_saturation=(0.2, 0.0, -0.3, 0.2, 0.0, 0.4, 0.0, 0.0),
    hsl_luminance=(-0.1, 0.0, 0.2, 0.0, 0.0, -0.3, 0.0, 0.0),
    split_shadow_hue=220.0,
    split_shadow_sat=0.3,
    split_highlight_hue=40.0,
    split_highlight_sat=0.2,
    split_balance=0.1,
)


def _random_params(seed: int) -> RetouchParams:
    g = torch.Generator().manual_seed(seed)
    v = torch.empty(VECTOR_DIM)
    i = 0
    for _, lo, hi, _ in SCALAR_FIELDS:
        v[i] = lo + (hi - lo) * torch.rand((), generator=g)
        i += 1
    v[i : i + 5] = torch.sort(torch.rand(5, generator=g)).values
    v[i + 5 :] = torch.rand(24, generator=g) * 2 - 1
    v[2] = v[2] / 3  # keep exposure within +-1 EV so the images are not all white/black
    return RetouchParams.from_vector(v)


def _grid_sample_lut(img: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """The project's LUT convention, spelled out: lut[c, b, g, r], grid (x=r, y=g, z=b)."""
    grid = img.permute(0, 2, 3, 1).unsqueeze(1) * 2 - 1  # (B, 1, H, W, 3) = (r, g, b)
    lut5 = lut[None].expand(img.shape[0], -1, -1, -1, -1)
    return F.grid_sample(lut5, grid, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]


@pytest.fixture(scope="module")
def photos(astronaut_small, coffee_small) -> torch.Tensor:
    return torch.cat([astronaut_small, coffee_small])


def test_order_is_documented():
    assert pl.PIPELINE_ORDER == (
        "white_balance",
        "exposure",
        "contrast",
        "highlights",
        "shadows",
        "whites",
        "blacks",
        "tone_curve",
        "hsl",
        "vibrance",
        "saturation",
        "split_toning",
    )
    for name in pl.PIPELINE_ORDER:
        assert callable(getattr(ops, name))


def test_neutral_is_identity(photos):
    for method in ("direct", "exact", "auto"):
        out = pl.apply_retouch(photos, NEUTRAL, method=method)
        assert torch.equal(out, photos) and out is not photos
    vec = NEUTRAL.to_vector()[None].expand(2, -1)
    assert (pl.apply_retouch_vector(photos, vec) - photos).abs().max() <= 1e-6
    # the differentiable paths evaluate every operator and are still the identity
    x = photos.clone().requires_grad_(True)
    assert (pl.apply_retouch_vector(x, vec) - photos).abs().max() <= 1e-6
    assert (pl.apply_retouch_vector(x, vec, exact=True) - photos).abs().max() <= 1e-6
    lut = pl.retouch_to_lut(NEUTRAL, 9)
    assert torch.allclose(lut, identity_lut(9), atol=1e-6)


def test_single_image_shape_and_range(photos):
    out = pl.apply_retouch(photos[0], EDIT, method="direct")
    assert out.shape == photos[0].shape
    assert out.min() >= 0 and out.max() <= 1
    assert (out - photos[0]).abs().mean() > 0.01


def test_pipeline_is_the_composition_of_the_ops(photos):
    p = EDIT
    x = ops.white_balance(photos, p.temperature, p.tint)
    x = ops.exposure(x, p.exposure)
    x = ops.contrast(x, p.contrast)
    x = ops.highlights(x, p.highlights)
    x = ops.shadows(x, p.shadows)
    x = ops.whites(x, p.whites)
    x = ops.blacks(x, p.blacks)
    x = ops.tone_curve(x, p.curve)
    x = ops.hsl(x, p.hsl_hue, p.hsl_saturation, p.hsl_luminance)
    x = ops.vibrance(x, p.vibrance)
    x = ops.saturation(x, p.saturation)
    x = ops.split_toning(
        x, p.split_shadow_hue, p.split_shadow_sat, p.split_highlight_hue, p.split_highlight_sat, p.split_balance
    )
    exact = pl.apply_retouch(photos, p, method="exact")
    assert (exact - x).abs().max() < 1e-6
    for grad in (False, True):  # the fused per-channel table, row-chunked or differentiable
        fast = pl.apply_retouch(photos.clone().requires_grad_(grad), p, method="direct").detach()
        assert (fast - x).abs().max() < 2e-4  # table interpolation; largest next to clipping kinks
        assert (fast - x).abs().mean() < 1e-6


def test_vector_batch_equals_per_sample(photos):
    params = [EDIT, _random_params(1), _random_params(2), NEUTRAL]
    imgs = torch.cat([photos, photos])
    vec = torch.stack([p.to_vector() for p in params])
    batched = pl.apply_retouch_vector(imgs, vec)
    for i, p in enumerate(params):
        single = pl.apply_retouch(imgs[i : i + 1], p, method="direct")
        assert (batched[i : i + 1] - single).abs().max() < 1e-5, p
    # the autograd path and the exact path give the same images
    graded = pl.apply_retouch_vector(imgs, vec.clone().requires_grad_(True))
    assert (graded.detach() - batched).abs().max() < 1e-6
    exact = pl.apply_retouch_vector(imgs, vec, exact=True)
    assert (exact - batched).abs().max() < 2e-4


def test_chunked_equals_whole(photos):
    fields = pl._fields_from_params(EDIT, photos)
    whole = pl._run_fused(photos, fields, chunk_pixels=1 << 30)
    chunked = pl._run_fused(photos, fields, chunk_pixels=500)  # a few rows at a time
    assert torch.equal(whole, chunked)


@pytest.mark.parametrize("exact", [False, True])
def test_vector_gradients(photos, exact):
    g = torch.Generator().manual_seed(0)
    img = torch.cat([torch.rand(1, 3, 24, 24, generator=g), photos[:, :, 30:54, 30:54]]).double()
    vec = torch.stack([EDIT.to_vector(), _random_params(3).to_vector(), _random_params(4).to_vector()]).double()
    vec.requires_grad_(True)
    img.requires_grad_(True)
    out = pl.apply_retouch_vector(img, vec, exact=exact)
    target = torch.rand(out.shape, generator=g, dtype=out.dtype)
    loss = (out - target).pow(2).mean()
    gimg, gvec = torch.autograd.grad(loss, (img, vec), retain_graph=True)
    assert torch.isfinite(gimg).all() and torch.isfinite(gvec).all()
    assert gimg.abs().sum() > 0
    # every parameter of the first (all-active) edit influences the result
    zero = (gvec[0] == 0).nonzero().flatten().tolist()
    assert zero == [], f"parameters without gradient: {zero}"
    # samples do not leak into each other
    (gsingle,) = torch.autograd.grad(out[1].sum(), vec)
    assert gsingle[0].abs().sum() == 0 and gsingle[2].abs().sum() == 0


@pytest.mark.parametrize("exact", [False, True])
def test_vector_gradcheck_small(exact):
    g = torch.Generator().manual_seed(2)
    img = (0.1 + 0.7 * torch.rand(1, 3, 3, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    # curve ends inside (0, 1): at exactly 0 / 1 the range clamp has a kink
    edit = EDIT.replace(curve=(0.02, 0.2, 0.5, 0.8, 0.97))
    vec = edit.to_vector().double()[None].requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, v: pl.apply_retouch_vector(x, v, exact=exact), (img, vec), eps=1e-6, atol=1e-5
    )


def test_unpack_vector_clamps_into_a_valid_edit():
    g = torch.Generator().manual_seed(0)
    vec = torch.randn(4, VECTOR_DIM, generator=g) * 5
    fields = pl.unpack_vector(vec)
    flat = []
    for name, *_ in SCALAR_FIELDS:
        flat.append(fields[name])
    for name in ("curve", "hsl_hue", "hsl_saturation", "hsl_luminance"):
        flat.extend(fields[name].unbind(1))
    rows = torch.stack(flat, dim=1)
    for row in rows:
        RetouchParams.from_vector(row, clamp=False)  # raises when out of range / not monotone
    out = pl.apply_retouch_vector(torch.rand(4, 3, 8, 8, generator=g), vec)
    assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError):
        pl.unpack_vector(torch.zeros(2, VECTOR_DIM + 1))


def test_identity_lut_layout():
    lut = identity_lut(5)
    assert lut.shape == (3, 5, 5, 5)
    # lut[c, b, g, r]
    assert lut[0, 1, 2, 3] == 0.75 and lut[1, 1, 2, 3] == 0.5 and lut[2, 1, 2, 3] == 0.25
    img = torch.rand(1, 3, 16, 16)
    assert torch.allclose(_grid_sample_lut(img, lut), img, atol=1e-6)


def test_baked_lut_agrees_with_direct(photos):
    from prefstyle.imaging.color import delta_e_2000_rgb

    for p in (EDIT, _random_params(5), _random_params(6)):
        lut = pl.retouch_to_lut(p, 33)
        assert lut.shape == (3, 33, 33, 33)
        assert lut.min() >= 0 and lut.max() <= 1
        direct = pl.apply_retouch(photos, p, method="direct")
        via_lut = _grid_sample_lut(photos, lut)
        # strong random edits (all 8 HSL bands, full split toning) are the hardest for 33^3 nodes:
        # measured mean |diff| <= 0.0041 and mean Delta E00 <= 0.72 over ten random edits
        assert (via_lut - direct).abs().mean() < 0.006
        de = delta_e_2000_rgb(via_lut, direct)
        assert de.mean() < 0.8, p
        # the LUT nodes are exact
        nodes = identity_lut(33)[:, ::8, ::8, ::8].reshape(1, 3, 5, 25)
        exact = pl.apply_retouch(nodes, p, method="direct")
        assert torch.allclose(_grid_sample_lut(nodes, lut), exact, atol=1e-5)


def test_baked_lut_from_vectors_is_differentiable():
    vec = torch.stack([EDIT.to_vector(), NEUTRAL.to_vector()]).requires_grad_(True)
    luts = pl.retouch_to_lut(vec, 9)
    assert luts.shape == (2, 3, 9, 9, 9)
    assert torch.allclose(luts[1], identity_lut(9), atol=1e-6)
    assert torch.allclose(luts[0], pl.retouch_to_lut(EDIT, 9), atol=1e-5)
    (g,) = torch.autograd.grad(luts[0].sum(), vec)
    assert torch.isfinite(g).all() and g[0].abs().sum() > 0


def test_lut_method(photos):
    direct = pl.apply_retouch(photos, EDIT, method="direct")
    via_lut = pl.apply_retouch(photos, EDIT, method="lut")
    assert via_lut.shape == photos.shape
    assert (via_lut - direct).abs().mean() < 0.004
    reference = _grid_sample_lut(photos, pl.retouch_to_lut(EDIT, pl.LUT_SIZE))
    assert (via_lut - reference).abs().max() < 1e-3


def test_auto_picks_direct_for_small_or_differentiable(photos, monkeypatch):
    monkeypatch.setattr(pl, "LUT_AUTO_MIN_PIXELS", 1)
    x = photos.clone().requires_grad_(True)
    out = pl.apply_retouch(x, EDIT, method="auto")  # needs grad -> direct, exact
    assert out.requires_grad
    monkeypatch.setattr(pl, "LUT_AUTO_MIN_PIXELS", 10**9)
    assert torch.equal(pl.apply_retouch(photos, EDIT, method="auto"), pl.apply_retouch(photos, EDIT, method="direct"))
    with pytest.raises(ValueError):
        pl.apply_retouch(photos, EDIT, method="fast")
