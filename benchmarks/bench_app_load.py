"""Load test of the study app: N concurrent participants answering as fast as they can.

    python benchmarks/bench_app_load.py --participants 100 --duration 30 --backend both

For each database (SQLite file in WAL mode, and a throw-away PostgreSQL 15 server on loopback
when one can be started here, or ``--pg-url``), a real server (``python -m prefstyle.app``:
one uvicorn process) is started on a free loopback port. N participants (asyncio + httpx,
one connection each) join, pass the screen check, then answer pair after pair with no pause
until their study is done or ``--duration`` seconds have passed. Reported per database:
answers/s, latency of the answer requests (p50/p90/p99/max, ms), joins/s, and the check that
the number of answers stored in the database equals the number the server acknowledged.

Prints one JSON object (also written to ``--out`` when given). Database settings are the
app's defaults (SQLite ``synchronous=FULL``; PostgreSQL with ``fsync`` and
``synchronous_commit`` on), so every acknowledged answer is on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from _report import emit

SID = "load"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres(pg_url: str | None):
    """Yields a PostgreSQL URL: ``pg_url``, or a server started here (root: runs as ``postgres``)."""
    if pg_url:
        yield pg_url
        return
    import pwd

    if not (PG_BIN / "pg_ctl").is_file() or os.geteuid() != 0 or shutil.which("runuser") is None:
        raise RuntimeError("cannot start PostgreSQL here (need /usr/lib/postgresql/15 and root); pass --pg-url")
    pw = pwd.getpwnam("postgres")
    root = Path(tempfile.mkdtemp(prefix="prefstyle-bench-pg-"))
    os.chown(root, pw.pw_uid, pw.pw_gid)
    (root / "sock").mkdir()
    os.chown(root / "sock", pw.pw_uid, pw.pw_gid)
    as_pg = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    try:
        subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--locale=C"], check=True, capture_output=True)
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-w", "-l", str(root / "log"),
                        "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root / 'sock'} -c max_connections=200",
                        "start"], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "stop"],
                       capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def prepare(tmp: Path, db_url: str, main: int, consistency: int) -> Path:
    """Write the study file and render its images (outside the measured server)."""
    import yaml

    from prefstyle.app.server import open_state
    from prefstyle.app.state import AppSettings
    from prefstyle.app.study import parse_study

    study = {"id": SID, "questions": {"main": main, "consistency": consistency}, "heldout": 1,
             "images": {"size": 128}, "source": {"kind": "simulator", "scenes": 8, "renditions": 4, "seed": 0}}
    (tmp / "study.yaml").write_text(yaml.safe_dump(study))
    state = open_state(AppSettings(db_url=db_url, data_dir=tmp / "data", studies=[parse_study(study)],
                                   admin_token="bench"))
    state.db.dispose()
    return tmp / "study.yaml"


def start_server(study: Path, db_url: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(tmp / "server.log", "ab")  # noqa: SIM115 - the server process keeps it
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "prefstyle.app", "--study", str(study), "--db", db_url, "--data",
                             str(tmp / "data"), "--port", str(port), "--admin-token", "bench"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {tmp / 'server.log'}")
        try:
            if httpx.get(url + "/", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


async def participant(base: str, i: int, deadline_holder: dict, out: dict) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=1)) as c:
        t = time.perf_counter()
        r = await c.post(f"/s/{SID}/join", data={"person": f"load{i}", "device": "bench", "consent": "yes"})
        if r.status_code != 303:
            out["errors"].append(f"join {r.status_code}")
            return
        await c.post(f"/s/{SID}/calibrate", data={"dark_steps": "12", "light_steps": "12"})
        d = (await c.get(f"/s/{SID}/api/question")).json()
        out["join_s"].append(time.perf_counter() - t)
        await deadline_holder["go"].wait()
        while not d["done"] and time.perf_counter() < deadline_holder["deadline"]:
            q = d["question"]
            body = {"question_id": q["id"], "a": q["a"]["id"], "b": q["b"]["id"],
                    "choice": "a" if (q["a"]["id"] + i) % 2 else "b", "response_ms": 1000}
            t = time.perf_counter()
            try:
                r = await c.post(f"/s/{SID}/api/answer", json=body)
            except httpx.HTTPError as e:
                out["errors"].append(type(e).__name__)
                return
            out["latency"].append(time.perf_counter() - t)
            if r.status_code != 200:
                out["errors"].append(f"answer {r.status_code}")
                return
            d = r.json()
            if not d["duplicate"]:
                out["acked"] += 1


async def load(base: str, n: int, duration: float) -> dict:
    out = {"latency": [], "join_s": [], "errors": [], "acked": 0}
    holder = {"go": asyncio.Event(), "deadline": 0.0}
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(participant(base, i, holder, out)) for i in range(n)]
    while len(out["join_s"]) + len(out["errors"]) < n and time.perf_counter() - t0 < 300:
        await asyncio.sleep(0.05)
    join_wall = time.perf_counter() - t0
    start = time.perf_counter()
    holder["deadline"] = start + duration
    holder["go"].set()
    await asyncio.gather(*tasks)
    out["answer_wall_s"] = time.perf_counter() - start
    out["join_wall_s"] = join_wall
    return out


def stored_answers(db_url: str) -> int:
    from sqlalchemy import func, select

    from prefstyle.app.db import Database
    from prefstyle.app.models import Participant, Question

    db = Database(db_url)
    try:
        with db.read() as s:
            return s.scalar(select(func.count()).select_from(Question)
                            .join(Participant, Question.participant_id == Participant.id)
                            .where(Participant.study_id == SID, Question.answer.is_not(None)))
    finally:
        db.dispose()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def run_backend(name: str, db_url: str, args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"prefstyle-bench-{name}-"))
    try:
        study = prepare(tmp, db_url, args.main, args.consistency)
        proc, url = start_server(study, db_url, tmp)
        load_before = os.getloadavg()
        try:
            out = asyncio.run(load(url, args.participants, args.duration))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        stored = stored_answers(db_url)
        lat = [x * 1000 for x in out["latency"]]
        return {
            "database": name,
            "participants": args.participants,
            "questions_per_participant": args.main + args.consistency,
            "joined": len(out["join_s"]),
            "join_wall_s": round(out["join_wall_s"], 2),
            "answer_wall_s": round(out["answer_wall_s"], 2),
            "answers_acknowledged": out["acked"],
            "answers_stored": stored,
            "stored_equals_acknowledged": stored == out["acked"],
            "answers_per_s": round(out["acked"] / out["answer_wall_s"], 1),
            "latency_ms": {"p50": round(pct(lat, 50), 1), "p90": round(pct(lat, 90), 1),
                           "p99": round(pct(lat, 99), 1), "max": round(max(lat), 1),
                           "mean": round(statistics.fmean(lat), 1)} if lat else None,
            "errors": sorted(set(out["errors"])),
            "error_count": len(out["errors"]),
            "loadavg_before": [round(x, 2) for x in load_before],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=100)
    ap.add_argument("--duration", type=float, default=30.0, help="answering phase bound, seconds")
    ap.add_argument("--main", type=int, default=80)
    ap.add_argument("--consistency", type=int, default=10)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--pg-url", default=None, help="use this PostgreSQL database instead of starting a server")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    results = []
    if args.backend in ("sqlite", "both"):
        tmp_db = Path(tempfile.mkdtemp(prefix="prefstyle-bench-db-"))
        try:
            results.append(run_backend("sqlite", f"sqlite:///{tmp_db / 'app.db'}", args))
        finally:
            shutil.rmtree(tmp_db, ignore_errors=True)
    if args.backend in ("postgres", "both"):
        try:
            with postgres(args.pg_url) as url:
                results.append(run_backend("postgresql", url, args))
        except RuntimeError as e:
            results.append({"database": "postgresql", "skipped": str(e)})
    report = {
        "benchmark": "study app load test",
        "command": "python benchmarks/bench_app_load.py " + " ".join(sys.argv[1:]),
        "server": "python -m prefstyle.app (uvicorn, 1 process, h11, sync routes in the thread pool)",
        "client": "asyncio + httpx on loopback, one connection per participant, no think time",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "results": results,
    }
    emit(report, args.out, indent=2)


if __name__ == "__main__":
    main()
