"""A participant in a real browser (Playwright driving Debian's chromium): keyboard answers,
resume after a reload, the "your style" page. Screenshots of every page are kept under
``test-artifacts/app/``. Skipped when chromium or Playwright is missing (no downloads, ever)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from app.helpers import ADMIN, folder_study, free_port, open_state

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "app"
SID = "web"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="chromium is not installed at /usr/bin/chromium"),
]


@pytest.fixture
def live_server(tmp_path):
    import uvicorn

    from prefstyle.app.server import create_app

    state = open_state(tmp_path, folder_study(tmp_path, sid=SID, main=6, consistency=2, style_after=3, heldout=2))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(state=state), host="127.0.0.1", port=free_port(), log_level="warning", access_log=False
        )
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{server.config.port}", state
    server.should_exit = True
    t.join(timeout=15)
    state.db.dispose()


def test_participant_completes_a_study_with_the_keyboard(live_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    base, state = live_server
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

            page.goto(f"{base}/s/{SID}")
            page.screenshot(path=ARTIFACTS / "1-start.png", full_page=True)
            page.fill("#person", "Robin")
            page.fill("#device", "laptop")
            page.check("#consent-box")
            page.click("#join")
            page.wait_for_url(f"**/s/{SID}/calibrate")
            page.screenshot(path=ARTIFACTS / "2-calibrate.png", full_page=True)
            assert page.input_value("#screen").startswith("{")  # screen facts filled in by the script
            page.fill("#dark_steps", "10")
            page.fill("#light_steps", "11")
            page.click("#calibrate-done")
            page.wait_for_url(f"**/s/{SID}/study")

            def wait_ready(position: int) -> None:
                page.wait_for_selector(f'#study[data-ready="yes"][data-position="{position}"]', timeout=20_000)

            wait_ready(0)
            page.screenshot(path=ARTIFACTS / "3-pair.png", full_page=True)
            assert page.evaluate("document.getElementById('img-a').naturalWidth") > 0
            keys = ["ArrowLeft", "ArrowRight", "ArrowDown", "ArrowLeft"]
            for k, key in enumerate(keys):
                page.wait_for_timeout(120)  # a human-like pause, so response times are measurable
                page.keyboard.press(key)
                wait_ready(k + 1)
            assert page.text_content("#progress-count").strip() == "4 / 8"
            assert page.is_visible("#style-link")  # 3 decided main answers: the style is ready

            page.reload()  # leave and come back: the same place, the same pair
            wait_ready(4)
            page.screenshot(path=ARTIFACTS / "4-resumed.png", full_page=True)
            for k in range(4, 8):
                page.wait_for_timeout(50)
                page.keyboard.press("ArrowRight" if k % 2 else "ArrowLeft")
                if k < 7:
                    wait_ready(k + 1)
            page.wait_for_url(f"**/s/{SID}/style", timeout=30_000)
            # rendered in the background: the page polls, then reloads itself with the results
            page.wait_for_selector("#heldout", timeout=60_000)
            page.wait_for_load_state("load")
            page.screenshot(path=ARTIFACTS / "5-style.png", full_page=True)
            assert page.is_visible("#thanks")
            widths = page.eval_on_selector_all("#heldout img", "els => els.map(e => e.naturalWidth)")
            assert len(widths) == 4 and all(w > 0 for w in widths)
            assert page.get_attribute("#dl-profile", "href") == f"/s/{SID}/me/profile.zip"

            page.goto(f"{base}/admin?token={ADMIN}")  # the organizer's view of the same study
            page.goto(f"{base}/admin/studies/{SID}")
            assert "Robin@laptop" in page.text_content("#participants")
            page.screenshot(path=ARTIFACTS / "6-admin.png", full_page=True)
        finally:
            browser.close()
    assert problems == []  # no script errors, no Content-Security-Policy violations

    from prefstyle.app.models import Question

    with state.db.read() as s:
        qs = s.query(Question).order_by(Question.position).all()
    assert [q.answer for q in qs][:4] == ["a", "b", "undecided", "a"]
    assert all(q.answer is not None for q in qs)
    assert all(q.response_ms is not None and q.response_ms >= 40 for q in qs)  # measured in the browser
    assert len(list(ARTIFACTS.glob("*.png"))) == 6
