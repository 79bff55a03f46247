"""`prefstyle export-lut --profile PROFILE --out STYLE.cube [--size 33]` (docs/FORMATS.md, section 2).

The user's taste as a ``.cube`` 3D LUT that darktable, DaVinci Resolve, ffmpeg's ``lut3d``
filter or ``prefstyle lut apply`` can use: the LUT that best reproduces the profile's model on
the bundled content pool (:func:`prefstyle.eval.lut_export.profile_to_lut`). A ``looks`` or
``sliders`` profile (or a PieNet profile whose network is cached, as for ``enhance``) with no
``--model`` and no ``--photos`` is exported without importing torch once the pool's thumbnails are
cached (:mod:`prefstyle.models.lut_export_np`; the first export
decodes them through the torch path and caches them).
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
    if out.suffix.lower() != ".cube":
        raise PrefstyleError("the output must be a .cube file", path=out)
    if out.exists() and not force:
        raise PrefstyleError("output exists (pass --force to overwrite)", path=out)
    from prefstyle.fsutil import check_writable

    check_writable(out)  # before minutes of fitting
    if model is None and photos is None and _export_torch_free(profile, out, size):
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from prefstyle.cli.personalize_cmd import load_profile_and_model
    from prefstyle.eval.lut_export import default_images, profile_to_lut
    from prefstyle.imaging.lut_io import write_cube

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


def _export_torch_free(profile: Path, out: Path, size: int) -> bool:
    """Export a LUT-form profile with numpy from the cached pool thumbnails; False when the profile
    or the cache does not allow it (the caller then takes the torch path, which says what is wrong)."""
    from prefstyle.cli.personalize_cmd import torch_free_enhance_form
    from prefstyle.fsutil import atomic_write_text
    from prefstyle.imaging.cube_text import cube_text_3d
    from prefstyle.models.lut_export_np import cached_photos_u8, export_notes, mean_lut

    form = torch_free_enhance_form(profile)
    photos = cached_photos_u8() if form is not None else None
    if form is None or not photos:
        return False
    lut = mean_lut(form, photos, size)
    atomic_write_text(out, cube_text_3d(lut, f"prefstyle {form.model} {form.user or ''}".strip()), encoding="utf-8")
    typer.echo(
        f"{form.model}: {size}^3 LUT of {form.user or 'the profile'} fitted on {len(photos)} photo(s), written to {out}",
        err=True,
    )
    for note in export_notes(form):
        typer.echo(f"note: {note}", err=True)
    return True


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
