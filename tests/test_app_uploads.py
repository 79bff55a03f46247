"""Participants' own photos: every kind of bad upload is refused with a clear message."""

from __future__ import annotations

import io
import re
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from app.helpers import answer_n, client_for, folder_study, join, open_state, wait_style
from PIL import Image

SID = "up"


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uploads")
    st = open_state(
        tmp,
        folder_study(
            tmp,
            sid=SID,
            main=6,
            consistency=0,
            style_after=2,
            heldout=1,
            uploads={"max_files": 2, "max_mb": 0.05, "max_megapixels": 0.02},
        ),
    )
    yield st
    st.db.dispose()


_n = iter(range(1000))


@pytest.fixture
def ready(state):
    """A participant whose style page is open."""
    c = client_for(state)
    join(c, SID, person=f"U{next(_n)}")
    answer_n(c, SID, 2)
    return c


def png_bytes(w: int = 100, h: int = 80, seed: int = 0, flat: bool = False) -> bytes:
    if flat:
        arr = np.full((h, w, 3), 120, dtype=np.uint8)
    else:
        arr = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(w: int = 100, h: int = 80) -> bytes:
    arr = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png_header_bomb(w: int = 30000, h: int = 30000) -> bytes:
    """A tiny PNG whose header claims ``w`` x ``h`` pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )


def upload(c, name: str, data: bytes, ctype: str = "image/png"):
    return c.post(f"/s/{SID}/me/uploads", files={"photo": (name, data, ctype)})


def test_a_good_upload_is_shown_retouched_only_to_its_owner(state, ready):
    r = upload(ready, "holiday.png", png_bytes())
    assert r.status_code == 303 and r.headers["location"].endswith("/style#uploads")
    ready.get(f"/s/{SID}/style")
    wait_style(ready, SID)  # retouched in the background
    page = ready.get(f"/s/{SID}/style").text
    assert "holiday.png" in page
    urls = [u for u in re.findall(r'src="([^"]+)"', page) if "upload" in u]
    assert len(urls) == 2  # the photo and the photo in the participant's style
    for u in urls:
        r = ready.get(u)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(r.content)).size == (96, 77)  # downscaled to the study's image size
    other = client_for(state)
    join(other, SID, person="Other")
    answer_n(other, SID, 2)
    assert all(other.get(u).status_code == 404 for u in urls)
    assert all(client_for(state).get(u).status_code == 401 for u in urls)
    # JPEG is accepted too; the stored files carry random names, never the uploaded one
    assert upload(ready, "<i onmouseover=x>b.jpg", jpeg_bytes(), "image/jpeg").status_code == 303
    page = ready.get(f"/s/{SID}/style").text
    assert "&lt;i onmouseover=x&gt;b.jpg" in page and "<i onmouseover" not in page  # names are shown escaped
    stored = [p.name for p in (state.studies[SID].folder / "participants").rglob("*") if p.is_file()]
    # (random hex names may end in "b", so compare whole names, not substrings, for "b.jpg")
    assert not any("holiday" in n or "onmouseover" in n or n == "b.jpg" for n in stored)
    # the study allows two photos
    r = upload(ready, "c.png", png_bytes(seed=2))
    assert r.status_code == 409 and "at most 2 photos" in r.text


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        ("notes.png", b"hello, this is plain text and not an image at all" * 3, 415, "not a JPEG, PNG or WebP image"),
        (
            "evil.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            415,
            "not a JPEG, PNG or WebP image",
        ),
        ("anim.gif", b"GIF89a" + b"\0" * 100, 415, "not a JPEG, PNG or WebP image"),
        ("cut.jpg", jpeg_bytes()[:900], 400, "cannot be read: truncated or corrupt"),
        ("cut.png", png_bytes()[:300], 400, "cannot be read"),
        ("bomb.png", png_header_bomb(), 413, "too many pixels (at most 0.02 megapixels)"),
        ("big.png", png_bytes(200, 200, flat=True), 413, "too many pixels"),  # a real image over the pixel limit
        ("empty.png", b"", 400, "empty"),
        ("huge.png", png_bytes(150, 150, seed=5), 413, "too large: at most 0.05 MB"),  # counted while streaming
        ("../../../etc/cron.d/x.png", png_bytes(), 400, "plain name"),
        ("..\\..\\x.png", png_bytes(), 400, "plain name"),
        ("sub/dir.png", png_bytes(), 400, "plain name"),
        (".htaccess", png_bytes(), 400, "plain name"),
        ("a\u202egnp.exe", png_bytes(), 400, "control or invisible"),
    ],
)
def test_bad_uploads_are_refused_with_a_clear_message(ready, name, data, status, message):
    if name == "huge.png":
        assert 50_000 < len(data) < 114_000  # under the Content-Length guard, over the file limit
    r = upload(ready, name, data)
    assert r.status_code == status, r.text[:300]
    assert message in r.text
    assert "/tmp" not in r.text and "prefstyle-upload" not in r.text  # no server paths in messages
    assert upload(ready, "fine.png", png_bytes()).status_code == 303  # nothing was counted against the limit


def test_oversized_bodies_are_cut_off_before_reading(ready):
    r = upload(ready, "big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 400_000)
    assert r.status_code == 413 and "too large: at most 0.05 MB" in r.text


def test_uploads_need_a_ready_style_and_a_token(state):
    c = client_for(state)
    assert upload(c, "a.png", png_bytes()).status_code == 401
    join(c, SID, person="Early")
    r = upload(c, "a.png", png_bytes())
    assert r.status_code == 409 and "not ready" in r.text
    r = c.post(f"/s/{SID}/me/uploads", data={"photo": "not a file"})
    assert r.status_code in (400, 409)


def test_no_upload_leaves_temp_files(ready):
    before = set(Path(tempfile.gettempdir()).glob("prefstyle-upload-*"))
    upload(ready, "cut.jpg", jpeg_bytes()[:500])
    upload(ready, "ok.png", png_bytes())
    assert set(Path(tempfile.gettempdir()).glob("prefstyle-upload-*")) <= before
