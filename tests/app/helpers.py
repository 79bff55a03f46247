"""Helpers for the study app's tests: small studies, an app on a temp database, a participant
driver, a PostgreSQL server on loopback, and a uvicorn subprocess."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
ADMIN = "test-admin-token"


def write_photos(folder: Path, n: int = 5, size: int = 96) -> Path:
    """``n`` small real photographs (scikit-image's) as PNG files in ``folder``."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera"]
    for name in names[:n]:
        arr = getattr(data, name)()
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, -1)
        im = Image.fromarray(arr[..., :3])
        im.thumbnail((size, size))
        im.save(folder / f"{name}.png")
    return folder


def folder_study(
    tmp: Path,
    sid: str = "t",
    main: int = 8,
    consistency: int = 2,
    style_after: int = 4,
    heldout: int = 1,
    photos: int = 5,
    **extra,
) -> dict:
    """A study dict (as from YAML) on a folder of photos rendered with three styles."""
    folder = tmp / "photos"
    if not folder.exists():
        write_photos(folder, photos)
    d = {
        "id": sid,
        "title": "Test study",
        "questions": {"main": main, "consistency": consistency, "style_after": style_after},
        "heldout": heldout,
        "images": {"size": 96},
        "model": "nearest-preferred",  # fast and independent of the shipped weights
        "source": {"kind": "folder", "path": str(folder), "styles": ["warm-film", "cool-matte", "camera:vivid"]},
    }
    d.update(extra)
    return d


def open_state(tmp: Path, study: dict | list[dict], db_url: str | None = None, **settings):
    """The app's state on a study (or several); styles render on a background thread (``render_mode``
    ``thread``, unless given) so tests need not start worker processes."""
    from prefstyle.app.server import open_state as _open
    from prefstyle.app.state import AppSettings
    from prefstyle.app.study import parse_study

    studies = study if isinstance(study, list) else [study]
    settings.setdefault("render_mode", "thread")
    return _open(
        AppSettings(
            db_url=db_url or f"sqlite:///{tmp / 'app.db'}",
            data_dir=tmp / "data",
            studies=[parse_study(s) for s in studies],
            admin_token=ADMIN,
            **settings,
        )
    )


def wait_style(client, sid: str, lut: bool = False, timeout: float = 60) -> dict:
    """Poll ``api/style`` until the participant's style (and the LUT when ``lut``) is rendered; its status."""
    t0 = time.monotonic()
    while True:
        r = client.get(f"/s/{sid}/api/style" + ("?lut=1" if lut else ""))
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["state"] != "failed", d
        if d["ready"] and (d["lut_ready"] or not lut):
            return d
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"style not rendered in {timeout} s: {d}")
        time.sleep(0.05)


def client_for(state):
    from fastapi.testclient import TestClient

    from prefstyle.app.server import create_app

    return TestClient(create_app(state=state), follow_redirects=False)


def join(client, sid: str, person: str = "Ann", device: str = "laptop", calibrate: bool = True) -> str:
    """Join (and calibrate); returns the participant's resume token (from the cookie)."""
    r = client.post(f"/s/{sid}/join", data={"person": person, "device": device, "consent": "yes"})
    assert r.status_code == 303, r.text
    token = r.cookies.get(f"ps_{sid}") or client.cookies.get(f"ps_{sid}")
    assert token
    if calibrate:
        r = client.post(f"/s/{sid}/calibrate", data={"dark_steps": "10", "light_steps": "11", "screen": "{}"})
        assert r.status_code == 303, r.text
    return token


def answer_payload(q: dict, choice: str, ms: int = 1500) -> dict:
    return {"question_id": q["id"], "a": q["a"]["id"], "b": q["b"]["id"], "choice": choice, "response_ms": ms}


def answer_n(
    client,
    sid: str,
    n: int | None = None,
    choose: Callable[[dict], str] = lambda q: "a",
    ms: int = 1500,
    headers: dict | None = None,
) -> list[dict]:
    """Answer ``n`` pairs (all when None); returns the questions answered."""
    done = []
    data = client.get(f"/s/{sid}/api/question", headers=headers).json()
    while not data["done"] and (n is None or len(done) < n):
        q = data["question"]
        r = client.post(f"/s/{sid}/api/answer", json=answer_payload(q, choose(q), ms), headers=headers)
        assert r.status_code == 200, r.text
        done.append(q)
        data = r.json()
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# PostgreSQL on loopback
# --------------------------------------------------------------------------------------------


def postgres_unavailable() -> str | None:
    """Why a throw-away PostgreSQL server cannot be started here, or None."""
    if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "pg_ctl").is_file():
        return f"PostgreSQL 15 binaries not found in {PG_BIN}"
    if os.geteuid() != 0:
        return "PostgreSQL refuses to run as root and these tests switch to the postgres user with runuser (need root)"
    if shutil.which("runuser") is None:
        return "runuser not found"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "no 'postgres' system user"
    return None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 in a temp folder owned by ``postgres``; yields its URL."""
    why = postgres_unavailable()
    if why:
        pytest.skip(why)
    import pwd

    pw = pwd.getpwnam("postgres")
    root = Path(tempfile.mkdtemp(prefix="prefstyle-pg-"))
    os.chown(root, pw.pw_uid, pw.pw_gid)
    data, sock = root / "data", root / "sock"
    as_pg = ["runuser", "-u", "postgres", "--"]
    try:
        sock.mkdir()
        os.chown(sock, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            [
                *as_pg,
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
        )
        for _ in range(5):
            port = free_port()
            r = subprocess.run(
                [
                    *as_pg,
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(data),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(root / "log.txt"),
                    "-o",
                    (
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off "
                        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                    ),
                    "start",
                ],
                capture_output=True,
                check=False,
            )
            if r.returncode == 0:
                break
        else:
            pytest.skip(f"PostgreSQL did not start: {(root / 'log.txt').read_text()[-500:]}")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                check=False,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(base_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``base_url``; returns its URL."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + f"/{name}"


# --------------------------------------------------------------------------------------------
# uvicorn subprocess
# --------------------------------------------------------------------------------------------


class ServerProcess:
    """``python -m prefstyle.app`` in a subprocess on a free loopback port."""

    def __init__(self, study_file: Path, db_url: str, data_dir: Path, log: Path, extra: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.log = open(log, "ab")  # noqa: SIM115 - closed in kill()/stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefstyle.app",
                "--study",
                str(study_file),
                "--db",
                db_url,
                "--data",
                str(data_dir),
                "--port",
                str(self.port),
                "--admin-token",
                ADMIN,
                *extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(data_dir.parent),
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120) -> None:
        import httpx

        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("server did not start")

    def kill(self) -> None:
        """SIGKILL to the server and everything it started (worker and render processes): no shutdown
        handler runs."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # render workers left behind by a killed parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        if not self.log.closed:
            self.log.close()
