"""The study app on a real PostgreSQL server, started on loopback by the tests.

Skipped (with the reason) where no PostgreSQL 15 server can be started: the binaries are
missing, or the tests do not run as root (the server runs as the ``postgres`` user).
"""

from __future__ import annotations

import concurrent.futures
import io
import zipfile

import pytest
import yaml
from app.helpers import (
    ADMIN,
    ServerProcess,
    answer_n,
    answer_payload,
    client_for,
    folder_study,
    fresh_database,
    join,
    open_state,
    postgres_server,
    wait_style,
)

SID = "pg"


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


def test_migrations_on_postgres_match_the_models(pg_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from prefstyle.app.db import Database
    from prefstyle.app.models import Base

    db = Database(fresh_database(pg_url, "migrations"))
    try:
        assert db.migrate() == "0001" and db.migrate() == "0001"
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        db.dispose()


def test_study_flow_concurrency_and_export_on_postgres(pg_url, tmp_path):
    from prefstyle.data.pairs import read_with_problems

    state = open_state(
        tmp_path,
        folder_study(tmp_path, sid=SID, main=10, consistency=2, style_after=4, heldout=1),
        db_url=fresh_database(pg_url, "flow"),
    )
    try:

        def participant(i: int) -> int:
            c = client_for(state)
            join(c, SID, person=f"P{i}", device="phone")
            return len(answer_n(c, SID, choose=lambda q: "ab"[q["position"] % 2], ms=1000 + i))

        # one participant first (FastAPI builds its request models lazily, and warns when threads race to
        # build them), then five at once
        assert participant(0) == 12
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            assert list(pool.map(participant, range(1, 6))) == [12] * 5

        c = client_for(state)
        join(c, SID, person="Solo", device="phone")
        q = c.get(f"/s/{SID}/api/question").json()["question"]
        assert c.post(f"/s/{SID}/api/answer", json=answer_payload(q, "undecided")).status_code == 200
        assert c.post(f"/s/{SID}/api/answer", json=answer_payload(q, "a")).status_code == 409
        answer_n(c, SID, 6)  # with up to 2 consistency items among them: at least 4 decided main answers
        wait_style(c, SID)
        assert 'id="heldout"' in c.get(f"/s/{SID}/style").text

        s = (
            client_for(state)
            .get(f"/admin/studies/{SID}/stats.json", headers={"Authorization": f"Bearer {ADMIN}"})
            .json()
        )
        assert s["participants"] == 7 and s["answers"] == 6 * 12 + 7 and s["undecided"] == 1
        r = client_for(state).get(f"/admin/studies/{SID}/export.zip", headers={"Authorization": f"Bearer {ADMIN}"})
        zipfile.ZipFile(io.BytesIO(r.content)).extractall(tmp_path / "export")
        ds, problems = read_with_problems(tmp_path / "export" / SID)
        assert [str(p) for p in problems] == [] and len(ds) == 6 * 12 + 6
    finally:
        state.db.dispose()


def test_sigkill_with_postgres(pg_url, tmp_path):
    """The durability test's core on PostgreSQL: acknowledged answers survive a SIGKILL of the app."""
    import httpx

    study = {
        "id": SID,
        "questions": {"main": 12, "consistency": 2},
        "heldout": 1,
        "images": {"size": 64},
        "source": {"kind": "simulator", "scenes": 3, "renditions": 3, "seed": 2},
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    db_url = fresh_database(pg_url, "kill")
    open_state(tmp_path, study, db_url=db_url).db.dispose()
    server = ServerProcess(tmp_path / "study.yaml", db_url, tmp_path / "data", tmp_path / "server.log")
    try:
        server.wait_ready()
        c = httpx.Client(base_url=server.url, timeout=30)
        c.post(f"/s/{SID}/join", data={"person": "K", "device": "laptop", "consent": "yes"})
        c.post(f"/s/{SID}/calibrate", data={"dark_steps": "9", "light_steps": "9"})
        d = c.get(f"/s/{SID}/api/question").json()
        for _ in range(6):
            d = c.post(f"/s/{SID}/api/answer", json=answer_payload(d["question"], "b")).json()
        server.kill()
    finally:
        server.stop()
    server = ServerProcess(tmp_path / "study.yaml", db_url, tmp_path / "data", tmp_path / "server.log")
    try:
        server.wait_ready()
        d2 = httpx.get(f"{server.url}/s/{SID}/api/question", cookies=c.cookies).json()
        assert d2["progress"]["answered"] == 6 and d2["question"] == d["question"]
    finally:
        server.stop()


@pytest.mark.slow
def test_sigkill_of_four_workers_with_postgres(pg_url, tmp_path):
    """``serve --workers 4`` on PostgreSQL killed with SIGKILL (parent, workers and render processes at
    once) while answers are in flight: every acknowledged answer is stored; everyone resumes at the right pair."""
    import threading
    import time

    import httpx

    from prefstyle.app.db import Database
    from prefstyle.app.models import Participant, Question

    study = {
        "id": SID,
        "questions": {"main": 40, "consistency": 4, "style_after": 4},
        "heldout": 1,
        "images": {"size": 64},
        "model": "nearest-preferred",
        "source": {"kind": "simulator", "scenes": 3, "renditions": 3, "seed": 2},
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    db_url = fresh_database(pg_url, "kill4")
    open_state(tmp_path, study, db_url=db_url).db.dispose()
    server = ServerProcess(
        tmp_path / "study.yaml", db_url, tmp_path / "data", tmp_path / "server.log", extra=("--workers", "4")
    )
    acked: dict[str, dict[int, str]] = {}
    last: dict[str, dict] = {}
    clients: dict[str, httpx.Client] = {}
    stop = threading.Event()
    try:
        server.wait_ready(timeout=180)

        def hammer(name: str) -> None:
            c = httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
            clients[name] = c
            c.post(f"/s/{SID}/join", data={"person": name, "device": "laptop", "consent": "yes"})
            c.post(f"/s/{SID}/calibrate", data={"dark_steps": "9", "light_steps": "9"})
            acked[name] = {}
            d = c.get(f"/s/{SID}/api/question").json()
            while not stop.is_set() and not d["done"]:
                q = d["question"]
                try:
                    r = c.post(f"/s/{SID}/api/answer", json=answer_payload(q, "a", 10))
                except httpx.HTTPError:
                    return
                if r.status_code != 200:
                    return
                acked[name][q["id"]] = "a"
                d = r.json()
                last[name] = d
                if len(acked[name]) == 5:
                    try:
                        c.get(f"/s/{SID}/api/style")  # a style render in flight too
                    except httpx.HTTPError:  # the kill came during it
                        return

        threads = [threading.Thread(target=hammer, args=(f"K{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(len(a) for a in acked.values()) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        server.stop()
    assert sum(len(a) for a in acked.values()) >= 60
    db = Database(db_url)
    try:
        with db.read() as s:
            rows = (
                s.query(Participant.person, Question.id, Question.answer)
                .join(Question, Question.participant_id == Participant.id)
                .filter(Question.answer.is_not(None))
                .all()
            )
    finally:
        db.dispose()
    stored: dict[str, dict[int, str]] = {}
    for person, qid, ans in rows:
        stored.setdefault(person, {})[qid] = ans
    for name, answers in acked.items():
        for qid, ans in answers.items():
            assert stored[name].get(qid) == ans, f"{name}: acknowledged answer {qid} lost"
        assert len(stored[name]) - len(answers) in (0, 1)  # at most the request in flight
    server = ServerProcess(
        tmp_path / "study.yaml", db_url, tmp_path / "data", tmp_path / "server.log", extra=("--workers", "4")
    )
    try:
        server.wait_ready(timeout=180)
        for name, c in clients.items():
            d = httpx.get(f"{server.url}/s/{SID}/api/question", cookies=c.cookies, timeout=30).json()
            assert d["progress"]["answered"] == len(stored[name])
            if len(stored[name]) == len(acked[name]) and name in last:
                assert d["question"] == last[name]["question"]  # the same pair as acknowledged last
    finally:
        server.stop()
