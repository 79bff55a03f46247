"""`prefstyle export-lut --profile PROFILE --out STYLE.cube [--size 33]` (docs/FORMATS.md, section 2).

The user's taste as a ``.cube`` 3D LUT that darktable, DaVinci Resolve, ffmpeg's ``lut3d``
filter or ``prefstyle lut apply`` can use: the LUT that best reproduces the profile's model on
the bundled content pool (:func:`prefstyle.eval.lut_export.profile_to_lut`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prefstyle.errors import PrefstyleError

__all__ = ["export_lut"]


def export_lut(
    profile: Annotated[Path, typer.Option("--profile", help="profile written by `prefstyle personalize`")],
    out: Annotated[Path, typer.Option("--out", "-o", help=".cube file to write")],
    size: Annotated[int, typer.Option("--size", min=2, max=65, help="LUT nodes per axis")] = 33,
    model: Annotated[
        str | None, typer.Option("--model", help="model name or checkpoint path [default: the profile's]")
    ] = None,
    photos: Annotated[
        Path | None, typer.Option("--photos", help="fit on these photos (a folder) instead of the content pool")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing output")] = False,
) -> None:
    """Export the profile's taste as a .cube 3D LUT."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from prefstyle.cli.personalize_cmd import load_profile_and_model
    from prefstyle.eval.lut_export import default_images, profile_to_lut
    from prefstyle.imaging.lut_io import write_cube

    if out.suffix.lower() != ".cube":
        raise PrefstyleError("the output must be a .cube file", path=out)
    if out.exists() and not force:
        raise PrefstyleError("output exists (pass --force to overwrite)", path=out)
    from prefstyle.fsutil import check_writable

    check_writable(out)  # before minutes of fitting
    prof, m = load_profile_and_model(profile, model)
    with Console(stderr=True).status("reading the photos ..."):  # seconds the first time, then cached
        images = _folder_images(photos) if photos is not None else default_images()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(f"render ({m.name})", total=len(images))
        lut = profile_to_lut(m, prof, size=size, images=images, progress=lambda k, n: bar.update(task, completed=k))
    title = f"prefstyle {m.name} {prof.user or ''}".strip()
    write_cube(out, lut, title=title)
    typer.echo(
        f"{m.name}: {size}^3 LUT of {prof.user or 'the profile'} fitted on {len(images)} photo(s), written to {out}",
        err=True,
    )
    for note in m.export_notes(prof):  # what one global LUT cannot hold of this taste
        typer.echo(f"note: {note}", err=True)


def _folder_images(folder: Path, side: int = 192, limit: int = 200) -> list:
    """Up to ``limit`` photos of ``folder`` as ``(1,3,h,w)`` thumbnails with long side at most ``side``."""
    from prefstyle.imaging.io import list_images, load_image
    from prefstyle.imaging.resize import resize_long_side

    files = list_images([folder], recursive=True) if folder.is_dir() else []
    if not files:
        raise PrefstyleError("no images found", path=folder)
    out = []
    for f in files[:limit]:
        out.append(resize_long_side(load_image(f), side, mode="area"))
    return out
