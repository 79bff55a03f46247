"""The organizer's pages: token required, progress, consistency, response times, flags, export."""

from __future__ import annotations

import io
import zipfile

import pytest
from app.helpers import ADMIN, answer_n, client_for, folder_study, join, open_state

SID = "adm"
BEARER = {"Authorization": f"Bearer {ADMIN}"}


def consistent(q):  # prefers the rendition with the smaller id, whichever side it is on
    return "a" if q["a"]["id"] < q["b"]["id"] else "b"


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("admin")
    st = open_state(
        tmp,
        [
            folder_study(tmp, sid=SID, main=12, consistency=5, style_after=4, heldout=1),
            folder_study(tmp, sid="other", main=4, consistency=1, heldout=1),
        ],
    )
    careful, fast, flip = client_for(st), client_for(st), client_for(st)
    join(careful, SID, "Careful", "laptop")
    answer_n(careful, SID, choose=consistent, ms=2500)
    join(fast, SID, "Fast", "phone")
    answer_n(fast, SID, choose=consistent, ms=150)
    join(flip, SID, "Flip", "desktop")
    answer_n(flip, SID, choose=lambda q: "a", ms=1800)
    idle = client_for(st)
    join(idle, SID, "Idle", "tablet")
    answer_n(idle, SID, 3, choose=lambda q: "undecided", ms=5000)
    yield st
    st.db.dispose()


@pytest.mark.parametrize(
    "path", ["/admin", f"/admin/studies/{SID}", f"/admin/studies/{SID}/stats.json", f"/admin/studies/{SID}/export.zip"]
)
def test_admin_routes_refuse_without_the_token(state, path):
    c = client_for(state)
    assert c.get(path).status_code == 401
    assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get(path, headers={"Authorization": f"Bearer {ADMIN}x"}).status_code == 401
    # a participant's cookie is no admin token
    join(c, "other", person=f"P{abs(hash(path)) % 10000}")
    assert c.get(path).status_code == 401
    assert c.get(path, headers=BEARER).status_code == 200


def test_login_sets_a_cookie_that_is_not_the_token(state):
    c = client_for(state)
    r = c.post("/admin/login", data={"token": "nope"})
    assert r.status_code == 401 and "wrong token" in r.text
    r = c.post("/admin/login", data={"token": ADMIN})
    assert r.status_code == 303
    cookie = c.cookies.get("prefstyle_admin")
    assert cookie and ADMIN not in cookie
    assert "Careful" in c.get(f"/admin/studies/{SID}").text
    assert c.post("/admin/logout").status_code == 303
    c.cookies.clear()
    assert c.get("/admin").status_code == 401
    r = client_for(state).get(f"/admin?token={ADMIN}")  # a login link also works once
    assert r.status_code == 303 and r.cookies.get("prefstyle_admin")


def test_stats_progress_consistency_histogram_and_flags(state):
    s = client_for(state).get(f"/admin/studies/{SID}/stats.json", headers=BEARER).json()
    assert (s["participants"], s["started"], s["finished"]) == (4, 4, 3)
    assert s["answers"] == 3 * 17 + 3 and s["undecided"] == 3 and s["judgments"] == 51
    per = {p["user"]: p for p in s["per_participant"]}
    assert per["Careful@laptop"]["consistency_rate"] == 1.0 and per["Careful@laptop"]["consistency_matched"] == 5
    assert per["Flip@desktop"]["consistency_rate"] == 0.0
    assert per["Idle@tablet"]["answered"] == 3 and per["Idle@tablet"]["finished"] is None
    assert s["consistency"] == {"matched": 15, "agreed": 10, "rate": pytest.approx(10 / 15)}
    assert per["Careful@laptop"]["calibration"]["grey_ramp"]["dark_steps_seen"] == 10
    # PPS filters: the fast clicker and the inconsistent one are flagged, the careful one is not
    assert s["flagged"] == ["Fast@phone", "Flip@desktop"]
    assert {f["code"] for f in per["Fast@phone"]["flags"]} == {"median_response", "fast_responses"}
    assert {f["code"] for f in per["Flip@desktop"]["flags"]} == {"consistency"}
    assert per["Careful@laptop"]["flags"] == []
    hist = s["response_ms"]["histogram"]
    assert sum(b["count"] for b in hist) == s["response_ms"]["count"] == 54
    counts = {(b["lo"], b["hi"]): b["count"] for b in hist}
    assert counts[(0, 250)] == 17 and counts[(1500, 2000)] == 17 and counts[(2000, 3000)] == 17
    assert counts[(4000, 6000)] == 3


def test_admin_pages_render(state):
    c = client_for(state)
    index = c.get("/admin", headers=BEARER)
    assert index.status_code == 200 and f"/admin/studies/{SID}" in index.text and "/admin/studies/other" in index.text
    page = c.get(f"/admin/studies/{SID}", headers=BEARER).text
    assert page.count("<rect") == 14 and 'class="flagged"' in page and "consistency agreement 0.00" in page


def test_export_zip_is_a_valid_pairs_dataset(state, tmp_path):
    from prefstyle.data.pairs import read_with_problems, statistics

    r = client_for(state).get(f"/admin/studies/{SID}/export.zip", headers=BEARER)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(tmp_path)
    ds, problems = read_with_problems(tmp_path / SID)
    assert [str(p) for p in problems] == []
    st = statistics(ds)
    assert st["users"] == 3 and st["judgments"] == {"total": 51, "main": 36, "consistency": 15}
    assert st["consistency"]["matched"] == 15 and st["consistency"]["agreement"] == pytest.approx(10 / 15)
