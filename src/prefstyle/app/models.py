"""The study app's database tables (SQLAlchemy 2 ORM). The schema itself is created by the
Alembic migrations in ``prefstyle/app/migrations`` (``tests/test_app_db.py`` checks that the two agree).

Times are naive UTC ``datetime`` values (the same on SQLite and PostgreSQL).

* ``studies``: one row per study id; ``config_json`` is the study's YAML as JSON,
  ``catalog_hash`` identifies the scenes and renditions rendered for it.
* ``scenes`` / ``renditions``: the study's images (files under the data folder, paths relative
  to the study's folder). ``role`` is ``question`` (shown in pairs) or ``heldout`` (shown only on
  the "your style" page). ``source_file`` is the scene's neutral rendition, when it has one.
* ``participants``: a person on one device (``user = person@device``); ``token_hash`` is the
  SHA-256 of the resume token, which only the participant holds.
* ``questions``: a participant's planned questions in order. Main questions are planned at
  joining; a consistency question gets its pair (an earlier main pair, sides swapped) when it
  is served. ``answer`` is ``a``, ``b`` or ``undecided``.
* ``uploads``: photos a participant uploaded to see them retouched (only the downscaled,
  re-encoded image is kept, under the participant's folder).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ANSWERS = ("a", "b", "undecided")


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (what every time column stores)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    config_json: Mapped[str] = mapped_column(Text)
    catalog_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SceneRow(Base):
    __tablename__ = "scenes"
    __table_args__ = (UniqueConstraint("study_id", "key", name="uq_scenes_study_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_file: Mapped[str | None] = mapped_column(String(400), nullable=True)

    renditions: Mapped[list[Rendition]] = relationship(back_populates="scene", order_by="Rendition.id")


class Rendition(Base):
    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("scene_id", "key", name="uq_renditions_scene_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scene_id: Mapped[int] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    file: Mapped[str] = mapped_column(String(400))
    meta_json: Mapped[str | None] = mapped_column(Text, nullable=True)

    scene: Mapped[SceneRow] = relationship(back_populates="renditions")


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("study_id", "user", name="uq_participants_study_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person: Mapped[str] = mapped_column(String(80))
    device: Mapped[str] = mapped_column(String(80))
    user: Mapped[str] = mapped_column(String(170))
    seed: Mapped[int] = mapped_column(Integer)
    calibration_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    consent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    calibrated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("participant_id", "position", name="uq_questions_participant_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    scene_id: Mapped[int | None] = mapped_column(ForeignKey("scenes.id"), nullable=True)
    rendition_a_id: Mapped[int | None] = mapped_column(ForeignKey("renditions.id"), nullable=True)
    rendition_b_id: Mapped[int | None] = mapped_column(ForeignKey("renditions.id"), nullable=True)
    repeat_of_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id"), nullable=True)
    served_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    answer: Mapped[str | None] = mapped_column(String(16), nullable=True)
    response_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


def served_pair(scene_id: int | None, a: int | None, b: int | None) -> tuple[int, int, int]:
    """``(scene id, rendition a id, rendition b id)`` of a question that has its pair: every main
    question from joining on, a consistency question once served (hence every answered one)."""
    if scene_id is None or a is None or b is None:
        raise LookupError("a question that has been served or answered has no pair of renditions (damaged database?)")
    return scene_id, a, b


def decided_answer(scene_id: int | None, a: int | None, b: int | None, answer: str | None) -> tuple[int, int, int, str]:
    """``(scene id, rendition a id, rendition b id, "a" | "b")`` of a decided answer."""
    if answer is None or answer not in ("a", "b"):
        raise LookupError(f"not a decided answer: {answer!r}")
    return (*served_pair(scene_id, a, b), answer)


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
