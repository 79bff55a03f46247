"""Image I/O: read and write photographs as float sRGB tensors, keeping bit depth, EXIF and ICC.

Reading
-------
:func:`read_image` returns an :class:`ImageData` whose ``pixels`` are a ``(3, H, W)`` float32
tensor of sRGB values in ``[0, 1]``, already upright:

* **Formats.** JPEG, PNG (8 and 16 bit), TIFF (8/16 bit, and float, which counts as 16 bit),
  plus whatever else Pillow decodes (WebP, BMP, ...). RAW files (``RAW_EXTENSIONS``) are
  developed with ``rawpy`` (16 bit, camera white balance, sRGB), which is optional: without it
  they are refused with a :class:`PrefstyleError` that says so. The format is sniffed from the
  file's first bytes, not trusted from its extension (RAW excepted). JPEG and 8-bit PNG are
  decoded by Pillow, 16-bit PNG by OpenCV (Pillow truncates 16-bit RGB to 8 bit), TIFF by
  tifffile, falling back to OpenCV (LZW, JPEG-in-TIFF: codecs that tifffile needs the
  optional ``imagecodecs`` for) and then Pillow (CMYK, palette, YCbCr).
* **Orientation.** The EXIF orientation (all eight values, ``ImageOps.exif_transpose``
  semantics) is applied to the pixels, and the returned ``exif`` has its orientation reset
  to 1 (patched in place: every other byte of the block is kept as it was).
* **Colour.** An embedded ICC profile that is not sRGB is converted to sRGB:

  - 8-bit RGB and CMYK images: LittleCMS through Pillow's ``ImageCms``, perceptual intent
    (for matrix/TRC profiles, the usual RGB working spaces, LittleCMS makes that the same as
    relative colorimetric), output rounded to 8 bits;
  - 16-bit and float RGB images with a matrix/TRC profile (Adobe RGB, Display P3, ProPhoto,
    ...): in float32, from the profile's own colorants and tone curves (``rXYZ``/``rTRC``...),
    through the D50 profile connection space to the colorants of LittleCMS's sRGB, and the
    sRGB encoding. This is what LittleCMS does for such profiles, without its 8-bit
    round trip (``ImageCms`` has no 16-bit RGB mode);
  - 16-bit and float RGB images with a LUT-based profile (rare: camera or scanner
    profiles): a 52×52×52 table sampled from ``ImageCms`` into a wide (ProPhoto-primaries)
    working space, dithered over 16 samplings to about 12 bits, interpolated trilinearly,
    then taken to sRGB exactly, per pixel (slow: seconds for 12 MP on two cores);
  - grayscale images with a gray profile: through its ``kTRC`` curve, in float.

  A profile is taken as sRGB when its colorants and curves match sRGB within 0.002 (or, for a
  LUT-based profile, when its description says sRGB); then nothing is converted. A profile
  that is damaged, or that does not fit the pixels (an RGB profile on a gray image), is
  ignored with a logged warning, and the pixels are taken as sRGB. ``gAMA``/``cHRM`` PNG
  chunks without an ICC profile are ignored, as most viewers do.
* **Channels.** Grayscale becomes three equal channels (:attr:`ImageData.grayscale` says so);
  palette images are expanded; CMYK is converted (through its ICC profile when it has one,
  else Pillow's naive formula); an alpha channel is **composited over white** (premultiplied
  TIFF alpha is handled), unless ``keep_alpha``: then ``pixels`` hold the straight
  (un-premultiplied) colour and :attr:`ImageData.alpha` the alpha, for :func:`write_like`
  to write back untouched.
* **Safety.** Images with more than ``max_pixels`` pixels (``DEFAULT_MAX_PIXELS``, 200 MP)
  are refused from their header, before any pixel is decoded (decompression bombs);
  truncated or corrupt files, files that are not images and missing files all raise a
  :class:`PrefstyleError` that names the file.

Writing
-------
:func:`write_image` picks the format from the extension (``.jpg``/``.jpeg``, ``.png``,
``.tif``/``.tiff``), quantizes with rounding after clamping to ``[0, 1]``, writes atomically
(an existing file is replaced only once the new one is complete) and embeds the EXIF and ICC
it is given. PNG and TIFF can be 8 or 16 bit; JPEG (and WebP, written lossless at quality
100) is always 8 bit: a 16-bit request writes 8 bit, logged at debug level. The EXIF orientation is always written as 1, since the
pixels are upright. JPEGs use 4:4:4 chroma at quality >= 90 and 4:2:0 below; PNGs are written
by OpenCV (fast zlib level) with the ICC (``iCCP``) and EXIF (``eXIf``) chunks added; TIFFs by
tifffile with deflate compression and a horizontal predictor, the EXIF going into a proper
EXIF (and GPS) sub-IFD.

Alpha and gray: ``write_image(..., alpha=A)`` writes ``A`` as the alpha channel of a PNG,
TIFF or WebP at the image's bit depth (JPEG has none: the colour is composited over white);
``grayscale=True`` writes one channel, the luminance of the pixels (linear-light Rec. 709
weights, sRGB-encoded, so three equal channels come back unchanged and a model's tint cannot
make a colour cast); gray with alpha is written as RGBA with equal channels (OpenCV writes no
gray+alpha PNG). :func:`write_like` passes the ``alpha`` and ``grayscale`` of the image read.

ICC policy on write: pixels are always sRGB, so :attr:`ImageData.output_icc` (what
:func:`write_like` embeds) is the file's own profile when that profile was an RGB sRGB
profile, LittleCMS's sRGB profile when the file had any other profile (it was converted, or
could not be used), and nothing when the file had none (untagged files are read as sRGB and
written untagged). :func:`write_image` itself embeds exactly the ``icc`` it is given.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import io
import logging
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tifffile
import torch
from PIL import Image, ImageCms, TiffImagePlugin, UnidentifiedImageError

from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_path
from prefstyle.imaging.raw import RAW_EXTENSIONS as _RAW_EXTENSIONS

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "RAW_EXTENSIONS",
    "READ_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "ImageData",
    "list_images",
    "load_image",
    "read_image",
    "srgb_icc_profile",
    "write_image",
    "write_like",
]

log = logging.getLogger(__name__)

#: Largest image (width × height) that :func:`read_image` decodes unless told otherwise.
DEFAULT_MAX_PIXELS = 200_000_000

#: Extensions :func:`list_images` picks up in folders (besides ``RAW_EXTENSIONS``).
READ_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp"})
#: Camera RAW extensions, developed with the optional ``rawpy`` package.
RAW_EXTENSIONS = _RAW_EXTENSIONS
#: Output extensions and the format each one writes.
WRITE_EXTENSIONS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}

_JPEG_MAX_EXIF = 65533  # one APP1 marker segment


# --------------------------------------------------------------------------------------------
# Public data type and entry points
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ImageData:
    """A decoded image and what must travel with it to the output file."""

    pixels: torch.Tensor = field(repr=False)
    """``(3, H, W)`` float32, sRGB-encoded, in ``[0, 1]``, upright."""
    bit_depth: int
    """8 or 16: the precision of the source (float TIFFs and RAW count as 16)."""
    exif: bytes | None = field(default=None, repr=False)
    """Raw EXIF block (``b"Exif\\0\\0"`` + TIFF structure), orientation reset to 1."""
    icc: bytes | None = field(default=None, repr=False)
    """The file's own embedded ICC profile, as it was."""
    source_icc_converted: bool = False
    """True when the pixels were converted from the embedded profile to sRGB."""
    format: str = ""
    """``"JPEG"``, ``"PNG"``, ``"TIFF"``, ``"RAW"``, or Pillow's name for other formats."""
    path: Path | None = None
    rgb8: np.ndarray | None = field(default=None, repr=False)
    """The same pixels as an ``(H, W, 3)`` uint8 array when the file held plain 8-bit RGB that
    needed no colour conversion (``pixels == rgb8 / 255`` exactly), else None: 8-bit fast paths
    use it instead of quantizing ``pixels`` again."""
    alpha: torch.Tensor | None = field(default=None, repr=False)
    """``(1, H, W)`` float32 straight alpha in ``[0, 1]``, upright; only when read with
    ``keep_alpha`` from a file that has one (``pixels`` are then the un-composited colour)."""
    grayscale: bool = False
    """True when the file held one colour channel (gray, or gray + alpha)."""

    @property
    def height(self) -> int:
        return int(self.pixels.shape[-2])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[-1])

    @property
    def output_icc(self) -> bytes | None:
        """The profile to embed in an output made from these (sRGB) pixels; see the module doc."""
        if self.icc is None:
            return None
        info = _icc_info(self.icc)
        if info.valid and info.color_space == "RGB" and info.is_srgb:
            return self.icc
        return srgb_icc_profile()

    @property
    def output_gray_icc(self) -> bytes | None:
        """The profile for a one-channel output: the file's own gray profile when its curve is
        sRGB's, else none (gray pixels are sRGB-encoded; an RGB profile cannot tag gray data)."""
        if self.icc is None:
            return None
        info = _icc_info(self.icc)
        return self.icc if info.valid and info.color_space == "GRAY" and info.is_srgb else None


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, keep_alpha: bool = False) -> ImageData:
    """Decode ``path`` into an :class:`ImageData` (see the module docstring for the rules).

    With ``keep_alpha``, an image with an alpha channel is not composited over white: its
    straight colour is in ``pixels`` and its alpha in ``alpha``.

    Raises :class:`PrefstyleError` naming the file when it is missing, not an image, larger
    than ``max_pixels`` pixels, truncated or corrupt, or a RAW file without ``rawpy``.
    """
    path = Path(path)
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    if not path.exists():
        raise PrefstyleError("file not found", path)
    if path.is_dir():
        raise PrefstyleError("is a folder, not an image file", path)

    if path.suffix.lower() in RAW_EXTENSIONS:
        dec = _decode_raw(path, max_pixels)
    else:
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise PrefstyleError(f"cannot read file: {exc.strerror or exc}", path) from exc
        if not head:
            raise PrefstyleError("empty file, not an image", path)
        kind = _sniff(head)
        try:
            if kind == "PNG":
                dec = _decode_png(path, max_pixels)
            elif kind == "TIFF":
                dec = _decode_tiff(path, max_pixels)
            else:
                dec = _decode_pillow(path, max_pixels, kind)
        except PrefstyleError:
            raise
        except MemoryError as exc:
            raise PrefstyleError("not enough memory to decode this image", path) from exc
        except Exception as exc:  # decoders raise anything from OSError to zlib.error
            raise PrefstyleError(f"truncated or corrupt image ({_describe(exc)})", path) from exc

    pixels, converted, rgb8, alpha, gray = _finish(dec, path, keep_alpha)
    return ImageData(
        pixels=pixels,
        rgb8=rgb8,
        alpha=alpha,
        grayscale=gray,
        bit_depth=dec.bit_depth,
        exif=_exif_with_orientation(dec.exif, 1),
        icc=dec.icc,
        source_icc_converted=converted,
        format=dec.format,
        path=path,
    )


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Convenience: the pixels of ``path`` as a ``(1, 3, H, W)`` float32 sRGB batch."""
    return read_image(path, max_pixels=max_pixels).pixels.unsqueeze(0)


def write_image(
    path: str | Path,
    pixels: torch.Tensor,
    bit_depth: int = 8,
    exif: bytes | None = None,
    icc: bytes | None = None,
    quality: int = 95,
    alpha: torch.Tensor | None = None,
    grayscale: bool = False,
) -> int:
    """Write sRGB ``pixels`` (``(3, H, W)`` or ``(1, 3, H, W)``, values clamped to [0, 1]).

    The format follows the extension (``WRITE_EXTENSIONS``). ``bit_depth`` is 8 or 16; JPEG
    is always written at 8 bit. ``exif`` (raw block, with or without the ``Exif\\0\\0``
    header) is embedded with its orientation set to 1; ``icc`` is embedded as given.
    ``quality`` applies to JPEG and WebP. ``alpha`` (``(1, H, W)`` or ``(H, W)`` in [0, 1])
    becomes the alpha channel (JPEG: composited over white); ``grayscale`` writes the
    luminance as one channel (see the module docstring). The write is atomic. Returns the
    bit depth written.
    """
    path = Path(path)
    fmt = WRITE_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        wanted = ", ".join(sorted(WRITE_EXTENSIONS))
        raise PrefstyleError(f"cannot write '{path.suffix or '(no extension)'}' images; use one of {wanted}", path)
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    if fmt in ("JPEG", "WEBP") and bit_depth == 16:
        log.debug("%s: %s is 8-bit only; writing 8 bit", path, fmt)
        bit_depth = 8
    if isinstance(exif, Image.Exif):
        exif = exif.tobytes()
    exif = _exif_with_orientation(exif, 1)

    x = _as_chw(pixels)
    if alpha is not None:
        a = alpha.detach().to(device="cpu", dtype=torch.float32).reshape(1, *x.shape[-2:])
        if fmt == "JPEG":
            x = torch.addcmul(1.0 - a, x.clamp(0.0, 1.0), a)  # over white, as the reader composites
            a = None
    else:
        a = None
    if grayscale:
        x = _gray_of(x)
        if fmt == "WEBP" or a is not None:  # no gray WebP; OpenCV writes no gray+alpha PNG
            x = x.expand(3, -1, -1)
    if a is not None:
        x = torch.cat([x, a], dim=0)
    arr = _quantize(x, bit_depth)
    try:
        with atomic_path(path) as tmp:
            if fmt == "JPEG":
                _write_jpeg(tmp, arr, exif, icc, int(quality))
            elif fmt == "WEBP":
                _write_webp(tmp, arr, exif, icc, int(quality))
            elif fmt == "PNG":
                tmp.write_bytes(_encode_png(arr, exif, icc))
            else:
                _write_tiff(tmp, arr, exif, icc)
    except OSError as exc:
        raise PrefstyleError(f"cannot write image: {exc.strerror or exc}", path) from exc
    return bit_depth


def write_like(path: str | Path, pixels: torch.Tensor, like: ImageData, quality: int = 95) -> int:
    """Write ``pixels`` with the bit depth, EXIF and output ICC (:attr:`ImageData.output_icc`) of ``like``.

    A gray ``like`` gives a gray output (the luminance of ``pixels``); ``like.alpha`` (read with
    ``keep_alpha``) is written back as the alpha channel. Pixels with NaN or infinite values
    (a broken model or profile) are refused rather than written as black.
    """
    if isinstance(pixels, torch.Tensor) and not bool(torch.isfinite(pixels).all()):
        raise PrefstyleError("the retouched image holds NaN or infinite values (a damaged profile or model?); "
                             "not written", like.path if like.path is not None else path)
    icc = like.output_gray_icc if like.grayscale else like.output_icc
    return write_image(path, pixels, bit_depth=like.bit_depth, exif=like.exif, icc=icc, quality=quality,
                       alpha=like.alpha, grayscale=like.grayscale)


def list_images(paths: Iterable[str | Path], recursive: bool = True) -> list[Path]:
    """Expand ``paths`` into image files.

    Files are kept as given (whatever their extension: reading them tells what is wrong);
    folders contribute the files with a ``READ_EXTENSIONS`` or ``RAW_EXTENSIONS`` extension
    (any case), sorted by their path below the folder, descending into sub-folders when
    ``recursive``. Hidden files and folders (name starting with ``.``, which includes partial
    files left by atomic writes and macOS ``._`` files) are skipped. Duplicates are dropped,
    first occurrence wins. A path that does not exist raises :class:`PrefstyleError`.
    """
    wanted = READ_EXTENSIONS | RAW_EXTENSIONS
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found: list[tuple[str, Path]] = []
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
                rel_root = Path(root).relative_to(p)
                for name in files:
                    if not name.startswith(".") and Path(name).suffix.lower() in wanted:
                        found.append(((rel_root / name).as_posix(), Path(root) / name))
            for _, f in sorted(found, key=lambda item: item[0]):
                add(f)
        elif p.exists():
            add(p)
        else:
            raise PrefstyleError("no such file or folder", p)
    return out


@functools.lru_cache(maxsize=1)
def srgb_icc_profile() -> bytes:
    """LittleCMS's sRGB profile (v4, matrix/TRC) as bytes, with a fixed date so outputs are reproducible."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    if data[84:100] == bytes(16):  # no profile ID (MD5) to keep in step with the date
        data[24:36] = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)
    return bytes(data)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


@dataclass
class _Decoded:
    arr: np.ndarray  # (H, W) or (H, W, C): uint8, uint16 or float32; C in 1..4
    bit_depth: int
    format: str
    channels: tuple[int, ...] | None = None  # order of R, G, B (, A) in arr's last axis; None: natural
    icc: bytes | None = None
    exif: bytes | None = None  # normalised: b"Exif\0\0" + TIFF
    orientation: int = 1
    color_done: bool = False  # already sRGB after decoding (CMYK, RAW): skip colour management
    icc_converted: bool = False  # ... and that was done through the embedded profile
    premultiplied: bool = False


def _sniff(head: bytes) -> str:
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    return "other"


def _describe(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _check_size(width: int, height: int, max_pixels: int, path: Path) -> None:
    if width <= 0 or height <= 0:
        raise PrefstyleError(f"truncated or corrupt image (size {width}x{height})", path)
    if width * height > max_pixels:
        raise PrefstyleError(
            f"image is {width}x{height} = {width * height / 1e6:.1f} MP, more than the limit of "
            f"{max_pixels / 1e6:g} MP (decompression-bomb guard); raise max_pixels to read it",
            path,
        )


_PIL_OPEN_LOCK = threading.Lock()


def _pil_open(path: Path, max_pixels: int) -> Image.Image:
    """``Image.open`` (header only) with Pillow's own bomb guard lifted to at least ``max_pixels``.

    The caller checks ``max_pixels`` itself. Pillow's limit is a process-wide global, so it is
    raised only for the duration of the header parse, under a lock, and never lowered.
    """
    with _PIL_OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        if saved is not None and saved < max_pixels:
            Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            return Image.open(path)
        except Image.DecompressionBombError as exc:
            raise PrefstyleError(
                f"image is larger than the limit of {max_pixels / 1e6:g} MP (decompression-bomb guard)", path
            ) from exc
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _decode_pillow(path: Path, max_pixels: int, kind: str) -> _Decoded:
    try:
        im = _pil_open(path, max_pixels)
    except UnidentifiedImageError as exc:
        if kind in ("JPEG", "PNG"):
            raise PrefstyleError(f"truncated or corrupt image (not a valid {kind} file)", path) from exc
        raise PrefstyleError("not a supported image file (unrecognised format)", path) from exc
    with im:
        _check_size(im.width, im.height, max_pixels, path)
        fmt = im.format or kind
        fast = _decode_plain_jpeg(im, path) if fmt == "JPEG" else None
        if fast is None:
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            im.load()
        icc = im.info.get("icc_profile") or None
        if fmt == "TIFF":
            exif = _exif_from_tiff_image(im)
        else:
            exif = _normalise_exif(im.info.get("exif"))
            if exif is None and fmt not in ("JPEG", "MPO"):
                with contextlib.suppress(Exception):
                    ex = im.getexif()
                    exif = _normalise_exif(ex.tobytes()) if len(ex) else None
        orientation = _exif_orientation(exif)
        if fast is not None:
            return _Decoded(fast, 8, fmt, channels=_cv2_channels(fast), icc=icc, exif=exif, orientation=orientation)
        arr, bit_depth, color_done, icc_converted = _pil_pixels(im, icc, path)
    return _Decoded(
        arr,
        bit_depth,
        fmt,
        icc=icc,
        exif=exif,
        orientation=orientation,
        color_done=color_done,
        icc_converted=icc_converted,
    )


def _decode_plain_jpeg(im: Image.Image, path: Path) -> np.ndarray | None:
    """Fast path for an ordinary (YCbCr or gray, 8-bit) JPEG: OpenCV decodes straight to numpy.

    A third less work than Pillow's decode and copy out. OpenCV only warns about a JPEG cut
    short, so the path is taken only when the file ends with its EOI marker; anything else
    (CMYK, trailers after EOI, damaged files) is left to Pillow, which refuses truncation.
    """
    if im.mode not in ("RGB", "L"):
        return None
    with open(path, "rb") as fh:
        fh.seek(-2, os.SEEK_END)
        if fh.read(2) != b"\xff\xd9":
            return None
    arr = _cv2_decode(path)
    expected = (im.height, im.width, 3) if im.mode == "RGB" else (im.height, im.width)
    if arr is None or arr.dtype != np.uint8 or arr.shape != expected:
        return None
    return arr


def _pil_pixels(im: Image.Image, icc: bytes | None, path: Path) -> tuple[np.ndarray, int, bool, bool]:
    """Pixels of a loaded Pillow image: (array, bit depth, colour done, converted through the ICC).

    The array is (H, W[, C]) uint8/uint16/float32, RGB(A) or gray(+alpha).
    """
    mode = im.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        return np.asarray(im), 8, False, False
    if mode == "CMYK":
        info = _icc_info(icc) if icc else None
        if info is not None and info.valid and info.color_space == "CMYK":
            try:
                rgb = ImageCms.applyTransform(im, _cms_transform(icc, "CMYK"))
                return np.asarray(rgb), 8, True, True
            except (ImageCms.PyCMSError, OSError, ValueError) as exc:
                log.warning("%s: cannot use the embedded CMYK profile (%s); converting naively", path, exc)
        return np.asarray(im.convert("RGB")), 8, True, False
    if mode in ("P", "PA"):
        keep_alpha = mode == "PA" or "transparency" in im.info
        return np.asarray(im.convert("RGBA" if keep_alpha else "RGB")), 8, False, False
    if mode == "1":
        return np.asarray(im.convert("L")), 8, False, False
    if mode.startswith("I;16"):
        arr = np.asarray(im)
        return arr.astype(np.uint16, copy=False), 16, False, False
    if mode == "I":
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16), 16, False, False
    if mode == "F":
        return np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0), 16, False, False
    if mode in ("RGBa", "La"):
        return np.asarray(im.convert("RGBA" if mode == "RGBa" else "LA")), 8, False, False
    if mode == "LAB":
        lab = ImageCms.createProfile("LAB")
        rgb = ImageCms.applyTransform(im, ImageCms.buildTransform(lab, ImageCms.createProfile("sRGB"), "LAB", "RGB"))
        return np.asarray(rgb), 8, True, False
    try:
        return np.asarray(im.convert("RGB")), 8, False, False
    except (ValueError, OSError) as exc:
        raise PrefstyleError(f"unsupported colour mode {mode}", path) from exc


# ---- PNG ------------------------------------------------------------------------------------


@dataclass
class _PngInfo:
    width: int
    height: int
    bit_depth: int
    color_type: int
    icc: bytes | None
    exif: bytes | None


def _scan_png(path: Path) -> _PngInfo:
    """Walk the chunk list: header, ``iCCP``, ``eXIf``; refuse a file cut short."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(8)
        ihdr = None
        icc = exif = None
        saw_iend = False
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, ctype = struct.unpack(">I4s", head)
            start = fh.tell()
            if start + length + 4 > size:
                break
            if ctype == b"IHDR":
                ihdr = fh.read(length)
            elif ctype == b"iCCP":
                icc = _inflate_icc(fh.read(length))
            elif ctype == b"eXIf":
                exif = fh.read(length)
            elif ctype == b"IEND":
                saw_iend = True
                break
            fh.seek(start + length + 4)
    if ihdr is None or len(ihdr) < 13 or not saw_iend:
        raise PrefstyleError("truncated or corrupt image (PNG data ends early)", path)
    width, height, depth, ctype_ = struct.unpack(">IIBB", ihdr[:10])
    return _PngInfo(width, height, depth, ctype_, icc or None, _normalise_exif(exif))


_MAX_ICC_BYTES = 16 << 20  # a compressed profile that inflates beyond this is a zip bomb, not a profile


def _inflate_icc(data: bytes) -> bytes | None:
    """The profile in an ``iCCP`` chunk (name, NUL, method, zlib data), or None when unusable."""
    try:
        inflater = zlib.decompressobj()
        icc = inflater.decompress(data[data.index(b"\0") + 2 :], _MAX_ICC_BYTES)
    except (ValueError, zlib.error):
        return None
    return icc if icc and not inflater.unconsumed_tail else None


def _decode_png(path: Path, max_pixels: int) -> _Decoded:
    info = _scan_png(path)
    _check_size(info.width, info.height, max_pixels, path)
    if info.bit_depth != 16:
        return _decode_pillow(path, max_pixels, "PNG")
    arr = _cv2_decode(path)
    if arr is None or arr.dtype != np.uint16:
        raise PrefstyleError("truncated or corrupt image (16-bit PNG could not be decoded)", path)
    return _Decoded(
        arr,
        16,
        "PNG",
        channels=_cv2_channels(arr),
        icc=info.icc,
        exif=info.exif,
        orientation=_exif_orientation(info.exif),
    )


def _cv2_decode(path: Path) -> np.ndarray | None:
    data = np.fromfile(path, dtype=np.uint8)
    logging_mod = getattr(getattr(cv2, "utils", None), "logging", None)
    saved = None
    if logging_mod is not None:  # keep OpenCV's own complaints about bad files off stderr
        with contextlib.suppress(Exception):
            saved = logging_mod.getLogLevel()
            logging_mod.setLogLevel(logging_mod.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    finally:
        if saved is not None:
            logging_mod.setLogLevel(saved)


def _cv2_channels(arr: np.ndarray) -> tuple[int, ...] | None:
    if arr.ndim == 2 or arr.shape[2] == 1:
        return None
    if arr.shape[2] == 2:
        return (0, 1)
    if arr.shape[2] == 3:
        return (2, 1, 0)
    return (2, 1, 0, 3)


# ---- TIFF -----------------------------------------------------------------------------------


def _decode_tiff(path: Path, max_pixels: int) -> _Decoded:
    try:
        tf = tifffile.TiffFile(path)
    except Exception as exc:
        raise PrefstyleError(f"truncated or corrupt image (TIFF header: {_describe(exc)})", path) from exc
    with tf:
        page = tf.pages.first
        _check_size(int(page.imagewidth), int(page.imagelength), max_pixels, path)
        if int(page.samplesperpixel) > 8:
            raise PrefstyleError(f"unsupported TIFF with {int(page.samplesperpixel)} samples per pixel", path)
        size = path.stat().st_size
        ends = [int(o) + int(n) for o, n in zip(page.dataoffsets, page.databytecounts, strict=False) if n]
        if not ends or max(ends) > size:
            raise PrefstyleError("truncated or corrupt image (TIFF data ends early)", path)
        tags = page.tags
        icc_tag = tags.get(34675)
        icc = bytes(icc_tag.value) if icc_tag is not None and icc_tag.value else None
        orient_tag = tags.get(274)
        orientation = int(orient_tag.value) if orient_tag is not None else 1
        photometric = int(page.photometric)
        dtype = np.dtype(page.dtype) if page.dtype is not None else None
        simple = (
            photometric in (0, 1, 2)  # MINISWHITE, MINISBLACK, RGB
            and dtype is not None
            and dtype.kind in "uf"
            and dtype.itemsize <= 8
            and int(page.bitspersample) in (8, 16, 32, 64)
        )
        arr = None
        if simple:
            codec_ok = int(page.compression) == 1 or int(page.compression) in tifffile.TIFF.DECOMPRESSORS
            if codec_ok:
                arr = _tiff_yxs(page.asarray(), page.axes)
        extrasamples = tuple(int(v) for v in (page.extrasamples or ()))

    exif = None
    with contextlib.suppress(Exception), Image.open(path) as im:  # metadata only, header parse
        exif = _exif_from_tiff_image(im)

    if arr is not None:
        if arr.ndim == 3 and arr.shape[2] > 4:
            arr = np.ascontiguousarray(arr[..., :4])
        premultiplied = bool(extrasamples) and extrasamples[0] == 1
        if arr.dtype.kind == "f":
            arr = np.nan_to_num(arr.astype(np.float32, copy=False), nan=0.0)
            if photometric == 0:
                arr = 1.0 - arr
            return _Decoded(arr, 16, "TIFF", icc=icc, exif=exif, orientation=orientation, premultiplied=premultiplied)
        if arr.dtype.itemsize > 2:  # 32-bit integers: keep the top 16 bits
            arr = (arr >> (8 * arr.dtype.itemsize - 16)).astype(np.uint16)
        if photometric == 0:
            arr = np.iinfo(arr.dtype).max - arr
        bit_depth = 16 if arr.dtype == np.uint16 else 8
        return _Decoded(
            arr, bit_depth, "TIFF", icc=icc, exif=exif, orientation=orientation, premultiplied=premultiplied
        )

    # Codecs tifffile cannot do without imagecodecs (LZW, JPEG...): OpenCV's libtiff, then Pillow.
    if photometric in (1, 2):
        arr = _cv2_decode(path)
        if arr is not None and arr.dtype in (np.uint8, np.uint16):
            if arr.ndim == 3 and arr.shape[2] > 4:
                arr = np.ascontiguousarray(arr[..., :4])
            return _Decoded(
                arr,
                16 if arr.dtype == np.uint16 else 8,
                "TIFF",
                channels=_cv2_channels(arr),
                icc=icc,
                exif=exif,
                orientation=orientation,
            )
    dec = _decode_pillow(path, max_pixels, "TIFF")
    dec.orientation = orientation
    return dec


def _tiff_yxs(arr: np.ndarray, axes: str) -> np.ndarray:
    """A tifffile page array as contiguous (Y, X) or (Y, X, S)."""
    keep = [a for a in "YXS" if a in axes]
    for i in reversed(range(len(axes))):  # drop other axes (depth, ...) by taking their first item
        if axes[i] not in keep:
            arr = arr.take(0, axis=i)
            axes = axes[:i] + axes[i + 1 :]
    return np.ascontiguousarray(np.transpose(arr, [axes.index(a) for a in keep]))


# ---- RAW ------------------------------------------------------------------------------------


def _decode_raw(path: Path, max_pixels: int) -> _Decoded:
    from prefstyle.imaging.raw import develop_raw  # the neutral rendering, see imaging/raw.py

    developed = develop_raw(path, max_pixels)
    rgb = developed.rgb
    exif = None
    with contextlib.suppress(Exception), Image.open(path) as im:  # TIFF-based RAWs carry EXIF Pillow can read
        ex = im.getexif()
        exif = (
            _exif_from_tiff_image(im) if im.format == "TIFF" else (_normalise_exif(ex.tobytes()) if len(ex) else None)
        )
    # LibRaw has already turned the image upright; the EXIF orientation is reset on return.
    return _Decoded(np.ascontiguousarray(rgb, dtype=np.uint16), 16, "RAW", exif=exif or developed.exif, color_done=True)


# ---- shared finishing -----------------------------------------------------------------------


def _finish(
    dec: _Decoded, path: Path, keep_alpha: bool = False
) -> tuple[torch.Tensor, bool, np.ndarray | None, torch.Tensor | None, bool]:
    """Colour-manage, orient, convert to float (3, H, W), composite alpha (or keep it apart).

    Returns the pixels, whether they were colour-converted, the (H, W, 3) uint8 RGB array when
    the float pixels are exactly it / 255 (plain 8-bit RGB, no conversion), the (1, H, W)
    straight alpha when ``keep_alpha`` and there is one, and whether the image is gray."""
    arr = dec.arr
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    n_ch = 1 if arr.ndim == 2 else arr.shape[2]
    order = dec.channels if dec.channels is not None else tuple(range(n_ch))
    is_gray = n_ch <= 2
    has_alpha = n_ch in (2, 4)

    plan = None
    converted = dec.icc_converted
    if dec.icc is not None and not dec.color_done:
        plan = _plan_conversion(dec.icc, is_gray, arr.dtype, path)
        if plan is not None:
            converted = True
            if plan.kind == "cms8":
                arr = _apply_cms_uint8(arr, order, has_alpha, dec.icc)
                order = tuple(range(arr.shape[2]))
                plan = None

    arr = _orient(arr, dec.orientation)
    x = _to_float(arr, order, plan)
    rgb8 = None
    if plan is None and arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
        rgb8 = arr if tuple(order) == (0, 1, 2) else np.ascontiguousarray(arr[..., list(order)])
        rgb8 = np.ascontiguousarray(rgb8)
    if keep_alpha and has_alpha:
        n_color = 1 if is_gray else 3
        alpha = x[n_color : n_color + 1].clone()
        color = x[:n_color]
        if dec.premultiplied:
            color = torch.where(alpha > 0, color / alpha.clamp(min=1e-12), color).clamp_(0.0, 1.0)
        if is_gray:
            color = color.expand(3, -1, -1)
        return color.contiguous(), converted, None, alpha, is_gray
    return _to_rgb(x, is_gray, has_alpha, dec.premultiplied), converted, rgb8, None, is_gray


_ORIENT_OPS = {
    2: (cv2.flip, 1),
    3: (cv2.rotate, cv2.ROTATE_180),
    4: (cv2.flip, 0),
    6: (cv2.rotate, cv2.ROTATE_90_CLOCKWISE),
    8: (cv2.rotate, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation like ``ImageOps.exif_transpose`` (fast OpenCV copies)."""
    if orientation in (1, 0) or orientation not in range(1, 9):
        return arr
    if arr.ndim == 3 and arr.shape[2] > 4:  # OpenCV handles up to 4 channels; not reached in practice
        arr = np.ascontiguousarray(arr[..., :4])
    src = np.ascontiguousarray(arr)
    if orientation == 5:  # transpose
        out = cv2.transpose(src)
    elif orientation == 7:  # transverse
        out = cv2.rotate(cv2.transpose(src), cv2.ROTATE_180)
    else:
        fn, code = _ORIENT_OPS[orientation]
        out = fn(src, code)
    if arr.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


_CHUNK_PIXELS = 1 << 20  # float conversions work on blocks of rows of about this many pixels


def _to_float(arr: np.ndarray, order: Sequence[int], plan: _Conversion | None) -> torch.Tensor:
    """(H, W[, C]) integer/float array -> (C, H, W) float32 tensor in [0, 1].

    ``order`` says where each output channel is in ``arr``. A float colour conversion
    (``plan``) is applied on the way, block of rows by block of rows so that its temporaries
    stay small: tone curves per channel (lookup tables for integer input), then, for RGB,
    the 3x3 matrix or the 3-D table and the sRGB encoding.
    """
    if arr.ndim == 2:
        arr = arr[..., None]
    h, w, n = arr.shape
    out = torch.empty((n, h, w), dtype=torch.float32)
    out_np = out.numpy()
    is_float = arr.dtype.kind == "f"
    scale = None if is_float else np.float32(1.0 / np.iinfo(arr.dtype).max)
    curves = plan.curves if plan is not None else ()
    luts = _luts(plan.icc, plan.kind, int(np.iinfo(arr.dtype).max)) if curves and not is_float else None
    rows = max(1, _CHUNK_PIXELS // w)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        for c in range(n):
            src = arr[r0:r1, :, order[c]]
            dst = out_np[c, r0:r1]
            if c < len(curves):
                if luts is not None:
                    np.take(luts[c], src, out=dst, mode="clip")
                else:
                    dst[...] = curves[c](np.clip(src, 0.0, 1.0))
            elif is_float:
                np.clip(src, 0.0, 1.0, out=dst)
            else:
                np.multiply(src, scale, out=dst)
        if plan is not None and plan.kind in ("matrix", "grid"):
            flat = out[:3, r0:r1].reshape(3, -1)  # a view: rows of one channel are contiguous
            flat.copy_(plan.apply_rgb(flat))
    return out


def _to_rgb(x: torch.Tensor, is_gray: bool, has_alpha: bool, premultiplied: bool) -> torch.Tensor:
    """(C, H, W) gray/RGB with or without alpha -> (3, H, W), alpha composited over white."""
    n_color = 1 if is_gray else 3
    color = x[:n_color]
    if has_alpha:
        alpha = x[n_color : n_color + 1]
        if premultiplied:
            color = color + (1.0 - alpha)  # C_premult + white * (1 - a)
        else:
            color = torch.addcmul(1.0 - alpha, color, alpha)  # C * a + white * (1 - a)
        color.clamp_(0.0, 1.0)
    if is_gray:
        return color.expand(3, -1, -1).contiguous()
    return color.contiguous()


# --------------------------------------------------------------------------------------------
# Colour management
# --------------------------------------------------------------------------------------------


class _Curve:
    """An ICC tone curve (``curv`` or ``para``): device value in [0, 1] -> linear in [0, 1]."""

    def __init__(self, kind: str, gamma: float = 1.0, table: np.ndarray | None = None, params: tuple = ()):
        self.kind = kind
        self.gamma = gamma
        self.table = table
        self.params = params

    def __call__(self, x: np.ndarray) -> np.ndarray:
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        x = np.clip(np.asarray(x, dtype=dtype), 0.0, 1.0)
        if self.kind == "identity":
            y = x
        elif self.kind == "gamma":
            y = np.power(x, dtype.type(self.gamma))
        elif self.kind == "table":
            t = self.table
            y = np.interp(x, np.linspace(0.0, 1.0, len(t)), t).astype(dtype, copy=False)
        else:
            y = self._para(x, dtype)
        return np.clip(y, 0.0, 1.0).astype(dtype, copy=False)

    @np.errstate(divide="ignore", invalid="ignore")
    def _para(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ftype, p = self.params
        g = p[0]

        def pw(v):
            return np.power(np.maximum(v, 0.0), g)

        if ftype == 0:
            return pw(x)
        a, b = p[1], p[2]
        lin = a * x + b
        if ftype == 1:
            return np.where(x >= -b / a, pw(lin), 0.0)
        if ftype == 2:
            c = p[3]
            return np.where(x >= -b / a, pw(lin) + c, c)
        c, d = p[3], p[4]
        if ftype == 3:
            return np.where(x >= d, pw(lin), c * x)
        e, f = p[5], p[6]
        return np.where(x >= d, pw(lin) + e, c * x + f)


_PARA_NPARAMS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


@dataclass(frozen=True)
class _IccInfo:
    valid: bool
    color_space: str = ""
    description: str = ""
    has_lut: bool = False
    matrix: np.ndarray | None = None  # columns: rXYZ, gXYZ, bXYZ (D50 PCS)
    curves: tuple[_Curve, ...] | None = None  # (r, g, b) or (k,)
    is_srgb: bool = False


def _srgb_eotf(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, np.power((np.maximum(x, 0.04045) + 0.055) / 1.055, 2.4))


def _parse_curve(data: bytes, off: int) -> _Curve:
    sig = data[off : off + 4]
    if sig == b"curv":
        (n,) = struct.unpack_from(">I", data, off + 8)
        if n == 0:
            return _Curve("identity")
        if n == 1:
            (g,) = struct.unpack_from(">H", data, off + 12)
            return _Curve("gamma", gamma=g / 256.0)
        table = np.frombuffer(data, dtype=">u2", count=n, offset=off + 12).astype(np.float64) / 65535.0
        return _Curve("table", table=table)
    if sig == b"para":
        (ftype,) = struct.unpack_from(">H", data, off + 8)
        if ftype not in _PARA_NPARAMS:
            raise ValueError(f"unknown parametric curve type {ftype}")
        n = _PARA_NPARAMS[ftype]
        params = tuple(v / 65536.0 for v in struct.unpack_from(f">{n}i", data, off + 12))
        return _Curve("para", params=(ftype, params))
    raise ValueError(f"unsupported curve type {sig!r}")


@functools.lru_cache(maxsize=64)
def _icc_info(data: bytes) -> _IccInfo:
    """What we need to know about an ICC profile; ``valid=False`` when LittleCMS cannot use it."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        description = (profile.profile.profile_description or "").strip()
        if len(data) < 132 or data[36:40] != b"acsp":
            raise ValueError("not an ICC profile")
        color_space = data[16:20].decode("latin-1").strip()
        pcs = data[20:24].decode("latin-1").strip()
        (count,) = struct.unpack_from(">I", data, 128)
        tags: dict[bytes, int] = {}
        for i in range(count):
            sig, off, size = struct.unpack_from(">4sII", data, 132 + 12 * i)
            if off + size <= len(data):
                tags[sig] = off
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, struct.error) as exc:
        log.debug("unusable ICC profile: %s", exc)
        return _IccInfo(valid=False)

    has_lut = any(t in tags for t in (b"A2B0", b"A2B1", b"A2B2", b"D2B0", b"D2B1", b"D2B2"))
    matrix = curves = None
    try:
        if (
            color_space == "RGB"
            and pcs == "XYZ"
            and all(t in tags for t in (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"))
        ):
            cols = []
            for t in (b"rXYZ", b"gXYZ", b"bXYZ"):
                off = tags[t]
                cols.append([v / 65536.0 for v in struct.unpack_from(">3i", data, off + 8)])
            matrix = np.array(cols, dtype=np.float64).T
            curves = tuple(_parse_curve(data, tags[t]) for t in (b"rTRC", b"gTRC", b"bTRC"))
        elif color_space == "GRAY" and b"kTRC" in tags:
            curves = (_parse_curve(data, tags[b"kTRC"]),)
    except (ValueError, struct.error) as exc:
        log.debug("ICC profile %r: cannot read its curves (%s)", description, exc)
        matrix = curves = None

    is_srgb = False
    if color_space == "RGB":
        if matrix is not None and not has_lut:
            is_srgb = _matches_srgb(matrix, curves)
        else:
            is_srgb = "srgb" in description.lower()
    elif color_space == "GRAY" and curves is not None:
        is_srgb = _curve_matches_srgb(curves[0])
    return _IccInfo(True, color_space, description, has_lut, matrix, curves, is_srgb)


_SRGB_TOL = 0.002


def _curve_matches_srgb(curve: _Curve) -> bool:
    x = np.linspace(0.0, 1.0, 1024)
    return float(np.max(np.abs(curve(x) - _srgb_eotf(x)))) < _SRGB_TOL


def _matches_srgb(matrix: np.ndarray, curves: Sequence[_Curve]) -> bool:
    ref = _srgb_matrix()
    return bool(np.max(np.abs(matrix - ref)) < _SRGB_TOL) and all(_curve_matches_srgb(c) for c in curves)


@functools.lru_cache(maxsize=1)
def _srgb_matrix() -> np.ndarray:
    """Colorants (D50) of LittleCMS's sRGB, read from the profile itself: linear sRGB -> XYZ."""
    data = srgb_icc_profile()
    (count,) = struct.unpack_from(">I", data, 128)
    tags = dict(struct.unpack_from(">4sI", data, 132 + 12 * i) for i in range(count))
    cols = [[v / 65536.0 for v in struct.unpack_from(">3i", data, tags[t] + 8)] for t in (b"rXYZ", b"gXYZ", b"bXYZ")]
    return np.array(cols, dtype=np.float64).T


@functools.lru_cache(maxsize=16)
def _cms_transform(icc: bytes, in_mode: str) -> ImageCms.ImageCmsTransform:
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    dst = ImageCms.ImageCmsProfile(io.BytesIO(srgb_icc_profile()))
    return ImageCms.buildTransform(src, dst, in_mode, "RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL)


class _Conversion:
    """How to bring pixels in a given profile to sRGB.

    ``kind``: ``cms8`` (8-bit RGB: LittleCMS through ImageCms), ``matrix`` (16-bit/float RGB,
    matrix/TRC profile: float, from the profile's own data), ``grid`` (16-bit/float RGB,
    LUT-based profile: a table sampled from LittleCMS), ``gray`` (a gray profile's kTRC, in
    float).
    """

    def __init__(self, kind: str, info: _IccInfo, icc: bytes):
        self.kind = kind
        self.icc = icc
        self.curves: tuple = ()  # per-channel curves applied first (by _to_float)
        if kind == "matrix":
            self.curves = tuple(info.curves or ())
            self.matrix = torch.from_numpy(np.linalg.solve(_srgb_matrix(), info.matrix).astype(np.float32))
        elif kind == "gray":
            self.curves = (_GrayToSrgb(info.curves[0]),)
        elif kind == "grid":
            self.lut = _grid_lut(icc)
            wide = _icc_info(_wide_profile(0)).matrix  # its colorants as stored (s15Fixed16)
            self.matrix = torch.from_numpy(np.linalg.solve(_srgb_matrix(), wide).astype(np.float32))

    def apply_rgb(self, flat: torch.Tensor) -> torch.Tensor:
        """(3, N): linear source RGB (matrix) or encoded source RGB (grid) -> sRGB, new tensor."""
        if self.kind == "grid":
            # grid_sample's (x, y, z) index the last, middle and first LUT axes: (b, g, r)
            grid = flat.flip(0).t().mul(2.0).sub_(1.0).reshape(1, 1, 1, -1, 3)
            res = torch.nn.functional.grid_sample(
                self.lut, grid, mode="bilinear", padding_mode="border", align_corners=True
            )
            flat = res.reshape(3, -1).clamp_(0.0, 1.0).pow_(_WIDE_GAMMA)
        return _srgb_encode_(torch.mm(self.matrix, flat).clamp_(0.0, 1.0))


class _GrayToSrgb:
    """A gray profile's kTRC followed by the sRGB encoding: gray code value -> sRGB gray."""

    def __init__(self, k: _Curve):
        self.k = k

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.k(x)
        enc = np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(np.maximum(y, 0.0031308), 1 / 2.4) - 0.055)
        return np.clip(enc, 0.0, 1.0).astype(y.dtype, copy=False)


@functools.lru_cache(maxsize=16)
def _luts(icc: bytes, kind: str, maxval: int) -> tuple[np.ndarray, ...]:
    """The per-channel curves of a ``matrix``/``gray`` conversion tabulated at every code value."""
    info = _icc_info(icc)
    curves = info.curves if kind == "matrix" else (_GrayToSrgb(info.curves[0]),)
    x = np.arange(maxval + 1, dtype=np.float64) / maxval
    return tuple(c(x).astype(np.float32) for c in curves)


_SRGB_KNEE = 0.0031308


def _srgb_encode_(y: torch.Tensor) -> torch.Tensor:
    """Linear [0, 1] -> sRGB-encoded; overwrites ``y``.

    ``min(12.92 y, 1.055 max(y, knee)^(1/2.4) - 0.055)`` is the piecewise sRGB curve: below
    the knee the power branch is pinned at its knee value, above it the line is the larger.
    """
    t = y.clamp(min=_SRGB_KNEE).pow_(1 / 2.4).mul_(1.055).sub_(0.055)
    return torch.minimum(t, y.mul_(12.92), out=t)


_GRID_N = 52  # 8-bit nodes 0, 5, ..., 255
_WIDE_GAMMA = 2.2
_DITHER = 16  # grid values are averaged over this many offset samplings: about 4 extra bits
_WIDE_RANGE = 254 / 255  # encoded values sit in [o, o + 254/255], o < 1/255, so offsets never clip


def _wide_matrix() -> np.ndarray:
    """ProPhoto (ROMM) primaries with the ICC D50 white: linear wide RGB -> XYZ (D50)."""
    xy = np.array([[0.7347, 0.2653], [0.1596, 0.8404], [0.0366, 0.0001]])
    white = np.array([0.9642, 1.0, 0.8249])
    prim = np.stack([xy[:, 0] / xy[:, 1], np.ones(3), (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]])
    return prim * np.linalg.solve(prim, white)


def _s15(values: Iterable[float]) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


@functools.lru_cache(maxsize=_DITHER)
def _wide_profile(k: int = 0) -> bytes:
    """The grid's working space: ProPhoto primaries and a 2.2 gamma, encoding shifted by ``k``.

    Sampling a LUT profile straight into sRGB would put sRGB's gamut clipping and its steep
    curve near black between the grid nodes; in this wide, smooth space they are not there,
    and both are applied exactly, per pixel, afterwards. Variant ``k`` encodes a linear value
    ``Y`` as ``o_k + (254/255) Y^(1/2.2)`` with ``o_k = k / (_DITHER * 255)``: averaging the
    8-bit samplings of all variants gives each node about 12 bits (subtractive dither).
    """
    white = (0.9642, 1.0, 0.8249)
    m = _wide_matrix()
    o = k / (_DITHER * 255.0)
    d = np.linspace(0.0, 1.0, 4096)
    trc = np.power(np.clip((d - o) / _WIDE_RANGE, 0.0, 1.0), _WIDE_GAMMA)
    curve = b"curv\0\0\0\0" + struct.pack(">I", len(d)) + np.round(trc * 65535).astype(">u2").tobytes()
    text = b"prefstyle wide working space\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    tags = [(b"desc", desc), (b"wtpt", b"XYZ \0\0\0\0" + _s15(white))]
    tags += [(sig, b"XYZ \0\0\0\0" + _s15(m[:, i])) for i, sig in enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))]
    table = 4 + 12 * (len(tags) + 3)
    entries, body = b"", b""
    for sig, payload in tags:
        body += bytes(-len(body) % 4)
        entries += struct.pack(">4sII", sig, 128 + table + len(body), len(payload))
        body += payload
    body += bytes(-len(body) % 4)
    for sig in (b"rTRC", b"gTRC", b"bTRC"):  # the three curves share one copy
        entries += struct.pack(">4sII", sig, 128 + table + len(body), len(curve))
    body += curve + bytes(-len(curve) % 4)
    size = 128 + table + len(body)
    header = struct.pack(
        ">I4sI4s4s4s6H4s", size, b"\0\0\0\0", 0x02100000, b"mntr", b"RGB ", b"XYZ ", 2000, 1, 1, 0, 0, 0, b"acsp"
    )
    header += bytes(68 - len(header)) + _s15(white)
    header += bytes(128 - len(header))
    return header + struct.pack(">I", len(tags) + 3) + entries + body


@functools.lru_cache(maxsize=8)
def _grid_lut(icc: bytes) -> torch.Tensor:
    """(1, 3, N, N, N): the profile's colours at a regular 8-bit grid (r, g, b), wide-encoded."""
    n = _GRID_N
    v = np.linspace(0, 255, n).round().astype(np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    src = Image.fromarray(np.stack([r, g, b], axis=-1).reshape(n * n, n, 3), "RGB")
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    acc = np.zeros((n * n, n, 3), dtype=np.float64)
    for k in range(_DITHER):
        transform = ImageCms.buildTransform(
            source,
            ImageCms.ImageCmsProfile(io.BytesIO(_wide_profile(k))),
            "RGB",
            "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
        acc += np.asarray(ImageCms.applyTransform(src, transform), dtype=np.float64) / 255.0 - k / (_DITHER * 255.0)
    enc = acc / _DITHER / _WIDE_RANGE  # rounding errors average out over the evenly spread offsets
    lut = torch.from_numpy(np.clip(enc, 0.0, 1.0).astype(np.float32).reshape(n, n, n, 3))
    return lut.permute(3, 0, 1, 2).unsqueeze(0).contiguous()  # (1, 3, r, g, b)


def _plan_conversion(icc: bytes, is_gray: bool, dtype: np.dtype, path: Path) -> _Conversion | None:
    info = _icc_info(icc)
    if not info.valid:
        log.warning("%s: embedded ICC profile is damaged; reading the pixels as sRGB", path)
        return None
    if info.is_srgb:
        return None
    if is_gray:
        if info.color_space == "GRAY" and info.curves is not None:
            return _Conversion("gray", info, icc)
        if info.color_space != "GRAY":
            log.warning("%s: %s ICC profile on a gray image; ignored", path, info.color_space)
        else:
            log.warning("%s: gray ICC profile without a usable curve; ignored", path)
        return None
    if info.color_space != "RGB":
        log.warning("%s: %s ICC profile on an RGB image; ignored", path, info.color_space or "unknown")
        return None
    if np.dtype(dtype) == np.uint8:
        return _Conversion("cms8", info, icc)
    if info.matrix is not None and not info.has_lut:
        return _Conversion("matrix", info, icc)
    return _Conversion("grid", info, icc)


def _apply_cms_uint8(arr: np.ndarray, order: Sequence[int], has_alpha: bool, icc: bytes) -> np.ndarray:
    rgb = arr[..., list(order[:3])] if tuple(order[:3]) != (0, 1, 2) or arr.shape[2] != 3 else arr
    im = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    out = np.asarray(ImageCms.applyTransform(im, _cms_transform(icc, "RGB")))
    if has_alpha:
        out = np.concatenate([out, arr[..., order[3] : order[3] + 1]], axis=2)
    return out


# --------------------------------------------------------------------------------------------
# EXIF
# --------------------------------------------------------------------------------------------

_EXIF_HEADER = b"Exif\x00\x00"


def _normalise_exif(raw: bytes | None) -> bytes | None:
    """``b"Exif\\0\\0"`` + TIFF structure, or None when ``raw`` is empty or not EXIF."""
    if not raw:
        return None
    raw = bytes(raw)
    body = raw[6:] if raw.startswith(_EXIF_HEADER) else raw
    if body[:4] not in (b"II*\x00", b"MM\x00*"):
        log.debug("ignoring EXIF block without a TIFF header")
        return None
    return _EXIF_HEADER + body


def _orientation_entry(body: bytes) -> tuple[int, str] | None:
    """Offset of the orientation value in IFD0 of a TIFF structure, and its byte order."""
    try:
        endian = "<" if body[:2] == b"II" else ">"
        (ifd,) = struct.unpack_from(endian + "I", body, 4)
        (n,) = struct.unpack_from(endian + "H", body, ifd)
        for i in range(n):
            entry = ifd + 2 + 12 * i
            tag, typ, count = struct.unpack_from(endian + "HHI", body, entry)
            if tag == 0x0112:
                if typ == 3 and count >= 1:
                    return entry + 8, endian
                return None
    except struct.error:
        return None
    return None


def _exif_orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    body = exif[6:] if exif.startswith(_EXIF_HEADER) else exif
    where = _orientation_entry(body)
    if where is None:
        return 1
    (value,) = struct.unpack_from(where[1] + "H", body, where[0])
    return value if 1 <= value <= 8 else 1


def _exif_with_orientation(exif: bytes | None, orientation: int) -> bytes | None:
    """A copy of ``exif`` (normalised) whose IFD0 orientation is ``orientation`` (patched in place)."""
    exif = _normalise_exif(exif)
    if exif is None:
        return None
    body = bytearray(exif[6:])
    where = _orientation_entry(bytes(body))
    if where is None:
        return exif
    struct.pack_into(where[1] + "H", body, where[0], orientation)
    return _EXIF_HEADER + bytes(body)


# IFD0 tags of a TIFF file that are EXIF-style metadata rather than image structure.
_TIFF_META_TAGS = (270, 271, 272, 274, 282, 283, 296, 305, 306, 315, 316, 33432)


def _sub_ifd(ex: Image.Exif, tag: int) -> dict:
    """The EXIF (0x8769) or GPS (0x8825) sub-IFD of ``ex`` as a dict, the Interop IFD nested in."""
    if tag not in ex:
        return {}
    sub = dict(ex.get_ifd(tag))
    if tag == 0x8769 and 0xA005 in sub and not isinstance(sub[0xA005], dict):
        interop = ex.get_ifd(0xA005)
        if interop:
            sub[0xA005] = dict(interop)
        else:
            del sub[0xA005]
    return sub


def _exif_from_tiff_image(im: Image.Image) -> bytes | None:
    """EXIF block rebuilt from a TIFF file's IFD0 metadata and its EXIF/GPS sub-IFDs."""
    src = im.getexif()
    ex = Image.Exif()
    for tag in _TIFF_META_TAGS:
        if tag in src:
            ex[tag] = src[tag]
    for tag in (0x8769, 0x8825):
        sub = _sub_ifd(src, tag)
        if sub:
            ex[tag] = sub
    if not len(ex):
        return None
    return _normalise_exif(ex.tobytes())


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _as_chw(pixels: torch.Tensor) -> torch.Tensor:
    if not isinstance(pixels, torch.Tensor):
        pixels = torch.as_tensor(np.asarray(pixels))
    if pixels.dim() == 4:
        if pixels.shape[0] != 1:
            raise ValueError(f"write_image takes one image; got a batch of {pixels.shape[0]}")
        pixels = pixels[0]
    if pixels.dim() != 3 or pixels.shape[0] != 3 or pixels.shape[1] < 1 or pixels.shape[2] < 1:
        raise ValueError(f"pixels must be (3, H, W) or (1, 3, H, W); got {tuple(pixels.shape)}")
    return pixels.detach().to(device="cpu", dtype=torch.float32)


def _gray_of(x: torch.Tensor) -> torch.Tensor:
    """(3, H, W) sRGB in [0, 1] -> (1, H, W): the luminance (Rec. 709, linear light), sRGB-encoded."""
    lin = torch.nan_to_num(x, nan=0.0).clamp(0.0, 1.0)
    lin = torch.where(lin <= 0.04045, lin / 12.92, ((lin + 0.055) / 1.055).pow(2.4))
    y = (0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]).clamp_(0.0, 1.0)
    return _srgb_encode_(y)[None]


def _quantize(x: torch.Tensor, bit_depth: int) -> np.ndarray:
    """(C, H, W) float -> (H, W, C) uint8/uint16 ((H, W) for one channel), clamped to [0, 1] and rounded."""
    maxval = 255.0 if bit_depth == 8 else 65535.0
    q = torch.nan_to_num(x, nan=0.0).clamp_(0.0, 1.0).mul_(maxval).round_()
    dtype = torch.uint8 if bit_depth == 8 else torch.uint16
    arr = q.to(dtype).permute(1, 2, 0).contiguous().numpy()
    return arr[..., 0] if arr.shape[2] == 1 else arr


def _write_jpeg(tmp: Path, arr: np.ndarray, exif: bytes | None, icc: bytes | None, quality: int) -> None:
    kwargs: dict = {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    if icc:
        kwargs["icc_profile"] = icc
    if exif:
        if len(exif) > _JPEG_MAX_EXIF:
            exif = _shrink_exif(exif)
        if exif is not None:
            kwargs["exif"] = exif
    Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB").save(tmp, format="JPEG", **kwargs)


def _write_webp(tmp: Path, arr: np.ndarray, exif: bytes | None, icc: bytes | None, quality: int) -> None:
    kwargs: dict = {"quality": quality, "lossless": quality == 100, "method": 4}
    if icc:
        kwargs["icc_profile"] = icc
    if exif:
        kwargs["exif"] = exif
    Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB").save(tmp, format="WEBP", **kwargs)


def _shrink_exif(exif: bytes) -> bytes | None:
    """Drop the thumbnail (IFD1) and maker note so the block fits in one JPEG marker, or give up."""
    try:
        ex = Image.Exif()
        ex.load(exif)
        sub = ex.get_ifd(0x8769)
        sub.pop(0x927C, None)
        small = _normalise_exif(ex.tobytes())
        if small is not None and len(small) <= _JPEG_MAX_EXIF:
            log.warning("EXIF block too large for JPEG; dropped its thumbnail and maker note")
            return small
    except (OSError, ValueError, TypeError, KeyError, struct.error) as exc:
        log.debug("cannot shrink EXIF: %s", exc)
    log.warning("EXIF block too large for JPEG (%d bytes); written without EXIF", len(exif))
    return None


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


def _encode_png(arr: np.ndarray, exif: bytes | None, icc: bytes | None) -> bytes:
    if arr.ndim == 2:
        bgr = arr
    else:
        bgr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA if arr.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError("PNG encoding failed")
    data = buf.tobytes()
    # Rebuild the chunk list: IHDR, then our colour/EXIF chunks, then the rest minus any of ours.
    chunks: list[bytes] = []
    pos = 8
    extra = []
    if icc:
        extra.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if exif:
        extra.append(_png_chunk(b"eXIf", exif[6:]))
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = data[pos + 4 : pos + 8]
        chunk = data[pos : pos + 12 + length]
        pos += 12 + length
        if ctype in (b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"eXIf") and (icc or ctype == b"eXIf"):
            continue
        chunks.append(chunk)
        if ctype == b"IHDR":
            chunks.extend(extra)
    return data[:8] + b"".join(chunks)


def _write_tiff(tmp: Path, arr: np.ndarray, exif: bytes | None, icc: bytes | None) -> None:
    extratags = []
    datetime = None
    software = "prefstyle"
    sub_ifds: dict[int, dict] = {}
    ex = None
    if exif:
        try:
            ex = Image.Exif()
            ex.load(exif)
            subs = {tag: _sub_ifd(ex, tag) for tag in (0x8769, 0x8825)}
        except (OSError, ValueError, TypeError, KeyError, SyntaxError, struct.error) as exc:
            log.warning("%s: EXIF block cannot be parsed (%s); TIFF written without it", tmp, exc)
            ex = None
    if ex is not None:
        for tag in (270, 271, 272, 315, 316, 33432):
            value = _ascii_tag(ex.get(tag))
            if value:
                extratags.append((tag, "s", 0, value, True))
        software = _ascii_tag(ex.get(305)) or software
        datetime = _exif_datetime(ex.get(306))
        extratags.append((274, "H", 1, 1, True))
        for tag, sub in subs.items():
            if sub:
                sub_ifds[tag] = sub
                # tifffile refuses to write these pointer tags: a private placeholder is
                # written instead and renamed once the sub-IFD is in the file
                extratags.append((_PLACEHOLDER[tag], "I", 1, 0, True))
    tifffile.imwrite(
        tmp,
        arr,
        photometric="minisblack" if arr.ndim == 2 else "rgb",
        extrasamples=("unassalpha",) if arr.ndim == 3 and arr.shape[2] == 4 else None,
        compression="zlib",
        compressionargs={"level": 1},
        predictor=True,
        iccprofile=icc or None,
        software=software,
        datetime=datetime,
        metadata=None,
        extratags=extratags,
        byteorder="<",
    )
    if sub_ifds:
        _attach_sub_ifds(tmp, sub_ifds)


def _ascii_tag(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip("\0 ")
    return value if value and value.isascii() and value.isprintable() else None


def _exif_datetime(value: object) -> str | None:
    value = _ascii_tag(value)
    if value is None:
        return None
    try:
        _dt.datetime.strptime(value, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    return value


_PLACEHOLDER = {0x8769: 65000, 0x8825: 65001}


def _attach_sub_ifds(path: Path, sub_ifds: dict[int, dict]) -> None:
    """Append the EXIF/GPS sub-IFDs to a (classic, little-endian) TIFF and point IFD0 at them."""
    with tifffile.TiffFile(path) as tf:
        page = tf.pages.first
        if tf.is_bigtiff or tf.byteorder != "<":
            raise OSError("unexpected TIFF layout from tifffile")
        ifd0 = page.offset
        value_at = {tag: page.tags[_PLACEHOLDER[tag]].valueoffset for tag in sub_ifds}
    with open(path, "r+b") as fh:
        for tag, values in sub_ifds.items():
            fh.seek(0, os.SEEK_END)
            pos = fh.tell()
            if pos % 2:
                fh.write(b"\0")
                pos += 1
            ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=b"II*\x00\x08\x00\x00\x00", group=tag)
            for key, value in values.items():
                try:
                    ifd[key] = value
                except (TypeError, ValueError) as exc:
                    log.debug("EXIF tag %#x not written to TIFF: %s", key, exc)
            fh.write(ifd.tobytes(pos))
            fh.seek(value_at[tag])
            fh.write(struct.pack("<I", pos))
        # rename the placeholders and keep IFD0's entries sorted by tag, as TIFF requires
        fh.seek(ifd0)
        (count,) = struct.unpack("<H", fh.read(2))
        entries = [bytearray(fh.read(12)) for _ in range(count)]
        renames = {v: k for k, v in _PLACEHOLDER.items()}
        for e in entries:
            (code,) = struct.unpack_from("<H", e)
            if code in renames:
                struct.pack_into("<H", e, 0, renames[code])
        entries.sort(key=lambda e: struct.unpack_from("<H", e)[0])
        fh.seek(ifd0 + 2)
        fh.write(b"".join(entries))
