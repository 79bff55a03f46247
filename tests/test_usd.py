"""USD (user-specific LIIF decoders): shapes, LIIF parts, inference-time training, save/load, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _pps_data import make_pairs_dataset, references, tiny_config

from prefstyle.errors import PrefstyleError
from prefstyle.models.base import Profile, Reference, create_model
from prefstyle.models.pps import guided_upsample
from prefstyle.models.usd import USDModel, USDNet, make_coord


pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = {"n_feats": 8, "n_resblocks": 1, "hidden": (16,), "enc_size": 16, "min_cell": 2 / 24}


def _model(**kw) -> USDModel:
    torch.manual_seed(0)
    opts = {"adapt_steps": 100, "adapt_queries": 128, "adapt_size": 24, "adapt_lr": 5e-3, "render_side": 48}
    opts.update(kw)
    return USDModel(net=USDNet(n_users=3, **SMALL), **opts)


def _refs(img: torch.Tensor, n: int = 2, brighter: bool = True) -> list[Reference]:
    up, down = (img * 1.4).clamp(0, 1), img * 0.6
    p, o = (up, down) if brighter else (down, up)
    return [Reference(scene=f"s{i}", preferred=p[0], other=o[0]) for i in range(n)]


def test_registered_and_untrained_is_identity(astronaut_small):
    m = create_model("usd", n_users=0, **SMALL)
    assert isinstance(m, USDModel)
    prof = m.personalize([], "nobody")
    out = m.render(astronaut_small, prof)
    assert out.shape == astronaut_small.shape
    torch.testing.assert_close(out, astronaut_small)  # zero-initialised last layer: the identity edit


def test_liif_query_shapes_and_parts():
    net = USDNet(n_users=2, **SMALL)
    torch.nn.init.normal_(net.decoders.weights[-1], std=0.1)
    feat = net.features(torch.rand(2, 3, 12, 10))
    coord = make_coord(7, 9).view(1, -1, 2).expand(2, -1, -1)
    cell = torch.full_like(coord, 2 / 7)
    pix = torch.rand(2, 63, 3)
    proj = net.project(feat, slots=torch.tensor([1, 2]))
    out = net.query(proj, coord, cell, pix, slots=torch.tensor([1, 2]))
    assert out.shape == (2, 63, 3)
    # per-sample slots equal the same decoder given explicitly
    dec = net.decoders.slot(2)
    proj2 = net.project(feat[1:], weights=dec)
    out2 = net.query(proj2, coord[1:], cell[1:], pix[1:], weights=dec)
    torch.testing.assert_close(out[1:], out2, atol=1e-5, rtol=1e-5)
    # the cell size is an input: changing it changes the prediction
    out3 = net.query(proj2, coord[1:], cell[1:] * 3, pix[1:], weights=dec)
    assert not torch.allclose(out2, out3)
    # the 3x3-conv projection equals LIIF's unfold + linear
    w0, b0 = dec[0]
    unf = F.unfold(feat[1:], 3, padding=1)  # (1, 9C, h·w)
    ref = (unf.transpose(1, 2) @ w0[: net.code_dim] + b0).transpose(1, 2).reshape(proj2.shape)
    torch.testing.assert_close(proj2, ref, atol=1e-5, rtol=1e-5)


def test_inference_time_training_reduces_loss_and_personalizes(astronaut_small):
    m = _model()
    bright = m.personalize(_refs(astronaut_small, brighter=True), "bright")
    dark = m.personalize(_refs(astronaut_small, brighter=False), "dark")
    for prof in (bright, dark):
        st = prof.data["adapt"]
        assert st["steps"] == 100 and st["seconds"] > 0
        assert st["fit_after"] < 0.6 * st["fit_before"]
    a, b = m.render(astronaut_small, bright), m.render(astronaut_small, dark)
    assert a.mean() > astronaut_small.mean() > b.mean()  # different users -> different outputs
    # personalization trains a copy: the generic decoder is untouched (no references = identity)
    crop = astronaut_small[..., :40, :40]  # fits render_side: every pixel queried
    assert m.render(crop, m.personalize([], "x")).sub(crop).abs().max() < 1e-6


def test_any_resolution_and_guided_upsampling(astronaut_small):
    m = _model(adapt_steps=15)
    prof = m.personalize(_refs(astronaut_small), "u")
    for shape in [(1, 3, 17, 29), (2, 3, 40, 24), (3, 41, 53)]:
        x = torch.rand(*shape)
        y = m.render(x, prof)
        assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    # a big image is queried on a coarse grid and guided-upsampled: close to querying every pixel
    big = F.interpolate(astronaut_small, size=(96, 120), mode="bilinear", align_corners=False)
    coarse = m.render(big, prof)
    m.render_side = 1000
    full = m.render(big, prof)
    assert (coarse - full).abs().mean() < 0.01
    assert (coarse - big).abs().mean() > 0.03  # (and the edit is not nothing)


def test_guided_upsample_recovers_affine_edit():
    hi = torch.rand(1, 3, 64, 48)
    lo = F.interpolate(hi, size=(16, 12), mode="area")
    out = guided_upsample(lo, 0.7 * lo + 0.1, hi, radius=2, eps=1e-6)
    torch.testing.assert_close(out, 0.7 * hi + 0.1, atol=2e-3, rtol=0)


def test_profile_of_another_encoder_is_refused(tmp_path, astronaut_small):
    """(Saving, loading and refusing other models' profiles: tests/test_model_contract.py.)"""
    m = _model(adapt_steps=10)
    back = Profile.load(m.personalize(_refs(astronaut_small), "u").save(tmp_path / "p.json"))
    other = _model(adapt_steps=10)
    torch.nn.init.normal_(other.net.encoder.head.weight)
    other._fingerprint = None
    with pytest.raises(PrefstyleError, match="another encoder"):
        other.render(astronaut_small, back)


def test_train_checkpoint_and_load_model(tmp_path):
    from prefstyle.train import load_model
    from prefstyle.train.trainer import Trainer

    root = make_pairs_dataset(tmp_path / "data")
    task = {"name": "usd", **SMALL, "target_sizes": [16, 24], "queries": 128, "adapt_steps": 3, "adapt_size": 16}
    cfg = tiny_config(task, root, tmp_path / "run", steps=3)
    trainer = Trainer(cfg, progress=False, tensorboard=False)
    res = trainer.run()
    assert res.finished and (tmp_path / "run" / "model.json").is_file()
    assert {"d_p", "cqs", "cmr"} <= set(res.metrics)
    live = trainer.task.to_inference(trainer.model)
    loaded = load_model(tmp_path / "run")
    assert isinstance(loaded, USDModel) and loaded.net.n_users == 6
    assert loaded.fingerprint == live.fingerprint
    refs = references(root, "u7", 3)
    prof = live.personalize(refs, "u7")
    x = refs[0].preferred[None]
    torch.testing.assert_close(loaded.render(x, prof), live.render(x, prof))
    torch.testing.assert_close(
        loaded.personalize(refs, "u7").tensors["decoder.0.weight"], prof.tensors["decoder.0.weight"]
    )
