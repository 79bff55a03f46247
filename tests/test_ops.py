"""Every retouching operator: identity at neutral, range, direction of effect, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prefstyle.imaging import ops
from prefstyle.imaging.params import CURVE_X, HUE_CENTRES_DEG

Z8 = (0.0,) * 8


def _ones8(v: float) -> tuple[float, ...]:
    return (v,) * 8


# name -> (apply(img, a) with a scalar amount in [lo, hi], lo, hi, neutral)
OPS = {
    "temperature": (lambda x, a: ops.white_balance(x, a, 0.0), -1.0, 1.0, 0.0),
    "tint": (lambda x, a: ops.white_balance(x, 0.0, a), -1.0, 1.0, 0.0),
    "exposure": (ops.exposure, -3.0, 3.0, 0.0),
    "contrast": (ops.contrast, -1.0, 1.0, 0.0),
    "highlights": (ops.highlights, -1.0, 1.0, 0.0),
    "shadows": (ops.shadows, -1.0, 1.0, 0.0),
    "whites": (ops.whites, -1.0, 1.0, 0.0),
    "blacks": (ops.blacks, -1.0, 1.0, 0.0),
    # curve: a moves the middle points between (0, .25, .5, .75, 1) and a strong S / inverse S
    "curve": (
        lambda x, a: ops.tone_curve(x, _curve_points(a, x)),
        -1.0,
        1.0,
        0.0,
    ),
    "hsl_hue": (lambda x, a: ops.hsl(x, _vec8(a, x), Z8, Z8), -1.0, 1.0, 0.0),
    "hsl_saturation": (lambda x, a: ops.hsl(x, Z8, _vec8(a, x), Z8), -1.0, 1.0, 0.0),
    "hsl_luminance": (lambda x, a: ops.hsl(x, Z8, Z8, _vec8(a, x)), -1.0, 1.0, 0.0),
    "vibrance": (ops.vibrance, -1.0, 1.0, 0.0),
    "saturation": (ops.saturation, -1.0, 1.0, 0.0),
    "split_shadow": (lambda x, a: ops.split_toning(x, 220.0, a, 40.0, 0.0, 0.0), 0.0, 1.0, 0.0),
    "split_highlight": (lambda x, a: ops.split_toning(x, 220.0, 0.0, 40.0, a, 0.0), 0.0, 1.0, 0.0),
    "split_both": (lambda x, a: ops.split_toning(x, 200.0, a, 30.0, a, 0.5 * a), 0.0, 1.0, 0.0),
}


def _curve_points(a, x: torch.Tensor) -> torch.Tensor:
    """Identity at a = 0; a = 1 a strong S-curve, a = -1 an inverse S (all monotone)."""
    a = torch.as_tensor(a, dtype=x.dtype).reshape(-1, 1)
    base = torch.tensor(CURVE_X, dtype=x.dtype)
    bend = torch.tensor((0.0, -0.15, 0.0, 0.15, 0.0), dtype=x.dtype)
    return base + a * bend


def _vec8(a, x: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(a, dtype=x.dtype).reshape(-1, 1)
    # different weights per band so every band's value matters
    return a * torch.linspace(1.0, 0.3, 8, dtype=x.dtype)


def _random_images(n: int = 2, size: int = 24, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g, dtype=dtype)
    # include pure black, white, greys and saturated primaries
    x[0, :, 0, :6] = torch.tensor([[0, 1, 0.5, 1, 0, 0], [0, 1, 0.5, 0, 1, 0], [0, 1, 0.5, 0, 0, 1]], dtype=dtype)
    return x


@pytest.fixture(scope="module")
def images(astronaut_small, coffee_small) -> torch.Tensor:
    return torch.cat([_random_images(2, 96), astronaut_small, coffee_small])


# --------------------------------------------------------------------------------------------
# generic properties, every operator


@pytest.mark.parametrize("name", list(OPS))
def test_identity_at_neutral(name, images):
    fn, _, _, neutral = OPS[name]
    out = fn(images, neutral)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert (out - images).abs().max().item() <= 1e-6


@pytest.mark.parametrize("name", list(OPS))
def test_range_at_extremes(name, images):
    fn, lo, hi, _ = OPS[name]
    for a in (lo, hi, 0.5 * (lo + hi) + 0.37 * (hi - lo) / 2):
        out = fn(images, a)
        assert torch.isfinite(out).all()
        assert out.min().item() >= 0.0 and out.max().item() <= 1.0
        assert out.shape == images.shape


@pytest.mark.parametrize("name", list(OPS))
def test_input_not_modified_and_per_sample_amounts(name):
    fn, lo, hi, _ = OPS[name]
    x = _random_images(3, 16, seed=3)
    before = x.clone()
    amounts = torch.tensor([lo, 0.5 * (lo + hi), hi])
    batched = fn(x, amounts)
    assert torch.equal(x, before)
    for i in range(3):
        single = fn(x[i : i + 1], float(amounts[i]))
        assert torch.allclose(batched[i : i + 1], single, atol=1e-6)


@pytest.mark.parametrize("name", list(OPS))
def test_gradients(name):
    """gradcheck w.r.t. image and amount (double), and gradients that are finite and non-zero."""
    fn, lo, hi, neutral = OPS[name]
    g = torch.Generator().manual_seed(1)
    x = (0.1 + 0.6 * torch.rand(1, 3, 5, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    # a moderate amount: away from the neutral kink of one-sided gains and from clipping
    a0 = neutral + 0.3 * (hi - neutral) if hi != neutral else neutral + 0.3 * (lo - neutral)
    a = torch.tensor([a0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda img, amt: fn(img, amt), (x, a), eps=1e-6, atol=1e-5)
    out = fn(x, a)
    gx, ga = torch.autograd.grad(out.sum(), (x, a))
    assert torch.isfinite(gx).all() and torch.isfinite(ga).all()
    assert gx.abs().sum() > 0 and ga.abs().sum() > 0


@pytest.mark.parametrize("name", list(OPS))
def test_gradients_finite_at_range_edges(name):
    """Black, white, greys and extreme amounts never give NaN/inf gradients."""
    fn, lo, hi, _ = OPS[name]
    x = _random_images(1, 8, seed=5, dtype=torch.float64)
    x[0, :, 1, :] = 0.0
    x[0, :, 2, :] = 1.0
    x[0, :, 3, :] = 0.5
    for a0 in (lo, hi):
        xx = x.clone().requires_grad_(True)
        a = torch.tensor([a0], dtype=torch.float64, requires_grad=True)
        gx, ga = torch.autograd.grad(fn(xx, a).sum(), (xx, a))
        assert torch.isfinite(gx).all() and torch.isfinite(ga).all()


# --------------------------------------------------------------------------------------------
# direction of each effect


def _mean_luma(x: torch.Tensor) -> float:
    return ops.luma(x).mean().item()


def _chroma(x: torch.Tensor) -> torch.Tensor:
    return x.amax(1) - x.amin(1)


def test_white_balance_direction(images):
    warm = ops.white_balance(images, 1.0, 0.0)
    cool = ops.white_balance(images, -1.0, 0.0)
    rb = lambda x: (x[:, 0].mean() / x[:, 2].mean()).item()
    assert rb(warm) > rb(images) > rb(cool)
    magenta = ops.white_balance(images, 0.0, 1.0)
    green = ops.white_balance(images, 0.0, -1.0)
    gm = lambda x: x[:, 1].mean().item()
    assert gm(green) > gm(images) > gm(magenta)
    # mid-grey keeps its luminance (gains normalised)
    grey = torch.full((1, 3, 2, 2), 0.4)
    for t, m in ((1.0, 0.0), (-1.0, 0.5), (0.3, -1.0)):
        lin = ops.srgb_to_linear(ops.white_balance(grey, t, m))
        y = (lin[:, 0] * 0.2126 + lin[:, 1] * 0.7152 + lin[:, 2] * 0.0722).mean()
        assert abs(y.item() - ops.srgb_to_linear(torch.tensor(0.4)).item()) < 1e-4


def test_exposure_direction_and_linear_light():
    grey = torch.full((1, 3, 2, 2), 0.3)
    lin = ops.srgb_to_linear(torch.tensor(0.3)).item()
    for ev in (-2.0, -1.0, 1.0):
        got = ops.srgb_to_linear(ops.exposure(grey, ev))[0, 0, 0, 0].item()
        assert got == pytest.approx(lin * 2**ev, rel=1e-4)
    x = _random_images(2, 32)
    assert _mean_luma(ops.exposure(x, 1.0)) > _mean_luma(x) > _mean_luma(ops.exposure(x, -1.0))
    assert torch.all(ops.exposure(x, 3.0) >= x - 1e-6)


def test_contrast_direction():
    t = torch.linspace(0, 1, 101).expand(1, 3, 1, 101)
    hi, lo = ops.contrast(t, 1.0), ops.contrast(t, -1.0)
    # fixed points, steeper / flatter mid-tones, monotone
    for y in (hi, lo):
        assert y[..., 0].abs().max() < 1e-6 and (y[..., -1] - 1).abs().max() < 1e-6
        assert y[..., 50].sub(0.5).abs().max() < 1e-6
        assert (y.diff(dim=-1) >= -1e-7).all()
    assert (hi[..., 25] < t[..., 25]).all() and (hi[..., 75] > t[..., 75]).all()
    assert (lo[..., 25] > t[..., 25]).all() and (lo[..., 75] < t[..., 75]).all()
    # +1 is strong but not posterised: every step of the input still moves the output
    assert (hi.diff(dim=-1) > 0.2 / 100).all()
    x = _random_images(2, 32)
    assert ops.contrast(x, 1.0).std() > x.std() > ops.contrast(x, -1.0).std()


def test_highlights_and_shadows_are_local():
    t = torch.linspace(0, 1, 101).expand(1, 3, 1, 101)
    for a in (-1.0, 1.0):
        h = ops.highlights(t, a)
        s = ops.shadows(t, a)
        assert (h.diff(dim=-1) >= -1e-7).all() and (s.diff(dim=-1) >= -1e-7).all()  # monotone
        # highlights leave the shadows alone, shadows the highlights
        assert (h[..., :31] - t[..., :31]).abs().max() < 0.02
        assert (s[..., 70:] - t[..., 70:]).abs().max() < 0.02
        # black and white are fixed
        for y in (h, s):
            assert y[..., 0].abs().max() < 1e-6 and (y[..., -1] - 1).abs().max() < 1e-6
    # -1 recovers bright tones, +1 lifts them; same for dark tones
    assert ops.highlights(t, -1.0)[..., 85].max() < 0.85 - 0.1
    assert ops.highlights(t, 1.0)[..., 80].min() > 0.8 + 0.05
    assert ops.shadows(t, 1.0)[..., 20].min() > 0.2 + 0.1
    assert ops.shadows(t, -1.0)[..., 20].max() < 0.2 - 0.05


def test_whites_and_blacks_move_the_end_points():
    t = torch.linspace(0, 1, 101).expand(1, 3, 1, 101)
    assert ops.whites(t, -1.0)[..., -1].max().item() == pytest.approx(1 - ops.WHITES_GAIN, abs=1e-6)
    assert (ops.whites(t, 1.0)[..., 95:] == 1.0).all()  # more clipping
    assert ops.blacks(t, 1.0)[..., 0].min().item() == pytest.approx(ops.BLACKS_GAIN, abs=1e-6)
    assert (ops.blacks(t, -1.0)[..., :5] == 0.0).all()  # crushed
    # whites barely touch the shadows, blacks barely touch the highlights
    assert (ops.whites(t, 1.0)[..., :40] - t[..., :40]).abs().max() < 0.005
    assert (ops.blacks(t, 1.0)[..., 60:] - t[..., 60:]).abs().max() < 0.005
    for a in (-1.0, 1.0):
        assert (ops.whites(t, a).diff(dim=-1) >= -1e-7).all()
        assert (ops.blacks(t, a).diff(dim=-1) >= -1e-7).all()


def test_pchip_matches_scipy_and_is_monotone():
    scipy_interp = pytest.importorskip("scipy.interpolate")
    rng = np.random.default_rng(0)
    xs = np.linspace(0, 1, 257)
    curves = [np.sort(rng.uniform(0, 1, 5)) for _ in range(6)]
    curves += [np.array([0, 0, 0, 1, 1.0]), np.array([0.1, 0.1, 0.5, 0.5, 0.9]), np.array(CURVE_X)]
    for pts in curves:
        ref = scipy_interp.PchipInterpolator(CURVE_X, pts)(xs)
        t = torch.tensor(xs, dtype=torch.float64).expand(1, 3, 1, -1)
        got = ops.tone_curve(t, torch.tensor(pts, dtype=torch.float64))[0, 0, 0].numpy()
        np.testing.assert_allclose(got, ref, atol=1e-9)
        assert np.all(np.diff(got) >= -1e-12)
        assert got.min() >= pts.min() - 1e-12 and got.max() <= pts.max() + 1e-12
    # curve passes through its control points
    pts = torch.tensor([0.05, 0.2, 0.6, 0.7, 0.95])
    at = torch.tensor(CURVE_X).expand(1, 3, 1, -1)
    assert torch.allclose(ops.tone_curve(at, pts)[0, 0, 0], pts, atol=1e-6)


def test_band_interp_partition_of_unity_and_centres():
    hues = torch.linspace(0, 359.9, 3600).reshape(1, 1, 1, -1)
    const = ops.band_interp(hues, torch.full((1, 8), 0.7))
    assert torch.allclose(const, torch.full_like(const, 0.7), atol=1e-6)
    vals = torch.arange(8, dtype=torch.float32)[None]
    centres = torch.tensor(HUE_CENTRES_DEG).reshape(1, 1, 1, -1)
    assert torch.allclose(ops.band_interp(centres, vals).flatten(), vals.flatten(), atol=1e-5)
    # smooth: no jumps anywhere around the circle (including the 360 -> 0 wrap)
    one_hot = torch.zeros(1, 8)
    one_hot[0, 0] = 1.0
    w = ops.band_interp(hues, one_hot).flatten()
    assert w.diff().abs().max() < 0.01 and abs(w[0] - w[-1]) < 0.01


def test_hsl_per_band_and_greys_untouched():
    red = torch.tensor([0.8, 0.2, 0.2]).reshape(1, 3, 1, 1)
    blue = torch.tensor([0.2, 0.3, 0.8]).reshape(1, 3, 1, 1)
    grey = torch.full((1, 3, 1, 1), 0.5)
    x = torch.cat([red, blue, grey], dim=3)
    only_red = tuple(1.0 if i == 0 else 0.0 for i in range(8))
    # hue +1 on red: red moves towards orange (g up), blue untouched
    y = ops.hsl(x, only_red, Z8, Z8)
    assert y[0, 1, 0, 0] > x[0, 1, 0, 0] + 0.1
    assert torch.allclose(y[..., 1:], x[..., 1:], atol=1e-6)
    # hue shift of 30 degrees at 1
    hue = lambda p: ops._rgb_hue_deg(p, p.amax(1, keepdim=True), p.amin(1, keepdim=True))
    assert hue(y[..., :1]).item() == pytest.approx(30.0, abs=0.5)
    # saturation -1 on all bands: grey at the same HLS lightness; +1 more saturated
    g = ops.hsl(x, Z8, _ones8(-1.0), Z8)
    assert _chroma(g).max() < 1e-6
    s = ops.hsl(x, Z8, _ones8(1.0), Z8)
    assert (_chroma(s)[..., :2] > _chroma(x)[..., :2]).all()
    # luminance -1 darkens coloured pixels, never greys
    d = ops.hsl(x, Z8, Z8, _ones8(-1.0))
    assert (ops.luma(d)[..., :2] < ops.luma(x)[..., :2]).all()
    for out in (y, g, s, d):
        assert torch.allclose(out[..., 2], grey[..., 0], atol=1e-6)


def test_saturation_and_vibrance_directions(images):
    grey = ops.saturation(images, -1.0)
    assert _chroma(grey).max() < 1e-5
    assert torch.allclose(grey[:, 0], ops.luma(images)[:, 0], atol=1e-5)
    assert _chroma(ops.saturation(images, 1.0)).mean() > _chroma(images).mean()
    assert _chroma(ops.saturation(images, -0.5)).mean() < _chroma(images).mean()
    # boosts never shift hue by clipping: luma is kept exactly
    boosted = ops.saturation(images, 1.0)
    assert torch.allclose(ops.luma(boosted), ops.luma(images), atol=1e-5)
    # vibrance: muted colours gain more than saturated ones, skin less than other hues
    muted = torch.tensor([0.45, 0.5, 0.55]).reshape(1, 3, 1, 1)
    vivid = torch.tensor([0.1, 0.3, 0.9]).reshape(1, 3, 1, 1)
    skin = torch.tensor([0.85, 0.64, 0.52]).reshape(1, 3, 1, 1)
    teal = torch.tensor([0.52, 0.85, 0.75]).reshape(1, 3, 1, 1)  # same saturation, not skin
    x = torch.cat([muted, vivid, skin, teal], dim=3)
    ratio = _chroma(ops.vibrance(x, 1.0)) / _chroma(x)
    assert ratio[0, 0, 0] > ratio[0, 0, 1] > 1.0
    assert ratio[0, 0, 3] > ratio[0, 0, 2] > 1.0
    assert (_chroma(ops.vibrance(x, -1.0)) < _chroma(x)).all()


def test_tone_curve_direction():
    x = _random_images(2, 32)
    bright = ops.tone_curve(x, (0.0, 0.4, 0.7, 0.9, 1.0))
    dark = ops.tone_curve(x, (0.0, 0.1, 0.3, 0.6, 1.0))
    assert (bright >= x - 1e-6).all() and (dark <= x + 1e-6).all()
    flat = ops.tone_curve(x, (0.5,) * 5)
    assert torch.allclose(flat, torch.full_like(x, 0.5), atol=1e-6)


def test_split_toning_direction():
    ramp = torch.linspace(0.05, 0.95, 64)
    x = ramp.reshape(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous()  # a grey ramp
    # blue shadows, orange highlights
    y = ops.split_toning(x, 220.0, 1.0, 30.0, 1.0, 0.0)
    bluish = y[0, 2] - y[0, 0]
    assert bluish[0, :8].min() > 0.05 and bluish[0, -8:].max() < -0.05
    # luma is kept where nothing clips
    assert torch.allclose(ops.luma(y)[..., 8:56], ops.luma(x)[..., 8:56], atol=1e-5)
    # balance + favours the highlight tint: at mid-grey the orange tint wins
    mid = slice(28, 36)
    warm = ops.split_toning(x, 220.0, 1.0, 30.0, 1.0, 1.0)
    cool = ops.split_toning(x, 220.0, 1.0, 30.0, 1.0, -1.0)
    assert (warm[0, 0, :, mid] - warm[0, 2, :, mid]).mean() > 0
    assert (cool[0, 0, :, mid] - cool[0, 2, :, mid]).mean() < 0


def test_clamp01_leaky_gradient():
    x = torch.tensor([-0.5, 0.5, 1.5], requires_grad=True)
    y = ops.clamp01(x)
    assert torch.equal(y.detach(), torch.tensor([0.0, 0.5, 1.0]))
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(g, torch.tensor([ops.CLAMP_LEAK, 1.0, ops.CLAMP_LEAK]))
    # an over-exposed image still tells exposure to go down
    img = torch.full((1, 3, 2, 2), 0.9)
    ev = torch.tensor([2.0], requires_grad=True)
    (gev,) = torch.autograd.grad(ops.exposure(img, ev).sum(), ev)
    assert gev.item() > 0


def test_srgb_transfer_roundtrip():
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(ops.linear_to_srgb(ops.srgb_to_linear(x)), x, atol=1e-12)
    kornia_color = pytest.importorskip("kornia.color")
    img = x.reshape(1, 1, 1, -1).expand(1, 3, 1, -1)
    assert torch.allclose(ops.srgb_to_linear(img), kornia_color.rgb_to_linear_rgb(img), atol=1e-9)


def test_bad_input():
    with pytest.raises(ValueError):
        ops.exposure(torch.rand(3, 4, 4), 1.0)
    with pytest.raises(ValueError):
        ops.exposure(torch.rand(2, 3, 4, 4), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError):
        ops.tone_curve(torch.rand(1, 3, 4, 4), (0.0, 1.0))
