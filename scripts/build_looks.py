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

# Debian bookworm packages and npm packages the library is built from (name, version).
DEBS = {
    "digikam-data": "4:7.9.0-1",
    "kdenlive-data": "22.12.3-2+deb12u2",
    "rawtherapee-data": "5.9-1",
}
NPMS = {"instagram.css": "0.1.4", "cssgram": "0.1.3"}
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
        tgz = next((out / "npm").glob(f"{name}-{version}.tgz"))
        (out / name).mkdir(exist_ok=True)
        subprocess.run(["tar", "xzf", str(tgz), "-C", str(out / name)], check=True)
    print(f"sources in {out}")


# --------------------------------------------------------------------------------------
# render-sfl: film emulations from spectral datasheets (spectral-film-lut, MIT)
# --------------------------------------------------------------------------------------

# Print stocks each colour negative is printed on (a motion-picture print film and two papers).
SFL_PRINTS = ("Kodak Vision 2383", "Kodak Portra Endura Paper", "Fuji Crystal Archive DPII")
SFL_BW_PRINTS = ("Kodak 2302", "Kodak Polymax Fine-Art Paper Grade 2")


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
    """Render every colour negative x ``SFL_PRINTS``, every reversal film and the B&W negatives.

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
            jobs.append((s, None))
    if args.limit:
        jobs = jobs[: args.limit]
    tables, meta = {}, []
    for i, (s, p) in enumerate(jobs, 1):
        neg = load(s.name)
        prt = load(p) if p else None
        try:
            tab = create_lut(
                neg, prt, lut_size=args.size, cube=False, input_colorspace="sRGB",
                output_gamut="Rec. 709", gamma_func="sRGB", color_masking=s.color_masking,
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
        meta.append({"key": key, "negative": s.name, "print": p, "family": sfl_family(s),
                     "manufacturer": s.manufacturer, "film_type": s.film_type, "medium": s.medium})
        print(f"[{i}/{len(jobs)}] {key}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, meta=json.dumps(meta), **{f"t{i}": tables[m["key"]] for i, m in enumerate(meta)})
    print(f"{len(meta)} film emulations -> {out}")


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
        return np.array([[0.2126 + 0.7874 * a, 0.7152 - 0.7152 * a, 0.0722 - 0.0722 * a],
                         [0.2126 - 0.2126 * a, 0.7152 + 0.2848 * a, 0.0722 - 0.0722 * a],
                         [0.2126 - 0.2126 * a, 0.7152 - 0.7152 * a, 0.0722 + 0.9278 * a]])
    if name == "sepia":
        a = 1 - min(max(a, 0), 1)
        return np.array([[0.393 + 0.607 * a, 0.769 - 0.769 * a, 0.189 - 0.189 * a],
                         [0.349 - 0.349 * a, 0.686 + 0.314 * a, 0.168 - 0.168 * a],
                         [0.272 - 0.272 * a, 0.534 - 0.534 * a, 0.131 + 0.869 * a]])
    if name == "saturate":
        s = max(a, 0)
        return np.array([[0.213 + 0.787 * s, 0.715 - 0.715 * s, 0.072 - 0.072 * s],
                         [0.213 - 0.213 * s, 0.715 + 0.285 * s, 0.072 - 0.072 * s],
                         [0.213 - 0.213 * s, 0.715 - 0.715 * s, 0.072 + 0.928 * s]])
    if name == "hue-rotate":
        c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
        return np.array([[0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928],
                         [0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.140, 0.072 - c * 0.072 - s * 0.283],
                         [0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072]])
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
        return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)]) / 255.0, 1.0
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
        look = Look(name=f"digikam/{_slug(f.stem)}", family="digikam", kind="creative",
                    source=f"Debian digikam-data {DEBS['digikam-data']}: /usr/share/digikam/data/lut3d/{f.name}",
                    author="digiKam project (KDE)", license="GPL-2.0-or-later")
        yield look, _resized(read_lut_image(f))


def source_kdenlive(src: Path):
    """Kdenlive's bundled .cube looks (Debian kdenlive-data; GPL-2.0-or-later)."""
    from prefstyle.data.looks import Look
    from prefstyle.imaging.lut import lut_from_function
    from prefstyle.imaging.lut_io import read_cube

    folder = src / "kdenlive-data" / "usr/share/kdenlive/luts"
    for f in sorted(folder.glob("*.cube")):
        cube = read_cube(f)  # DOMAIN and any 1D shaper are applied by CubeLUT.apply
        look = Look(name=f"kdenlive/{_slug(f.stem)}", family="kdenlive", kind="creative",
                    source=f"Debian kdenlive-data {DEBS['kdenlive-data']}: /usr/share/kdenlive/luts/{f.name}",
                    author="Kdenlive project (KDE)", license="GPL-2.0-or-later")
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
            look = Look(name=f"{family}/{_slug(name)}", family=family, kind="preset",
                        source=f"npm {pkg} {NPMS[pkg]}: {sheet.removeprefix('package/')} .{prefix}{name}",
                        author=author, license=lic)
            yield look, _from_fn(lambda rgb, sp=spec: css_look(rgb, sp))


def source_sfl(src: Path):
    """Film emulations rendered by ``render-sfl`` (spectral-film-lut, MIT)."""
    import torch

    from prefstyle.data.looks import Look

    path = src / "sfl.npz"
    data = np.load(path)
    for i, m in enumerate(json.loads(str(data["meta"]))):
        look = Look(name=f"{m['family']}/{_slug(m['key'])}", family=m["family"], kind="film",
                    source=f"PyPI spectral-film-lut {SFL_VERSION}: {m['key']} (sRGB in, sRGB out, defaults)",
                    author="Jan Lohse (spectral-film-lut), from the manufacturers' datasheets",
                    license="MIT")
        t = torch.from_numpy(data[f"t{i}"]).float()
        yield look, (t if t.shape[-1] == LUT_SIZE else _resized(t))


SOURCES = {
    "digikam": (source_digikam, "digikam-data"),
    "kdenlive": (source_kdenlive, "kdenlive-data"),
    "css": (source_css, "instagram.css"),
    "sfl": (source_sfl, "sfl.npz"),
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
            looks.append(look)
            tables.append(lut)
    lib = LookLibrary(looks, torch.stack(tables))
    out = lib.save(Path(args.out))
    counts = Counter(lk.family for lk in looks)
    for fam, n in sorted(counts.items()):
        print(f"{fam:24s} {n:4d}  ({100 * n / len(looks):.1f} %)")
    print(f"{len(looks)} looks in {len(counts)} families -> {out}")
    write_list(lib, ROOT / "docs" / "LOOKS_LIST.md")


def write_list(lib, path: Path) -> None:
    """docs/LOOKS_LIST.md: every look with its family, kind, licence and source."""
    from prefstyle.fsutil import atomic_write_text

    kinds = Counter(lk.kind for lk in lib.looks)
    lines = ["# Every look in the packaged library", "",
             f"Generated by `scripts/build_looks.py build`: {len(lib)} looks, {len(lib.families())} families "
             f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}). Provenance and exclusions: "
             "[LOOKS.md](LOOKS.md).", "",
             "| # | name | family | kind | licence | source |", "| ---: | --- | --- | --- | --- | --- |"]
    for i, lk in enumerate(lib.looks):
        lines.append(f"| {i} | `{lk.name}` | {lk.family} | {lk.kind} | {lk.license} | {lk.source} |")
    atomic_write_text(path, "\n".join(lines) + "\n")


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
    p = sub.add_parser("build", help="assemble the packaged library from the fetched sources")
    p.add_argument("--dir", default="build/looks-src")
    p.add_argument("--out", default=str(ASSET))
    p.set_defaults(fn=cmd_build)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
