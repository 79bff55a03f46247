"""The PPS baselines as the paper has them (issue 21): quality filters in training and evaluation,
the L1/L2 choice of the pairwise loss, the paper-size configs (a tiny random ViT stands in for
DINOv2), and the training-users ablation as one command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from _pps_data import make_pairs_dataset
from prefstyle.data.pairs import Judgment, PairsDataset, write_pairs
from prefstyle.errors import PrefstyleError
from prefstyle.models.pps import pairwise_loss

ROOT = Path(__file__).resolve().parent.parent
TINY_VIT = {"embed_dim": 24, "depth": 1, "num_heads": 2}


def _careless(root: Path) -> Path:
    """The micro dataset with one training user (u1) answering in 100 ms: the median-response filter drops u1."""
    ds = PairsDataset.load(root)
    js = [
        Judgment(j.user, j.scene, j.image_a, j.image_b, j.preferred, response_ms=100 if j.user == "u1" else 1500)
        for j in ds.judgments
    ]
    write_pairs(root, js, scenes=list(ds.scenes.values()), splits=ds.splits, meta=ds.meta)
    return root


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_pairwise_loss_optimum_l1_stops_at_preferred_l2_extrapolates(kind):
    """w = 1.5: L2's optimum is w·I_p + (1 − w)·I_n (past I_p, away from I_n); L1's stays at I_p."""
    i_p, i_n = torch.full((1, 3, 2, 2), 0.6), torch.full((1, 3, 2, 2), 0.4)
    x = torch.full((1, 3, 2, 2), 0.5, requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        pairwise_loss(x, i_p, i_n, 1.5, kind).backward()
        opt.step()
    want = 0.7 if kind == "l2" else 0.6  # L1's subgradient steps oscillate within lr/numel of I_p
    assert abs(float(x.detach().mean()) - want) < 0.02


def test_training_applies_quality_filters_by_default_and_reports_counts(tmp_path, caplog):
    from prefstyle.train.tasks.upe import UPETask

    root = _careless(make_pairs_dataset(tmp_path / "data"))
    with caplog.at_level("INFO"):
        task = UPETask({}, {"path": str(root)})
        users = task.train_users()
    assert "u1" not in users and "u0" in users and len(users) == 5
    counts = task.describe_data()["filters"]
    assert counts["removed"] == 1 and counts["removed_by_filter"] == {"fast_responses": 1, "median_response": 1}
    assert counts["splits"]["train"] == {"kept": 5, "removed": 1}
    assert "kept 7 of 8 users, removed 1" in caplog.text
    off = UPETask({}, {"path": str(root), "quality_filter": False})
    assert "u1" in off.train_users() and off.describe_data()["filters"] == "off"
    with pytest.raises(PrefstyleError, match="quality_filter"):
        _ = UPETask({}, {"path": str(root), "quality_filter": {"min_consistency": 3}}).dataset


def _tiny_dinov2(path: Path, size: int = 28) -> Path:
    import timm

    torch.manual_seed(0)
    net = timm.create_model("vit_base_patch14_dinov2", pretrained=False, img_size=size, **TINY_VIT)
    torch.save(net.state_dict(), path)
    return path


def _paper_cfg(name: str, root: Path, out: Path, **task: object) -> dict:
    from prefstyle.train.config import load_config

    doc = yaml.safe_load((ROOT / "configs" / name).read_text())
    doc["task"].update(task)
    doc["data"].update(path=str(root), cache_dir=None, val_users=0)
    doc.update(steps=2, batch_size=4, val_every=0, val_at_start=False, ckpt_every=0, out=str(out), device="cpu")
    doc.pop("threads", None)
    return load_config(base=doc)


def test_upe_paper_config_runs_the_dinov2_path_with_a_tiny_random_vit(tmp_path):
    from prefstyle.train import load_model
    from prefstyle.train.trainer import Trainer

    root = make_pairs_dataset(tmp_path / "data")
    weights = _tiny_dinov2(tmp_path / "dinov2_tiny.pth")
    cfg = _paper_cfg(
        "upe_paper.yaml", root, tmp_path / "run", backbone_weights=str(weights), backbone_vit=TINY_VIT, backbone_size=28
    )
    assert cfg["task"]["backbone"] == "dinov2_vitb14" and cfg["task"]["loss"] == "l2"
    res = Trainer(cfg, progress=False, tensorboard=False).run()
    assert res.finished
    model = load_model(tmp_path / "run")
    assert model.net.backbone.name == "dinov2_vitb14" and model.net.backbone.dim == 2 * TINY_VIT["embed_dim"]
    x = torch.rand(1, 3, 40, 40)
    assert model.render(x, model.personalize([], "u")).shape == x.shape


def test_paper_configs_name_a_missing_dinov2_file_in_one_line(tmp_path):
    from prefstyle.models.upe import build_upe_net

    missing = tmp_path / "nowhere" / "dinov2_vitb14_pretrain.pth"
    for name in ("upe_paper.yaml", "exemplar_paper.yaml"):
        task = yaml.safe_load((ROOT / "configs" / name).read_text())["task"]
        assert task["backbone"].startswith("dinov2") and task["backbone_weights"]
    with pytest.raises(PrefstyleError) as e:
        build_upe_net({"backbone": "dinov2_vitb14", "backbone_weights": str(missing)})
    assert str(missing) in str(e.value) and "never downloaded" in str(e.value) and "\n" not in str(e.value)


def test_usd_paper_config_has_liif_sizes_and_trains(tmp_path):
    from prefstyle.train.trainer import Trainer

    root = make_pairs_dataset(tmp_path / "data")
    cfg = _paper_cfg(
        "usd_paper.yaml", root, tmp_path / "run", enc_size=16, target_sizes=[16, 24], queries=64, adapt_steps=1
    )
    trainer = Trainer(cfg, progress=False, tensorboard=False)
    assert trainer.run().finished
    net = trainer.task.to_inference(trainer.model).net
    assert net.encoder.out_dim == 64 and len(net.encoder.body) == 17  # 16 residual blocks + the last conv
    assert net.decoders.dims[1:-1] == [256, 256, 256, 256]
    assert trainer.task.model_cfg["adapt_loss"] == "l2"  # adaptation follows the training distance


def test_train_users_ablation_is_one_train_and_one_evaluate(tmp_path, capsys):
    from prefstyle.cli import main

    root = make_pairs_dataset(tmp_path / "data")
    cfg = tmp_path / "upe.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "task": {
                    "name": "upe",
                    "d_model": 16,
                    "n_layers": 1,
                    "n_heads": 2,
                    "ff": 32,
                    "style_dim": 8,
                    "thumb": 16,
                    "n_basis": 2,
                    "lut_size": 5,
                    "decoder_hidden": 16,
                    "backbone_size": 32,
                    "n_context": [1, 2],
                },
                "data": {"path": str(root), "val_users": 0},
                "steps": 1,
                "batch_size": 2,
                "val_every": 0,
                "ckpt_every": 0,
                "device": "cpu",
            }
        )
    )
    out = tmp_path / "upe_users"
    assert main(["train", str(cfg), f"out={out}", "--train-users", "2,all", "-q"]) == 0
    assert json.loads((out / "train_users.json").read_text())["runs"] == {"2": "users-2", "all": "users-all"}
    cards = {k: json.loads((out / f"users-{k}" / "model.json").read_text()) for k in ("2", "all")}
    assert '"train_users": 2' in json.dumps(cards["2"]) and '"train_users": 6' in json.dumps(cards["all"])
    ev = tmp_path / "eval"
    argv = ["evaluate", str(root), "-m", "identity", "-m", str(out), "--refs", "2", "--evals", "1"]
    assert main([*argv, "--metrics", "delta_e00", "--no-report", "--no-progress", "--out", str(ev)]) == 0
    doc = json.loads((ev / "results.json").read_text())
    assert {"identity", "upe_users:users-2", "upe_users:users-all"} <= set(doc["tables"]["delta_e00"])
    assert set(doc["ablations"]["train_users_runs"]["upe_users"]) == {"2", "all"}
    assert doc["dataset"]["quality_filter"]["kept"] == 8  # filters on by default (nobody fails here)
    capsys.readouterr()
    assert main(["train", str(cfg), f"out={out}", "--train-users", "0"]) == 2
    assert "--train-users" in capsys.readouterr().err
