"""Screenshot the study app's "your style" page with a slider moved (the picture in docs/APP.md).

python scripts/screenshot_app_style.py docs/img/app_style.png [--model sliders] [--width 1200]

Starts the app on a temporary study (five photos that ship inside Python packages, three styles,
the ``--model`` taste, two held-out photos), answers every pair for one participant over HTTP
(always the warmer-looking rendition), then in Debian's chromium (Playwright, no downloads) opens
the style page, moves the temperature and exposure sliders and waits for the re-rendered photos.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry")


def _photos(folder: Path, side: int = 480) -> Path:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True)
    for name in PHOTOS:
        im = Image.fromarray(getattr(data, name)()[..., :3])
        im.thumbnail((side, side))
        im.save(folder / f"{name}.png")
    return folder


def _warmer(client, q: dict) -> str:
    """``"a"`` or ``"b"``: the rendition whose red-minus-blue is larger (a participant who likes warmth)."""
    import io

    import numpy as np
    from PIL import Image

    def warmth(url: str) -> float:
        arr = np.asarray(Image.open(io.BytesIO(client.get(url).content)).convert("RGB"), dtype=np.float64)
        return float((arr[..., 0] - arr[..., 2]).mean())

    return "a" if warmth(q["a"]["url"]) >= warmth(q["b"]["url"]) else "b"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default="sliders")
    ap.add_argument("--width", type=int, default=1200)
    args = ap.parse_args()
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM}: chromium is not installed (apt-get install chromium)")
    import httpx
    import uvicorn
    from playwright.sync_api import sync_playwright

    from prefstyle.app.server import create_app, open_state
    from prefstyle.app.state import AppSettings
    from prefstyle.app.study import parse_study

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        study = {
            "id": "demo",
            "title": "Which photo do you prefer?",
            "questions": {"main": 16, "consistency": 0, "style_after": 8},
            "heldout": 2,
            "images": {"size": 384},
            "model": args.model,
            "source": {
                "kind": "folder",
                "path": str(_photos(tmp / "photos")),
                "styles": ["warm-film", "cool-matte", "camera:vivid"],
                "include_original": True,
            },
        }
        state = open_state(
            AppSettings(
                db_url=f"sqlite:///{tmp / 'app.db'}",
                data_dir=tmp / "data",
                studies=[parse_study(study)],
                admin_token="screenshot-admin-token",
                render_mode="thread",
            )
        )
        server = uvicorn.Server(uvicorn.Config(create_app(state=state), host="127.0.0.1", port=0, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as c:
            c.post("/s/demo/join", data={"person": "Alex", "device": "laptop", "consent": "yes"})
            c.post("/s/demo/calibrate", data={"dark_steps": "10", "light_steps": "11", "screen": "{}"})
            data = c.get("/s/demo/api/question").json()
            while not data["done"]:
                q = data["question"]
                choice = _warmer(c, q)
                body = {"question_id": q["id"], "a": q["a"]["id"], "b": q["b"]["id"], "choice": choice}
                data = c.post("/s/demo/api/answer", json={**body, "response_ms": 1500}).json()
            while not c.get("/s/demo/api/style").json()["ready"]:
                time.sleep(0.2)
            token = c.cookies.get("ps_demo")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
            ctx = browser.new_context(viewport={"width": args.width, "height": 900})
            ctx.add_cookies([{"name": "ps_demo", "value": token, "url": f"{base}/s/demo"}])
            page = ctx.new_page()
            page.goto(f"{base}/s/demo/style")
            page.wait_for_selector("#sliders")
            for slider, steps in (("#sl-temperature", 8), ("#sl-exposure", 4)):
                page.focus(slider)
                for _ in range(steps):
                    page.keyboard.press("ArrowRight")
            page.wait_for_selector('#heldout img.mine[src*="/nudge-"]', timeout=60_000)
            page.wait_for_timeout(800)  # the re-rendered images decode
            page.focus("#nudge-reset")  # no focus ring on a slider in the picture
            page.evaluate("document.activeElement.blur()")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
        server.should_exit = True
        state.db.dispose()
    print(args.out)


if __name__ == "__main__":
    main()
