"""Tiled lookup images: 3D LUTs stored as a grid of 2D slices (GPUImage / digiKam / OBS style).

An image of ``W x H`` pixels holds an ``n``-node LUT as ``n`` square tiles of ``n x n`` pixels,
laid out left to right, then top to bottom (``W / n`` tiles per row, ``W * H = n**3``). Tile
``k`` is the slice of blue node ``k``; inside a tile, column ``x`` is the red node and row ``y``
the green node. Common shapes: ``512 x 512`` (64 nodes, 8 x 8 tiles), ``256 x 16`` (16 nodes,
a strip of 16 tiles), ``64 x 64`` (16 nodes, 4 x 4 tiles).

A square image whose side is a cube (``729 x 729``) is both a possible tile grid and a Hald CLUT
(:func:`prefstyle.imaging.lut_io.read_hald`); :func:`read_lut_image` picks the reading whose
table is smoother.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from prefstyle.errors import InputFormatError

__all__ = ["read_lut_image", "read_tiled_lut", "tile_nodes", "tiles_to_lut"]


def tile_nodes(width: int, height: int) -> int | None:
    """The node count ``n`` of a ``width x height`` tiled lookup image, or None if none fits."""
    n = round((width * height) ** (1 / 3))
    for cand in (n - 1, n, n + 1):
        if cand >= 2 and cand**3 == width * height and width % cand == 0 and height % cand == 0:
            return cand
    return None


def tiles_to_lut(pixels: np.ndarray) -> Tensor:
    """``(H, W, 3)`` float pixels of a tiled lookup image -> ``(3, n, n, n)`` LUT ``lut[c, b, g, r]``."""
    h, w = pixels.shape[:2]
    n = tile_nodes(w, h)
    if n is None:
        raise ValueError(f"{w}x{h} is not a tiled lookup image")
    per_row = w // n
    # (tile_row, y, tile_col, x, c) -> (tile_row, tile_col, y, x, c) -> (b, g, r, c)
    t = pixels.reshape(h // n, n, per_row, n, 3).transpose(0, 2, 1, 3, 4).reshape(n, n, n, 3)
    return torch.from_numpy(np.ascontiguousarray(t.transpose(3, 0, 1, 2))).float()


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in ("RGB", "RGBA", "I;16", "I;16B"):
                im = im.convert("RGB")
            arr = np.asarray(im.convert("RGB") if im.mode == "RGBA" else im)
    except (UnidentifiedImageError, OSError) as e:
        raise InputFormatError(f"cannot decode the lookup image ({e})", path=path) from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputFormatError(f"a lookup image must be RGB, got shape {arr.shape}", path=path)
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    return arr.astype(np.float32) / scale


def read_tiled_lut(path: str | Path) -> Tensor:
    """Read a tiled lookup image: ``(3, n, n, n)`` float32 in [0, 1].

    Raises:
        InputFormatError: undecodable, not RGB, or no ``n`` with ``W * H = n**3`` fits.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    px = _pixels(path)
    h, w = px.shape[:2]
    if tile_nodes(w, h) is None:
        raise InputFormatError(f"{w}x{h} pixels is not a tiled lookup image (needs W*H = n^3)", path=path)
    return tiles_to_lut(px)


def _roughness(lut: Tensor) -> float:
    return float(sum(lut.diff(dim=d).abs().mean() for d in (1, 2, 3)))


def read_lut_image(path: str | Path) -> Tensor:
    """Read a lookup image that is a Hald CLUT or a tiled grid, whichever reading fits (and is smoother)."""
    from prefstyle.imaging.lut_io import read_hald

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    px = _pixels(path)
    h, w = px.shape[:2]
    options = []
    if tile_nodes(w, h) is not None:
        options.append(tiles_to_lut(px))
    level = round(w ** (1 / 3))
    if w == h and level**3 == w and 2 <= level <= 16:  # a Hald CLUT of that level
        try:
            options.append(read_hald(path))
        except InputFormatError:  # e.g. a greyscale image: only the tiled reading applies
            pass
    if not options:
        raise InputFormatError(f"{w}x{h} pixels is neither a Hald CLUT nor a tiled lookup image", path=path)
    return min(options, key=_roughness)
