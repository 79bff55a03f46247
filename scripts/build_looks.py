#!/usr/bin/env python
"""Build prefstyle's packaged library of real looks (``src/prefstyle/assets/looks/``).

Every look comes from a published source whose licence allows redistribution; see
``docs/LOOKS.md`` (the data card) for each source's provenance, licence and exclusions. The
RawTherapee film-simulation HaldCLUT collection (Pat David et al.) and everything derived from
it are held back for evaluating the project from outside and are never read here.

Steps (each regenerates its output from scratch; the generated assets are committed)::

    # 1. bring the sources: Debian and npm packages, through apt-get / npm (the only network use)
    .venv/bin/python scripts/build_looks.py fetch --dir build/looks-src

    # 2. render the spectral film emulations with spectral-film-lut (MIT, PyPI). It needs its own
    #    environment (numpy 2.4, numba, colour-science), kept apart from prefstyle's:
    python3.11 -m venv build/sflenv
    build/sflenv/bin/pip install --no-deps spectral-film-lut==0.18.13
    build/sflenv/bin/pip install colour-science numba scipy matplotlib imageio networkx \
        opencv-python-headless
    build/sflenv/bin/python scripts/build_looks.py render-sfl --out build/looks-src/sfl.npz

    # 3. assemble the library (17^3 float16), the list of looks and the contact sheet
    .venv/bin/python scripts/build_looks.py build --dir build/looks-src
    .venv/bin/python scripts/build_looks.py sheet

``build`` skips a source whose files are missing (with a warning) and prints the count of looks
per family, so a partial rebuild is visible.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ASSET = ROOT / "src" / "prefstyle" / "assets" / "looks" / "looks.json"
LUT_SIZE = 17
# two tables closer than this everywhere (sRGB units) are one look: the later one is left out
DUPLICATE_TOL = 2.0 / 255

# Debian bookworm packages and npm packages the library is built from (name, version).
DEBS = {
    "digikam-data": "4:7.9.0-1",
    "kdenlive-data": "22.12.3-2+deb12u2",
    "rawtherapee-data": "5.9-1",
    "obs-studio": "29.0.2+dfsg-1+b1",
    "blender-data": "3.4.1+dfsg-2",
}
NPMS = {"instagram.css": "0.1.4", "cssgram": "0.1.3", "@silvia-odwyer/photon-node": "0.3.4"}
NPM_DIRS = {"instagram.css": "instagram.css", "cssgram": "cssgram", "@silvia-odwyer/photon-node": "photon"}
# Git repositories read at a fixed commit (``git --git-dir=... show``), mirrored under <dir>/mirrors/
MIRRORS = {
    "thejoltjoker+lightroom-workflow": (
        "https://github.com/thejoltjoker/lightroom-workflow",
        "09dc3810313329f92b8a3482c47ad7116454e05e",
    )
}
SFL_VERSION = "0.18.13"


# --------------------------------------------------------------------------------------
# shared numpy helpers (no torch: ``render-sfl`` runs in another environment)
# --------------------------------------------------------------------------------------


def grid_rgb(size: int) -> np.ndarray:
    """The identity cube's nodes as ``(S, S, S, 3)`` indexed ``[b, g, r]`` (project layout)."""
    t = np.linspace(0.0, 1.0, size)
    b, g, r = np.meshgrid(t, t, t, indexing="ij")
    return np.stack([r, g, b], axis=-1)


def to_project_layout(table_bgr_c: np.ndarray) -> np.ndarray:
    """``(S, S, S, 3)`` indexed ``[b, g, r, c]`` -> ``(3, S, S, S)`` ``lut[c, b, g, r]``."""
    return np.ascontiguousarray(np.transpose(table_bgr_c, (3, 0, 1, 2)), dtype=np.float32)


def srgb_decode(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_encode(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, None)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


# --------------------------------------------------------------------------------------
# fetch: Debian and npm packages
# --------------------------------------------------------------------------------------


def cmd_fetch(args: argparse.Namespace) -> None:
    out = Path(args.dir)
    (out / "debs").mkdir(parents=True, exist_ok=True)
    for name, version in DEBS.items():
        subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=out / "debs", check=True)
        deb = next((out / "debs").glob(f"{name}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(out / name)], check=True)
    (out / "npm").mkdir(exist_ok=True)
    for name, version in NPMS.items():
        subprocess.run(["npm", "pack", f"{name}@{version}"], cwd=out / "npm", check=True)
        tgz = out / "npm" / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
        (out / NPM_DIRS[name]).mkdir(exist_ok=True)
        subprocess.run(["tar", "xzf", str(tgz), "-C", str(out / NPM_DIRS[name])], check=True)
    # darktable's base-curve presets live in its source: the Debian source package's upstream tarball
    lists = out / "apt-src"
    (lists / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (lists / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (lists / "src.sources").write_text(
        "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    apt = [
        "apt-get",
        "-o",
        "Dir::Etc::sourcelist=/dev/null",
        "-o",
        f"Dir::Etc::sourceparts={lists}",
        "-o",
        f"Dir::State::lists={lists / 'lists'}",
        "-o",
        f"Dir::Cache={lists / 'cache'}",
    ]
    subprocess.run([*apt, "update"], check=True)
    subprocess.run([*apt, "source", "--download-only", f"darktable={DARKTABLE_DEB}"], cwd=out, check=False)
    subprocess.run(
        [
            "tar",
            "xJf",
            f"darktable_{DARKTABLE_VERSION}.orig.tar.xz",
            "--wildcards",
            "*/src/iop/basecurve.c",
            "*/LICENSE",
        ],
        cwd=out,
        check=True,
    )
    # OpenShot 3.4 (with its freshluts LUTs) is only in Debian sid
    sid = out / "apt-sid"
    (sid / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (sid / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (sid / "sid.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: sid\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    apt = [
        "apt-get",
        "-o",
        "Dir::Etc::sourcelist=/dev/null",
        "-o",
        f"Dir::Etc::sourceparts={sid}",
        "-o",
        f"Dir::State::lists={sid / 'lists'}",
        "-o",
        f"Dir::Cache={sid / 'cache'}",
    ]
    subprocess.run([*apt, "update"], check=True)
    subprocess.run([*apt, "download", f"openshot-qt={OPENSHOT_DEB}"], cwd=out / "debs", check=True)
    subprocess.run(
        ["dpkg", "-x", str(next((out / "debs").glob("openshot-qt_*.deb"))), str(out / "openshot-qt")], check=True
    )
    for name, (url, commit) in MIRRORS.items():
        dest = out / "mirrors" / name
        if not dest.exists():
            print(f"note: clone {url} (bare) to {dest} and check that it holds commit {commit}")
    print(f"sources in {out}")


# --------------------------------------------------------------------------------------
# render-sfl: film emulations from spectral datasheets (spectral-film-lut, MIT)
# --------------------------------------------------------------------------------------

# Print stocks each colour negative is printed on (a motion-picture print film and two papers).
SFL_PRINTS = (
    "Kodak Vision 2383",
    "Fuji Eterna-CP Type 3513DI",
    "Kodak Portra Endura Paper",
    "Fuji Crystal Archive DPII",
)
SFL_BW_PRINTS = ("Kodak 2302", "Kodak Polymax Fine-Art Paper Grade 2")
# Reversal films are projected as they are, and also printed on a reversal paper.
SFL_REVERSAL_PRINTS = (None, "Kodak Ektachrome Radiance III Paper")


def sfl_family(data) -> str:
    """Split unit of a spectral-film-lut look: stock maker and kind of film."""
    if data.density_measure == "bw":
        return "sfl-bw"
    if data.film_type == "positive":
        return "sfl-reversal"
    if data.manufacturer == "Kodak":
        return "sfl-kodak-cine" if data.medium == "cine" else "sfl-kodak-photo"
    return "sfl-fuji-agfa"


def cmd_render_sfl(args: argparse.Namespace) -> None:
    """Render every colour negative x ``SFL_PRINTS``, every reversal film (projected and printed) and the B&W negatives.

    Input transform: the LUT's input is display-referred sRGB; spectral-film-lut decodes it to
    linear sRGB (``input_colorspace="sRGB"`` with the sRGB decoding) and treats that as the
    scene; output is Rec. 709 primaries with the sRGB encoding, so the table maps sRGB to sRGB.
    Every other setting is the program's default (the stock's own colour masking, 6500 K).
    """
    from spectral_film_lut import FILM_STOCKS
    from spectral_film_lut.film_spectral import FilmSpectral
    from spectral_film_lut.utils import create_lut

    by_name = {}
    for s in FILM_STOCKS:
        by_name.setdefault(s.name, s)
    loaded: dict[str, object] = {}

    def load(name):
        if name not in loaded:
            f = FilmSpectral(by_name[name])
            f.set_color_checker()
            loaded[name] = f
        return loaded[name]

    reference = load("Kodak Vision3 250D 5207")
    jobs = []
    for s in by_name.values():
        if s.stage != "camera":
            continue
        if s.density_measure == "bw":
            jobs += [(s, p) for p in SFL_BW_PRINTS]
        elif s.film_type == "negative":
            jobs += [(s, p) for p in SFL_PRINTS]
        else:
            jobs += [(s, p) for p in SFL_REVERSAL_PRINTS]
    if args.limit:
        jobs = jobs[: args.limit]
    tables, meta = {}, []
    for i, (s, p) in enumerate(jobs, 1):
        neg = load(s.name)
        prt = load(p) if p else None
        try:
            tab = create_lut(
                neg,
                prt,
                lut_size=args.size,
                cube=False,
                input_colorspace="sRGB",
                output_gamut="Rec. 709",
                gamma_func="sRGB",
                color_masking=s.color_masking,
                reference_negative=reference,
            )
        except Exception as e:  # a stock the pipeline cannot render is left out, and said so
            print(f"[{i}/{len(jobs)}] skipped {s.name} / {p}: {e}", flush=True)
            continue
        tab = np.asarray(tab, dtype=np.float32)
        if not np.isfinite(tab).all():
            print(f"[{i}/{len(jobs)}] skipped {s.name} / {p}: non-finite table", flush=True)
            continue
        key = s.name if p is None else f"{s.name} on {p}"
        # create_lut's table is indexed [r, g, b, c]
        tables[key] = np.transpose(tab, (3, 2, 1, 0)).astype(np.float32)
        meta.append(
            {
                "key": key,
                "negative": s.name,
                "print": p,
                "family": sfl_family(s),
                "manufacturer": s.manufacturer,
                "film_type": s.film_type,
                "medium": s.medium,
            }
        )
        print(f"[{i}/{len(jobs)}] {key}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, meta=json.dumps(meta), **{f"t{i}": tables[m["key"]] for i, m in enumerate(meta)})
    print(f"{len(meta)} film emulations -> {out}")


# --------------------------------------------------------------------------------------
# render-blender: Blender's Filmic view and its contrast looks (OCIO config, Troy Sobotka; GPL-2+)
# --------------------------------------------------------------------------------------

BLENDER_LOOKS = (
    "Very High Contrast",
    "High Contrast",
    "Medium High Contrast",
    "Medium Contrast",
    "Medium Low Contrast",
    "Low Contrast",
    "Very Low Contrast",
)


def cmd_render_blender(args: argparse.Namespace) -> None:
    """Render sRGB -> (Blender's "sRGB" input: decoded to scene linear) -> Filmic view + look -> sRGB display.

    Needs PyOpenColorIO (``pip install opencolorio``, in the same side environment as
    ``render-sfl``). "Medium Contrast" is Filmic's base look (an empty transform).
    """
    import PyOpenColorIO as OCIO

    config = OCIO.Config.CreateFromFile(str(Path(args.config)))
    g = grid_rgb(args.size).reshape(-1, 3).astype(np.float32)
    tables, meta = {}, []
    for look in BLENDER_LOOKS:
        dvt = OCIO.DisplayViewTransform(src="sRGB", display="sRGB", view="Filmic")
        vp = OCIO.LegacyViewingPipeline()
        vp.setDisplayViewTransform(dvt)
        vp.setLooksOverrideEnabled(True)
        vp.setLooksOverride(look)
        cpu = vp.getProcessor(config).getDefaultCPUProcessor()
        buf = np.ascontiguousarray(g.copy())
        cpu.applyRGB(buf)
        tables[look] = to_project_layout(buf.reshape(args.size, args.size, args.size, 3))
        meta.append(look)
        print(f"  Filmic / {look}")
    out = Path(args.out)
    np.savez_compressed(out, meta=json.dumps(meta), **{f"t{i}": tables[m] for i, m in enumerate(meta)})
    print(f"{len(meta)} Filmic looks -> {out}")


# --------------------------------------------------------------------------------------
# render-photon: photon-rs filter presets (npm @silvia-odwyer/photon-node, Apache-2.0), run by node
# --------------------------------------------------------------------------------------

PHOTON_VERSION = "0.3.4"
PHOTON_NAMED = (
    "oceanic",
    "islands",
    "marine",
    "seagreen",
    "flagblue",
    "liquid",
    "diamante",
    "radio",
    "twenties",
    "rosetint",
    "mauve",
    "bluechrome",
    "vintage",
    "perfume",
    "serenity",
)
PHOTON_FUNCS = ("lofi", "pastel_pink", "golden", "cali", "dramatic", "firenze", "obsidian")

_PHOTON_JS = r"""
const photon = require(process.argv[2]);
const fs = require('fs');
const inp = JSON.parse(fs.readFileSync(process.argv[3]));
const out = {};
for (const job of inp.jobs) {
  for (const order of ['fwd', 'rev']) {
    const px = Uint8Array.from(order === 'fwd' ? inp.pixels : inp.reversed);
    const img = new photon.PhotonImage(px, inp.width, inp.height);
    if (job.kind === 'named') photon.filter(img, job.name); else photon[job.name](img);
    out[job.name + ':' + order] = Array.from(img.get_raw_pixels());
  }
}
fs.writeFileSync(process.argv[4], JSON.stringify(out));
"""


def cmd_render_photon(args: argparse.Namespace) -> None:
    """Run photon's preset filters on the 17^3 grid (8-bit RGBA) with node; keep the pointwise ones.

    Each filter also runs on the grid in reverse pixel order: a filter whose result depends on
    where a colour sits (or on its neighbours) is left out.
    """
    import tempfile

    pkg = Path(args.package).resolve()
    g = np.round(grid_rgb(args.size).reshape(-1, 3) * 255).astype(np.uint8)
    rgba = np.concatenate([g, np.full((len(g), 1), 255, np.uint8)], axis=1)
    jobs = [{"name": n, "kind": "named"} for n in PHOTON_NAMED] + [{"name": n, "kind": "func"} for n in PHOTON_FUNCS]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "run.js").write_text(_PHOTON_JS)
        (t / "in.json").write_text(
            json.dumps(
                {
                    "width": args.size,
                    "height": args.size**2,
                    "pixels": rgba.ravel().tolist(),
                    "reversed": rgba[::-1].ravel().tolist(),
                    "jobs": jobs,
                }
            )
        )
        subprocess.run(
            ["node", str(t / "run.js"), str(pkg / "photon_rs.js"), str(t / "in.json"), str(t / "out.json")], check=True
        )
        res = json.loads((t / "out.json").read_text())
    tables, meta = {}, []
    for job in jobs:
        fwd = np.array(res[job["name"] + ":fwd"], np.float32).reshape(-1, 4)[:, :3] / 255
        rev = np.array(res[job["name"] + ":rev"], np.float32).reshape(-1, 4)[::-1, :3] / 255
        if np.abs(fwd - rev).max() > 1.5 / 255:
            print(f"  photon {job['name']}: left out (not a per-pixel colour transform)")
            continue
        tables[job["name"]] = to_project_layout(fwd.reshape(args.size, args.size, args.size, 3))
        meta.append(job["name"])
    out = Path(args.out)
    np.savez_compressed(out, meta=json.dumps(meta), **{f"t{i}": tables[m] for i, m in enumerate(meta)})
    print(f"{len(meta)} photon filters -> {out}")


# --------------------------------------------------------------------------------------
# CSS photo filters (instagram.css, CSSgram): filter functions + solid blend overlays
# --------------------------------------------------------------------------------------

_LUMA = np.array([0.2126, 0.7152, 0.0722])


def _css_number(arg: str, unit_default: float = 1.0) -> float:
    arg = arg.strip()
    if arg.endswith("%"):
        return float(arg[:-1]) / 100.0
    if arg.endswith("deg"):
        return float(arg[:-3])
    if arg.endswith("turn"):
        return float(arg[:-4]) * 360.0
    if arg.endswith("rad"):
        return float(arg[:-3]) * 180.0 / np.pi
    return float(arg) if arg else unit_default


def _css_matrix(name: str, a: float) -> np.ndarray | None:
    """The W3C Filter Effects 1 colour matrices (filter functions in sRGB, as browsers apply them)."""
    if name == "grayscale":
        a = 1 - min(max(a, 0), 1)
        return np.array(
            [
                [0.2126 + 0.7874 * a, 0.7152 - 0.7152 * a, 0.0722 - 0.0722 * a],
                [0.2126 - 0.2126 * a, 0.7152 + 0.2848 * a, 0.0722 - 0.0722 * a],
                [0.2126 - 0.2126 * a, 0.7152 - 0.7152 * a, 0.0722 + 0.9278 * a],
            ]
        )
    if name == "sepia":
        a = 1 - min(max(a, 0), 1)
        return np.array(
            [
                [0.393 + 0.607 * a, 0.769 - 0.769 * a, 0.189 - 0.189 * a],
                [0.349 - 0.349 * a, 0.686 + 0.314 * a, 0.168 - 0.168 * a],
                [0.272 - 0.272 * a, 0.534 - 0.534 * a, 0.131 + 0.869 * a],
            ]
        )
    if name == "saturate":
        s = max(a, 0)
        return np.array(
            [
                [0.213 + 0.787 * s, 0.715 - 0.715 * s, 0.072 - 0.072 * s],
                [0.213 - 0.213 * s, 0.715 + 0.285 * s, 0.072 - 0.072 * s],
                [0.213 - 0.213 * s, 0.715 - 0.715 * s, 0.072 + 0.928 * s],
            ]
        )
    if name == "hue-rotate":
        c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
        return np.array(
            [
                [0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928],
                [0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.140, 0.072 - c * 0.072 - s * 0.283],
                [0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072],
            ]
        )
    return None


def css_filter(rgb: np.ndarray, chain: str) -> np.ndarray:
    """Apply a CSS ``filter`` value (``sepia(.5) contrast(1.1) ...``) to ``(N,3)`` sRGB in [0,1]."""
    for name, arg in re.findall(r"([a-z-]+)\(([^)]*)\)", chain):
        a = _css_number(arg)
        m = _css_matrix(name, a)
        if m is not None:
            rgb = rgb @ m.T
        elif name == "brightness":
            rgb = rgb * a
        elif name == "contrast":
            rgb = (rgb - 0.5) * a + 0.5
        elif name == "invert":
            rgb = a * (1 - rgb) + (1 - a) * rgb
        elif name in ("opacity", "blur", "drop-shadow"):
            continue  # no colour change on an opaque photo (blur is spatial and never used here)
        else:
            raise ValueError(f"unknown CSS filter function {name}()")
        rgb = np.clip(rgb, 0.0, 1.0)
    return rgb


def _lum(c):
    return c @ np.array([0.3, 0.59, 0.11])


def _clip_color(c):
    lum = _lum(c)[:, None]
    n = c.min(axis=1, keepdims=True)
    x = c.max(axis=1, keepdims=True)
    c = np.where(n < 0, lum + (c - lum) * lum / np.maximum(lum - n, 1e-9), c)
    return np.where(x > 1, lum + (c - lum) * (1 - lum) / np.maximum(x - lum, 1e-9), c)


def _set_lum(c, lum):
    return _clip_color(c + (lum - _lum(c))[:, None])


def _sat(c):
    return c.max(axis=1) - c.min(axis=1)


def _set_sat(c, s):
    mx, mn = c.max(axis=1, keepdims=True), c.min(axis=1, keepdims=True)
    rng = mx - mn
    out = np.where(rng > 1e-9, (c - mn) * s[:, None] / np.maximum(rng, 1e-9), 0.0)
    return out


def css_blend(cb: np.ndarray, cs: np.ndarray, mode: str) -> np.ndarray:
    """W3C Compositing 1 blend modes: backdrop ``cb`` ``(N,3)``, source colour ``cs`` ``(3,)``."""
    cs = np.broadcast_to(cs, cb.shape)
    if mode == "normal":
        return cs
    if mode == "multiply":
        return cb * cs
    if mode == "screen":
        return cb + cs - cb * cs
    if mode == "overlay":
        return css_blend(cs, cb, "hard-light")
    if mode == "darken":
        return np.minimum(cb, cs)
    if mode == "lighten":
        return np.maximum(cb, cs)
    if mode == "color-dodge":
        return np.where(cb == 0, 0.0, np.where(cs >= 1, 1.0, np.minimum(1.0, cb / np.maximum(1 - cs, 1e-9))))
    if mode == "color-burn":
        return np.where(cb >= 1, 1.0, np.where(cs <= 0, 0.0, 1 - np.minimum(1.0, (1 - cb) / np.maximum(cs, 1e-9))))
    if mode == "hard-light":
        return np.where(cs <= 0.5, cb * 2 * cs, css_blend(cb, 2 * cs - 1, "screen"))
    if mode == "soft-light":
        d = np.where(cb <= 0.25, ((16 * cb - 12) * cb + 4) * cb, np.sqrt(cb))
        return np.where(cs <= 0.5, cb - (1 - 2 * cs) * cb * (1 - cb), cb + (2 * cs - 1) * (d - cb))
    if mode == "difference":
        return np.abs(cb - cs)
    if mode == "exclusion":
        return cb + cs - 2 * cb * cs
    if mode == "hue":
        return _set_lum(_set_sat(cs, _sat(cb)), _lum(cb))
    if mode == "saturation":
        return _set_lum(_set_sat(cb, _sat(cs)), _lum(cb))
    if mode == "color":
        return _set_lum(cs, _lum(cb))
    if mode == "luminosity":
        return _set_lum(cb, _lum(cs))
    raise ValueError(f"unknown mix-blend-mode {mode}")


def _css_color(value: str) -> tuple[np.ndarray, float] | None:
    value = value.strip()
    m = re.fullmatch(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*([\d.]+)\s*)?\)", value)
    if m:
        return np.array([float(m[i]) for i in (1, 2, 3)]) / 255.0, float(m[4]) if m[4] else 1.0
    m = re.fullmatch(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})", value)
    if m:
        h = m[1] if len(m[1]) == 6 else "".join(ch * 2 for ch in m[1])
        return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)]) / 255.0, 1.0
    return None


def parse_css_filters(css: str, prefix: str = "") -> dict[str, dict]:
    """``{name: {"filter": str, "layers": [(pseudo, decls)], "spatial": bool}}`` from a stylesheet.

    A class ``.<prefix><name>`` with a ``filter`` declaration is a look; its ``::before`` /
    ``::after`` pseudo-elements are overlays composited on the photo (before, then after) before
    the filter applies to the whole element, as a browser does. Gradient overlays make a look
    spatial (a vignette or a sweep), which a 3D LUT cannot hold.
    """
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules: dict[tuple[str, str], dict[str, str]] = {}
    for sel_text, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        decls = {}
        for d in body.split(";"):
            if ":" in d:
                k, v = d.split(":", 1)
                decls[k.strip().lower()] = v.strip()
        for sel in sel_text.split(","):
            m = re.fullmatch(r"\s*\." + re.escape(prefix) + r"([\w-]+)\s*(?:::?(before|after))?\s*", sel)
            if m:
                rules.setdefault((m[1], m[2] or ""), {}).update(decls)
    looks = {}
    for (name, pseudo), decls in rules.items():
        if pseudo or "filter" not in decls:
            continue
        layers, spatial = [], False
        for ps in ("before", "after"):
            d = rules.get((name, ps), {})
            bg = d.get("background", d.get("background-color", ""))
            if not bg or bg in ("none", "transparent"):
                continue
            if "gradient" in bg:
                spatial = True
                continue
            layers.append((ps, d))
        looks[name] = {"filter": decls["filter"], "layers": layers, "spatial": spatial}
    return looks


def css_look(rgb: np.ndarray, spec: dict) -> np.ndarray:
    out = rgb.copy()
    for _, d in spec["layers"]:
        col = _css_color(d.get("background", d.get("background-color", "")))
        if col is None:
            raise ValueError(f"unsupported overlay background {d.get('background')!r}")
        cs, alpha = col
        alpha *= float(d.get("opacity", "1"))
        blended = np.clip(css_blend(out, cs, d.get("mix-blend-mode", "normal")), 0.0, 1.0)
        out = (1 - alpha) * out + alpha * blended
    return css_filter(out, spec["filter"])


# --------------------------------------------------------------------------------------
# build: every source -> one LookLibrary
# --------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _from_fn(fn) -> "object":
    """A 17^3 LUT from a numpy function of ``(N,3)`` sRGB in [0,1]."""
    import torch

    g = grid_rgb(LUT_SIZE)
    out = fn(g.reshape(-1, 3)).reshape(g.shape)
    return torch.from_numpy(to_project_layout(out))


def _resized(lut) -> "object":
    from prefstyle.imaging.lut import resize_lut

    return resize_lut(lut.float(), LUT_SIZE)


def source_digikam(src: Path):
    """digiKam's LUT3D filter tables (Debian digikam-data; GPL-2.0-or-later)."""
    from prefstyle.data.looks import Look
    from prefstyle.imaging.lut_tiles import read_lut_image

    folder = src / "digikam-data" / "usr/share/digikam/data/lut3d"
    for f in sorted(folder.glob("*.png")):
        if f.stem == "original":  # the identity table the filter starts from
            continue
        look = Look(
            name=f"digikam/{_slug(f.stem)}",
            family="digikam",
            kind="creative",
            source=f"Debian digikam-data {DEBS['digikam-data']}: /usr/share/digikam/data/lut3d/{f.name}",
            author="digiKam project (KDE)",
            license="GPL-2.0-or-later",
        )
        yield look, _resized(read_lut_image(f))


def source_kdenlive(src: Path):
    """Kdenlive's bundled .cube looks (Debian kdenlive-data; GPL-2.0-or-later)."""
    from prefstyle.data.looks import Look
    from prefstyle.imaging.lut import lut_from_function
    from prefstyle.imaging.lut_io import read_cube

    folder = src / "kdenlive-data" / "usr/share/kdenlive/luts"
    for f in sorted(folder.glob("*.cube")):
        cube = read_cube(f)  # DOMAIN and any 1D shaper are applied by CubeLUT.apply
        look = Look(
            name=f"kdenlive/{_slug(f.stem)}",
            family="kdenlive",
            kind="creative",
            source=f"Debian kdenlive-data {DEBS['kdenlive-data']}: /usr/share/kdenlive/luts/{f.name}",
            author="Kdenlive project (KDE)",
            license="GPL-2.0-or-later",
        )
        yield look, lut_from_function(lambda im, c=cube: c.apply(im), LUT_SIZE)


def source_obs(src: Path):
    """OBS Studio's bundled LUTs for its "Apply LUT" filter (Debian obs-studio; GPL-2.0-or-later)."""
    from prefstyle.data.looks import Look
    from prefstyle.imaging.lut import lut_from_function
    from prefstyle.imaging.lut_io import read_cube
    from prefstyle.imaging.lut_tiles import read_lut_image

    folder = src / "obs-studio" / "usr/share/obs/obs-plugins/obs-filters/LUTs"
    for f in sorted(folder.glob("*")):
        if f.stem == "original" or f.suffix not in (".png", ".cube"):
            continue
        if f.suffix == ".cube":
            cube = read_cube(f)
            lut = lut_from_function(lambda im, c=cube: c.apply(im), LUT_SIZE)
        else:
            lut = _resized(read_lut_image(f))
        look = Look(
            name=f"obs/{_slug(f.stem)}-{f.suffix[1:]}",
            family="obs",
            kind="creative",
            source=f"Debian obs-studio {DEBS['obs-studio']}: /usr/share/obs/obs-plugins/obs-filters/LUTs/{f.name}",
            author="OBS Studio contributors",
            license="GPL-2.0-or-later",
        )
        yield look, lut


def source_photon(src: Path):
    """photon-rs preset filters rendered by ``render-photon`` (npm @silvia-odwyer/photon-node, Apache-2.0)."""
    import torch

    from prefstyle.data.looks import Look

    data = np.load(src / "photon.npz")
    for i, name in enumerate(json.loads(str(data["meta"]))):
        look = Look(
            name=f"photon/{_slug(name)}",
            family="photon",
            kind="preset",
            source=f"npm @silvia-odwyer/photon-node {PHOTON_VERSION}: filter {name}",
            author="Silvia O'Dwyer (photon-rs)",
            license="Apache-2.0",
        )
        yield look, torch.from_numpy(data[f"t{i}"]).float()


def source_blender(src: Path):
    """Blender's Filmic contrast looks rendered by ``render-blender`` (Debian blender-data; GPL-2.0-or-later)."""
    import torch

    from prefstyle.data.looks import Look

    data = np.load(src / "blender.npz")
    for i, name in enumerate(json.loads(str(data["meta"]))):
        look = Look(
            name=f"blender-filmic/{_slug(name)}",
            family="blender-filmic",
            kind="creative",
            source=f"Debian blender-data {DEBS['blender-data']}: datafiles/colormanagement/config.ocio, "
            f"view Filmic, look {name} (sRGB decoded to scene linear, out to sRGB)",
            author="Troy James Sobotka (Filmic), Blender Foundation",
            license="GPL-2.0-or-later",
        )
        yield look, torch.from_numpy(data[f"t{i}"]).float()


# FFmpeg's curves presets (libavfilter vf_curves); the two inverting ones are not looks for a photo.
FFMPEG_CURVES = (
    "cross_process",
    "darker",
    "increase_contrast",
    "lighter",
    "linear_contrast",
    "medium_contrast",
    "strong_contrast",
    "vintage",
)


def source_ffmpeg(src: Path):
    """FFmpeg's ``curves`` filter presets, run by the Debian ``ffmpeg`` binary on a 16-bit grid image."""
    import tempfile

    import cv2
    import torch

    from prefstyle.data.looks import Look

    g = grid_rgb(LUT_SIZE)
    px = np.round(g.reshape(LUT_SIZE * LUT_SIZE, LUT_SIZE, 3) * 65535).astype(np.uint16)
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "ffmpeg"], capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "grid.png"
        cv2.imwrite(str(grid), px[..., ::-1])
        for preset in FFMPEG_CURVES:
            out = Path(tmp) / f"{preset}.png"
            subprocess.run(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-y",
                    "-i",
                    str(grid),
                    "-vf",
                    f"curves=preset={preset}",
                    "-pix_fmt",
                    "rgb48be",
                    str(out),
                ],
                check=True,
            )
            res = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float32) / 65535
            look = Look(
                name=f"ffmpeg-curves/{_slug(preset)}",
                family="ffmpeg-curves",
                kind="preset",
                source=f"Debian ffmpeg {version}: -vf curves=preset={preset} (libavfilter vf_curves)",
                author="FFmpeg developers (vf_curves)",
                license="LGPL-2.1-or-later",
            )
            yield look, torch.from_numpy(to_project_layout(res.reshape(LUT_SIZE, LUT_SIZE, LUT_SIZE, 3)))


DARKTABLE_VERSION = "4.2.1"
DARKTABLE_DEB = "4.2.1-4"


def parse_basecurve_presets(text: str) -> list[dict]:
    """The base-curve presets of darktable's ``src/iop/basecurve.c``: name, contributor, curve nodes.

    Reads the two preset tables (cameras measured by contributors, makers' "... like" curves);
    lines that are commented out are skipped. Each entry's first curve is the base curve (x, y).
    """
    names = dict(re.findall(r'static const char (\w+)\[\] = N_\("([^"]+)"\);', text))
    presets, contributor = [], ""
    for block in ("basecurve_camera_presets", "basecurve_presets"):
        body = text[text.index(f"{block}[] = {{") :]
        body = body[: body.index("\n};")]
        for line in body.split("\n")[1:]:
            stripped = line.strip()
            if stripped.startswith("//"):
                m = re.search(r"(?:by|contributed by)\s+(.+)$", stripped)
                contributor = m[1].split(" - ")[0].split(" (")[0].strip() if m else contributor
                continue
            m = re.match(r'\{\s*(?:"([^"]+)"|N_\("([^"]+)"\)|(\w+))\s*,', stripped)
            if not m:
                continue
            name = m[1] or m[2] or names.get(m[3], m[3])
            pts = re.findall(r"\{\s*([0-9.]+)\s*,\s*([0-9.]+)\s*\}", stripped)
            n = int(re.search(r"\}\s*\}\s*\}\s*,\s*\{\s*(\d+)\s*\}", stripped)[1])
            xy = np.array([(float(a), float(b)) for a, b in pts[:n]])
            presets.append(
                {
                    "name": name,
                    "contributor": contributor if block == "basecurve_camera_presets" else "",
                    "xy": xy,
                    "camera": block == "basecurve_camera_presets",
                }
            )
        contributor = ""  # a comment names the contributor of the entries below it, within one table
    return presets


def basecurve_look(rgb: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """sRGB -> linear -> base curve on luminance (darktable's "preserve colors: luminance") -> sRGB.

    As for the camera profiles, the input is scaled by the exposure that keeps mid grey fixed
    through the curve (raw data reaches a base curve about an EV darker than a display rendition).
    """
    from scipy.interpolate import PchipInterpolator

    curve = PchipInterpolator(xy[:, 0], xy[:, 1], extrapolate=True)
    xs = np.linspace(0, 1, 4097)
    k = np.interp(0.18, curve(xs), xs) / 0.18
    lin = srgb_decode(rgb) * k
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    ratio = np.where(y > 1e-6, curve(np.clip(y, 0, 1)) / np.maximum(y, 1e-6), curve(1e-6) / 1e-6)
    return srgb_encode(np.clip(lin * ratio[:, None], 0, None))


def source_darktable(src: Path):
    """darktable's base curves: tone curves measured from cameras' own JPEGs (GPL-3.0-or-later)."""
    from prefstyle.data.looks import Look

    path = src / f"darktable-{DARKTABLE_VERSION}" / "src/iop/basecurve.c"
    for p in parse_basecurve_presets(path.read_text(encoding="utf-8")):
        who = p["contributor"] or "darktable developers"
        look = Look(
            name=f"darktable-basecurve/{_slug(p['name'])}",
            family="darktable-basecurve",
            kind="camera",
            source=f"Debian source darktable {DARKTABLE_VERSION} (darktable_{DARKTABLE_VERSION}.orig.tar.xz): "
            f'src/iop/basecurve.c, preset "{p["name"]}"',
            author=who,
            license="GPL-3.0-or-later",
        )
        yield look, _from_fn(lambda rgb, xy=p["xy"]: basecurve_look(rgb, xy))


OPENSHOT_DEB = "3.4.0+dfsg1-2"  # Debian sid
OPENSHOT_COLORS = "usr/lib/python3/dist-packages/openshot_qt/colors"
# freshluts LUTs whose input is not display-referred Rec. 709 / sRGB: named for F-Log or HLG
# footage, or mapping mid grey (0.46) below 0.1 as a log-to-display LUT does.
OPENSHOT_LOG_INPUT = {
    "teal_cinema.cube": "made for F-Log footage ('Cinematic for Flog')",
    "teal_&_orange_cinema.cube": "made for F-Log footage ('TEAL-ORANGE for Flog')",
    "bold_red_cinema.cube": "made for HLG footage ('HLG BOSS')",
    "city_night_film.cube": "maps mid grey to 0.06: a log-input LUT",
    "cool_haze.cube": "maps mid grey to 0.03: a log-input LUT",
}
# authors with at least 3 LUTs are a family each; the others share "freshluts-other"
OPENSHOT_AUTHOR_FAMILIES = {"SHAAM WORX", "Alex Jordan", "Andy", "vannoeun", "tjtop"}


def source_openshot(src: Path):
    """freshluts.com LUTs (CC0, per author) as bundled in OpenShot 3.4 (Debian sid openshot-qt)."""
    from prefstyle.data.looks import Look
    from prefstyle.imaging.lut import lut_from_function
    from prefstyle.imaging.lut_io import read_cube

    root = src / "openshot-qt" / OPENSHOT_COLORS
    table = {}
    for line in (root / "AUTHORS.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 10 and cells[9].endswith(".cube"):
            table[cells[9]] = {"id": cells[1], "author": cells[2], "name": cells[3], "style": cells[7]}
    for f in sorted(root.glob("*/*.cube")):
        row = table.get(f.name)
        if row is None:
            print(f"  openshot {f.name}: left out (not in AUTHORS.md, no author or licence)")
            continue
        if f.name in OPENSHOT_LOG_INPUT:
            print(f"  openshot {f.name}: left out ({OPENSHOT_LOG_INPUT[f.name]})")
            continue
        author = row["author"]
        family = "freshluts-" + _slug(author) if author in OPENSHOT_AUTHOR_FAMILIES else "freshluts-other"
        cube = read_cube(f)  # DOMAIN and any shaper applied by CubeLUT.apply
        look = Look(
            name=f"{family}/{_slug(f.stem)}",
            family=family,
            kind="film" if row["style"].lower() == "film emulation" else "creative",
            source=f"Debian openshot-qt {OPENSHOT_DEB} (sid): {OPENSHOT_COLORS}/{f.parent.name}/{f.name} "
            f'(freshluts.com/luts/{row["id"]} "{row["name"]}")',
            author=author,
            license="CC0-1.0",
        )
        yield look, lut_from_function(lambda im, c=cube: c.apply(im), LUT_SIZE)


CSS_SOURCES = {
    # family: (package dir, stylesheet, class prefix, author, licence)
    "instagram-css": ("instagram.css", "package/dist/instagram.css", "filter-", "Yan Zhu (picturepan2)", "MIT"),
    "cssgram": ("cssgram", "package/source/css/cssgram.css", "", "Una Kravets", "MIT"),
}


def source_css(src: Path):
    """CSS photo filters (npm instagram.css, cssgram): filter chains + solid blend overlays."""
    from prefstyle.data.looks import Look

    for family, (pkg, sheet, prefix, author, lic) in CSS_SOURCES.items():
        path = src / pkg / sheet
        if not path.is_file():
            print(f"warning: {path} missing: family {family} skipped", file=sys.stderr)
            continue
        specs = parse_css_filters(path.read_text(encoding="utf-8"), prefix)
        for name, spec in sorted(specs.items()):
            if spec["spatial"]:
                print(f"  {family}/{name}: left out (gradient overlay: spatial, not a colour transform)")
                continue
            look = Look(
                name=f"{family}/{_slug(name)}",
                family=family,
                kind="preset",
                source=f"npm {pkg} {NPMS[pkg]}: {sheet.removeprefix('package/')} .{prefix}{name}",
                author=author,
                license=lic,
            )
            yield look, _from_fn(lambda rgb, sp=spec: css_look(rgb, sp))


def source_sfl(src: Path):
    """Film emulations rendered by ``render-sfl`` (spectral-film-lut, MIT)."""
    import torch

    from prefstyle.data.looks import Look

    path = src / "sfl.npz"
    data = np.load(path)
    for i, m in enumerate(json.loads(str(data["meta"]))):
        look = Look(
            name=f"{m['family']}/{_slug(m['key'])}",
            family=m["family"],
            kind="film",
            source=f"PyPI spectral-film-lut {SFL_VERSION}: {m['key']} (sRGB in, sRGB out, defaults)",
            author="Jan Lohse (spectral-film-lut), from the manufacturers' datasheets",
            license="MIT",
        )
        t = torch.from_numpy(data[f"t{i}"]).float()
        yield look, (t if t.shape[-1] == LUT_SIZE else _resized(t))


# --------------------------------------------------------------------------------------
# camera profiles: the look part (LookTable + tone curve) of RawTherapee's DCP profiles
# --------------------------------------------------------------------------------------

# sRGB (D65) linear -> XYZ D50 (Bradford), and ProPhoto linear -> XYZ D50
_SRGB_TO_XYZ50 = np.array(
    [[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169], [0.0139322, 0.0971045, 0.7141733]]
)
_PROPHOTO_TO_XYZ50 = np.array(
    [[0.7976749, 0.1351917, 0.0313534], [0.2880402, 0.7118741, 0.0000857], [0.0, 0.0, 0.8252100]]
)
_SRGB_TO_PROPHOTO = np.linalg.solve(_PROPHOTO_TO_XYZ50, _SRGB_TO_XYZ50)


def read_dcp_tags(path: Path) -> dict[int, object]:
    """The DNG camera profile tags of a ``.dcp`` file (a TIFF-like IFD): ``{tag: value}``."""
    import struct

    b = path.read_bytes()
    if b[:2] not in (b"II", b"MM"):
        raise ValueError(f"{path}: not a DNG camera profile")
    bo = "<" if b[:2] == b"II" else ">"
    off = struct.unpack(bo + "I", b[4:8])[0]
    n = struct.unpack(bo + "H", b[off : off + 2])[0]
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8, 11: 4, 12: 8}
    fmt = {3: "H", 4: "I", 9: "i", 11: "f", 12: "d"}
    out: dict[int, object] = {}
    for i in range(n):
        tag, typ, cnt, val = struct.unpack(bo + "HHII", b[off + 2 + 12 * i : off + 14 + 12 * i])
        size = sizes.get(typ, 1) * cnt
        data = b[off + 10 + 12 * i : off + 10 + 12 * i + size] if size <= 4 else b[val : val + size]
        if typ == 2:
            out[tag] = data.rstrip(b"\0").decode("latin1")
        elif typ in fmt:
            out[tag] = np.frombuffer(data, dtype=np.dtype(bo + fmt[typ]))
        elif typ in (5, 10):
            raw = np.frombuffer(data, dtype=np.dtype(bo + ("u4" if typ == 5 else "i4"))).astype(np.float64)
            out[tag] = raw[0::2] / raw[1::2]
    return out


def _rgb_to_hsv(rgb):
    mx, mn = rgb.max(axis=1), rgb.min(axis=1)
    d = mx - mn
    r, g, b = rgb.T
    safe = np.where(d > 0, d, 1.0)
    h = np.where(mx == r, (g - b) / safe, np.where(mx == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = np.where(d > 0, np.mod(h, 6.0), 0.0)
    s = np.where(mx > 0, d / np.where(mx > 0, mx, 1.0), 0.0)
    return h, s, mx


def _hsv_to_rgb(h, s, v):
    h = np.mod(h, 6.0)
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = [np.stack(c, axis=1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    out = np.zeros((len(h), 3))
    for k in range(6):
        out[i == k] = choices[k][i == k]
    return out


def _look_table(rgb, dims, data, srgb_value: bool):
    """DNG ProfileLookTable on ProPhoto linear ``rgb`` ``(N,3)``: hue shift, saturation and value scales."""
    nh, ns, nv = (int(x) for x in dims)
    table = data.reshape(nv, nh, ns, 3)  # value outermost, then hue, saturation innermost
    h, s, v = _rgb_to_hsv(rgb)
    vv = srgb_encode(np.clip(v, 0, 1)) if srgb_value else np.clip(v, 0, 1)
    hf = h * nh / 6.0
    h0 = np.floor(hf).astype(int) % nh
    h1 = (h0 + 1) % nh
    wh = hf - np.floor(hf)
    sf = np.clip(s, 0, 1) * (ns - 1)
    s0 = np.minimum(np.floor(sf).astype(int), ns - 1)
    s1 = np.minimum(s0 + 1, ns - 1)
    ws = sf - s0
    vf = vv * (nv - 1) if nv > 1 else np.zeros_like(vv)
    v0 = np.minimum(np.floor(vf).astype(int), nv - 1)
    v1 = np.minimum(v0 + 1, nv - 1)
    wv = vf - v0
    acc = np.zeros((len(h), 3))
    for vi, wvv in ((v0, 1 - wv), (v1, wv)):
        for hi, whh in ((h0, 1 - wh), (h1, wh)):
            for si, wss in ((s0, 1 - ws), (s1, ws)):
                acc += (wvv * whh * wss)[:, None] * table[vi, hi, si]
    h = h + acc[:, 0] * 6.0 / 360.0
    s = np.clip(s * acc[:, 1], 0, 1)
    if srgb_value:
        v = srgb_decode(np.clip(vv * acc[:, 2], 0, 1))
    else:
        v = v * acc[:, 2]
    return _hsv_to_rgb(h, s, v)


def _rgb_tone(rgb, xs, ys):
    """The DNG SDK's hue-preserving RGB tone curve: the curve on max and min, the middle channel interpolated."""
    rgb = np.clip(rgb, 0, 1)
    order = np.argsort(-rgb, axis=1)
    srt = np.take_along_axis(rgb, order, axis=1)
    hi, mid, lo = srt[:, 0], srt[:, 1], srt[:, 2]
    hi2, lo2 = np.interp(hi, xs, ys), np.interp(lo, xs, ys)
    rng = hi - lo
    mid2 = lo2 + (hi2 - lo2) * np.where(rng > 0, (mid - lo) / np.where(rng > 0, rng, 1), 0)
    out = np.empty_like(rgb)
    np.put_along_axis(out, order, np.stack([hi2, mid2, lo2], axis=1), axis=1)
    return out


def dcp_look(rgb, tags) -> np.ndarray:
    """sRGB -> linear -> ProPhoto -> LookTable -> tone curve -> sRGB (the profile's look, no raw calibration).

    A raw pipeline feeds the tone curve scene-linear data that sits about an EV darker than a
    display rendition (the curve lifts it back), so the input is first scaled by the exposure
    that makes the curve keep mid grey (0.18) where it is: the look keeps the curve's contrast,
    toe and shoulder and the table's colour, not an exposure offset.
    """
    lin = srgb_decode(rgb) @ _SRGB_TO_PROPHOTO.T
    if 50940 in tags:
        curve = np.asarray(tags[50940], dtype=np.float64).reshape(-1, 2)
        lin = lin * (np.interp(0.18, curve[:, 1], curve[:, 0]) / 0.18)
    if 50981 in tags and 50982 in tags:
        enc = tags.get(51108)
        lin = _look_table(
            lin, tags[50981], np.asarray(tags[50982], dtype=np.float64), srgb_value=enc is not None and int(enc[0]) == 1
        )
    if 50940 in tags:
        curve = np.asarray(tags[50940], dtype=np.float64).reshape(-1, 2)
        lin = _rgb_tone(lin, curve[:, 0], curve[:, 1])
    return srgb_encode(np.clip(lin @ np.linalg.inv(_SRGB_TO_PROPHOTO).T, 0, None))


def source_dcp(src: Path):
    """Camera renderings: the LookTable and tone curve of RawTherapee's camera profiles (rawtherapee-data)."""
    from prefstyle.data.looks import Look

    folder = src / "rawtherapee-data" / "usr/share/rawtherapee/dcpprofiles"
    for f in sorted(folder.glob("*.dcp")):
        tags = read_dcp_tags(f)
        if 50981 not in tags and 50940 not in tags:
            continue  # a colour calibration only: no look
        note = str(tags.get(50942, "")).strip()
        low = note.lower()
        if low == "public domain":
            lic = "public-domain"
        elif "cc0" in low:
            lic = "CC0-1.0"
        elif low in ("", "rawtherapee") or "maciej dworak" in low:
            lic = "GPL-3.0-or-later"  # contributed to and distributed with RawTherapee
        else:
            print(f"  camera {f.stem}: left out (its own copyright notice: {note!r})")
            continue
        family = "rawtherapee-camera"  # one author and a handful of distinct looks across makers
        author = note.replace("Copyright", "").strip() if "dworak" in low else "RawTherapee contributors"
        look = Look(
            name=f"{family}/{_slug(f.stem)}",
            family=family,
            kind="camera",
            source=f"Debian rawtherapee-data {DEBS['rawtherapee-data']}: "
            f"/usr/share/rawtherapee/dcpprofiles/{f.name} "
            "(LookTable + ProfileToneCurve, in ProPhoto linear)",
            author=author,
            license=lic,
        )
        yield look, _from_fn(lambda rgb, t=tags: dcp_look(rgb, t))


# --------------------------------------------------------------------------------------
# Lightroom / Camera Raw presets (.xmp), rendered through prefstyle's RetouchParams pipeline
# --------------------------------------------------------------------------------------

LR_BANDS = ("Red", "Orange", "Yellow", "Green", "Aqua", "Blue", "Purple", "Magenta")


def read_xmp_settings(path: Path) -> dict[str, object]:
    """The ``crs:`` settings of a Camera Raw preset: scalars as strings, point curves as ``[(x, y)]``."""
    import xml.etree.ElementTree as ET

    ns = {"crs": "http://ns.adobe.com/camera-raw-settings/1.0/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
    root = ET.parse(path).getroot()
    out: dict[str, object] = {}
    crs = "{" + ns["crs"] + "}"
    for desc in root.iter("{" + ns["rdf"] + "}Description"):
        for k, v in desc.attrib.items():
            if k.startswith(crs):
                out[k[len(crs) :]] = v
        for child in desc:
            if child.tag.startswith(crs) and child.tag[len(crs) :].startswith("ToneCurvePV2012"):
                pts = [li.text for li in child.iter("{" + ns["rdf"] + "}li") if li.text]
                out[child.tag[len(crs) :]] = [tuple(float(t) for t in p.split(",")) for p in pts]
    return out


def _num(st: dict, key: str, default: float = 0.0) -> float:
    try:
        return float(str(st.get(key, default)).replace("+", ""))
    except ValueError:
        return default


def _clip1(v: float) -> float:
    return float(min(max(v, -1.0), 1.0))


def lr_params(st: dict):
    """``(tone, colour)`` RetouchParams for a Camera Raw preset (process 2012+ sliders, /100 scale).

    White balance: a ``Custom`` Kelvin value is read relative to daylight (5500 K) in mired, an
    approximation since the shot's own white balance is unknown; ``Incremental*`` (JPEG) values
    are used as they are.
    """
    from prefstyle.imaging.params import RetouchParams

    temp = 0.0
    if "IncrementalTemperature" in st:
        temp = _num(st, "IncrementalTemperature") / 100
    elif st.get("WhiteBalance") == "Custom" and "Temperature" in st:
        temp = (1e6 / 5500 - 1e6 / max(_num(st, "Temperature", 5500), 1000)) / 150
    tint = 0.0
    if st.get("WhiteBalance") == "Custom" or "IncrementalTint" in st:
        tint = _num(st, "IncrementalTint", _num(st, "Tint")) / 150
    tone = RetouchParams(
        temperature=_clip1(temp),
        tint=_clip1(tint),
        exposure=float(min(max(_num(st, "Exposure2012"), -3), 3)),
        contrast=_clip1(_num(st, "Contrast2012") / 100),
        highlights=_clip1(_num(st, "Highlights2012") / 100),
        shadows=_clip1(_num(st, "Shadows2012") / 100),
        whites=_clip1(_num(st, "Whites2012") / 100),
        blacks=_clip1(_num(st, "Blacks2012") / 100),
    )
    grey = str(st.get("ConvertToGrayscale", "False")).lower() == "true"
    colour = RetouchParams(
        vibrance=_clip1(_num(st, "Vibrance") / 100),
        saturation=-1.0 if grey else _clip1(_num(st, "Saturation") / 100),
        hsl_hue=tuple(_clip1(_num(st, f"HueAdjustment{b}") / 100) for b in LR_BANDS),
        hsl_saturation=tuple(_clip1(_num(st, f"SaturationAdjustment{b}") / 100) for b in LR_BANDS),
        hsl_luminance=tuple(_clip1(_num(st, f"LuminanceAdjustment{b}") / 100) for b in LR_BANDS),
        split_shadow_hue=_num(st, "SplitToningShadowHue") % 360,
        split_shadow_sat=min(max(_num(st, "SplitToningShadowSaturation") / 100, 0), 1),
        split_highlight_hue=_num(st, "SplitToningHighlightHue") % 360,
        split_highlight_sat=min(max(_num(st, "SplitToningHighlightSaturation") / 100, 0), 1),
        split_balance=_clip1(_num(st, "SplitToningBalance") / 100),
    )
    return tone, colour


def _parametric(x: np.ndarray, st: dict) -> np.ndarray:
    """Lightroom's parametric curve, approximated: each region's slider (+-100) moves its part of
    the curve by up to a quarter of the range, with smooth windows split at the three splits."""
    splits = [
        0.0,
        _num(st, "ParametricShadowSplit", 25) / 100,
        _num(st, "ParametricMidtoneSplit", 50) / 100,
        _num(st, "ParametricHighlightSplit", 75) / 100,
        1.0,
    ]
    regions = ("ParametricShadows", "ParametricDarks", "ParametricLights", "ParametricHighlights")
    amounts = [_num(st, k) / 100 for k in regions]
    y = x.copy()
    for k, a in enumerate(amounts):
        if a == 0:
            continue
        lo, hi = splits[k], splits[k + 1]
        c, w = (lo + hi) / 2, max(hi - lo, 1e-3)
        y = y + 0.25 * a * np.exp(-(((x - c) / w) ** 2)) * x * (1 - x) * 4
    return np.clip(y, 0, 1)


def _point_curve(x: np.ndarray, pts) -> np.ndarray:
    from scipy.interpolate import PchipInterpolator

    pts = sorted(set((float(a) / 255, float(b) / 255) for a, b in pts))
    if len(pts) < 2:
        return x
    xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    return np.clip(PchipInterpolator(xs, ys, extrapolate=False)(np.clip(x, xs[0], xs[-1])), 0, 1)


def lr_look(img, st: dict):
    """``(1,3,H,W)`` sRGB -> tone sliders -> parametric + point curves (master, then R, G, B) -> colour sliders."""
    import torch

    from prefstyle.imaging.pipeline import apply_retouch

    tone, colour = lr_params(st)
    out = apply_retouch(img, tone, method="direct") if not tone.is_identity() else img
    a = out[0].permute(1, 2, 0).numpy().astype(np.float64)
    a = _parametric(a, st)
    if "ToneCurvePV2012" in st:
        a = _point_curve(a, st["ToneCurvePV2012"])
    for c, ch in enumerate(("Red", "Green", "Blue")):
        if f"ToneCurvePV2012{ch}" in st:
            a[..., c] = _point_curve(a[..., c], st[f"ToneCurvePV2012{ch}"])
    out = torch.from_numpy(a).float().permute(2, 0, 1)[None].contiguous()
    return apply_retouch(out, colour, method="direct") if not colour.is_identity() else out


LR_SOURCES = {
    # family: (mirror dir name, commit, folders, author, licence)
    "lr-thejoltjoker": (
        "thejoltjoker+lightroom-workflow",
        "09dc3810313329f92b8a3482c47ad7116454e05e",
        ("Settings/canon_toning", "Settings/sony_toning", "Settings/user_basic"),
        "Johannes Andersson (thejoltjoker)",
        "MPL-2.0",
    ),
}


def source_lightroom(src: Path):
    """Camera Raw presets from git mirrors (read at a fixed commit with ``git show``; no code is run)."""
    from prefstyle.data.looks import Look
    from prefstyle.imaging.lut import lut_from_function

    for family, (mirror, commit, folders, author, lic) in LR_SOURCES.items():
        git = Path(src) / "mirrors" / mirror
        if not git.exists():
            print(f"warning: {git} missing: family {family} skipped", file=sys.stderr)
            continue
        names = subprocess.run(
            ["git", f"--git-dir={git}", "ls-tree", "-r", "--name-only", commit, *folders],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        for name in sorted(n for n in names if n.endswith(".xmp")):
            tmp = src / "xmp-cache" / family / Path(name).name
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(
                subprocess.run(
                    ["git", f"--git-dir={git}", "show", f"{commit}:{name}"], capture_output=True, check=True
                ).stdout
            )
            st = read_xmp_settings(tmp)
            if str(st.get("PresetType", "Normal")) != "Normal":
                continue
            repo = mirror.replace("+", "/")
            look = Look(
                name=f"{family}/{_slug(Path(name).stem)}",
                family=family,
                kind="preset",
                source=f"github {repo}@{commit[:12]}: {name} (rendered with prefstyle RetouchParams)",
                author=author,
                license=lic,
            )
            yield look, lut_from_function(lambda im, s=st: lr_look(im, s), LUT_SIZE)


SOURCES = {
    "digikam": (source_digikam, "digikam-data"),
    # before Kdenlive: two of Kdenlive's LUTs are freshluts LUTs, which keep their author this way
    "openshot": (source_openshot, "openshot-qt"),
    "kdenlive": (source_kdenlive, "kdenlive-data"),
    "css": (source_css, "instagram.css"),
    "sfl": (source_sfl, "sfl.npz"),
    "camera": (source_dcp, "rawtherapee-data"),
    "lightroom": (source_lightroom, "mirrors"),
    "obs": (source_obs, "obs-studio"),
    "photon": (source_photon, "photon.npz"),
    "blender": (source_blender, "blender.npz"),
    "ffmpeg": (source_ffmpeg, "."),
    "darktable": (source_darktable, f"darktable-{DARKTABLE_VERSION}"),
}


def cmd_build(args: argparse.Namespace) -> None:
    import torch

    from prefstyle.data.looks import LookLibrary
    from prefstyle.imaging.lut import identity_lut

    src = Path(args.dir)
    looks, tables = [], []
    ident = identity_lut(LUT_SIZE)
    for key, (fn, needs) in SOURCES.items():
        if not (src / needs).exists():
            print(f"warning: {src / needs} missing: source {key} skipped", file=sys.stderr)
            continue
        for look, lut in fn(src):
            lut = lut.float()
            if not torch.isfinite(lut).all():
                print(f"  {look.name}: left out (non-finite table)")
                continue
            if (lut - ident).abs().max() < 1.0 / 255:
                print(f"  {look.name}: left out (identity)")
                continue
            dup = next(
                (lk.name for lk, t in zip(looks, tables, strict=True) if (t - lut).abs().max() < DUPLICATE_TOL), None
            )
            if dup is not None:
                print(f"  {look.name}: left out (same table as {dup})")
                continue
            looks.append(look)
            tables.append(lut)
    lib = LookLibrary(looks, torch.stack(tables))
    out = lib.save(Path(args.out))
    counts = Counter(lk.family for lk in looks)
    for fam, n in sorted(counts.items()):
        print(f"{fam:24s} {n:4d}  ({100 * n / len(looks):.1f} %)")
    print(f"{len(looks)} looks in {len(counts)} families -> {out}")
    if out.resolve() == ASSET.resolve():
        write_list(lib, ROOT / "docs" / "LOOKS_LIST.md")


def write_list(lib, path: Path) -> None:
    """docs/LOOKS_LIST.md: every look with its family, kind, licence and source."""
    from prefstyle.fsutil import atomic_write_text

    kinds = Counter(lk.kind for lk in lib.looks)
    lines = [
        "# Every look in the packaged library",
        "",
        f"Generated by `scripts/build_looks.py build`: {len(lib)} looks, {len(lib.families())} families "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}). Provenance and exclusions: "
        "[LOOKS.md](LOOKS.md).",
        "",
        "| # | name | family | kind | licence | source |",
        "| ---: | --- | --- | --- | --- | --- |",
    ]
    for i, lk in enumerate(lib.looks):
        lines.append(f"| {i} | `{lk.name}` | {lk.family} | {lk.kind} | {lk.license} | {lk.source} |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def cmd_sheet(args: argparse.Namespace) -> None:
    """docs/img/looks_sheet.png: up to ``--per-family`` looks of every family on one bundled photo."""
    import torch
    from PIL import Image, ImageDraw

    from prefstyle.data.looks import load_looks
    from prefstyle.data.photos import bundled_photos, working_copy

    lib = load_looks(args.library)
    photo = next(p for p in bundled_photos() if p.id == args.photo)
    img = working_copy(photo, max_side=args.thumb).pixels.float()[None]
    picks = [None]
    for fam in lib.families():
        idx = [i for i, lk in enumerate(lib.looks) if lk.family == fam]
        step = max(1, len(idx) // args.per_family)
        picks += idx[::step][: args.per_family]
    h, w = img.shape[-2:]
    cols = args.cols
    rows = -(-len(picks) // cols)
    label = 14
    sheet = Image.new("RGB", (cols * w, rows * (h + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(picks):
        out = img if i is None else lib.apply(i, img)
        arr = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        x, y = (k % cols) * w, (k // cols) * (h + label)
        sheet.paste(Image.fromarray(arr), (x, y))
        text = "input (no look)" if i is None else lib.looks[i].name
        draw.text((x + 2, y + h + 1), text[: w // 6], fill="black")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    print(f"{len(picks) - 1} looks of {len(lib.families())} families on {photo.id} -> {out}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fetch", help="download and unpack the Debian and npm packages")
    p.add_argument("--dir", default="build/looks-src")
    p.set_defaults(fn=cmd_fetch)
    p = sub.add_parser("render-sfl", help="render spectral-film-lut film emulations (own venv)")
    p.add_argument("--out", default="build/looks-src/sfl.npz")
    p.add_argument("--size", type=int, default=LUT_SIZE)
    p.add_argument("--limit", type=int, default=0, help="render only the first N (a smoke test)")
    p.set_defaults(fn=cmd_render_sfl)
    p = sub.add_parser("render-blender", help="render Blender's Filmic looks with OCIO (side venv)")
    p.add_argument(
        "--config", default="build/looks-src/blender-data/usr/share/blender/datafiles/colormanagement/config.ocio"
    )
    p.add_argument("--out", default="build/looks-src/blender.npz")
    p.add_argument("--size", type=int, default=LUT_SIZE)
    p.set_defaults(fn=cmd_render_blender)
    p = sub.add_parser("render-photon", help="render photon-rs filter presets with node")
    p.add_argument("--package", default="build/looks-src/photon/package")
    p.add_argument("--out", default="build/looks-src/photon.npz")
    p.add_argument("--size", type=int, default=LUT_SIZE)
    p.set_defaults(fn=cmd_render_photon)
    p = sub.add_parser("build", help="assemble the packaged library from the fetched sources")
    p.add_argument("--dir", default="build/looks-src")
    p.add_argument("--out", default=str(ASSET))
    p.set_defaults(fn=cmd_build)
    p = sub.add_parser("sheet", help="contact sheet of looks on a bundled photo")
    p.add_argument("--library", default=str(ASSET))
    p.add_argument("--photo", default="skimage/astronaut")
    p.add_argument("--out", default=str(ROOT / "docs" / "img" / "looks_sheet.png"))
    p.add_argument("--per-family", type=int, default=2)
    p.add_argument("--thumb", type=int, default=150)
    p.add_argument("--cols", type=int, default=9)
    p.set_defaults(fn=cmd_sheet)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
