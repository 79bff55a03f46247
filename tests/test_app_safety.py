"""Issue 16's defects of the study app, each with a test that fails without its fix: participants'
files never deleted, rendering never in the way of answers, no session fixation through resume
links, ids validated at the edge, forwarded headers, chunked bodies, screen check first, admin
token and login limits, a private database file, no stale half-built folders."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest
from app.helpers import (
    ADMIN,
    answer_n,
    answer_payload,
    client_for,
    folder_study,
    join,
    open_state,
    wait_style,
)

from prefstyle.errors import PrefstyleError

SID = "sf"


def files_under(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("safety")
    st = open_state(tmp, folder_study(tmp, sid=SID, main=6, consistency=0, style_after=2, heldout=1))
    yield st
    st.db.dispose()


_n = iter(range(10_000))


def participant(state, calibrate: bool = True):
    c = client_for(state)
    token = join(c, SID, person=f"S{next(_n)}", calibrate=calibrate)
    return c, token


# --------------------------------------------------------------------------------------------
# 1. participants' files are never deleted
# --------------------------------------------------------------------------------------------


def _study_with_results(tmp):
    from test_app_uploads import png_bytes

    study = folder_study(tmp, sid="keep", main=4, consistency=0, style_after=2, heldout=1)
    st = open_state(tmp, study, db_url=f"sqlite:///{tmp / 'first.db'}")
    c = client_for(st)
    join(c, "keep", person="Kim")
    answer_n(c, "keep", 3)
    wait_style(c, "keep")
    r = c.post("/s/keep/me/uploads", files={"photo": ("mine.png", png_bytes(), "image/png")})
    assert r.status_code == 303
    wait_style(c, "keep")
    st.db.dispose()
    return study, st.studies["keep"].folder


def test_a_new_database_with_the_same_data_folder_refuses_to_start_and_deletes_nothing(tmp_path):
    study, folder = _study_with_results(tmp_path)
    before = files_under(folder / "participants")
    assert any("uploads/" in k for k in before) and any(k.endswith("profile.json") for k in before)
    with pytest.raises(PrefstyleError) as err:
        open_state(tmp_path, study, db_url=f"sqlite:///{tmp_path / 'mistyped.db'}")
    msg = str(err.value)
    assert "\n" not in msg and str(folder) in msg and "--db" in msg and "--adopt-data" in msg
    assert files_under(folder / "participants") == before  # nothing deleted, nothing moved
    # back on the right database everything is there
    st = open_state(tmp_path, study, db_url=f"sqlite:///{tmp_path / 'first.db'}")
    st.db.dispose()
    assert files_under(folder / "participants") == before


def test_adopt_data_keeps_the_files_aside_and_starts_afresh(tmp_path):
    study, folder = _study_with_results(tmp_path)
    before = files_under(folder / "participants")
    st = open_state(tmp_path, study, db_url=f"sqlite:///{tmp_path / 'new.db'}", adopt_data=True)
    try:
        adopted = [d for d in folder.iterdir() if d.name.startswith("adopted-")]
        assert len(adopted) == 1 and files_under(adopted[0] / "participants") == before  # kept, byte for byte
        assert not (folder / "participants").exists()
        # the first participant of the new database (same id 1) sees none of the old files
        c = client_for(st)
        join(c, "keep", person="New")
        assert c.get("/s/keep/me/file/uploads/x.jpg").status_code == 404
        old_upload = next(k for k in before if k.startswith("1/uploads/"))
        assert c.get(f"/s/keep/me/file/{old_upload.removeprefix('1/')}").status_code == 404
        answer_n(c, "keep", 3)
        wait_style(c, "keep")  # the new participant 1 has a folder now
    finally:
        st.db.dispose()
    # back to the first database: its participant 1 is someone else, whose folder this is not
    with pytest.raises(PrefstyleError, match="--adopt-data"):
        open_state(tmp_path, study, db_url=f"sqlite:///{tmp_path / 'first.db'}")
    assert (folder / "participants" / "1" / ".owner").is_file()


def test_style_page_of_a_participant_whose_upload_file_is_missing(state):
    from test_app_uploads import png_bytes

    c, _ = participant(state)
    answer_n(c, SID, 3)
    assert c.post(f"/s/{SID}/me/uploads", files={"photo": ("gone.png", png_bytes(), "image/png")}).status_code == 303
    import shutil

    from prefstyle.app.models import Participant

    with state.db.read() as s:
        pid = max(s.query(Participant.id).all())[0]
    shutil.rmtree(state.studies[SID].folder / "participants" / str(pid))  # lost: restored from an old backup...
    c.get(f"/s/{SID}/style")
    wait_style(c, SID)
    r = c.get(f"/s/{SID}/style")
    assert r.status_code == 200 and "no longer on the server" in r.text and 'id="heldout"' in r.text


def test_a_half_built_study_folder_of_a_killed_start_is_removed(tmp_path):
    study = folder_study(tmp_path, sid="part", main=4, consistency=0, heldout=1)
    root = tmp_path / "data" / "studies"
    dead = root / ".part.999999999.0badc0de.part"  # a builder that is gone (no such pid)
    legacy = root / ".part.deadbeef.part"  # the older naming, without a pid
    alive = root / f".other.{os.getpid()}.12345678.part"  # being built right now by a live process
    for d in (dead, legacy, alive):
        (d / "images").mkdir(parents=True)
    open_state(tmp_path, study).db.dispose()
    assert not dead.exists() and not legacy.exists() and alive.exists()
    assert not [d for d in root.iterdir() if d.name.endswith(".part") and d != alive]


# --------------------------------------------------------------------------------------------
# 2. answers never wait behind rendering; the queue is bounded
# --------------------------------------------------------------------------------------------


def test_answers_do_not_wait_while_styles_render(tmp_path, monkeypatch):
    from prefstyle.app import personal

    real = personal.build_style
    gate = threading.Event()

    def slow_build(*args, **kwargs):
        gate.wait(20)  # a render that takes as long as the test wants
        return real(*args, **kwargs)

    monkeypatch.setattr(personal, "build_style", slow_build)
    st = open_state(
        tmp_path, folder_study(tmp_path, sid="slow", main=8, consistency=0, style_after=2, heldout=1), render_queue=2
    )
    try:
        viewers = []
        for i in range(3):
            c = client_for(st)
            join(c, "slow", person=f"V{i}")
            answer_n(c, "slow", 2)
            viewers.append(c)
        t0 = time.perf_counter()
        states = [v.get("/s/slow/api/style").json()["state"] for v in viewers]
        r = viewers[0].get("/s/slow/style")
        assert r.status_code == 200 and 'id="style-wait"' in r.text
        assert time.perf_counter() - t0 < 5  # none of these waited for the render
        assert states[2] == "busy" and set(states[:2]) <= {"queued", "rendering"}  # 2 jobs at most, the third waits
        zip_page = viewers[0].get("/s/slow/me/profile.zip")
        assert zip_page.status_code == 202 and 'data-next="/s/slow/me/profile.zip"' in zip_page.text
        other = client_for(st)
        join(other, "slow", person="Busy")
        lat = []
        for q in answer_n(other, "slow", 4):
            t = time.perf_counter()
            other.get("/s/slow/api/question")
            lat.append(time.perf_counter() - t)
            assert q
        assert max(lat) < 2.0  # answering goes on while both render slots are taken
        gate.set()
        for v in viewers:
            wait_style(v, "slow")
        assert viewers[0].get("/s/slow/me/profile.zip").status_code == 200
    finally:
        gate.set()
        st.renders.shutdown()
        st.db.dispose()


def test_the_style_cache_is_on_disk_so_another_process_serves_it(tmp_path):
    """Two app states on one database and data folder stand for two server processes."""
    study = folder_study(tmp_path, sid="two", main=6, consistency=0, style_after=2, heldout=1)
    a = open_state(tmp_path, study)
    b = open_state(tmp_path, study)
    try:
        ca = client_for(a)
        token = join(ca, "two", person="Tess")
        answer_n(ca, "two", 3)
        wait_style(ca, "two")
        cb = client_for(b)
        cb.cookies.set("ps_two", token)
        d = cb.get("/s/two/api/style").json()
        assert d["ready"] and d["version"] == 3 and b.renders.waiting() == 0  # nothing rendered again
        # an answer stored through process B makes A's next look render version 4
        q = cb.get("/s/two/api/question").json()["question"]
        assert cb.post("/s/two/api/answer", json=answer_payload(q, "b")).status_code == 200
        assert ca.get("/s/two/api/style").json()["version"] == 4
        assert wait_style(ca, "two")["version"] == 4
    finally:
        a.db.dispose()
        b.db.dispose()


def test_a_style_another_process_is_rendering_is_not_rendered_twice(state):
    from prefstyle.app import personal

    c, _ = participant(state)
    answer_n(c, SID, 3)
    study = state.studies[SID]
    with state.db.read() as s:
        from prefstyle.app.models import Participant

        pid = max(s.query(Participant.id).all())[0]
    lock = personal.participant_dir(study, pid) / ".v3.rendering"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()  # another server process's render worker is on it
    waiting = state.renders.waiting()
    d = c.get(f"/s/{SID}/api/style").json()
    assert d["state"] == "rendering" and not d["ready"] and state.renders.waiting() == waiting
    time.sleep(0.3)
    assert not (personal.participant_dir(study, pid) / "v3" / "done").exists()
    old = time.time() - personal.RENDER_LOCK_S - 1
    os.utime(lock, (old, old))  # that process was killed: its lock expires
    assert wait_style(c, SID)["version"] == 3 and not lock.exists()


def test_style_renders_in_a_worker_process_with_the_models_words(tmp_path):
    """The production mode: a spawned render process; the page shows ``model.describe`` when it has words."""
    from prefstyle.app import personal

    st = open_state(
        tmp_path,
        folder_study(tmp_path, sid="proc", main=4, consistency=0, style_after=2, heldout=1),
        render_mode="process",
    )
    try:
        c = client_for(st)
        join(c, "proc", person="Pia")
        answer_n(c, "proc", 2)
        wait_style(c, "proc", timeout=120)
        page = c.get("/s/proc/style").text
        assert 'id="heldout"' in page
        result = personal.style_result(st.studies["proc"], 1, 2)
        model = st.studies["proc"].model()
        expected = model.describe(personal.load_profile(result))
        assert result.description == expected.strip()
        assert ('id="describe"' in page) == bool(expected)
        # the render process yields the CPU to the server's answers
        import multiprocessing

        from prefstyle.app.render import RENDER_NICE

        ours = os.getpriority(os.PRIO_PROCESS, 0)
        kids = [k for k in multiprocessing.active_children() if k.name.startswith("SpawnProcess")]
        assert kids and all(os.getpriority(os.PRIO_PROCESS, k.pid) >= min(19, ours + RENDER_NICE) for k in kids)
    finally:
        st.renders.shutdown()
        st.db.dispose()


# --------------------------------------------------------------------------------------------
# 3. resume links: no identity switch on a cross-site GET
# --------------------------------------------------------------------------------------------


def test_resume_link_asks_before_replacing_the_participant_of_this_browser(state):
    victim, victim_token = participant(state)
    _, attacker_token = participant(state)
    r = victim.get(f"/s/{SID}/resume/{attacker_token}")
    assert r.status_code == 200 and 'id="resume-switch"' in r.text  # a question, not a switch
    assert "set-cookie" not in r.headers
    assert victim.cookies.get(f"ps_{SID}") == victim_token
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
    form = {"token": attacker_token, "csrf": csrf}
    # a forged form: no valid CSRF token, or posted from another site
    assert victim.post(f"/s/{SID}/resume", data={**form, "csrf": "0" * 64}).status_code == 403
    assert victim.post(f"/s/{SID}/resume", data=form, headers={"Origin": "https://evil.example"}).status_code == 403
    assert victim.cookies.get(f"ps_{SID}") == victim_token
    # the person confirms on the page
    r = victim.post(f"/s/{SID}/resume", data=form, headers={"Origin": "http://testserver"})
    assert r.status_code == 303 and victim.cookies.get(f"ps_{SID}") == attacker_token


def test_resume_link_from_another_site_on_a_fresh_browser_asks_too(state):
    _, token = participant(state)
    fresh = client_for(state)
    r = fresh.get(f"/s/{SID}/resume/{token}", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200 and 'id="resume-ask"' in r.text and "set-cookie" not in r.headers
    # typed or pasted into the address bar (Sec-Fetch-Site: none): straight back to the study
    r = fresh.get(f"/s/{SID}/resume/{token}", headers={"Sec-Fetch-Site": "none"})
    assert r.status_code == 303 and fresh.cookies.get(f"ps_{SID}") == token


# --------------------------------------------------------------------------------------------
# 4. ids too large for the database: refused at the edge
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("question_id", 2**63),
        ("question_id", 2**31),
        ("a", 2**70),
        ("b", -1),
        ("question_id", 0),
        ("response_ms", 1e300),
        ("question_id", True),
        ("choice", None),
    ],
)
def test_out_of_range_ids_and_values_answer_400(state, field, value):
    c, _ = participant(state)
    q = c.get(f"/s/{SID}/api/question").json()["question"]
    r = c.post(f"/s/{SID}/api/answer", json={**answer_payload(q, "a"), field: value})
    assert r.status_code == 400 and field in r.json()["error"]


# --------------------------------------------------------------------------------------------
# 5. proxies, chunked bodies, screen check, admin token, file modes
# --------------------------------------------------------------------------------------------


def test_forwarded_headers_only_when_configured(tmp_path):
    study = folder_study(tmp_path, sid="fw", main=4, consistency=0, heldout=1)
    fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "study.example.org"}
    for allow, expected in (
        ("", "http://testserver/s/fw/resume/"),
        ("10.0.0.0/8", "http://testserver/s/fw/resume/"),  # the test client is not a trusted proxy
        ("*", "https://study.example.org/s/fw/resume/"),
    ):
        st = open_state(tmp_path, study, forwarded_allow_ips=allow)
        try:
            c = client_for(st)
            join(c, "fw", person=f"F{len(allow)}")
            page = c.get("/s/fw/study", headers=fwd).text
            assert expected in re.search(r'id="resume-url">([^<]+)<', page).group(1)
        finally:
            st.db.dispose()


def test_chunked_body_over_the_limit_answers_413(state):
    c, _ = participant(state)

    def chunks():
        for _ in range(40):
            yield b"x" * 10_000

    r = c.post(f"/s/{SID}/api/answer", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_answers_before_the_screen_check_are_refused(state):
    c, _ = participant(state, calibrate=False)
    r = c.get(f"/s/{SID}/api/question")
    assert r.status_code == 409 and "screen check" in r.json()["error"]
    r = c.post(f"/s/{SID}/api/answer", json={"question_id": 1, "a": 1, "b": 2, "choice": "a"})
    assert r.status_code == 409


def test_short_admin_tokens_are_refused_in_one_line(tmp_path, capsys, monkeypatch):
    import yaml

    from prefstyle.app.__main__ import main

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(folder_study(tmp_path, sid="tok", main=4, consistency=0)))
    monkeypatch.setattr(
        "sys.argv",
        [
            "prefstyle serve",
            "--study",
            str(tmp_path / "s.yaml"),
            "--data",
            str(tmp_path / "data"),
            "--admin-token",
            "short",
        ],
    )
    assert main() == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "at least 16 characters" in err
    assert not (tmp_path / "data" / "app.db").exists()  # refused before anything was created


def test_admin_login_is_rate_limited(state):
    c = client_for(state)
    for _ in range(10):
        assert c.post("/admin/login", data={"token": "wrong-token-guess-123"}).status_code == 401
    r = c.post("/admin/login", data={"token": ADMIN})
    assert r.status_code == 429  # even the right token waits until the minute is over
    assert c.get("/admin/studies/sf/stats.json", headers={"Authorization": f"Bearer {ADMIN}x"}).status_code == 429


def test_the_sqlite_file_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        st = open_state(tmp_path, folder_study(tmp_path, sid="priv", main=4, consistency=0, heldout=1))
        c = client_for(st)
        join(c, "priv", person="Pat")
        st.db.dispose()
    finally:
        os.umask(old)
    for name in ("app.db", "app.db-wal", "app.db-shm"):
        path = tmp_path / name
        if path.exists():
            assert path.stat().st_mode & 0o077 == 0, f"{name} is readable by others: {oct(path.stat().st_mode)}"
