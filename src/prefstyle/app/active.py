"""``sampling: active``: ask the pair whose answer is expected to say most about the participant.

The plan (:func:`~prefstyle.app.study.plan_questions`) fixes which scene each main question
shows, as ``balanced`` does. Just before a main question is first served, the study's model
ranks every pair of that scene's renditions by the expected information gain of its answer,
given the participant's decided answers so far (``question_values``: SliderTaste's posterior,
a few milliseconds); the best pair replaces the planned one, sides seeded by the participant.
A model whose ``question_values`` returns None keeps the plan. The ranking runs outside the write
transaction (:func:`suggest_pair`), on 64-pixel thumbnails decoded once per process; the
transaction then applies it only if that question is still unserved.

Nothing here is kept per process except decoded thumbnails (keyed by file, and the files never
change): the answers are read from the database on every call, and the model's own caches are
keyed by image content, so with several server processes the pair chosen is the same whichever
process served the earlier answers.
"""

from __future__ import annotations

import random
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from prefstyle.app.db import Database
from prefstyle.app.models import Participant, Question, decided_answer
from prefstyle.app.state import LoadedStudy

if TYPE_CHECKING:
    import torch

    from prefstyle.models.base import Reference

THUMB = 64


@lru_cache(maxsize=2048)  # at most 2048 x 49 kB
def _thumb(path: str) -> torch.Tensor:
    """``(3, h, w)`` float tensor in [0, 1], long side at most :data:`THUMB` (cached per file)."""
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(path) as f:
        f.draft("RGB", (THUMB, THUMB))  # JPEG: decode at a reduced scale
        im = f.convert("RGB")
        im.thumbnail((THUMB, THUMB), Image.Resampling.BOX)
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def _image(path: Path) -> torch.Tensor:
    return _thumb(str(path))


def suggest_pair(
    db: Database, study: LoadedStudy, participant_id: int, pending: tuple[int, str] | None = None
) -> tuple[int, int, int] | None:
    """``(question id, rendition a, rendition b)`` for the participant's next unserved main question.

    ``pending``: ``(question id, choice)`` of an answer about to be stored in the same request;
    it counts as decided, and the suggestion is for the question after it. None when the study
    does not sample actively, the next question is not an unserved main one, its scene has a
    single pair, or the model cannot rank questions.
    """
    if study.cfg.sampling != "active":
        return None
    model = study.model()
    unanswered = [Question.participant_id == participant_id, Question.answer.is_(None)]
    if pending is not None:
        unanswered.append(Question.id != pending[0])
    with db.read() as s:
        q = s.scalar(select(Question).where(*unanswered).order_by(Question.position).limit(1))
        if q is None or q.kind != "main" or q.served_at is not None:
            return None
        if q.scene_id is None:
            raise LookupError(f"main question {q.id} has no scene (damaged database?)")
        qid, scene_id = q.id, q.scene_id
        seed = s.scalar(select(Participant.seed).where(Participant.id == participant_id))
        rows = s.execute(
            select(Question.id, Question.scene_id, Question.rendition_a_id, Question.rendition_b_id, Question.answer)
            .where(
                Question.participant_id == participant_id, Question.kind == "main", Question.rendition_a_id.is_not(None)
            )
            .order_by(Question.position)
        ).all()
    answers = []
    for rid, sid, a, b, ans in rows:
        if pending is not None and rid == pending[0] and ans is None:
            ans = pending[1]
        if ans in ("a", "b"):
            answers.append(decided_answer(sid, a, b, ans))
    rends = list(study.scenes[scene_id].renditions)
    if len(rends) < 3:
        return None
    source_path = study.source_path(scene_id)
    if source_path is None:
        return None
    ranked = model.question_values(
        _references(study, answers),
        [(_image(source_path), [_image(study.required_rendition_path(r)) for r in rends])],
    )
    if ranked is None:  # the model cannot rank questions: the plan stands
        return None
    values = ranked[0]
    i, j = max(combinations(range(len(rends)), 2), key=lambda ij: float(values[ij[0], ij[1]]))
    a, b = rends[i], rends[j]
    if random.Random(int(seed or 0) * 7919 + qid).random() < 0.5:
        a, b = b, a
    return qid, a, b


def _references(study: LoadedStudy, answers: list[tuple[int, int, int, str]]) -> list[Reference]:
    from prefstyle.models.base import Reference

    refs = []
    for scene_id, a, b, ans in answers:
        pref, other = (a, b) if ans == "a" else (b, a)
        source = study.source_path(scene_id)
        refs.append(
            Reference(
                scene=study.scenes[scene_id].key,
                preferred=_image(study.required_rendition_path(pref)),
                other=_image(study.required_rendition_path(other)),
                source=None if source is None else _image(source),
            )
        )
    return refs
