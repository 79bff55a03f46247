"""What the study server's helper processes (render workers, the ranking process) do first."""

from __future__ import annotations

import os
import signal


def become_helper(nice: int) -> None:
    """Lower this process's CPU priority by ``nice`` (answers first: where CPU is short the kernel
    gives it to the server processes) and, on Linux, end it when its parent ends, also when the
    parent is killed with ``kill -9`` (``PR_SET_PDEATHSIG``): otherwise a crashed server leaves
    its helpers, each holding a model, behind."""
    try:
        os.nice(nice)
    except OSError:
        pass
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died while this process was starting
        os._exit(0)
