"""The text of a ``.cube`` file's numbers and title, in numpy alone (no torch).

Shared by :func:`prefstyle.imaging.lut_io.format_cube` (every ``.cube`` prefstyle writes) and the
torch-free ``export-lut`` (:func:`cube_text_3d`), so both write the same bytes. Numbers: six
decimals (``%.6f``) where that is exact to float32 display precision (magnitudes below 8), else
the shortest text that reads back as the same float32.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cube_text_3d", "format_rows", "format_rows_3d", "format_value", "title_line"]

#: values below this magnitude are written with six decimals
_FIXED_LIMIT = 7.9999995


def format_value(v: float) -> str:
    """One number of a table row (module docstring)."""
    text = f"{v:.6f}"
    if abs(float(text)) < 8.0:
        return text
    return np.format_float_positional(np.float32(v), unique=True, trim="0")


def format_rows(values: np.ndarray) -> str:
    """``(n, 3)`` float32 -> table lines (each ending in a newline)."""
    if not np.isfinite(values).all():
        raise ValueError("cannot write a LUT containing NaN or infinite values")
    parts = []
    fixed_row = np.asarray((np.abs(values.astype(np.float64)) < _FIXED_LIMIT).all(axis=1))
    step = 65536
    for r0 in range(0, len(values), step):
        block = values[r0 : r0 + step]
        ok = fixed_row[r0 : r0 + step]
        if ok.all():
            parts.append(("%.6f %.6f %.6f\n" * len(block)) % tuple(block.reshape(-1).tolist()))
        else:
            parts.append("".join(" ".join(format_value(v) for v in row) + "\n" for row in block.tolist()))
    return "".join(parts)


def format_rows_3d(lut: np.ndarray) -> str:
    """The rows of a ``(3, S, S, S)`` float32 table ``lut[c, b, g, r]``, red varying fastest."""
    return format_rows(np.ascontiguousarray(lut, dtype=np.float32).transpose(1, 2, 3, 0).reshape(-1, 3))


def title_line(title: str) -> str:
    """``TITLE "..."`` with double quotes made single and runs of white space made one space."""
    return 'TITLE "{}"'.format(" ".join(title.replace('"', "'").split()))


def cube_text_3d(lut: np.ndarray, title: str | None = None) -> str:
    """The whole ``.cube`` text of a ``(3, S, S, S)`` table on the default domain [0, 1], as
    :func:`prefstyle.imaging.lut_io.format_cube` writes it."""
    if lut.ndim != 4 or lut.shape[0] != 3 or not lut.shape[1] == lut.shape[2] == lut.shape[3]:
        raise ValueError(f"expected a (3, S, S, S) 3D LUT, got {tuple(lut.shape)}")
    lines = ([title_line(title)] if title is not None else []) + [f"LUT_3D_SIZE {lut.shape[-1]}", ""]
    return "\n".join(lines) + "\n" + format_rows_3d(lut)
