"""The library of real looks: colour-and-tone transforms made by people, as 3D LUTs.

A *look* is one global colour transform someone made and published (a creative or
film-emulation ``.cube``, a camera-profile rendering, an expert-style edit, a preset rendered
out), stored as a 3D LUT in the project layout (``(3,S,S,S)``, see :mod:`prefstyle.imaging.lut`)
that maps a neutral sRGB rendition to the look. Each look belongs to a *family* (one source,
author or collection): splits into training / validation / test are always by family, so a model
is never scored on looks from a collection it learned from.

On disk a library is two files side by side:

* ``<name>.safetensors``: one tensor ``tables`` ``(K,3,S,S,S)`` float16, sRGB [0,1] (values
  slightly outside [0,1] are kept; they are clamped when applied to 8-bit images);
* ``<name>.json``: ``{"format": "prefstyle-looks", "version": 1, "size": S, "looks": [...]}``, one
  entry per table row with :class:`Look`'s fields.

The packaged library lives in ``src/prefstyle/assets/looks/`` (its data card, with every look's
source, author and licence, is ``docs/LOOKS.md``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_path, atomic_write_text

__all__ = ["LOOKS_FORMAT", "Look", "LookLibrary", "family_group", "load_looks", "packaged_looks_path"]

LOOKS_FORMAT = "prefstyle-looks"
LOOKS_VERSION = 1


@dataclass(frozen=True)
class Look:
    """One look's identity and provenance.

    name: unique id, conventionally ``"<family>/<look>"``.
    family: the split unit (one collection, author or source); looks of one family are never
      split across train / validation / test.
    kind: ``"film"`` (film emulation), ``"creative"`` (grading look), ``"camera"`` (a camera
      maker's picture style / profile), ``"expert"`` (an expert's edit of photos), ``"preset"``
      (an editor preset rendered out).
    source: where it came from (repository and path, or package and file).
    author: who made it.
    license: its licence (SPDX id where one exists).
    """

    name: str
    family: str
    kind: str
    source: str
    author: str
    license: str


class LookLibrary:
    """``K`` looks and their LUTs ``tables`` ``(K,3,S,S,S)`` float32 (layout of :mod:`prefstyle.imaging.lut`)."""

    def __init__(self, looks: Sequence[Look], tables: torch.Tensor):
        if tables.ndim != 5 or tables.shape[1] != 3 or not (tables.shape[2] == tables.shape[3] == tables.shape[4]):
            raise PrefstyleError(f"look tables must be (K,3,S,S,S), got {tuple(tables.shape)}")
        if len(looks) != tables.shape[0]:
            raise PrefstyleError(f"{len(looks)} looks but {tables.shape[0]} tables")
        names = [lk.name for lk in looks]
        if len(set(names)) != len(names):
            raise PrefstyleError("look names must be unique")
        if not torch.isfinite(tables).all():
            raise PrefstyleError("look tables hold NaN or infinite values")
        self.looks: list[Look] = list(looks)
        self.tables: torch.Tensor = tables.float()

    def __len__(self) -> int:
        return len(self.looks)

    @property
    def size(self) -> int:
        """The LUT size ``S``."""
        return int(self.tables.shape[-1])

    def names(self) -> list[str]:
        return [lk.name for lk in self.looks]

    def families(self) -> list[str]:
        """The distinct families, sorted."""
        return sorted({lk.family for lk in self.looks})

    def groups(self) -> dict[str, str]:
        """``{family: source group}`` (see :func:`family_group`), for splits stricter than by family."""
        return {f: family_group(f) for f in self.families()}

    def index(self, name: str) -> int:
        for i, lk in enumerate(self.looks):
            if lk.name == name:
                return i
        raise PrefstyleError(f"no look named '{name}' in the library")

    def subset(self, families: Iterable[str]) -> LookLibrary:
        """The looks of the given families (in library order)."""
        keep = set(families)
        idx = [i for i, lk in enumerate(self.looks) if lk.family in keep]
        return LookLibrary([self.looks[i] for i in idx], self.tables[idx])

    def lut(self, i: int | str) -> torch.Tensor:
        """Look ``i`` (index or name) as a ``(3,S,S,S)`` LUT."""
        return self.tables[self.index(i) if isinstance(i, str) else i]

    def apply(self, i: int | str, img: torch.Tensor) -> torch.Tensor:
        """``img`` ``(B,3,H,W)`` or ``(3,H,W)`` sRGB [0,1] rendered with look ``i``, clamped to [0,1]."""
        from prefstyle.imaging.lut import apply_lut

        return apply_lut(img, self.lut(i)).clamp(0.0, 1.0)

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.json`` + ``<path>.safetensors`` (tables as float16). Atomic."""
        from safetensors.torch import save_file

        path = Path(path).with_suffix(".json")
        with atomic_path(path.with_suffix(".safetensors")) as tmp:
            save_file({"tables": self.tables.half().contiguous()}, str(tmp))
        doc = {
            "format": LOOKS_FORMAT,
            "version": LOOKS_VERSION,
            "size": self.size,
            "looks": [asdict(lk) for lk in self.looks],
        }
        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> LookLibrary:
        """Read a library written by :meth:`save`; one-line errors name the file."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path).with_suffix(".json")
        if not path.is_file():
            raise PrefstyleError("look library not found", path=path)
        try:
            doc: Any = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PrefstyleError(f"not a look library (malformed JSON: {e})", path=path) from None
        if not isinstance(doc, dict) or doc.get("format") != LOOKS_FORMAT:
            raise PrefstyleError("not a prefstyle look library", path=path)
        if doc.get("version") != LOOKS_VERSION:
            raise PrefstyleError(f"look library version {doc.get('version')} is not supported", path=path)
        want = {f.name for f in fields(Look)}
        try:
            looks = [Look(**{k: str(v) for k, v in entry.items() if k in want}) for entry in doc["looks"]]
        except (TypeError, KeyError, AttributeError) as e:
            raise PrefstyleError(f"malformed look entry ({e})", path=path) from None
        tpath = path.with_suffix(".safetensors")
        if not tpath.is_file():
            raise PrefstyleError("look tables missing (expected beside the .json)", path=tpath)
        try:
            tables = load_file(str(tpath))["tables"]
        except (SafetensorError, KeyError, OSError) as e:
            raise PrefstyleError(f"unreadable look tables ({e})", path=tpath) from None
        try:
            return cls(looks, tables)
        except PrefstyleError as e:
            raise PrefstyleError(str(e), path=tpath) from None


# Families of the packaged library that share a source or imitate the same originals: a split
# that must keep sources apart puts a whole group on one side (docs/LOOKS.md, "Caveats").
_FAMILY_GROUPS = {"instagram-css": "instagram-imitations", "cssgram": "instagram-imitations"}
_GROUP_PREFIXES = {"sfl-": "spectral-film-lut"}


def family_group(family: str) -> str:
    """The source group of a family: the five ``sfl-*`` families come from one program
    (spectral-film-lut), ``instagram-css`` and ``cssgram`` imitate the same filters; every other
    family is its own group."""
    for prefix, group in _GROUP_PREFIXES.items():
        if family.startswith(prefix):
            return group
    return _FAMILY_GROUPS.get(family, family)


def packaged_looks_path() -> Path:
    """``src/prefstyle/assets/looks/looks.json``: the library that ships with prefstyle."""
    return Path(__file__).resolve().parent.parent / "assets" / "looks" / "looks.json"


def load_looks(path: str | Path | None = None) -> LookLibrary:
    """The packaged look library, or the one at ``path``."""
    return LookLibrary.load(path if path is not None else packaged_looks_path())
