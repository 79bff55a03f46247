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
        return torch.optim.Adam(params, lr=lr, betas=tuple(o.get("betas", (0.9, 0.999))), eps=float(o.get("eps", 1e-8)),
                                weight_decay=wd, **fused)
    if o["name"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(o.get("betas", (0.9, 0.999))),
                                 eps=float(o.get("eps", 1e-8)), weight_decay=wd, **fused)
    return torch.optim.SGD(params, lr=lr, momentum=float(o.get("momentum", 0.9)), weight_decay=wd)


class _StopFlag:
    """Set by SIGINT/SIGTERM: the loop saves a checkpoint after the current step and stops."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:  # noqa: PYI034
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


class Trainer:
    """Runs one training config (see the module docstring).

    ``resume``: continue from ``out``'s latest checkpoint (a fresh start when it has none).
    Without ``resume`` a folder that already holds a run is refused. ``stop_after``: stop (with
    a checkpoint) after this many steps of this invocation. ``progress``: show a progress bar.
    """

    def __init__(self, config: dict[str, Any], resume: bool = False, stop_after: int | None = None,
                 progress: bool = True, tensorboard: bool | None = None):
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
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg["threads"]))
        if cfg.get("deterministic"):
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        if cfg["batch_size"] % info.world_size:
            raise PrefstyleError(f"batch_size {cfg['batch_size']} is not divisible by {info.world_size} processes")
        out = Path(cfg["out"])
        if not self.resume and info.is_main and (latest_checkpoint(out) is not None or (out / "model.json").exists()):
            raise PrefstyleError("this folder already holds a training run: pass --resume to continue it, "
                                 "or choose another out=", path=out)
        barrier(info)

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
        base_lrs = [g["lr"] for g in opt.param_groups]
        ema = EMA(model, float(cfg["ema"])) if cfg.get("ema") else None
        amp_dtype = _amp_dtype(cfg.get("amp", "auto"), device)
        scaler = torch.amp.GradScaler("cuda") if (amp_dtype == torch.float16 and device.type == "cuda") else None

        steps = int(cfg["steps"])
        step, loader_state, last_val = 0, None, {}
        ck = latest_checkpoint(out) if self.resume else None
        if ck is not None:
            model_state, tensors, meta = load_train_state(ck)
            raw = {k[4:]: v for k, v in tensors.items() if k.startswith("raw.")}
            model.load_state_dict(raw or model_state)
            if ema is not None and meta.get("extra", {}).get("ema_in_model"):
                ema.shadow = {k: v.to(device).clone() for k, v in model_state.items() if k in ema.shadow}
            restore_optimizer(opt, tensors, meta)
            if scaler is not None and meta.get("scaler"):
                scaler.load_state_dict(meta["scaler"])
            restore_rng(tensors, meta)
            rank_rng = tensors.get(f"rng.torch.rank{info.rank}")
            if rank_rng is not None:
                torch.set_rng_state(rank_rng.to(torch.uint8))
            step = int(meta["step"])
            loader_state = meta.get("loader")
            last_val = dict(meta.get("extra", {}).get("last_val", {}))
            model.to(device)
            if info.is_main:
                log.info("resumed %s at step %d", ck, step)
        start_step = step

        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        logger = MetricsLogger(out, enabled=info.is_main, tensorboard=self.tensorboard)
        per_rank = cfg["batch_size"] // info.world_size
        loader = task.train_loader(per_rank, seed, info.rank, info.world_size)
        batches = self._batches(loader, loader_state, step, seed)

        def save_ckpt(at: int) -> Path | None:
            rng_ranks = self._gather_rng(info)
            if not info.is_main:
                barrier(info)
                return None
            export = ema.state_dict_for(model) if ema is not None else model.state_dict()
            card = make_card(task.name, task.model_cfg, task.describe_data(), cfg, at, last_val)
            lstate = loader.state_dict() if hasattr(loader, "state_dict") else {"consumed": at}
            path = save_train_checkpoint(
                out, at, export, card, opt,
                raw_state=model.state_dict() if ema is not None else None,
                scaler_state=scaler.state_dict() if scaler is not None else None,
                loader_state=lstate,
                extra={"ema_in_model": ema is not None, "last_val": last_val,
                       "rng_ranks": sorted(rng_ranks)},
                keep=int(cfg.get("keep_checkpoints", 3)),
                rank_rng=rng_ranks,
            )
            barrier(info)
            return path

        def validate(at: int) -> dict[str, float]:
            nonlocal last_val
            res: dict[str, float] = {}
            if info.is_main:
                model.eval()
                ctx = ema.applied(model) if ema is not None else contextlib.nullcontext()
                t0 = time.perf_counter()
                with ctx, torch.no_grad():
                    res = {k: float(v) for k, v in task.validate(model).items()}
                res["val_seconds"] = round(time.perf_counter() - t0, 3)
                model.train()
                logger.log(at, res, split="val")
                last_val = res
            barrier(info)
            return res

        pbar = None
        if self.progress and info.is_main:
            from tqdm.auto import tqdm

            pbar = tqdm(total=steps, initial=step, desc=f"train {task.name}", dynamic_ncols=True)

        checkpoint: Path | None = None
        acc: dict[str, float] = defaultdict(float)
        cnt: dict[str, int] = defaultdict(int)
        n_acc = 0
        t_win = time.perf_counter()
        stopped = False
        try:
            with _StopFlag() as stop:
                if cfg.get("val_at_start") and step == 0:
                    validate(0)
                model.train()
                while step < steps:
                    batch = task.batch_to(next(batches), device)
                    progress = step / steps
                    f = lr_factor(step, steps, cfg["schedule"])
                    for g, base in zip(opt.param_groups, base_lrs):
                        g["lr"] = base * f
                    autocast = (torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype is not None
                                else contextlib.nullcontext())
                    with autocast:
                        loss, logs = task.loss(model, batch, progress)
                    if not torch.isfinite(loss.detach()):
                        raise PrefstyleError(f"training diverged: loss is {loss.item()} at step {step} "
                                             "(lower optim.lr, or set grad_clip)")
                    opt.zero_grad(set_to_none=True)
                    (scaler.scale(loss) if scaler is not None else loss).backward()
                    all_reduce_gradients(params, info)
                    if scaler is not None:
                        scaler.unscale_(opt)
                    gnorm = None
                    if cfg.get("grad_clip"):
                        with_grad = [p for p in params if p.grad is not None]
                        if with_grad:
                            gnorm = float(torch.nn.utils.clip_grad_norm_(with_grad, float(cfg["grad_clip"])))
                    if scaler is not None:
                        scaler.step(opt)
                        scaler.update()
                    else:
                        opt.step()
                    broadcast_buffers(model, info)
                    if ema is not None:
                        ema.update(model, step)
                    step += 1

                    vals = {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}
                    if gnorm is not None:
                        vals["grad_norm"] = gnorm
                    for k, v in vals.items():
                        acc[k] += v
                        cnt[k] += 1
                    n_acc += 1
                    if pbar is not None:
                        pbar.update(1)
                        pbar.set_postfix(loss=f"{float(loss.detach()):.4f}", refresh=False)
                    if step % max(1, int(cfg["log_every"])) == 0 or step == steps:
                        now = time.perf_counter()
                        rec = {k: v / cnt[k] for k, v in acc.items()}
                        rec["lr"] = opt.param_groups[0]["lr"]
                        rec["steps_per_s"] = n_acc / max(1e-9, now - t_win)
                        logger.log(step, rec)
                        acc.clear()
                        cnt.clear()
                        n_acc, t_win = 0, now
                    if int(cfg["val_every"]) > 0 and step % int(cfg["val_every"]) == 0 and step < steps:
                        validate(step)
                    halt = stop.requested or (self.stop_after is not None and step - start_step >= self.stop_after)
                    halt = self._any(halt, info, device)
                    if halt and step < steps:
                        checkpoint = save_ckpt(step)
                        stopped = True
                        break
                    if int(cfg["ckpt_every"]) > 0 and step % int(cfg["ckpt_every"]) == 0 and step < steps:
                        checkpoint = save_ckpt(step)
        finally:
            if pbar is not None:
                pbar.close()

        if info.enabled:
            diff = self._replica_difference(model, info, device)
            logger.log(step, {"replica_max_abs_diff": diff, "world_size": info.world_size}, split="ddp")
        model_path = None
        if not stopped:
            validate(step)
            checkpoint = save_ckpt(step)
            if info.is_main:
                export = ema.state_dict_for(model) if ema is not None else model.state_dict()
                card = make_card(task.name, task.model_cfg, task.describe_data(), cfg, step, last_val)
                model_path = save_model(out, export, card)
            barrier(info)
        logger.close()
        return TrainResult(out=out, step=step, steps=steps, finished=not stopped, metrics=dict(last_val),
                           checkpoint=checkpoint, model_path=model_path, seconds=time.perf_counter() - t_start)

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
            flat = torch.cat([t.detach().float().reshape(-1) for t in
                              list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]])
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
        return {r: g for r, g in enumerate(gathered)}

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
