"""CQS arithmetic (the PPS paper's example), cross-distances, identity reference, win rate, aggregation."""

from __future__ import annotations

import math

import pytest
import torch

from prefstyle.metrics import functional as F
from prefstyle.metrics.cqs import (
    CQSAccumulator,
    aggregate_cqs,
    cqs_from_distances,
    cqs_pair,
    preference_win_rate,
    relative_cqs,
)
from prefstyle.metrics.lpips import lpips_weights_available


def test_paper_table_arithmetic_delta_e00():
    """PPS paper: ΔE00 4.88 (to preferred) vs 5.71 (to non-preferred) -> BFS 0.189, CMR 0.078, CQS 0.204."""
    r = cqs_from_distances(4.88, 5.71, higher_is_better=False)
    assert r["s_p"] == pytest.approx(1 / 4.88) and r["s_n"] == pytest.approx(1 / 5.71)
    assert round(r["bfs"], 3) == 0.189
    assert round(r["cmr"], 3) == 0.078
    assert round(r["cqs"], 3) == 0.204
    assert r["bfs"] == pytest.approx(math.sqrt(1 / (4.88 * 5.71)))
    assert r["cmr"] == pytest.approx((5.71 - 4.88) / (5.71 + 4.88))
    assert r["cqs"] == pytest.approx(r["bfs"] * (1 + r["cmr"]))


def test_higher_is_better_uses_similarity_directly():
    r = cqs_from_distances(0.9, 0.6, higher_is_better=True)
    assert (r["s_p"], r["s_n"]) == (0.9, 0.6)
    assert r["bfs"] == pytest.approx(math.sqrt(0.54))
    assert r["cmr"] == pytest.approx(0.3 / 1.5) and r["cmr"] > 0  # closer to preferred -> positive
    # lower-is-better: closer to preferred means smaller d_p, also positive CMR
    assert cqs_from_distances(2.0, 4.0, higher_is_better=False)["cmr"] == pytest.approx(1 / 3)
    assert cqs_from_distances(4.0, 2.0, higher_is_better=False)["cmr"] == pytest.approx(-1 / 3)


def test_degenerate_distances_are_rejected():
    with pytest.raises(ValueError, match="> 0"):
        cqs_from_distances(0.0, 1.0, higher_is_better=False)
    with pytest.raises(ValueError, match="not finite"):
        cqs_from_distances(float("inf"), 30.0, higher_is_better=True)
    with pytest.raises(ValueError, match="> 0"):
        cqs_from_distances(-0.1, 0.5, higher_is_better=True)


def _pair(seed: int = 0, b: int = 2):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 3, 24, 24, generator=g, dtype=torch.float64)
    i_p = (base * 0.9 + 0.05).clamp(0, 1)
    i_n = (base**1.5 * torch.tensor([1.0, 0.9, 0.7], dtype=torch.float64).view(1, 3, 1, 1)).clamp(0, 1)
    return i_p, i_n


def test_cqs_pair_four_cross_distances():
    i_p, i_n = _pair()
    out_p = (i_p + 0.02).clamp(0, 1)
    out_n = (0.3 * i_n + 0.7 * i_p).clamp(0, 1)
    r = cqs_pair(out_p, out_n, i_p, i_n, "delta_e00")
    d = F.delta_e00
    for k in range(2):
        assert r["d_pp"][k] == pytest.approx(d(out_p[k], i_p[k]).item())
        assert r["d_np"][k] == pytest.approx(d(out_n[k], i_p[k]).item())
        assert r["d_pn"][k] == pytest.approx(d(out_p[k], i_n[k]).item())
        assert r["d_nn"][k] == pytest.approx(d(out_n[k], i_n[k]).item())
        assert r["d_p"][k] == pytest.approx((r["d_pp"][k] + r["d_np"][k]) / 2)
        assert r["d_n"][k] == pytest.approx((r["d_pn"][k] + r["d_nn"][k]) / 2)
        want = cqs_from_distances(r["d_p"][k], r["d_n"][k], higher_is_better=False)
        assert r["cqs"][k] == pytest.approx(want["cqs"])
        assert r["cmr"][k] > 0  # both outputs lean towards I_p
        assert r["wins"][k] == 2.0


@pytest.mark.parametrize("metric", ["delta_e00", "psnr", "ssim", "lpips"])
def test_identity_model_has_zero_cmr(metric):
    """Î_p = I_p, Î_n = I_n: d̄_p = (d(I_p,I_p) + d(I_n,I_p))/2 = d̄_n, so CMR = 0 and CQS = BFS."""
    if metric == "lpips" and not lpips_weights_available("alex"):
        pytest.skip("LPIPS alex weights not in the cache: run `python scripts/fetch_lpips.py`")
    i_p, i_n = _pair(1)
    if metric == "lpips":
        i_p, i_n = (torch.nn.functional.interpolate(x, size=48) for x in (i_p, i_n))
    r = cqs_pair(i_p, i_n, i_p, i_n, metric)
    for k in range(2):
        assert r["cmr"][k] == pytest.approx(0.0, abs=1e-12)
        assert r["cqs"][k] == pytest.approx(r["bfs"][k], rel=1e-12)
        assert r["wins"][k] == 1.0  # Î_p wins, Î_n loses


def test_degenerate_pair_gets_nan_scores_but_pools():
    i_p, i_n = _pair(3)
    r = cqs_pair(i_p, i_p, i_p, i_n, "delta_e00")  # both outputs equal I_p: d̄_p = 0
    assert r["d_p"] == [0.0, 0.0] and all(math.isnan(x) for x in r["cqs"])
    acc = CQSAccumulator("delta_e00")
    acc.update(i_p, i_p, i_p, i_n)
    acc.update((i_p + 0.05).clamp(0, 1), i_n, i_p, i_n)
    out = acc.compute()
    assert math.isfinite(out["cqs"]) and out["cmr"] > 0


def test_win_rate():
    assert preference_win_rate([1.0, 2.0, 3.0, 1.0], [2.0, 1.0, 4.0, 1.0], higher_is_better=False) == pytest.approx(
        2.5 / 4
    )
    assert preference_win_rate([30.0, 20.0], [25.0, 25.0], higher_is_better=True) == 0.5
    with pytest.raises(ValueError):
        preference_win_rate([], [], higher_is_better=True)


def test_aggregate_pooled_vs_per_pair_and_users():
    d_p = [2.0, 4.0, 1.0]
    d_n = [4.0, 4.0, 3.0]
    users = ["a", "a", "b"]
    pooled = aggregate_cqs(d_p, d_n, higher_is_better=False, users=users)
    ra = cqs_from_distances(3.0, 4.0, higher_is_better=False)  # user a: means of its two pairs
    rb = cqs_from_distances(1.0, 3.0, higher_is_better=False)
    assert pooled["cqs"] == pytest.approx((ra["cqs"] + rb["cqs"]) / 2)  # equal weight per user
    assert pooled["cmr"] == pytest.approx((ra["cmr"] + rb["cmr"]) / 2)
    assert pooled["n_pairs"] == 3 and pooled["n_users"] == 2
    assert pooled["per_user"]["a"]["n_pairs"] == 2
    per_pair = aggregate_cqs(d_p, d_n, higher_is_better=False, users=users, mode="per_pair")
    r0, r1 = (cqs_from_distances(a, b, higher_is_better=False) for a, b in ((2.0, 4.0), (4.0, 4.0)))
    assert per_pair["per_user"]["a"]["cqs"] == pytest.approx((r0["cqs"] + r1["cqs"]) / 2)
    assert per_pair["cqs"] == pytest.approx(((r0["cqs"] + r1["cqs"]) / 2 + rb["cqs"]) / 2)
    single = aggregate_cqs(d_p, d_n, higher_is_better=False)
    assert single["n_users"] == 1
    assert single["cqs"] == pytest.approx(cqs_from_distances(7 / 3, 11 / 3, higher_is_better=False)["cqs"])
    with pytest.raises(ValueError, match="mode"):
        aggregate_cqs(d_p, d_n, higher_is_better=False, mode="median")


def test_relative_cqs():
    assert relative_cqs(0.3, 0.2) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        relative_cqs(0.3, 0.0)


@pytest.mark.parametrize("metric", ["delta_e00", "ssim", "psnr"])
def test_accumulator(metric):
    i_p, i_n = _pair(2, b=3)
    acc = CQSAccumulator(metric)
    # the identity model itself: relative CQS 1, CMR 0, win rate 1/2
    acc.update(i_p, i_n, i_p, i_n, users=["u1", "u1", "u2"])
    r = acc.compute()
    assert r["cqs_rel"] == pytest.approx(1.0, rel=1e-12)
    assert r["cmr"] == pytest.approx(0.0, abs=1e-12)
    assert r["win_rate"] == 0.5
    assert r["n_pairs"] == 3 and r["n_users"] == 2 and r["metric"] == metric
    # a model that pulls every output towards the preferred image beats the identity
    acc.reset()
    out_p = (0.8 * i_p + 0.2 * i_n).clamp(0, 1)
    out_n = (0.3 * i_n + 0.7 * i_p).clamp(0, 1)
    acc.update(out_p[:2], out_n[:2], i_p[:2], i_n[:2], users=["u1", "u1"])
    acc.update(out_p[2:], out_n[2:], i_p[2:], i_n[2:], users=["u2"])
    r = acc.compute()
    assert r["cmr"] > 0 and r["win_rate"] == 1.0
    assert r["cqs_rel"] == pytest.approx(r["cqs"] / r["cqs_identity"])
    if metric != "psnr":  # PSNR's identity reference is dominated by the 100 dB cap of d(I, I)
        assert r["cqs_rel"] > 1.0
