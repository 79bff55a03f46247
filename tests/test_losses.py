"""Losses: values against hand computations, shapes, reductions, gradients, schedules."""

from __future__ import annotations

import pytest
import torch

from prefstyle.losses import (
    edge_aware_tv,
    l1_loss,
    mse_loss,
    pairwise_preference_loss,
    perceptual_loss,
    preference_weight,
    reduce,
    triplet_loss,
)


def test_l1_and_mse_per_sample_and_reductions():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.ones(2, 3, 4, 4)
    b[1] *= 0.5
    assert torch.allclose(l1_loss(a, b, reduction="none"), torch.tensor([1.0, 0.5]))
    assert torch.allclose(l1_loss(a, b), torch.tensor(0.75))
    assert torch.allclose(l1_loss(a, b, reduction="sum"), torch.tensor(1.5))
    assert torch.allclose(mse_loss(a, b, reduction="none"), torch.tensor([1.0, 0.25]))
    with pytest.raises(ValueError):
        l1_loss(a, b[:, :2])
    with pytest.raises(ValueError):
        reduce(torch.ones(2), "median")


def test_perceptual_weights_levels_and_distance():
    f1 = [torch.zeros(2, 4, 8, 8), torch.zeros(2, 8, 4, 4)]
    f2 = [torch.ones(2, 4, 8, 8), 2 * torch.ones(2, 8, 4, 4)]
    # equal weights: (1 + 2) / 2
    assert torch.allclose(perceptual_loss(f1, f2), torch.tensor(1.5))
    assert torch.allclose(perceptual_loss(f1, f2, weights=[1.0, 0.0]), torch.tensor(1.0))
    assert torch.allclose(perceptual_loss(f1, f2, distance="l2"), torch.tensor(2.5))
    assert perceptual_loss(f1, f2, reduction="none").shape == (2,)
    with pytest.raises(ValueError):
        perceptual_loss(f1, f2[:1])


def test_edge_aware_tv_is_zero_on_flat_and_smaller_across_guide_edges():
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert edge_aware_tv(flat, flat).item() == 0.0
    img = torch.zeros(1, 3, 8, 8)
    img[..., 4:] = 1.0  # a vertical edge
    flat_guide = torch.zeros(1, 3, 8, 8)
    # hand computation: one column of |dx| = 1 out of 7, weight exp(0) = 1 -> 1/7
    assert edge_aware_tv(img, flat_guide).item() == pytest.approx(1 / 7, rel=1e-6)
    # the same edge in the guide down-weights it by exp(-1)
    assert edge_aware_tv(img, img).item() == pytest.approx(torch.exp(torch.tensor(-1.0)).item() / 7, rel=1e-6)
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    edge_aware_tv(x, torch.rand(2, 3, 8, 8)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_triplet_loss_matches_definition():
    a = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[0.0, 1.0]])  # squared distance 2
    n = torch.tensor([[-1.0, 0.0]])  # squared distance 4
    assert triplet_loss(a, p, n, margin=0.2).item() == pytest.approx(0.0)
    assert triplet_loss(a, n, p, margin=0.2).item() == pytest.approx(2.2)
    # one anchor vector against a batch
    assert triplet_loss(a[0], torch.cat([p, n]), torch.cat([n, p]), reduction="none").tolist() == pytest.approx(
        [0, 2.2]
    )
    av = a.clone().requires_grad_(True)
    triplet_loss(av, n, p).backward()
    assert av.grad.abs().sum() > 0


def test_preference_weight_schedules():
    assert preference_weight(0.0).item() == pytest.approx(0.5)
    assert preference_weight(1.0).item() == pytest.approx(1.5)
    assert preference_weight(0.5).item() == pytest.approx(1.0)
    assert preference_weight(2.0).item() == pytest.approx(1.5)  # clamped
    assert preference_weight(0.5, "cosine").item() == pytest.approx(1.0)
    assert preference_weight(0.25, "cosine").item() < preference_weight(0.25, "linear").item()
    assert preference_weight(0.3, "constant", high=1.0).item() == 1.0
    w = preference_weight(0.0, "uniform", batch=1000, generator=torch.Generator().manual_seed(0))
    assert w.shape == (1000,) and 0.5 <= w.min() and w.max() <= 1.5 and 0.9 < w.mean() < 1.1
    with pytest.raises(ValueError):
        preference_weight(0.0, "uniform")
    with pytest.raises(ValueError):
        preference_weight(0.0, "exp")


def test_pairwise_preference_loss_dual_supervision():
    out = torch.full((2, 3, 4, 4), 0.5)
    ip = torch.ones(2, 3, 4, 4)
    i_n = torch.zeros(2, 3, 4, 4)
    # L(out, ip) = 0.5, L(out, in) = 0.5: any w gives 0.5
    assert pairwise_preference_loss(out, ip, i_n, 1.3).item() == pytest.approx(0.5)
    out2 = torch.full((2, 3, 4, 4), 0.8, requires_grad=True)
    # w = 1: plain L1 to the preferred image
    assert pairwise_preference_loss(out2, ip, i_n, 1.0).item() == pytest.approx(0.2)
    # w = 1.5: 1.5 * 0.2 - 0.5 * 0.8 = -0.1 (pushes away from I_n)
    loss = pairwise_preference_loss(out2, ip, i_n, torch.tensor([1.5, 1.5]))
    assert loss.item() == pytest.approx(-0.1)
    loss.backward()
    assert out2.grad is not None
    custom = pairwise_preference_loss(out, ip, i_n, 1.0, loss_fn=lambda a, b: mse_loss(a, b, reduction="none"))
    assert custom.item() == pytest.approx(0.25)
    with pytest.raises(ValueError):
        pairwise_preference_loss(out, ip, i_n, torch.ones(3))
