"""LUT styles: any ``.cube`` file or Hald CLUT image becomes a style.

``LUTStyle.from_file(path)`` reads the file through the project's LUT readers; the style's
parameters are ``{"path": ..., "sha256": ...}``, so :func:`~prefstyle.styles.base.from_params`
rebuilds it from the same file and refuses a file whose content has changed since (the
rendition would silently differ). A ``.cube`` file's 1D shaper (if any) is applied before
its 3D table, each with its own ``DOMAIN_MIN``/``DOMAIN_MAX``. Rendering is trilinear.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from prefstyle.errors import PrefstyleError
from prefstyle.styles.base import Style, register_kind

HALD_EXTENSIONS = frozenset({".png", ".tif", ".tiff"})


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@register_kind("lut")
class LUTStyle(Style):
    """A ``.cube`` table (3D, 1D, or a 1D shaper then a 3D table) or a Hald CLUT as a style.

    Build with :meth:`from_file` (which records the file's path and hash, so the style can be
    saved as parameters), or directly from a :class:`~prefstyle.imaging.lut_io.CubeLUT` or a
    ``(3,S,S,S)`` tensor (such a style cannot be saved as parameters).
    """

    kind = "lut"
    is_global = True

    def __init__(
        self,
        lut: Any,
        name: str = "lut",
        *,
        path: str | None = None,
        sha256: str | None = None,
        description: str = "",
        strength: float = 1.0,
    ):
        from prefstyle.imaging.lut_io import CubeLUT

        super().__init__(name, description, strength)
        if isinstance(lut, torch.Tensor):
            try:
                lut = CubeLUT(lut3d=lut.detach().float().cpu())
            except ValueError as e:
                raise PrefstyleError(f"not a usable 3D LUT: {e}", path) from e
        if not isinstance(lut, CubeLUT):
            raise TypeError(f"LUTStyle needs a CubeLUT or a (3,S,S,S) tensor, got {type(lut).__name__}")
        self.cube = lut
        self.path = path
        self.sha256 = sha256

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None, expected_sha256: str | None = None) -> LUTStyle:
        """Read a ``.cube`` file or a Hald CLUT image (``.png``/``.tif``)."""
        from prefstyle.imaging.lut_io import read_cube, read_hald

        p = Path(path).expanduser()
        if not p.is_file():
            raise PrefstyleError("LUT file not found" if not p.exists() else "not a file", p)
        digest = file_sha256(p)
        if expected_sha256 is not None and digest != expected_sha256:
            raise PrefstyleError(
                f"LUT file content changed since the style was saved (sha256 {digest[:12]}..., "
                f"expected {expected_sha256[:12]}...)",
                p,
            )
        ext = p.suffix.lower()
        display = name or f"lut:{p.name}"
        if ext == ".cube":
            cube = read_cube(p)
            return cls(cube, display, path=str(p.resolve()), sha256=digest, description=cube.title or "")
        if ext in HALD_EXTENSIONS:
            return cls(read_hald(p), display, path=str(p.resolve()), sha256=digest, description="Hald CLUT")
        raise PrefstyleError(
            f"not a LUT file (expected .cube, or a Hald image {', '.join(sorted(HALD_EXTENSIONS))})", p
        )

    @property
    def size(self) -> int | None:
        """Nodes per axis of the 3D table (None for a 1D-only file)."""
        return None if self.cube.lut3d is None else int(self.cube.lut3d.shape[-1])

    def _render(self, x: torch.Tensor) -> torch.Tensor:
        return self.cube.apply(x, "trilinear")

    def to_lut(self, size: int = 33, image: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cube
        plain = c.lut1d is None and c.domain_min == (0.0,) * 3 and c.domain_max == (1.0,) * 3
        if plain and c.lut3d is not None and self.size == size and self.strength == 1.0:
            return c.lut3d.clamp(0, 1).clone()
        return super().to_lut(size, image)

    def _own_params(self) -> dict[str, Any]:
        # path None: built in memory, so from_params cannot rebuild it (it says so)
        return {"path": self.path, "sha256": self.sha256}

    @classmethod
    def _from_params(cls, d: dict[str, Any]) -> Style:
        if not d.get("path"):
            raise PrefstyleError(
                "lut style parameters need the 'path' of a .cube or Hald file (in-memory LUTs cannot be rebuilt)"
            )
        return cls.from_file(d["path"], name=d.get("name"), expected_sha256=d.get("sha256"))
