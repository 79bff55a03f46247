"""Shared fixtures: small real photographs as tensors, so tests never need the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def _to_tensor(arr: np.ndarray, size: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div(255.0)[None]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="area").clamp(0, 1)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """prefstyle's cache (thumbnails, exported networks: ``PREFSTYLE_CACHE``) in a folder of this test
    session, never the user's ``~/.cache/prefstyle``; a test may point it elsewhere (monkeypatch).
    The LPIPS weights ``make setup`` put in the user's cache are linked in."""
    from prefstyle.fsutil import cache_root

    lpips = cache_root() / "lpips"
    private = tmp_path_factory.mktemp("prefstyle_cache")
    if lpips.is_dir():
        (private / "lpips").symlink_to(lpips.resolve(), target_is_directory=True)
    patch = pytest.MonkeyPatch()
    patch.setenv("PREFSTYLE_CACHE", str(private))
    yield
    patch.undo()


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): on a
    shared 2-core machine, two OpenMP threads of tiny ops spin-wait badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def astronaut_small() -> torch.Tensor:
    """skimage's astronaut photo as a (1,3,96,96) float tensor in [0,1]."""
    from skimage import data

    return _to_tensor(data.astronaut(), 96)


@pytest.fixture(scope="session")
def coffee_small() -> torch.Tensor:
    """skimage's coffee photo as a (1,3,96,96) float tensor in [0,1]."""
    from skimage import data

    return _to_tensor(data.coffee(), 96)
