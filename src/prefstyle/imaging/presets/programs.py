"""Run the real editors on a preset: ``rawtherapee-cli`` and ``darktable-cli`` (for checks and benchmarks).

Both are optional system programs (Debian: ``rawtherapee``, ``darktable``); :func:`available`
says which are installed. Each call renders one image with one preset into a 16-bit PNG and
returns it as a ``(1, 3, H, W)`` float tensor of sRGB values in [0, 1].
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from prefstyle.errors import PrefstyleError

__all__ = ["available", "render_darktable", "render_darktable_style", "render_rawtherapee"]

_PROGRAMS = {"rawtherapee": "rawtherapee-cli", "darktable": "darktable-cli"}


def available() -> dict[str, str | None]:
    """``{"rawtherapee": path or None, "darktable": path or None}``."""
    return {k: shutil.which(v) for k, v in _PROGRAMS.items()}


def _read(path: Path) -> torch.Tensor:
    from prefstyle.imaging.io import read_image

    return read_image(path).pixels[None]


def render_rawtherapee(image: str | Path, pp3_text: str, timeout: float = 120.0) -> torch.Tensor:
    """``rawtherapee-cli -p profile.pp3 -o out.png -n -b16 -c image``; only the profile's tools change
    (no ``-d``: RawTherapee's neutral defaults underneath)."""
    exe = available()["rawtherapee"]
    if exe is None:
        raise PrefstyleError("rawtherapee-cli is not installed (Debian package 'rawtherapee')")
    with tempfile.TemporaryDirectory(prefix="prefstyle-rt-") as tmp:
        prof, out = Path(tmp) / "profile.pp3", Path(tmp) / "out.png"
        prof.write_text(pp3_text, encoding="utf-8")
        r = subprocess.run(
            [exe, "-a", "-q", "-p", str(prof), "-o", str(out), "-n", "-b16", "-Y", "-c", str(image)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if r.returncode != 0 or not out.exists():
            raise PrefstyleError(f"rawtherapee-cli failed: {(r.stderr or r.stdout).strip()[-300:]}", path=image)
        return _read(out)


def render_darktable(image: str | Path, xmp_text: str, timeout: float = 180.0) -> torch.Tensor:
    """``darktable-cli image sidecar.xmp out.png`` with a throw-away configuration and an in-memory library."""
    exe = available()["darktable"]
    if exe is None:
        raise PrefstyleError("darktable-cli is not installed (Debian package 'darktable')")
    with tempfile.TemporaryDirectory(prefix="prefstyle-dt-") as tmp:
        side, out = Path(tmp) / "sidecar.xmp", Path(tmp) / "out.png"
        side.write_text(xmp_text, encoding="utf-8")
        r = subprocess.run(
            [
                exe,
                str(image),
                str(side),
                str(out),
                "--core",
                "--configdir",
                str(Path(tmp) / "conf"),
                "--cachedir",
                str(Path(tmp) / "cache"),
                "--library",
                ":memory:",
                "--conf",
                "plugins/imageio/format/png/bpp=16",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if not out.exists():
            raise PrefstyleError(f"darktable-cli failed: {(r.stderr or r.stdout).strip()[-300:]}", path=image)
        return _read(out)


def render_darktable_style(image: str | Path, dtstyle_text: str, name: str, timeout: float = 180.0) -> torch.Tensor:
    """The ``.dtstyle`` file itself: imported by darktable (its Lua ``darktable.styles.import``) into a
    throw-away configuration, then ``darktable-cli image out.png --style NAME``."""
    exe = available()["darktable"]
    if exe is None:
        raise PrefstyleError("darktable-cli is not installed (Debian package 'darktable')")
    with tempfile.TemporaryDirectory(prefix="prefstyle-dts-") as tmp:
        style, out, conf = Path(tmp) / f"{name}.dtstyle", Path(tmp) / "out.png", Path(tmp) / "conf"
        style.write_text(dtstyle_text, encoding="utf-8")
        base = ["--core", "--configdir", str(conf), "--cachedir", str(Path(tmp) / "cache"), "--library", ":memory:"]
        lua = f"local dt = require 'darktable'; dt.styles.import({str(style)!r})"
        subprocess.run(
            [exe, str(image), str(Path(tmp) / "import.png"), *base, "--luacmd", lua],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        r = subprocess.run(
            [exe, str(image), str(out), "--style", name, *base, "--conf", "plugins/imageio/format/png/bpp=16"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if not out.exists():
            raise PrefstyleError(f"darktable-cli --style failed: {(r.stderr or r.stdout).strip()[-300:]}", path=image)
        return _read(out)
