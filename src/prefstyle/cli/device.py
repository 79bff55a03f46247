"""``--device``: a torch device string checked before any work, in one line."""

from __future__ import annotations

from prefstyle.errors import PrefstyleError

__all__ = ["check_device"]


def check_device(device: str) -> None:
    """Refuse a ``--device`` torch cannot parse, or a GPU this machine does not have.

    ``"cpu"`` is accepted without importing torch (the torch-free paths stay torch-free).
    Raises :class:`~prefstyle.errors.PrefstyleError`.
    """
    if device == "cpu":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise PrefstyleError(f"--device {device!r}: choose cpu, cuda, cuda:N (a GPU's number) or mps")
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise PrefstyleError(f"--device {device}: no CUDA GPU is usable here; use --device cpu")
        if dev.index is not None and dev.index >= n:
            raise PrefstyleError(f"--device {device}: this machine has {n} CUDA GPU(s) (cuda:0 to cuda:{n - 1})")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise PrefstyleError(f"--device {device}: Apple's Metal (mps) is not available here; use --device cpu")
