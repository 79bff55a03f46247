"""Input collection and full-resolution rendering shared by the batch commands (`styles apply`, `enhance`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["RAW_EXTENSIONS", "collect_inputs", "enhance_pixels", "output_name"]

RAW_EXTENSIONS = {".cr2", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2"}


def output_name(rel: Path) -> Path:
    """The output path for an input at ``rel``: same name, or ``.tif`` (RAW) / ``.png`` (unwritable formats)."""
    from prefstyle.imaging.io import WRITE_EXTENSIONS

    if rel.suffix.lower() in WRITE_EXTENSIONS:
        return rel
    return rel.with_suffix(".tif" if rel.suffix.lower() in RAW_EXTENSIONS else ".png")


def collect_inputs(inputs: list[Path]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """(input file, path relative to the output folder) pairs, and inputs that do not exist.

    Folders are searched recursively and their layout is kept.
    """
    from prefstyle.imaging.io import list_images

    jobs: list[tuple[Path, Path]] = []
    missing: list[tuple[Path, str]] = []
    for p in inputs:
        if p.is_dir():
            for f in list_images([p], recursive=True):
                jobs.append((f, output_name(f.relative_to(p))))
        elif p.exists():
            jobs.append((p, output_name(Path(p.name))))
        else:
            missing.append((p, "no such file or folder"))
    return jobs, missing


def enhance_pixels(model: Any, profile: Any, data: Any, strength: float = 1.0, device: str = "cpu",
                   lut_path: bool = True) -> Any:
    """The retouched pixels ``(3,H,W)`` in [0,1] of a decoded image (:class:`~prefstyle.imaging.io.ImageData`).

    ``strength`` in [0,1] blends towards the input (``x + s·(f(x) − x)``). Models that can give
    one 3D LUT per image (they have ``luts(img, profile)``: TasteLUT renders that way, PieNet
    fits one to its thumbnail rendering) take the fast path for 8-bit images on the CPU unless
    ``lut_path`` is False: the LUT is made from the image, blended with the identity by
    ``strength`` (the same blend, as trilinear interpolation is linear in the LUT) and applied
    by :func:`~prefstyle.imaging.lut.apply_lut_uint8`. Otherwise the model's ``render`` runs.
    """
    import torch

    from prefstyle.errors import PrefstyleError
    from prefstyle.imaging.lut import apply_lut_uint8, identity_lut

    x = data.pixels[None].to(device)
    luts = getattr(model, "luts", None)
    if lut_path and callable(luts) and data.bit_depth == 8 and x.device.type == "cpu":
        lut = luts(x, profile)[0].float()
        if strength < 1.0:
            ident = identity_lut(lut.shape[-1])
            lut = ident + strength * (lut - ident)
        u8 = data.rgb8
        if u8 is None:
            u8 = data.pixels.mul(255.0).add_(0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        y8 = apply_lut_uint8(u8, lut)
        return torch.from_numpy(y8).permute(2, 0, 1).float().div_(255.0)
    y = model.render(x, profile)
    if tuple(y.shape) != tuple(x.shape):
        raise PrefstyleError(f"model '{model.name}' returned shape {tuple(y.shape)} for {tuple(x.shape)}")
    if strength < 1.0:
        y = x + strength * (y - x)
    return y[0].clamp(0, 1).cpu()
