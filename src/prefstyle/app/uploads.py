"""Checking and storing a participant's own photos (the "see my photos retouched" box).

Refused with a clear message (:class:`~prefstyle.app.flow.FlowError`):

* file names with path parts or tricks (``/``, ``\\``, ``..``, NUL and control characters, a
  leading dot), or longer than 200 characters;
* files larger than the study's ``uploads.max_mb`` (also checked from ``Content-Length`` before
  the body is read, and counted while it streams);
* files that are not JPEG, PNG or WebP by their first bytes (whatever their name says);
* decompression bombs (more than ``uploads.max_megapixels``, refused from the header before
  decoding) and truncated or corrupt files (:func:`prefstyle.imaging.io.read_image`);
* more than ``uploads.max_files`` photos per participant.

The uploaded bytes are never stored or served: the decoded photo is downscaled to the study's
image size and re-encoded as JPEG under the participant's folder, named by a random key.
"""

from __future__ import annotations

import secrets
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from prefstyle.app.flow import FlowError
from prefstyle.app.study import UploadLimits
from prefstyle.errors import PrefstyleError

if TYPE_CHECKING:
    import torch

MAGIC = {"JPEG": (b"\xff\xd8\xff",), "PNG": (b"\x89PNG\r\n\x1a\n",), "WEBP": (b"RIFF",)}
TYPE_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}


def check_filename(name: str | None) -> str:
    """The name to show for an upload; refuses names with path parts or control characters."""
    if not name:
        raise FlowError(400, "the upload has no file name")
    if len(name) > 200:
        raise FlowError(400, "the file name is too long (at most 200 characters)")
    if "/" in name or "\\" in name or name.startswith(".") or ".." in name:
        raise FlowError(400, "the file name must be a plain name, without folders or '..'")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name):
        raise FlowError(400, "the file name contains control or invisible characters")
    return name


def sniff(head: bytes) -> str | None:
    """``"JPEG"``, ``"PNG"``, ``"WEBP"`` from a file's first bytes, or None."""
    for kind, magics in MAGIC.items():
        if any(head.startswith(m) for m in magics):
            if kind == "WEBP" and head[8:12] != b"WEBP":
                continue
            return kind
    return None


def bare_message(e: PrefstyleError) -> str:
    """The error's message without the (server-side) file path it names."""
    text = str(e)
    if e.path is not None:
        prefix = f"{e.path}:{e.line}: " if e.line is not None else f"{e.path}: "
        text = text.removeprefix(prefix)
    return text


def check_type(head: bytes, limits: UploadLimits) -> str:
    """The image type from a file's first 16 bytes; FlowError 415 when not one the study accepts."""
    kind = sniff(head)
    allowed = [t for t in limits.types if t in MAGIC]
    if kind is None or kind not in allowed:
        names = [TYPE_NAMES[t] for t in allowed]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise FlowError(415, f"this file is not a {listed} image")
    return kind


def decode_upload(tmp: Path, limits: UploadLimits, size: int) -> torch.Tensor:
    """The photo in ``tmp`` as ``(3,h,w)`` sRGB in [0,1], long side at most ``size``; FlowError if refused."""
    from prefstyle.app.catalog import fit_size
    from prefstyle.imaging.io import read_image

    with open(tmp, "rb") as fh:
        check_type(fh.read(16), limits)
    try:
        img = read_image(tmp, max_pixels=limits.max_pixels)
    except PrefstyleError as e:
        msg = bare_message(e)
        if "decompression-bomb" in msg:
            raise FlowError(
                413, f"the image has too many pixels (at most {limits.max_pixels / 1e6:g} megapixels)"
            ) from None
        raise FlowError(400, f"this image cannot be read: {msg}") from None
    return fit_size(img.pixels, size)


def store_upload(folder: Path, pixels: torch.Tensor) -> str:
    """Write the downscaled photo as ``folder/uploads/<key>.jpg``; returns the key."""
    from prefstyle.imaging.io import write_image

    key = secrets.token_hex(8)
    write_image(folder / "uploads" / f"{key}.jpg", pixels, quality=92)
    return key
