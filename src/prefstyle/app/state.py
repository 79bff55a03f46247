"""What the running app keeps in memory: settings, the database, and each study's fixed catalog."""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from prefstyle.app.catalog import study_dir
from prefstyle.app.db import Database
from prefstyle.app.models import Rendition, SceneRow, Study
from prefstyle.app.study import StudyConfig, config_from_dict
from prefstyle.errors import PrefstyleError

if TYPE_CHECKING:
    from prefstyle.app.render import RenderQueue
    from prefstyle.models.base import PersonalizationModel


@dataclass
class AppSettings:
    """How ``prefstyle serve`` runs.

    db_url: SQLAlchemy URL (``sqlite:///FILE`` or ``postgresql://...``).
    data_dir: where rendered study images and participants' files live.
    studies: study configurations to create or update at start (studies already in the
        database are served too).
    admin_token: the token of the ``/admin`` pages; generated (and kept in
        ``DATA/admin-token``) when None.
    secure_cookies: mark cookies ``Secure`` (set when serving over HTTPS).
    adopt_data: when a study folder holds participants' files the database does not know, move
        them aside (kept) instead of refusing to start (:func:`~prefstyle.app.catalog.sync_study`).
    render_workers: background processes (or threads) that render participants' styles, per server process.
    render_mode: ``process`` (a process pool: the server's memory stays small) or ``thread`` (tests).
    render_queue: at most this many render jobs waiting per server process; more are answered "busy".
    forwarded_allow_ips: proxies whose ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` are trusted
        (comma-separated IPs or CIDRs, ``*`` for any); empty: the headers are ignored.
    """

    db_url: str = "sqlite:///prefstyle-app/app.db"
    data_dir: Path = Path("prefstyle-app")
    studies: list[StudyConfig] = field(default_factory=list)
    admin_token: str | None = None
    secure_cookies: bool = False
    use_default_study: bool = True
    adopt_data: bool = False
    render_workers: int = 1
    render_mode: str = "process"
    render_queue: int = 64
    forwarded_allow_ips: str = ""

    def to_json(self) -> str:
        """The settings as JSON (for the worker processes of ``serve --workers``); :meth:`from_json` reads it."""
        d = dataclasses.asdict(self)
        d["data_dir"] = str(self.data_dir)
        d["studies"] = [c.to_dict() for c in self.studies]
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> AppSettings:
        d = json.loads(text)
        d["data_dir"] = Path(d["data_dir"])
        d["studies"] = [config_from_dict(c) for c in d["studies"]]
        return cls(**d)


MIN_ADMIN_TOKEN = 16


def admin_token_for(settings: AppSettings) -> str:
    """The admin token: the configured one, else the one kept in ``DATA/admin-token`` (created once)."""
    if settings.admin_token:
        if len(settings.admin_token.strip()) < MIN_ADMIN_TOKEN:
            raise PrefstyleError(
                f"--admin-token must be at least {MIN_ADMIN_TOKEN} characters (a guessable token "
                "opens every participant's data); leave it out to have one generated"
            )
        return settings.admin_token.strip()
    from prefstyle.fsutil import atomic_write_text

    path = Path(settings.data_dir) / "admin-token"
    if path.exists() and not path.is_file():
        raise PrefstyleError("is not a file: remove it to have a token generated", path=path)
    if path.is_file():
        try:
            token = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise PrefstyleError("not UTF-8 text: remove it to have a token generated", path=path) from None
        if token and len(token) < MIN_ADMIN_TOKEN:
            raise PrefstyleError(
                f"the admin token must be at least {MIN_ADMIN_TOKEN} characters (a guessable token opens "
                "every participant's data): remove the file to have one generated",
                path=path,
            )
        if token:
            return token
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, token + "\n", mode=0o600)  # never readable by others, not even for a moment
    return token


@dataclass(frozen=True)
class RenditionInfo:
    id: int
    scene_id: int
    key: str
    file: str


@dataclass(frozen=True)
class SceneInfo:
    id: int
    key: str
    role: str
    origin: str | None
    content: str | None
    source_file: str | None
    renditions: tuple[int, ...]


class LoadedStudy:
    """A study's config and its catalog (ids of scenes and renditions), loaded once at start."""

    def __init__(self, cfg: StudyConfig, folder: Path, scenes: list[SceneInfo], renditions: list[RenditionInfo]):
        self.cfg, self.folder = cfg, folder
        self.scenes = {s.id: s for s in scenes}
        self.renditions = {r.id: r for r in renditions}
        self.scene_by_key = {s.key: s for s in scenes}
        self.rendition_by_key = {(self.scenes[r.scene_id].key, r.key): r for r in renditions}
        self.question_scenes = {
            s.key: [self.renditions[r].key for r in s.renditions] for s in scenes if s.role == "question"
        }
        self.heldout = [s for s in scenes if s.role == "heldout"]
        self._model: PersonalizationModel | None = None
        self._model_lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.cfg.id

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for the render processes without the loaded model and the lock."""
        d = dict(self.__dict__)
        d["_model"], d["_model_lock"] = None, None
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._model_lock = threading.Lock()

    def rendition_path(self, rendition_id: int) -> Path | None:
        r = self.renditions.get(rendition_id)
        return None if r is None else self.folder / r.file

    def source_path(self, scene_id: int) -> Path | None:
        s = self.scenes.get(scene_id)
        return None if s is None or s.source_file is None else self.folder / s.source_file

    def required_rendition_path(self, rendition_id: int) -> Path:
        """:meth:`rendition_path` for an id taken from the database (always one of the study's)."""
        path = self.rendition_path(rendition_id)
        if path is None:
            raise LookupError(f"study {self.id!r} has no rendition {rendition_id}")
        return path

    def required_source_path(self, scene_id: int) -> Path:
        """:meth:`source_path` of a scene that has a source (every held-out scene has one)."""
        path = self.source_path(scene_id)
        if path is None:
            raise LookupError(f"scene {scene_id} of study {self.id!r} has no source image")
        return path

    def model(self) -> PersonalizationModel:
        """The study's personalization model (loaded on first use)."""
        with self._model_lock:
            if self._model is None:
                from prefstyle.models import DEFAULT_MODEL, load, packaged_models

                spec = self.cfg.model
                if spec == "default":  # the shipped default model; a reference point where none ships
                    spec = DEFAULT_MODEL if DEFAULT_MODEL in packaged_models() else "nearest-preferred"
                self._model = load(spec)
            return self._model


def load_study_index(db: Database, study_id: str, data_dir: Path) -> LoadedStudy:
    with db.read() as s:
        st = s.get(Study, study_id)
        if st is None:
            raise PrefstyleError(f"study {study_id!r} is not in the database")
        cfg = config_from_dict(json.loads(st.config_json))
        srows = s.scalars(select(SceneRow).where(SceneRow.study_id == study_id).order_by(SceneRow.id)).all()
        rrows = s.scalars(
            select(Rendition)
            .join(SceneRow, Rendition.scene_id == SceneRow.id)
            .where(SceneRow.study_id == study_id)
            .order_by(Rendition.id)
        ).all()
        rends = [RenditionInfo(r.id, r.scene_id, r.key, r.file) for r in rrows]
        by_scene: dict[int, list[int]] = {}
        for r in rends:
            by_scene.setdefault(r.scene_id, []).append(r.id)
        scenes = [
            SceneInfo(x.id, x.key, x.role, x.origin, x.content, x.source_file, tuple(by_scene.get(x.id, ())))
            for x in srows
        ]
    return LoadedStudy(cfg, study_dir(data_dir, study_id), scenes, rends)


@dataclass
class AppState:
    settings: AppSettings
    db: Database
    admin_token: str
    studies: dict[str, LoadedStudy]
    renders: RenderQueue | None = None  # started with the app

    def render_queue(self) -> RenderQueue:
        """The render queue (:func:`~prefstyle.app.server.create_app` starts it before serving)."""
        if self.renders is None:
            raise RuntimeError("the render queue is not started: serve the app made by create_app")
        return self.renders
