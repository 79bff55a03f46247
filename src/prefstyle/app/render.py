"""Bounded background rendering: participants' styles, LUTs and uploads never hold a request.

The heavy work of "your style" (personalizing, retouching photos, exporting a ``.cube``,
decoding uploads) runs in a :class:`RenderQueue`: a small pool of worker *processes* (``spawn``;
``render_workers`` per server process, default 1) fed by a bounded queue (``render_queue`` jobs,
more are refused with :class:`Busy`). Pages submit a job and answer at once; the browser polls
``/s/<study>/api/style`` (:func:`style_status`) until the files exist. Results live on disk
(:mod:`prefstyle.app.personal`), so another server process serves what this one rendered, and
the server itself never holds full-size images: its memory stays that of a web server. Render
processes run at a lower CPU priority (``nice`` +10), so where CPU is short answers get it first. Each
worker process is replaced after :data:`MAX_TASKS_PER_CHILD` jobs, so memory that the image
code does not give back to the system is released too. A job for the same thing already
queued or running is not queued twice; a queued job for an older version of the same
participant's style is cancelled when a newer one is asked for.

``mode="thread"`` runs the same jobs on background threads of this process (tests).
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import threading
import time
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from prefstyle.app.db import Database
from prefstyle.app.flow import FlowError

if TYPE_CHECKING:
    from prefstyle.app.models import Participant
    from prefstyle.app.state import LoadedStudy

log = logging.getLogger("prefstyle.app")
MAX_TASKS_PER_CHILD = 200
#: render processes run at this lower CPU priority (``nice``): an answer never waits for CPU a render holds
RENDER_NICE = 10
#: a render process's name in ``ps`` and ``top``
RENDER_PROCESS_NAME = "render-helper"
FAILED_TTL_S = 30.0

# --------------------------------------------------------------------------------------------
# worker side
# --------------------------------------------------------------------------------------------

_WORKER_STUDIES: dict[tuple[str, str, str, str], LoadedStudy] = {}


def _init_worker(threads: int) -> None:
    import os

    from prefstyle.app.helper_process import become_helper

    become_helper(RENDER_NICE, RENDER_PROCESS_NAME)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _study_here(study: LoadedStudy) -> LoadedStudy:
    """The worker's copy of ``study`` (its model loaded once per worker process, reused by later jobs)."""
    key = (study.id, str(study.folder), study.cfg.catalog_hash(), study.cfg.model)
    return _WORKER_STUDIES.setdefault(key, study)


def _call(fn_name: str, *args: Any) -> Any:
    from prefstyle.app import personal

    if fn_name == "warm":  # import torch and load the studies' models now: the first real job then starts at once
        for study in args:
            _study_here(study).model()
        return None
    if args and hasattr(args[0], "cfg"):
        args = (_study_here(args[0]), *args[1:])
    return getattr(personal, fn_name)(*args)


# --------------------------------------------------------------------------------------------
# server side
# --------------------------------------------------------------------------------------------


class Busy(Exception):
    """The render queue is full: the caller answers "busy, try again"."""


class RenderQueue:
    """A bounded queue of render jobs (module docstring). Thread-safe; ``submit`` never blocks."""

    def __init__(self, workers: int = 1, mode: str = "process", max_queue: int = 64, threads: int = 1):
        if mode not in ("process", "thread"):
            raise ValueError(f"render mode must be process or thread, got {mode!r}")
        self.workers, self.mode, self.max_queue, self.threads = max(1, workers), mode, max(1, max_queue), threads
        self._lock = threading.Lock()
        self._jobs: dict[Hashable, tuple[cf.Future, Hashable | None]] = {}
        self._failed: dict[Hashable, tuple[float, str]] = {}
        self._executor: cf.Executor | None = None

    def _pool(self) -> cf.Executor:
        if self._executor is None:
            if self.mode == "process":
                import multiprocessing

                self._executor = cf.ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(self.threads,),
                    max_tasks_per_child=MAX_TASKS_PER_CHILD,
                )
            else:
                self._executor = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="prefstyle-render")
        return self._executor

    def submit(self, key: Hashable, fn_name: str, *args: Any, group: Hashable | None = None) -> cf.Future:
        """Queue ``personal.<fn_name>(*args)`` under ``key`` (or return the job already under it).

        ``group``: queued (not yet running) jobs of the same group under another key are cancelled
        (an older version of the same participant's style). Raises :class:`Busy` when full.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                return job[0]
            if group is not None:
                for k, (f, g) in list(self._jobs.items()):
                    if g == group and f.cancel():
                        self._jobs.pop(k, None)
            if len(self._jobs) >= self.max_queue:
                raise Busy
            self._failed.pop(key, None)
            try:
                fut = self._pool().submit(_call, fn_name, *args)
            except cf.BrokenExecutor:  # a worker died (killed, out of memory): start a fresh pool
                log.warning("render workers were lost; starting new ones")
                self._executor = None
                fut = self._pool().submit(_call, fn_name, *args)
            self._jobs[key] = (fut, group)
        fut.add_done_callback(functools.partial(self._done, key))
        return fut

    def call(self, fn_name: str, *args: Any) -> cf.Future:
        """``personal.<fn_name>(*args)`` in a worker, untracked: no key, no queue limit, a failure not
        logged (the caller reads it from the future; start-up's model check)."""
        with self._lock:
            return self._pool().submit(_call, fn_name, *args)

    def _done(self, key: Hashable, fut: cf.Future) -> None:
        with self._lock:
            if self._jobs.get(key, (None,))[0] is fut:
                self._jobs.pop(key, None)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is None:
                return
            if isinstance(exc, cf.BrokenExecutor):  # a worker died: the next look starts a fresh pool and retries
                log.warning("render job %s lost with its worker process", key)
                if self._executor is not None and getattr(self._executor, "_broken", False):
                    self._executor = None
                return
            if isinstance(exc, FlowError):
                self._failed[key] = (time.monotonic(), exc.message)
            else:
                self._failed[key] = (time.monotonic(), "rendering failed; reload the page to try again")
                log.error("render job %s failed: %s: %s", key, type(exc).__name__, exc)
            while len(self._failed) > 1000:
                self._failed.pop(next(iter(self._failed)))

    def state(self, key: Hashable) -> tuple[str | None, str | None]:
        """``("queued"|"rendering"|"failed"|None, message)`` of the job under ``key``."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                return ("rendering" if job[0].running() else "queued"), None
            failed = self._failed.get(key)
            if failed is not None:
                if time.monotonic() - failed[0] < FAILED_TTL_S:
                    return "failed", failed[1]
                self._failed.pop(key, None)
        return None, None

    def waiting(self) -> int:
        """Jobs queued or running in this server process."""
        with self._lock:
            return len(self._jobs)

    def warm(self, studies: Sequence[LoadedStudy] = ()) -> None:
        """Start a worker now and load the studies' models in it (importing torch takes seconds), so
        the first style is not slower than the next."""
        try:
            self.submit(("warm",), "warm", *studies)
        except Busy:
            pass

    def shutdown(self) -> None:
        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------------------------
# what a participant's style page needs
# --------------------------------------------------------------------------------------------

STATE_TEXT = {
    "queued": "Waiting for its turn to be rendered…",
    "rendering": "Retouching your photos in your taste…",
    "busy": "Many people are looking at their style right now: yours is next in line…",
    "ready": "Ready.",
}


def _try(queue: RenderQueue, key: Hashable, fn: str, *args: Any, group: Hashable | None = None) -> str:
    """Submit unless it failed a moment ago; the job's state ("queued", "rendering", "busy", "failed")."""
    st, _ = queue.state(key)
    if st == "failed":
        return st
    try:
        queue.submit(key, fn, *args, group=group)
    except Busy:
        return "busy"
    st, _ = queue.state(key)
    return st or "rendering"  # None: finished between the two looks


def style_status(
    db: Database, queue: RenderQueue, study: LoadedStudy, participant: Participant, want_lut: bool = False
) -> dict[str, Any]:
    """Where the participant's style stands, submitting what is missing (never waits for rendering).

    Returns ``{"ready", "state", "message", "version", "style_ready", "uploads_pending",
    "lut_ready", "waiting"}``: ``ready`` when the style (and its uploads, and the LUT when
    ``want_lut``) are on disk for the participant's current decided answers.
    """
    from prefstyle.app import flow, personal

    pid = participant.id
    prog = flow.progress(db, study, pid)
    out: dict[str, Any] = {
        "ready": False,
        "style_ready": False,
        "uploads_pending": 0,
        "lut_ready": False,
        "waiting": queue.waiting(),
        "message": None,
    }
    if not prog.style_ready:
        out.update(state="not_ready", version=0, needed=max(0, study.cfg.style_after - prog.decided_main))
        return out
    from prefstyle.app.catalog import mark_owner

    mark_owner(personal.participant_dir(study, pid), participant.token_hash)
    version = prog.decided_main  # the decided main answers: what the style is learned from
    result = personal.style_result(study, pid, version)
    out["version"] = version
    if not result.ready:
        key = (study.id, pid, "style", version)
        st, msg = queue.state(key)
        if st is None and personal.render_in_progress(study, pid, version):
            st = "rendering"  # by another server process's render worker: poll until its files appear
        if st not in ("queued", "rendering", "failed"):  # only now read the answers themselves (a poll costs one query)
            answers = personal.decided_mains(db, pid)
            version = len(answers)
            key = (study.id, pid, "style", version)
            out["version"] = version
            st = _try(queue, key, "build_style", study, participant.user, pid, answers, group=(study.id, pid))
            msg = queue.state(key)[1] if st == "failed" else None
        out["state"], out["message"] = st, msg
        return out
    out["style_ready"] = True
    states = []
    for u in personal.uploads_of(db, pid):
        if (result.folder.parent / personal.upload_name(result, u.key)).is_file():
            continue
        if not personal.upload_source(study, pid, u.key).is_file():
            continue  # shown as gone, never rendered
        out["uploads_pending"] += 1
        states.append(
            _try(queue, (study.id, pid, "upload", version, u.key), "build_upload", study, pid, version, u.key)
        )
    lut_missing = want_lut and personal.lut_available() and not (result.folder / "style.cube").is_file()
    out["lut_ready"] = personal.lut_available() and (result.folder / "style.cube").is_file()
    if lut_missing:
        states.append(_try(queue, (study.id, pid, "lut", version), "build_lut", study, pid, version))
    if not states:
        out.update(ready=True, state="ready")
        return out
    if "failed" in states:
        out["state"] = "failed"
        out["message"] = "some of your photos could not be retouched; reload the page to try again"
    else:
        out["state"] = "rendering" if "rendering" in states else ("queued" if "queued" in states else "busy")
    return out
