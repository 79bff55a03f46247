"""Batch streams for tasks: :class:`~prefstyle.data.batches.SeededBatches` (re-exported here).

It lives in the data layer so that models' own training helpers can use it too.
"""

from prefstyle.data.batches import SeededBatches, step_generator

__all__ = ["SeededBatches", "step_generator"]
