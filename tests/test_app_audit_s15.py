"""Participant-side refusals found by the fifteenth session's audit of the study app: odd screen
facts, the join form sent twice, Starlette's own refusals, a study finished without a decided answer."""

from __future__ import annotations

import itertools
import json

import pytest
from app.helpers import answer_n, client_for, folder_study, join, open_state, wait_style

SID = "au"
_names = (f"Q{i}" for i in itertools.count())


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    st = open_state(tmp, folder_study(tmp, sid=SID, main=4, consistency=0, style_after=2, heldout=1))
    yield st
    st.db.dispose()


def _calibration(state, person: str) -> dict:
    from prefstyle.app.models import Participant

    with state.db.read() as s:
        p = s.query(Participant).filter_by(person=person).one()
    return json.loads(p.calibration_json, parse_constant=lambda c: pytest.fail(f"{c} stored in the calibration"))


@pytest.mark.parametrize(
    "screen",
    [
        "[" * 50_000,  # json.loads: RecursionError (was a 500)
        '{"width": ' + "9" * 5000 + "}",  # json.loads: ValueError, too many digits (was a 500)
        '{"width": NaN, "dpr": Infinity, "height": 800}',  # stored as invalid JSON, exported so
    ],
    ids=["nested", "long-int", "nan"],
)
def test_odd_screen_facts_are_dropped_not_a_server_error(state, screen):
    c = client_for(state)
    person = next(_names)
    join(c, SID, person=person, calibrate=False)
    r = c.post(f"/s/{SID}/calibrate", data={"dark_steps": "5", "light_steps": "6", "screen": screen})
    assert r.status_code == 303, r.text
    cal = _calibration(state, person)
    assert cal["grey_ramp"]["dark_steps_seen"] == 5
    assert cal["screen"] == ({"height": 800} if "NaN" in screen else {})


def test_the_join_form_sent_again_from_the_same_browser_continues(state):
    c = client_for(state)
    form = {"person": next(_names), "device": "laptop", "consent": "yes"}
    assert c.post(f"/s/{SID}/join", data=form).status_code == 303
    # browser back and "Start" again, or a double click whose first answer set the cookie
    r = c.post(f"/s/{SID}/join", data={**form, "person": f"  {form['person']} "})
    assert r.status_code == 303 and r.headers["location"] == f"/s/{SID}/study"
    # from another browser it is still someone else's name
    r = client_for(state).post(f"/s/{SID}/join", data=form)
    assert r.status_code == 409 and "already joined" in r.text


def test_starlettes_own_refusals_are_a_page_or_one_json_error(state):
    c = client_for(state)
    join(c, SID, person=next(_names))
    r = c.get(f"/s/{SID}/no-such-page")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "Sorry" in r.text
    r = c.get(f"/s/{SID}/join")
    assert r.status_code == 405 and "POST" in r.headers["allow"] and "text/html" in r.headers["content-type"]
    for body in (b'{"choice": "\xff"}', b"[" * 50_000):
        r = c.post(f"/s/{SID}/api/answer", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and set(r.json()) == {"error"}, r.text


def test_finished_without_a_decided_answer_is_thanked_not_sent_back(state):
    c = client_for(state)
    join(c, SID, person=next(_names))
    answer_n(c, SID, choose=lambda q: "undecided")
    assert c.get(f"/s/{SID}/api/question").json()["done"]
    r = c.get(f"/s/{SID}/style")
    assert r.status_code == 200 and "Thank you for taking part" in r.text
    assert f'href="/s/{SID}/study"' not in r.text  # the study page would send them straight back here


# --------------------------------------------------------------------------------------------
# start-up: one line, exit 2, instead of a traceback (or of a server whose every request is a 500)
# --------------------------------------------------------------------------------------------


def _serve(tmp_path, monkeypatch, capsys, *extra: str) -> str:
    import yaml

    from prefstyle.app.__main__ import main

    study = tmp_path / "s.yaml"
    if not study.exists():
        study.write_text(yaml.safe_dump(folder_study(tmp_path, sid="up", main=4, consistency=0)))
    monkeypatch.setattr(
        "sys.argv", ["prefstyle serve", "--study", str(study), "--data", str(tmp_path / "data"), *extra]
    )
    assert main() == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_a_file_that_is_not_a_sqlite_database_is_one_line(tmp_path, monkeypatch, capsys):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database " * 20)
    err = _serve(tmp_path, monkeypatch, capsys, "--db", f"sqlite:///{junk}", "--admin-token", "a" * 20)
    assert f"{junk}: cannot open the SQLite database: file is not a database" in err
    assert junk.read_text() == "not a database " * 20  # left as it was


def test_bad_forwarded_allow_ips_stop_the_start_not_every_request(tmp_path, monkeypatch, capsys):
    err = _serve(
        tmp_path, monkeypatch, capsys, "--admin-token", "a" * 20, "--forwarded-allow-ips", "10.0.0.1,1.2.3.4/99"
    )
    assert "--forwarded-allow-ips: '1.2.3.4/99' is not an IP address or network" in err


@pytest.mark.parametrize("kind", ["short", "folder", "binary"])
def test_a_bad_admin_token_file_is_one_line_naming_it(tmp_path, monkeypatch, capsys, kind):
    path = tmp_path / "data" / "admin-token"
    if kind == "folder":
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"short\n" if kind == "short" else b"\xff\xfe\x00")
    err = _serve(tmp_path, monkeypatch, capsys)
    assert f"{path}: " in err and ("at least 16" if kind == "short" else "remove it") in err
    assert path.exists()


def test_a_key_given_twice_in_a_study_file_is_refused_with_its_line(tmp_path):
    from prefstyle.app.study import load_study
    from prefstyle.errors import PrefstyleError

    f = tmp_path / "s.yaml"
    f.write_text("id: first\ntitle: T\nimages:\n  <<: {size: 64}\n  size: 128\nid: second\n")
    with pytest.raises(PrefstyleError, match=r"s\.yaml:6: malformed YAML: the key 'id' is given twice"):
        load_study(f)
    f.write_text("id: first\ntitle: T\nimages:\n  <<: {size: 64}\n  size: 128\n")  # a merge key may be overridden
    cfg = load_study(f)
    assert (cfg.id, cfg.image_size) == ("first", 128)


def test_two_uploads_at_once_cannot_pass_the_limit_together(tmp_path, monkeypatch):
    from test_app_uploads import png_bytes

    from prefstyle.app import routes_participant

    st = open_state(
        tmp_path, folder_study(tmp_path, sid="up", main=4, consistency=0, style_after=2, uploads={"max_files": 1})
    )
    try:
        c = client_for(st)
        join(c, "up")
        answer_n(c, "up", 2)
        # both requests passed the first check before either was registered (two tabs)
        monkeypatch.setattr(routes_participant, "_may_upload", lambda *a: None)
        assert c.post("/s/up/me/uploads", files={"photo": ("a.png", png_bytes())}).status_code == 303
        r = c.post("/s/up/me/uploads", files={"photo": ("b.png", png_bytes())})
        assert r.status_code == 409 and "at most 1 photos" in r.text
        stored = list((tmp_path / "data" / "studies" / "up" / "participants").glob("*/uploads/*.jpg"))
        assert len(stored) == 1  # the refused photo's file is not left behind
    finally:
        st.db.dispose()


def test_a_render_lock_of_a_killed_process_of_this_machine_does_not_stall_the_style(state):
    import os
    import socket
    import subprocess
    import sys

    from prefstyle.app import personal
    from prefstyle.app.models import Participant

    c = client_for(state)
    person = next(_names)
    join(c, SID, person=person)
    answer_n(c, SID, 2)
    with state.db.read() as s:
        pid = s.query(Participant).filter_by(person=person).one().id
    study = state.studies[SID]
    lock = personal.participant_dir(study, pid) / ".v2.rendering"
    lock.parent.mkdir(parents=True, exist_ok=True)
    # a render worker of this machine that is alive: its lock holds
    lock.write_text(f"{socket.gethostname()} {os.getpid()}")
    assert personal.render_in_progress(study, pid, 2)
    # one that was killed (a server SIGKILLed mid-render, then restarted): no five-minute wait
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(f"{socket.gethostname()} {int(gone.stdout)}")
    assert not personal.render_in_progress(study, pid, 2)
    stale = [lock.parent / ".v2.0123abcd.part", lock.parent / ".v1.89abcdef.part"]  # the killed renders' folders
    for folder in stale:
        (folder / "x").mkdir(parents=True)
    assert wait_style(c, SID, timeout=30)["version"] == 2 and not lock.exists()
    assert not any(folder.exists() for folder in stale)


def test_an_export_that_cannot_be_written_is_one_line_for_the_organizer(state):
    from app.helpers import ADMIN

    c = client_for(state)
    join(c, SID, person=next(_names))
    (q,) = answer_n(c, SID, 1)
    image = state.studies[SID].rendition_path(q["a"]["id"])
    kept = image.read_bytes()
    image.unlink()  # a study image removed from DATA by hand
    try:
        r = client_for(state).get(f"/admin/studies/{SID}/export.zip", headers={"Authorization": f"Bearer {ADMIN}"})
    finally:
        image.write_bytes(kept)
    assert r.status_code == 500 and "the export could not be written: No such file or directory" in r.text
    assert image.name in r.text


def test_a_title_longer_than_the_database_column_is_refused_with_the_key():
    from prefstyle.app.study import parse_study
    from prefstyle.errors import PrefstyleError

    assert parse_study({"id": "t", "title": "x" * 200}).title == "x" * 200
    with pytest.raises(PrefstyleError, match="title must be at most 200 characters, got 201"):
        parse_study({"id": "t", "title": "x" * 201})  # PostgreSQL refused it with a traceback at start


def test_a_model_that_cannot_be_loaded_stops_the_start_in_one_line(tmp_path):
    from prefstyle.app.server import _check_models
    from prefstyle.errors import PrefstyleError

    st = open_state(tmp_path, folder_study(tmp_path, sid="m", main=4, consistency=0, model="no-such-model"))
    try:  # was: the server started, and every participant's style page said "rendering failed"
        with pytest.raises(PrefstyleError, match=r"^study 'm': unknown model 'no-such-model'"):
            _check_models(st, None)
    finally:
        st.db.dispose()
    st = open_state(tmp_path / "ok", folder_study(tmp_path, sid="m", main=4, consistency=0))
    try:
        _check_models(st, None)  # nearest-preferred loads
    finally:
        st.db.dispose()
