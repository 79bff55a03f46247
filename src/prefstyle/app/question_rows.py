"""A participant's questions as plain rows: the reads and writes of the answer path, in SQLAlchemy Core.

Every pair served and every answer stored goes through here (``flow.serve_current``,
``flow.submit_answer``, ``flow.progress``, active sampling's evidence). With SQLite the write
transaction holds the database's single write lock, so its cost is paid once per answer *in
series*: 100 participants answering together queue behind it (docs/BENCHMARKS.md, "serve").
Hence one statement loads all of a participant's questions (a study has at most a few hundred)
and the flow's decisions (the next pair, the pair to repeat, the progress) are made on those rows
in Python; statements are built once at import, so executing one is a cache lookup, and no ORM
objects are made. The schema is :mod:`prefstyle.app.models`'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update

from prefstyle.app.models import Participant, Question

_QT = cast(Table, Question.__table__)
_PT = cast(Table, Participant.__table__)
_Q = _QT.c
_P = _PT.c

_SELECT_QUESTIONS = (
    select(
        _Q.id,
        _Q.position,
        _Q.kind,
        _Q.scene_id,
        _Q.rendition_a_id,
        _Q.rendition_b_id,
        _Q.repeat_of_id,
        _Q.served_at,
        _Q.answer,
    )
    .where(_Q.participant_id == bindparam("pid"))
    .order_by(_Q.position)
)
# FOR UPDATE serializes one participant's requests on PostgreSQL; SQLite's BEGIN IMMEDIATE already does
_LOCK_PARTICIPANT = select(_P.seed, _P.finished_at).where(_P.id == bindparam("pid")).with_for_update()
_SELECT_SEED = select(_P.seed).where(_P.id == bindparam("pid"))
_SELECT_BY_TOKEN = select(_P.id, _P.calibrated_at).where(
    _P.token_hash == bindparam("h"), _P.study_id == bindparam("sid")
)
_STORE_ANSWER = (
    update(_QT)
    .where(_Q.id == bindparam("qid"))
    .values(answer=bindparam("v_answer"), response_ms=bindparam("v_response_ms"), answered_at=bindparam("v_at"))
)
_MARK_SERVED = (
    update(_QT)
    .where(_Q.id == bindparam("qid"))
    .values(
        served_at=bindparam("v_at"),
        scene_id=bindparam("v_scene"),
        rendition_a_id=bindparam("v_a"),
        rendition_b_id=bindparam("v_b"),
        repeat_of_id=bindparam("v_repeat"),
    )
)
_MARK_FINISHED = update(_PT).where(_P.id == bindparam("pid")).values(finished_at=bindparam("v_at"))


class QuestionRow:
    """One question of a participant as stored (mutable: the flow updates its copy as it writes)."""

    __slots__ = (
        "answer",
        "id",
        "kind",
        "position",
        "rendition_a_id",
        "rendition_b_id",
        "repeat_of_id",
        "scene_id",
        "served_at",
    )
    id: int
    position: int
    kind: str
    scene_id: int | None
    rendition_a_id: int | None
    rendition_b_id: int | None
    repeat_of_id: int | None
    served_at: datetime | None
    answer: str | None

    def __init__(self, row: Any) -> None:
        (
            self.id,
            self.position,
            self.kind,
            self.scene_id,
            self.rendition_a_id,
            self.rendition_b_id,
            self.repeat_of_id,
            self.served_at,
            self.answer,
        ) = row


def questions(conn: Connection, participant_id: int) -> list[QuestionRow]:
    """All questions of the participant, in order of position."""
    return [QuestionRow(r) for r in conn.execute(_SELECT_QUESTIONS, {"pid": participant_id})]


@dataclass(frozen=True)
class LockedParticipant:
    """A participant as the answer path needs them, their row locked for the write transaction."""

    id: int
    seed: int
    finished_at: datetime | None
    questions: list[QuestionRow]  # in order of position; the flow updates them as it writes


def lock_participant(conn: Connection, participant_id: int) -> LockedParticipant | None:
    """The participant and their questions, their row locked for this transaction; None if gone."""
    row = conn.execute(_LOCK_PARTICIPANT, {"pid": participant_id}).first()
    if row is None:
        return None
    return LockedParticipant(participant_id, row[0], row[1], questions(conn, participant_id))


def by_token(conn: Connection, study_id: str, token_hash: str) -> tuple[int, datetime | None] | None:
    """``(id, calibrated_at)`` of the study's participant whose token has SHA-256 ``token_hash``; None if none."""
    row = conn.execute(_SELECT_BY_TOKEN, {"h": token_hash, "sid": study_id}).first()
    return None if row is None else (row[0], row[1])


def seed(conn: Connection, participant_id: int) -> int | None:
    return conn.execute(_SELECT_SEED, {"pid": participant_id}).scalar()


def store_answer(conn: Connection, q: QuestionRow, answer: str, response_ms: int | None, at: datetime) -> None:
    conn.execute(_STORE_ANSWER, {"qid": q.id, "v_answer": answer, "v_response_ms": response_ms, "v_at": at})
    q.answer = answer


def mark_served(conn: Connection, q: QuestionRow, at: datetime) -> None:
    """Store ``q``'s served time with its pair (a consistency question's pair is set when served)."""
    conn.execute(
        _MARK_SERVED,
        {
            "qid": q.id,
            "v_at": at,
            "v_scene": q.scene_id,
            "v_a": q.rendition_a_id,
            "v_b": q.rendition_b_id,
            "v_repeat": q.repeat_of_id,
        },
    )
    q.served_at = at


def mark_finished(conn: Connection, participant_id: int, at: datetime) -> None:
    conn.execute(_MARK_FINISHED, {"pid": participant_id, "v_at": at})
