"""A participant's "your style" results: profile, held-out photos retouched, ``.cube`` LUT, uploads.

Everything is computed from the participant's decided main answers with the study's model
(``model:`` in the YAML) and kept on disk under ``DATA/studies/<study>/participants/<id>/``,
versioned by the number of decided answers used (``v<N>/``): the folder is the cache, so any
server process (``serve --workers N``) serves what another one rendered, and a version is
recomputed only when new answers exist. Files there are served only through the participant's
own routes (the token decides whose folder).

Two sides:

* the server (:func:`style_status`, :func:`pending_uploads`, :func:`participant_file`, ...) only
  looks at the database and at files: it never renders and never holds images;
* the render jobs (:func:`build_style`, :func:`build_upload`, :func:`build_lut`,
  :func:`store_upload`) run in :mod:`prefstyle.app.render`'s bounded background workers. Each
  writes under a temporary name and renames, so a reader never sees half a file and two
  processes rendering the same version at once do no harm.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from prefstyle.app import nudge
from prefstyle.app.db import Database
from prefstyle.app.flow import FlowError
from prefstyle.app.models import Question, Upload, decided_answer
from prefstyle.app.state import LoadedStudy

if TYPE_CHECKING:
    import torch

    from prefstyle.app.study import UploadLimits
    from prefstyle.imaging.params import RetouchParams
    from prefstyle.models.base import PersonalizationModel, Profile, Reference

FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,100}$")
VERSION_DIR = re.compile(r"^v(\d+)$")
#: the temporary folder of a version being rendered (:func:`build_style`); one left by a killed
#: render is removed once a later render of that participant finishes
PART_DIR = re.compile(r"^\.v(\d+)\.[0-9a-f]{8}\.part$")
LUT_IMAGES = 24
#: long side of the reference images a style is learned from (the shipped model compares 6-pixel thumbnails)
REF_SIZE = 256


def participant_dir(study: LoadedStudy, pid: int) -> Path:
    return study.folder / "participants" / str(int(pid))


def participant_file(study: LoadedStudy, pid: int, name: str) -> Path | None:
    """The participant's file ``name`` (``v3/heldout-12.jpg``, ``v3/nudge-<key>/heldout-12.jpg``...), or
    None if the name is not allowed or absent."""
    parts = name.split("/")
    if not 1 <= len(parts) <= 3 or not all(FILE_NAME.match(p) for p in parts):
        return None
    base = participant_dir(study, pid).resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


Answer = tuple[int, int, int, str]  # (scene id, rendition a, rendition b, "a" | "b")


def decided_mains(db: Database, pid: int) -> list[Answer]:
    """The participant's decided main answers, in question order (what their style is learned from)."""
    with db.read() as s:
        rows = s.execute(
            select(Question.scene_id, Question.rendition_a_id, Question.rendition_b_id, Question.answer)
            .where(Question.participant_id == pid, Question.kind == "main", Question.answer.in_(("a", "b")))
            .order_by(Question.position)
        ).all()
    return [decided_answer(*r) for r in rows]


@dataclass(frozen=True)
class StyleResult:
    version: int  # decided main answers used
    heldout: list[tuple[int, str]]  # (scene id, file name of the retouched image, relative to the participant dir)
    folder: Path
    description: str = ""

    @property
    def ready(self) -> bool:
        return (self.folder / "done").is_file()


def style_result(study: LoadedStudy, pid: int, version: int) -> StyleResult:
    """Where version ``version`` of the participant's style lives (rendered or not: see ``.ready``)."""
    folder = participant_dir(study, pid) / f"v{version}"
    desc = folder / "describe.txt"
    text = desc.read_text(encoding="utf-8").strip() if desc.is_file() else ""
    return StyleResult(version, [(s.id, f"v{version}/heldout-{s.id}.jpg") for s in study.heldout], folder, text)


def upload_source(study: LoadedStudy, pid: int, key: str) -> Path:
    return participant_dir(study, pid) / "uploads" / f"{key}.jpg"


def upload_name(result: StyleResult, key: str) -> str:
    return f"v{result.version}/upload-{key}.jpg"


def uploads_of(db: Database, pid: int) -> list[Upload]:
    with db.read() as s:
        return list(s.scalars(select(Upload).where(Upload.participant_id == pid).order_by(Upload.id)).all())


# --------------------------------------------------------------------------------------------
# render jobs (run in the background workers of prefstyle.app.render)
# --------------------------------------------------------------------------------------------


def _load(path: Path) -> torch.Tensor:
    """``(3,H,W)`` sRGB in [0,1]."""
    from prefstyle.imaging.io import read_image

    return read_image(path).pixels


@lru_cache(maxsize=256)
def _reference_image(path: str) -> torch.Tensor:
    """``(3,h,w)`` float in [0,1], long side at most :data:`REF_SIZE` (JPEGs decoded at a reduced
    scale), cached per file in the render worker: the study's images never change, and every
    participant's references are drawn from the same few (at most 256 x 0.8 MB)."""
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(path) as f:
        f.draft("RGB", (REF_SIZE, REF_SIZE))
        im = f.convert("RGB")
        im.thumbnail((REF_SIZE, REF_SIZE), Image.Resampling.BOX)
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def build_references(study: LoadedStudy, answers: list[Answer]) -> list[Reference]:
    """:class:`~prefstyle.models.base.Reference` objects from (scene, a, b, answer) rows: the images
    as served, at most :data:`REF_SIZE` pixels (models judge taste from thumbnails)."""
    import torch.nn.functional as F

    from prefstyle.models.base import Reference

    refs = []
    for scene_id, a, b, ans in answers:
        pref, other = (a, b) if ans == "a" else (b, a)
        p_img = _reference_image(str(study.required_rendition_path(pref)))
        o_img = _reference_image(str(study.required_rendition_path(other)))
        src_path = study.source_path(scene_id)
        src = None if src_path is None else _reference_image(str(src_path))
        if o_img.shape != p_img.shape:
            o_img = F.interpolate(o_img[None], size=p_img.shape[-2:], mode="bilinear", antialias=True)[0]
        if src is not None and src.shape != p_img.shape:
            src = F.interpolate(src[None], size=p_img.shape[-2:], mode="bilinear", antialias=True)[0]
        refs.append(
            Reference(
                scene=study.scenes[scene_id].key,
                preferred=p_img,
                other=o_img,
                source=src,
                meta={"preferred_rendition": pref, "other_rendition": other},
            )
        )
    return refs


def render_image(model: PersonalizationModel, profile: Profile, img: torch.Tensor) -> torch.Tensor:
    """``(3,H,W)`` sRGB [0,1] -> the same in the profile's taste: the model's per-image LUT when it
    has one (:meth:`~prefstyle.models.base.PersonalizationModel.luts`), else its ``render``."""
    import torch

    from prefstyle.imaging.lut import apply_lut

    with torch.no_grad():
        x = img[None]
        luts = model.luts(x, profile)
        out = model.render(x, profile) if luts is None else apply_lut(x, luts)
        return out[0].clamp(0, 1)


def _write_jpeg(path: Path, img: torch.Tensor) -> None:
    from prefstyle.imaging.io import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, img, quality=92)  # atomic


RENDER_LOCK_S = 300.0


def _lock_path(study: LoadedStudy, pid: int, version: int) -> Path:
    return participant_dir(study, pid) / f".v{version}.rendering"


def _lock_owner() -> str:
    import os
    import socket

    return f"{socket.gethostname()} {os.getpid()}"


def _owner_gone(lock: Path) -> bool:
    """True when ``lock`` names a process of this machine that no longer runs (a render of a server
    killed mid-render, seen after a restart); False when unsure (another machine, an unreadable lock)."""
    import os
    import socket

    try:
        host, owner = lock.read_text(encoding="utf-8").split()
        if host != socket.gethostname():
            return False
        os.kill(int(owner), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return False


def render_in_progress(study: LoadedStudy, pid: int, version: int) -> bool:
    """True while some process (of any server process) renders this version: its lock file is
    younger than :data:`RENDER_LOCK_S` (the lock of a killed render expires then, or at once when
    it names a process of this machine that is gone)."""
    import time

    lock = _lock_path(study, pid, version)
    try:
        fresh = time.time() - lock.stat().st_mtime < RENDER_LOCK_S
    except OSError:
        return False
    return fresh and not _owner_gone(lock)


def _take_lock(study: LoadedStudy, pid: int, version: int) -> bool:
    import os

    lock = _lock_path(study, pid, version)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                os.write(fd, _lock_owner().encode())
            finally:
                os.close(fd)
            return True
        except FileExistsError:
            if render_in_progress(study, pid, version):
                return False
            lock.unlink(missing_ok=True)  # left by a killed render
    return False


def build_style(study: LoadedStudy, user: str, pid: int, answers: list[Answer]) -> int:
    """Render version ``len(answers)``: profile, held-out photos retouched, the taste in words.

    Written into a temporary folder renamed to ``v<N>`` when complete; older versions are then
    removed. A lock file (``.v<N>.rendering``) keeps other server processes' render workers from
    rendering the same version at once (they return and their pages poll). Returns N.
    """
    if not answers:
        raise FlowError(409, "answer a few pairs first: your style is learned from your choices")
    version = len(answers)
    base = participant_dir(study, pid)
    final = base / f"v{version}"
    if (final / "done").is_file() or not _take_lock(study, pid, version):
        return version
    tmp = base / f".v{version}.{uuid.uuid4().hex[:8]}.part"
    try:
        tmp.mkdir(parents=True)
        model = study.model()
        refs = build_references(study, answers)
        profile = model.personalize(refs, user=user)
        del refs
        profile.data = {**profile.data, "study": study.id, "answers_used": version}
        profile.save(tmp / "profile.json")
        for s in study.heldout:
            _write_jpeg(
                tmp / f"heldout-{s.id}.jpg", render_image(model, profile, _load(study.required_source_path(s.id)))
            )
        (tmp / "describe.txt").write_text((model.describe(profile) or "").strip() + "\n", encoding="utf-8")
        table = slider_table(model, profile)
        (tmp / nudge.TABLE_FILE).write_text(json.dumps(table.to_json(), indent=1) + "\n", encoding="utf-8")
        _write_presets(tmp, model, profile, table, table.learned(), f"prefstyle {study.id}")
        (tmp / "done").write_text("ok\n")
        try:
            tmp.rename(final)
        except OSError:
            if not (final / "done").is_file():  # an unfinished folder of that name (an older server): replace it
                shutil.rmtree(final, ignore_errors=True)
                tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        _lock_path(study, pid, version).unlink(missing_ok=True)
    for old in base.iterdir():  # keep the newest version (and any newer one another process made)
        m = VERSION_DIR.match(old.name)
        if m and int(m.group(1)) < version and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        part = PART_DIR.match(old.name)
        if part and int(part.group(1)) <= version and not render_in_progress(study, pid, int(part.group(1))):
            shutil.rmtree(old, ignore_errors=True)  # left by a killed render
    return version


def load_profile(result: StyleResult) -> Profile:
    from prefstyle.models.base import Profile

    return Profile.load(result.folder / "profile.json")


def profile_zip(result: StyleResult) -> Path:
    """``profile.zip`` (profile.json + profile.safetensors when it has tensors) in the version folder (small, fast)."""
    import zipfile

    from prefstyle.fsutil import atomic_path

    path = result.folder / "profile.zip"
    if not path.is_file():
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for name in ("profile.json", "profile.safetensors"):
                if (result.folder / name).is_file():
                    z.write(result.folder / name, name)
    return path


def lut_available() -> bool:
    """Whether ``.cube`` export is installed (looked up without importing it: the server stays small)."""
    import prefstyle

    return (Path(prefstyle.__file__).parent / "eval" / "lut_export.py").is_file()


def build_lut(study: LoadedStudy, pid: int, version: int) -> Path:
    """The participant's taste as a ``.cube`` 3D LUT (``lut_size`` from the study), cached per version."""
    result = style_result(study, pid, version)
    path = result.folder / "style.cube"
    if path.is_file():
        return path
    if not result.ready:
        raise FlowError(409, "your style is not rendered yet")
    try:
        from prefstyle.eval.lut_export import profile_to_lut
    except ImportError:
        raise FlowError(501, "exporting a style as a LUT is not available in this installation") from None
    from prefstyle.fsutil import atomic_path
    from prefstyle.imaging.lut_io import write_cube

    # the study's own photos (held-out first): the LUT averages the model's transform over them, at
    # the reference size (decoded at a reduced scale and cached in this worker; a per-photo LUT
    # depends on a 64-pixel metering only)
    scenes = [s for s in study.heldout + [s for s in study.scenes.values() if s.role == "question"] if s.source_file]
    paths = [study.required_source_path(s.id) for s in scenes[:LUT_IMAGES]]
    images = [_reference_image(str(p))[None] for p in paths] or None
    lut = profile_to_lut(study.model(), load_profile(result), size=study.cfg.lut_size, images=images)
    del images
    with atomic_path(path) as tmp:
        write_cube(tmp, lut, title=f"prefstyle {study.id} v{result.version}")
    return path


def build_upload(study: LoadedStudy, pid: int, version: int, key: str) -> str:
    """Retouch the participant's upload ``key`` with version ``version`` of their style; returns its file name."""
    result = style_result(study, pid, version)
    name = upload_name(result, key)
    target = participant_dir(study, pid) / name
    if not target.is_file():
        src = upload_source(study, pid, key)
        if not src.is_file():
            raise FlowError(410, "this photo is no longer on the server")
        if not result.ready:
            raise FlowError(409, "your style is not rendered yet")
        _write_jpeg(target, render_image(study.model(), load_profile(result), _load(src)))
    return name


def store_upload(tmp: Path, limits: UploadLimits, size: int, folder: Path) -> tuple[str, int, int]:
    """Decode and check an uploaded file (:func:`prefstyle.app.uploads.decode_upload`), store it
    downscaled; returns ``(key, width, height)``. Runs in a render worker (decoding is heavy)."""
    from prefstyle.app import uploads

    pixels = uploads.decode_upload(tmp, limits, size)
    key = uploads.store_upload(folder, pixels)
    return key, int(pixels.shape[-1]), int(pixels.shape[-2])


# --------------------------------------------------------------------------------------------
# the taste as sliders, and a participant's nudges of them (render jobs; see prefstyle.app.nudge)
# --------------------------------------------------------------------------------------------

#: the sliders shown, in Lightroom's Basic panel order: (name, label, what - does, what + does)
SLIDER_VIEW: tuple[tuple[str, str, str, str], ...] = (
    ("temperature", "Temperature", "cooler", "warmer"),
    ("tint", "Tint", "greener", "more magenta"),
    ("exposure", "Exposure", "darker", "brighter"),
    ("contrast", "Contrast", "flatter", "punchier"),
    ("highlights", "Highlights", "recovered", "brighter"),
    ("shadows", "Shadows", "deeper", "lifted"),
    ("whites", "Whites", "lower", "higher"),
    ("blacks", "Blacks", "deeper", "lifted"),
    ("vibrance", "Vibrance", "muted", "more vivid"),
    ("saturation", "Saturation", "muted", "more saturated"),
)
#: nudged renderings kept per style version (the oldest are removed)
MAX_NUDGES = 24


def slider_table(model: PersonalizationModel, profile: Profile) -> nudge.SliderTable:
    """The taste as the ten sliders of a raw editor, in the numbers Lightroom shows (the XMP
    preset's scales: exposure in EV, the others on its -100..+100 scale, white balance relative):
    the model's :meth:`~prefstyle.models.base.PersonalizationModel.slider_edit` when its taste is a
    slider edit, else zeros (adjustments on top of the learned look)."""
    from prefstyle.imaging.params import SCALAR_FIELDS
    from prefstyle.imaging.presets.xmp import SCALES

    edit = model.slider_edit(profile)
    ranges = {name: (lo, hi) for name, lo, hi, _ in SCALAR_FIELDS}
    sliders = []
    for name, label, minus, plus in SLIDER_VIEW:
        scale = SCALES[name][1]
        lo, hi = ranges[name]
        value = 0.0 if edit is None else float(getattr(edit[0], name)) * scale
        step = 0.05 if name == "exposure" else 1.0
        unit = "EV" if name == "exposure" else "Lightroom units"
        sliders.append(nudge.Slider(name, label, unit, scale, lo * scale, hi * scale, step, value, minus, plus))
    notes = tuple(model.preset_notes(profile)) if edit is not None else ()
    return nudge.SliderTable(
        tuple(sliders), absolute=edit is not None, gain=None if edit is None else edit[1], notes=notes
    )


def nudge_edit(table: nudge.SliderTable, values: dict[str, float]) -> RetouchParams:
    """The edit a nudge adds on top of the learned taste: each slider's move, in RetouchParams units
    (clamped to each slider's range)."""
    from prefstyle.imaging.params import NEUTRAL, SCALAR_FIELDS

    ranges = {name: (lo, hi) for name, lo, hi, _ in SCALAR_FIELDS}
    kw = {}
    for s in table.sliders:
        lo, hi = ranges[s.name]
        kw[s.name] = min(max((values[s.name] - s.value) / s.scale, lo), hi)
    return NEUTRAL.replace(**kw)


def _preset_params(
    model: PersonalizationModel, profile: Profile, table: nudge.SliderTable, values: dict[str, float]
) -> tuple[RetouchParams, float] | None:
    """The slider edit a preset holds for ``values`` (the learned edit with the nudged sliders
    replaced), or None when the taste is not a slider edit."""
    edit = model.slider_edit(profile)
    if edit is None:
        return None
    params, gain = edit
    moved = {s.name: values[s.name] / s.scale for s in table.sliders if abs(values[s.name] - s.value) >= s.step / 2}
    return params.replace(**moved), gain


def _write_presets(
    folder: Path,
    model: PersonalizationModel,
    profile: Profile,
    table: nudge.SliderTable,
    values: dict[str, float],
    name: str,
) -> None:
    """``style.xmp``, ``style.dtstyle`` and ``style.pp3`` (:mod:`prefstyle.imaging.presets`) of the
    slider values in ``folder``; nothing when the taste is not a slider edit."""
    from prefstyle.fsutil import atomic_write_text
    from prefstyle.imaging.presets import FORMATS, preset_text

    edit = _preset_params(model, profile, table, values)
    if edit is None:
        return
    for fmt, ext in FORMATS.items():
        text, _notes = preset_text(fmt, edit[0], edit[1], name)
        atomic_write_text(folder / f"style{ext}", text)


def render_nudged(
    model: PersonalizationModel, profile: Profile, img: torch.Tensor, edit: RetouchParams
) -> torch.Tensor:
    """``(3,H,W)`` sRGB [0,1] in the profile's taste followed by ``edit`` (a nudge): the model's
    per-image LUT with the edit applied to its values when the model has one, else its rendering
    then the edit."""
    import torch

    from prefstyle.imaging.lut import apply_lut
    from prefstyle.imaging.pipeline import apply_retouch

    with torch.no_grad():
        x = img[None]
        luts = model.luts(x, profile)
        if luts is None:
            return apply_retouch(model.render(x, profile).clamp(0, 1), edit, method="exact")[0].clamp(0, 1)
        b, _, s = luts.shape[:3]
        composed = apply_retouch(luts.reshape(b, 3, s, s * s).clamp(0, 1), edit, method="exact")
        return apply_lut(x, composed.clamp(0, 1).reshape(luts.shape).contiguous())[0].clamp(0, 1)


def _prune_nudges(folder: Path, keep: int = MAX_NUDGES) -> None:
    done = sorted((p for p in folder.glob("nudge-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in done[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    cubes = sorted(folder.glob("cube-*.cube"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in cubes[keep:]:
        old.unlink(missing_ok=True)


def build_nudge(study: LoadedStudy, pid: int, version: int, values: dict[str, float]) -> str:
    """Render version ``version`` of the participant's style with the sliders at ``values``
    (display units, :func:`prefstyle.app.nudge.parse_values`): the held-out photos and, for a
    slider taste, the three presets, in ``v<N>/nudge-<key>/``. Returns that folder's name."""
    result = style_result(study, pid, version)
    if not result.ready:
        raise FlowError(409, "your style is not rendered yet")
    table = nudge.read_table(result.folder)
    if table is None:
        raise FlowError(409, "this version of your style has no sliders; reload the page")
    final = nudge.nudge_dir(result.folder, values)
    if (final / "done").is_file():
        return final.name
    model, profile = study.model(), load_profile(result)
    edit = nudge_edit(table, values)
    tmp = result.folder / f".{final.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        tmp.mkdir(parents=True)
        for s in study.heldout:
            img = _load(study.required_source_path(s.id))
            _write_jpeg(tmp / f"heldout-{s.id}.jpg", render_nudged(model, profile, img, edit))
        _write_presets(tmp, model, profile, table, values, f"prefstyle {study.id}")
        (tmp / "values.json").write_text(json.dumps(values, indent=1) + "\n", encoding="utf-8")
        (tmp / "done").write_text("ok\n")
        try:
            tmp.rename(final)
        except OSError:  # another process rendered the same values meanwhile
            if not (final / "done").is_file():
                shutil.rmtree(final, ignore_errors=True)
                tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _prune_nudges(result.folder)
    return final.name


def nudged_lut_path(result: StyleResult, values: dict[str, float]) -> Path:
    return result.folder / f"cube-{nudge.nudge_key(values)}.cube"


def build_nudged_lut(study: LoadedStudy, pid: int, version: int, values: dict[str, float]) -> Path:
    """The ``.cube`` of the style with the sliders at ``values``: the nudge applied to the values of
    the style's LUT (:func:`build_lut`, computed first when missing)."""
    from prefstyle.fsutil import atomic_path
    from prefstyle.imaging.lut_io import read_cube, write_cube
    from prefstyle.imaging.pipeline import apply_retouch

    result = style_result(study, pid, version)
    path = nudged_lut_path(result, values)
    if path.is_file():
        return path
    table = nudge.read_table(result.folder)
    if table is None:
        raise FlowError(409, "this version of your style has no sliders; reload the page")
    base = read_cube(build_lut(study, pid, version)).lut3d
    if base is None:
        raise FlowError(500, "the style's LUT could not be read")
    s = base.shape[-1]
    out = apply_retouch(base.reshape(1, 3, s, s * s), nudge_edit(table, values), method="exact")
    with atomic_path(path) as tmp:
        write_cube(tmp, out.clamp(0, 1).reshape(3, s, s, s), title=f"prefstyle {study.id} v{result.version} adjusted")
    _prune_nudges(result.folder)
    return path
