"""Resumable, rank-aware batch streams for tasks.

:class:`SeededBatches` is an infinite iterable whose batch number ``t`` is a pure function of
``(seed, t)``: the task's ``make(step, generator, n, part)`` draws every random decision of the
**global** batch of ``n = batch_size × world_size`` samples from ``generator`` (seeded with
``(seed, step)``) and materialises only the slice ``part`` that belongs to this rank. Hence

* ``--resume`` is exact: the stream's state is the step number (``state_dict()``);
* an N-process run sees the same global batches as a 1-process run with the same global batch,
  so the averaged gradients agree (up to floating-point summation order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["SeededBatches", "step_generator"]


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, step)`` (distinct streams per step)."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(step) * 7_919 + 12_345) % (2**63 - 1))
    return g


class SeededBatches:
    """Infinite batches ``make(step, generator, n_global, part)`` for one rank (see module doc)."""

    def __init__(
        self,
        make: Callable[[int, torch.Generator, int, slice], Any],
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad batch_size/rank/world_size: {batch_size}, {rank}, {world_size}")
        self.make, self.batch_size, self.seed = make, int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.step = 0

    def __iter__(self) -> Iterator[Any]:
        while True:
            n = self.batch_size * self.world_size
            part = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
            batch = self.make(self.step, step_generator(self.seed, self.step), n, part)
            self.step += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
