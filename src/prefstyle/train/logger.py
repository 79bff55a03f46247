"""Training logs: a JSONL file always, TensorBoard as well when ``tensorboard`` is installed.

``OUT/metrics.jsonl`` gets one line per logged event: ``{"step", "split" ("train"|"val"),
"time" (seconds since the run started, across resumes as wall time of this process),
"wall" (ISO time), ...values}``. With the ``tensorboard`` package importable, the same values go
to ``OUT/tb/`` as scalars ``<split>/<name>``. Only rank 0 logs.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["MetricsLogger", "read_metrics", "tensorboard_available"]


def tensorboard_available() -> bool:
    """True when ``torch.utils.tensorboard`` can be used (the ``tensorboard`` package is installed)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or a broken install
        return False
    return True


class MetricsLogger:
    """Append metrics to ``out/metrics.jsonl`` (and TensorBoard when available)."""

    def __init__(self, out: str | Path, enabled: bool = True, tensorboard: bool | None = None):
        self.out = Path(out)
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self._writer = None
        self._fh = None
        if not enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.out / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        if tensorboard is None:
            tensorboard = tensorboard_available()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.out / "tb"))

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
        rec = {"step": int(step), "split": split, "time": round(time.perf_counter() - self.t0, 3),
               "wall": datetime.now(UTC).isoformat(timespec="seconds"), **clean}
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
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in recs if split is None or r.get("split") == split]
