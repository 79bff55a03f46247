"""PSNR, SSIM and mean CIEDE2000 against skimage / colour-science, batching, the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color, data, metrics, transform

from prefstyle.metrics import functional as F
from prefstyle.metrics.registry import (
    METRICS,
    available_metrics,
    get_metric,
    metric_unavailable_reason,
)


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


def _photo_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, reference, distorted) in float64 HWC [0, 1], from real and random images."""
    rng = np.random.default_rng(0)
    astro = transform.resize(data.astronaut() / 255.0, (96, 128), anti_aliasing=True)
    coffee = transform.resize(data.coffee() / 255.0, (80, 120), anti_aliasing=True)
    chelsea = transform.resize(data.chelsea() / 255.0, (64, 96), anti_aliasing=True)
    rand = rng.random((40, 52, 3))
    return [
        ("astronaut+noise", astro, np.clip(astro + rng.normal(0, 0.04, astro.shape), 0, 1)),
        ("coffee warm", coffee, np.clip(coffee * np.array([1.1, 1.0, 0.85]), 0, 1)),
        ("chelsea gamma", chelsea, chelsea**1.4),
        ("random vs random", rand, rng.random(rand.shape)),
        ("flat vs flat", np.full((20, 20, 3), 0.3), np.full((20, 20, 3), 0.32)),
    ]


PAIRS = _photo_pairs()
IDS = [p[0] for p in PAIRS]


@pytest.mark.parametrize("name, ref, dist", PAIRS, ids=IDS)
def test_psnr_matches_skimage(name, ref, dist):
    want = metrics.peak_signal_noise_ratio(ref, dist, data_range=1.0)
    assert F.psnr(_t(dist), _t(ref)).item() == pytest.approx(want, rel=1e-10)
    assert F.psnr(_t(dist).float(), _t(ref).float()).item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("name, ref, dist", PAIRS, ids=IDS)
def test_ssim_matches_skimage(name, ref, dist):
    want = metrics.structural_similarity(
        ref, dist, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert F.ssim(_t(dist), _t(ref)).item() == pytest.approx(want, abs=1e-10)
    assert F.ssim(_t(dist).float(), _t(ref).float()).item() == pytest.approx(want, abs=2e-5)


@pytest.mark.parametrize("name, ref, dist", PAIRS, ids=IDS)
def test_delta_e00_matches_skimage_and_colour(name, ref, dist):
    import colour

    lab_ref, lab_dist = color.rgb2lab(ref), color.rgb2lab(dist)
    want = color.deltaE_ciede2000(lab_ref, lab_dist).mean()
    want_colour = np.asarray(colour.difference.delta_E_CIE2000(lab_ref, lab_dist)).mean()
    assert want == pytest.approx(want_colour, rel=1e-9)
    assert F.delta_e00(_t(dist), _t(ref)).item() == pytest.approx(want, rel=1e-8, abs=1e-10)
    assert F.delta_e00(_t(dist).float(), _t(ref).float()).item() == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_batched_equals_one_by_one():
    rng = np.random.default_rng(1)
    ref = torch.from_numpy(rng.random((4, 3, 24, 32)))
    dist = (ref + torch.from_numpy(rng.normal(0, 0.05, ref.shape))).clamp(0, 1)
    for fn in (F.psnr, F.ssim, F.delta_e00, F.mse):
        batch = fn(dist, ref)
        assert batch.shape == (4,)
        singles = torch.cat([fn(dist[i], ref[i]) for i in range(4)])  # (3, H, W) -> batch of one
        torch.testing.assert_close(batch, singles, rtol=1e-12, atol=1e-12)


def test_identical_images():
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(F.delta_e00(x, x), torch.zeros(2))
    assert torch.allclose(F.ssim(x, x), torch.ones(2))
    assert torch.isinf(F.psnr(x, x)).all()
    assert torch.equal(F.psnr(x, x, max_db=100.0), torch.full((2,), 100.0))


def test_input_validation():
    with pytest.raises(ValueError, match="same shape"):
        F.psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="at least 11x11"):
        F.ssim(torch.rand(1, 3, 10, 30), torch.rand(1, 3, 10, 30))
    with pytest.raises(TypeError, match="floating point"):
        F.psnr(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="RGB"):
        F.delta_e00(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_metrics_are_differentiable():
    ref = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    x = (ref + 0.1 * torch.rand_like(ref)).clamp(0, 1).requires_grad_(True)
    for fn in (F.psnr, F.ssim, F.delta_e00):
        (g,) = torch.autograd.grad(fn(x, ref).sum(), x)
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_registry_directions_and_names():
    assert {"delta_e00", "lpips", "psnr", "ssim"} <= set(METRICS)
    assert get_metric("delta_e00").higher_is_better is False
    assert get_metric("lpips").higher_is_better is False
    assert get_metric("psnr").higher_is_better is True
    assert get_metric("ssim").higher_is_better is True
    spec = get_metric("psnr")
    assert get_metric(spec) is spec
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(spec(x, x), torch.full((2,), 100.0))  # capped, finite
    with pytest.raises(ValueError, match="unknown metric"):
        get_metric("fid")


def test_registry_reports_missing_lpips_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path))
    reason = metric_unavailable_reason("lpips")
    assert reason is not None and "\n" not in reason and "fetch_lpips.py" in reason
    assert metric_unavailable_reason("delta_e00") is None
    usable, notes = available_metrics(["delta_e00", "lpips", "ssim"])
    assert [s.name for s in usable] == ["delta_e00", "ssim"]
    assert len(notes) == 1 and notes[0].startswith("skipping lpips:")
