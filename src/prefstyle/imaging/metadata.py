"""EXIF metadata for :mod:`prefstyle.imaging.decode` and :mod:`prefstyle.imaging.encode`.

Blocks are kept as raw bytes (``b"Exif\\0\\0"`` + TIFF structure): the orientation is read and
patched in place (every other byte kept), TIFF files' IFD0 metadata and EXIF/GPS sub-IFDs are
rebuilt into such a block on reading and written back as proper sub-IFDs on writing, and a
block too large for one JPEG marker is shrunk (thumbnail and maker note dropped).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import struct
from pathlib import Path

from PIL import Image, TiffImagePlugin

log = logging.getLogger("prefstyle.imaging.io")

_JPEG_MAX_EXIF = 65533  # one APP1 marker segment


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


def _shrink_exif(exif: bytes, where: str | Path | None = None) -> bytes | None:
    """Drop the thumbnail (IFD1) and maker note so the block fits in one JPEG marker, or give up.

    ``where``: the file being written, named in the warning (in a batch, which photo it was)."""
    at = f"{where}: " if where is not None else ""
    try:
        ex = Image.Exif()
        ex.load(exif)
        sub = ex.get_ifd(0x8769)
        sub.pop(0x927C, None)
        small = _normalise_exif(ex.tobytes())
        if small is not None and len(small) <= _JPEG_MAX_EXIF:
            log.warning("%sEXIF block too large for JPEG; dropped its thumbnail and maker note", at)
            return small
    except (OSError, ValueError, TypeError, KeyError, struct.error) as exc:
        log.debug("cannot shrink EXIF: %s", exc)
    log.warning("%sEXIF block too large for JPEG (%d bytes); written without EXIF", at, len(exif))
    return None


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
    import tifffile

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
