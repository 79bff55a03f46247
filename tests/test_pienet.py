"""PieNet: shapes, conditioning, gradients, the two new-user schemes, full resolution, backbones,
its training task and checkpoint save / load / resume."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _pienet_data import TINY_ARCH, make_pairs_dataset, photo, tiny_pienet_config

from prefstyle.errors import PrefstyleError
from prefstyle.losses import triplet_loss
from prefstyle.metrics.functional import psnr
from prefstyle.models.backbones import ResNet18Backbone, create_backbone
from prefstyle.models.base import Profile, Reference, create_model
from prefstyle.models.pienet import (
    PieNetConfig,
    PieNetModel,
    PieNetSystem,
    guided_upsample,
    optimize_preference,
    perturb_preference,
)


def _system(users=("a", "b", "c"), seed=0, wiring="paper") -> PieNetSystem:
    torch.manual_seed(seed)
    opts = {**TINY_ARCH, "users": list(users), "weights": None, "embed_weights": None, "wiring": wiring}
    cfg = PieNetConfig.from_dict(opts)
    return PieNetSystem(cfg)


def _wake_head(s: PieNetSystem) -> None:
    """The last layer starts near zero (near-identity network); give it weights to see conditioning."""
    torch.manual_seed(1)
    torch.nn.init.normal_(s.net.head2.weight, std=0.3)


def test_shapes_and_identity_at_init():
    s = _system()
    x = torch.rand(2, 3, 40, 56)
    p = s.preference(torch.tensor([0, 2]))
    assert p.shape == (2, 8) and torch.allclose(p.norm(dim=1), torch.ones(2))
    y = s.net(x, p)
    assert y.shape == x.shape and (y - x).abs().max() < 0.05  # near-identity at init
    e = s.embedding(x)
    assert e.shape == (2, 8) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    feats = s.embedding.features(x)
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]  # seen at embed_size 32
    assert s.mean_preference().shape == (8,)
    with pytest.raises(ValueError):
        s.net(x, p[:1])
    with pytest.raises(PrefstyleError, match="unknown PieNet option"):
        PieNetConfig.from_dict({"widht": 3})


def test_preference_vector_changes_the_output():
    s = _system().eval()
    _wake_head(s)
    x = torch.rand(1, 3, 32, 32)
    p0, p1 = s.preference(torch.tensor([0])), s.preference(torch.tensor([1]))
    with torch.no_grad():
        d = (s.net(x, p0) - s.net(x, p1)).abs().mean()
        same = (s.net(x, p0) - s.net(x, p0.clone())).abs().max()
    assert d > 1e-4 and same == 0
    noisy = perturb_preference(p0, torch.randn(1, 8), 0.1)
    assert (noisy - p0).norm().item() == pytest.approx(0.1, rel=1e-5)


def test_gradients_reach_every_part():
    s = _system()
    _wake_head(s)
    x, t = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    F.l1_loss(s.net(x, s.preference(torch.tensor([0, 1]))), t).backward()
    for name, prm in s.net.named_parameters():
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), name
    groups = {"encoder": s.net.encoder, "blocks": s.net.blocks, "head": s.net.head2}
    for name, mod in groups.items():
        assert sum(p.grad.abs().sum() for p in mod.parameters()) > 0, name
    assert sum(b.pref.weight.grad.abs().sum() for b in s.net.blocks) > 0  # through the preference path
    s.zero_grad()
    a = s.preference(torch.tensor([0, 1]))
    triplet_loss(a, s.embedding(x), s.embedding(t), margin=5.0).backward()
    assert s.user_vectors.grad.abs().sum() > 0
    assert all(p.grad is not None for p in s.embedding.parameters())


def _model(s: PieNetSystem, **kw) -> PieNetModel:
    return PieNetModel(system=s, **kw)


def test_scheme2_is_the_normalised_mean_embedding_and_scheme1_lowers_the_triplet_loss():
    s = _system()
    refs = [Reference(f"s{i}", photo(i, 32)[0], photo(i, 32)[0].flip(0)) for i in range(4)]
    m2 = _model(s, scheme=2)
    prof = m2.personalize(refs, user="u")
    p2 = prof.tensors["preference"]
    with torch.no_grad():
        manual = F.normalize(s.embedding(torch.stack([r.preferred for r in refs])).mean(0), dim=0)
    assert torch.allclose(p2, manual, atol=1e-5) and prof.data["scheme"] == 2 and prof.user == "u"
    m1 = _model(s, scheme=1, scheme1_steps=40, scheme1_lr=0.05)
    p1 = m1.personalize(refs).tensors["preference"]
    assert p1.norm().item() == pytest.approx(1.0, abs=1e-5) and not torch.allclose(p1, p2)
    pos, neg = m1.embed([r.preferred for r in refs]), m1.embed([r.other for r in refs])
    assert triplet_loss(p1, pos, neg).item() < triplet_loss(p2, pos, neg).item()
    again = optimize_preference(pos, neg, p2, steps=40, lr=0.05, negatives=3)
    assert torch.allclose(again, p1, atol=1e-5)  # deterministic
    # no references: the average training user
    assert torch.allclose(m2.personalize([]).tensors["preference"], s.mean_preference().detach())


def test_profile_checks():
    s = _system()
    m = _model(s)
    prof = m.personalize([])
    assert prof.model_config["checkpoint_id"] == m.checkpoint_id
    other = _model(_system(seed=5))
    with pytest.raises(PrefstyleError, match="another PieNet checkpoint"):
        other.render(torch.rand(1, 3, 16, 16), prof)
    with pytest.raises(PrefstyleError, match="made by model 'identity'"):
        m.render(torch.rand(1, 3, 16, 16), Profile(model="identity"))
    with pytest.raises(PrefstyleError, match="pienet needs trained weights"):
        create_model("pienet")


def test_guided_upsample_carries_a_global_edit_to_full_resolution():
    from prefstyle.styles.registry import get_style

    full = photo(0, 256)
    style = get_style("warm-film")
    want = style.apply(full)
    lo = F.interpolate(full, size=(64, 64), mode="area")
    got = guided_upsample(lo, style.apply(lo), full).clamp(0, 1)
    naive = (full + F.interpolate(style.apply(lo) - lo, size=(256, 256), mode="bilinear")).clamp(0, 1)
    assert psnr(got, want).item() > 38
    assert psnr(got, want).item() > psnr(naive, want).item() + 2
    # identity edit stays the identity
    same = guided_upsample(lo, lo, full)
    assert (same - full).abs().max() < 2e-3


@pytest.mark.parametrize("wiring", ["paper", "legacy"])
def test_render_at_any_resolution(wiring):
    s = _system(wiring=wiring)
    _wake_head(s)
    m = _model(s)
    prof = m.personalize([])
    for shape in [(1, 3, 30, 20), (2, 3, 100, 150)]:  # below and above render_size (48)
        x = torch.rand(*shape)
        y = m.render(x, prof)
        assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    x = photo(1, 96)
    direct = m.render_vector(x, prof.tensors["preference"], full_size=True)
    guided = m.render(x, prof)
    # the guided path reproduces the full-size run far better than the input does (random network, strong edit)
    assert psnr(guided, direct).item() > psnr(x, direct).item() + 3
    assert m.render(x[0], prof).shape == x[0].shape


def test_per_photo_lut_reproduces_a_global_edit_and_approximates_local_ones():
    """The 8-bit fast path of `enhance`: a LUT fitted to the thumbnail rendering, applied at full size."""
    from prefstyle.cli.batch_io import enhance_pixels
    from prefstyle.imaging.io import ImageData
    from prefstyle.imaging.lut import apply_lut
    from prefstyle.styles.registry import get_style

    s = _system().eval()
    m = _model(s)
    prof = m.personalize([])
    full = photo(2, 160)  # above render_size (48)
    # a network that makes a known global edit: the fitted LUT must carry it to full size
    style = get_style("warm-film")
    s.net.forward = lambda x, p: style.apply(x)
    luts = m.luts(full, prof)
    assert luts.shape == (1, 3, 17, 17, 17)
    assert psnr(apply_lut(full, luts[0]).clamp(0, 1), style.apply(full)).item() > 35
    u8 = (full[0] * 255).round() / 255
    fast = enhance_pixels(m, prof, ImageData(pixels=u8, bit_depth=8))
    assert psnr(fast[None], style.apply(u8[None]).clamp(0, 1)).item() > 33
    # the model's own path when asked for it: exactly render()
    slow = enhance_pixels(m, prof, ImageData(pixels=u8, bit_depth=8), lut_path=False)
    assert torch.equal(slow, m.render(u8[None], prof)[0].clamp(0, 1))
    # a real (random, spatially varying) network: the LUT keeps most of its edit
    del s.net.forward
    _wake_head(s)
    x = photo(3, 160)
    ref = m.render(x, prof)
    got = apply_lut(x, m.luts(x, prof)[0]).clamp(0, 1)
    assert (got - ref).abs().mean() < 0.5 * (x - ref).abs().mean()


def test_efficientnet_lite0_packaged_imagenet_weights():
    b = create_backbone("efficientnet_lite0").eval()
    assert b.weights_source.endswith(".pth") and b.channels == (16, 24, 40, 112) and b.pooled_dim == 1280
    out = b(torch.rand(1, 3, 64, 80))
    assert [f.shape[-2:] for f in out.features] == [(32, 40), (16, 20), (8, 10), (4, 5)]
    # the weights are real ImageNet weights: the classifier recognises the cat
    import timm

    from prefstyle.models.backbones import (
        _map_lite0_keys,
        efficientnet_lite0_weights_path,
        load_state_dict_file,
    )

    net = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    net.load_state_dict(_map_lite0_keys(load_state_dict_file(efficientnet_lite0_weights_path()), net.state_dict()))
    x = (photo(1, 224) - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        top = net(x).topk(3).indices[0].tolist()
    assert set(top) & {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_resnet18_local_weights(tmp_path):
    import torchvision

    tv = torchvision.models.resnet18()
    path = tmp_path / "resnet18-local.pth"
    torch.save(tv.state_dict(), path)
    b = ResNet18Backbone(weights=path)
    assert torch.equal(b.layer3[1].conv2.weight, tv.layer3[1].conv2.weight)
    assert b.channels == (64, 64, 128, 256) and b.pooled_dim == 512
    with pytest.raises(PrefstyleError, match="width=64"):
        ResNet18Backbone(width=32, weights=path)
    with pytest.raises(PrefstyleError, match="not found"):
        ResNet18Backbone(weights=tmp_path / "missing.pth")
    with pytest.raises(PrefstyleError, match="unknown backbone"):
        create_backbone("vgg16")


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_task_trains_both_phases_with_a_crowd_and_resumes_exactly(tmp_path):
    from prefstyle.train import Trainer, load_model, read_metrics

    crowd = make_pairs_dataset(tmp_path / "crowd")
    full = Trainer(tiny_pienet_config(tmp_path / "full", crowd), progress=False).run()
    assert full.finished and "val_mpsnr" in full.metrics and "val_mpsnr_identity" in full.metrics
    logs = read_metrics(tmp_path / "full", "train")
    assert logs[0]["phase"] == 0.0 and "triplet" in logs[0] and logs[-1]["phase"] == 1.0 and "tv" in logs[-1]
    Trainer(tiny_pienet_config(tmp_path / "split", crowd), stop_after=3, progress=False).run()
    Trainer(tiny_pienet_config(tmp_path / "split", crowd), resume=True, progress=False).run()
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    model = load_model(tmp_path / "full")
    users = model.card["task"]["model"]["users"]
    assert any(u.startswith("method:") for u in users) and any(u.startswith("crowd:") for u in users)
    assert model.system.user_vectors.shape[0] == len(users)
    assert model.card["data"]["method_users"]["train"]
    same = create_model("pienet", checkpoint=tmp_path / "full")
    assert same.checkpoint_id == model.checkpoint_id
    prof = model.personalize([Reference("s", photo(0, 32)[0], photo(1, 32)[0])])
    assert same.render(photo(2, 64), prof).shape == (1, 3, 64, 64)


def test_packaged_model_keeps_its_legacy_wiring_and_renders_as_before():
    """The packaged CPU model predates the paper wiring: its card has no ``wiring``, so it loads as
    ``legacy`` and renders exactly as before the change (values recorded before it)."""
    from prefstyle.models import load, packaged_models

    if "pienet" not in packaged_models():
        pytest.skip("PieNet weights not packaged")
    torch.set_num_threads(1)
    m = load("pienet")
    assert m.cfg.wiring == "legacy" and m.checkpoint_id == "dff8865e413b408f"
    refs = [Reference(f"s{i}", photo(i, 64)[0].clamp(0, 1) ** 0.8, photo(i, 64)[0]) for i in range(4)]
    out = m.render(photo(5, 96), m.personalize(refs))
    assert float(out.mean()) == pytest.approx(0.48971694707870483, abs=2e-5)
    assert float((out - photo(5, 96)).abs().mean()) == pytest.approx(0.029465464875102043, abs=2e-5)


def test_auto_weights_take_a_local_imagenet_resnet18_else_random(tmp_path, monkeypatch):
    import torchvision

    from prefstyle.models.pienet import _backbone

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert _backbone("resnet18", "auto", 64).weights_source == "random"
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    tv = torchvision.models.resnet18()
    torch.save(tv.state_dict(), hub / "resnet18-f37072fd.pth")
    b = _backbone("resnet18", "auto", 64)
    assert b.weights_source.endswith("resnet18-f37072fd.pth") and torch.equal(b.conv1.weight, tv.conv1.weight)
    assert _backbone("resnet18", "auto", 32).weights_source == "random"  # ImageNet weights need width 64


def test_crowd_users_pass_the_pps_quality_filters_unless_turned_off(tmp_path):
    """PieNet's crowd users are filtered as the PPS baselines' are: a user answering in 100 ms is left out."""
    import json

    from prefstyle.train.tasks.pienet import build_crowd_data

    crowd = make_pairs_dataset(tmp_path / "crowd", users=4)
    path = crowd / "judgments.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in rows:
        r["response_ms"] = 100 if r["user"] == "u0@laptop" else 1500
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"size": 32, "cache": None}
    kept = build_crowd_data({**cfg, "crowd": {"path": str(crowd)}}, progress=False)
    assert kept is not None and kept.users == ["u1@laptop", "u2@laptop"] and kept.filters != "off"
    every = build_crowd_data({**cfg, "crowd": {"path": str(crowd), "quality_filter": False}}, progress=False)
    assert every is not None and every.users == ["u0@laptop", "u1@laptop", "u2@laptop"] and every.filters == "off"
    with pytest.raises(PrefstyleError, match="quality_filter"):
        build_crowd_data({**cfg, "crowd": {"path": str(crowd), "quality_filter": {"nonsense": 1}}}, progress=False)
