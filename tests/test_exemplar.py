"""Exemplar-based inference (PIE-MSM-style contextual style prediction): shapes, conditioning,
training-free new users, datasets without sources, save/load, training."""

from __future__ import annotations

import pytest
import torch
from _pps_data import make_pairs_dataset, references, tiny_config

from prefstyle.errors import PrefstyleError
from prefstyle.models.base import Profile, Reference, create_model
from prefstyle.models.exemplar import ExemplarModel, ExemplarNet
from prefstyle.models.pps import FrozenBackbone


pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = {
    "d_model": 32,
    "n_layers": 1,
    "n_heads": 2,
    "ff": 64,
    "style_dim": 16,
    "style_size": 16,
    "thumb": 24,
    "n_basis": 4,
    "lut_size": 9,
    "decoder_hidden": 32,
    "backbone_size": 64,
}


@pytest.fixture(scope="module")
def backbone() -> FrozenBackbone:
    return FrozenBackbone(input_size=64)


def _model(backbone: FrozenBackbone, seed: int = 0) -> ExemplarModel:
    torch.manual_seed(seed)
    net = ExemplarNet(backbone_module=backbone, **SMALL)
    with torch.no_grad():  # a non-trivial decoder (a fresh one is the identity edit) that listens to the context
        net.decoder.lut.basis.normal_(0, 0.05)
        net.in_dir_p.weight.mul_(30)
        net.decoder.mlp[0].weight[:, 16:].mul_(30)
        net.in_dir_n.weight.mul_(30)
    return ExemplarModel(net=net.eval())


def _refs(img: torch.Tensor, n: int, brighter: bool, source: bool = True) -> list[Reference]:
    up, down = (img * 1.4).clamp(0, 1), img * 0.6
    p, o = (up, down) if brighter else (down, up)
    return [Reference(scene=f"s{i}", preferred=p[0], other=o[0], source=img[0] if source else None) for i in range(n)]


def test_untrained_is_identity_and_profile_layout(backbone, astronaut_small):
    m = ExemplarModel(net=ExemplarNet(backbone_module=backbone, **SMALL))
    prof = m.personalize(_refs(astronaut_small, 3, True), "u")
    assert prof.tensors["content"].shape == (3, backbone.dim)
    assert prof.tensors["dir_p"].shape == prof.tensors["dir_n"].shape == (3, 16)
    torch.testing.assert_close(m.render(astronaut_small, prof), astronaut_small, atol=2e-5, rtol=0)
    assert (
        create_model("exemplar", backbone_size=64, **{k: v for k, v in SMALL.items() if k != "backbone_size"}).name
        == "exemplar"
    )


def test_directions_and_conditioning(backbone, astronaut_small, coffee_small):
    m = _model(backbone)
    a = m.personalize(_refs(astronaut_small, 3, True), "a")
    b = m.personalize(_refs(astronaut_small, 3, False), "b")
    # brighter-preferring and darker-preferring users have swapped directions
    torch.testing.assert_close(a.tensors["dir_p"], b.tensors["dir_n"])
    outs = [m.render(coffee_small, p) for p in (a, b, m.personalize([], "none"))]
    assert (outs[0] - outs[1]).abs().mean() > 2e-4 and (outs[0] - outs[2]).abs().mean() > 2e-4
    for shape in [(1, 3, 17, 29), (2, 3, 64, 40), (3, 33, 21)]:
        x = torch.rand(*shape)
        y = m.render(x, a)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    x = torch.rand(2, 3, 30, 30)
    torch.testing.assert_close(m.render(x, a)[1:], m.render(x[1:], a), atol=1e-5, rtol=1e-5)


def test_training_free_and_without_sources(backbone, astronaut_small):
    m = _model(backbone)
    before = {k: v.clone() for k, v in m.net.state_dict().items()}
    prof = m.personalize(_refs(astronaut_small, 2, True, source=False), "new")
    for k, v in m.net.state_dict().items():
        torch.testing.assert_close(v, before[k])
    # without a neutral source, s := the non-preferred image: no non-preferred direction
    assert prof.data["with_sources"] == 0
    torch.testing.assert_close(prof.tensors["dir_n"], torch.zeros(2, 16))
    assert m.render(astronaut_small, prof).shape == astronaut_small.shape


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
    task = {"name": "exemplar", **SMALL, "n_context": [1, 4]}
    trainer = Trainer(tiny_config(task, root, tmp_path / "run", steps=4), progress=False, tensorboard=False)
    res = trainer.run()
    assert res.finished and {"d_p", "cqs", "cmr"} <= set(res.metrics)
    live = trainer.task.to_inference(trainer.model)
    loaded = load_model(tmp_path / "run")
    assert isinstance(loaded, ExemplarModel) and loaded.fingerprint == live.fingerprint
    refs = references(root, "u7", 4)
    prof = loaded.personalize(refs, "u7")
    assert prof.data["with_sources"] == 4
    x = refs[0].preferred[None]
    torch.testing.assert_close(loaded.render(x, prof), live.render(x, live.personalize(refs, "u7")))
