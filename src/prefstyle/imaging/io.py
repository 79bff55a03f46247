"""Image I/O: read and write photographs as float sRGB tensors, keeping bit depth, EXIF and ICC.

This module is the stable import path; the code lives in four modules by concern:
:mod:`prefstyle.imaging.decode` (files -> :class:`ImageData`), :mod:`prefstyle.imaging.icc`
(colour management), :mod:`prefstyle.imaging.metadata` (EXIF) and
:mod:`prefstyle.imaging.encode` (pixels -> files). Camera raw files are developed by
:mod:`prefstyle.imaging.raw`. 8-bit pipelines can stay in uint8 end to end: plain 8-bit RGB
files keep their decoded array (:attr:`ImageData.rgb8`, float ``pixels`` made on first use) and
:func:`write_image` / :func:`write_like` take an ``(H, W, 3)`` uint8 array as it is.

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

from typing import Any

from prefstyle.imaging.decode import (
    DEFAULT_MAX_PIXELS,
    RAW_EXTENSIONS,
    READ_EXTENSIONS,
    ImageData,
    _finish,
    _orient,
    _sniff,
    _to_float,
    list_images,
    load_image,
    read_image,
    rgb8_to_float,
)
from prefstyle.imaging.encode import (
    WRITE_EXTENSIONS,
    _encode_png,
    _png_chunk,
    _quantize,
    write_image,
    write_like,
)
from prefstyle.imaging.icc import (
    _apply_cms_uint8,
    _Conversion,
    _icc_info,
    _plan_conversion,
    _srgb_encode_,
    _srgb_matrix,
    srgb_icc_profile,
)
from prefstyle.imaging.metadata import (
    _exif_from_tiff_image,
    _exif_orientation,
    _exif_with_orientation,
    _normalise_exif,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "RAW_EXTENSIONS",
    "READ_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "ImageData",
    "list_images",
    "load_image",
    "read_image",
    "rgb8_to_float",
    "srgb_icc_profile",
    "write_image",
    "write_like",
]

_PRIVATE = (
    _Conversion,
    _apply_cms_uint8,
    _encode_png,
    _exif_from_tiff_image,
    _exif_orientation,
    _exif_with_orientation,
    _finish,
    _icc_info,
    _normalise_exif,
    _orient,
    _plan_conversion,
    _png_chunk,
    _quantize,
    _sniff,
    _srgb_encode_,
    _srgb_matrix,
    _to_float,
)  # helpers tests and tools reach for


def __getattr__(name: str) -> Any:
    if name == "tifffile":  # the TIFF codec module, imported on first use (0.1-0.3 s)
        import tifffile

        return tifffile
    raise AttributeError(f"module 'prefstyle.imaging.io' has no attribute {name!r}")
