"""Training logs: a JSONL file always, TensorBoard as well when ``tensorboard`` is installed.

``OUT/metrics.jsonl`` gets one line per logged event: ``{"step", "split" ("train"|"val"),
"time" (seconds since the run started, across resumes as wall time of this process),
"wall" (ISO time), ...values}``. With the ``tensorboard`` package importable, the same values go
to ``OUT/tb/`` as scalars ``<split>/<name>``. Only rank 0 logs.

A run continues from its latest checkpoint: the steps a killed run logged after that
checkpoint are dropped when the logger starts (``metrics.jsonl`` keeps the records up to the
checkpoint's step; TensorBoard purges the later events), so a resumed run's logs have each
step once.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["MetricsLogger", "checkpoint_step", "read_metrics", "tensorboard_available", "truncate_metrics"]


def tensorboard_available() -> bool:
    """True when ``torch.utils.tensorboard`` can be used (the ``tensorboard`` package is installed)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or a broken install
        return False
    return True


def checkpoint_step(out: str | Path) -> int:
    """The step of the latest complete training checkpoint in run folder ``out`` (0 when none)."""
    from prefstyle.train.checkpoint import latest_checkpoint

    ck = latest_checkpoint(out)
    if ck is None:
        return 0
    try:
        return int(json.loads((ck / "train_state.json").read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError):
        digits = "".join(c for c in ck.name if c.isdigit())
        return int(digits) if digits else 0


def truncate_metrics(path: str | Path, last_step: int) -> int:
    """Keep the records of the JSONL ``path`` with ``step <= last_step`` (and drop a torn last
    line); returns how many were dropped. Rewritten atomically; nothing happens without a file."""
    from prefstyle.fsutil import atomic_write_text

    path = Path(path)
    if not path.is_file():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            step = int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            dropped += 1
            continue
        if step <= last_step:
            keep.append(line)
        else:
            dropped += 1
    if dropped:
        atomic_write_text(path, "".join(line + "\n" for line in keep))
    return dropped


class MetricsLogger:
    """Append metrics to ``out/metrics.jsonl`` (and TensorBoard when available).

    ``resume_step``: the step training goes on from; records of later steps (a killed run's)
    are dropped from ``metrics.jsonl`` and TensorBoard. None: the step of the latest
    checkpoint in ``out`` (0 when there is none: a fresh run keeps nothing).
    """

    def __init__(
        self, out: str | Path, enabled: bool = True, tensorboard: bool | None = None, resume_step: int | None = None
    ):
        self.out = Path(out)
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self._writer = None
        self._fh = None
        if not enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        step = checkpoint_step(self.out) if resume_step is None else int(resume_step)
        truncate_metrics(self.out / "metrics.jsonl", step)
        self._fh = open(self.out / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        if tensorboard is None:
            tensorboard = tensorboard_available()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # events at steps >= purge_step, written by a run killed after its last checkpoint, are dropped
            self._writer = SummaryWriter(log_dir=str(self.out / "tb"), purge_step=step + 1)

    @property
    def tensorboard(self) -> bool:
        return self._writer is not None

    def log(self, step: int, values: dict[str, Any], split: str = "train") -> None:
        if not self.enabled or self._fh is None:
            return
        clean: dict[str, Any] = {}
        for k, v in values.items():
            if isinstance(v, float) and not math.isfinite(v):
                clean[k] = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
            else:
                clean[k] = v
        rec = {
            "step": int(step),
            "split": split,
            "time": round(time.perf_counter() - self.t0, 3),
            "wall": datetime.now(UTC).isoformat(timespec="seconds"),
            **clean,
        }
        self._fh.write(json.dumps(rec) + "\n")
        self._fh.flush()
        if self._writer is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._writer.add_scalar(f"{split}/{k}", float(v), int(step))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_metrics(out: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """The records of ``out/metrics.jsonl`` (optionally of one split)."""
    path = Path(out) / "metrics.jsonl"
    if not path.is_file():
        return []
    recs = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip():
            try:
                recs.append(json.loads(line))
            except ValueError:  # a line torn by a kill
                continue
    return [r for r in recs if split is None or r.get("split") == split]
