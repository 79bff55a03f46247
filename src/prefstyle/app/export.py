"""Export a study's collected judgments as a pairs-format dataset (FORMATS.md, section 1).

The folder written by :func:`export_study`::

    OUT/
      judgments.jsonl     decided answers (kind main/consistency, response_ms, person, device, time),
                          participant by participant, in answer order
      scenes.jsonl        the study's question scenes (source = its neutral rendition when it has one)
      dataset.json        format/version, name, study id, export time, counts
      images/<scene>/...  the images exactly as participants saw them
      undecided.jsonl     "can't decide" answers (same fields, "answer": "undecided", no "preferred");
                          not part of the pairs format, ignored by its readers
      participants.jsonl  one line per participant: user, person, device, calibration, joined, finished

``prefstyle data validate OUT`` accepts it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefstyle.app.db import Database
from prefstyle.app.state import LoadedStudy
from prefstyle.app.stats import collect, collected_judgments, iso
from prefstyle.data.pairs import Scene, write_pairs
from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_write_text


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    judgments: int
    undecided: int
    participants: int
    images: int


def _jsonl(rows: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def export_study(db: Database, study: LoadedStudy, out_dir: str | Path) -> ExportSummary:
    """Write the study's judgments into ``out_dir`` (created; must be empty if it exists)."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise PrefstyleError("export folder is not empty", path=out)
    data = collect(db, study.id)
    judgments, undecided = collected_judgments(study, data)
    used_scenes = {s.key: s for s in study.scenes.values() if s.role == "question"}
    files = {j.image_a for j in judgments} | {j.image_b for j in judgments}
    files |= {r["image_a"] for r in undecided} | {r["image_b"] for r in undecided}
    files |= {s.source_file for s in used_scenes.values() if s.source_file}
    out.mkdir(parents=True, exist_ok=True)
    for rel in sorted(files):
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(study.folder / rel, dst)
    scenes = [
        Scene(scene=s.key, source=s.source_file, origin=s.origin, content=s.content)
        for s in sorted(used_scenes.values(), key=lambda s: s.id)
    ]
    meta = {
        "name": study.cfg.title,
        "study": study.id,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "collected_with": "prefstyle serve",
        "participants": len(data.participants),
        "judgments": len(judgments),
        "undecided": len(undecided),
        "undecided_file": "undecided.jsonl",
        "participants_file": "participants.jsonl",
    }
    write_pairs(out, judgments, scenes=scenes, meta=meta)
    atomic_write_text(out / "undecided.jsonl", _jsonl(undecided))
    people = []
    for p in data.participants:
        qs = data.questions[p.id]
        people.append(
            {
                "user": p.user,
                "person": p.person,
                "device": p.device,
                "calibration": json.loads(p.calibration_json) if p.calibration_json else None,
                "joined": iso(p.created_at),
                "answered": sum(q.answer is not None for q in qs),
                "questions": len(qs),
                "finished": iso(p.finished_at),
            }
        )
    atomic_write_text(out / "participants.jsonl", _jsonl(people))
    return ExportSummary(out, len(judgments), len(undecided), len(people), len(files))


def export_zip(db: Database, study: LoadedStudy, zip_path: str | Path) -> ExportSummary:
    """:func:`export_study` into a temporary folder, zipped into ``zip_path`` (folder ``<study>/`` inside)."""
    from prefstyle.fsutil import atomic_path

    with tempfile.TemporaryDirectory(prefix="prefstyle-export-") as tmp:
        summary = export_study(db, study, Path(tmp) / study.id)
        with atomic_path(zip_path) as part, zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(summary.path.rglob("*")):
                if f.is_file():
                    z.write(f, f"{study.id}/{f.relative_to(summary.path).as_posix()}")
    return ExportSummary(Path(zip_path), summary.judgments, summary.undecided, summary.participants, summary.images)
