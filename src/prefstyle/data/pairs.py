"""Pairwise preference datasets in the "pairs" format, version 1 (docs/FORMATS.md, section 1).

A dataset is a folder::

    DATA/
      judgments.jsonl   required: one pairwise judgment per line
      scenes.jsonl      optional: one scene per line
      splits.json       optional: {"train": [user, ...], "val": [...], "test": [...]}
      dataset.json      optional: {"format": "prefstyle-pairs", "version": 1, "name": ..., "license": ...}
      images/...        any layout; every path in a JSON line is relative to DATA

Reading:

* :meth:`PairsDataset.load` reads a folder and raises :class:`~prefstyle.errors.InputFormatError`
  (message, ``.path`` and ``.line``) at the first error.
* :func:`read_with_problems` / :func:`collect_problems` read the whole folder and return every
  problem found (errors and warnings), for ``prefstyle data validate``.

Both enforce the rules of the contract (unknown ``preferred`` values, missing images, a judgment
whose two images are the same file, malformed JSON) plus: required fields and their types,
unknown ``kind`` values, paths that are absolute or escape the dataset folder (``../``),
``time`` that is not ISO-8601, duplicate scenes, ``splits.json`` that does not follow its schema,
names users without judgments or puts a user in two splits, and ``dataset.json`` with a wrong
``format`` or ``version``. Unknown extra fields are kept (``Judgment.extra``, ``Scene.extra``,
``PairsDataset.meta``) and written back by :func:`write_pairs`.

Warnings (reported by ``validate``, never raised by ``load``): a consistency item without an
earlier main judgment of the same user on the same two images, a judgment whose scene is missing
from ``scenes.jsonl``, ``user`` that differs from ``person@device``, a user listed twice in one split.
"""

from __future__ import annotations

import codecs
import json
import os
import posixpath
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prefstyle.data.splits import overlaps
from prefstyle.errors import InputFormatError, PrefstyleError
from prefstyle.fsutil import atomic_write_text

FORMAT_NAME = "prefstyle-pairs"
FORMAT_VERSION = 1
JUDGMENTS_FILE = "judgments.jsonl"
SCENES_FILE = "scenes.jsonl"
SPLITS_FILE = "splits.json"
META_FILE = "dataset.json"
PREFERRED_VALUES = ("a", "b")
KINDS = ("main", "consistency")
SPLIT_NAMES = ("train", "val", "test")

_JUDGMENT_FIELDS = (
    "user",
    "scene",
    "image_a",
    "image_b",
    "preferred",
    "kind",
    "response_ms",
    "person",
    "device",
    "time",
)
_SCENE_FIELDS = ("scene", "source", "origin", "content")

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: called while image files are checked."""


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def normalize_relpath(rel: str) -> str:
    """The canonical form of a dataset-relative path (``./a//b.png`` -> ``a/b.png``)."""
    return posixpath.normpath(rel.replace("\\", "/")) if rel else rel


def _path_error(rel: str) -> str | None:
    """Why ``rel`` cannot be a path inside the dataset folder, or None if it can."""
    if rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":"):
        return "must be a path relative to the dataset folder"
    norm = normalize_relpath(rel)
    if norm == "." or norm == ".." or norm.startswith("../"):
        return "points outside the dataset folder"
    return None


@dataclass
class Judgment:
    """One pairwise judgment: ``user`` preferred ``image_a`` or ``image_b`` of ``scene``.

    ``line`` is the 1-based line in ``judgments.jsonl`` it was read from (None when built in
    code); it does not take part in equality. ``extra`` holds unknown fields, in file order.
    """

    user: str
    scene: str
    image_a: str
    image_b: str
    preferred: str
    kind: str = "main"
    response_ms: int | None = None
    person: str | None = None
    device: str | None = None
    time: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.preferred not in PREFERRED_VALUES:
            raise ValueError(f"preferred must be 'a' or 'b', got {self.preferred!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be 'main' or 'consistency', got {self.kind!r}")

    @property
    def preferred_image(self) -> str:
        """The path of the image the user chose."""
        return self.image_a if self.preferred == "a" else self.image_b

    @property
    def other_image(self) -> str:
        """The path of the image the user did not choose."""
        return self.image_b if self.preferred == "a" else self.image_a

    @property
    def pair_key(self) -> frozenset[str]:
        """The unordered pair of (normalised) image paths: equal for a pair and its swap."""
        return frozenset((normalize_relpath(self.image_a), normalize_relpath(self.image_b)))

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON object written for this judgment: known fields in a fixed order, then extras."""
        out: dict[str, Any] = {
            "user": self.user,
            "scene": self.scene,
            "image_a": self.image_a,
            "image_b": self.image_b,
            "preferred": self.preferred,
            "kind": self.kind,
        }
        for key in ("response_ms", "person", "device", "time"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out


@dataclass
class Scene:
    """One line of ``scenes.jsonl``. ``content`` is free text or a list of tags."""

    scene: str
    source: str | None = None
    origin: str | None = None
    content: str | list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scene": self.scene}
        for key in ("source", "origin", "content"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class Problem:
    """One problem found in a dataset folder; ``str()`` gives ``file:line: message``."""

    path: str
    line: int | None
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "message": self.message, "severity": self.severity}


@dataclass(frozen=True)
class ConsistencyCheck:
    """A consistency item and the main judgment it repeats (None when there is none)."""

    item: Judgment
    original: Judgment | None

    @property
    def agreed(self) -> bool | None:
        """True when the same image was chosen both times; None when there is no original."""
        if self.original is None:
            return None
        return normalize_relpath(self.item.preferred_image) == normalize_relpath(self.original.preferred_image)


def consistency_checks(judgments: Iterable[Judgment]) -> list[ConsistencyCheck]:
    """Match every consistency item to the main judgment it repeats.

    The match is by user and unordered image pair (so the swapped sides still match). The
    original is the latest main judgment of that pair before the item in file order; when there
    is none before it, the first one after it (files that are not in answer order).
    """
    judgments = list(judgments)
    first_main: dict[tuple[str, frozenset[str]], Judgment] = {}
    for j in judgments:
        if j.kind == "main":
            first_main.setdefault((j.user, j.pair_key), j)
    last_main: dict[tuple[str, frozenset[str]], Judgment] = {}
    checks = []
    for j in judgments:
        key = (j.user, j.pair_key)
        if j.kind == "main":
            last_main[key] = j
        else:
            checks.append(ConsistencyCheck(j, last_main.get(key) or first_main.get(key)))
    return checks


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


class PairsDataset:
    """A pairs dataset in memory. Build one with :meth:`load` or from records in code.

    Attributes: ``root`` (the folder image paths are relative to), ``judgments`` (file order),
    ``scenes`` (scene id -> :class:`Scene`), ``splits`` (split name -> users; empty when the
    dataset has no ``splits.json``), ``meta`` (the content of ``dataset.json``).
    Treat the lists as read-only: the per-user index is built once.
    """

    def __init__(
        self,
        root: str | Path,
        judgments: Iterable[Judgment],
        scenes: Mapping[str, Scene] | Iterable[Scene] | None = None,
        splits: Mapping[str, Sequence[str]] | None = None,
        meta: Mapping[str, Any] | None = None,
    ):
        self.root = Path(root)
        self.judgments: list[Judgment] = list(judgments)
        self.scenes: dict[str, Scene] = _scene_dict(scenes)
        self.splits: dict[str, list[str]] = {k: list(v) for k, v in (splits or {}).items()}
        self.meta: dict[str, Any] = dict(meta or {})
        self._by_user: dict[str, list[Judgment]] = defaultdict(list)
        for j in self.judgments:
            self._by_user[j.user].append(j)
        self._by_user = dict(self._by_user)

    def __repr__(self) -> str:
        return f"PairsDataset({str(self.root)!r}, users={len(self._by_user)}, judgments={len(self.judgments)})"

    def __len__(self) -> int:
        return len(self.judgments)

    @classmethod
    def load(
        cls,
        root: str | Path,
        check_images: bool = True,
        progress: ProgressFn | None = None,
        users: Collection[str] | None = None,
    ) -> PairsDataset:
        """Read a dataset folder; raise :class:`InputFormatError` (file and line) at the first error.

        ``check_images=False`` skips the file-system checks on images (existence, and two paths
        naming the same file through links); the lexical checks still run.
        ``users``: read only these users' judgments (one person's answers out of a large crowd):
        the other lines are skipped unparsed, so their errors go unreported, and ``splits.json``
        is read without checking that its users have judgments.
        """
        reader = _Reader(Path(root), check_images=check_images, fail_fast=True, progress=progress, users=users)
        ds, _ = reader.read()
        return ds

    def write(self, root: str | Path | None = None) -> None:
        """Write this dataset's JSON files into ``root`` (default: its own root); see :func:`write_pairs`."""
        write_pairs(self.root if root is None else root, self.judgments, self.scenes, self.splits or None, self.meta)

    # -- users ---------------------------------------------------------------------------

    def users(self) -> list[str]:
        """All users with at least one judgment, sorted."""
        return sorted(self._by_user)

    def by_user(self, user: str) -> list[Judgment]:
        """All judgments of ``user`` (main and consistency) in file order."""
        try:
            return list(self._by_user[user])
        except KeyError:
            raise PrefstyleError(
                f"unknown user {user!r} ({len(self._by_user)} users; e.g. {', '.join(self.users()[:3])})",
                path=self.root,
            ) from None

    def subset(self, users: Iterable[str]) -> PairsDataset:
        """A dataset with only these users' judgments; splits keep only these users."""
        keep = set(users)
        splits = {name: [u for u in members if u in keep] for name, members in self.splits.items()}
        return PairsDataset(self.root, [j for j in self.judgments if j.user in keep], self.scenes, splits, self.meta)

    def references(self, user: str, n: int, kind: str = "main", seed: int | None = None) -> list[Judgment]:
        """Up to ``n`` judgments of ``user`` of this ``kind`` to learn the user from.

        With ``seed=None``: the first ``n`` in file order (the order the study wrote them, i.e.
        answer order). With a seed: the first ``n`` of a seeded shuffle, the same list as the
        references of :meth:`split_user_judgments` with that seed. Fewer than ``n`` when the user
        has fewer.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return _ordered(self._of_kind(user, kind), seed)[:n]

    def split_user_judgments(
        self,
        user: str,
        n_refs: int,
        n_evals: int,
        seed: int | None = None,
        kind: str = "main",
        disjoint_scenes: bool = True,
        eval_scenes: Collection[str] | None = None,
    ) -> tuple[list[Judgment], list[Judgment]]:
        """Disjoint reference and evaluation judgments of ``user`` for one evaluation run.

        The references are :meth:`references` ``(user, n_refs, kind, seed)``; the evaluation
        judgments are the next ones in the same order, skipping any whose scene appears among
        the references when ``disjoint_scenes`` (so the model is never scored on a scene it was
        shown). With ``eval_scenes`` the evaluation judgments are only those on these scenes and
        the references only those on other scenes (each in the same seeded order), e.g. scenes
        cut from photographs no model was trained on (:meth:`scenes_of_split`). Either list is
        shorter when the user has too few judgments.
        """
        if n_refs < 0 or n_evals < 0:
            raise ValueError("n_refs and n_evals must be >= 0")
        order = _ordered(self._of_kind(user, kind), seed)
        if eval_scenes is not None:
            allowed = set(eval_scenes)
            refs = [j for j in order if j.scene not in allowed][:n_refs]
            candidates = [j for j in order if j.scene in allowed]
        else:
            refs = order[:n_refs]
            candidates = order[n_refs:]
        ref_scenes = {j.scene for j in refs}
        rest = [j for j in candidates if not (disjoint_scenes and j.scene in ref_scenes)]
        return refs, rest[:n_evals]

    def scenes_of_split(self, split: str) -> set[str]:
        """Scenes whose metadata puts them in ``split`` (``scenes.jsonl``'s ``split``: the split of
        the photograph a simulated scene was cut from). PrefstyleError when no scene has it."""
        out = {sid for sid, sc in self.scenes.items() if (sc.extra or {}).get("split") == split}
        if not out:
            known = sorted({str((sc.extra or {}).get("split")) for sc in self.scenes.values()})
            raise PrefstyleError(
                f"no scenes of split {split!r} (scene splits here: {', '.join(known)})", path=self.root
            )
        return out

    def _of_kind(self, user: str, kind: str) -> list[Judgment]:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        return [j for j in self.by_user(user) if j.kind == kind]

    # -- images --------------------------------------------------------------------------

    def image_path(self, rel: str) -> Path:
        """The file a dataset-relative path names; PrefstyleError for absolute or escaping paths."""
        why = _path_error(rel)
        if why:
            raise PrefstyleError(f"image path {rel!r} {why}", path=self.root)
        return self.root / normalize_relpath(rel)


def _ordered(judgments: list[Judgment], seed: int | None) -> list[Judgment]:
    if seed is None:
        return list(judgments)
    out = list(judgments)
    random.Random(seed).shuffle(out)
    return out


def _scene_dict(scenes: Mapping[str, Scene] | Iterable[Scene] | None) -> dict[str, Scene]:
    if scenes is None:
        return {}
    if isinstance(scenes, Mapping):
        return dict(scenes)
    return {s.scene: s for s in scenes}


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_with_problems(
    root: str | Path, check_images: bool = True, progress: ProgressFn | None = None
) -> tuple[PairsDataset, list[Problem]]:
    """Read a dataset folder without stopping at problems.

    Returns the dataset built from the valid lines and every problem found, sorted by file
    and line. Raises :class:`PrefstyleError` only when ``root`` is not a dataset folder at all
    (missing, not a folder, or without ``judgments.jsonl``).
    """
    return _Reader(Path(root), check_images=check_images, fail_fast=False, progress=progress).read()


def collect_problems(root: str | Path, check_images: bool = True, progress: ProgressFn | None = None) -> list[Problem]:
    """Every problem (errors and warnings) in a dataset folder; see :func:`read_with_problems`."""
    return read_with_problems(root, check_images, progress)[1]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _line_of(text: str, needle: str) -> int | None:
    i = text.find(needle)
    return None if i < 0 else text.count("\n", 0, i) + 1


_MISSING = object()


class _Reader:
    """Reads one folder, reporting problems to a list (or raising at the first error)."""

    def __init__(
        self,
        root: Path,
        check_images: bool,
        fail_fast: bool,
        progress: ProgressFn | None,
        users: Collection[str] | None = None,
    ):
        self.root = root
        self.users = None if users is None else set(users)
        self.check_images = check_images
        self.fail_fast = fail_fast
        self.progress = progress
        self.problems: list[Problem] = []

    def problem(self, path: Path, line: int | None, message: str, severity: str = "error") -> None:
        if self.fail_fast and severity == "error":
            raise InputFormatError(message, path=path, line=line)
        self.problems.append(Problem(str(path), line, message, severity))

    # -- top level -----------------------------------------------------------------------

    def read(self) -> tuple[PairsDataset, list[Problem]]:
        root = self.root
        if not root.exists():
            raise PrefstyleError("no such dataset folder", path=root)
        if not root.is_dir():
            raise PrefstyleError("not a folder (a pairs dataset is a folder with judgments.jsonl)", path=root)
        if not (root / JUDGMENTS_FILE).is_file():
            raise PrefstyleError(f"not a pairs dataset: no {JUDGMENTS_FILE} in this folder", path=root)

        meta = self.read_meta(root / META_FILE) if (root / META_FILE).exists() else {}
        judgments = self.read_judgments(root / JUDGMENTS_FILE)
        scenes_present = (root / SCENES_FILE).exists()
        scenes = self.read_scenes(root / SCENES_FILE) if scenes_present else {}
        users = {j.user for j in judgments}
        splits = (
            self.read_splits(root / SPLITS_FILE, None if self.users is not None else users)
            if (root / SPLITS_FILE).exists()
            else {}
        )
        self.check_image_files(judgments, scenes)
        self.check_semantics(judgments, scenes if scenes_present else None)

        ds = PairsDataset(root, judgments, scenes, splits, meta)
        self.problems.sort(key=lambda p: (p.path, p.line or 0))
        return ds, self.problems

    # -- files ---------------------------------------------------------------------------

    def json_lines(
        self, path: Path, wanted: Callable[[bytes], bool] | None = None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(line number, object)`` of each non-blank line; ``wanted``: a test on the raw bytes
        that lets lines through to parsing (the others are skipped unread)."""
        try:
            data = path.read_bytes()
        except OSError as e:
            self.problem(path, None, f"cannot read: {e.strerror or e}")
            return
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if wanted is not None and not wanted(raw):
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                self.problem(path, number, f"not valid UTF-8 text ({e.reason} at byte {e.start})")
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                self.problem(path, number, f"malformed JSON: {e.msg} (column {e.colno})")
                continue
            if not isinstance(obj, dict):
                self.problem(path, number, f"expected a JSON object, got {_json_type(obj)}")
                continue
            yield number, obj

    def text_field(self, obj: dict, key: str, path: Path, line: int, required: bool, is_path: bool = False) -> Any:
        """A string field; _MISSING after reporting a problem, None when optional and absent."""
        value = obj.get(key)
        if value is None:
            if required:
                self.problem(path, line, f"missing required field '{key}'")
                return _MISSING
            return None
        if not isinstance(value, str):
            self.problem(path, line, f"field '{key}' must be a string, got {_json_type(value)} {_shown(value)}")
            return _MISSING
        if required and not value.strip():
            self.problem(path, line, f"field '{key}' must not be empty")
            return _MISSING
        if is_path:
            why = _path_error(value)
            if why:
                self.problem(path, line, f"{key} {_shown(value)} {why}")
                return _MISSING
        return value

    def read_judgments(self, path: Path) -> list[Judgment]:
        judgments: list[Judgment] = []
        for line, obj in self.json_lines(path, self._user_filter()):
            if self.users is not None and obj.get("user") not in self.users:
                continue
            values = {
                "user": self.text_field(obj, "user", path, line, required=True),
                "scene": self.text_field(obj, "scene", path, line, required=True),
                "image_a": self.text_field(obj, "image_a", path, line, required=True, is_path=True),
                "image_b": self.text_field(obj, "image_b", path, line, required=True, is_path=True),
                "person": self.text_field(obj, "person", path, line, required=False),
                "device": self.text_field(obj, "device", path, line, required=False),
                "time": self.text_field(obj, "time", path, line, required=False),
            }
            preferred = obj.get("preferred", _MISSING)
            if preferred is _MISSING:
                self.problem(path, line, "missing required field 'preferred'")
            elif preferred not in PREFERRED_VALUES:
                self.problem(path, line, f'unknown \'preferred\' value {_shown(preferred)} (expected "a" or "b")')
                preferred = _MISSING
            kind = obj.get("kind")
            if kind is None:
                kind = "main"
            elif kind not in KINDS:
                self.problem(path, line, f'unknown \'kind\' value {_shown(kind)} (expected "main" or "consistency")')
                kind = _MISSING
            response_ms = obj.get("response_ms")
            if response_ms is not None and (
                isinstance(response_ms, bool) or not isinstance(response_ms, int) or response_ms < 0
            ):
                self.problem(
                    path,
                    line,
                    f"field 'response_ms' must be a non-negative integer (milliseconds), "
                    f"got {_json_type(response_ms)} {_shown(response_ms)}",
                )
                response_ms = _MISSING
            if isinstance(values["time"], str):
                try:
                    datetime.fromisoformat(values["time"])
                except ValueError:
                    self.problem(path, line, f"field 'time' is not an ISO-8601 time: {_shown(values['time'])}")
                    values["time"] = _MISSING
            if (
                isinstance(values["image_a"], str)
                and isinstance(values["image_b"], str)
                and normalize_relpath(values["image_a"]) == normalize_relpath(values["image_b"])
            ):
                self.problem(path, line, f"image_a and image_b are the same file ({_shown(values['image_a'])})")
                values["image_a"] = _MISSING
            if any(v is _MISSING for v in (*values.values(), preferred, kind, response_ms)):
                continue  # each _MISSING came with a reported error
            extra = {k: v for k, v in obj.items() if k not in _JUDGMENT_FIELDS}
            judgments.append(
                Judgment(preferred=preferred, kind=kind, response_ms=response_ms, extra=extra, line=line, **values)
            )
        if not judgments and self.users is None and not any(p.path == str(path) for p in self.problems):
            self.problem(path, None, "no judgments in this file")
        return judgments

    def read_scenes(self, path: Path) -> dict[str, Scene]:
        scenes: dict[str, Scene] = {}
        for line, obj in self.json_lines(path):
            n_before = len(self.problems)
            scene = self.text_field(obj, "scene", path, line, required=True)
            source = self.text_field(obj, "source", path, line, required=False, is_path=True)
            origin = self.text_field(obj, "origin", path, line, required=False)
            content = obj.get("content")
            if content is not None and not (
                isinstance(content, str) or (isinstance(content, list) and all(isinstance(t, str) for t in content))
            ):
                self.problem(
                    path, line, f"field 'content' must be a string or a list of strings, got {_shown(content)}"
                )
            if isinstance(scene, str) and scene in scenes:
                self.problem(path, line, f"scene {_shown(scene)} is listed twice (first on line {scenes[scene].line})")
            if len(self.problems) > n_before:
                continue
            extra = {k: v for k, v in obj.items() if k not in _SCENE_FIELDS}
            scenes[scene] = Scene(scene, source, origin, content, extra, line)
        return scenes

    def read_json_file(self, path: Path) -> tuple[Any, str] | None:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as e:
            self.problem(path, None, f"cannot read: {e.strerror or e}")
            return None
        except UnicodeDecodeError as e:
            self.problem(path, None, f"not valid UTF-8 text ({e.reason} at byte {e.start})")
            return None
        try:
            return json.loads(text), text
        except json.JSONDecodeError as e:
            self.problem(path, e.lineno, f"malformed JSON: {e.msg} (column {e.colno})")
            return None

    def read_meta(self, path: Path) -> dict[str, Any]:
        parsed = self.read_json_file(path)
        if parsed is None:
            return {}
        meta, text = parsed
        if not isinstance(meta, dict):
            self.problem(path, 1, f"expected a JSON object, got {_json_type(meta)}")
            return {}
        fmt = meta.get("format", _MISSING)
        if fmt is _MISSING:
            self.problem(path, 1, f"missing field 'format' (expected \"{FORMAT_NAME}\")")
        elif fmt != FORMAT_NAME:
            self.problem(path, _line_of(text, '"format"'), f'format is {_shown(fmt)}, expected "{FORMAT_NAME}"')
        version = meta.get("version", _MISSING)
        if version is _MISSING:
            self.problem(path, 1, f"missing field 'version' (expected {FORMAT_VERSION})")
        elif isinstance(version, bool) or version != FORMAT_VERSION:
            self.problem(
                path,
                _line_of(text, '"version"'),
                f"unsupported version {_shown(version)} (this reader supports version {FORMAT_VERSION})",
            )
        return meta

    def _user_filter(self) -> Callable[[bytes], bool] | None:
        """A raw-line test that keeps every line naming one of ``self.users``: their UTF-8 text,
        or any line with an escape (a name may be written with ``\\u`` escapes)."""
        if self.users is None:
            return None
        needles = [u.encode("utf-8") for u in self.users if u]
        return lambda raw: b"\\" in raw or any(n in raw for n in needles)

    def read_splits(self, path: Path, users: set[str] | None) -> dict[str, list[str]]:
        """``users``: those with judgments, to report splits naming others (``None``: not checked)."""
        parsed = self.read_json_file(path)
        if parsed is None:
            return {}
        splits, text = parsed
        if not isinstance(splits, dict):
            self.problem(path, 1, f"expected a JSON object of user lists per split, got {_json_type(splits)}")
            return {}
        out: dict[str, list[str]] = {}
        for name, members in splits.items():
            where = _line_of(text, json.dumps(name))
            if name not in SPLIT_NAMES:
                self.problem(path, where, f"unknown split {_shown(name)} (expected train, val or test)")
                continue
            if not isinstance(members, list) or not all(isinstance(u, str) for u in members):
                self.problem(path, where, f"split {_shown(name)} must be a list of user names (strings)")
                continue
            for user, count in Counter(members).items():
                if count > 1:
                    self.problem(
                        path, where, f"user {_shown(user)} is listed {count} times in split {_shown(name)}", "warning"
                    )
            for user in dict.fromkeys(members):
                if users is not None and user not in users:
                    self.problem(
                        path,
                        _line_of(text, json.dumps(user, ensure_ascii=False)) or where,
                        f"split {_shown(name)} names unknown user {_shown(user)} (no judgments in {JUDGMENTS_FILE})",
                    )
            out[name] = list(members)
        for user, names in sorted(overlaps(out).items()):
            self.problem(
                path,
                _line_of(text, json.dumps(user, ensure_ascii=False)),
                f"user {_shown(user)} is in more than one split ({', '.join(names)})",
            )
        return out

    # -- images --------------------------------------------------------------------------

    def check_image_files(self, judgments: list[Judgment], scenes: dict[str, Scene]) -> None:
        if not self.check_images:
            return
        unique = sorted(
            {normalize_relpath(p) for j in judgments for p in (j.image_a, j.image_b)}
            | {normalize_relpath(s.source) for s in scenes.values() if s.source}
        )
        exists: dict[str, bool] = {}
        for i, rel in enumerate(unique):
            exists[rel] = (self.root / rel).is_file()
            if self.progress is not None:
                self.progress(i + 1, len(unique))
        jpath = self.root / JUDGMENTS_FILE
        for j in judgments:
            a, b = normalize_relpath(j.image_a), normalize_relpath(j.image_b)
            for key, rel in (("image_a", a), ("image_b", b)):
                if not exists[rel]:
                    self.problem(
                        jpath, j.line, f"{key} {_shown(j.image_a if key == 'image_a' else j.image_b)} does not exist"
                    )
            if exists[a] and exists[b] and os.path.samefile(self.root / a, self.root / b):
                self.problem(
                    jpath, j.line, f"image_a {_shown(j.image_a)} and image_b {_shown(j.image_b)} are the same file"
                )
        spath = self.root / SCENES_FILE
        for s in scenes.values():
            if s.source and not exists[normalize_relpath(s.source)]:
                self.problem(spath, s.line, f"source {_shown(s.source)} does not exist")

    # -- cross-file checks (warnings) --------------------------------------------------------

    def check_semantics(self, judgments: list[Judgment], scenes: dict[str, Scene] | None) -> None:
        jpath = self.root / JUDGMENTS_FILE
        for check in consistency_checks(judgments):
            if check.original is None:
                self.problem(
                    jpath,
                    check.item.line,
                    f"consistency item of user {_shown(check.item.user)} repeats no main judgment "
                    "of that user on the same two images",
                    "warning",
                )
        if scenes is not None:
            reported: set[str] = set()
            for j in judgments:
                if j.scene not in scenes and j.scene not in reported:
                    reported.add(j.scene)
                    self.problem(jpath, j.line, f"scene {_shown(j.scene)} is not listed in {SCENES_FILE}", "warning")
        reported_users: set[str] = set()
        for j in judgments:
            if (
                j.person is not None
                and j.device is not None
                and j.user != f"{j.person}@{j.device}"
                and j.user not in reported_users
            ):
                reported_users.add(j.user)
                self.problem(
                    jpath,
                    j.line,
                    f"user {_shown(j.user)} differs from person@device {_shown(j.person + '@' + j.device)}",
                    "warning",
                )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _jsonl(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_pairs(
    root: str | Path,
    judgments: Iterable[Judgment],
    scenes: Mapping[str, Scene] | Iterable[Scene] | None = None,
    splits: Mapping[str, Sequence[str]] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a dataset's JSON files into ``root`` (created if needed); returns ``root``.

    Always writes ``judgments.jsonl`` and ``dataset.json`` (``format``/``version`` first, then
    the other ``meta`` keys); ``scenes.jsonl`` and ``splits.json`` only when given (an existing
    file is then left as it is). Each file is written atomically. Output is deterministic:
    records in the given order, known fields in a fixed order, then unknown fields as read.
    Images are not copied: the paths in the records must already be valid inside ``root``.
    """
    root = Path(root)
    meta = dict(meta or {})
    if meta.get("format", FORMAT_NAME) != FORMAT_NAME or meta.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(
            f"meta names format {meta.get('format')!r} version {meta.get('version')!r}; "
            f"this writer writes {FORMAT_NAME!r} version {FORMAT_VERSION}"
        )
    if splits is not None:
        unknown = [name for name in splits if name not in SPLIT_NAMES]
        if unknown:
            raise ValueError(f"unknown split names {unknown} (expected {', '.join(SPLIT_NAMES)})")
    records = [j.to_json_dict() for j in judgments]
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / JUDGMENTS_FILE, _jsonl(records))
    if scenes is not None:
        atomic_write_text(root / SCENES_FILE, _jsonl(s.to_json_dict() for s in _scene_dict(scenes).values()))
    if splits is not None:
        ordered = {name: list(splits[name]) for name in SPLIT_NAMES if name in splits}
        atomic_write_text(root / SPLITS_FILE, json.dumps(ordered, ensure_ascii=False, indent=2) + "\n")
    meta_out = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
    meta_out.update({k: v for k, v in meta.items() if k not in ("format", "version")})
    atomic_write_text(root / META_FILE, json.dumps(meta_out, ensure_ascii=False, indent=2) + "\n")
    return root


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def _summary(values: Sequence[float]) -> dict[str, float] | None:
    import numpy as np

    if len(values) == 0:
        return None
    arr = np.asarray(values, dtype=float)
    return {"min": float(arr.min()), "median": float(np.median(arr)), "max": float(arr.max())}


def person_of(j: Judgment) -> str:
    """The person behind a judgment: ``person``, else the part of ``user`` before ``@``."""
    return j.person if j.person is not None else j.user.split("@", 1)[0]


def device_of(j: Judgment) -> str | None:
    """The device of a judgment: ``device``, else the part of ``user`` after ``@`` (None if none)."""
    if j.device is not None:
        return j.device
    return j.user.split("@", 1)[1] if "@" in j.user else None


def statistics(ds: PairsDataset) -> dict[str, Any]:
    """Summary numbers for a dataset (JSON-serialisable).

    Keys: ``users``, ``persons``, ``devices``, ``scenes`` (in judgments), ``scenes_listed`` (in
    scenes.jsonl), ``images``, ``judgments`` (total/main/consistency), ``per_user`` (min/median/max
    of main and of all judgments per user), ``consistency`` (items, matched, agreement overall and
    the per-user distribution), ``response_ms`` (count, p5/p50/p95), ``position`` (how often the
    left/"a" image was chosen: a position-bias check), ``splits`` (users per split).
    """
    import numpy as np

    js = ds.judgments
    users = ds.users()
    kinds = Counter(j.kind for j in js)
    per_user_main = [sum(1 for j in ds.by_user(u) if j.kind == "main") for u in users]
    per_user_all = [len(ds.by_user(u)) for u in users]

    checks = consistency_checks(js)
    matched = [c for c in checks if c.agreed is not None]
    by_user_checks: dict[str, list[bool]] = defaultdict(list)
    for c in matched:
        by_user_checks[c.item.user].append(bool(c.agreed))
    per_user_rate = [sum(v) / len(v) for v in by_user_checks.values()]

    times = [j.response_ms for j in js if j.response_ms is not None]
    response: dict[str, Any] = {"count": len(times)}
    if times:
        p5, p50, p95 = np.percentile(np.asarray(times, dtype=float), [5, 50, 95])
        response.update(p5=float(p5), p50=float(p50), p95=float(p95))

    n_a = sum(1 for j in js if j.preferred == "a")
    return {
        "users": len(users),
        "persons": len({person_of(j) for j in js}),
        "devices": len({d for j in js if (d := device_of(j)) is not None}),
        "scenes": len({j.scene for j in js}),
        "scenes_listed": len(ds.scenes),
        "images": len({normalize_relpath(p) for j in js for p in (j.image_a, j.image_b)}),
        "judgments": {"total": len(js), "main": kinds.get("main", 0), "consistency": kinds.get("consistency", 0)},
        "per_user": {"main": _summary(per_user_main), "all": _summary(per_user_all)},
        "consistency": {
            "items": len(checks),
            "matched": len(matched),
            "agreement": (sum(bool(c.agreed) for c in matched) / len(matched)) if matched else None,
            "users_checked": len(by_user_checks),
            "per_user_agreement": _summary(per_user_rate),
        },
        "response_ms": response,
        "position": {"a": n_a, "b": len(js) - n_a, "fraction_a": (n_a / len(js)) if js else None},
        "splits": {name: len(members) for name, members in ds.splits.items()},
    }
