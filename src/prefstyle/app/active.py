"""``sampling: active``: ask the pair whose answer is expected to say most about the participant.

The plan (:func:`~prefstyle.app.study.plan_questions`) fixes which scene each main question
shows, as ``balanced`` does. The study's model ranks every pair of that scene's renditions by
the expected information gain of its answer, given the participant's decided answers before it
(``question_values``: a posterior over the taste, 3-12 ms of CPU with the packaged models once
the earlier answers' evidence is cached under their ``Reference.key``; a scene's first ranking ~100 ms);
the best pair replaces the planned one, sides seeded by the participant. A model whose
``question_values`` returns None keeps the plan.

The ranking is kept off the request path (issue 19: answer -> next pair under 100 ms with 100
participants on two cores, where ranking every answer in the request cost seconds of queueing):

* **ahead of time**: when a main question is served, the participant's next main question is
  ranked for each answer they can give to this one (``a``, ``b``, and "undecided" where
  allowed), during their think time, by one helper process per server process (:data:`MODE`;
  ``nice`` +10, so where CPU is short answers get it first; the server process itself never
  loads the model). The answer's request then finds the ranking ready (:func:`suggest_pair`,
  keyed by the scene and the exact evidence: the decided answers' scenes, pairs and choices,
  so participants who answered alike share rankings).
* **capped**: a ranking that is not ready is waited for at most :data:`WAIT_S` seconds; then the
  planned pair is served. The thread ranks the newest requests first, drops a participant's
  queued rankings once they answered on, and keeps at most :data:`MAX_QUEUED`; under more load
  than the CPU can rank, fewer questions are chosen actively, none is served late.

So the pair served is either the one the model ranks first given the answers before it, or the
planned one; never another. Rankings and decoded thumbnails (keyed by file; the files never
change) are kept per process, so with several server processes a participant whose answers go to
another process than the one that ranked ahead gets the planned pair for that question.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util  # noqa: F401 - registers its exit hook before _EXITING's (below)
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefstyle.app import question_rows
from prefstyle.app.db import Database
from prefstyle.app.models import decided_answer, served_pair
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


#: longest a request waits for a ranking that is not ready (then the planned pair is served)
WAIT_S = 0.05
#: rankings queued per process at most (the oldest are dropped first)
MAX_QUEUED = 256
#: rankings kept per process (results for the answers participants may still give)
MAX_KEPT = 8192
#: ``"process"``: rankings run in one helper process per server process, at ``nice`` +10 (the
#: server process never loads the model, and where CPU is short answers get it first);
#: ``"thread"``: on the ranking thread itself (tests)
MODE = "process"
RANK_NICE = 10
#: the ranking process's name in ``ps`` and ``top``
RANK_PROCESS_NAME = "ranking-helper"

Evidence = tuple[tuple[int, int, int, str], ...]  # (scene id, rendition a, rendition b, "a"|"b") in order
#: what a ranking depends on: (study, scene asked about, evidence); the same for every
#: participant who gave those answers (first questions are shared)
Key = tuple[str, int, Evidence]
_NOT_READY = object()


class _Ranker:
    """One daemon thread ranking questions ahead; results kept by :data:`Key` (LRU).

    Queued work is newest-first: the participant who answered last is the one whose next answer
    comes last. Each queued ranking records the participants waiting for it; one that nobody
    waits for any more (they answered on) is dropped, not computed.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._queue: OrderedDict[Key, tuple[LoadedStudy, set[int]]] = OrderedDict()
        self._done: OrderedDict[Key, tuple[int, int] | None] = OrderedDict()
        self._running: Key | None = None
        self._thread: threading.Thread | None = None
        self._helper: _Helper | None = None  # used by the ranking thread only

    def result(self, key: Key) -> Any:
        """The ranking for ``key`` if computed, else :data:`_NOT_READY`."""
        with self._cv:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
            return _NOT_READY

    def submit(self, key: Key, study: LoadedStudy, participant_id: int) -> None:
        """Queue the ranking ``key`` of ``study`` (newest first) unless computed or running."""
        with self._cv:
            if key in self._done or key == self._running:
                return
            _, waiting = self._queue.get(key, (study, set()))
            self._queue[key] = (study, waiting | {participant_id})
            self._queue.move_to_end(key)
            while len(self._queue) > MAX_QUEUED:
                self._queue.popitem(last=False)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="prefstyle-active-ranker", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def wait(self, key: Key, timeout: float) -> Any:
        """The ranking for ``key`` once computed, or :data:`_NOT_READY` after ``timeout`` seconds,
        or at once when it is neither running nor next with the helper idle (it would not be done in time)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            if key not in self._done and key != self._running and not (self._running is None and len(self._queue) <= 1):
                return _NOT_READY
            while key not in self._done:
                left = deadline - time.monotonic()
                if left <= 0 or (key not in self._queue and key != self._running):
                    return _NOT_READY
                self._cv.wait(left)
            return self._done[key]

    def drop(self, study_id: str, participant_id: int, keep: set[Key]) -> None:
        """The participant no longer waits for their queued rankings other than ``keep``."""
        with self._cv:
            for k in [k for k in self._queue if k[0] == study_id and k not in keep]:
                study, waiting = self._queue[k]
                if participant_id in waiting:
                    waiting = waiting - {participant_id}
                    if waiting:
                        self._queue[k] = (study, waiting)
                    else:
                        del self._queue[k]

    def _rank(self, study: LoadedStudy, key: Key) -> tuple[int, int] | None:
        if MODE == "thread":
            return _best_pair(study, key[2], key[1])
        if _EXITING.is_set():  # no new helper while the interpreter exits
            return None
        if self._helper is None:
            self._helper = _Helper()
        try:
            return self._helper.rank(study, key[2], key[1])
        except (EOFError, OSError):  # the helper died (killed, out of memory): a new one next time
            self._helper = None
            if _EXITING.is_set():  # ended by the interpreter's exit: nothing to rank for, nothing to report
                return None
            raise

    def _work(self) -> None:
        if MODE == "thread":
            import torch

            torch.set_num_threads(1)  # small tensors; the server's requests need the other core
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                key, (study, _) = self._queue.popitem(last=True)
                self._running = key
            try:
                value = self._rank(study, key)
            except Exception:  # the ranking is an optimisation: the planned pair is served instead
                logging.getLogger("prefstyle.app").exception("active sampling: ranking failed")
                value = None
            with self._cv:
                self._running = None
                self._done[key] = value
                while len(self._done) > MAX_KEPT:
                    self._done.popitem(last=False)
                self._cv.notify_all()


StudyKey = tuple[str, str, str, str]
#: set when the interpreter exits: registered after multiprocessing's own exit hook (imported
#: above), so it runs first (LIFO), before that hook ends the helper under a ranking in flight
_EXITING = threading.Event()
atexit.register(_EXITING.set)


def _study_key(study: LoadedStudy) -> StudyKey:
    return (study.id, str(study.folder), study.cfg.catalog_hash(), study.cfg.model)


class _Helper:
    """The ranking process (``spawn``), fed one ranking at a time over a pipe by the ranking thread.

    A study is sent once; after that a request is its key, the evidence and the scene (a few
    hundred bytes), and nothing else in the server process wakes up for it (a process pool
    would add a feeder and a manager thread per server process, competing for the GIL with the
    requests). The process ends with the server process (``daemon``; ``PR_SET_PDEATHSIG``
    for ``kill -9``).
    """

    def __init__(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_helper_main, args=(child,), name="prefstyle-active-ranker", daemon=True)
        self.proc.start()
        child.close()
        self.sent: set[StudyKey] = set()

    def rank(self, study: LoadedStudy, evidence: Evidence, scene_id: int) -> tuple[int, int] | None:
        """:func:`_best_pair` in the helper; EOFError / OSError when the helper is gone."""
        skey = _study_key(study)
        self.conn.send((skey, None if skey in self.sent else study, evidence, scene_id))
        self.sent.add(skey)
        ok, value = self.conn.recv()
        if not ok:
            raise RuntimeError(f"ranking failed in the helper process: {value}")
        return value


def _helper_main(conn: Any) -> None:
    """The helper process: rank what arrives until the server process closes the pipe."""
    _init_ranker()
    studies: dict[StudyKey, LoadedStudy] = {}
    while True:
        try:
            skey, study, evidence, scene_id = conn.recv()
        except (EOFError, OSError):
            return
        if study is not None:
            studies[skey] = study
        try:
            conn.send((True, _best_pair(studies[skey], evidence, scene_id)))
        except Exception as e:  # noqa: BLE001 - sent to the server, which logs it and serves the planned pair
            conn.send((False, f"{type(e).__name__}: {e}"))


_RANKER = _Ranker()


def _init_ranker() -> None:
    from prefstyle.app.helper_process import become_helper

    become_helper(RANK_NICE, RANK_PROCESS_NAME)
    import torch

    torch.set_num_threads(1)


def _best_pair(study: LoadedStudy, evidence: Evidence, scene_id: int) -> tuple[int, int] | None:
    """Rendition ids ``(a, b)`` of the pair of ``scene_id`` the model ranks first given ``evidence``,
    or None (the model cannot rank, the scene has no source or fewer than three renditions)."""
    rends = list(study.scenes[scene_id].renditions)
    if len(rends) < 3:
        return None
    source_path = study.source_path(scene_id)
    if source_path is None:
        return None
    ranked = study.model().question_values(
        _references(study, list(evidence)),
        [(_image(source_path), [_image(study.required_rendition_path(r)) for r in rends])],
    )
    if ranked is None:  # the model cannot rank questions: the plan stands
        return None
    values = ranked[0]
    i, j = max(combinations(range(len(rends)), 2), key=lambda ij: float(values[ij[0], ij[1]]))
    return rends[i], rends[j]


def suggest_pair(
    db: Database, study: LoadedStudy, participant_id: int, pending: tuple[int, str] | None = None
) -> tuple[int, int, int] | None:
    """``(question id, rendition a, rendition b)`` for the participant's next unserved main question.

    ``pending``: ``(question id, choice)`` of an answer about to be stored in the same request;
    it counts as decided, and the suggestion is for the question after it. None when the study
    does not sample actively, the next question is not an unserved main one, its scene has a
    single pair, the model cannot rank questions, or the ranking was not ready within
    :data:`WAIT_S` (module docstring). Also queues the rankings of the main question after it.
    """
    if study.cfg.sampling != "active":
        return None
    with db.read() as s:
        conn = s.connection()
        qs = question_rows.questions(conn, participant_id)
        upcoming = [r for r in qs if r.answer is None and (pending is None or r.id != pending[0])]
        if not upcoming or upcoming[0].kind != "main" or upcoming[0].served_at is not None:
            return None
        seed = question_rows.seed(conn, participant_id)
    q = upcoming[0]
    scene_id, planned_a, planned_b = served_pair(q.scene_id, q.rendition_a_id, q.rendition_b_id)
    answers = []
    for r in qs:
        if r.kind != "main" or r.rendition_a_id is None:
            continue
        ans = pending[1] if pending is not None and r.id == pending[0] and r.answer is None else r.answer
        if ans in ("a", "b"):
            answers.append(decided_answer(r.scene_id, r.rendition_a_id, r.rendition_b_id, ans))
    evidence: Evidence = tuple(answers)
    key: Key = (study.id, scene_id, evidence)
    best = _RANKER.result(key)
    if best is _NOT_READY:
        _RANKER.submit(key, study, participant_id)
        best = _RANKER.wait(key, WAIT_S)
    pair = None
    if best is not _NOT_READY and best is not None:
        a, b = best
        if random.Random(int(seed or 0) * 7919 + q.id).random() < 0.5:
            a, b = b, a
        pair = (a, b)
    served = pair or (planned_a, planned_b)  # as stored by the transaction that serves it
    _rank_ahead(study, participant_id, evidence, scene_id, served, upcoming[1:])
    return None if pair is None else (q.id, *pair)


def _rank_ahead(
    study: LoadedStudy,
    participant_id: int,
    evidence: Evidence,
    scene_id: int,
    served: tuple[int, int],
    later: Sequence[Any],
) -> None:
    """Queue the rankings of the next main question in ``later`` for each answer to the one
    served now (``served`` pair of ``scene_id``; ``evidence``: the decided answers before it)."""
    nxt = next((r for r in later if r.kind == "main" and r.served_at is None and r.scene_id is not None), None)
    if nxt is None:
        _RANKER.drop(study.id, participant_id, set())
        return
    # queued newest-first: "undecided" (the rarest answer) goes in first, so it is ranked last
    outcomes = [evidence] if study.cfg.allow_undecided else []
    outcomes += [(*evidence, (scene_id, served[0], served[1], c)) for c in ("b", "a")]
    keys = [(study.id, int(nxt.scene_id), ev) for ev in outcomes]
    _RANKER.drop(study.id, participant_id, set(keys))
    for key in keys:
        _RANKER.submit(key, study, participant_id)


def _references(study: LoadedStudy, answers: list[tuple[int, int, int, str]]) -> list[Reference]:
    from prefstyle.models.base import Reference

    refs = []
    catalog = study.cfg.catalog_hash()  # the images behind the ids: the model caches per-answer work under the key
    for scene_id, a, b, ans in answers:
        pref, other = (a, b) if ans == "a" else (b, a)
        source = study.source_path(scene_id)
        refs.append(
            Reference(
                scene=study.scenes[scene_id].key,
                preferred=_image(study.required_rendition_path(pref)),
                other=_image(study.required_rendition_path(other)),
                source=None if source is None else _image(source),
                key=(study.id, catalog, scene_id, pref, other),
            )
        )
    return refs
