"""What the study server's helper processes (render workers, the ranking process) do first."""

from __future__ import annotations

import os
import signal


def become_helper(nice: int, name: str) -> None:
    """Lower this process's CPU priority by ``nice`` (answers first: where CPU is short the kernel
    gives it to the server processes) and, on Linux, end it when its parent ends, also when the
    parent is killed with ``kill -9`` (``PR_SET_PDEATHSIG``): otherwise a crashed server leaves
    its helpers, each holding a model, behind. ``name`` (at most 15 bytes) is what ``ps`` and
    ``top`` show for it (``PR_SET_NAME``) instead of ``python``."""
    try:
        os.nice(nice)
    except OSError:
        pass
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]))  # 15 = PR_SET_NAME
    except (OSError, AttributeError):
        pass
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died while this process was starting
        os._exit(0)
