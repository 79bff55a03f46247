"""Input collection and full-resolution rendering shared by the batch commands (`styles apply`, `enhance`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prefstyle.imaging.raw import RAW_EXTENSIONS  # camera raw inputs are written as 16-bit .tif

if TYPE_CHECKING:
    import torch

    from prefstyle.imaging.io import ImageData
    from prefstyle.models.base import PersonalizationModel, Profile

__all__ = ["RAW_EXTENSIONS", "collect_inputs", "enhance_pixels", "output_name"]


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


def enhance_pixels(model: PersonalizationModel, profile: Profile, data: ImageData, strength: float = 1.0,
                   device: str = "cpu", lut_path: bool = True) -> torch.Tensor:
    """The retouched pixels ``(3,H,W)`` in [0,1] of a decoded image: :func:`prefstyle.models.render.render_image`
    (8-bit photos through the model's per-photo 3D LUT when it gives one, unless ``lut_path`` is False)."""
    from prefstyle.models.render import render_image

    return render_image(model, profile, data, strength=strength, lut_path=lut_path, device=device)
