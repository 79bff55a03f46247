"""A study's configuration (YAML) and the planning of each participant's questions.

A study file (see ``configs/studies/*.yaml`` and ``docs/APP.md``)::

    id: demo                      # URL slug: lowercase letters, digits, - and _
    title: Which photo do you prefer?
    consent: |                    # shown on the start page; joining requires ticking it
      ...
    questions:
      main: 80                    # main questions
      consistency: 10             # earlier main pairs again, sides swapped, mixed in unannounced
      style_after: 16             # decided main answers before "your style" opens
      allow_undecided: true       # offer "can't decide"
    sampling: balanced            # balanced | random | active
    model: default                # the shipped default model, or any registered name / trained run folder
    images: {size: 512, format: jpeg}
    heldout: 4                    # scenes kept out of the questions, shown on "your style"
    lut_size: 33
    source:                       # where scenes and renditions come from (one of)
      kind: simulator             # scenes: 24, renditions: 5, seed: 0, photos: packages|bundled
      # kind: pairs, path: DATA, scenes: 40 (optional subset), seed: 0
      # kind: folder, path: DIR, styles: [warm-film, camera:vivid, ...], include_original: false
    uploads: {max_files: 3, max_mb: 10, max_megapixels: 25}

Relative paths are relative to the YAML file. Unknown keys and bad values raise
:class:`~prefstyle.errors.PrefstyleError` naming the file and the key.

Sampling strategies (:func:`plan_questions`), per participant and seeded by the participant:

``balanced``
    Scenes in shuffled rounds (each scene appears equally often, to within one, and never twice
    in a row); within a scene, the pairs of its renditions in a shuffled cycle (no pair twice
    before all were shown). Sides random.
``random``
    Every main question an independent uniform draw: scene, then a pair of its renditions,
    then sides.
``active``
    Scenes as ``balanced``; the pair of renditions is chosen when the question is first served:
    the one whose answer the study's model expects to be most informative about this participant
    (:mod:`prefstyle.app.active`; the planned ``balanced`` pair where the model cannot rank).
    Fewer answers for the same quality of "your style"; the pairs then depend on earlier answers,
    which a study that wants uniformly sampled pairs for analysis should not use.

Consistency questions are placed at random positions after enough main questions that each
can repeat a different earlier one; which main pair a consistency question repeats is chosen
when it is served (an earlier decided answer, see :mod:`prefstyle.app.flow`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefstyle.errors import PrefstyleError

STUDY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SAMPLING = ("balanced", "random", "active")
SOURCE_KINDS = ("simulator", "pairs", "folder")
IMAGE_FORMATS = {"jpeg": ".jpg", "png": ".png"}
UPLOAD_TYPES = ("JPEG", "PNG", "WEBP")

DEFAULT_CONSENT = (
    "This study shows you pairs of versions of the same photo. For each pair, pick the one you "
    "like better (click it, or press the left or right arrow key). There are no right or wrong "
    "answers. We store your answers, how long each took, the names you give for yourself and "
    "your device, and your screen test. You can stop at any time and come back later with your "
    "resume link. Your answers may be published as an anonymous research dataset under the names "
    "you choose here."
)


@dataclass(frozen=True)
class SourceConfig:
    """Where a study's scenes and renditions come from."""

    kind: str = "simulator"
    path: str | None = None  # absolute once loaded (pairs dataset folder or image folder)
    styles: tuple[str, ...] = ()
    scenes: int | None = None
    renditions: int = 5
    seed: int = 0
    photos: str = "packages"
    include_original: bool = False


@dataclass(frozen=True)
class UploadLimits:
    """What a participant may upload on the "your style" page."""

    max_files: int = 3
    max_bytes: int = 10_000_000
    max_pixels: int = 25_000_000
    types: tuple[str, ...] = UPLOAD_TYPES


@dataclass(frozen=True)
class StudyConfig:
    """One study (see the module docstring for the YAML layout)."""

    id: str
    title: str = "Which photo do you prefer?"
    consent: str = DEFAULT_CONSENT
    main: int = 80
    consistency: int = 10
    style_after: int = 16
    allow_undecided: bool = True
    sampling: str = "balanced"
    model: str = "default"
    image_size: int = 512
    image_format: str = "jpeg"
    heldout: int = 4
    lut_size: int = 33
    source: SourceConfig = field(default_factory=SourceConfig)
    uploads: UploadLimits = field(default_factory=UploadLimits)

    @property
    def total_questions(self) -> int:
        return self.main + self.consistency

    @property
    def image_ext(self) -> str:
        return IMAGE_FORMATS[self.image_format]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; :func:`config_from_dict` reads it back."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def catalog_hash(self) -> str:
        """Identifies the rendered scenes: changes when the source, image size/format or held-out count do.

        Computed once per config (it is frozen): active sampling asks for it with every ranking."""
        cached = self.__dict__.get("_catalog_hash")
        if cached is not None:
            return cached
        key = {
            "source": dataclasses.asdict(self.source),
            "image_size": self.image_size,
            "image_format": self.image_format,
            "heldout": self.heldout,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        object.__setattr__(self, "_catalog_hash", digest)
        return digest


MAX_TITLE = 200


def config_from_dict(d: Mapping[str, Any]) -> StudyConfig:
    """Inverse of :meth:`StudyConfig.to_dict`."""
    d = dict(d)
    src = dict(d.pop("source", {}))
    src["styles"] = tuple(src.get("styles", ()))
    up = dict(d.pop("uploads", {}))
    up["types"] = tuple(up.get("types", UPLOAD_TYPES))
    return StudyConfig(source=SourceConfig(**src), uploads=UploadLimits(**up), **d)


# --------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------


class _Fields:
    """Typed access to one YAML mapping; every error names the file and the dotted key."""

    def __init__(self, data: Any, where: str, path: Path | None):
        if not isinstance(data, Mapping):
            raise PrefstyleError(f"{where or 'the study'} must be a mapping of keys to values", path=path)
        self.data, self.where, self.path = dict(data), where, path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, why: str) -> PrefstyleError:
        return PrefstyleError(f"{self.key(name)} {why}", path=self.path)

    def get(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def optional_integer(self, name: str, default: int | None, lo: int = 0, hi: int = 10**9) -> int | None:
        """The integer at ``name`` (``default`` when absent); None when it is null."""
        v = self.get(name, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(name, f"must be an integer from {lo} to {hi}, got {v!r}")
        return v

    def integer(self, name: str, default: int, lo: int = 0, hi: int = 10**9) -> int:
        """The integer at ``name`` (``default`` when absent); null is an error."""
        v = self.optional_integer(name, default, lo, hi)
        if v is None:
            raise self.fail(name, f"must be an integer from {lo} to {hi}, got None")
        return v

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        v = self.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise self.fail(name, f"must be a number from {lo} to {hi}, got {v!r}")
        return float(v)

    def optional_text(self, name: str, choices: Sequence[str] | None = None) -> str | None:
        """The non-empty string at ``name``; None when absent or null."""
        v = self.get(name)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            raise self.fail(name, f"must be a non-empty string, got {v!r}")
        if choices is not None and v not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, got {v!r}")
        return v

    def text(self, name: str, default: str, choices: Sequence[str] | None = None) -> str:
        """The non-empty string at ``name`` (``default`` when absent); null is an error."""
        if name not in self.data:
            self.used.add(name)
            return default
        v = self.optional_text(name, choices)
        if v is None:
            raise self.fail(name, "must be a non-empty string, got None")
        return v

    def flag(self, name: str, default: bool) -> bool:
        v = self.get(name, default)
        if not isinstance(v, bool):
            raise self.fail(name, f"must be true or false, got {v!r}")
        return v

    def sub(self, name: str) -> _Fields:
        return _Fields(self.get(name, {}) or {}, self.key(name), self.path)

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise PrefstyleError(
                f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(self.key(k) for k in unknown)} "
                f"(known: {', '.join(sorted(self.used))})",
                path=self.path,
            )


def parse_study(data: Any, base_dir: Path | None = None, path: Path | None = None) -> StudyConfig:
    """A :class:`StudyConfig` from parsed YAML; relative paths resolve against ``base_dir``."""
    f = _Fields(data, "", path)
    sid = f.optional_text("id")
    if sid is None or not STUDY_ID.match(sid):
        raise f.fail(
            "id", f"must be 1-64 lowercase letters, digits, '-' or '_' (starting with a letter or digit), got {sid!r}"
        )
    q = f.sub("questions")
    main = q.integer("main", 80, 1, 10_000)
    consistency = q.integer("consistency", 10, 0, 10_000)
    if consistency > main:
        raise q.fail("consistency", f"({consistency}) cannot exceed questions.main ({main}): each repeats a main pair")
    style_after = q.integer("style_after", 16, 1, 10_000)
    allow_undecided = q.flag("allow_undecided", True)
    q.check_unknown()

    img = f.sub("images")
    image_size = img.integer("size", 512, 64, 4096)
    image_format = img.text("format", "jpeg", tuple(IMAGE_FORMATS))
    img.check_unknown()

    s = f.sub("source")
    kind = s.text("kind", "simulator", SOURCE_KINDS)
    src_path = s.optional_text("path")
    if kind in ("pairs", "folder"):
        if src_path is None:
            raise s.fail("path", f"is required for a {kind} source")
        p = Path(src_path).expanduser()
        if not p.is_absolute():
            p = (base_dir or Path.cwd()) / p
        if not p.is_dir():
            raise s.fail("path", f"is not a folder: {p}")
        src_path = str(p.resolve())
    elif src_path is not None:
        raise s.fail("path", "is only used by pairs and folder sources")
    styles = s.get("styles", [])
    if kind == "folder":
        if not isinstance(styles, list) or not all(isinstance(x, str) and x.strip() for x in styles):
            raise s.fail("styles", "must be a list of style names (see `prefstyle styles list`)")
    elif styles:
        raise s.fail("styles", "is only used by folder sources")
    include_original = s.flag("include_original", False)
    if kind == "folder":
        from prefstyle.styles.registry import get_style

        for name in styles:
            get_style(name)  # unknown names: a clear error now, not at rendering
        if len(styles) + int(include_original) < 2:
            raise s.fail(
                "styles",
                "must give at least 2 renditions per scene (styles, plus the original when include_original is true)",
            )
    source = SourceConfig(
        kind=kind,
        path=src_path,
        styles=tuple(styles),
        scenes=s.optional_integer("scenes", 24 if kind == "simulator" else None, 1, 100_000),
        renditions=s.integer("renditions", 5, 2, 64),
        seed=s.integer("seed", 0, 0, 2**31 - 1),
        photos=s.text("photos", "packages", ("packages", "bundled")),
        include_original=include_original,
    )
    s.check_unknown()

    u = f.sub("uploads")
    uploads = UploadLimits(
        max_files=u.integer("max_files", 3, 0, 100),
        max_bytes=int(u.number("max_mb", 10, 0.01, 200) * 1_000_000),
        max_pixels=int(u.number("max_megapixels", 25, 0.01, 200) * 1_000_000),
    )
    u.check_unknown()
    title = f.text("title", StudyConfig.title)
    if len(title) > MAX_TITLE:  # the database column's size (PostgreSQL refuses more)
        raise f.fail("title", f"must be at most {MAX_TITLE} characters, got {len(title)}")

    cfg = StudyConfig(
        id=sid,
        title=title,
        consent=f.text("consent", DEFAULT_CONSENT).strip(),
        main=main,
        consistency=consistency,
        style_after=style_after,
        allow_undecided=allow_undecided,
        sampling=f.text("sampling", "balanced", SAMPLING),
        model=f.text("model", "default"),
        image_size=image_size,
        image_format=image_format,
        heldout=f.integer("heldout", 4, 0, 100),
        lut_size=f.integer("lut_size", 33, 2, 65),
        source=source,
        uploads=uploads,
    )
    f.check_unknown()
    return cfg


def _unique_key_loader() -> type:
    """PyYAML's SafeLoader, refusing a key given twice in one mapping (it would keep the last silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            "while reading a mapping",
                            node.start_mark,
                            f"the key {key_node.value!r} is given twice",
                            key_node.start_mark,
                        )
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def load_study(path: str | Path) -> StudyConfig:
    """Read a study YAML file (errors name the file)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise PrefstyleError("study file not found", path=path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_unique_key_loader())  # a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise PrefstyleError(
            f"malformed YAML: {getattr(e, 'problem', e)}", path=path, line=None if mark is None else mark.line + 1
        ) from None
    except UnicodeDecodeError:
        raise PrefstyleError("not UTF-8 text", path=path) from None
    return parse_study(data, base_dir=path.parent.resolve(), path=path)


def default_study() -> StudyConfig:
    """The study ``prefstyle serve`` runs when given none: simulated renditions of the packaged photos,
    for one photographer learning their own taste, so each next pair is the most informative one
    (``sampling: active``; a study for many people names its own YAML)."""
    return parse_study(
        {"id": "demo", "sampling": "active", "source": {"kind": "simulator", "scenes": 24, "renditions": 5}}
    )


# --------------------------------------------------------------------------------------------
# Question planning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedQuestion:
    """One planned question. Consistency questions have no pair yet (chosen when served)."""

    kind: str
    scene: str | None = None
    a: str | None = None
    b: str | None = None

    def pair(self) -> tuple[str, str, str]:
        """``(scene, a, b)`` of a main question (a consistency question has none until served)."""
        if self.scene is None or self.a is None or self.b is None:
            raise ValueError(f"this {self.kind} question has no planned pair")
        return self.scene, self.a, self.b


def consistency_positions(main: int, consistency: int, rng: random.Random) -> list[int]:
    """Positions (0-based, sorted) of the consistency questions among ``main + consistency``.

    Valid placements put at least ``k + 2`` main questions before the k-th consistency question
    (so each can repeat a different main pair that is not the one just answered); among those,
    one is drawn at random. When the questions are too few for that, they go at the end.
    """
    total = main + consistency
    if consistency == 0:
        return []
    first = min(main, max(4, main // 8))
    candidates = list(range(first, total))
    if len(candidates) >= consistency:
        for _ in range(200):
            pos = sorted(rng.sample(candidates, consistency))
            if all(p - k >= k + 2 for k, p in enumerate(pos)):
                return pos
    return list(range(main, total))


def _pairs(renditions: Sequence[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(renditions, 2))


def plan_questions(
    scenes: Mapping[str, Sequence[str]], main: int, consistency: int, strategy: str, seed: int
) -> list[PlannedQuestion]:
    """A participant's questions in order (see the module docstring for the strategies).

    ``scenes`` maps each question scene to its rendition keys (scenes with fewer than two are
    skipped). Same arguments -> same plan.
    """
    usable = {s: list(r) for s, r in scenes.items() if len(r) >= 2}
    if not usable:
        raise PrefstyleError("the study has no scene with at least two renditions to compare")
    if strategy not in SAMPLING:
        raise PrefstyleError(f"unknown sampling strategy {strategy!r} (known: {', '.join(SAMPLING)})")
    rng = random.Random(seed)
    names = sorted(usable)
    mains: list[PlannedQuestion] = []
    if strategy == "random":
        for _ in range(main):
            s = names[rng.randrange(len(names))]
            a, b = rng.sample(usable[s], 2)
            mains.append(PlannedQuestion("main", s, a, b))
    else:
        cycles: dict[str, list[tuple[str, str]]] = {s: [] for s in names}
        order: list[str] = []
        while len(order) < main:
            round_ = names[:]
            rng.shuffle(round_)
            if order and len(round_) > 1 and round_[0] == order[-1]:
                round_[0], round_[-1] = round_[-1], round_[0]
            order.extend(round_)
        for s in order[:main]:
            if not cycles[s]:
                cycles[s] = _pairs(usable[s])
                rng.shuffle(cycles[s])
            a, b = cycles[s].pop()
            if rng.random() < 0.5:
                a, b = b, a
            mains.append(PlannedQuestion("main", s, a, b))
    cons = set(consistency_positions(main, consistency, rng))
    out: list[PlannedQuestion] = []
    it = iter(mains)
    for pos in range(main + consistency):
        out.append(PlannedQuestion("consistency") if pos in cons else next(it))
    return out
