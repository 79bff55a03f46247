"""Decoding: image files -> :class:`ImageData` (sRGB, upright, bit depth, EXIF and ICC kept).

The rules (formats, orientation, colour, channels, safety) are in :mod:`prefstyle.imaging.io`'s
docstring. Colour management lives in :mod:`prefstyle.imaging.icc`, EXIF handling in
:mod:`prefstyle.imaging.metadata`, camera raw development in :mod:`prefstyle.imaging.raw`.

Plain 8-bit RGB files (JPEG, 8-bit PNG/TIFF/WebP without alpha and without a colour
conversion) are kept as their ``(H, W, 3)`` uint8 array (:attr:`ImageData.rgb8`); the float
``pixels`` are then made on first use (``rgb8 / 255`` exactly), so 8-bit pipelines
(``prefstyle enhance``'s LUT path) never hold a float copy of the photo. torch is imported
only where float pixels are made, so reading a plain 8-bit file does not import it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.icc import (
    _apply_cms_uint8,
    _cms_transform,
    _Conversion,
    _icc_info,
    _luts,
    _plan_conversion,
    _srgb_encode_,  # noqa: F401  (re-exported by io)
    srgb_icc_profile,
)
from prefstyle.imaging.metadata import (
    _exif_from_tiff_image,
    _exif_orientation,
    _exif_with_orientation,
    _normalise_exif,
)
from prefstyle.imaging.raw import RAW_EXTENSIONS as _RAW_EXTENSIONS

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "RAW_EXTENSIONS",
    "READ_EXTENSIONS",
    "ImageData",
    "list_images",
    "load_image",
    "read_image",
]

log = logging.getLogger("prefstyle.imaging.io")

#: Largest image (width × height) that :func:`read_image` decodes unless told otherwise.
DEFAULT_MAX_PIXELS = 200_000_000

#: Extensions :func:`list_images` picks up in folders (besides ``RAW_EXTENSIONS``).
READ_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp"})
#: Camera RAW extensions, developed with the optional ``rawpy`` package.
RAW_EXTENSIONS = _RAW_EXTENSIONS

_UNSET = object()


class ImageData:
    """A decoded image and what must travel with it to the output file.

    Built by :func:`read_image`, or by hand from ``pixels`` (and a ``bit_depth``). When only
    ``rgb8`` is given, ``pixels`` are computed from it on first access (and kept).
    """

    __slots__ = (
        "_pixels",
        "alpha",
        "bit_depth",
        "exif",
        "format",
        "grayscale",
        "icc",
        "path",
        "rgb8",
        "source_icc_converted",
    )

    def __init__(
        self,
        pixels: torch.Tensor | None = None,
        bit_depth: int = 8,
        exif: bytes | None = None,
        icc: bytes | None = None,
        source_icc_converted: bool = False,
        format: str = "",
        path: Path | None = None,
        rgb8: np.ndarray | None = None,
        alpha: torch.Tensor | None = None,
        grayscale: bool = False,
    ):
        if pixels is None and rgb8 is None:
            raise ValueError("ImageData needs pixels or rgb8")
        self._pixels = pixels
        #: 8 or 16: the precision of the source (float TIFFs and RAW count as 16).
        self.bit_depth = bit_depth
        #: Raw EXIF block (``b"Exif\\0\\0"`` + TIFF structure), orientation reset to 1.
        self.exif = exif
        #: The file's own embedded ICC profile, as it was.
        self.icc = icc
        #: True when the pixels were converted from the embedded profile to sRGB.
        self.source_icc_converted = source_icc_converted
        #: ``"JPEG"``, ``"PNG"``, ``"TIFF"``, ``"RAW"``, or Pillow's name for other formats.
        self.format = format
        self.path = path
        #: The same pixels as an ``(H, W, 3)`` uint8 array when the file held plain 8-bit RGB that
        #: needed no colour conversion (``pixels == rgb8 / 255`` exactly), else None: 8-bit fast
        #: paths use it instead of quantizing ``pixels`` again.
        self.rgb8 = rgb8
        #: ``(1, H, W)`` float32 straight alpha in ``[0, 1]``, upright; only when read with
        #: ``keep_alpha`` from a file that has one (``pixels`` are then the un-composited colour).
        self.alpha = alpha
        #: True when the file held one colour channel (gray, or gray + alpha).
        self.grayscale = grayscale

    @property
    def pixels(self) -> torch.Tensor:
        """``(3, H, W)`` float32, sRGB-encoded, in ``[0, 1]``, upright (made from ``rgb8`` on first use)."""
        if self._pixels is None:
            self._pixels = rgb8_to_float(self.rgb8)
        return self._pixels

    @pixels.setter
    def pixels(self, value: torch.Tensor) -> None:
        self._pixels = value

    @property
    def height(self) -> int:
        return int(self.rgb8.shape[0] if self._pixels is None else self._pixels.shape[-2])

    @property
    def width(self) -> int:
        return int(self.rgb8.shape[1] if self._pixels is None else self._pixels.shape[-1])

    def __repr__(self) -> str:
        return (
            f"ImageData({self.width}x{self.height}, bit_depth={self.bit_depth}, format={self.format!r}, "
            f"path={self.path!r}, grayscale={self.grayscale}, alpha={self.alpha is not None})"
        )

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


def rgb8_to_float(rgb8: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32 in [0, 1], exactly what :func:`read_image` gives."""
    return _to_float(rgb8, (0, 1, 2), None)


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


def list_images(paths: Iterable[str | Path], recursive: bool = True) -> list[Path]:
    """Expand ``paths`` into image files.

    Files are kept as given (whatever their extension: reading them tells what is wrong);
    folders contribute the files with a ``READ_EXTENSIONS`` or ``RAW_EXTENSIONS`` extension
    (any case), sorted by their path below the folder, descending into sub-folders when
    ``recursive``. Hidden files and folders (name starting with ``.``, which includes partial
    files left by atomic writes and macOS ``._`` files) are skipped, and so are pipes and devices
    found in folders (reading one could wait forever). Duplicates are dropped,
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
                        f = Path(root) / name
                        if f.exists() and not f.is_file():  # a pipe or a device: reading it could block forever
                            continue
                        found.append(((rel_root / name).as_posix(), f))
            for _, f in sorted(found, key=lambda item: item[0]):
                add(f)
        elif p.exists():
            add(p)
        else:
            raise PrefstyleError("no such file or folder", p)
    return out


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
    import tifffile  # 0.1-0.3 s to import: only for TIFFs

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
    from prefstyle.imaging.raw import (
        develop_raw,  # the neutral rendering, see imaging/raw.py
    )

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
) -> tuple[torch.Tensor | None, bool, np.ndarray | None, torch.Tensor | None, bool]:
    """Colour-manage, orient, convert to float (3, H, W), composite alpha (or keep it apart).

    Returns the pixels (None for plain 8-bit RGB, no conversion: then the (H, W, 3) uint8 RGB
    array stands for them, ``pixels == rgb8 / 255``), whether they were colour-converted, that
    uint8 array, the (1, H, W) straight alpha when ``keep_alpha`` and there is one, and whether
    the image is gray."""
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
    if plan is None and arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
        # plain 8-bit RGB: kept as uint8, the float pixels are made on first use (ImageData.pixels)
        if tuple(order) == (2, 1, 0):
            rgb8 = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_BGR2RGB)
        elif tuple(order) == (0, 1, 2):
            rgb8 = np.ascontiguousarray(arr)
        else:
            rgb8 = np.ascontiguousarray(arr[..., list(order)])
        return None, converted, rgb8, None, False
    import torch

    x = _to_float(arr, order, plan)
    if keep_alpha and has_alpha:
        n_color = 1 if is_gray else 3
        alpha = x[n_color : n_color + 1].clone()
        color = x[:n_color]
        if dec.premultiplied:
            color = torch.where(alpha > 0, color / alpha.clamp(min=1e-12), color).clamp_(0.0, 1.0)
        if is_gray:
            color = color.expand(3, -1, -1)
        return color.contiguous(), converted, None, alpha, is_gray
    return _to_rgb(x, is_gray, has_alpha, dec.premultiplied), converted, None, None, is_gray


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
    import torch

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
    import torch

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
