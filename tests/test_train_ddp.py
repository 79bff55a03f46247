"""Multi-process training: 2 processes under torchrun (gloo on the CPU) against 1 process."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from prefstyle.train import Trainer, load_config, read_metrics

CONFIG = """\
task: {name: toy-affine, hidden: 6}
steps: 12
batch_size: 8
threads: 1
optim: {name: adam, lr: 0.02}
schedule: {name: cosine, warmup: 2}
grad_clip: 1.0
ema: 0.9
val_every: 0
ckpt_every: 0
log_every: 4
"""


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_two_processes_stay_in_sync_and_match_one_process(tmp_path):
    cfg_file = tmp_path / "toy.yaml"
    cfg_file.write_text(CONFIG)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "prefstyle.train",
        str(cfg_file),
        f"out={tmp_path / 'ddp'}",
        "-q",
    ]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    sync = read_metrics(tmp_path / "ddp", "ddp")
    assert sync and sync[-1]["world_size"] == 2
    assert sync[-1]["replica_max_abs_diff"] == 0.0  # both ranks end with identical weights

    single = Trainer(load_config(cfg_file, [f"out={tmp_path / 'single'}"]), progress=False).run()
    assert single.finished
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
