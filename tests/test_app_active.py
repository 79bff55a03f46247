"""`sampling: active` off the request path (app/active.py): rankings computed ahead, keyed by the
exact evidence, and a ranking that is not ready never holds an answer up."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from app.helpers import client_for, folder_study, join, open_state

import prefstyle.app.active as active


@pytest.fixture()
def ranker(monkeypatch):
    """A fresh ranking thread and cache for each test."""
    r = active._Ranker()
    monkeypatch.setattr(active, "_RANKER", r)
    monkeypatch.setattr(active, "MODE", "thread")  # no helper process in tests
    return r


def _idle(r: active._Ranker, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with r._cv:
            if not r._queue and r._running is None:
                return
        time.sleep(0.01)
    raise AssertionError("ranker still busy")


def _run(st, sid: str, think) -> list:
    """Answer every question (choices varied); ``think()`` runs before each answer."""
    from prefstyle.app.models import Question

    c = client_for(st)
    join(c, sid, person="Ava")
    d = c.get(f"/s/{sid}/api/question").json()
    while not d["done"]:
        q = d["question"]
        think()
        choice = "a" if q["position"] % 3 else "b"
        payload = {"question_id": q["id"], "a": q["a"]["id"], "b": q["b"]["id"], "choice": choice}
        r = c.post(f"/s/{sid}/api/answer", json=payload)
        assert r.status_code == 200, r.text
        d = r.json()
    with st.db.read() as s:
        return [
            (q.kind, q.scene_id, q.rendition_a_id, q.rendition_b_id, q.answer)
            for q in s.query(Question).order_by(Question.position)
        ]


def _best_given_answers_before(study, rows) -> list[bool]:
    """For each main question: is its pair the one the model ranks first given the answers before it?"""
    from prefstyle.app.active import _image, _references

    model = study.model()
    decided: list[tuple[int, int, int, str]] = []
    out = []
    for kind, scene_id, a, b, ans in rows:
        if kind != "main":
            continue
        rends = list(study.scenes[scene_id].renditions)
        values = model.question_values(
            [dataclasses.replace(r, key=None) for r in _references(study, decided)],  # nothing from the ranker's cache
            [(_image(study.source_path(scene_id)), [_image(study.rendition_path(r)) for r in rends])],
        )[0]
        best = max(float(values[i, j]) for i in range(len(rends)) for j in range(i + 1, len(rends)))
        out.append(float(values[rends.index(a), rends.index(b)]) == pytest.approx(best, rel=1e-5))
        if ans in ("a", "b"):
            decided.append((scene_id, a, b, ans))
    return out


def _study(tmp_path):
    st = open_state(
        tmp_path,
        folder_study(
            tmp_path, sid="act", main=6, consistency=1, style_after=3, heldout=1, model="default", sampling="active"
        ),
    )
    study = st.studies["act"]
    if not hasattr(study.model(), "question_values") or study.model().question_values([], []) is None:
        st.db.dispose()
        pytest.skip("the default model cannot rank questions")
    return st, study


def test_rankings_made_ahead_during_think_time_are_the_ones_served(tmp_path, ranker, monkeypatch):
    """No waiting in the request at all (WAIT_S = 0): every main question after the first gets the
    model's first choice given the answers before it, ranked ahead for each possible answer
    (the keys match the stored evidence, sides swapped or not)."""
    monkeypatch.setattr(active, "WAIT_S", 0.0)
    st, study = _study(tmp_path)
    try:
        rows = _run(st, "act", think=lambda: _idle(ranker))
        best = _best_given_answers_before(study, rows)
        assert len(best) == 6 and all(best[1:]), best
        # the consistency question repeats an earlier decided main pair, sides swapped
        (rep,) = [r for r in rows if r[0] == "consistency"]
        assert any(r[0] == "main" and r[4] in ("a", "b") and (r[1], r[3], r[2]) == rep[1:4] for r in rows)
    finally:
        st.db.dispose()


def test_an_unready_ranking_never_holds_an_answer_up(tmp_path, ranker, monkeypatch):
    """A ranking that takes long: answers come back within the wait cap with the planned pairs."""
    release = threading.Event()

    def slow(study, evidence, scene_id):
        release.wait(30)
        return None

    monkeypatch.setattr(active, "_best_pair", slow)
    monkeypatch.setattr(active, "WAIT_S", 0.05)
    st, study = _study(tmp_path)
    try:
        times = []

        def clock():
            times.append(time.perf_counter())

        t0 = time.perf_counter()
        rows = _run(st, "act", think=clock)
        elapsed = time.perf_counter() - t0
        assert len(rows) == 7 and all(r[4] is not None for r in rows)
        assert elapsed < 5, elapsed  # seven answers, none waiting for the 30 s ranking
        with ranker._cv:
            assert len(ranker._queue) <= 3  # stale rankings dropped as the participant answered on
    finally:
        release.set()
        st.db.dispose()


def test_answers_are_keyed_by_the_images_they_show(tmp_path):
    """The model caches each answer's work under ``Reference.key``: the same answer gets the same
    key, the other choice of the same pair another one."""
    st, study = _study(tmp_path)
    try:
        scene_id = next(iter(study.scenes))
        a, b = list(study.scenes[scene_id].renditions)[:2]
        ka, kb, ka2 = (active._references(study, [(scene_id, a, b, c)])[0].key for c in ("a", "b", "a"))
        assert ka == ka2 and ka != kb and hash(ka) is not None
    finally:
        st.db.dispose()
