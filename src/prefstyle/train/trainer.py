"""The one training loop every model uses.

``Trainer(config).run()`` (``config`` from :func:`prefstyle.train.config.load_config`) builds the
task's module, then for ``steps`` steps: fetch a batch, set the learning rate from the
schedule, compute the task's loss (under autocast when AMP is on), back-propagate, average the
gradients across processes (``torchrun``), clip them, step the optimizer, update the EMA,
log, validate and checkpoint periodically. A run killed at any point resumes from its latest
checkpoint with ``resume=True`` (optimizer, schedule position, EMA, RNG states, data stream and
step restored: the resumed run ends with the same weights as an uninterrupted one). SIGINT /
SIGTERM stop the run after the current step with a checkpoint; ``stop_after=k`` does the same
after ``k`` steps of this invocation (time-sliced training, tests).

Learning-rate schedules (``schedule.name``): ``constant``, ``cosine`` (down to ``min_factor`` ×
the base rate), ``linear`` (likewise), ``step`` (``× gamma`` at each of ``milestones``: fractions of
``steps`` when ≤ 1, else step numbers); ``warmup`` steps of linear warm-up first;
``restarts``: fractions of ``steps`` where a cosine/linear schedule starts again from the full
rate (one phase per segment; PieNet uses one restart between its embedding and PieNet phases).

Outputs in ``out``: ``config.yaml`` (the resolved config), ``metrics.jsonl`` (+ ``tb/`` with
TensorBoard), ``checkpoints/step_*/`` (training checkpoints, the last ``keep_checkpoints``),
and at the end ``model.safetensors`` + ``model.json`` (the final model; EMA weights when EMA
is on), which :func:`prefstyle.models.load` reads.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml

from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_write_text
from prefstyle.train.checkpoint import (
    latest_checkpoint,
    load_train_state,
    make_card,
    restore_optimizer,
    restore_rng,
    save_model,
    save_train_checkpoint,
)
from prefstyle.train.config import task_model_cfg
from prefstyle.train.distributed import (
    DistInfo,
    all_reduce_gradients,
    barrier,
    broadcast_buffers,
    broadcast_module,
    cleanup,
    init_distributed,
)
from prefstyle.train.logger import MetricsLogger
from prefstyle.train.task import TrainTask, get_task

__all__ = ["EMA", "TrainResult", "Trainer", "lr_factor", "seed_everything"]

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def lr_factor(step: int, total: int, sched: dict[str, Any]) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total`` (see module doc)."""
    name = sched.get("name", "constant")
    warmup = int(sched.get("warmup", 0) or 0)
    base_min = float(sched.get("min_factor", 0.0) or 0.0)
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if name == "constant":
        return 1.0
    if name == "step":
        ms = [float(m) for m in sched.get("milestones", []) or []]
        ms_steps = [round(m * total) if m <= 1 else int(m) for m in ms]
        return float(sched.get("gamma", 0.1)) ** sum(step >= m for m in ms_steps)
    restarts = sorted({round(float(r) * total) for r in (sched.get("restarts") or [])})
    bounds = [warmup] + [r for r in restarts if warmup < r < total] + [total]
    seg = 0
    while seg + 1 < len(bounds) - 1 and step >= bounds[seg + 1]:
        seg += 1
    start, end = bounds[seg], bounds[seg + 1]
    t = min(1.0, max(0.0, (step - start) / max(1, end - start)))
    shape = 0.5 * (1.0 + math.cos(math.pi * t)) if name == "cosine" else 1.0 - t
    return base_min + (1.0 - base_min) * shape


class EMA:
    """Exponential moving average of a module's floating-point state (parameters and buffers).

    Decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates.
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, n_updates: int) -> None:
        d = min(self.decay, (1 + n_updates) / (10 + n_updates))
        for k, v in module.state_dict().items():
            if k in self.shadow:
                self.shadow[k].lerp_(v.detach(), 1.0 - d)

    def state_dict_for(self, module: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The module's state with the averaged tensors in place of the live ones."""
        sd = dict(module.state_dict())
        sd.update(self.shadow)
        return sd

    @contextlib.contextmanager
    def applied(self, module: torch.nn.Module) -> Iterator[None]:
        """Temporarily load the averaged weights into ``module``."""
        live = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.state_dict_for(module))
        try:
            yield
        finally:
            module.load_state_dict(live)


@dataclass
class TrainResult:
    out: Path
    step: int
    steps: int
    finished: bool
    metrics: dict[str, float | str] = field(default_factory=dict)
    checkpoint: Path | None = None
    model_path: Path | None = None
    seconds: float = 0.0


def _device(spec: str, info_local_rank: int) -> torch.device:
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", info_local_rank % max(1, torch.cuda.device_count()))
        return torch.device("cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PrefstyleError(f"device {spec!r} requested but CUDA is not available")
    return dev


def _amp_dtype(amp: Any, device: torch.device) -> torch.dtype | None:
    if amp is False:
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp is True else None  # auto: off on the CPU


def _build_optimizer(params: list[Any], o: dict[str, Any]) -> torch.optim.Optimizer:
    lr, wd = float(o["lr"]), float(o.get("weight_decay", 0.0) or 0.0)
    # the fused kernels are much faster than the per-tensor loop (on the CPU too) and compute the same update
    fused = {"fused": True} if o.get("fused", True) else {}
    if o["name"] == "adam":
        return torch.optim.Adam(
            params,
            lr=lr,
            betas=tuple(o.get("betas", (0.9, 0.999))),
            eps=float(o.get("eps", 1e-8)),
            weight_decay=wd,
            **fused,
        )
    if o["name"] == "adamw":
        return torch.optim.AdamW(
            params,
            lr=lr,
            betas=tuple(o.get("betas", (0.9, 0.999))),
            eps=float(o.get("eps", 1e-8)),
            weight_decay=wd,
            **fused,
        )
    return torch.optim.SGD(params, lr=lr, momentum=float(o.get("momentum", 0.9)), weight_decay=wd)


class _StopFlag:
    """Set by SIGINT/SIGTERM: the loop saves a checkpoint after the current step and stops."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:  # second signal: give up at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class _RunState:
    """What one :meth:`Trainer.run` holds between setup, resume, loop and finish."""

    cfg: dict[str, Any]
    device: torch.device
    info: DistInfo
    out: Path
    seed: int
    task: TrainTask
    model: torch.nn.Module
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    base_lrs: list[float]
    ema: EMA | None
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    steps: int
    step: int = 0
    start_step: int = 0
    last_val: dict[str, float] = field(default_factory=dict)
    logger: MetricsLogger = field(init=False)
    loader: Any = field(init=False)
    batches: Iterator[Any] = field(init=False)


class _LogWindow:
    """Running means of the logged values since the last log line, and the step rate."""

    def __init__(self) -> None:
        self.acc: dict[str, float] = defaultdict(float)
        self.cnt: dict[str, int] = defaultdict(int)
        self.n = 0
        self.t0 = time.perf_counter()

    def add(self, vals: dict[str, float]) -> None:
        for k, v in vals.items():
            self.acc[k] += v
            self.cnt[k] += 1
        self.n += 1

    def flush(self, lr: float) -> dict[str, float]:
        """The record to log (means, ``lr``, ``steps_per_s``); starts a new window."""
        now = time.perf_counter()
        rec = {k: v / self.cnt[k] for k, v in self.acc.items()}
        rec["lr"] = lr
        rec["steps_per_s"] = self.n / max(1e-9, now - self.t0)
        self.acc.clear()
        self.cnt.clear()
        self.n, self.t0 = 0, now
        return rec


class Trainer:
    """Runs one training config (see the module docstring).

    ``resume``: continue from ``out``'s latest checkpoint (a fresh start when it has none).
    Without ``resume`` a folder that already holds a run is refused. ``stop_after``: stop (with
    a checkpoint) after this many steps of this invocation. ``progress``: show a progress bar.
    """

    def __init__(
        self,
        config: dict[str, Any],
        resume: bool = False,
        stop_after: int | None = None,
        progress: bool = True,
        tensorboard: bool | None = None,
    ):
        self.cfg = config
        self.resume = resume
        self.stop_after = stop_after
        self.progress = progress
        self.tensorboard = tensorboard
        self.task: TrainTask | None = None
        self.model: torch.nn.Module | None = None

    # ------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        cfg = self.cfg
        t_start = time.perf_counter()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = _device(str(cfg.get("device", "auto")), local)
        owns_group = not (dist.is_available() and dist.is_initialized())
        info = init_distributed(device)
        try:
            return self._run(cfg, device, info, t_start)
        finally:
            if owns_group:
                cleanup()

    def _run(self, cfg: dict[str, Any], device: torch.device, info: DistInfo, t_start: float) -> TrainResult:
        """Setup, resume, loop and finish (in this order: the random streams depend on it)."""
        self._check_process(cfg, info)
        run = self._setup(cfg, device, info)
        loader_state = self._resume(run)
        self._open_outputs(run, loader_state)
        stopped, checkpoint = self._loop(run)
        return self._finish(run, stopped, checkpoint, t_start)

    def _check_process(self, cfg: dict[str, Any], info: DistInfo) -> None:
        """Thread and determinism settings; refuse an unsplittable batch or a folder that holds a run."""
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg["threads"]))
        if cfg.get("deterministic"):
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        if cfg["batch_size"] % info.world_size:
            raise PrefstyleError(f"batch_size {cfg['batch_size']} is not divisible by {info.world_size} processes")
        out = Path(cfg["out"])
        if not self.resume and info.is_main and (latest_checkpoint(out) is not None or (out / "model.json").exists()):
            raise PrefstyleError(
                "this folder already holds a training run: pass --resume to continue it, or choose another out=",
                path=out,
            )
        barrier(info)

    def _setup(self, cfg: dict[str, Any], device: torch.device, info: DistInfo) -> _RunState:
        """The task, its model (same on every process), the optimizer, EMA and mixed precision."""
        seed = int(cfg["seed"])
        seed_everything(seed)
        task_cls = get_task(cfg["task"]["name"], cfg["task"].get("module"))
        task = task_cls(task_model_cfg(cfg), dict(cfg["data"]), seed)
        self.task = task
        model = task.build_model().to(device)
        self.model = model
        broadcast_module(model, info)
        seed_everything(seed * 1000 + info.rank + 1)  # per-rank streams for any randomness in loss()

        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise PrefstyleError(f"task '{task.name}' built a module without trainable parameters")
        groups = task.param_groups(model)
        if groups is not None:
            grouped = [p for g in groups for p in g["params"]]
            if len({id(p) for p in grouped}) != len(grouped) or {id(p) for p in grouped} != {id(p) for p in params}:
                raise PrefstyleError(f"task '{task.name}': param_groups must list every trainable parameter once")
            params = grouped
        opt = _build_optimizer(groups if groups is not None else params, cfg["optim"])
        amp_dtype = _amp_dtype(cfg.get("amp", "auto"), device)
        return _RunState(
            cfg=cfg,
            device=device,
            info=info,
            out=Path(cfg["out"]),
            seed=seed,
            task=task,
            model=model,
            params=params,
            opt=opt,
            base_lrs=[g["lr"] for g in opt.param_groups],
            ema=EMA(model, float(cfg["ema"])) if cfg.get("ema") else None,
            amp_dtype=amp_dtype,
            scaler=torch.amp.GradScaler("cuda") if (amp_dtype == torch.float16 and device.type == "cuda") else None,
            steps=int(cfg["steps"]),
        )

    def _resume(self, run: _RunState) -> dict[str, Any] | None:
        """With ``resume``, restore weights, optimizer, scaler, random streams and step from the latest
        checkpoint; returns the loader's saved state (None on a fresh start)."""
        ck = latest_checkpoint(run.out) if self.resume else None
        if ck is None:
            return None
        model, ema = run.model, run.ema
        model_state, tensors, meta = load_train_state(ck)
        raw = {k[4:]: v for k, v in tensors.items() if k.startswith("raw.")}
        model.load_state_dict(raw or model_state)
        if ema is not None and meta.get("extra", {}).get("ema_in_model"):
            ema.shadow = {k: v.to(run.device).clone() for k, v in model_state.items() if k in ema.shadow}
        restore_optimizer(run.opt, tensors, meta)
        if run.scaler is not None and meta.get("scaler"):
            run.scaler.load_state_dict(meta["scaler"])
        restore_rng(tensors, meta)
        rank_rng = tensors.get(f"rng.torch.rank{run.info.rank}")
        if rank_rng is not None:
            torch.set_rng_state(rank_rng.to(torch.uint8))
        run.step = run.start_step = int(meta["step"])
        run.last_val = dict(meta.get("extra", {}).get("last_val", {}))
        model.to(run.device)
        if run.info.is_main:
            log.info("resumed %s at step %d", ck, run.step)
        return meta.get("loader")

    def _open_outputs(self, run: _RunState, loader_state: dict[str, Any] | None) -> None:
        """The run folder, its ``config.yaml``, the metrics logger and this process's batches."""
        cfg, info = run.cfg, run.info
        if info.is_main:
            run.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run.out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        run.logger = MetricsLogger(run.out, enabled=info.is_main, tensorboard=self.tensorboard)
        per_rank = cfg["batch_size"] // info.world_size
        run.loader = task_loader = run.task.train_loader(per_rank, run.seed, info.rank, info.world_size)
        run.batches = self._batches(task_loader, loader_state, run.step, run.seed)

    def _loop(self, run: _RunState) -> tuple[bool, Path | None]:
        """Train to ``steps`` (or until stopped: a signal, ``stop_after``); returns ``(stopped, last checkpoint)``."""
        cfg, info = run.cfg, run.info
        pbar = None
        if self.progress and info.is_main:
            from tqdm.auto import tqdm

            pbar = tqdm(total=run.steps, initial=run.step, desc=f"train {run.task.name}", dynamic_ncols=True)
        checkpoint: Path | None = None
        window = _LogWindow()
        try:
            with _StopFlag() as stop:
                if cfg.get("val_at_start") and run.step == 0:
                    self._validate(run, 0)
                run.model.train()
                while run.step < run.steps:
                    loss, vals = self._train_step(run)
                    window.add(vals)
                    if pbar is not None:
                        pbar.update(1)
                        pbar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                    step = run.step
                    if step % max(1, int(cfg["log_every"])) == 0 or step == run.steps:
                        run.logger.log(step, window.flush(run.opt.param_groups[0]["lr"]))
                    if int(cfg["val_every"]) > 0 and step % int(cfg["val_every"]) == 0 and step < run.steps:
                        self._validate(run, step)
                    halt = stop.requested or (self.stop_after is not None and step - run.start_step >= self.stop_after)
                    if self._any(halt, info, run.device) and step < run.steps:
                        return True, self._save_checkpoint(run, step)
                    if int(cfg["ckpt_every"]) > 0 and step % int(cfg["ckpt_every"]) == 0 and step < run.steps:
                        checkpoint = self._save_checkpoint(run, step)
        finally:
            if pbar is not None:
                pbar.close()
        return False, checkpoint

    def _train_step(self, run: _RunState) -> tuple[float, dict[str, float]]:
        """One optimizer step (schedule, mixed precision, gradient sync and clipping, EMA); returns
        the loss and the values to log."""
        cfg, opt, model, scaler, step = run.cfg, run.opt, run.model, run.scaler, run.step
        batch = run.task.batch_to(next(run.batches), run.device)
        f = lr_factor(step, run.steps, cfg["schedule"])
        for g, base in zip(opt.param_groups, run.base_lrs):
            g["lr"] = base * f
        autocast = (
            torch.autocast(device_type=run.device.type, dtype=run.amp_dtype)
            if run.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            loss, logs = run.task.loss(model, batch, step / run.steps)
        if not torch.isfinite(loss.detach()):
            raise PrefstyleError(
                f"training diverged: loss is {loss.item()} at step {step} (lower optim.lr, or set grad_clip)"
            )
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        all_reduce_gradients(run.params, run.info)
        if scaler is not None:
            scaler.unscale_(opt)
        gnorm = None
        if cfg.get("grad_clip"):
            with_grad = [p for p in run.params if p.grad is not None]
            if with_grad:
                gnorm = float(torch.nn.utils.clip_grad_norm_(with_grad, float(cfg["grad_clip"])))
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        broadcast_buffers(model, run.info)
        if run.ema is not None:
            run.ema.update(model, step)
        run.step += 1
        vals = {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}
        if gnorm is not None:
            vals["grad_norm"] = gnorm
        return float(loss.detach()), vals

    def _save_checkpoint(self, run: _RunState, at: int) -> Path | None:
        """A resumable checkpoint at step ``at`` (written by the main process; None elsewhere)."""
        info, model, ema, task = run.info, run.model, run.ema, run.task
        rng_ranks = self._gather_rng(info)
        if not info.is_main:
            barrier(info)
            return None
        export = ema.state_dict_for(model) if ema is not None else model.state_dict()
        card = make_card(task.name, task.model_cfg, task.describe_data(), run.cfg, at, run.last_val)
        loader = run.loader
        lstate = loader.state_dict() if hasattr(loader, "state_dict") else {"consumed": at}
        path = save_train_checkpoint(
            run.out,
            at,
            export,
            card,
            run.opt,
            raw_state=model.state_dict() if ema is not None else None,
            scaler_state=run.scaler.state_dict() if run.scaler is not None else None,
            loader_state=lstate,
            extra={"ema_in_model": ema is not None, "last_val": run.last_val, "rng_ranks": sorted(rng_ranks)},
            keep=int(run.cfg.get("keep_checkpoints", 3)),
            rank_rng=rng_ranks,
        )
        barrier(info)
        return path

    def _validate(self, run: _RunState, at: int) -> dict[str, float]:
        """The task's validation on the main process (with the EMA weights when kept), logged."""
        res: dict[str, float] = {}
        if run.info.is_main:
            model = run.model
            model.eval()
            ctx = run.ema.applied(model) if run.ema is not None else contextlib.nullcontext()
            t0 = time.perf_counter()
            with ctx, torch.no_grad():
                res = {k: float(v) for k, v in run.task.validate(model).items()}
            res["val_seconds"] = round(time.perf_counter() - t0, 3)
            model.train()
            run.logger.log(at, res, split="val")
            run.last_val = res
        barrier(run.info)
        return res

    def _finish(self, run: _RunState, stopped: bool, checkpoint: Path | None, t_start: float) -> TrainResult:
        """After the loop: replica check (DDP); when finished, a last validation, checkpoint and ``model.json``."""
        info, model, ema, task, step = run.info, run.model, run.ema, run.task, run.step
        if info.enabled:
            diff = self._replica_difference(model, info, run.device)
            run.logger.log(step, {"replica_max_abs_diff": diff, "world_size": info.world_size}, split="ddp")
        model_path = None
        if not stopped:
            self._validate(run, step)
            checkpoint = self._save_checkpoint(run, step)
            if info.is_main:
                export = ema.state_dict_for(model) if ema is not None else model.state_dict()
                card = make_card(task.name, task.model_cfg, task.describe_data(), run.cfg, step, run.last_val)
                model_path = save_model(run.out, export, card)
            barrier(info)
        run.logger.close()
        return TrainResult(
            out=run.out,
            step=step,
            steps=run.steps,
            finished=not stopped,
            metrics=dict(run.last_val),
            checkpoint=checkpoint,
            model_path=model_path,
            seconds=time.perf_counter() - t_start,
        )

    # ------------------------------------------------------------------------------------

    @staticmethod
    def _any(flag: bool, info: DistInfo, device: torch.device) -> bool:
        if not info.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    @staticmethod
    def _replica_difference(model: torch.nn.Module, info: DistInfo, device: torch.device) -> float:
        """Largest absolute difference of any parameter or buffer between processes (0 = in sync)."""
        with torch.no_grad():
            flat = torch.cat(
                [
                    t.detach().float().reshape(-1)
                    for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]
                ]
            )
            hi, lo = flat.clone(), flat.clone()
            dist.all_reduce(hi, op=dist.ReduceOp.MAX)
            dist.all_reduce(lo, op=dist.ReduceOp.MIN)
            return float((hi - lo).abs().max()) if flat.numel() else 0.0

    @staticmethod
    def _gather_rng(info: DistInfo) -> dict[int, torch.Tensor]:
        """Every rank's torch RNG state (rank 0 gets them all; exact multi-process resume)."""
        state = torch.get_rng_state()
        if not info.enabled:
            return {}
        gathered = [torch.empty_like(state) for _ in range(info.world_size)]
        dist.all_gather(gathered, state)
        return dict(enumerate(gathered))

    @staticmethod
    def _batches(loader: Any, state: dict[str, Any] | None, step: int, seed: int) -> Iterator[Any]:
        """An endless iterator over ``loader`` positioned at ``step`` (state restored or replayed)."""
        if state is not None and hasattr(loader, "load_state_dict") and "consumed" not in state:
            loader.load_state_dict(state)
            skip = 0
        else:
            skip = step

        def endless() -> Iterator[Any]:
            epoch = 0
            while True:
                if epoch > 0:
                    if hasattr(loader, "set_epoch"):
                        loader.set_epoch(epoch)
                    elif hasattr(getattr(loader, "sampler", None), "set_epoch"):
                        loader.sampler.set_epoch(epoch)
                n = 0
                for b in loader:
                    n += 1
                    yield b
                if n == 0:
                    raise PrefstyleError("the task's train_loader yielded no batches")
                epoch += 1

        it = endless()
        for _ in range(skip):
            next(it)
        return it
