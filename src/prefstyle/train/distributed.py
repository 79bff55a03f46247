"""Multi-process data-parallel training (``torchrun``): gloo on the CPU, NCCL on CUDA.

Launch with ``torchrun --nproc_per_node=N -m prefstyle.train CONFIG.yaml [overrides]`` (or
``prefstyle train`` under torchrun). Each process reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``
from the environment torchrun sets up.

The trainer does what ``DistributedDataParallel`` does, without wrapping the module (tasks call
any method of their module, not only ``forward``): the parameters and buffers start equal
(broadcast from rank 0), every step's gradients are averaged across processes in flat buckets
(``all_reduce``), and after the optimizer step the buffers (e.g. BatchNorm statistics) are
broadcast from rank 0, as DDP's ``broadcast_buffers`` does. Parameters that received no
gradient on any process keep ``grad=None`` (the optimizer skips them, as in a 1-process run);
a parameter with a gradient on some processes only gets zeros on the others before averaging.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "all_reduce_gradients",
    "barrier",
    "broadcast_buffers",
    "broadcast_module",
    "cleanup",
    "init_distributed",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, timeout=_dt.timedelta(minutes=30))
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def cleanup() -> None:
    """Leave the process group; all processes meet first, so none tears down its connections while
    a peer is still using them (gloo then aborts the process at exit: "terminate called without an
    active exception")."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except RuntimeError:  # a peer already failed: leave anyway
            pass
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_module(module: nn.Module, info: DistInfo) -> None:
    """Make every process's parameters and buffers equal to rank 0's."""
    if not info.enabled:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def broadcast_buffers(module: nn.Module, info: DistInfo) -> None:
    """Buffers (BatchNorm running statistics, ...) from rank 0 to all."""
    if not info.enabled:
        return
    with torch.no_grad():
        for b in module.buffers():
            dist.broadcast(b.data, src=0)


def all_reduce_gradients(params: list[nn.Parameter], info: DistInfo, bucket_mb: float = 25.0) -> None:
    """Average the gradients of ``params`` over all processes (see the module docstring)."""
    if not info.enabled or not params:
        return
    device = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    active = [p for p, h in zip(params, has.tolist()) if h > 0]
    for p in active:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    limit = int(bucket_mb * 1024 * 1024)
    bucket: list[torch.Tensor] = []
    size = 0

    def flush() -> None:
        nonlocal bucket, size
        if not bucket:
            return
        flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(info.world_size)
        offset = 0
        for g in bucket:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n
        bucket, size = [], 0

    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for p in active:
        grad = p.grad
        assert grad is not None  # set above for every active parameter
        by_dtype.setdefault(grad.dtype, []).append(grad)
    for grads in by_dtype.values():
        for g in grads:
            bucket.append(g)
            size += g.numel() * g.element_size()
            if size >= limit:
                flush()
        flush()
