"""Which code made a file: prefstyle's version and, in a git checkout, the commit.

Written into checkpoints' cards and simulated crowds' ground truth, so that a file made by other
code can be traced to it (and made again: ``git worktree add DIR COMMIT``).
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__all__ = ["git_commit", "made_by"]


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The source tree's git commit (with ``-dirty`` when it has uncommitted changes), or None."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


def made_by() -> dict[str, str | None]:
    """``{"prefstyle": version, "commit": git_commit()}``."""
    from prefstyle import __version__

    return {"prefstyle": __version__, "commit": git_commit()}
