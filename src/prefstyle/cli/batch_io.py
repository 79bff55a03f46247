"""Input collection shared by the batch commands (`styles apply`, `enhance`)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["RAW_EXTENSIONS", "collect_inputs", "output_name"]

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
