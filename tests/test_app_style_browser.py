"""The sliders of "your style" in a real browser (Playwright driving Debian's chromium): moving one
re-renders the held-out photos and re-points the downloads; the .cube link says it is being
prepared, then downloads. Screenshots under ``test-artifacts/app-style/``. Skipped without
chromium or Playwright (no downloads, ever)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.helpers import answer_n, client_for, folder_study, free_port, join, open_state, wait_style

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "app-style"
SID = "sl"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="chromium is not installed at /usr/bin/chromium"),
]


@pytest.fixture
def live_server(tmp_path):
    import uvicorn

    from prefstyle.app.server import create_app

    state = open_state(
        tmp_path, folder_study(tmp_path, sid=SID, main=6, consistency=0, style_after=4, heldout=2, model="sliders")
    )
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


def _until(ok, timeout: float = 30) -> None:
    """Poll ``ok()`` (the page's Content-Security-Policy forbids Playwright's wait_for_function)."""
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_moving_a_slider_re_renders_the_photos_and_the_downloads_follow(live_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    base, state = live_server
    c = client_for(state)  # answer through the API, then hand the participant's cookie to the browser
    token = join(c, SID, person="Kim")
    answer_n(c, SID)
    wait_style(c, SID)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            ctx = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
            ctx.add_cookies([{"name": f"ps_{SID}", "value": token, "url": f"{base}/s/{SID}"}])
            page = ctx.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(f"{base}/s/{SID}/style")
            page.wait_for_selector("#sliders")
            before = page.get_attribute("#heldout img.mine", "src")
            learned = page.text_content("#out-exposure")
            assert learned.endswith(" EV")
            page.focus("#sl-exposure")
            for _ in range(10):  # +0.5 EV, one keyboard step (0.05 EV) at a time
                page.keyboard.press("ArrowRight")
            assert page.text_content("#out-exposure") != learned
            page.wait_for_selector('#heldout img.mine[src*="/nudge-"]', timeout=30_000)
            _until(lambda: page.evaluate("document.querySelector('#heldout img.mine').naturalWidth") > 0)
            assert page.get_attribute("#heldout img.mine", "src") != before
            assert "exposure=" in page.get_attribute("#dl-xmp", "href")
            assert "exposure=" in page.get_attribute("#dl-lut", "href")
            assert "adjusted sliders" in page.text_content("#nudge-state")
            page.screenshot(path=ARTIFACTS / "1-nudged.png", full_page=True)
            with page.expect_download(timeout=60_000) as dl:
                page.click("#dl-lut")
                assert page.is_visible("#dl-lut-wait")  # feedback while the .cube is prepared
            assert dl.value.suggested_filename == f"prefstyle-{SID}-adjusted.cube"
            with page.expect_download() as dl:
                page.click("#dl-xmp")
            assert dl.value.suggested_filename == f"prefstyle-{SID}-adjusted.xmp"
            page.click("#nudge-reset")
            _until(lambda: "learned values" in page.text_content("#nudge-state"))
            assert page.get_attribute("#heldout img.mine", "src") == before
            assert "?" not in page.get_attribute("#dl-xmp", "href")
        finally:
            browser.close()
    assert problems == []  # no script errors, no Content-Security-Policy violations
