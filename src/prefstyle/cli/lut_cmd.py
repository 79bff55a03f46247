"""`prefstyle lut ...`: apply a 3D LUT file to images, and convert between .cube and Hald CLUT."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prefstyle.errors import PrefstyleError

app = typer.Typer(help="3D LUT files: apply to images, convert between .cube and Hald CLUT.", no_args_is_help=True)

HALD_SUFFIXES = (".png", ".tif", ".tiff")


def _read_any(path: Path):
    """A ``CubeLUT`` from a .cube file or a Hald image."""
    from prefstyle.imaging.lut_io import CubeLUT, read_cube, read_hald

    if not path.is_file():
        raise PrefstyleError("LUT file not found", path=path)
    if path.suffix.lower() == ".cube":
        return read_cube(path)
    if path.suffix.lower() in HALD_SUFFIXES:
        return CubeLUT(title=path.stem, lut3d=read_hald(path))
    raise PrefstyleError("unknown LUT type (expected .cube or a Hald .png/.tif)", path=path)


@app.command("apply")
def apply_cmd(
    lut: Annotated[Path, typer.Argument(help="a .cube file or a Hald CLUT image")],
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders (searched recursively)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (same file names as the inputs)")],
    strength: Annotated[float, typer.Option("--strength", help="0 = the input, 1 = the full LUT")] = 1.0,
    quality: Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG quality")] = 95,
    force: Annotated[bool, typer.Option("--force", help="overwrite outputs that already exist")] = False,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="keep outputs that already exist and do the rest (resume a batch)")
    ] = False,
) -> None:
    """Apply a LUT to INPUT images (bit depth, EXIF, ICC, alpha and grayscale kept; bad files skipped, exit 1).

    Existing outputs are an error unless --force (overwrite) or --skip-existing (keep them).
    """
    from prefstyle.cli.styles_cmd import apply_cmd as styles_apply

    _read_any(lut)  # one clear error for a missing or malformed LUT before any image is touched
    styles_apply(
        f"lut:{lut}",
        inputs,
        out,
        strength=strength,
        sets=None,
        device="cpu",
        quality=quality,
        force=force,
        skip_existing=skip_existing,
    )


@app.command("convert")
def convert_cmd(
    src: Annotated[Path, typer.Argument(help="input: .cube or Hald image (.png/.tif)")],
    dst: Annotated[Path, typer.Argument(help="output: .cube or Hald image (.png/.tif); type chosen by extension")],
    size: Annotated[int | None, typer.Option("--size", help="cube size of the output .cube (resampled)")] = None,
    level: Annotated[int | None, typer.Option("--level", help="Hald level of the output image (2..16)")] = None,
    bits: Annotated[int, typer.Option("--bits", help="bit depth of a Hald output: 8 or 16")] = 16,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing output")] = False,
) -> None:
    """Convert a LUT between .cube and Hald CLUT (resampling when sizes differ)."""
    import torch

    from prefstyle.fsutil import check_writable
    from prefstyle.imaging.lut import identity_lut, resize_lut
    from prefstyle.imaging.lut_io import CUBE_3D_SIZE_RANGE, hald_level_for_size, write_cube, write_hald

    lo_size, hi_size = CUBE_3D_SIZE_RANGE
    if size is not None and not lo_size <= size <= hi_size:
        raise PrefstyleError(f"--size must be in {lo_size}..{hi_size}, got {size}")
    cube = _read_any(src)
    if dst.exists() and not force:
        raise PrefstyleError("output exists (pass --force to overwrite)", path=dst)
    if dst.resolve() == src.resolve():
        raise PrefstyleError("refusing to convert a file onto itself", path=dst)
    check_writable(dst)
    lut3d, lo, hi = cube.lut3d, cube.domain_min, cube.domain_max
    if cube.lut1d is not None:
        # Fold the 1D shaper (or a 1D-only file) into one 3D table by sampling the whole transform.
        n = size or (lut3d.shape[-1] if lut3d is not None else 33)
        lo, hi = cube.domain_1d()
        lo_t, hi_t = torch.tensor(lo).view(3, 1, 1, 1), torch.tensor(hi).view(3, 1, 1, 1)
        grid = identity_lut(n) * (hi_t - lo_t) + lo_t
        lut3d = cube.apply(grid.reshape(1, 3, n, n * n)).reshape(3, n, n, n)
    suffix = dst.suffix.lower()
    if suffix == ".cube":
        if size is not None and size != lut3d.shape[-1]:
            lut3d = resize_lut(lut3d, size)
        write_cube(dst, lut3d, title=cube.title or src.stem, domain_min=lo, domain_max=hi)
    elif suffix in HALD_SUFFIXES:
        if tuple(lo) != (0.0, 0.0, 0.0) or tuple(hi) != (1.0, 1.0, 1.0):
            raise PrefstyleError(f"a Hald CLUT covers inputs 0..1 only; this LUT's domain is {lo}..{hi}", path=src)
        if bits not in (8, 16):
            raise PrefstyleError(f"--bits must be 8 or 16, got {bits}")
        lvl = level or hald_level_for_size(lut3d.shape[-1]) or 8
        if not 2 <= lvl <= 16:
            raise PrefstyleError(f"--level must be in 2..16, got {lvl}")
        if lut3d.shape[-1] != lvl * lvl:
            lut3d = resize_lut(lut3d, lvl * lvl)
        write_hald(dst, lut3d, bits=bits)
    else:
        raise PrefstyleError("unknown output type (expected .cube, .png, .tif)", path=dst)
    typer.echo(f"wrote {dst} ({lut3d.shape[-1]}^3)")
