"""`prefstyle export-preset --profile P --format xmp|dtstyle|pp3 --out FILE [--force]`.

The taste as a preset a photographer's raw editor opens: an Adobe Camera Raw / Lightroom
preset, a darktable style or a RawTherapee processing profile (:mod:`prefstyle.imaging.presets`,
docs/PRESETS.md). Only tastes that are a slider edit (the model's ``slider_edit``) can be
written; any taste can be exported as a ``.cube`` with ``export-lut``. ``sliders`` and ``looks``
profiles are written without importing torch (:func:`_export_torch_free`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prefstyle.errors import PrefstyleError

__all__ = ["export_preset"]


def export_preset(
    profile: Annotated[Path, typer.Option("--profile", help="profile written by `prefstyle personalize`")],
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="xmp (Lightroom / Camera Raw), dtstyle (darktable) or pp3 (RawTherapee)"),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="preset file to write")],
    model: Annotated[
        str | None, typer.Option("--model", help="model name or checkpoint path [default: the profile's]")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="the preset's name [default: from --out]")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing output")] = False,
) -> None:
    """Export the profile's taste as a raw editor's preset (slider tastes only)."""
    from prefstyle.cli.personalize_cmd import load_profile_and_model
    from prefstyle.fsutil import atomic_write_text
    from prefstyle.imaging.presets import FORMATS, SLIDERS, preset_text

    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise PrefstyleError(f"unknown preset format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if out.suffix.lower() != FORMATS[fmt]:
        raise PrefstyleError(f"a {fmt} preset must be written to a {FORMATS[fmt]} file", path=out)
    if out.is_dir():
        raise PrefstyleError("is a folder; give the preset's file name", path=out)
    if out.exists() and not force:
        raise PrefstyleError("output exists (pass --force to overwrite)", path=out)
    from prefstyle.fsutil import check_writable

    check_writable(out)  # a file where its folder should be, a read-only folder: one line, before any work
    if model is None and _export_torch_free(profile, fmt, out, name):
        return
    prof, m = load_profile_and_model(profile, model)
    edit = m.slider_edit(prof)
    if edit is None:
        raise PrefstyleError(
            f"the taste of model '{m.name}' is not a slider edit, so no editor preset can hold it; "
            "export it as a 3D LUT with `prefstyle export-lut`",
            path=profile,
        )
    params, gain = edit
    text, notes = preset_text(fmt, params, gain, name or out.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    sliders = ", ".join(f"{k} {getattr(params, k):+.2f}" for k in SLIDERS)
    typer.echo(f"{m.name}: {fmt} preset of {prof.user or 'the profile'} written to {out} ({sliders})", err=True)
    for note in [*m.preset_notes(prof), *notes]:
        typer.echo(f"note: {note}", err=True)


def _export_torch_free(profile: Path, fmt: str, out: Path, name: str | None) -> bool:
    """Write the preset of a ``sliders`` profile (its sliders are the profile's own) or a ``looks``
    profile (the slider edit closest to its look, fitted with numpy) without torch; False for any
    other profile (the caller then loads the model)."""
    from prefstyle.cli.personalize_cmd import torch_free_profile
    from prefstyle.fsutil import atomic_write_text
    from prefstyle.imaging.presets import SLIDERS, preset_text
    from prefstyle.models.lut_forms import LutProfile, SliderLutProfile

    form = torch_free_profile(profile)
    model_notes: list[str] = []
    if isinstance(form, SliderLutProfile):
        params, gain = form.slider_edit()  # a slider taste's preset holds it exactly: no model notes
    elif isinstance(form, LutProfile):
        from prefstyle.models.slider_fit_np import closest_slider_edit, look_preset_notes

        params, err = closest_slider_edit(form.look)
        gain, model_notes = form.gain, look_preset_notes(err)
    else:
        return False
    text, notes = preset_text(fmt, params, gain, name or out.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    sliders = ", ".join(f"{k} {getattr(params, k):+.2f}" for k in SLIDERS)
    typer.echo(f"{form.model}: {fmt} preset of {form.user or 'the profile'} written to {out} ({sliders})", err=True)
    for note in [*model_notes, *notes]:
        typer.echo(f"note: {note}", err=True)
    return True
