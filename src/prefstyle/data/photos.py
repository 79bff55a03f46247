"""Real photographs for the content pool: bundled sources, user folders, decoding and a cache.

Two kinds of source, both described by :class:`PhotoSource`:

* **Bundled** (:func:`bundled_photos`): the photographs shipped inside packages this project
  already installs (scikit-image, scikit-learn, matplotlib: 8 photos) and, when installed, in the
  Debian wallpaper packages ``mate-backgrounds``, ``lomiri-wallpapers-16.04`` and
  ``plasma-workspace-wallpapers`` (34 more; ``make`` installs them where it runs as root with
  apt). Each is on an explicit allow-list of *real, colour photographs*: the illustrations,
  renders, abstract art and greyscale images those packages also ship are left out. A missing
  package only means fewer photos. The list, with each file's author and licence, is
  ``docs/PHOTOS.md``.
* **User folders** (:func:`folder_photos`): every JPEG/PNG/TIFF (and camera RAW when ``rawpy``
  is installed) under a folder, recursively. Files that cannot be used are reported with a
  reason, never silently dropped; greyscale photographs are rejected (:func:`is_greyscale`),
  since a colour-and-tone pool has no use for them.

Decoding goes through :func:`prefstyle.imaging.io.read_image` (EXIF orientation, ICC profile to
sRGB, 8/16-bit, alpha over white), so every photo arrives as a ``(3, H, W)`` float tensor of
display-referred sRGB in [0, 1]. :func:`working_copy` turns it into a :class:`WorkingCopy`: the
photo downscaled to at most ``max_side`` px on its long side plus a few halvings of it (a small
pyramid, float16), kept in a bounded, process-wide LRU cache, so that a multi-megapixel
wallpaper is decoded once per process however many crops are cut from it, and a small crop is
resized from the smallest level that still has enough pixels.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
import torch

from prefstyle.data.photo_list import bundled_photo_entries  # the allow-lists (torch-free module)
from prefstyle.errors import PrefstyleError
from prefstyle.imaging import io as imio
from prefstyle.imaging.resize import long_side_size

#: A photo whose mean chroma (``max(R,G,B) - min(R,G,B)`` of sRGB values in [0, 1], averaged
#: over a <= 256 px thumbnail) is below this is greyscale. 0.015 is about 4/255: JPEG chroma
#: noise in a black-and-white file stays well below it, while the least colourful photo on the
#: bundled allow-list (lomiri ``free``, a grey ceiling with a green bird) measures 0.027.
GREYSCALE_CHROMA = 0.015

#: Default long-side limit of the decoded working copy kept in the cache (pixels).
DEFAULT_MAX_SIDE = 2048


@dataclasses.dataclass(frozen=True)
class PhotoSource:
    """One photograph the pool can take scenes from.

    ``id`` is unique within a pool and path-like (``"skimage/astronaut"``, ``"mate/Aqua"``, or a
    user file's path relative to its folder, without extension). ``loader()`` returns the whole
    photo as a ``(3, H, W)`` tensor, float in [0, 1] (or uint8). ``origin`` says where it comes
    from (package and file). ``size`` is ``(H, W)`` when known without decoding.
    """

    id: str
    loader: Callable[[], torch.Tensor] = dataclasses.field(compare=False, repr=False)
    licence: str
    origin: str
    author: str = ""
    package: str = ""
    path: Path | None = None
    size: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A file a folder scan did not use, and why (shown to the user, e.g. by the CLI)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _read_file(path: Path) -> torch.Tensor:
    return imio.read_image(path).pixels


def _file_loader(path: Path) -> Callable[[], torch.Tensor]:
    """The loader of a photo file (a partial, so that pools pickle into DataLoader workers)."""
    return functools.partial(_read_file, path)


def _header_size(path: Path) -> tuple[int, int] | None:
    """``(H, W)`` of a photo file from its header alone, or None when Pillow cannot tell.

    Only used for the bundled files, which carry no EXIF rotation (checked when they were
    listed), so the header size is the decoded size.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (OSError, ValueError):
        return None


def _file_source(pid: str, path: Path, licence: str, origin: str, author: str, package: str) -> PhotoSource:
    return PhotoSource(
        id=pid,
        loader=_file_loader(path),
        licence=licence,
        origin=origin,
        author=author,
        package=package,
        path=path,
        size=_header_size(path),
    )


def bundled_photos(system: bool = True, share_dir: str | Path = "/usr/share") -> list[PhotoSource]:
    """The allow-listed real photographs available on this machine, in a fixed order.

    The Python-package photos come first (8 when scikit-image, scikit-learn and matplotlib are
    installed, as they are with prefstyle); with ``system=True`` the Debian wallpaper photos found
    under ``share_dir`` follow. A file that is absent is left out without an error. Nothing is
    decoded here: only file headers are read, for the photo sizes.
    """
    return [
        _file_source(pid, path, licence, origin, author, dist)
        for pid, path, dist, origin, author, licence in bundled_photo_entries(system, share_dir)
    ]


# --------------------------------------------------------------------------------------------
# Resizing and greyscale detection
# --------------------------------------------------------------------------------------------


def _resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``img`` (3, H, W) float32 to ``size`` = (h, w) with OpenCV, one plane at a time.

    Shrinking uses area averaging (``INTER_AREA``: exact box filter, no aliasing), enlarging
    bilinear interpolation. Both are convex, so [0, 1] stays [0, 1]. OpenCV does this several
    times faster than ``torch.nn.functional.interpolate(antialias=True)`` on the CPU, which
    matters for multi-megapixel photos.
    """
    h, w = img.shape[-2:]
    if (h, w) == tuple(size):
        return img
    interp = cv2.INTER_AREA if size[0] <= h and size[1] <= w else cv2.INTER_LINEAR
    arr = img.numpy()
    return torch.from_numpy(
        np.stack([cv2.resize(arr[c], (size[1], size[0]), interpolation=interp) for c in range(arr.shape[0])])
    )


def mean_chroma(img: torch.Tensor) -> float:
    """Mean of ``max(R,G,B) - min(R,G,B)`` over a <= 256 px thumbnail of ``img`` (3, H, W) in [0, 1]."""
    t = img.float() / 255.0 if img.dtype == torch.uint8 else img.float()
    t = _resize(t, long_side_size(*t.shape[-2:], 256))
    return float((t.amax(dim=0) - t.amin(dim=0)).mean())


def is_greyscale(img: torch.Tensor, threshold: float = GREYSCALE_CHROMA) -> bool:
    """True when the photo ``img`` (3, H, W) has (almost) no colour: :func:`mean_chroma` < threshold.

    A black-and-white photo stored as RGB is greyscale; a colour photo of a mostly grey scene
    with one coloured subject is not (its mean chroma stays above ~0.02). Strongly toned
    monochrome (sepia, cyanotype) counts as colour.
    """
    return mean_chroma(img) < threshold


# --------------------------------------------------------------------------------------------
# Decoding: the working copy and its cache
# --------------------------------------------------------------------------------------------


def _to_unit_float(img) -> torch.Tensor:
    t = torch.as_tensor(img)
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"a photo loader must return a (3, H, W) image, got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    return t.float()  # in [0, 1] as read_image gives it; the working copy is clamped once small


@dataclasses.dataclass(frozen=True, eq=False)
class WorkingCopy:
    """A decoded photo ready for cropping.

    ``levels[0]`` is the photo at most ``max_side`` px on its long side; each further level
    halves the previous one, down to about 256 px. All are ``(3, h, w)`` float16 in [0, 1]
    (shared: never modify them in place). ``size`` is the full-resolution ``(H, W)``.
    """

    levels: tuple[torch.Tensor, ...]
    size: tuple[int, int]

    @property
    def pixels(self) -> torch.Tensor:
        return self.levels[0]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.levels)

    def render(self, box: tuple[float, float, float, float], out: tuple[int, int]) -> torch.Tensor:
        """Crop ``box`` = ``(left, top, width, height)`` (full-resolution pixels) and resize it
        to ``out`` = ``(h, w)``; returns ``(3, h, w)`` float32 in [0, 1].

        Reads the smallest level in which the box still covers at least ``out`` pixels, then
        resizes it (area averaging when shrinking, bilinear when enlarging).
        """
        full_h, full_w = self.size
        x, y, bw, bh = box
        level = self.levels[0]
        for cand in self.levels[1:]:
            s = cand.shape[-1] / full_w
            if bw * s >= out[1] and bh * cand.shape[-2] / full_h >= out[0]:
                level = cand
            else:
                break
        h, w = level.shape[-2:]
        sx, sy = w / full_w, h / full_h
        x0, y0 = min(w - 1, round(x * sx)), min(h - 1, round(y * sy))
        x1 = max(x0 + 1, min(w, round((x + bw) * sx)))
        y1 = max(y0 + 1, min(h, round((y + bh) * sy)))
        return _resize(level[:, y0:y1, x0:x1].float(), out)


def _make_working_copy(full: torch.Tensor, max_side: int | None) -> WorkingCopy:
    h, w = full.shape[-2:]
    levels = [_resize(full, long_side_size(h, w, max_side)) if max_side is not None else full]
    while max(levels[-1].shape[-2:]) >= 512:
        lh, lw = levels[-1].shape[-2:]
        levels.append(_resize(levels[-1], (max(1, lh // 2), max(1, lw // 2))))
    # .to() copies (float32 -> float16), so clamping in place never touches the loader's tensor
    return WorkingCopy(tuple(t.to(torch.float16).clamp_(0.0, 1.0).contiguous() for t in levels), (int(h), int(w)))


class _LRU:
    """A small thread-safe LRU mapping (decoded photos are big: keep only a few)."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            self._trim()

    def resize(self, maxsize: int) -> None:
        with self._lock:
            self.maxsize = maxsize
            self._trim()

    def _trim(self) -> None:
        while len(self._data) > max(0, self.maxsize):
            self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


_CACHE = _LRU(int(os.environ.get("PREFSTYLE_PHOTO_CACHE", "16")))


def set_cache_size(n: int) -> None:
    """How many decoded photos the process keeps (default 16, or ``$PREFSTYLE_PHOTO_CACHE``).

    A working copy of a 16:10 photo at ``max_side=2048`` takes about 21 MB (float16, pyramid
    included), so the default keeps at most about 340 MB.
    """
    _CACHE.resize(int(n))


def clear_cache() -> None:
    """Forget every decoded photo."""
    _CACHE.clear()


def _cache_key(photo: PhotoSource, max_side: int | None) -> tuple:
    stamp = None
    if photo.path is not None:
        try:
            st = os.stat(photo.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
    return (photo.id, photo.origin, stamp, max_side)


def working_copy(photo: PhotoSource, max_side: int | None = DEFAULT_MAX_SIDE) -> WorkingCopy:
    """``photo`` decoded (``photo.loader()``) into a :class:`WorkingCopy` at most ``max_side``
    px on its long side (``None``: full resolution).

    Cached per process (LRU, see :func:`set_cache_size`), keyed by the photo, ``max_side`` and
    the file's modification time and size, so an edited file is decoded again. Errors of the
    loader propagate (a :class:`~prefstyle.errors.PrefstyleError` for a bad file).
    """
    key = _cache_key(photo, max_side)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    value = _make_working_copy(_to_unit_float(photo.loader()), max_side)
    _CACHE.put(key, value)
    return value


# --------------------------------------------------------------------------------------------
# User folders
# --------------------------------------------------------------------------------------------


def _photo_ids(root: Path, files: list[Path], prefix: str) -> dict[Path, str]:
    """Path-like ids relative to ``root``, without extension unless two files share a stem."""
    rel = {f: f.relative_to(root).as_posix() for f in files}
    stem = {f: r[: -len(f.suffix)] if f.suffix else r for f, r in rel.items()}
    counts: dict[str, int] = {}
    for s in stem.values():
        counts[s] = counts.get(s, 0) + 1
    return {f: prefix + (stem[f] if counts[stem[f]] == 1 else rel[f]) for f in files}


def folder_photos(
    root: str | Path,
    *,
    recursive: bool = True,
    prefix: str = "",
    reject_greyscale: bool = True,
    min_side: int = 64,
    max_side: int | None = DEFAULT_MAX_SIDE,
    licence: str = "user-provided",
) -> tuple[list[PhotoSource], list[Skipped]]:
    """Every usable photograph under ``root``, and every file left out with the reason.

    Image files are those :func:`prefstyle.imaging.io.list_images` finds (JPEG, PNG, TIFF, WebP,
    BMP and camera RAW; RAW needs ``rawpy``); any other file is reported as not an image.
    Hidden files and folders (``.name``) are ignored. Each image is decoded once here (and stays
    in the :func:`working_copy` cache, with ``max_side``): files that fail to decode (corrupt,
    RAW without ``rawpy``, ...), photos whose short side is under ``min_side`` px and, with
    ``reject_greyscale``, greyscale photos (:func:`is_greyscale`) are reported too. Photo ids
    are paths relative to ``root`` without extension, after ``prefix``.

    Raises :class:`~prefstyle.errors.PrefstyleError` when ``root`` is not a folder.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise PrefstyleError("no such folder", path=root)
    if not root.is_dir():
        raise PrefstyleError("not a folder", path=root)
    walker: Iterable[Path] = root.rglob("*") if recursive else root.iterdir()
    every = sorted(
        p for p in walker if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    images = set(imio.list_images([root], recursive=recursive))
    skipped = [
        Skipped(p, f"not a supported image type ({p.suffix or 'no extension'})") for p in every if p not in images
    ]
    files = [p for p in every if p in images]
    ids = _photo_ids(root, files, prefix)
    photos: list[PhotoSource] = []
    for path in files:
        source = PhotoSource(
            id=ids[path], loader=_file_loader(path), licence=licence, origin=f"user folder: {path}", path=path
        )
        try:
            wc = working_copy(source, max_side)
        except PrefstyleError as exc:
            skipped.append(Skipped(path, str(exc).removeprefix(f"{path}: ")))
            continue
        if min(wc.size) < min_side:
            skipped.append(Skipped(path, f"too small ({wc.size[1]}x{wc.size[0]} px, need >= {min_side} px)"))
            continue
        if reject_greyscale:
            chroma = mean_chroma(wc.levels[-1])
            if chroma < GREYSCALE_CHROMA:
                skipped.append(Skipped(path, f"greyscale (mean chroma {chroma:.4f} < {GREYSCALE_CHROMA})"))
                continue
        photos.append(dataclasses.replace(source, size=wc.size))
    skipped.sort(key=lambda s: str(s.path))
    return photos, skipped
