"""`prefstyle styles`: list the style universe and apply a style to photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from prefstyle.cli.batch_io import collect_inputs, report_skipped
from prefstyle.cli.outputs import plan_outputs
from prefstyle.errors import PrefstyleError

app = typer.Typer(
    help="The style universe: the renditions users choose between.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: global styles are baked into a LUT of this size for images at least this large
LUT_SIZE = 33
LUT_MIN_PIXELS = 2_000_000
#: image-dependent global styles take their statistics from a copy this small
STATS_MAX_PIXELS = 1_000_000


@app.command("list")
def list_cmd(
    kind: Annotated[str | None, typer.Option("--kind", help="only this kind: preset, classical or camera")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines instead of a table")] = False,
) -> None:
    """List the named styles (presets, classical methods, camera profiles)."""
    from prefstyle.styles.registry import list_styles

    infos = list_styles(kind)
    if kind is not None and not infos:
        raise PrefstyleError(f"no styles of kind {kind!r}; kinds: preset, classical, camera")
    if as_json:
        for s in infos:
            typer.echo(json.dumps({"name": s.name, "kind": s.kind, "description": s.description}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="prefstyle styles")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("kind")
    table.add_column("description")
    for s in infos:
        table.add_row(s.name, s.kind, s.description)
    console = Console()
    console.print(table)
    console.print("Also: sample:SEED, camera:sample:SEED, lut:PATH (.cube or Hald image), a style JSON file.")


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PrefstyleError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _render(style: Any, x: Any, bit_depth: int = 16) -> Any:
    """Apply ``style`` to one ``(1,3,H,W)`` image; large images of global styles go through a LUT.

    8-bit images take Pillow's C LUT filter (several times faster on a CPU, within one level).
    """
    import torch

    h, w = x.shape[-2:]
    if not (style.is_global and h * w >= LUT_MIN_PIXELS):
        return style.apply(x)
    from prefstyle.imaging.lut import apply_lut

    ref = None
    if style.image_dependent:
        f = (STATS_MAX_PIXELS / (h * w)) ** 0.5
        ref = (
            torch.nn.functional.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="area")
            if f < 1
            else x
        )
    lut = style.to_lut(LUT_SIZE, image=ref).to(x.device, x.dtype)
    if bit_depth == 8 and x.device.type == "cpu":
        from prefstyle.imaging.lut import apply_lut_uint8

        u8 = x[0].permute(1, 2, 0).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).numpy()
        return torch.from_numpy(apply_lut_uint8(u8, lut)).permute(2, 0, 1)[None].to(x.dtype).div_(255)
    return apply_lut(x, lut).clamp_(0, 1)  # apply_lut works in bounded-memory chunks itself


@app.command("apply")
def apply_cmd(
    name: Annotated[
        str,
        typer.Argument(help="style name (see `prefstyle styles list`), sample:SEED, lut:PATH, or a style JSON file"),
    ],
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders (searched recursively)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (same file names as the inputs)")],
    strength: Annotated[float, typer.Option("--strength", help="0 = the input, 1 = the full style (up to 2)")] = 1.0,
    sets: Annotated[list[str] | None, typer.Option("--set", help="override a setting, KEY=VALUE (repeatable)")] = None,
    device: Annotated[str, typer.Option("--device", help="torch device to render on")] = "cpu",
    quality: Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG quality")] = 95,
    force: Annotated[bool, typer.Option("--force", help="overwrite outputs that already exist")] = False,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="keep outputs that already exist and do the rest (resume a batch)")
    ] = False,
) -> None:
    """Apply style NAME to INPUT images, writing into --out with the same file names.

    Bit depth, EXIF, ICC, alpha and grayscale are kept. Unreadable files are skipped with a
    one-line reason, and the command then exits with status 1. Existing outputs are an error
    unless --force (overwrite) or --skip-existing (keep them).
    """
    import torch
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from prefstyle.cli.device import check_device
    from prefstyle.imaging.io import read_image, write_like
    from prefstyle.styles.registry import get_style

    check_device(device)
    overrides = _parse_sets(sets or [])
    if strength != 1.0:
        overrides["strength"] = strength
    style = get_style(name, **overrides)
    jobs, failed = collect_inputs(inputs)
    jobs, kept = plan_outputs(jobs, inputs, out, force=force, skip_existing=skip_existing)
    for p, reason in failed:
        typer.echo(f"skipped {p}: {reason}", err=True)
    if kept:
        typer.echo(f"kept {len(kept)} existing output(s) in {out} (--skip-existing)", err=True)

    n_ok = 0
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        task = progress.add_task(f"{style.name}", total=len(jobs))
        for src, rel in jobs:
            try:
                data = read_image(src, keep_alpha=True)
                with torch.inference_mode():
                    x = data.pixels[None].to(device)
                    y = _render(style, x, data.bit_depth)[0].cpu()
                write_like(out / rel, y, data, quality=quality)
                n_ok += 1
            except (PrefstyleError, OSError, ValueError, MemoryError) as e:
                report_skipped(progress.console, failed, src, e)
            progress.advance(task)
    typer.echo(f"{style.name}: wrote {n_ok} of {n_ok + len(failed)} image(s) to {out}", err=True)
    if failed:
        raise typer.Exit(1)
