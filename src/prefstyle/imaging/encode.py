"""Encoding: sRGB pixels -> JPEG, PNG, TIFF or WebP files, atomically, with bit depth, EXIF and ICC.

The rules (formats, quantization, alpha and gray, ICC policy) are in :mod:`prefstyle.imaging.io`'s
docstring. Pixels are a ``(3, H, W)`` float tensor in [0, 1], or, for 8-bit outputs of 8-bit
pipelines, an ``(H, W, 3)`` uint8 array written as it is (no float round trip). torch is imported
only for float pixels: writing a uint8 array or a Pillow image does not import it.
"""

from __future__ import annotations

import logging
import struct
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_path
from prefstyle.imaging.icc import _srgb_encode_
from prefstyle.imaging.metadata import (
    _JPEG_MAX_EXIF,
    _PLACEHOLDER,
    _ascii_tag,
    _attach_sub_ifds,
    _exif_datetime,
    _exif_with_orientation,
    _shrink_exif,
    _sub_ifd,
)

if TYPE_CHECKING:
    import torch

    from prefstyle.imaging.decode import ImageData

__all__ = ["WRITE_EXTENSIONS", "write_image", "write_like"]

log = logging.getLogger("prefstyle.imaging.io")

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
    """Write sRGB ``pixels`` (``(3, H, W)`` or ``(1, 3, H, W)``, values clamped to [0, 1]; or an
    ``(H, W, 3)`` uint8 array or a Pillow ``RGB`` image, written as they are at 8 bit).

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

    if isinstance(pixels, Image.Image):
        if pixels.mode != "RGB":
            raise ValueError(f"a Pillow image to write must be RGB, got {pixels.mode}")
        if bit_depth == 8 and alpha is None and not grayscale and fmt in ("JPEG", "WEBP"):
            return _write_arr(path, fmt, pixels, exif, icc, int(quality), bit_depth)
        pixels = np.asarray(pixels)
    if _is_rgb8(pixels) and bit_depth == 8 and alpha is None and not grayscale:
        return _write_arr(path, fmt, np.ascontiguousarray(pixels), exif, icc, int(quality), bit_depth)
    import torch  # float outputs (16 bit, alpha, gray, float pixels) only

    if _is_rgb8(pixels):
        pixels = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float().div_(255.0)
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
    return _write_arr(path, fmt, _quantize(x, bit_depth), exif, icc, int(quality), bit_depth)


def _is_rgb8(pixels: object) -> bool:
    return isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3


def _write_arr(
    path: Path,
    fmt: str,
    arr: np.ndarray | Image.Image,
    exif: bytes | None,
    icc: bytes | None,
    quality: int,
    bit_depth: int,
) -> int:
    """Write the quantized ``(H, W[, C])`` array atomically in ``fmt``; returns ``bit_depth``."""
    try:
        with atomic_path(path) as tmp:
            if fmt == "JPEG":
                _write_jpeg(tmp, arr, exif, icc, quality, dest=path)
            elif fmt == "WEBP":
                _write_webp(tmp, arr, exif, icc, quality)
            elif fmt == "PNG":
                tmp.write_bytes(_encode_png(arr, exif, icc))
            else:
                _write_tiff(tmp, arr, exif, icc, dest=path)
    except OSError as exc:
        raise PrefstyleError(f"cannot write image: {exc.strerror or exc}", path) from exc
    return bit_depth


def write_like(path: str | Path, pixels: torch.Tensor | np.ndarray, like: ImageData, quality: int = 95) -> int:
    """Write ``pixels`` (as :func:`write_image` takes them) with the bit depth, EXIF and output ICC
    (:attr:`ImageData.output_icc`) of ``like``.

    A gray ``like`` gives a gray output (the luminance of ``pixels``); ``like.alpha`` (read with
    ``keep_alpha``) is written back as the alpha channel. Pixels with NaN or infinite values
    (a broken model or profile) are refused rather than written as black.
    """
    # a tensor means torch is imported (arrays and images need no check; another thread may be
    # importing torch meanwhile, so its module can be there without its attributes yet)
    tm = sys.modules.get("torch")
    tensor = getattr(tm, "Tensor", None)
    if (
        tm is not None
        and tensor is not None
        and isinstance(pixels, tensor)
        and pixels.is_floating_point()
        and not bool(tm.isfinite(pixels).all())
    ):
        raise PrefstyleError(
            "the retouched image holds NaN or infinite values (a damaged profile or model?); not written",
            like.path if like.path is not None else path,
        )
    icc = like.output_gray_icc if like.grayscale else like.output_icc
    return write_image(
        path,
        pixels,
        bit_depth=like.bit_depth,
        exif=like.exif,
        icc=icc,
        quality=quality,
        alpha=like.alpha,
        grayscale=like.grayscale,
    )


def _as_chw(pixels: torch.Tensor) -> torch.Tensor:
    import torch

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
    import torch

    lin = torch.nan_to_num(x, nan=0.0).clamp(0.0, 1.0)
    lin = torch.where(lin <= 0.04045, lin / 12.92, ((lin + 0.055) / 1.055).pow(2.4))
    y = (0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]).clamp_(0.0, 1.0)
    return _srgb_encode_(y)[None]


def _quantize(x: torch.Tensor, bit_depth: int) -> np.ndarray:
    """(C, H, W) float -> (H, W, C) uint8/uint16 ((H, W) for one channel), clamped to [0, 1] and rounded."""
    import torch

    maxval = 255.0 if bit_depth == 8 else 65535.0
    q = torch.nan_to_num(x, nan=0.0).clamp_(0.0, 1.0).mul_(maxval).round_()
    dtype = torch.uint8 if bit_depth == 8 else torch.uint16
    arr = q.to(dtype).permute(1, 2, 0).contiguous().numpy()
    return arr[..., 0] if arr.shape[2] == 1 else arr


def _write_jpeg(
    tmp: Path,
    arr: np.ndarray | Image.Image,
    exif: bytes | None,
    icc: bytes | None,
    quality: int,
    dest: Path | None = None,
) -> None:
    kwargs: dict = {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    if icc:
        kwargs["icc_profile"] = icc
    if exif:
        if len(exif) > _JPEG_MAX_EXIF:
            exif = _shrink_exif(exif, dest or tmp)
        if exif is not None:
            kwargs["exif"] = exif
    img = arr if isinstance(arr, Image.Image) else Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
    img.save(tmp, format="JPEG", **kwargs)


def _write_webp(tmp: Path, arr: np.ndarray | Image.Image, exif: bytes | None, icc: bytes | None, quality: int) -> None:
    kwargs: dict = {"quality": quality, "lossless": quality == 100, "method": 4}
    if icc:
        kwargs["icc_profile"] = icc
    if exif:
        kwargs["exif"] = exif
    img = arr if isinstance(arr, Image.Image) else Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB")
    img.save(tmp, format="WEBP", **kwargs)


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


def _write_tiff(tmp: Path, arr: np.ndarray, exif: bytes | None, icc: bytes | None, dest: Path | None = None) -> None:
    import tifffile  # 0.1-0.3 s to import: only for TIFFs

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
            log.warning("%s: EXIF block cannot be parsed (%s); TIFF written without it", dest or tmp, exc)
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
