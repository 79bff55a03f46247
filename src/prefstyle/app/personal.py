"""A participant's "your style" results: profile, held-out photos retouched, ``.cube`` LUT, uploads.

Everything is computed from the participant's decided main answers with the study's model
(``model:`` in the YAML) and kept under ``DATA/studies/<study>/participants/<id>/``, versioned by
the number of answers used (``v<N>/``), so it is recomputed only when new answers exist. Files
there are served only through the participant's own routes (the token decides whose folder).
"""

from __future__ import annotations

import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from prefstyle.app.db import Database
from prefstyle.app.flow import FlowError
from prefstyle.app.models import Question
from prefstyle.app.state import LoadedStudy

FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,100}$")
#: at most this many renders at once (CPU- and memory-heavy; the answer routes stay responsive)
HEAVY_WORK = threading.Semaphore(2)
LUT_IMAGES = 24
_locks: dict[tuple[str, int], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(study_id: str, pid: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((study_id, pid), threading.Lock())


def participant_dir(study: LoadedStudy, pid: int) -> Path:
    return study.folder / "participants" / str(int(pid))


def participant_file(study: LoadedStudy, pid: int, name: str) -> Path | None:
    """The participant's file ``name`` (``v3/heldout-12.jpg``...), or None if the name is not allowed or absent."""
    parts = name.split("/")
    if not 1 <= len(parts) <= 2 or not all(FILE_NAME.match(p) for p in parts):
        return None
    base = participant_dir(study, pid).resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


@dataclass(frozen=True)
class StyleResult:
    version: int  # decided main answers used
    heldout: list[tuple[int, str]]  # (scene id, file name of the retouched image, relative to the participant dir)
    folder: Path


def _decided_mains(db: Database, pid: int) -> list[tuple[int, int, int, str]]:
    with db.read() as s:
        rows = s.execute(
            select(Question.scene_id, Question.rendition_a_id, Question.rendition_b_id, Question.answer)
            .where(Question.participant_id == pid, Question.kind == "main", Question.answer.in_(("a", "b")))
            .order_by(Question.position)
        ).all()
    return [tuple(r) for r in rows]


def _load(path: Path):
    from prefstyle.imaging.io import read_image

    return read_image(path).pixels


def build_references(study: LoadedStudy, answers: list[tuple[int, int, int, str]]) -> list[Any]:
    """:class:`~prefstyle.models.base.Reference` objects from (scene, a, b, answer) rows (images as served)."""
    import torch.nn.functional as F

    from prefstyle.models.base import Reference

    refs = []
    for scene_id, a, b, ans in answers:
        pref, other = (a, b) if ans == "a" else (b, a)
        p_img = _load(study.rendition_path(pref))
        o_img = _load(study.rendition_path(other))
        src_path = study.source_path(scene_id)
        src = None if src_path is None else _load(src_path)
        if o_img.shape != p_img.shape:
            o_img = F.interpolate(o_img[None], size=p_img.shape[-2:], mode="bilinear", antialias=True)[0]
        if src is not None and src.shape != p_img.shape:
            src = F.interpolate(src[None], size=p_img.shape[-2:], mode="bilinear", antialias=True)[0]
        refs.append(Reference(scene=study.scenes[scene_id].key, preferred=p_img, other=o_img, source=src,
                              meta={"preferred_rendition": pref, "other_rendition": other}))
    return refs


def _render_to(model: Any, profile: Any, img, path: Path) -> None:
    import torch

    from prefstyle.imaging.io import write_image

    with torch.no_grad():
        out = model.render(img[None], profile)[0].clamp(0, 1)
    write_image(path, out, quality=92)


def ensure_style(db: Database, study: LoadedStudy, user: str, pid: int) -> StyleResult:
    """The participant's profile and retouched held-out photos for their current answers (cached)."""
    answers = _decided_mains(db, pid)
    if not answers:
        raise FlowError(409, "answer a few pairs first: your style is learned from your choices")
    version = len(answers)
    base = participant_dir(study, pid)
    folder = base / f"v{version}"
    names = [(s.id, f"v{version}/heldout-{s.id}.jpg") for s in study.heldout]
    with _lock(study.id, pid):
        if (folder / "done").is_file():
            return StyleResult(version, names, folder)
        with HEAVY_WORK:
            model = study.model()
            profile = model.personalize(build_references(study, answers), user=user)
            profile.data = {**profile.data, "study": study.id, "answers_used": version}
            folder.mkdir(parents=True, exist_ok=True)
            profile.save(folder / "profile.json")
            for scene_id, name in names:
                _render_to(model, profile, _load(study.source_path(scene_id)), base / name)
        (folder / "done").write_text("ok\n")
        for old in base.glob("v*"):  # keep only the newest version
            if old.is_dir() and old.name != folder.name and re.fullmatch(r"v\d+", old.name):
                shutil.rmtree(old, ignore_errors=True)
    return StyleResult(version, names, folder)


def load_profile(result: StyleResult) -> Any:
    from prefstyle.models.base import Profile

    return Profile.load(result.folder / "profile.json")


def profile_zip(result: StyleResult) -> Path:
    """``profile.zip`` (profile.json + profile.safetensors when it has tensors) in the version folder."""
    import zipfile

    from prefstyle.fsutil import atomic_path

    path = result.folder / "profile.zip"
    if not path.is_file():
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for name in ("profile.json", "profile.safetensors"):
                if (result.folder / name).is_file():
                    z.write(result.folder / name, name)
    return path


def lut_file(study: LoadedStudy, result: StyleResult) -> Path:
    """The participant's taste as a ``.cube`` 3D LUT (``lut_size`` from the study), cached per version."""
    path = result.folder / "style.cube"
    if path.is_file():
        return path
    try:
        from prefstyle.eval.lut_export import profile_to_lut
    except ImportError:
        raise FlowError(501, "exporting a style as a LUT is not available in this installation") from None
    from prefstyle.imaging.lut_io import write_cube

    with HEAVY_WORK:
        # the study's own photos (held-out first): the LUT averages the model's transform over them
        scenes = study.heldout + [s for s in study.scenes.values() if s.role == "question"]
        images = [_load(study.source_path(s.id))[None] for s in scenes if s.source_file][:LUT_IMAGES] or None
        lut = profile_to_lut(study.model(), load_profile(result), size=study.cfg.lut_size, images=images)
        write_cube(path, lut, title=f"prefstyle {study.id} v{result.version}")
    return path


def render_upload(study: LoadedStudy, result: StyleResult, pid: int, key: str) -> str:
    """Retouch the participant's upload ``key`` with the current profile; returns its file name."""
    base = participant_dir(study, pid)
    name = f"v{result.version}/upload-{key}.jpg"
    with _lock(study.id, pid):
        if not (base / name).is_file():
            with HEAVY_WORK:
                _render_to(study.model(), load_profile(result), _load(base / "uploads" / f"{key}.jpg"), base / name)
    return name
