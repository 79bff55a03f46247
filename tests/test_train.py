"""The shared trainer: configs, schedules, the loop, checkpoints, exact resume, load_model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from prefstyle.errors import PrefstyleError
from prefstyle.train import Trainer, load_config, load_model, lr_factor, read_metrics
from prefstyle.train.checkpoint import latest_checkpoint, read_card
from prefstyle.train.config import apply_overrides
from prefstyle.train.data import SeededBatches
from prefstyle.train.task import TrainTask, get_task, list_tasks, register_task


def _toy_cfg(out: Path, **extra) -> dict:
    doc = {
        "task": {"name": "toy-affine", "hidden": 4},
        "steps": 30,
        "batch_size": 8,
        "threads": 1,
        "optim": {"lr": 0.02},
        "log_every": 5,
        "val_every": 0,
        "ckpt_every": 0,
        "out": str(out),
    }
    doc.update(extra)
    return load_config(None, None, base=doc)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


# --------------------------------------------------------------------------------------------
# configs and schedules
# --------------------------------------------------------------------------------------------


def test_config_yaml_overrides_and_errors(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("task: {name: toy-affine, hidden: 3}\noptim: {lr: 0.5}\nsteps: 7\n")
    cfg = load_config(
        f, ["optim.lr=1e-3", "task.hidden=5", "schedule.restarts=[0.3]", "data.crowd=null", "ema=0.9", "out=runs/x"]
    )
    assert cfg["optim"]["lr"] == pytest.approx(1e-3) and cfg["optim"]["name"] == "adam"
    assert cfg["task"]["hidden"] == 5 and cfg["steps"] == 7
    assert cfg["schedule"]["restarts"] == [0.3] and cfg["data"]["crowd"] is None
    assert cfg["ema"] == 0.9 and cfg["batch_size"] == 16  # default kept
    assert apply_overrides({}, ["a.b.c=x y"]) == {"a": {"b": {"c": "x y"}}}
    with pytest.raises(PrefstyleError, match="unknown config key"):
        load_config(f, ["stpes=3"])
    with pytest.raises(PrefstyleError, match="KEY=VALUE"):
        load_config(f, ["steps"])
    with pytest.raises(PrefstyleError, match="schedule.name"):
        load_config(f, ["schedule.name=exp"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: {name: [\n")
    with pytest.raises(PrefstyleError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(PrefstyleError, match="task.name"):
        load_config(None, None, base={"steps": 3})


def test_lr_schedules():
    cos = {"name": "cosine", "warmup": 10, "min_factor": 0.0}
    assert lr_factor(0, 100, cos) == pytest.approx(0.1)
    assert lr_factor(9, 100, cos) == pytest.approx(1.0)
    assert lr_factor(10, 100, cos) == pytest.approx(1.0)
    assert lr_factor(55, 100, cos) == pytest.approx(0.5)
    assert lr_factor(99, 100, cos) < 0.01
    restart = {"name": "cosine", "restarts": [0.3], "min_factor": 0.1}
    assert lr_factor(29, 100, restart) < 0.15
    assert lr_factor(30, 100, restart) == pytest.approx(1.0)
    assert lr_factor(99, 100, restart) == pytest.approx(0.1, abs=0.01)
    step = {"name": "step", "milestones": [0.5, 80], "gamma": 0.1}
    assert [lr_factor(s, 100, step) for s in (0, 50, 80)] == pytest.approx([1.0, 0.1, 0.01])
    assert lr_factor(50, 100, {"name": "linear"}) == pytest.approx(0.5)
    assert lr_factor(50, 100, {"name": "constant"}) == 1.0


def test_seeded_batches_are_resumable_and_sharded():
    def make(step, gen, n, part):
        return torch.rand(n, generator=gen)[part]

    full = iter(SeededBatches(make, 4, seed=3))
    a = [next(full) for _ in range(3)]
    r0, r1 = SeededBatches(make, 2, 3, rank=0, world_size=2), SeededBatches(make, 2, 3, rank=1, world_size=2)
    assert torch.equal(torch.cat([next(iter(r0)), next(iter(r1))]), a[0])
    later = SeededBatches(make, 4, seed=3)
    later.load_state_dict({"step": 2})
    assert torch.equal(next(iter(later)), a[2])


def test_task_registry():
    assert {"pienet", "toy-affine"} <= set(list_tasks())
    with pytest.raises(PrefstyleError, match="unknown training task"):
        get_task("toy-afine")


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------


def test_training_learns_and_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    cfg = _toy_cfg(out, steps=60, val_at_start=True, schedule={"name": "cosine", "warmup": 5}, grad_clip=1.0)
    res = Trainer(cfg, progress=False).run()
    assert res.finished and res.step == 60
    assert res.metrics["psnr"] > res.metrics["psnr_identity"] + 3
    val = read_metrics(out, "val")
    assert val[0]["step"] == 0 and val[-1]["step"] == 60 and val[-1]["psnr"] > val[0]["psnr"]
    train = read_metrics(out, "train")
    assert len(train) == 12 and train[-1]["loss"] < train[0]["loss"] and "grad_norm" in train[0] and "lr" in train[0]
    card, weights = read_card(out)
    assert card["format"] == "prefstyle-checkpoint" and card["task"] == {"name": "toy-affine", "model": {"hidden": 4}}
    assert card["train"]["steps"] == 60 and card["step"] == 60 and card["metrics"]["psnr"] == res.metrics["psnr"]
    assert card["prefstyle_version"] and "git_commit" in card and card["data"]["size"] == 8
    assert (out / "config.yaml").is_file() and weights.name == "model.safetensors"
    assert latest_checkpoint(out).name == "step_0000060"
    model = load_model(out)
    assert model.name == "toy-affine" and model.card["id"] == card["id"]
    x = torch.rand(2, 3, 8, 8)
    y = model.render(x, model.personalize([]))
    assert y.shape == x.shape
    # the run folder is not overwritten by accident
    with pytest.raises(PrefstyleError, match="--resume"):
        Trainer(_toy_cfg(out), progress=False).run()


def test_resume_is_exact(tmp_path):
    extra = {"ema": 0.9, "grad_clip": 0.5, "schedule": {"name": "cosine", "warmup": 3}, "ckpt_every": 5}
    Trainer(_toy_cfg(tmp_path / "full", **extra), progress=False).run()
    first = Trainer(_toy_cfg(tmp_path / "split", **extra), stop_after=12, progress=False).run()
    assert not first.finished and first.step == 12 and first.checkpoint.name == "step_0000012"
    assert not (tmp_path / "split" / "model.json").exists()
    second = Trainer(_toy_cfg(tmp_path / "split", **extra), resume=True, progress=False).run()
    assert second.finished and second.step == 30
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the kept checkpoints: keep_checkpoints (3) newest
    kept = sorted(p.name for p in (tmp_path / "split" / "checkpoints").glob("step_*"))
    assert kept == ["step_0000020", "step_0000025", "step_0000030"]


class _ListTask(TrainTask):
    """A task with a plain finite list as its loader (no state_dict): resume replays batches."""

    name = "test-list"

    def build_model(self):
        torch.manual_seed(0)
        return nn.Linear(2, 1)

    def train_loader(self, batch_size, seed, rank=0, world_size=1):
        g = torch.Generator().manual_seed(seed)
        return [(torch.rand(batch_size, 2, generator=g), torch.rand(batch_size, 1, generator=g)) for _ in range(4)]

    def loss(self, model, batch, progress):
        x, y = batch
        noise = torch.randn(()) * 1e-3  # global RNG: restored on resume
        return ((model(x) - y) ** 2).mean() + noise, {}

    def validate(self, model):
        return {}

    def to_inference(self, model):
        raise NotImplementedError

    def describe_data(self):
        return {}


register_task("test-list")(_ListTask)


def test_resume_replays_a_stateless_finite_loader(tmp_path):
    def cfg(out):
        return load_config(
            None,
            None,
            base={
                "task": {"name": "test-list"},
                "steps": 11,
                "batch_size": 3,
                "threads": 1,
                "out": str(out),
                "val_every": 0,
                "ckpt_every": 0,
                "optim": {"name": "sgd", "lr": 0.1},
            },
        )

    Trainer(cfg(tmp_path / "a"), progress=False).run()
    Trainer(cfg(tmp_path / "b"), stop_after=6, progress=False).run()
    Trainer(cfg(tmp_path / "b"), resume=True, progress=False).run()
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for k in a:
        assert torch.equal(a[k], b[k])


def test_diverging_loss_is_reported(tmp_path):
    class Bad(_ListTask):
        name = "test-nan"

        def loss(self, model, batch, progress):
            return model(batch[0]).mean() * float("nan"), {}

    register_task("test-nan")(Bad)
    cfg = load_config(
        None, None, base={"task": {"name": "test-nan"}, "steps": 3, "threads": 1, "out": str(tmp_path / "n")}
    )
    with pytest.raises(PrefstyleError, match="diverged"):
        Trainer(cfg, progress=False).run()


def test_load_model_errors_and_fallbacks(tmp_path):
    with pytest.raises(PrefstyleError, match="needs training"):
        load_model("usd")  # trainable, no weights ship with prefstyle
    assert load_model("identity").name == "identity"
    with pytest.raises(PrefstyleError, match="unknown model"):
        load_model("identiti")
    with pytest.raises(PrefstyleError, match="not found"):
        load_model(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(PrefstyleError):
        load_model(tmp_path / "bad")


def test_train_cli_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from prefstyle.cli.train_cmd import train

    app = typer.Typer()
    app.command()(train)
    app.command("noop")(lambda: None)
    cfg = tmp_path / "toy.yaml"
    cfg.write_text("task: {name: toy-affine}\nthreads: 1\nval_every: 0\nckpt_every: 0\n")
    out = tmp_path / "cli"
    r = CliRunner().invoke(app, ["train", str(cfg), "steps=6", f"out={out}", "--stop-after", "3", "-q"])
    assert r.exit_code == 0, r.output
    assert "--resume" in r.output
    r = CliRunner().invoke(app, ["train", str(cfg), "steps=6", f"out={out}", "--resume", "-q"])
    assert r.exit_code == 0, r.output
    assert (out / "model.json").is_file()


class _InterruptTask(_ListTask):
    """Sends itself SIGINT during its third step: the trainer must stop there with a checkpoint."""

    name = "test-sigint"
    calls = 0

    def loss(self, model, batch, progress):
        import os
        import signal

        type(self).calls += 1
        if type(self).calls == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return super().loss(model, batch, progress)


register_task("test-sigint")(_InterruptTask)


def test_sigint_stops_after_the_current_step_with_a_checkpoint(tmp_path):
    cfg = load_config(
        None,
        None,
        base={
            "task": {"name": "test-sigint"},
            "steps": 50,
            "threads": 1,
            "out": str(tmp_path / "s"),
            "val_every": 0,
            "ckpt_every": 0,
        },
    )
    res = Trainer(cfg, progress=False).run()
    assert not res.finished and res.step == 3 and latest_checkpoint(tmp_path / "s").name == "step_0000003"
    res = Trainer(cfg, resume=True, progress=False).run()
    assert res.finished and res.step == 50


def test_bf16_autocast_and_param_groups(tmp_path):
    class Grouped(_ListTask):
        name = "test-groups"

        def param_groups(self, model):
            return [{"params": [model.weight], "lr": 0.5}, {"params": [model.bias]}]

    register_task("test-groups")(Grouped)
    cfg = load_config(
        None,
        None,
        base={
            "task": {"name": "test-groups"},
            "steps": 4,
            "threads": 1,
            "amp": "bf16",
            "optim": {"name": "sgd", "lr": 0.01},
            "out": str(tmp_path / "g"),
            "val_every": 0,
            "ckpt_every": 0,
            "log_every": 1,
        },
    )
    res = Trainer(cfg, progress=False).run()
    assert res.finished
    assert read_metrics(tmp_path / "g", "train")[0]["lr"] == pytest.approx(0.5)  # the first group's rate


def test_export_half_precision_loads(tmp_path):
    from prefstyle.train import export_model

    Trainer(_toy_cfg(tmp_path / "run", steps=5), progress=False).run()
    dst = export_model(tmp_path / "run", tmp_path / "packaged", half=True)
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float16 for v in load_file(str(dst / "model.safetensors")).values())
    m = load_model(dst)
    assert m.card["dtype"] == "float16" and next(m.net.parameters()).dtype == torch.float32
