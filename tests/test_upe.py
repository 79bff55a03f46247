"""UPE (user preference embedding): shapes, conditioning, training-free new users, save/load, training."""

from __future__ import annotations

import pytest
import torch
from _pps_data import make_pairs_dataset, references, tiny_config

from prefstyle.errors import PrefstyleError
from prefstyle.models.base import Profile, Reference, create_model
from prefstyle.models.pps import FrozenBackbone
from prefstyle.models.upe import UPEModel, UPENet


pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = {
    "d_model": 32,
    "n_layers": 1,
    "n_heads": 2,
    "ff": 64,
    "style_dim": 16,
    "thumb": 24,
    "n_basis": 4,
    "lut_size": 9,
    "decoder_hidden": 32,
    "backbone_size": 64,
}


@pytest.fixture(scope="module")
def backbone() -> FrozenBackbone:
    return FrozenBackbone(input_size=64)


def _model(backbone: FrozenBackbone, seed: int = 0) -> UPEModel:
    torch.manual_seed(seed)
    net = UPENet(backbone_module=backbone, **SMALL)
    with torch.no_grad():  # a non-trivial decoder (trained ones are; a fresh one is the identity edit)
        net.decoder.lut.basis.normal_(0, 0.05)
    return UPEModel(net=net.eval())


def _refs(img: torch.Tensor, n: int, brighter: bool) -> list[Reference]:
    up, down = (img * 1.4).clamp(0, 1), img * 0.6
    p, o = (up, down) if brighter else (down, up)
    return [Reference(scene=f"s{i}", preferred=p[0], other=o[0]) for i in range(n)]


def test_backbone_is_frozen_and_offline(backbone):
    assert backbone.name == "efficientnet_lite0" and backbone.dim == 1280 + 2 * (24 + 40)
    assert not any(p.requires_grad for p in backbone.parameters())
    f = backbone(torch.rand(3, 3, 40, 50))
    assert f.shape == (3, backbone.dim) and torch.isfinite(f).all()
    with pytest.raises(PrefstyleError, match="local weights"):
        FrozenBackbone("dinov2_vitb14")


def test_untrained_is_identity_and_shapes(backbone, astronaut_small):
    m = UPEModel(net=UPENet(backbone_module=backbone, **SMALL))
    prof = m.personalize(_refs(astronaut_small, 3, True), "u")
    assert prof.tensors["e_u"].shape == (32,)
    torch.testing.assert_close(m.render(astronaut_small, prof), astronaut_small, atol=2e-5, rtol=0)
    assert (
        create_model("upe", backbone_size=64, **{k: v for k, v in SMALL.items() if k != "backbone_size"}).name == "upe"
    )


def test_conditioning_and_any_resolution(backbone, astronaut_small, coffee_small):
    m = _model(backbone)
    a = m.personalize(_refs(astronaut_small, 4, True), "a")
    b = m.personalize(_refs(coffee_small, 2, False), "b")
    none = m.personalize([], "c")  # no references: the [USER] token alone
    assert not torch.allclose(a.tensors["e_u"], b.tensors["e_u"])
    outs = [m.render(astronaut_small, p) for p in (a, b, none)]
    assert (outs[0] - outs[1]).abs().mean() > 2e-4 and (outs[0] - outs[2]).abs().mean() > 2e-4
    for shape in [(1, 3, 17, 29), (2, 3, 64, 40), (3, 33, 21)]:
        x = torch.rand(*shape)
        y = m.render(x, a)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    # a batch renders each image as it renders alone
    x = torch.rand(2, 3, 30, 30)
    torch.testing.assert_close(m.render(x, a)[1:], m.render(x[1:], a), atol=1e-5, rtol=1e-5)


def test_new_users_need_no_training(backbone, astronaut_small):
    m = _model(backbone)
    before = {k: v.clone() for k, v in m.net.state_dict().items()}
    prof = m.personalize(_refs(astronaut_small, 3, True), "new")
    assert prof.data["n_refs"] == 3
    for k, v in m.net.state_dict().items():
        torch.testing.assert_close(v, before[k])
    # the order of the references does not matter (a set, no positional encoding)
    refs = _refs(astronaut_small, 2, True) + _refs(astronaut_small[..., :48, :48], 1, False)
    e1 = m.personalize(refs, "x").tensors["e_u"]
    e2 = m.personalize(refs[::-1], "x").tensors["e_u"]
    torch.testing.assert_close(e1, e2, atol=1e-5, rtol=1e-5)


def test_profile_of_other_weights_is_refused(tmp_path, backbone, astronaut_small):
    """(Saving, loading and refusing other models' profiles: tests/test_model_contract.py.)"""
    m = _model(backbone)
    back = Profile.load(m.personalize(_refs(astronaut_small, 3, True), "u").save(tmp_path / "p.json"))
    with pytest.raises(PrefstyleError, match="other weights"):
        _model(backbone, seed=1).render(astronaut_small, back)


def test_train_checkpoint_and_load_model(tmp_path):
    from prefstyle.train import load_model
    from prefstyle.train.trainer import Trainer

    root = make_pairs_dataset(tmp_path / "data")
    task = {"name": "upe", **SMALL, "n_context": [1, 4]}
    trainer = Trainer(tiny_config(task, root, tmp_path / "run", steps=4), progress=False, tensorboard=False)
    res = trainer.run()
    assert res.finished and {"d_p", "cqs", "win_rate"} <= set(res.metrics)
    live = trainer.task.to_inference(trainer.model)
    assert bool(live.net.scaler.fitted)  # feature statistics came from the training images
    loaded = load_model(tmp_path / "run")
    assert isinstance(loaded, UPEModel) and loaded.fingerprint == live.fingerprint
    refs = references(root, "u7", 4)
    prof = loaded.personalize(refs, "u7")
    torch.testing.assert_close(prof.tensors["e_u"], live.personalize(refs, "u7").tensors["e_u"])
    x = refs[0].other[None]
    torch.testing.assert_close(loaded.render(x, prof), live.render(x, prof))
