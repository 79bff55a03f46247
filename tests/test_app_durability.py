"""A server killed with SIGKILL mid-study loses no acknowledged answer; participants resume."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from app.helpers import ServerProcess, answer_payload, open_state
from prefstyle.app.db import Database
from prefstyle.app.models import Participant, Question

SID = "dur"
STUDY = {
    "id": SID,
    "questions": {"main": 30, "consistency": 4, "style_after": 4},
    "heldout": 1,
    "images": {"size": 64},
    "source": {"kind": "simulator", "scenes": 4, "renditions": 3, "seed": 1},
}


def joined_client(base: str, person: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=30)
    r = c.post(f"/s/{SID}/join", data={"person": person, "device": "laptop", "consent": "yes"})
    assert r.status_code == 303, r.text
    assert c.post(f"/s/{SID}/calibrate", data={"dark_steps": "9", "light_steps": "9"}).status_code == 303
    return c


def stored_answers(db_url: str) -> dict[str, dict[int, str]]:
    db = Database(db_url)
    try:
        with db.read() as s:
            rows = s.execute(
                Question.__table__.select()
                .with_only_columns(Participant.user, Question.id, Question.answer)
                .join_from(Question, Participant, Question.participant_id == Participant.id)
                .where(Question.answer.is_not(None))
            ).all()
    finally:
        db.dispose()
    out: dict[str, dict[int, str]] = {}
    for user, qid, ans in rows:
        out.setdefault(user, {})[qid] = ans
    return out


def test_sigkill_mid_study_loses_no_acknowledged_answer(tmp_path):
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(STUDY))
    db_url = f"sqlite:///{tmp_path / 'app.db'}"
    data_dir = tmp_path / "data"
    open_state(tmp_path, STUDY, db_url=db_url).db.dispose()  # render the images once, here

    server = ServerProcess(study_file, db_url, data_dir, tmp_path / "server.log")
    try:
        server.wait_ready()
        steady = joined_client(server.url, "Steady")
        acked: dict[str, dict[int, str]] = {"Steady@laptop": {}, "Busy@laptop": {}}
        data = steady.get(f"/s/{SID}/api/question").json()
        for k in range(5):
            q = data["question"]
            choice = "ab"[k % 2]
            r = steady.post(f"/s/{SID}/api/answer", json=answer_payload(q, choice))
            assert r.status_code == 200
            acked["Steady@laptop"][q["id"]] = choice
            data = r.json()
        steady_next = data["question"]

        busy = joined_client(server.url, "Busy")
        in_flight: list[dict] = []
        stop = threading.Event()

        def hammer():
            d = busy.get(f"/s/{SID}/api/question").json()
            while not stop.is_set() and not d["done"]:
                q = d["question"]
                in_flight[:] = [q]
                try:
                    r = busy.post(f"/s/{SID}/api/answer", json=answer_payload(q, "a", 10))
                except httpx.HTTPError:
                    return  # the server died under this request: it is unacknowledged
                if r.status_code != 200:
                    return
                acked["Busy@laptop"][q["id"]] = "a"
                d = r.json()

        t = threading.Thread(target=hammer)
        t.start()
        deadline = time.monotonic() + 20
        while len(acked["Busy@laptop"]) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()  # SIGKILL while answers are being sent
        stop.set()
        t.join(timeout=30)
        assert len(acked["Busy@laptop"]) >= 8
    finally:
        server.stop()

    stored = stored_answers(db_url)
    for user, answers in acked.items():
        for qid, choice in answers.items():
            assert stored[user].get(qid) == choice, f"{user}: acknowledged answer to question {qid} was lost"
    # at most the one request in flight was stored without being acknowledged
    assert len(stored["Busy@laptop"]) - len(acked["Busy@laptop"]) in (0, 1)

    server = ServerProcess(study_file, db_url, data_dir, tmp_path / "server.log")
    try:
        server.wait_ready()
        # the steady participant resumes exactly where they were, with the same pair
        d = httpx.get(f"{server.url}/s/{SID}/api/question", cookies=steady.cookies).json()
        assert d["question"] == steady_next and d["progress"]["answered"] == 5
        # the busy one resumes after their stored answers; re-sending the unacknowledged request is safe
        busy2 = httpx.Client(base_url=server.url, cookies=busy.cookies, timeout=30)
        d = busy2.get(f"/s/{SID}/api/question").json()
        assert d["progress"]["answered"] == len(stored["Busy@laptop"])
        if in_flight:
            r = busy2.post(f"/s/{SID}/api/answer", json=answer_payload(in_flight[0], "a", 10))
            assert r.status_code == 200  # stored now, or recognised as already stored
        d = busy2.get(f"/s/{SID}/api/question").json()
        while not d["done"]:
            r = busy2.post(f"/s/{SID}/api/answer", json=answer_payload(d["question"], "b", 10))
            assert r.status_code == 200
            d = r.json()
        assert d["progress"] == {"answered": 34, "total": 34, "style_ready": True, "finished": True}
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and stat[0] != "Z":
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _comm(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_helpers_end_with_a_server_killed_with_sigkill(tmp_path):
    """The render process and active sampling's ranking process, named so in ``ps``, end with their
    server process, even when it is killed with -9 (each would otherwise hold a model in memory for nothing)."""
    study = {**STUDY, "id": SID, "sampling": "active", "model": "default"}
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(study))
    db_url = f"sqlite:///{tmp_path / 'app.db'}"
    open_state(tmp_path, study, db_url=db_url).db.dispose()
    server = ServerProcess(study_file, db_url, tmp_path / "data", tmp_path / "server.log")
    try:
        server.wait_ready()
        c = joined_client(server.url, "Kay")
        q = c.get(f"/s/{SID}/api/question").json()["question"]  # queues rankings: the ranking process starts
        c.post(f"/s/{SID}/api/answer", json=answer_payload(q, "a"))
        deadline = time.monotonic() + 60
        while len(_children(server.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        helpers = _children(server.proc.pid)
        assert len(helpers) >= 2, helpers  # a render process and the ranking process (and a resource tracker)
        names: set[str] = set()
        while not {"render-helper", "ranking-helper"} <= names and time.monotonic() < deadline:
            names = {_comm(h) for h in _children(server.proc.pid)}  # what `ps` and `top` show
            time.sleep(0.1)
        assert {"render-helper", "ranking-helper"} <= names, names
        helpers = _children(server.proc.pid)
        os.kill(server.proc.pid, signal.SIGKILL)  # the server alone: no shutdown handler runs
        server.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(h) for h in helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [h for h in helpers if _alive(h)]
    finally:
        server.stop()
