"""What the benchmark scripts share: printing and writing a JSON result, and the plots' axes and saving."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


#: ``python -c CLI_CHILD ARGS...`` runs one ``prefstyle`` command and reports on stderr, last,
#: ``PEAK_RSS_KB <kB> TORCH <0|1>`` (peak resident memory, whether torch was imported): read it
#: with :func:`child_report`
CLI_CHILD = """
import sys
from prefstyle.cli import main
try:
    rc = main(sys.argv[1:])
finally:
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print("PEAK_RSS_KB", peak, "TORCH", int("torch" in sys.modules), file=sys.stderr)
sys.exit(rc)
"""


def scratch_dir(prefix: str) -> Path:
    """A new temporary folder that is removed when the benchmark exits (however it exits, short of
    SIGKILL); set ``PREFSTYLE_KEEP_SCRATCH=1`` to keep it for a look. Benchmarks write hundreds of MB
    of photos here, and a disk that fills up breaks the next install."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if not os.environ.get("PREFSTYLE_KEEP_SCRATCH"):
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def child_report(stderr: str) -> tuple[int, bool] | None:
    """``(peak RSS kB, torch imported)`` from a :data:`CLI_CHILD` run's stderr, or None if it has no report."""
    if "PEAK_RSS_KB" not in stderr:
        return None
    tail = stderr.rsplit("PEAK_RSS_KB", 1)[1].split()
    return int(tail[0]), tail[2] == "1"


def emit(result: dict[str, Any], out: str | Path | None, indent: int = 1, shown: dict[str, Any] | None = None) -> None:
    """Print ``shown`` (default: ``result``) as JSON and write ``result`` to ``out`` (folders made;
    written to a temporary name, then renamed, so an interrupted run leaves the old file)."""
    print(json.dumps(result if shown is None else shown, indent=indent))
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(result, indent=indent) + "\n")
        os.replace(tmp, path)


def answers_axes(ax: Any, ns: list[int], xlabel: str = "answers (N)") -> None:
    """The axes of a "distance to the ideal against the number of answers" plot: N on a log2 scale."""
    import matplotlib.ticker

    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(set(ns)))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean ΔE00 to the user's true ideal (lower is better)")
    ax.grid(alpha=0.3)


def save_figure(fig: Any, out: Path) -> Path:
    """Lay out, write (folders made) and print the path of a matplotlib figure."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(out)
    return out
