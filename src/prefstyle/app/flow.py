"""The participant's flow: join, calibrate, get the current pair, answer it, see progress.

Every function takes the :class:`~prefstyle.app.db.Database` and runs one short transaction.
:func:`submit_answer` stores the answer and marks the next pair served in one transaction that is
committed before the response carrying that pair is sent, so a server killed with SIGKILL loses
no acknowledged answer, and the participant resumes at the first unanswered question (the
same pair again when it had been served).

A participant is identified only by their resume token (a random 32-character string; the
database keeps its SHA-256). Refusals raise :class:`FlowError` with an HTTP status and a message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from prefstyle.app import question_rows as rows
from prefstyle.app.db import Database
from prefstyle.app.models import Participant, Question, utcnow
from prefstyle.app.question_rows import LockedParticipant, QuestionRow
from prefstyle.app.state import LoadedStudy
from prefstyle.app.study import plan_questions

NAME_RE = re.compile(r"^[\w][\w .'-]{0,59}$")
MAX_RESPONSE_MS = 3_600_000
MIN_REPEAT_DISTANCE = 3
#: the participant's row is gone (deleted while a request of theirs ran)
NO_PARTICIPANT = "we do not know you in this study yet: start from the study's first page, or open your resume link"


class FlowError(Exception):
    """A refused request: ``status`` (HTTP) and a message for the participant."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    def __reduce__(self) -> tuple[type[FlowError], tuple[int, str]]:  # raised in render workers, pickled back
        return (FlowError, (self.status, self.message))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def clean_name(value: str, what: str) -> str:
    """A person or device name: 1-60 letters, digits, spaces, ``.'-``; no ``@``."""
    v = " ".join(unicodedata.normalize("NFC", value or "").split())
    if not v:
        raise FlowError(400, f"please give a {what} name")
    if not NAME_RE.match(v):
        raise FlowError(400, f"the {what} name may use letters, digits, spaces and . ' - (at most 60 characters)")
    return v


@dataclass(frozen=True)
class QuestionView:
    """What the browser gets for one pair (the kind is not told: consistency items are unannounced)."""

    id: int
    position: int
    a: int
    b: int

    def to_json(self, study_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "position": self.position,
            "a": {"id": self.a, "url": f"/s/{study_id}/img/r/{self.a}"},
            "b": {"id": self.b, "url": f"/s/{study_id}/img/r/{self.b}"},
        }


@dataclass(frozen=True)
class Progress:
    answered: int
    total: int
    decided_main: int
    style_ready: bool
    finished: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "answered": self.answered,
            "total": self.total,
            "style_ready": self.style_ready,
            "finished": self.finished,
        }


def join(db: Database, study: LoadedStudy, person: str, device: str, consent: bool) -> tuple[int, str]:
    """Register a participant and plan their questions; returns (participant id, resume token)."""
    if not consent:
        raise FlowError(400, "please read the consent text and tick the box to take part")
    person, device = clean_name(person, "person"), clean_name(device, "device")
    user = f"{person}@{device}"
    token = secrets.token_urlsafe(24)
    seed = secrets.randbelow(2**31)
    cfg = study.cfg
    plan = plan_questions(study.question_scenes, cfg.main, cfg.consistency, cfg.sampling, seed)
    now = utcnow()
    try:
        with db.write() as s:
            p = Participant(
                study_id=study.id,
                token_hash=hash_token(token),
                person=person,
                device=device,
                user=user,
                seed=seed,
                created_at=now,
                consent_at=now,
            )
            s.add(p)
            s.flush()
            for pos, q in enumerate(plan):
                row = Question(participant_id=p.id, position=pos, kind=q.kind)
                if q.kind == "main":
                    scene, a, b = q.pair()
                    ra, rb = study.rendition_by_key[(scene, a)], study.rendition_by_key[(scene, b)]
                    row.scene_id, row.rendition_a_id, row.rendition_b_id = ra.scene_id, ra.id, rb.id
                s.add(row)
            pid = p.id
    except IntegrityError:
        raise FlowError(
            409,
            f"someone already joined this study as {person!r} on device {device!r}; if that "
            "was you, open your resume link, or pick another device name",
        ) from None
    return pid, token


def authenticate(db: Database, study_id: str, token: str | None) -> Participant | None:
    """The participant holding ``token`` in this study, or None."""
    if not token or len(token) > 200:
        return None
    with db.read() as s:
        return s.scalar(
            select(Participant).where(Participant.token_hash == hash_token(token), Participant.study_id == study_id)
        )


def authenticate_calibrated(db: Database, study_id: str, token: str | None) -> int:
    """The id of the participant holding ``token`` in this study, who did the screen check
    (the JSON API's check, made without loading the participant: it runs with every answer).
    FlowError 401 for an unknown token, 409 before the screen check."""
    found = None
    if token and len(token) <= 200:
        with db.read() as s:
            found = rows.by_token(s.connection(), study_id, hash_token(token))
    if found is None:
        raise FlowError(401, NO_PARTICIPANT)
    if found[1] is None:
        raise FlowError(409, "please do the screen check first")
    return found[0]


def save_calibration(db: Database, participant_id: int, data: dict[str, Any]) -> None:
    """Store the screen test answers (and screen facts) with the participant's device."""
    text = json.dumps(data, sort_keys=True)
    if len(text) > 4000:
        raise FlowError(400, "calibration data too long")
    with db.write() as s:
        p = s.get(Participant, participant_id)
        if p is None:
            raise FlowError(401, NO_PARTICIPANT)
        p.calibration_json, p.calibrated_at = text, utcnow()


def _locked(s: Session, participant_id: int) -> LockedParticipant:
    """In write session ``s``: the participant and their questions, their row locked."""
    p = rows.lock_participant(s.connection(), participant_id)
    if p is None:
        raise FlowError(401, NO_PARTICIPANT)
    return p


def _pick_repeat(seed: int, qs: list[QuestionRow], q: QuestionRow) -> QuestionRow | None:
    """An earlier main question to repeat before ``q``: decided, not yet repeated, not the last few."""
    earlier = [e for e in qs if e.position < q.position]
    repeated = {e.repeat_of_id for e in earlier if e.repeat_of_id is not None}
    mains = [e for e in earlier if e.kind == "main" and e.id not in repeated and e.rendition_a_id is not None]
    rng = random.Random(seed * 7919 + q.position)
    for pool in (
        [e for e in mains if e.answer in ("a", "b") and q.position - e.position >= MIN_REPEAT_DISTANCE],
        [e for e in mains if e.answer in ("a", "b")],
        mains,
    ):
        if pool:
            return pool[rng.randrange(len(pool))]
    return None


def _serve(conn: Connection, p: LockedParticipant, hint: tuple[int, int, int] | None = None) -> QuestionView | None:
    """In ``p``'s write transaction: their first unanswered question, marked served (a consistency
    pair filled in; a main pair replaced by ``hint`` = (question id, a, b) from
    :func:`~prefstyle.app.active.suggest_pair` when that question is the one served now, for the
    first time). ``p.questions`` is updated as stored."""
    q = next((r for r in p.questions if r.answer is None), None)
    if q is None:
        if p.finished_at is None:
            rows.mark_finished(conn, p.id, utcnow())
        return None
    if q.served_at is None:
        if hint is not None and hint[0] == q.id and q.kind == "main":
            q.rendition_a_id, q.rendition_b_id = hint[1], hint[2]
        if q.rendition_a_id is None:
            orig = _pick_repeat(p.seed, p.questions, q)
            if orig is None:  # cannot happen with a plan from plan_questions
                raise FlowError(500, "no earlier pair to repeat")
            q.repeat_of_id, q.scene_id = orig.id, orig.scene_id
            q.rendition_a_id, q.rendition_b_id = orig.rendition_b_id, orig.rendition_a_id  # sides swapped
        rows.mark_served(conn, q, utcnow())
    if q.rendition_a_id is None or q.rendition_b_id is None:  # cannot happen: served questions have their pair
        raise FlowError(500, "this question has no pair to show")
    return QuestionView(q.id, q.position, q.rendition_a_id, q.rendition_b_id)


def _progress(study: LoadedStudy, qs: list[QuestionRow]) -> Progress:
    total = len(qs)
    answered = sum(1 for q in qs if q.answer is not None)
    decided_main = sum(1 for q in qs if q.kind == "main" and q.answer in ("a", "b"))
    finished = total > 0 and answered == total
    ready = decided_main >= 1 and (decided_main >= study.cfg.style_after or finished)
    return Progress(answered, total, decided_main, ready, finished)


def serve_current(db: Database, study: LoadedStudy, participant_id: int) -> tuple[QuestionView | None, Progress]:
    """The current pair (None when done) and the progress; the pair counts as served from now on."""
    hint = _active_hint(db, study, participant_id)
    with db.write() as s:
        p = _locked(s, participant_id)
        return _serve(s.connection(), p, hint), _progress(study, p.questions)


def _active_hint(
    db: Database, study: LoadedStudy, participant_id: int, pending: tuple[int, str] | None = None
) -> tuple[int, int, int] | None:
    if study.cfg.sampling != "active":
        return None
    from prefstyle.app.active import suggest_pair  # imports the model layer: only for active studies

    try:
        return suggest_pair(db, study, participant_id, pending)
    except Exception:  # the ranking is an optimisation: serve the planned pair rather than fail
        logging.getLogger("prefstyle.app").exception(
            "active sampling failed for participant %s; planned pair served", participant_id
        )
        return None


@dataclass(frozen=True)
class AnswerResult:
    duplicate: bool  # the same answer had been stored before (a retried request)
    next: QuestionView | None
    progress: Progress


def _check_answer(study: LoadedStudy, question_id: Any, a: Any, b: Any, choice: Any, response_ms: Any) -> None:
    allowed = ("a", "b", "undecided") if study.cfg.allow_undecided else ("a", "b")
    if choice not in allowed:
        raise FlowError(400, f"choice must be one of {', '.join(allowed)}")
    for name, v in (("question_id", question_id), ("a", a), ("b", b)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise FlowError(400, f"{name} must be an integer")
    if response_ms is not None and (
        isinstance(response_ms, bool)
        or not isinstance(response_ms, int | float)
        or not 0 <= response_ms <= MAX_RESPONSE_MS
    ):
        raise FlowError(400, f"response_ms must be a number of milliseconds from 0 to {MAX_RESPONSE_MS}")


def submit_answer(
    db: Database,
    study: LoadedStudy,
    participant_id: int,
    question_id: Any,
    a: Any,
    b: Any,
    choice: Any,
    response_ms: Any,
) -> AnswerResult:
    """Store an answer to a served question, then serve the next one.

    Answers for pairs not served to this participant are refused. The answer and the marking of
    the next pair as served are one transaction, committed before the response (with the next
    pair) is sent: an acknowledged answer is on disk.
    """
    _check_answer(study, question_id, a, b, choice, response_ms)
    hint = _active_hint(db, study, participant_id, (question_id, choice))
    with db.write() as s:
        p = _locked(s, participant_id)
        q = next((r for r in p.questions if r.id == question_id), None)
        if q is None:
            raise FlowError(404, "no such question for you")
        if q.served_at is None:
            raise FlowError(409, "this pair has not been shown to you yet")
        if (q.rendition_a_id, q.rendition_b_id) != (a, b):
            raise FlowError(409, "this answer names a pair that was not shown to you for this question")
        duplicate = False
        if q.answer is not None:
            if q.answer != choice:
                raise FlowError(409, "this question was already answered")
            duplicate = True
        else:
            rows.store_answer(s.connection(), q, choice, None if response_ms is None else round(response_ms), utcnow())
        nxt = _serve(s.connection(), p, hint)
        return AnswerResult(duplicate, nxt, _progress(study, p.questions))


def progress(db: Database, study: LoadedStudy, participant_id: int) -> Progress:
    with db.read() as s:
        return _progress(study, rows.questions(s.connection(), participant_id))
