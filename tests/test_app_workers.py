"""``prefstyle serve --workers N``: several server processes on one database, any of them serving
any request; per-process caches (active sampling's evidence, rendered styles) stay correct when
another process stored the answer."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest
import yaml

from app.helpers import ServerProcess, answer_payload, open_state

SID = "wk"


def study_dict(sampling: str, model: str) -> dict:
    return {
        "id": SID,
        "questions": {"main": 8, "consistency": 2, "style_after": 4},
        "heldout": 1,
        "images": {"size": 64},
        "sampling": sampling,
        "model": model,
        "source": {"kind": "simulator", "scenes": 3, "renditions": 4, "seed": 3},
    }


def fresh_connection_client(base: str, cookies=None) -> httpx.Client:
    """No keep-alive: every request opens a new connection, so the kernel spreads them over the workers."""
    return httpx.Client(base_url=base, timeout=60, cookies=cookies, limits=httpx.Limits(max_keepalive_connections=0))


def run_participant(base: str, i: int, think: bool = False) -> tuple[httpx.Cookies, dict[int, str]]:
    """Answer the whole study; ``think``: pause after each answer (longer after the first, while the
    workers' ranking helpers start), as people do, so rankings made ahead can be ready."""
    c = fresh_connection_client(base)
    r = c.post(f"/s/{SID}/join", data={"person": f"W{i}", "device": "laptop", "consent": "yes"})
    assert r.status_code == 303, r.text
    assert c.post(f"/s/{SID}/calibrate", data={"dark_steps": "9", "light_steps": "9"}).status_code == 303
    acked: dict[int, str] = {}
    d = c.get(f"/s/{SID}/api/question").json()
    while not d["done"]:
        q = d["question"]
        choice = "a" if (q["position"] + i) % 3 else "b"
        r = c.post(f"/s/{SID}/api/answer", json=answer_payload(q, choice))
        assert r.status_code == 200, r.text
        acked[q["id"]] = choice
        d = r.json()
        if think:
            time.sleep(8.0 if len(acked) == 1 else 0.3)
    return c.cookies, acked


@pytest.mark.slow
def test_two_worker_processes_on_sqlite(tmp_path):
    from prefstyle.train.loading import DEFAULT_MODEL, packaged_models

    active = DEFAULT_MODEL in packaged_models()  # the packaged default ranks questions
    study = study_dict("active" if active else "balanced", "default" if active else "nearest-preferred")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    db_url = f"sqlite:///{tmp_path / 'app.db'}"
    server = ServerProcess(
        tmp_path / "study.yaml", db_url, tmp_path / "data", tmp_path / "server.log", extra=("--workers", "2")
    )
    try:
        server.wait_ready(timeout=180)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda i: run_participant(server.url, i, think=active), range(3)))
        # every participant's style, rendered by whichever process was asked, served by any
        for cookies, _ in results:
            c = fresh_connection_client(server.url, cookies)
            for _ in range(600):
                d = c.get(f"/s/{SID}/api/style").json()
                assert d["state"] != "failed", d
                if d["ready"]:
                    break
                time.sleep(0.2)
            assert d["ready"]
            assert all('id="heldout"' in c.get(f"/s/{SID}/style").text for _ in range(4))
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert log.count("Started server process") >= 2, log[-2000:]

    # stored = acknowledged, and (active sampling) each pair is the one the model ranks first given
    # the answers before it, whichever process stored those, or the planned one (a ranking not
    # ready in time, or made by the other process: app/active.py), never another
    st = open_state(tmp_path, study, db_url=db_url)
    try:
        from prefstyle.app.models import Participant, Question

        with st.db.read() as s:
            rows = (
                s.query(Participant.person, Question)
                .join(Question, Question.participant_id == Participant.id)
                .order_by(Participant.id, Question.position)
                .all()
            )
        stored: dict[str, dict[int, str]] = {}
        for person, q in rows:
            if q.answer is not None:
                stored.setdefault(person, {})[q.id] = q.answer
        assert stored == {f"W{i}": acked for i, (_, acked) in enumerate(results)}
        if active:
            import dataclasses

            from prefstyle.app.active import _image, _references
            from prefstyle.app.study import plan_questions

            s_ = st.studies[SID]
            model = s_.model()
            with st.db.read() as s:
                seeds = {p.person: p.seed for p in s.query(Participant)}
            by_person: dict[str, list] = {}
            for person, q in rows:
                by_person.setdefault(person, []).append(q)
            chosen = 0
            for person, qs in by_person.items():
                plan = plan_questions(s_.question_scenes, s_.cfg.main, s_.cfg.consistency, "active", seeds[person])
                decided: list[tuple[int, int, int, str]] = []
                for q in qs:
                    if q.kind != "main":
                        continue
                    scene, ka, kb = plan[q.position].pair()
                    planned = (s_.rendition_by_key[(scene, ka)].id, s_.rendition_by_key[(scene, kb)].id)
                    rends = list(s_.scenes[q.scene_id].renditions)
                    values = model.question_values(
                        [dataclasses.replace(r, key=None) for r in _references(s_, decided)],
                        [(_image(s_.source_path(q.scene_id)), [_image(s_.rendition_path(r)) for r in rends])],
                    )[0]
                    best = max(float(values[i, j]) for i in range(len(rends)) for j in range(i + 1, len(rends)))
                    value = float(values[rends.index(q.rendition_a_id), rends.index(q.rendition_b_id)])
                    is_best = value == pytest.approx(best, rel=1e-5)
                    assert is_best or (q.rendition_a_id, q.rendition_b_id) == planned, (person, q.position)
                    chosen += is_best and (q.rendition_a_id, q.rendition_b_id) != planned
                    if q.answer in ("a", "b"):
                        decided.append((q.scene_id, q.rendition_a_id, q.rendition_b_id, q.answer))
            assert chosen > 0  # the helper processes ranked some questions in time
    finally:
        st.db.dispose()
