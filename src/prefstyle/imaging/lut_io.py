"""LUT file formats: Adobe/Resolve ``.cube`` text files and Hald CLUT images.

``.cube`` (Adobe "Cube LUT Specification 1.0", plus DaVinci Resolve's variant)
------------------------------------------------------------------------------
Keywords, one per line, before the table data::

    TITLE "text"
    LUT_1D_SIZE N          2 .. 65536
    LUT_3D_SIZE N          2 .. 256
    DOMAIN_MIN r g b       default 0 0 0
    DOMAIN_MAX r g b       default 1 1 1
    LUT_1D_INPUT_RANGE lo hi   (Resolve) domain of the 1D table
    LUT_3D_INPUT_RANGE lo hi   (Resolve) domain of the 3D table

then one line of three numbers per table entry, red varying fastest in a 3D table. A file may
hold both a 1D and a 3D table (a Resolve "shaper"): the 1D data comes first and is applied
first. ``#`` starts a comment (whole-line comments are kept in :attr:`CubeLUT.comments`);
blank lines and CRLF line ends are fine. Every problem is an
:class:`~prefstyle.errors.InputFormatError` naming the file and the line.

Round trips. Values are written with 6 decimals (``%.6f``) when that text is below 8 in
magnitude (then float32 -> text -> float32 -> text is stable, since float32 resolves
2.4e-7 there), and otherwise with the shortest text that reads back to exactly the same
float32. Hence, for any finite float32 LUT ``x``:

* ``read_cube(write_cube(x))`` equals ``x`` rounded to 6 decimals (then to float32), and
  equals ``x`` exactly for values of magnitude >= 8;
* ``write_cube(read_cube(write_cube(x)))`` is byte-identical to ``write_cube(x)``.

Hald CLUT images
----------------
A Hald CLUT of level ``L`` (2 .. 16) is a square image of ``L**3 x L**3`` pixels holding a
3D LUT of ``S = L**2`` nodes per axis; read in raster order, pixel ``i`` is node
``(r, g, b) = (i % S, (i // S) % S, i // S**2)`` (red fastest). 8- and 16-bit PNG/TIFF are
read (16-bit through OpenCV: Pillow cannot hold 16-bit RGB), and written. The image size is
checked from the file's header before any pixel is decoded, so a small file that claims a huge
image (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from prefstyle.errors import InputFormatError
from prefstyle.fsutil import atomic_path, atomic_write_text
from prefstyle.imaging.cube_text import format_rows, format_rows_3d, format_value, title_line
from prefstyle.imaging.lut import (
    DomainLike,
    _as_lut1d,
    _lut_size,
    _triple,
    apply_lut,
    apply_lut_1d,
    identity_lut,
    resize_lut,
    resize_lut_1d,
)

__all__ = [
    "CUBE_1D_SIZE_RANGE",
    "CUBE_3D_SIZE_RANGE",
    "HALD_LEVEL_RANGE",
    "CubeLUT",
    "format_cube",
    "hald_level_for_size",
    "parse_cube",
    "read_cube",
    "read_hald",
    "write_cube",
    "write_hald",
]

CUBE_3D_SIZE_RANGE = (2, 256)
CUBE_1D_SIZE_RANGE = (2, 65536)
HALD_LEVEL_RANGE = (2, 16)

_DEFAULT_MIN = (0.0, 0.0, 0.0)
_DEFAULT_MAX = (1.0, 1.0, 1.0)
# Tables with more rows than this are parsed by numpy in one go (falling back to the line
# by line parser, which reports the exact line, if that fails).
_FAST_PARSE_MIN_ROWS = 100_000


# --------------------------------------------------------------------------------------
# the in-memory form
# --------------------------------------------------------------------------------------


def _domain_tuple(value: DomainLike | None, name: str) -> tuple[float, float, float] | None:
    return None if value is None else _triple(value, name)


@dataclass
class CubeLUT:
    """The content of a ``.cube`` file.

    Attributes:
        title: the ``TITLE`` or None.
        lut3d: ``(3, S, S, S)`` float32 (``lut[c, b, g, r]``) or None.
        lut1d: ``(3, S)`` float32 (row ``c`` = channel ``c``) or None.
        domain_min, domain_max: the input domain, per channel: of the 3D table when there is
            one, else of the 1D table.
        comments: whole-line comments, without the ``#`` and surrounding spaces, in order.
        domain_min_1d, domain_max_1d: the domain of the 1D table when the file has both
            tables and the 1D one has its own (``LUT_1D_INPUT_RANGE``); None = same as
            ``domain_min`` / ``domain_max``.

    With both tables, :meth:`apply` applies the 1D table first, then the 3D table.
    """

    title: str | None = None
    lut3d: Tensor | None = None
    lut1d: Tensor | None = None
    domain_min: tuple[float, float, float] = _DEFAULT_MIN
    domain_max: tuple[float, float, float] = _DEFAULT_MAX
    comments: list[str] = field(default_factory=list)
    domain_min_1d: tuple[float, float, float] | None = None
    domain_max_1d: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.lut3d is None and self.lut1d is None:
            raise ValueError("a CubeLUT needs a 3D table, a 1D table or both")
        if self.lut3d is not None:
            if self.lut3d.ndim != 4:
                raise ValueError(f"lut3d must be (3, S, S, S), got {tuple(self.lut3d.shape)}")
            _lut_size(self.lut3d)
        if self.lut1d is not None:
            self.lut1d = _as_lut1d(self.lut1d)
            if self.lut1d.ndim != 2:
                raise ValueError(f"lut1d must be (3, S), got {tuple(self.lut1d.shape)}")
        self.domain_min = _triple(self.domain_min, "domain_min")
        self.domain_max = _triple(self.domain_max, "domain_max")
        self.domain_min_1d = _domain_tuple(self.domain_min_1d, "domain_min_1d")
        self.domain_max_1d = _domain_tuple(self.domain_max_1d, "domain_max_1d")
        if (self.domain_min_1d is None) != (self.domain_max_1d is None):
            raise ValueError("domain_min_1d and domain_max_1d go together")
        for lo, hi in ((self.domain_min, self.domain_max), self.domain_1d()):
            if any(h <= low for low, h in zip(lo, hi, strict=True)):
                raise ValueError(f"domain max must be > domain min in every channel, got {lo} .. {hi}")
        self.comments = list(self.comments)

    def domain_1d(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The effective ``(min, max)`` domain of the 1D table."""
        if self.domain_min_1d is not None and self.domain_max_1d is not None:
            return self.domain_min_1d, self.domain_max_1d
        return self.domain_min, self.domain_max

    def apply(
        self,
        img: Tensor,
        method: str = "trilinear",
        *,
        chunk_pixels: int | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        """Apply the file's transform to ``(B, 3, H, W)`` images: the 1D table, then the 3D one.

        ``method`` (3D interpolation), ``chunk_pixels`` and ``out`` are as in
        :func:`~prefstyle.imaging.lut.apply_lut`.
        """
        if self.lut1d is not None:
            lo, hi = self.domain_1d()
            img = apply_lut_1d(
                img, self.lut1d, lo, hi, chunk_pixels=chunk_pixels, out=None if self.lut3d is not None else out
            )
        if self.lut3d is not None:
            img = apply_lut(
                img, self.lut3d, method, self.domain_min, self.domain_max, chunk_pixels=chunk_pixels, out=out
            )
        return img


# --------------------------------------------------------------------------------------
# .cube reading
# --------------------------------------------------------------------------------------

_KEYWORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


class _CubeParser:
    def __init__(self, text: str, path: str | Path | None):
        self.path = path
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()  # a final newline does not start another line
        self.title: str | None = None
        self.size1d: int | None = None
        self.size3d: int | None = None
        self.domain: dict[str, tuple[float, ...]] = {}
        self.comments: list[str] = []
        self.seen: dict[str, int] = {}  # keyword -> line

    def error(self, message: str, line: int | None) -> InputFormatError:
        return InputFormatError(message, path=self.path, line=line)

    def last_line(self) -> int:
        return max(1, len(self.lines))

    # keyword values ------------------------------------------------------------------

    def _floats(self, keyword: str, tokens: list[str], count: int, lineno: int) -> tuple[float, ...]:
        if len(tokens) != count:
            raise self.error(f"{keyword} needs {count} numbers, got {len(tokens)}", lineno)
        values = []
        for tok in tokens:
            try:
                v = float(tok)
            except ValueError:
                raise self.error(f"{keyword}: {tok!r} is not a number", lineno) from None
            if not math.isfinite(v):
                raise self.error(f"{keyword}: {tok!r} is not a finite number", lineno)
            values.append(v)
        return tuple(values)

    def _size(self, keyword: str, tokens: list[str], bounds: tuple[int, int], lineno: int) -> int:
        if len(tokens) != 1:
            raise self.error(f"{keyword} needs one integer, got {len(tokens)} values", lineno)
        try:
            n = int(tokens[0])
        except ValueError:
            raise self.error(f"{keyword}: {tokens[0]!r} is not an integer", lineno) from None
        if not bounds[0] <= n <= bounds[1]:
            raise self.error(f"{keyword} {n} is out of range ({bounds[0]}..{bounds[1]})", lineno)
        return n

    def keyword(self, raw: str, tokens: list[str], lineno: int) -> None:
        key = tokens[0].upper()
        args = tokens[1:]
        if key in self.seen:
            raise self.error(f"{key} appears twice", lineno)
        if key == "TITLE":
            rest = raw.strip()[len(tokens[0]) :].strip()
            if rest.startswith('"'):  # "text" (anything after the closing quote is a comment)
                end = rest.rfind('"')
                rest = rest[1:end] if end > 0 else rest[1:]
            self.title = rest
        elif key == "LUT_3D_SIZE":
            self.size3d = self._size(key, args, CUBE_3D_SIZE_RANGE, lineno)
        elif key == "LUT_1D_SIZE":
            self.size1d = self._size(key, args, CUBE_1D_SIZE_RANGE, lineno)
        elif key in ("DOMAIN_MIN", "DOMAIN_MAX"):
            self.domain[key] = self._floats(key, args, 3, lineno)
        elif key in ("LUT_1D_INPUT_RANGE", "LUT_3D_INPUT_RANGE"):
            lo, hi = self._floats(key, args, 2, lineno)
            if hi <= lo:
                raise self.error(f"{key}: max {hi} must be greater than min {lo}", lineno)
            self.domain[key] = (lo, hi)
        else:
            raise self.error(f"unknown keyword {tokens[0]!r}", lineno)
        self.seen[key] = lineno

    # the whole file ---------------------------------------------------------------------

    def parse(self) -> CubeLUT:
        data_start = None
        for idx, raw in enumerate(self.lines):
            lineno = idx + 1
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#"):
                self.comments.append(line[1:].strip())
                continue
            tokens = line.split()
            if tokens[0].upper() == "TITLE":
                self.keyword(raw, tokens, lineno)
                continue
            line = line.split("#", 1)[0].strip()  # trailing comment
            tokens = line.split()
            if _KEYWORD.fullmatch(tokens[0]) and not _is_number(tokens[0]):
                self.keyword(raw, tokens, lineno)
                continue
            data_start = idx
            break
        if self.size1d is None and self.size3d is None:
            line = data_start + 1 if data_start is not None else self.last_line()
            raise self.error("missing LUT_3D_SIZE or LUT_1D_SIZE before the table data", line)
        if data_start is None:
            data_start = len(self.lines)  # reported as "too few table lines" at the last line
        rows1d = self.size1d or 0
        rows = rows1d + (self.size3d or 0) ** 3
        table = None
        if rows >= _FAST_PARSE_MIN_ROWS:
            table = self._fast_table(data_start, rows)
        if table is None:
            table = self._table(data_start, rows)
        return self._result(table, rows1d)

    def _fast_table(self, start: int, rows: int) -> np.ndarray | None:
        text = "\n".join(self.lines[start:])
        if "#" in text:
            return None  # comments to keep: use the line-by-line parser
        try:
            table = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
        except ValueError:
            return None
        if table.shape != (rows, 3) or not np.isfinite(table).all():
            return None
        return table.astype(np.float32)

    def _table(self, start: int, rows: int) -> np.ndarray:
        table = np.empty((rows, 3), dtype=np.float32)
        count = 0
        for idx in range(start, len(self.lines)):
            lineno = idx + 1
            line = self.lines[idx].strip()
            if not line:
                continue
            if line.startswith("#"):
                self.comments.append(line[1:].strip())
                continue
            tokens = line.split("#", 1)[0].split()
            if _KEYWORD.fullmatch(tokens[0]) and not _is_number(tokens[0]):
                known = tokens[0].upper() in {
                    "TITLE",
                    "LUT_1D_SIZE",
                    "LUT_3D_SIZE",
                    "DOMAIN_MIN",
                    "DOMAIN_MAX",
                    "LUT_1D_INPUT_RANGE",
                    "LUT_3D_INPUT_RANGE",
                }
                if known:
                    raise self.error(f"keyword {tokens[0]} after the table data started", lineno)
                raise self.error(f"unknown keyword {tokens[0]!r}", lineno)
            if len(tokens) != 3:
                raise self.error(f"expected 3 numbers on a table line, got {len(tokens)}", lineno)
            if count >= rows:
                raise self.error(f"too many table lines: expected {rows}", lineno)
            for c, tok in enumerate(tokens):
                try:
                    v = float(tok)
                except ValueError:
                    raise self.error(f"{tok!r} is not a number", lineno) from None
                if not math.isfinite(v):
                    raise self.error(f"{tok!r} is not a finite number", lineno)
                table[count, c] = v
            count += 1
        if count < rows:
            raise self.error(f"too few table lines: expected {rows}, got {count}", self.last_line())
        return table

    def _result(self, table: np.ndarray, rows1d: int) -> CubeLUT:
        lut1d = lut3d = None
        if self.size1d is not None:
            lut1d = torch.from_numpy(np.ascontiguousarray(table[:rows1d].T))
        if self.size3d is not None:
            s = self.size3d
            lut3d = torch.from_numpy(np.ascontiguousarray(table[rows1d:].reshape(s, s, s, 3).transpose(3, 0, 1, 2)))
        d = self.domain
        dmin = d.get("DOMAIN_MIN")
        dmax = d.get("DOMAIN_MAX")

        def range3(key: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
            if key not in d:
                return None
            lo, hi = d[key]
            return (lo, lo, lo), (hi, hi, hi)

        generic = (dmin or _DEFAULT_MIN, dmax or _DEFAULT_MAX)
        explicit_generic = dmin is not None or dmax is not None
        r1 = range3("LUT_1D_INPUT_RANGE")
        r3 = range3("LUT_3D_INPUT_RANGE")
        domain_1d = None
        if lut3d is not None:
            domain = r3 or generic
            if lut1d is not None:
                domain_1d = r1 or (generic if explicit_generic else None)
                if domain_1d == domain:
                    domain_1d = None
        else:
            domain = r1 or generic
        try:
            return CubeLUT(
                title=self.title,
                lut3d=lut3d,
                lut1d=lut1d,
                domain_min=domain[0],
                domain_max=domain[1],
                comments=self.comments,
                domain_min_1d=None if domain_1d is None else domain_1d[0],
                domain_max_1d=None if domain_1d is None else domain_1d[1],
            )
        except ValueError as exc:  # DOMAIN_MAX <= DOMAIN_MIN: report the later of the two lines
            line = max((self.seen[k] for k in ("DOMAIN_MIN", "DOMAIN_MAX") if k in self.seen), default=None)
            raise self.error(str(exc), line) from None


def parse_cube(text: str, path: str | Path | None = None) -> CubeLUT:
    """Parse the text of a ``.cube`` file (``path`` only names it in errors)."""
    text = text.removeprefix("\ufeff")
    return _CubeParser(text.replace("\r\n", "\n").replace("\r", "\n"), path).parse()


def read_cube(path: str | Path) -> CubeLUT:
    """Read an Adobe/Resolve ``.cube`` file.

    Raises:
        InputFormatError: malformed content, with the line number.
        FileNotFoundError: no such file.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "\x00" in text:
        raise InputFormatError("not a text file", path=path)
    return parse_cube(text, path)


# --------------------------------------------------------------------------------------
# .cube writing
# --------------------------------------------------------------------------------------


# Below this magnitude, %.6f text read back as float32 and printed again gives the same text.
def _format_numbers(values: Sequence[float]) -> str:
    return " ".join(format_value(float(np.float32(v))) for v in values)


def _scalar_range(lo: Sequence[float], hi: Sequence[float], what: str) -> str:
    if len(set(lo)) != 1 or len(set(hi)) != 1:
        raise ValueError(
            f"a .cube file with both a 1D and a 3D table can only hold the same {what} domain for all channels"
        )
    return f"{_format_numbers([lo[0]])} {_format_numbers([hi[0]])}"


def format_cube(cube: CubeLUT) -> str:
    """The ``.cube`` text of ``cube`` (see the module docstring for the number format)."""
    lines = []
    if cube.title is not None:
        lines.append(title_line(cube.title))
    for comment in cube.comments:
        for part in str(comment).splitlines() or [""]:
            lines.append(f"# {part.strip()}".rstrip())
    if cube.lut1d is not None:
        lines.append(f"LUT_1D_SIZE {cube.lut1d.shape[-1]}")
    if cube.lut3d is not None:
        lines.append(f"LUT_3D_SIZE {cube.lut3d.shape[-1]}")
    dmin, dmax = cube.domain_min, cube.domain_max
    if cube.lut1d is not None and cube.lut3d is not None:
        lo1, hi1 = cube.domain_1d()
        if (lo1, hi1) != (_DEFAULT_MIN, _DEFAULT_MAX):
            lines.append(f"LUT_1D_INPUT_RANGE {_scalar_range(lo1, hi1, '1D')}")
        if (dmin, dmax) != (_DEFAULT_MIN, _DEFAULT_MAX):
            lines.append(f"LUT_3D_INPUT_RANGE {_scalar_range(dmin, dmax, '3D')}")
    elif (dmin, dmax) != (_DEFAULT_MIN, _DEFAULT_MAX):
        lines.append(f"DOMAIN_MIN {_format_numbers(dmin)}")
        lines.append(f"DOMAIN_MAX {_format_numbers(dmax)}")
    lines.append("")
    body = []
    if cube.lut1d is not None:
        body.append(format_rows(cube.lut1d.detach().to("cpu", torch.float32).numpy().T))
    if cube.lut3d is not None:
        body.append(format_rows_3d(cube.lut3d.detach().to("cpu", torch.float32).numpy()))
    return "\n".join(lines) + "\n" + "".join(body)


def write_cube(
    path: str | Path,
    lut: Tensor | CubeLUT,
    title: str | None = None,
    size: int | None = None,
    *,
    domain_min: DomainLike | None = None,
    domain_max: DomainLike | None = None,
    comments: Sequence[str] | None = None,
) -> None:
    """Write a ``.cube`` file atomically.

    Args:
        lut: a ``CubeLUT``; a ``(3, S, S, S)`` 3D LUT; or a ``(3, S)`` / ``(S, 3)`` 1D LUT.
        title: the ``TITLE`` (overrides the CubeLUT's).
        size: resample the 3D table (or, in a 1D-only file, the 1D table) to this size first
            (trilinear / linear interpolation).
        domain_min, domain_max, comments: override the CubeLUT's (or set them for a tensor).

    Raises:
        ValueError: a size outside the format's range, non-finite values, or per-channel
            domains that the file cannot express.
    """
    if isinstance(lut, CubeLUT):
        cube = CubeLUT(**{f: getattr(lut, f) for f in lut.__dataclass_fields__})
    elif isinstance(lut, Tensor):
        if lut.ndim == 4:
            cube = CubeLUT(lut3d=lut)
        elif lut.ndim == 2:
            cube = CubeLUT(lut1d=lut)
        else:
            raise ValueError(f"expected a (3, S, S, S) 3D LUT or a (3, S) 1D LUT, got {tuple(lut.shape)}")
    else:
        raise TypeError(f"expected a tensor or a CubeLUT, got {type(lut).__name__}")
    if title is not None:
        cube.title = title
    if comments is not None:
        cube.comments = list(comments)
    if domain_min is not None:
        cube.domain_min = _triple(domain_min, "domain_min")
    if domain_max is not None:
        cube.domain_max = _triple(domain_max, "domain_max")
    if size is not None:
        bounds = CUBE_3D_SIZE_RANGE if cube.lut3d is not None else CUBE_1D_SIZE_RANGE
        if not bounds[0] <= size <= bounds[1]:
            raise ValueError(f"size must be in {bounds[0]}..{bounds[1]}, got {size}")
        if cube.lut3d is not None:
            cube.lut3d = resize_lut(cube.lut3d.detach().float(), size)
        else:
            cube.lut1d = resize_lut_1d(cube.lut1d.detach().float(), size)
    cube.__post_init__()  # re-validate after the overrides
    if cube.lut3d is not None and not CUBE_3D_SIZE_RANGE[0] <= cube.lut3d.shape[-1] <= CUBE_3D_SIZE_RANGE[1]:
        raise ValueError(f"LUT_3D_SIZE must be in {CUBE_3D_SIZE_RANGE}, got {cube.lut3d.shape[-1]}")
    if cube.lut1d is not None and not CUBE_1D_SIZE_RANGE[0] <= cube.lut1d.shape[-1] <= CUBE_1D_SIZE_RANGE[1]:
        raise ValueError(f"LUT_1D_SIZE must be in {CUBE_1D_SIZE_RANGE}, got {cube.lut1d.shape[-1]}")
    atomic_write_text(path, format_cube(cube), encoding="utf-8")


# --------------------------------------------------------------------------------------
# Hald CLUT images
# --------------------------------------------------------------------------------------


def hald_level_for_size(size: int) -> int | None:
    """The Hald level ``L`` with ``L**2 == size`` (within 2..16), or None."""
    level = math.isqrt(size)
    if level * level == size and HALD_LEVEL_RANGE[0] <= level <= HALD_LEVEL_RANGE[1]:
        return level
    return None


def _decode_image(path: Path) -> np.ndarray:
    """An image file as ``(H, W, C)`` RGB(A) or ``(H, W)`` numpy array in its own dtype."""
    from prefstyle.imaging.decode import _cv2_decode  # OpenCV with its complaints about a bad file kept off stderr

    arr = _cv2_decode(path) if path.stat().st_size else None
    if arr is not None:
        if arr.ndim == 3 and arr.shape[2] == 3:
            arr = arr[:, :, ::-1]
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, [2, 1, 0, 3]]
        return arr
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            return np.asarray(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputFormatError(f"cannot decode the image ({exc})", path=path) from None


def _header_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header alone, without decoding any pixel."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except Image.DecompressionBombError as exc:
        raise InputFormatError(f"image far too large for a Hald CLUT ({exc})", path=path) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        pass
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if not magic:
        raise InputFormatError("cannot decode the image (empty file)", path=path)
    if magic[:2] not in (b"II", b"MM"):  # what only tifffile could read starts as a TIFF does
        raise InputFormatError("cannot decode the image (unrecognised format)", path=path)
    try:  # TIFF layouts Pillow does not open (16-bit RGB, float)
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    except Exception as exc:  # noqa: BLE001 - tifffile raises its own errors for anything that is not a TIFF
        raise InputFormatError(f"cannot decode the image ({exc})", path=path) from None


def _hald_sides() -> list[int]:
    return [lv**3 for lv in range(HALD_LEVEL_RANGE[0], HALD_LEVEL_RANGE[1] + 1)]


def read_hald(path: str | Path) -> Tensor:
    """Read a Hald CLUT image (levels 2..16; 8- or 16-bit, or float TIFF).

    Returns:
        ``(3, S, S, S)`` float32 LUT, ``S = level**2``, values in [0, 1] for integer images.

    Raises:
        InputFormatError: undecodable, not RGB, or not ``level**3`` pixels square.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    width, height = _header_size(path)  # refuse a decompression bomb before decoding it
    if height != width or width not in _hald_sides():
        raise InputFormatError(
            f"a Hald CLUT image must be square with a side of level**3 pixels, one of {_hald_sides()}; "
            f"got {width}x{height}",
            path=path,
        )
    arr = _decode_image(path)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InputFormatError(f"a Hald CLUT must be an RGB image, got shape {arr.shape}", path=path)
    height, width = arr.shape[:2]
    level = round(width ** (1 / 3))
    sides = [lv**3 for lv in range(HALD_LEVEL_RANGE[0], HALD_LEVEL_RANGE[1] + 1)]
    if height != width or level**3 != width or not HALD_LEVEL_RANGE[0] <= level <= HALD_LEVEL_RANGE[1]:
        raise InputFormatError(
            f"a Hald CLUT image must be square with a side of level**3 pixels, one of {sides}; got {width}x{height}",
            path=path,
        )
    rgb = arr[:, :, :3]
    if rgb.dtype == np.uint8:
        values = rgb.astype(np.float32) / np.float32(255)
    elif rgb.dtype == np.uint16:
        values = rgb.astype(np.float32) / np.float32(65535)
    elif rgb.dtype in (np.float32, np.float64):
        values = rgb.astype(np.float32)
    else:
        raise InputFormatError(f"unsupported pixel type {rgb.dtype} for a Hald CLUT", path=path)
    s = level * level
    lut = values.reshape(s, s, s, 3).transpose(3, 0, 1, 2)  # raster order = (b, g, r)
    return torch.from_numpy(np.ascontiguousarray(lut))


def write_hald(path: str | Path, lut_or_level: Tensor | int, *, bits: int = 8, level: int | None = None) -> None:
    """Write a 3D LUT (or the identity of a level) as a Hald CLUT image, atomically.

    Args:
        path: ``.png`` or ``.tif``/``.tiff`` (any format Pillow writes for 8 bits).
        lut_or_level: a ``(3, S, S, S)`` LUT with ``S = L**2`` (values clipped to [0, 1]),
            or a level ``L`` (2..16) for the identity CLUT.
        bits: 8 or 16 (16-bit needs PNG or TIFF; written with OpenCV).
        level: resample the LUT to this level first (needed when ``S`` is not a square).
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    if isinstance(lut_or_level, Tensor):
        lut = lut_or_level.detach().to("cpu", torch.float32)
        if lut.ndim != 4:
            raise ValueError(f"expected a (3, S, S, S) LUT, got {tuple(lut.shape)}")
        size = _lut_size(lut)
        if level is not None:
            _check_level(level)
            if size != level * level:
                lut = resize_lut(lut, level * level)
        elif hald_level_for_size(size) is None:
            raise ValueError(f"a {size}^3 LUT is not a Hald size (level**2 for level 2..16); pass level= to resample")
    elif isinstance(lut_or_level, int) and not isinstance(lut_or_level, bool):
        lut = identity_lut(_check_level(lut_or_level) ** 2)
    else:
        raise TypeError(f"expected a LUT tensor or a level, got {type(lut_or_level).__name__}")
    s = lut.shape[-1]
    side = round(s**1.5)
    top = 255 if bits == 8 else 65535
    pixels = lut.clamp(0, 1).permute(1, 2, 3, 0).reshape(side, side, 3).numpy()
    pixels = np.rint(pixels * np.float32(top)).astype(np.uint8 if bits == 8 else np.uint16)
    path = Path(path)
    suffix = path.suffix.lower()
    if bits == 16:
        import cv2

        if suffix not in (".png", ".tif", ".tiff"):
            raise ValueError(f"16-bit Hald CLUTs are written as PNG or TIFF, not {suffix or 'no extension'}")
        ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(pixels[:, :, ::-1]))
        if not ok:
            raise OSError(f"{path}: OpenCV could not encode the image")
        with atomic_path(path) as tmp:
            tmp.write_bytes(encoded.tobytes())
    else:
        from PIL import Image

        with atomic_path(path) as tmp:
            Image.fromarray(pixels, "RGB").save(tmp)


def _check_level(level: int) -> int:
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"Hald level must be an integer, got {level!r}")
    if not HALD_LEVEL_RANGE[0] <= level <= HALD_LEVEL_RANGE[1]:
        raise ValueError(f"Hald level must be in {HALD_LEVEL_RANGE[0]}..{HALD_LEVEL_RANGE[1]}, got {level}")
    return level
