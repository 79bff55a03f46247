"""A study's scenes and renditions: rendered once from the study's source, cached on disk.

:func:`sync_study` makes the database and the image folder match a :class:`StudyConfig`:

* a new study (or one whose scenes changed and that has no participants yet): every scene is
  built from the source (:func:`build_catalog`), its images written as ``images.size``-pixel
  JPEG/PNG files under ``DATA/studies/<id>/images/<scene>/<rendition>.jpg`` (the scene's
  neutral rendition as ``_source.jpg``), and the rows written;
* an existing study with the same scenes: only the settings are updated (they apply to
  participants who join from now on); missing image files are rendered again;
* an existing study with participants whose scenes changed: refused (give the study a new id);
* participants' files (``participants/<id>/``) are never deleted: files the database does not
  know stop the start, unless ``adopt_data`` moves them aside (:func:`sync_study`); only
  ``images/`` is ever replaced. A half-built folder of a killed start is removed at the next one
  (:func:`clean_stale_parts`).

Sources (``source.kind``):

``simulator``
    :func:`prefstyle.data.simulate.build_scenes`: crops of the packaged (or all installed)
    photos, rendered by the simulator's source types A/B/D/E. The neutral crop is the source.
``pairs``
    A pairs dataset: each scene's renditions are the images its judgments compare; its source
    is the ``source`` of ``scenes.jsonl`` when listed.
``folder``
    A folder of photos: each photo is a scene, rendered with each of ``styles``
    (:func:`prefstyle.styles.registry.get_style`), plus the photo itself when
    ``include_original``. The photo is the source.

The last ``heldout`` scenes (in a seeded order; with a pairs source, preferably scenes with a
source) are held out: never asked about, shown on the "your style" page, retouched.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from prefstyle.app.models import Participant, Rendition, SceneRow, Study, utcnow
from prefstyle.app.study import StudyConfig, config_from_dict
from prefstyle.errors import PrefstyleError

if TYPE_CHECKING:
    import torch
    from sqlalchemy.orm import Session

    from prefstyle.app.db import Database

SOURCE_NAME = "_source"
_KEY_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def safe_key(text: str, taken: set[str]) -> str:
    """A file-name-safe key for ``text`` (letters, digits, ``._-``; unique among ``taken``)."""
    key = _KEY_BAD.sub("-", text).strip("-._")[:80] or "x"
    out, k = key, 2
    while out in taken:
        out, k = f"{key}-{k}", k + 1
    taken.add(out)
    return out


@dataclass
class CatalogScene:
    """A scene before it is written: images are ``(3,H,W)`` sRGB in [0,1]."""

    key: str
    role: str  # "question" or "heldout"
    origin: str | None
    content: str | None
    source: torch.Tensor | None
    renditions: list[tuple[str, torch.Tensor, dict[str, Any]]] = field(default_factory=list)


def fit_size(img: torch.Tensor, size: int) -> torch.Tensor:
    """``(3,H,W)`` or ``(1,3,H,W)`` -> ``(3,h,w)`` in [0,1] with the long side at most ``size``
    (antialiased bilinear, :func:`prefstyle.imaging.resize.resize_long_side`)."""
    from prefstyle.imaging.resize import resize_long_side

    return resize_long_side(img if img.ndim == 3 else img[0], size).clamp(0, 1)


# --------------------------------------------------------------------------------------------
# building scenes from a source
# --------------------------------------------------------------------------------------------


def build_catalog(cfg: StudyConfig) -> list[CatalogScene]:
    """Every scene of the study, rendered at ``cfg.image_size`` (see the module docstring)."""
    kind = cfg.source.kind
    if kind == "simulator":
        scenes = _from_simulator(cfg)
    elif kind == "pairs":
        scenes = _from_pairs(cfg)
    else:
        scenes = _from_folder(cfg)
    if sum(1 for s in scenes if s.role == "question") < 1:
        raise PrefstyleError(
            f"study {cfg.id!r}: no scene with two or more renditions is left for questions "
            f"({len(scenes)} scenes, {cfg.heldout} held out)"
        )
    return scenes


def _mark_heldout(scenes: list[CatalogScene], n: int, seed: int, prefer_source: bool = False) -> None:
    order = list(range(len(scenes)))
    random.Random(seed).shuffle(order)
    if prefer_source:
        order.sort(key=lambda i: scenes[i].source is None)  # stable: shuffled scenes with a source first
    n = min(n, max(0, len(scenes) - 1))
    for i in order[:n]:
        scenes[i].role = "heldout"


def _from_simulator(cfg: StudyConfig) -> list[CatalogScene]:
    import numpy as np

    from prefstyle.data.simulate import SimulationConfig, build_scenes

    src = cfg.source
    n = (src.scenes or 24) + cfg.heldout
    sim = SimulationConfig(
        users=1, seed=src.seed, scenes=n, renditions=src.renditions, size=cfg.image_size, photos=src.photos, workers=1
    )
    built = build_scenes(sim, np.random.default_rng(src.seed), progress=False)
    out = []
    for sc in built:
        rends = [
            (f"{sc.origin}{k}", sc.renditions[k].clamp(0, 1), {"style": sc.rendition_params[k]})
            for k in range(sc.renditions.shape[0])
        ]
        out.append(CatalogScene(sc.id, "question", sc.origin, sc.content, sc.source[0].clamp(0, 1), rends))
    for s in out[len(out) - cfg.heldout :] if cfg.heldout else []:
        s.role = "heldout"
    return out


def _source_path(cfg: StudyConfig) -> str:
    """The folder of a pairs or folder source (:func:`~prefstyle.app.study.parse_study` requires it)."""
    if cfg.source.path is None:
        raise PrefstyleError(f"study {cfg.id!r}: a {cfg.source.kind} source needs source.path")
    return cfg.source.path


def _from_pairs(cfg: StudyConfig) -> list[CatalogScene]:
    from prefstyle.data.pairs import PairsDataset, normalize_relpath
    from prefstyle.imaging.io import read_image

    ds = PairsDataset.load(_source_path(cfg))
    images: dict[str, list[str]] = {}
    for j in ds.judgments:
        lst = images.setdefault(j.scene, [])
        for p in (normalize_relpath(j.image_a), normalize_relpath(j.image_b)):
            if p not in lst:
                lst.append(p)
    names = list(images)
    if cfg.source.scenes is not None and cfg.source.scenes + cfg.heldout < len(names):
        rng = random.Random(cfg.source.seed)
        names = sorted(rng.sample(names, cfg.source.scenes + cfg.heldout), key=names.index)
    taken: set[str] = set()
    out = []
    for name in names:
        meta = ds.scenes.get(name)
        source = None
        if meta is not None and meta.source:
            source = fit_size(read_image(ds.image_path(meta.source)).pixels, cfg.image_size)
        rtaken: set[str] = {SOURCE_NAME}
        rends = [
            (
                safe_key(Path(p).stem, rtaken),
                fit_size(read_image(ds.image_path(p)).pixels, cfg.image_size),
                {"dataset_path": p},
            )
            for p in images[name]
        ]
        content = (
            None
            if meta is None or meta.content is None
            else (meta.content if isinstance(meta.content, str) else ", ".join(meta.content))
        )
        out.append(
            CatalogScene(
                safe_key(name, taken), "question", None if meta is None else meta.origin, content, source, rends
            )
        )
    _mark_heldout(out, cfg.heldout, cfg.source.seed, prefer_source=True)
    for s in out:  # a held-out scene without a source shows its first rendition as "the original"
        if s.role == "heldout" and s.source is None:
            s.source = s.renditions[0][1]
    for s in out:
        if s.role == "question" and len(s.renditions) < 2:
            s.role = "unused"
    return [s for s in out if s.role != "unused"]


def _from_folder(cfg: StudyConfig) -> list[CatalogScene]:
    from prefstyle.imaging.io import list_images, read_image
    from prefstyle.styles.registry import get_style

    root = _source_path(cfg)
    files = list_images([root])
    if cfg.source.scenes is not None and cfg.source.scenes + cfg.heldout < len(files):
        files = sorted(random.Random(cfg.source.seed).sample(files, cfg.source.scenes + cfg.heldout))
    if not files:
        raise PrefstyleError("no images in this folder", path=root)
    styles = [(name, get_style(name)) for name in cfg.source.styles]
    taken: set[str] = set()
    out = []
    for f in files:
        photo = fit_size(read_image(f).pixels, cfg.image_size)
        rtaken: set[str] = {SOURCE_NAME}
        rends = []
        if cfg.source.include_original:
            rends.append((safe_key("original", rtaken), photo, {"style": "original"}))
        for name, style in styles:
            rends.append((safe_key(name, rtaken), style.apply(photo[None])[0].clamp(0, 1), {"style": name}))
        rel = f.relative_to(root).as_posix() if f.is_relative_to(root) else f.name
        out.append(
            CatalogScene(safe_key(Path(rel).with_suffix("").as_posix(), taken), "question", "folder", rel, photo, rends)
        )
    _mark_heldout(out, cfg.heldout, cfg.source.seed)
    return out


# --------------------------------------------------------------------------------------------
# writing and syncing
# --------------------------------------------------------------------------------------------


def study_dir(data_dir: str | Path, study_id: str) -> Path:
    return Path(data_dir) / "studies" / study_id


def _write_images(scenes: list[CatalogScene], folder: Path, ext: str) -> dict[tuple[str, str], str]:
    """Write every image below ``folder``; returns (scene key, rendition key) -> path relative to its parent."""
    from prefstyle.imaging.io import write_image

    files: dict[tuple[str, str], str] = {}
    for s in scenes:
        items = [(SOURCE_NAME, s.source)] if s.source is not None else []
        items += [(k, img) for k, img, _ in s.renditions]
        for key, img in items:
            rel = f"images/{s.key}/{key}{ext}"
            write_image(folder / rel, img, quality=92)
            files[(s.key, key)] = rel
    return files


ADOPTED_PREFIX = "adopted-"
_PART = re.compile(r"^\.(?P<sid>[a-z0-9][a-z0-9_-]*)\.(?:(?P<pid>\d+)\.)?[0-9a-f]{8}\.part$")


def _pid_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_parts(data_dir: str | Path) -> list[Path]:
    """Remove half-built study folders (``studies/.<id>.<pid>.<hex>.part``) whose builder is gone
    (killed during a first start); returns those removed. Folders of a live builder are kept."""
    root = Path(data_dir) / "studies"
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for d in root.iterdir():
        m = _PART.match(d.name)
        if m is None or not d.is_dir():
            continue
        pid = m.group("pid")
        if pid is not None and _pid_alive(int(pid)):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


OWNER_FILE = ".owner"


def owner_mark(token_hash: str) -> str:
    """What a participant's folder records about its owner: derived from the participant's row
    (not the token, not the stored hash itself), so a folder can be matched to its database."""
    import hashlib

    return hashlib.sha256(f"prefstyle-owner:{token_hash}".encode()).hexdigest()[:24]


def mark_owner(folder: Path, token_hash: str) -> None:
    """Record in a participant's folder whose it is (once; see :func:`sync_study`)."""
    f = folder / OWNER_FILE
    if not f.is_file():
        from prefstyle.fsutil import atomic_write_text

        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(f, owner_mark(token_hash) + "\n")


def _folder_owner(d: Path) -> str | None:
    try:
        return (d / OWNER_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def participant_folders(folder: Path) -> list[Path]:
    """Participants' folders (``participants/<id>/``) under a study folder that hold any file."""
    root = folder / "participants"
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and any(f.is_file() for f in d.rglob("*")))


def _safe_url(db: Database) -> str:
    from sqlalchemy.engine import make_url

    return make_url(db.url).render_as_string(hide_password=True)


def _check_orphans(db: Database, cfg: StudyConfig, folder: Path, adopt_data: bool) -> None:
    """Participants' files the database does not know (no such participant, or a folder whose
    ``.owner`` names another one): refuse to go on, or (``adopt_data``) move the whole
    ``participants/`` folder aside, kept and never served, so the study starts afresh without
    deleting anything."""
    with db.read() as s:
        known = {
            str(i): h
            for i, h in s.execute(select(Participant.id, Participant.token_hash).where(Participant.study_id == cfg.id))
        }
    # a folder is this database's when its id is a participant here and, when it records its owner,
    # that owner is this participant (ids restart in another database: the same number, someone else)
    orphans = [
        d
        for d in participant_folders(folder)
        if d.name not in known or _folder_owner(d) not in (None, owner_mark(known[d.name]))
    ]
    if not orphans:
        return
    if not adopt_data:
        raise PrefstyleError(
            f"holds the results or uploads of {len(orphans)} participant(s) of study {cfg.id!r} that the database "
            f"{_safe_url(db)} does not know: start with the database that holds them (--db), or pass --adopt-data "
            f"to keep these files (moved to {folder / (ADOPTED_PREFIX + '<time>')}/, never served) and start the "
            "study afresh in this database",
            path=folder,
        )
    import logging
    from datetime import UTC, datetime

    dest = folder / f"{ADOPTED_PREFIX}{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    dest.mkdir(parents=True)
    (folder / "participants").rename(dest / "participants")
    logging.getLogger("prefstyle.app").warning(
        "study %s: --adopt-data: the files of %d participant(s) unknown to %s were moved to %s (kept, not served)",
        cfg.id,
        len(orphans),
        _safe_url(db),
        dest,
    )


def _study_row(s: Session, study_id: str) -> Study:
    """The study's row, read again in a write session (it was there when the start began)."""
    st = s.get(Study, study_id)
    if st is None:
        raise PrefstyleError(f"study {study_id!r} was deleted from the database while the app was starting")
    return st


def sync_study(db: Database, cfg: StudyConfig, data_dir: str | Path, adopt_data: bool = False) -> None:
    """Make the database rows and image files of study ``cfg.id`` match ``cfg`` (module docstring).

    Participants' files are never deleted: when the study folder holds results or uploads of
    participants the database does not know (a new or mistyped ``--db`` with the same ``--data``),
    this raises :class:`PrefstyleError`, or with ``adopt_data`` moves them to
    ``DATA/studies/<id>/adopted-<time>/`` (kept, never served; the database's participant ids
    start again, so the old folders must not stay where new participants' folders go).
    Only ``images/`` (rendered from the source) is ever replaced.
    """
    folder = study_dir(data_dir, cfg.id)
    digest = cfg.catalog_hash()
    with db.read() as s:
        study = s.get(Study, cfg.id)
        n_participants = s.scalar(select(func.count()).select_from(Participant).where(Participant.study_id == cfg.id))
        rows = s.execute(
            select(SceneRow.key, SceneRow.source_file, Rendition.key, Rendition.file)
            .join(Rendition, Rendition.scene_id == SceneRow.id)
            .where(SceneRow.study_id == cfg.id)
        ).all()
    _check_orphans(db, cfg, folder, adopt_data)
    if study is not None and study.catalog_hash == digest:
        wanted = {f for r in rows for f in (r[1], r[3]) if f}
        if any(not (folder / f).is_file() for f in wanted):
            _rerender_missing(cfg, folder, rows)
        with db.write() as s:
            st = _study_row(s, cfg.id)
            st.title, st.config_json, st.updated_at = cfg.title, json.dumps(cfg.to_dict()), utcnow()
        return
    if study is not None and n_participants:
        raise PrefstyleError(
            f"study {cfg.id!r} already has {n_participants} participants and its scenes would change "
            "(source, images or heldout differ from when it started): give the changed study a new id"
        )
    import os

    scenes = build_catalog(cfg)
    plan = [(sc.key, sc.role, sc.origin, sc.content, [(k, meta) for k, _img, meta in sc.renditions]) for sc in scenes]
    tmp = folder.parent / f".{cfg.id}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"
    try:
        files = _write_images(scenes, tmp, cfg.image_ext)
        del scenes  # the rendered tensors: written, no longer needed
        folder.mkdir(parents=True, exist_ok=True)
        old = folder / "images"
        if old.exists():  # rendered images only: participants' files stay where they are
            aside = tmp / "images-old"
            old.rename(aside)
        (tmp / "images").rename(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    with db.write() as s:
        if study is not None:
            old_ids = select(SceneRow.id).where(SceneRow.study_id == cfg.id).scalar_subquery()
            s.execute(delete(Rendition).where(Rendition.scene_id.in_(old_ids)))
            s.execute(delete(SceneRow).where(SceneRow.study_id == cfg.id))
            st = _study_row(s, cfg.id)
            st.title, st.config_json, st.catalog_hash, st.updated_at = (
                cfg.title,
                json.dumps(cfg.to_dict()),
                digest,
                utcnow(),
            )
        else:
            s.add(Study(id=cfg.id, title=cfg.title, config_json=json.dumps(cfg.to_dict()), catalog_hash=digest))
        s.flush()
        for key, role, origin, content, rends in plan:
            row = SceneRow(
                study_id=cfg.id,
                key=key,
                role=role,
                origin=origin,
                content=content,
                source_file=files.get((key, SOURCE_NAME)),
            )
            s.add(row)
            s.flush()
            for rkey, meta in rends:
                s.add(Rendition(scene_id=row.id, key=rkey, file=files[(key, rkey)], meta_json=json.dumps(meta)))


def _rerender_missing(cfg: StudyConfig, folder: Path, rows: Sequence[tuple[str, str | None, str, str]]) -> None:
    """``rows``: (scene key, source file, rendition key, rendition file) of the stored catalog."""
    scenes = build_catalog(cfg)
    have = {(r[0], r[2]) for r in rows}
    built = {(s.key, k) for s in scenes for k, _, _ in s.renditions}
    if have != built:
        raise PrefstyleError(
            f"study {cfg.id!r}: image files are missing and rendering the source again gives "
            f"other scenes; restore {folder} or start a new study id"
        )
    _write_images(scenes, folder, cfg.image_ext)


def stored_configs(db: Database) -> list[StudyConfig]:
    """The configuration of every study in the database, in id order."""
    with db.read() as s:
        return [config_from_dict(json.loads(c)) for c in s.scalars(select(Study.config_json).order_by(Study.id))]
