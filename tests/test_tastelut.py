"""TasteLUT, prefstyle's own model: shapes, conditioning on the references, training-free new
users, datasets without sources, profile round trip and refusal, the choice loss, training."""

from __future__ import annotations

import pytest
import torch
from _pps_data import make_pairs_dataset, references, tiny_config

from prefstyle.errors import PrefstyleError
from prefstyle.losses import ideal_point_choice_loss, lab_distance
from prefstyle.models.base import Profile, Reference, create_model
from prefstyle.models.tastelut import TasteLUTModel, TasteLUTNet


pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = {"d_model": 32, "n_layers": 1, "n_heads": 2, "ff": 64, "style_dim": 16, "style_size": 16, "thumb": 24,
         "user_dim": 8, "n_basis": 4, "lut_size": 9, "decoder_hidden": 32}


def _model(seed: int = 0) -> TasteLUTModel:
    torch.manual_seed(seed)
    net = TasteLUTNet(**SMALL)
    with torch.no_grad():  # a non-trivial decoder (a fresh one is the identity edit) that listens to e_u
        net.decoder.lut.basis.normal_(0, 0.05)
        net.decoder.mlp[0].weight[:, 28:].mul_(30)
        net.user_skip.weight.normal_(0, 1.0)
    return TasteLUTModel(net=net)


def _refs(img: torch.Tensor, n: int, brighter: bool, source: bool = True) -> list[Reference]:
    up, down = (img * 1.4).clamp(0, 1), img * 0.6
    p, o = (up, down) if brighter else (down, up)
    return [Reference(scene=f"s{i}", preferred=p[0], other=o[0], source=img[0] if source else None) for i in range(n)]


def test_untrained_is_identity_and_profile_is_small(astronaut_small):
    m = TasteLUTModel(net=TasteLUTNet(**SMALL))
    prof = m.personalize(_refs(astronaut_small, 3, True), "u")
    assert set(prof.tensors) == {"user"} and prof.tensors["user"].shape == (8 + 24,)
    torch.testing.assert_close(m.render(astronaut_small, prof), astronaut_small, atol=2e-5, rtol=0)
    assert create_model("tastelut", **SMALL).name == "tastelut"


def test_references_change_the_rendering(astronaut_small, coffee_small):
    m = _model()
    a = m.personalize(_refs(astronaut_small, 4, True), "a")
    b = m.personalize(_refs(astronaut_small, 4, False), "b")
    none = m.personalize([], "none")
    outs = [m.render(coffee_small, p) for p in (a, b, none)]
    assert (outs[0] - outs[1]).abs().mean() > 2e-4 and (outs[0] - outs[2]).abs().mean() > 2e-4
    # the references are a set: their order does not matter
    refs = _refs(astronaut_small, 2, True) + _refs(astronaut_small, 2, False)
    torch.testing.assert_close(m.personalize(refs).tensors["user"], m.personalize(refs[::-1]).tensors["user"],
                               atol=1e-5, rtol=1e-5)
    for shape in [(1, 3, 17, 29), (2, 3, 64, 40), (3, 33, 21)]:
        x = torch.rand(*shape)
        y = m.render(x, a)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    x = torch.rand(2, 3, 30, 30)
    torch.testing.assert_close(m.render(x, a)[1:], m.render(x[1:], a), atol=1e-5, rtol=1e-5)


def test_training_free_and_without_sources(astronaut_small):
    m = _model()
    before = {k: v.clone() for k, v in m.net.state_dict().items()}
    with_src = m.personalize(_refs(astronaut_small, 2, True), "u")
    without = m.personalize(_refs(astronaut_small, 2, True, source=False), "u")
    for k, v in m.net.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert with_src.data["with_sources"] == 2 and without.data["with_sources"] == 0
    assert not torch.allclose(with_src.tensors["user"], without.tensors["user"])
    assert m.render(astronaut_small, without).shape == astronaut_small.shape


def test_profile_round_trip_and_refusals(tmp_path, astronaut_small):
    m = _model()
    prof = m.personalize(_refs(astronaut_small, 3, True), "u")
    back = Profile.load(prof.save(tmp_path / "p.json"))
    torch.testing.assert_close(m.render(astronaut_small, back), m.render(astronaut_small, prof))
    with pytest.raises(PrefstyleError, match="other weights"):
        _model(seed=1).render(astronaut_small, back)
    with pytest.raises(PrefstyleError, match="made by model 'upe'"):
        m.render(astronaut_small, Profile(model="upe"))


def test_ideal_point_choice_loss():
    torch.manual_seed(0)
    p, n = torch.full((1, 3, 8, 8), 0.7), torch.full((1, 3, 8, 8), 0.3)
    at_p = ideal_point_choice_loss(p, p, n)
    at_n = ideal_point_choice_loss(n, p, n)
    middle = ideal_point_choice_loss((p + n) / 2, p, n)
    assert float(at_p) < float(middle) < float(at_n)
    # beyond p, away from n, is at least as likely as p itself (the output may extrapolate)
    assert float(ideal_point_choice_loss(torch.full((1, 3, 8, 8), 0.8), p, n)) <= float(at_p) + 1e-6
    # the temperature sharpens the likelihood; the distance is ΔE76 and zero for identical images
    assert float(ideal_point_choice_loss(p, p, n, temperature=0.5)) < float(at_p)
    assert float(lab_distance(p, p)[0]) < 1e-2 and float(lab_distance(p, n)[0]) > 20


def test_train_checkpoint_and_load_model(tmp_path):
    from prefstyle.train import load_model
    from prefstyle.train.trainer import Trainer

    root = make_pairs_dataset(tmp_path / "data")
    task = {"name": "tastelut", **SMALL, "n_context": [1, 4]}
    trainer = Trainer(tiny_config(task, root, tmp_path / "run", steps=4), progress=False, tensorboard=False)
    res = trainer.run()
    assert res.finished and {"d_p", "cqs", "cmr"} <= set(res.metrics)
    live = trainer.task.to_inference(trainer.model)
    loaded = load_model(tmp_path / "run")
    assert isinstance(loaded, TasteLUTModel) and loaded.fingerprint == live.fingerprint
    refs = references(root, "u7", 4)
    prof = loaded.personalize(refs, "u7")
    assert prof.data["with_sources"] == 4
    x = refs[0].preferred[None]
    torch.testing.assert_close(loaded.render(x, prof), live.render(x, live.personalize(refs, "u7")))


def test_training_on_the_scenes_of_one_split(tmp_path):
    """data.scene_split: the photos of the other splits stay unseen; validation scores the val scenes."""
    from prefstyle.train.trainer import Trainer

    splits = ["train", "train", "train", "train", "val", "test"]
    root = make_pairs_dataset(tmp_path / "data", scene_splits=splits, main=16)
    task = {"name": "tastelut", **SMALL, "n_context": [1, 4]}
    cfg = tiny_config(task, root, tmp_path / "run", steps=2)
    cfg["data"]["scene_split"] = "train"
    trainer = Trainer(cfg, progress=False, tensorboard=False)
    res = trainer.run()
    bank = trainer.task.bank()
    seen = _bank_scenes(bank)  # image paths are images/<scene>/r<k>.png
    assert seen and seen <= {"s0", "s1", "s2", "s3"}
    assert res.finished and "cqs" in res.metrics
    assert trainer.task.describe_data()["scene_split"] == "train"


def _bank_scenes(bank) -> set[str]:
    return {bank.paths[int(r)].split("/")[1] for r in bank.pref.tolist()}


def test_learns_a_users_direction(tmp_path):
    """On the micro dataset (even users like brighter, odd users darker), a short training run
    renders a brighter-preferring user's image brighter than a darker-preferring user's."""
    from prefstyle.train.trainer import Trainer

    root = make_pairs_dataset(tmp_path / "data", users=10, scenes=6, main=16)
    task = {"name": "tastelut", **SMALL, "n_context": [2, 8]}
    cfg = tiny_config(task, root, tmp_path / "run", steps=150, batch_size=16)
    cfg["optim"] = {"name": "adam", "lr": 3e-3}
    cfg["val_every"] = 0
    trainer = Trainer(cfg, progress=False, tensorboard=False)
    trainer.run()
    m = trainer.task.to_inference(trainer.model)
    bright = m.personalize(references(root, "u6", 8), "u6")   # even: brighter
    dark = m.personalize(references(root, "u7", 8), "u7")     # odd: darker
    x = references(root, "u7", 1)[0].source[None]
    assert float(m.render(x, bright).mean()) > float(m.render(x, dark).mean()) + 0.1
