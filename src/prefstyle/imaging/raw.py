"""Camera raw files, developed into the camera's neutral rendering with rawpy (LibRaw).

A photographer's raw folder is a source like any other: :func:`develop_raw` turns a raw file
into what :func:`prefstyle.imaging.io.read_image` returns for every format, an upright ``(H, W,
3)`` uint16 array of sRGB-encoded values (16 bit), plus the EXIF it can find. prefstyle's taste
is then applied to that rendering, as a raw editor applies its sliders to its own default one.

The rendering ("neutral": what the camera recorded, no look added), LibRaw's defaults except
where said:

* **white balance**: the camera's as-shot white balance (``use_camera_wb``); a file without
  one gets LibRaw's daylight balance;
* **colour**: the camera's colour matrix to sRGB primaries (``output_color=sRGB``), encoded with
  the sRGB curve (``gamma=(2.4, 12.92)``; LibRaw's default would be BT.709's 2.222/4.5), 16 bit;
* **brightness**: LibRaw's default automatic brightening (the histogram scaled so that 1 % of
  the pixels clip, ``no_auto_bright=False``, ``bright=1``), nothing beyond it: no exposure
  compensation from the camera's metadata, no tone curve, no highlight reconstruction
  (highlights clipped), AHD demosaicing, no noise reduction or sharpening. It is flatter and
  darker than a camera JPEG or a raw editor's default rendering (which add a base curve): the
  taste's sliders, like an editor's, start from here;
* **orientation**: LibRaw turns the image upright (the EXIF orientation is then written as 1).

EXIF: TIFF-based raws (DNG, NEF, CR2, ARW, PEF, ...) keep their camera, date and exposure tags:
IFD0's make, model, date, artist, copyright and the whole EXIF sub-IFD except the maker notes
(:func:`tiff_exif`, read with tifffile; the TIFF reader of :mod:`prefstyle.imaging.io` is tried
first, for raws whose first image Pillow can open). Other raws (RAF, CR3, RW2, ORF, ...) get a
small EXIF block from what LibRaw reports through rawpy 0.28 (:func:`raw_exif`: artist, date,
ISO, shutter, aperture, focal length; no make or model, which rawpy 0.28 does not expose). GPS
is not carried over.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prefstyle.errors import PrefstyleError

__all__ = ["RAWPY_VERSION", "RAW_EXTENSIONS", "DevelopedRaw", "develop_raw", "is_raw_path", "raw_exif", "tiff_exif"]

#: Camera raw extensions (any case) read through rawpy.
RAW_EXTENSIONS = frozenset(
    {
        ".3fr",
        ".arw",
        ".cr2",
        ".cr3",
        ".crw",
        ".dcr",
        ".dng",
        ".erf",
        ".iiq",
        ".k25",
        ".kdc",
        ".mef",
        ".mos",
        ".mrw",
        ".nef",
        ".nrw",
        ".orf",
        ".pef",
        ".raf",
        ".raw",
        ".rw2",
        ".rwl",
        ".sr2",
        ".srf",
        ".srw",
        ".x3f",
    }
)
#: The rawpy release this module is written and tested against (pinned in pyproject.toml).
RAWPY_VERSION = "0.28.0"

#: ``postprocess`` settings of the neutral rendering (module docstring).
NEUTRAL_SETTINGS: dict[str, object] = {
    "output_bps": 16,
    "use_camera_wb": True,
    "gamma": (2.4, 12.92),
    "no_auto_bright": False,
}


@dataclass
class DevelopedRaw:
    """A developed raw file: ``rgb`` ``(H, W, 3)`` uint16 sRGB-encoded, upright; ``exif`` a
    ``b"Exif\\0\\0"`` block or None."""

    rgb: np.ndarray
    exif: bytes | None = None


def is_raw_path(path: str | Path) -> bool:
    """True when ``path`` has a camera raw extension."""
    return Path(path).suffix.lower() in RAW_EXTENSIONS


def develop_raw(path: str | Path, max_pixels: int, with_exif: bool = True) -> DevelopedRaw:
    """Develop ``path`` into its neutral rendering (module docstring).

    Raises :class:`PrefstyleError` naming the file when rawpy is missing, the image has more than
    ``max_pixels`` pixels (checked before demosaicing) or LibRaw cannot read it.
    """
    path = Path(path)
    try:
        import rawpy
    except ImportError as exc:
        raise PrefstyleError(
            f"RAW files ({path.suffix}) need the optional 'rawpy' package: pip install rawpy=={RAWPY_VERSION}", path
        ) from exc
    try:
        with rawpy.imread(str(path)) as raw:
            w, h = int(raw.sizes.width), int(raw.sizes.height)
            if w <= 0 or h <= 0:
                raise PrefstyleError(f"truncated or corrupt RAW file (size {w}x{h})", path)
            if w * h > max_pixels:
                raise PrefstyleError(
                    f"image is {w}x{h} = {w * h / 1e6:.1f} MP, more than the limit of {max_pixels / 1e6:g} MP "
                    "(decompression-bomb guard); raise max_pixels to read it",
                    path,
                )
            rgb = raw.postprocess(output_color=rawpy.ColorSpace.sRGB, **NEUTRAL_SETTINGS)
            exif = (tiff_exif(path) or raw_exif(raw)) if with_exif else None
    except PrefstyleError:
        raise
    except MemoryError as exc:
        raise PrefstyleError("not enough memory to develop this RAW file", path) from exc
    except Exception as exc:  # rawpy.LibRawError and its subclasses, OSError
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PrefstyleError(
            f"truncated or corrupt RAW file ({type(exc).__name__}{': ' + msg if msg else ''})", path
        ) from exc
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise PrefstyleError(f"RAW file developed to an unexpected shape {rgb.shape}", path)
    return DevelopedRaw(np.ascontiguousarray(rgb, dtype=np.uint16), exif)


def raw_exif(raw: object) -> bytes | None:
    """A small EXIF block (``b"Exif\\0\\0"`` + TIFF) from LibRaw's metadata of an open rawpy file,
    or None when rawpy reports none. Tags: Artist, DateTime(Original), ISO, ExposureTime, FNumber,
    FocalLength (rawpy 0.28's ``other``), Make and Model (only rawpy releases that expose LibRaw's
    ``idata``); values LibRaw leaves at 0 are omitted."""
    from PIL import Image

    exif = Image.Exif()
    ident = getattr(raw, "idata", None)  # newer rawpy releases; 0.28 exposes less
    other = getattr(raw, "other", None)
    for tag, value in (
        (0x010F, getattr(ident, "make", None)),
        (0x0110, getattr(ident, "model", None)),
        (0x013B, getattr(other, "artist", None)),
    ):
        if isinstance(value, bytes):
            value = value.decode("latin-1", "replace")
        if isinstance(value, str) and value.strip("\0 "):
            exif[tag] = value.strip("\0 ")
    sub: dict[int, object] = {}
    if other is not None:
        iso = float(getattr(other, "iso_speed", 0) or 0)
        shutter = float(getattr(other, "shutter_speed", 0) or 0)
        aperture = float(getattr(other, "aperture", 0) or 0)
        focal = float(getattr(other, "focal_length", 0) or 0)
        stamp = getattr(other, "timestamp", None)
        if iso > 0:
            sub[0x8827] = round(iso)
        if shutter > 0:
            sub[0x829A] = shutter
        if aperture > 0:
            sub[0x829D] = aperture
        if focal > 0:
            sub[0x920A] = focal
        if isinstance(stamp, (int, float)) and stamp > 0:
            stamp = _dt.datetime.fromtimestamp(stamp)
        if isinstance(stamp, _dt.datetime) and stamp.year > 1970:
            when = stamp.strftime("%Y:%m:%d %H:%M:%S")  # LibRaw's local camera time
            exif[0x0132] = when
            sub[0x9003] = when
    if sub:
        exif.get_ifd(0x8769).update(sub)
    if not len(exif) and not sub:
        return None
    data = exif.tobytes()
    return data if data.startswith(b"Exif\0\0") else b"Exif\0\0" + data


#: IFD0 tags carried over from a TIFF-based raw (description, make, model, software, date, artist, copyright)
_IFD0_TAGS = (270, 271, 272, 305, 306, 315, 33432)
_SKIPPED_EXIF_TAGS = {37500, 37510}  # MakerNote (camera-private offsets), UserComment


def _exif_value(value: object) -> object | None:
    """A tifffile tag value as Pillow writes it (rationals as IFDRational), or None to drop it."""
    from PIL.TiffImagePlugin import IFDRational

    if isinstance(value, str):
        return value.strip("\0 ") or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return IFDRational(value[0], value[1]) if value[1] else None
    if (
        isinstance(value, tuple)
        and value
        and all(isinstance(v, int) for v in value)
        and len(value) % 2 == 0
        and len(value) <= 8
    ):
        return tuple(IFDRational(value[i], value[i + 1]) for i in range(0, len(value), 2) if value[i + 1])
    return None


def tiff_exif(path: str | Path) -> bytes | None:
    """The EXIF of a TIFF-based raw (DNG, NEF, CR2, ARW, PEF, ...), read with tifffile (Pillow cannot
    open CFA TIFFs): IFD0's camera and date tags and the EXIF sub-IFD (maker notes dropped). None for
    other files or when nothing is found."""
    import tifffile
    from PIL import Image

    try:
        with open(path, "rb") as fh:
            if fh.read(4) not in (b"II*\0", b"MM\0*"):
                return None
        with tifffile.TiffFile(path) as tf:
            page = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
            exif = Image.Exif()
            for code in _IFD0_TAGS:
                tag = page.tags.get(code)
                value = _exif_value(tag.value) if tag is not None else None
                if value is not None:
                    exif[code] = value
            sub_tag = page.tags.get(34665)
            if sub_tag is not None and isinstance(sub_tag.value, dict):
                sub = exif.get_ifd(0x8769)
                for name, raw_value in sub_tag.value.items():
                    try:
                        code = int(tifffile.TIFF.TAGS[name])
                    except (KeyError, TypeError, ValueError):
                        continue
                    value = _exif_value(raw_value)
                    if code not in _SKIPPED_EXIF_TAGS and value is not None:
                        sub[code] = value
            if not len(exif) and not exif.get_ifd(0x8769):
                return None
            data = exif.tobytes()
    except Exception:  # noqa: BLE001 - an unreadable EXIF never stops the photo
        return None
    return data if data.startswith(b"Exif\0\0") else b"Exif\0\0" + data
