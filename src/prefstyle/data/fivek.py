"""MIT-Adobe FiveK in the folder layouts people actually have.

:class:`FiveKDataset` detects the layout of ``root`` and yields ``(name, input_path, {expert: target_path})``.
Supported layouts (folder names matched case-insensitively):

``folders``
    ``root/input/`` (or ``inputs/``) beside ``root/expertA/`` .. ``root/expertE/``
    (``expertC``, ``expert_c``, ``Expert-C`` all work); any subset of experts.
``pie-msm``
    PIE-MSM (Kosugi & Yamasaki, masked style modeling): one folder per style with its own
    input folder beside it, ``root/ExpertA/`` + ``root/ExpertA_input/`` .. ``ExpertE``. The
    repository ships ``data/test/`` and ``data/test_ref/`` in this layout: point ``root`` at one
    of them. The input of an item is taken from the first requested expert's ``_input`` folder;
    every requested expert's ``_input`` folder must hold the same names.
``starenhancer``
    StarEnhancer (Song et al., ICCV 2021): ``root/01-Experts-A/`` .. ``root/05-Experts-E/`` beside
    one input folder ``root/NN-Input.../`` (``06-Input-ExpertC1.5`` in their release).

Any of these may also sit one level down in ``root/train/`` and ``root/test/`` (StarEnhancer's
released ``data/`` folder is ``train/``, ``valid/``, ``test/``; its ``valid/`` repeats ``test/``
and is ignored). Then the folders define the split.

The split of a flat layout is the standard 4,500/500 by file order: the images are sorted by
name and the first ``train_count`` (4,500) are ``train``, the rest (500) ``test``; ``all`` is
every image. A flat folder with ``train_count`` images or fewer cannot be split that way and is
refused for ``train``/``test`` (pass ``split="all"`` for a folder that already is one split).

Files are matched across folders by their FiveK id (``a0001`` of ``a0001-jmac_DSC1459.tif`` or
``a0001.jpg``), else by file name without extension, so inputs and targets may differ in
extension. Hidden files and non-image files are ignored. A root that matches no layout, a
requested expert that is absent, and files missing on one side raise :class:`PrefstyleError`.

For per-user work every expert is a "user": :meth:`FiveKDataset.users`, :meth:`~FiveKDataset.by_user`,
:meth:`~FiveKDataset.references`.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from prefstyle.errors import PrefstyleError

EXPERTS = ("A", "B", "C", "D", "E")
TRAIN_COUNT = 4500
SPLITS = ("train", "test", "all")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dng", ".webp", ".bmp"})

_EXPERT_NAME = re.compile(r"^expert[ _-]?([a-e])$", re.IGNORECASE)
_INPUT_NAME = re.compile(r"^inputs?$", re.IGNORECASE)
_PIE_INPUT = re.compile(r"^(expert[ _-]?[a-e])_input$", re.IGNORECASE)
_STAR_EXPERT = re.compile(r"^\d+-experts?-([a-e])$", re.IGNORECASE)
_STAR_INPUT = re.compile(r"^\d+-input", re.IGNORECASE)
_FIVEK_ID = re.compile(r"^(a\d{4})(?![0-9])", re.IGNORECASE)


class FiveKItem(NamedTuple):
    """One FiveK photo: its name (``a0001``), the input rendition, and each requested expert's edit."""

    name: str
    input: Path
    targets: dict[str, Path]


class FiveKPair(NamedTuple):
    """One photo as seen by one expert ("user")."""

    name: str
    input: Path
    target: Path


@dataclass(frozen=True)
class FiveKLayout:
    """A detected layout: ``inputs[e]`` is the input folder used with expert ``e``'s folder ``targets[e]``."""

    kind: str  # "folders" | "pie-msm" | "starenhancer"
    root: Path
    inputs: dict[str, Path]
    targets: dict[str, Path]

    @property
    def experts(self) -> tuple[str, ...]:
        return tuple(sorted(self.targets))


def normalize_expert(expert: str) -> str:
    """``"C"``, ``"c"``, ``"expertC"``, ``"Expert C"`` -> ``"C"``."""
    text = str(expert).strip()
    m = _EXPERT_NAME.match(text)
    letter = m.group(1) if m else text
    if letter.upper() not in EXPERTS:
        raise PrefstyleError(f"unknown FiveK expert {expert!r} (expected one of A, B, C, D, E)")
    return letter.upper()


def parse_experts(text: str) -> list[str]:
    """``"A,C"`` or ``"AC"`` (letters run together) -> ``["A", "C"]``; ``"expertC"`` -> ``["expertC"]``."""
    text = text.strip()
    if "," in text:
        return [t for t in text.split(",") if t.strip()]
    if len(text) > 1 and not _EXPERT_NAME.match(text) and all(c.upper() in EXPERTS for c in text):
        return list(text)
    return [text]


def _subdirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _one_input(root: Path, candidates: list[Path], kind: str) -> Path:
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise PrefstyleError(f"{kind} layout with more than one input folder ({names}); keep one", path=root)
    return candidates[0]


def _match_layout(root: Path) -> FiveKLayout | None:
    """The layout of a folder that directly holds the style folders, or None."""
    dirs = _subdirs(root)
    by_lower = {d.name.lower(): d for d in dirs}

    pie_targets: dict[str, Path] = {}
    pie_inputs: dict[str, Path] = {}
    for d in dirs:
        m = _PIE_INPUT.match(d.name)
        if m:
            style = by_lower.get(m.group(1).lower())
            if style is not None:
                letter = _EXPERT_NAME.match(style.name).group(1).upper()  # type: ignore[union-attr]
                pie_targets[letter] = style
                pie_inputs[letter] = d
    if pie_targets:
        return FiveKLayout("pie-msm", root, pie_inputs, pie_targets)

    star_targets = {m.group(1).upper(): d for d in dirs if (m := _STAR_EXPERT.match(d.name))}
    star_inputs = [d for d in dirs if _STAR_INPUT.match(d.name)]
    if star_targets and star_inputs:
        inp = _one_input(root, star_inputs, "StarEnhancer")
        return FiveKLayout("starenhancer", root, dict.fromkeys(star_targets, inp), star_targets)

    targets = {m.group(1).upper(): d for d in dirs if (m := _EXPERT_NAME.match(d.name))}
    inputs = [d for d in dirs if _INPUT_NAME.match(d.name)]
    if targets and inputs:
        inp = _one_input(root, inputs, "input/ + expertX/")
        return FiveKLayout("folders", root, dict.fromkeys(targets, inp), targets)
    return None


def _no_layout(root: Path) -> PrefstyleError:
    found = ", ".join(d.name for d in _subdirs(root)[:12]) or "no folders"
    return PrefstyleError(
        "matches no MIT-Adobe FiveK layout: expected input/ + expertA/..expertE/, PIE-MSM's ExpertC/ + "
        "ExpertC_input/, or StarEnhancer's 01-Experts-A/.. + 06-Input-.../ (directly or under train/ and test/); "
        f"found: {found}",
        path=root,
    )


def detect_layout(root: str | Path) -> FiveKLayout | dict[str, FiveKLayout]:
    """The layout of ``root``: a :class:`FiveKLayout`, or ``{"train": ..., "test": ...}`` for pre-split folders."""
    root = Path(root)
    if not root.is_dir():
        raise PrefstyleError("no such folder" if not root.exists() else "not a folder", path=root)
    flat = _match_layout(root)
    if flat is not None:
        return flat
    presplit = {}
    for split in ("train", "test"):
        sub = root / split
        if sub.is_dir():
            layout = _match_layout(sub)
            if layout is not None:
                presplit[split] = layout
    if presplit:
        return presplit
    raise _no_layout(root)


def image_key(path: Path) -> str:
    """The name that matches one photo across folders: its FiveK id if it has one, else its stem."""
    m = _FIVEK_ID.match(path.stem)
    return m.group(1).lower() if m else path.stem


def _images(folder: Path) -> dict[str, Path]:
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_file())
    out: dict[str, Path] = {}
    for name in names:
        p = folder / name
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        key = image_key(p)
        if key in out:
            raise PrefstyleError(f"two files for photo {key!r}: {out[key].name} and {name}", path=folder)
        out[key] = p
    return out


def _mismatch(a: Path, b: Path, only_a: set[str]) -> str:
    shown = ", ".join(sorted(only_a)[:5]) + (f" and {len(only_a) - 5} more" if len(only_a) > 5 else "")
    return f"{len(only_a)} photos in {a} have no counterpart in {b}: {shown}"


def _layout_items(layout: FiveKLayout, experts: Sequence[str]) -> list[FiveKItem]:
    missing = [e for e in experts if e not in layout.targets]
    if missing:
        raise PrefstyleError(
            f"expert {', '.join(missing)} not found ({layout.kind} layout with experts {', '.join(layout.experts)})",
            path=layout.root,
        )
    inputs = _images(layout.inputs[experts[0]])
    if not inputs:
        raise PrefstyleError("no images in the input folder", path=layout.inputs[experts[0]])
    listings: dict[Path, dict[str, Path]] = {layout.inputs[experts[0]]: inputs}
    targets: dict[str, dict[str, Path]] = {}
    for e in experts:
        for folder in (layout.inputs[e], layout.targets[e]):
            if folder not in listings:
                listings[folder] = _images(folder)
            names = listings[folder]
            if names.keys() != inputs.keys():
                ref = layout.inputs[experts[0]]
                only_ref = set(inputs) - set(names)
                raise PrefstyleError(
                    _mismatch(ref, folder, only_ref) if only_ref else _mismatch(folder, ref, set(names) - set(inputs)),
                    path=layout.root,
                )
        targets[e] = listings[layout.targets[e]]
    return [FiveKItem(key, inputs[key], {e: targets[e][key] for e in experts}) for key in sorted(inputs)]


class FiveKDataset:
    """MIT-Adobe FiveK photos with the edits of the requested experts (see the module docs).

    ``FiveKDataset(root, experts=("C",), split="train")`` lists the photos once, at construction;
    iterate it for :class:`FiveKItem` ``(name, input_path, {expert: target_path})`` in name order.
    ``experts`` is a sequence of letters or expert names, or one string (``"A,C"``, ``"ABCDE"``).
    ``train_count`` is the size of the train part of a flat layout (4,500 in the standard split).
    """

    def __init__(
        self,
        root: str | Path,
        experts: Iterable[str] | str = ("C",),
        split: str = "train",
        train_count: int = TRAIN_COUNT,
    ):
        if split not in SPLITS:
            raise PrefstyleError(f"unknown FiveK split {split!r} (expected train, test or all)")
        if train_count < 1:
            raise ValueError("train_count must be >= 1")
        self.root = Path(root)
        if isinstance(experts, str):
            experts = parse_experts(experts)
        self.experts: tuple[str, ...] = tuple(dict.fromkeys(normalize_expert(e) for e in experts))
        if not self.experts:
            raise PrefstyleError("no FiveK expert requested")
        self.split = split
        self.train_count = train_count
        self.layout = detect_layout(self.root)
        if isinstance(self.layout, FiveKLayout):
            items = _layout_items(self.layout, self.experts)
            self.items = self._split_by_order(items)
        else:
            self.items = self._presplit_items(self.layout)

    def _split_by_order(self, items: list[FiveKItem]) -> list[FiveKItem]:
        if self.split == "all":
            return items
        if len(items) <= self.train_count:
            raise PrefstyleError(
                f"{len(items)} photos: the {self.train_count}/rest split by file order needs more than "
                f"{self.train_count}; pass split='all' for a folder that already is one split",
                path=self.root,
            )
        return items[: self.train_count] if self.split == "train" else items[self.train_count :]

    def _presplit_items(self, layouts: dict[str, FiveKLayout]) -> list[FiveKItem]:
        wanted = ("train", "test") if self.split == "all" else (self.split,)
        absent = [s for s in wanted if s not in layouts]
        if absent:
            raise PrefstyleError(
                f"split folder {absent[0]}/ is missing or matches no FiveK layout "
                f"(found: {', '.join(sorted(layouts))}/)",
                path=self.root,
            )
        items: list[FiveKItem] = []
        seen: dict[str, str] = {}
        for s in wanted:
            for item in _layout_items(layouts[s], self.experts):
                if item.name in seen:
                    raise PrefstyleError(f"photo {item.name!r} is in both {seen[item.name]}/ and {s}/", path=self.root)
                seen[item.name] = s
                items.append(item)
        return items

    @property
    def kind(self) -> str:
        """The detected layout kind (``folders``, ``pie-msm`` or ``starenhancer``)."""
        layout = self.layout if isinstance(self.layout, FiveKLayout) else next(iter(self.layout.values()))
        return layout.kind

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[FiveKItem]:
        return iter(self.items)

    def __getitem__(self, index: int) -> FiveKItem:
        return self.items[index]

    def __repr__(self) -> str:
        return (
            f"FiveKDataset({str(self.root)!r}, experts={self.experts}, split={self.split!r}, "
            f"kind={self.kind!r}, n={len(self)})"
        )

    # -- experts as users --------------------------------------------------------------------

    def users(self) -> list[str]:
        """The requested experts, each a "user" with its own taste."""
        return list(self.experts)

    def by_user(self, expert: str) -> list[FiveKPair]:
        """Every photo of this split as ``(name, input, target)`` for one expert."""
        e = normalize_expert(expert)
        if e not in self.experts:
            raise PrefstyleError(f"expert {e} was not requested (have {', '.join(self.experts)})", path=self.root)
        return [FiveKPair(it.name, it.input, it.targets[e]) for it in self.items]

    def references(self, expert: str, n: int, seed: int | None = None) -> list[FiveKPair]:
        """Up to ``n`` photos of one expert: the first ``n`` by name, or a seeded random choice."""
        pairs = self.by_user(expert)
        if seed is not None:
            random.Random(seed).shuffle(pairs)
        return pairs[:n]


def load_square(path: str | Path, size: int) -> torch.Tensor:
    """The centred square crop of an image file resized to ``size``² (antialiased bilinear):
    uint8 ``(3, size, size)``. Training thumbnails of FiveK photos (colour and tone edits are
    global, so a square crop carries them)."""
    import torch.nn.functional as F

    from prefstyle.imaging.io import load_image

    img = load_image(path)
    h, w = img.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    sq = img[:, :, top : top + side, left : left + side]
    if side != size:
        sq = F.interpolate(sq, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (sq[0].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
