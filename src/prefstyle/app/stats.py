"""Numbers for the organizer's pages: progress, consistency, response times, flagged participants.

:func:`collected_judgments` turns the stored answers into pairs-format
:class:`~prefstyle.data.pairs.Judgment` objects (decided answers only; "can't decide" answers
are counted apart), in answer order per participant; :func:`study_stats` runs the PPS quality
filters (:func:`prefstyle.data.filters.filter_users`) on them.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from prefstyle.app.db import Database
from prefstyle.app.models import Participant, Question, served_pair
from prefstyle.app.state import LoadedStudy
from prefstyle.data.pairs import Judgment

#: response-time histogram bin edges, in ms (the last bin is open-ended)
RT_EDGES = (0, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 20000, 30000)


def iso(t: datetime | None) -> str | None:
    """A naive UTC time as ISO 8601 with milliseconds and ``Z``."""
    return None if t is None else t.isoformat(timespec="milliseconds") + "Z"


@dataclass
class Collected:
    participants: list[Participant]
    questions: dict[int, list[Question]]  # participant id -> questions in position order


def collect(db: Database, study_id: str) -> Collected:
    with db.read() as s:
        ps = s.scalars(select(Participant).where(Participant.study_id == study_id).order_by(Participant.id)).all()
        qs = s.scalars(
            select(Question)
            .join(Participant, Question.participant_id == Participant.id)
            .where(Participant.study_id == study_id)
            .order_by(Question.participant_id, Question.position)
        ).all()
    by_p: dict[int, list[Question]] = {p.id: [] for p in ps}
    for q in qs:
        by_p[q.participant_id].append(q)
    return Collected(list(ps), by_p)


def image_name(study: LoadedStudy, rendition_id: int) -> str:
    """The dataset-relative path of a rendition in an export (``images/<scene>/<rendition>.jpg``)."""
    return study.renditions[rendition_id].file


def collected_judgments(study: LoadedStudy, data: Collected) -> tuple[list[Judgment], list[dict[str, Any]]]:
    """(decided answers as Judgments in answer order, undecided answers as dicts)."""
    judgments: list[Judgment] = []
    undecided: list[dict[str, Any]] = []
    for p in data.participants:
        answered = sorted(
            (q for q in data.questions[p.id] if q.answer is not None), key=lambda q: (q.answered_at, q.position)
        )
        for q in answered:
            scene_id, a_id, b_id = served_pair(q.scene_id, q.rendition_a_id, q.rendition_b_id)
            common: dict[str, Any] = {  # the pairs-format record, in judgments.jsonl's field order
                "user": p.user,
                "scene": study.scenes[scene_id].key,
                "image_a": image_name(study, a_id),
                "image_b": image_name(study, b_id),
                "kind": q.kind,
                "response_ms": q.response_ms,
                "person": p.person,
                "device": p.device,
                "time": iso(q.answered_at),
            }
            if q.answer in ("a", "b"):
                judgments.append(Judgment(preferred=q.answer, **common))
            else:
                undecided.append({**{k: v for k, v in common.items() if v is not None}, "answer": "undecided"})
    return judgments, undecided


def rt_histogram(times: list[int]) -> list[dict[str, Any]]:
    """Counts of response times per :data:`RT_EDGES` bin: ``[{"lo", "hi" (None: open), "count"}]``."""
    highs: tuple[int | None, ...] = (*RT_EDGES[1:], None)
    counts = [0] * len(RT_EDGES)
    for t in times:
        for i, hi in enumerate(highs):
            if hi is None or t < hi:
                counts[i] += 1
                break
    return [{"lo": lo, "hi": hi, "count": n} for lo, hi, n in zip(RT_EDGES, highs, counts, strict=True)]


def study_stats(study: LoadedStudy, db: Database) -> dict[str, Any]:
    """Everything the study's admin page shows, JSON-able."""
    from prefstyle.data.filters import FilterConfig, filter_users
    from prefstyle.data.pairs import PairsDataset

    data = collect(db, study.id)
    by_id = {q.id: q for qs in data.questions.values() for q in qs}
    per: list[dict[str, Any]] = []
    all_times: list[int] = []
    agree_total = matched_total = 0
    for p in data.participants:
        qs = data.questions[p.id]
        answered = [q for q in qs if q.answer is not None]
        times = [q.response_ms for q in answered if q.response_ms is not None]
        all_times += times
        agree = matched = 0
        for q in answered:
            if q.kind == "consistency" and q.answer in ("a", "b") and q.repeat_of_id in by_id:
                orig = by_id[q.repeat_of_id]
                if orig.answer in ("a", "b"):
                    matched += 1
                    chosen = q.rendition_a_id if q.answer == "a" else q.rendition_b_id
                    agree += chosen == (orig.rendition_a_id if orig.answer == "a" else orig.rendition_b_id)
        agree_total += agree
        matched_total += matched
        per.append(
            {
                "id": p.id,
                "user": p.user,
                "answered": len(answered),
                "total": len(qs),
                "undecided": sum(q.answer == "undecided" for q in answered),
                "consistency_matched": matched,
                "consistency_agreed": agree,
                "consistency_rate": agree / matched if matched else None,
                "median_response_ms": statistics.median(times) if times else None,
                "calibration": json.loads(p.calibration_json) if p.calibration_json else None,
                "joined": iso(p.created_at),
                "finished": iso(p.finished_at) if len(answered) == len(qs) and qs else None,
            }
        )
    judgments, undecided = collected_judgments(study, data)
    flagged: dict[str, list[dict[str, str]]] = {}
    notes: dict[str, list[str]] = {}
    if judgments:
        cfg = FilterConfig(expected_main=study.cfg.main, expected_consistency=study.cfg.consistency)
        _, report = filter_users(PairsDataset(study.folder, judgments), cfg)
        for u in report.users:
            if u.reasons:
                flagged[u.user] = [{"code": r.code, "message": r.message} for r in u.reasons]
            notes[u.user] = list(u.notes)
    for row in per:
        row["flags"] = flagged.get(row["user"], [])
    return {
        "study": study.id,
        "title": study.cfg.title,
        "participants": len(per),
        "calibrated": sum(p.calibrated_at is not None for p in data.participants),
        "started": sum(r["answered"] > 0 for r in per),
        "finished": sum(r["finished"] is not None for r in per),
        "answers": sum(r["answered"] for r in per),
        "judgments": len(judgments),
        "undecided": len(undecided),
        "consistency": {
            "matched": matched_total,
            "agreed": agree_total,
            "rate": agree_total / matched_total if matched_total else None,
        },
        "response_ms": {
            "count": len(all_times),
            "median": statistics.median(all_times) if all_times else None,
            "histogram": rt_histogram(all_times),
        },
        "flagged": sorted(flagged),
        "per_participant": per,
    }


def histogram_svg_bars(hist: list[dict[str, Any]], width: int = 560, height: int = 160) -> list[dict[str, Any]]:
    """Bar geometry for the admin page's inline SVG: x, y, w, h, label, count."""
    n = len(hist)
    top = max((b["count"] for b in hist), default=0) or 1
    bw = width / n
    bars = []
    for i, b in enumerate(hist):
        h = round((height - 20) * b["count"] / top, 1)
        label = f"{b['lo'] / 1000:g}s+" if b["hi"] is None else f"<{b['hi'] / 1000:g}s"
        bars.append(
            {
                "x": round(i * bw + 2, 1),
                "y": round(height - 20 - h, 1),
                "w": round(bw - 4, 1),
                "h": h,
                "label": label,
                "count": b["count"],
                "tx": round(i * bw + bw / 2, 1),
            }
        )
    return bars
