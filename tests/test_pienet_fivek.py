"""PieNet's FiveK training path (the paper's Table 1 protocols) end to end on a tiny generated FiveK
in each of the three layouts ``prefstyle.data.fivek`` reads: train, then score with the learned
expert vectors and with personalization from references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _pienet_data import TINY_ARCH, photo

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.io import write_image

N_PHOTOS = 8  # flat layouts: train_count 6 -> 6 train (1 held out for validation) + 2 test
SIZE = 24


def _expert(e: str, x: torch.Tensor) -> torch.Tensor:
    """Five distinct global retouches of ``x`` (1,3,H,W): the fixture's 'experts'."""
    warm = torch.tensor([1.1, 1.0, 0.85]).view(1, 3, 1, 1)
    cool = torch.tensor([0.85, 1.0, 1.15]).view(1, 3, 1, 1)
    out = {
        "A": x.clamp(0, 1) ** 0.7,
        "B": x * 0.75,
        "C": x * warm,
        "D": x * cool,
        "E": (x - 0.5) * 1.4 + 0.5,
    }[e]
    return out.clamp(0, 1)


def _write_set(inp_dir: Path, expert_dirs: dict[str, Path], ids: range) -> None:
    for i in ids:
        x = photo(i, SIZE)
        write_image(inp_dir / f"a{i + 1:04d}.png", x[0])
        for e, d in expert_dirs.items():
            write_image(d / f"a{i + 1:04d}.png", _expert(e, x)[0])


def make_fivek(root: Path, layout: str) -> Path:
    """A tiny FiveK: ``folders`` and ``pie-msm`` flat (8 photos), ``starenhancer`` pre-split (6 + 2)."""
    experts = "ABCDE"
    if layout == "folders":
        _write_set(root / "input", {e: root / f"expert{e}" for e in experts}, range(N_PHOTOS))
    elif layout == "pie-msm":
        for e in experts:  # every style folder has its own copy of the inputs
            _write_set(root / f"Expert{e}_input", {e: root / f"Expert{e}"}, range(N_PHOTOS))
    else:
        for split, ids in (("train", range(6)), ("test", range(6, N_PHOTOS))):
            d = root / split
            _write_set(d / "06-Input-ExpertC1.5", {e: d / f"0{k + 1}-Experts-{e}" for k, e in enumerate(experts)}, ids)
    return root


def _config(out: Path, fivek: Path, protocol: str = "multi", steps: int = 4, objective: dict | None = None) -> dict:
    from prefstyle.train import load_config

    doc = {
        "task": {"name": "pienet", **TINY_ARCH, "objective": objective or {"embed_fraction": 0.5}},
        "data": {
            "size": 16,
            "cache": None,
            "fivek": {"root": str(fivek), "protocol": protocol, "train_count": 6, "val_photos": 1},
        },
        "steps": steps,
        "batch_size": 4,
        "threads": 1,
        "log_every": 1,
        "val_every": 0,
        "ckpt_every": 0,
        "optim": {"lr": 1e-3},
        "out": str(out),
    }
    return load_config(None, None, base=doc)


@pytest.mark.parametrize("layout", ["folders", "pie-msm", "starenhancer"])
def test_fivek_training_data_is_the_same_in_every_layout(tmp_path, layout):
    from prefstyle.data.fivek import FiveKDataset
    from prefstyle.train.tasks.pienet import build_fivek_data

    root = make_fivek(tmp_path / layout, layout)
    assert FiveKDataset(root, "ABCDE", "all", train_count=6).kind == layout
    m = build_fivek_data(
        {"size": 16, "cache": None, "fivek": {"root": str(root), "train_count": 6, "val_photos": 1}}, progress=False
    )
    assert m.train_users == [f"expert{e}" for e in "ABCDE"]
    # the paper's split: the first 6 (train_count) photos by name train, the rest are the test split
    assert m.train_scenes == [f"a{i:04d}" for i in range(1, 6)] and m.val_scenes == ["a0006"]
    assert m.scenes.shape == (5, 3, 16, 16) and m.targets.shape == (5, 5, 3, 16, 16)
    assert m.seen_targets.shape == (5, 1, 3, 16, 16) and m.val_users == []
    assert m.targets.dtype == torch.uint8
    # experts differ: B darkens, A brightens
    assert m.targets[1].float().mean() < m.scenes.float().mean() < m.targets[0].float().mean()
    single = build_fivek_data(
        {"size": 16, "cache": None, "fivek": {"root": str(root), "protocol": "single", "train_count": 6}},
        progress=False,
    )
    assert single.train_users == ["expertC"] and single.targets.shape[0] == 1


def test_fivek_options_are_checked(tmp_path):
    from prefstyle.train.tasks.pienet import PieNetTask, fivek_options

    assert fivek_options({"root": "x"})["experts"] == "ABCDE"
    assert fivek_options({"root": "x", "protocol": "single"})["experts"] == "C"
    with pytest.raises(PrefstyleError, match="root"):
        fivek_options({})
    with pytest.raises(PrefstyleError, match="unknown data.fivek"):
        fivek_options({"root": "x", "protcol": "multi"})
    with pytest.raises(PrefstyleError, match="cannot be combined"):
        PieNetTask({}, {"fivek": {"root": "x"}, "crowd": {"path": "y"}}, 0)


def test_fivek_train_then_paper_protocols_end_to_end(tmp_path):
    from prefstyle.eval.pienet_protocols import fivek_multi_user, fivek_trained_users, main
    from prefstyle.train import Trainer, load_model, read_metrics

    root = make_fivek(tmp_path / "fivek", "folders")
    # the paper's schedule in miniature: 2 embedding steps at batch 6, then PieNet steps at batch 4
    paper = {"embed_steps": 2, "embed_batch_size": 6, "negatives": 3, "condition": "vector"}
    res = Trainer(_config(tmp_path / "run", root, objective=paper), progress=False).run()
    assert res.finished and "seen_mpsnr" in res.metrics and "seen_mpsnr_identity" in res.metrics
    logs = read_metrics(tmp_path / "run", "train")
    assert [r["phase"] for r in logs] == [0.0, 0.0, 1.0, 1.0] and "tv" in logs[-1]
    model = load_model(tmp_path / "run")
    assert model.training_users() == [f"fivek:expert{e}" for e in "ABCDE"]
    assert model.card["data"]["fivek"]["train_photos"] == 5

    trained = fivek_trained_users(model, root)
    assert trained["protocol"] == "pienet-fivek-trained" and set(trained["users"]) == {f"expert{e}" for e in "ABCDE"}
    assert all(r["n_tests"] == 2 and r["n_refs"] == 0 for r in trained["users"].values())  # the 2 test photos
    assert torch.isfinite(torch.tensor(trained["mpsnr"])) and 0 < trained["mssim"] <= 1
    # the learned vectors differ per expert, so do the renders
    pa = model.training_user_profile("fivek:expertA").tensors["preference"]
    pb = model.training_user_profile("fivek:expertB").tensors["preference"]
    assert not torch.allclose(pa, pb)
    personalized = fivek_multi_user(model, root, n_pref=3, train_count=6)
    assert set(personalized["users"]) == set(trained["users"])

    single = Trainer(_config(tmp_path / "single", root, "single", steps=2), progress=False).run()
    assert single.finished
    one = load_model(tmp_path / "single")
    assert one.training_users() == ["fivek:expertC"]
    assert list(fivek_trained_users(one, root)["users"]) == ["expertC"]
    with pytest.raises(PrefstyleError, match="not a training user"):
        fivek_trained_users(one, root, experts="A")
    assert list(fivek_trained_users(model, root, experts="A,C")["users"]) == ["expertA", "expertC"]

    out = tmp_path / "res.json"
    rc = main(["--model", str(tmp_path / "run"), "--fivek", str(root), "--protocol", "trained", "--out", str(out)])
    assert rc == 0 and json.loads(out.read_text())["mpsnr"] == pytest.approx(trained["mpsnr"])
    assert main(["--model", str(tmp_path / "run"), "--fivek", str(tmp_path / "nothing")]) == 2


def test_phase_batches_follow_embed_steps_and_batch_size(tmp_path):
    from prefstyle.train.tasks.pienet import PieNetTask

    root = make_fivek(tmp_path / "fivek", "folders")
    cfg = _config(tmp_path / "run", root, objective={"embed_steps": 3, "embed_batch_size": 6, "negatives": 3})
    task = PieNetTask(cfg["task"], cfg["data"], 0)
    task.progress_bars = False
    it = iter(task.train_loader(4, seed=0))
    batches = [next(it) for _ in range(5)]
    assert [b["preferred"].shape[0] for b in batches] == [6, 6, 6, 4, 4]
    assert [int(b["phase"]) for b in batches] == [0, 0, 0, 1, 1]
    assert batches[0]["others"].shape == (6, 2, 3, 16, 16)  # 3 negatives: "other" + 2 more
    with pytest.raises(PrefstyleError, match="embed_steps"):
        PieNetTask(cfg["task"] | {"objective": {"embed_batch_size": 6}}, cfg["data"], 0).train_loader(4, 0)


def test_shipped_pienet_configs_hold_the_papers_recipe(tmp_path):
    from prefstyle.train import load_config

    repo = Path(__file__).resolve().parents[1]
    for name in ("pienet.yaml", "pienet_fivek.yaml"):
        cfg = load_config(repo / "configs" / name, [f"out={tmp_path / name}"])
        t, o = cfg["task"], cfg["task"]["objective"]
        assert (t["wiring"], t["embed_size"], t["dim"], t["embed_weights"]) == ("paper", 256, 512, "auto")
        assert (o["embed_steps"], o["embed_batch_size"], cfg["steps"] - o["embed_steps"], cfg["batch_size"]) == (
            25000,
            64,
            100000,
            8,
        )
        assert (o["negatives"], o["condition"], o["tv_on"], o["perceptual_on"]) == (3, "vector", "delta", "embedding")
        assert cfg["optim"]["lr"] == pytest.approx(1e-4)
    cpu = load_config(repo / "configs" / "pienet_cpu.yaml", [f"out={tmp_path / 'cpu'}"])
    assert cpu["task"]["wiring"] == "paper" and cpu["task"]["objective"]["tv_on"] == "delta"
    with pytest.raises(PrefstyleError, match="root is not set"):
        from prefstyle.train.tasks.pienet import PieNetTask

        c = load_config(repo / "configs" / "pienet_fivek.yaml", [f"out={tmp_path / 'f'}"])
        PieNetTask(c["task"], c["data"], 0)


def test_missing_local_resnet18_weights_is_one_line_error(tmp_path):
    from prefstyle.models.pienet import build_pienet_system

    arch = {**TINY_ARCH, "width": 64, "embed_weights": str(tmp_path / "resnet18.pth")}
    with pytest.raises(PrefstyleError, match="not found") as e:
        build_pienet_system(arch, pretrained=True)
    assert "\n" not in str(e.value) and "resnet18.pth" in str(e.value)
