"""Load test of the study app: N participants with think time who also look at their style.

    python benchmarks/bench_app_load.py --participants 100 --think 1 --duration 120 --backend both
    python benchmarks/bench_app_load.py --backend postgres --workers 4 --kill-after 40   # the kill -9 test

For each database (a SQLite file in WAL mode; a throw-away PostgreSQL 15 server on loopback when
one can be started here, or ``--pg-url``), a real server is started on a free loopback port:
``python -m prefstyle.app --workers W`` (W = ``--sqlite-workers``, default 1, and ``--workers``,
default 4, for PostgreSQL), each server process with one render process. N participants
(asyncio + httpx) join, pass the screen check, then answer pair after pair, each after a think
time of ``--think`` seconds (±20 %, seeded), until their study is done or ``--duration`` seconds
have passed. By default all start at the same moment and, with similar think times, answer and
reach their style page nearly in lockstep: bursts of ``N`` requests within a fraction of a
second, the worst case. ``--ramp S`` starts each participant at a random moment within the
first S seconds, as people opening a study link over time would. A participant looks at "your style" as soon as it opens and again every
``--style-every`` answers: it opens the page, polls ``api/style`` (after 0.5 s, then 1.25 s, 1.5 s, ... up to 3 s apart, as
the page's script does) until the style is rendered, loads the page and its retouched images, then
goes on answering (a view still waiting ``--style-grace`` seconds after the answering phase is
given up and counted as not ready). Reported per database:

* answers acknowledged and stored (equal: nothing lost), answers/s, errors;
* latency of the answer requests (p50/p95/p99/max, ms), measured while styles render; with
  ``--ramp`` also after the ramp; and per ``--window`` seconds (a time series: bursts show up
  there);
* style page ready: seconds from opening the style page to a rendered style (median/p95/max of
  the views that got there; the median over all views, counting the given-up ones at the time
  they were given up, is a lower bound);
* peak resident memory of the server processes (each, and all together) and of the render
  processes, sampled every 0.5 s from ``/proc``;
* CPU seconds during the answering phase: the server processes, their helpers (render processes
  and active sampling's ranking process, apart and together) and this client; and how late the client's event loop
  wakes (a 10 ms ticker), the part of a round trip that is the load generator queueing. Both
  say how much of a latency is the server's when clients and server share the machine.

``--kill-after S``: after S seconds of load the whole server (parent, workers, render processes)
is killed with SIGKILL; then every acknowledged answer must be in the database, and after a
restart every participant must resume after their stored answers, and (when no answer of theirs
was stored without being acknowledged) at the pair they were last served.

Prints one JSON object (also written to ``--out`` when given). Database settings are the app's
defaults (SQLite ``synchronous=FULL``; PostgreSQL with ``fsync`` and ``synchronous_commit`` on).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from _report import emit

SID = "load"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
ADMIN_TOKEN = "bench-admin-token-0123456789"


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
        subprocess.run(
            [
                *as_pg,
                str(PG_BIN / "initdb"),
                "-D",
                str(root / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_pg,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(root / "data"),
                "-w",
                "-l",
                str(root / "log"),
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {root / 'sock'} -c max_connections=300",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


def prepare(tmp: Path, db_url: str, args) -> Path:
    """Write the study file and render its images (outside the measured server)."""
    import yaml

    from prefstyle.app.server import open_state
    from prefstyle.app.state import AppSettings
    from prefstyle.app.study import parse_study

    study = {
        "id": SID,
        "questions": {"main": args.main, "consistency": args.consistency, "style_after": args.style_after},
        "heldout": args.heldout,
        "model": args.model,
        "sampling": args.sampling,
        "images": {"size": args.image_size},
        "source": {"kind": "simulator", "scenes": 8, "renditions": 4, "seed": 0},
    }
    (tmp / "study.yaml").write_text(yaml.safe_dump(study))
    state = open_state(
        AppSettings(db_url=db_url, data_dir=tmp / "data", studies=[parse_study(study)], admin_token=ADMIN_TOKEN)
    )
    state.db.dispose()
    return tmp / "study.yaml"


class Server:
    """``python -m prefstyle.app`` in its own process group (so SIGKILL reaches every process of it)."""

    def __init__(self, study: Path, db_url: str, tmp: Path, workers: int, render_workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.workers = workers
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefstyle.app",
                "--study",
                str(study),
                "--db",
                db_url,
                "--data",
                str(tmp / "data"),
                "--port",
                str(self.port),
                "--admin-token",
                ADMIN_TOKEN,
                "--workers",
                str(workers),
                "--render-workers",
                str(render_workers),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        import httpx

        t0 = time.monotonic()
        while time.monotonic() - t0 < 180:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    time.sleep(3 if self.workers > 1 else 0.5)  # every worker up (they start one by one)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.log.close()


# --------------------------------------------------------------------------------------------
# memory of the server's process tree
# --------------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    return kids


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _pss_mb(pid: int) -> float:
    """Proportional set size: shared library pages (torch's, mostly) split among the processes mapping them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process so far (``/proc/PID/stat``), None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: helper processes by their ``/proc/PID/comm`` (app/render.py, app/active.py)
HELPER_ROLES = {"render-helper": "render", "ranking-helper": "ranking"}


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return ""


class MemorySampler(threading.Thread):
    """Peak RSS of the server processes (the root, or its uvicorn workers) and of their children,
    and the CPU seconds each group used while it ran (last value seen per process)."""

    def __init__(self, root: int, workers: int):
        super().__init__(daemon=True)
        self.root, self.workers = root, workers
        self.stop_event = threading.Event()
        self.peak = {
            "server_process_max_mb": 0.0,
            "servers_total_mb": 0.0,
            "render_process_max_mb": 0.0,
            "all_total_mb": 0.0,
            "all_total_pss_mb": 0.0,
        }
        self.first: dict[str, float] | None = None
        self.cpu_start: dict[int, float] = {}
        self.cpu_last: dict[int, tuple[str, float]] = {}

    def _sample_cpu(self, role: str, pids: list[int]) -> None:
        for p in pids:
            c = _cpu_s(p)
            if c is not None:
                self.cpu_start.setdefault(p, c)
                self.cpu_last[p] = (role, c)

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            kids = _children()
            servers = [self.root] if self.workers == 1 else kids.get(self.root, [])
            others = [c for s in servers for c in kids.get(s, [])]
            self._sample_cpu("server", servers)
            for p in others:  # render processes and active sampling's ranking process, by the name each gives itself
                self._sample_cpu(HELPER_ROLES.get(_comm(p), "other_helpers"), [p])
            srv = [_rss_mb(p) for p in servers]
            ren = [_rss_mb(p) for p in others]
            now = {
                "server_process_max_mb": max(srv, default=0),
                "servers_total_mb": sum(srv),
                "render_process_max_mb": max(ren, default=0),
                "all_total_mb": sum(srv) + sum(ren) + (_rss_mb(self.root) if self.workers > 1 else 0),
                "all_total_pss_mb": sum(_pss_mb(p) for p in [*servers, *others])
                + (_pss_mb(self.root) if self.workers > 1 else 0),
            }
            if self.first is None:
                self.first = now
            for k, v in now.items():
                self.peak[k] = max(self.peak[k], v)

    def result(self) -> dict:
        self.stop_event.set()
        self.join(timeout=5)
        return {
            "at_start": {k: round(v, 1) for k, v in (self.first or {}).items()},
            "peak": {k: round(v, 1) for k, v in self.peak.items()},
        }

    def mark(self) -> None:
        """Count CPU from now on (the answering phase starts)."""
        self.cpu_start = {p: c for p, (_, c) in list(self.cpu_last.items())}

    def cpu(self) -> dict[str, float]:
        """CPU seconds per group between the first and the last sample (call after :meth:`result`)."""
        out = {"server": 0.0, "render": 0.0, "ranking": 0.0, "other_helpers": 0.0}
        for p, (role, c) in self.cpu_last.items():
            out[role] += c - self.cpu_start[p]
        out["helpers"] = out["render"] + out["ranking"] + out["other_helpers"]
        return {k: round(v, 1) for k, v in out.items()}


class LoopLag:
    """How late the client's own event loop wakes up (a 10 ms ticker): the part of a measured round
    trip that is the load generator's queueing, not the server's."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.running = True

    async def run(self) -> None:
        while self.running:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - t - 0.01)


# --------------------------------------------------------------------------------------------
# participants
# --------------------------------------------------------------------------------------------


async def view_style(c, out: dict, give_up_at: float) -> None:
    """Open the style page, poll until rendered (or ``give_up_at``), load the page and its images (as the browser does)."""
    t = time.perf_counter()
    r = await c.get(f"/s/{SID}/style")
    if r.status_code != 200:
        out["errors"].append(f"style {r.status_code}")
        return
    delay = 0.5  # as static/style.js: first look after 0.5 s, then 1.25, 1.5, ... up to 3 s apart
    while True:
        await asyncio.sleep(delay)
        delay = min(3.0, max(1.0, delay) + 0.25)
        r = await c.get(f"/s/{SID}/api/style")
        d = r.json()
        if r.status_code != 200 or d.get("state") == "failed":
            out["errors"].append(f"style status {r.status_code} {d.get('state')}")
            return
        if d["style_ready"]:
            break
        if time.perf_counter() > give_up_at:
            out["style_not_ready"].append(time.perf_counter() - t)
            return
    out["style_ready_s"].append(time.perf_counter() - t)
    page = (await c.get(f"/s/{SID}/style")).text
    import re

    for url in re.findall(r'src="(/s/[^"]+/me/file/[^"]+)"', page):
        await c.get(url)
    out["style_views"] += 1


async def participant(base: str, i: int, holder: dict, out: dict, args) -> None:
    import httpx

    rng = random.Random(i)
    state = out["people"].setdefault(i, {"acked": {}, "next": None, "in_flight": False, "cookies": None})
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits(max_connections=2)) as c:
        t = time.perf_counter()
        try:
            r = await c.post(f"/s/{SID}/join", data={"person": f"load{i}", "device": "bench", "consent": "yes"})
            if r.status_code != 303:
                out["errors"].append(f"join {r.status_code}")
                return
            state["cookies"] = dict(c.cookies)
            await c.post(f"/s/{SID}/calibrate", data={"dark_steps": "12", "light_steps": "12"})
            d = (await c.get(f"/s/{SID}/api/question")).json()
        except httpx.HTTPError as e:
            out["errors"].append(f"join {type(e).__name__}")
            return
        state["next"] = d["question"]
        out["join_s"].append(time.perf_counter() - t)
        await holder["go"].wait()
        if args.ramp:  # arrivals spread over the ramp, as people open a study link one by one
            await asyncio.sleep(rng.uniform(0, args.ramp))
        since_view, viewed = 0, False
        while not d["done"] and time.perf_counter() < holder["deadline"]:
            await asyncio.sleep(args.think * rng.uniform(0.8, 1.2))
            q = d["question"]
            choice = "a" if (q["a"]["id"] + i) % 2 else "b"
            body = {"question_id": q["id"], "a": q["a"]["id"], "b": q["b"]["id"], "choice": choice, "response_ms": 1000}
            t = time.perf_counter()
            state["in_flight"] = True
            try:
                r = await c.post(f"/s/{SID}/api/answer", json=body)
            except httpx.HTTPError as e:
                out["errors"].append(f"answer {type(e).__name__}")
                return
            out["latency"].append(time.perf_counter() - t)
            out["latency_at"].append(t - holder["start"])
            if r.status_code != 200:
                out["errors"].append(f"answer {r.status_code}")
                return
            d = r.json()
            state["acked"][q["id"]] = choice
            state["next"], state["in_flight"] = d["question"], False
            if not d["duplicate"]:
                out["acked"] += 1
            since_view += 1
            if (
                args.style_every
                and d["progress"]["style_ready"]
                and (not viewed or since_view >= args.style_every or d["done"])
                and time.perf_counter() < holder["deadline"]
            ):
                viewed, since_view = True, 0
                try:
                    await view_style(c, out, holder["deadline"] + args.style_grace)
                except httpx.HTTPError as e:
                    out["errors"].append(f"style {type(e).__name__}")
                    return


async def load(base: str, args, kill=None, on_go=None) -> dict:
    out = {
        "latency": [],
        "latency_at": [],
        "join_s": [],
        "errors": [],
        "acked": 0,
        "style_ready_s": [],
        "style_views": 0,
        "style_not_ready": [],
        "people": {},
    }
    holder = {"go": asyncio.Event(), "deadline": 0.0, "start": 0.0}
    t0 = time.perf_counter()
    lag = LoopLag()
    ticker = asyncio.create_task(lag.run())
    tasks = [asyncio.create_task(participant(base, i, holder, out, args)) for i in range(args.participants)]
    while len(out["join_s"]) + len(out["errors"]) < args.participants and time.perf_counter() - t0 < 300:
        await asyncio.sleep(0.05)
    out["join_wall_s"] = time.perf_counter() - t0
    start = time.perf_counter()
    holder["start"], holder["deadline"] = start, start + args.duration
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    n_lag = len(lag.lags)
    if on_go is not None:
        on_go()
    holder["go"].set()
    if kill is not None:
        await asyncio.sleep(args.kill_after)
        kill()
        out["killed_after_s"] = time.perf_counter() - start
    await asyncio.gather(*tasks)
    out["answer_wall_s"] = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    out["client_cpu_s"] = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    lag.running = False
    await ticker
    out["loop_lag"] = lag.lags[n_lag:]
    return out


def stored_answers(db_url: str) -> dict[str, dict[int, str]]:
    from sqlalchemy import select

    from prefstyle.app.db import Database
    from prefstyle.app.models import Participant, Question

    db = Database(db_url)
    try:
        with db.read() as s:
            rows = s.execute(
                select(Participant.person, Question.id, Question.answer)
                .join(Participant, Question.participant_id == Participant.id)
                .where(Participant.study_id == SID, Question.answer.is_not(None))
            ).all()
    finally:
        db.dispose()
    out: dict[str, dict[int, str]] = {}
    for person, qid, ans in rows:
        out.setdefault(person, {})[qid] = ans
    return out


def active_choices(db_url: str, data_dir: Path) -> dict:
    """Main questions served, and how many of them show another pair than the participant's plan
    (``sampling: active`` chose it; a lower bound on the active choices, which may coincide with
    the plan)."""
    from sqlalchemy import select

    from prefstyle.app.db import Database
    from prefstyle.app.models import Participant, Question
    from prefstyle.app.state import load_study_index
    from prefstyle.app.study import plan_questions

    db = Database(db_url)
    try:
        study = load_study_index(db, SID, data_dir)
        cfg = study.cfg
        with db.read() as s:
            seeds = dict(s.execute(select(Participant.id, Participant.seed).where(Participant.study_id == SID)).all())
            rows = s.execute(
                select(
                    Question.participant_id, Question.position, Question.rendition_a_id, Question.rendition_b_id
                ).where(Question.kind == "main", Question.served_at.is_not(None))
            ).all()
    finally:
        db.dispose()
    plans = {
        pid: plan_questions(study.question_scenes, cfg.main, cfg.consistency, cfg.sampling, seed)
        for pid, seed in seeds.items()
    }
    differs = 0
    for pid, pos, a, b in rows:
        scene, ka, kb = plans[pid][pos].pair()
        planned = (study.rendition_by_key[(scene, ka)].id, study.rendition_by_key[(scene, kb)].id)
        differs += planned != (a, b)
    return {"main_served": len(rows), "pair_not_the_planned_one": differs}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def _summary(values: list[float], scale: float, keys=(50, 95, 99)) -> dict | None:
    if not values:
        return None
    v = [x * scale for x in values]
    d = {f"p{k}": round(pct(v, k), 1 if scale > 1 else 2) for k in keys}
    d["max"] = round(max(v), 1 if scale > 1 else 2)
    d["mean"] = round(statistics.fmean(v), 1 if scale > 1 else 2)
    return d


def latency_by_window(at: list[float], latency: list[float], window: float) -> list[dict]:
    """Answer round trips (ms) per ``window`` seconds of the answering phase, by the time each was sent."""
    rows = []
    for w in range(int(max(at, default=0) // window) + 1):
        v = [x for t, x in zip(at, latency) if w * window <= t < (w + 1) * window]
        if v:
            rows.append({"from_s": w * window, "answers": len(v), **(_summary(v, 1000, keys=(50, 95)) or {})})
    return rows


def check_resume(url: str, out: dict, stored: dict[str, dict[int, str]]) -> dict:
    """After a restart: each participant resumes after their stored answers, at their last served pair."""
    import httpx

    checked = wrong_count = wrong_pair = pairs_checked = 0
    for i, st in out["people"].items():
        if not st["cookies"]:
            continue
        d = httpx.get(f"{url}/s/{SID}/api/question", cookies=st["cookies"], timeout=60).json()
        checked += 1
        mine = stored.get(f"load{i}", {})
        if d["progress"]["answered"] != len(mine):
            wrong_count += 1
        elif len(mine) == len(st["acked"]):  # nothing stored unacknowledged: the pair last served again
            pairs_checked += 1
            if d["question"] != st["next"]:
                wrong_pair += 1
    return {
        "participants_checked": checked,
        "wrong_answer_count": wrong_count,
        "pairs_checked": pairs_checked,
        "wrong_pair": wrong_pair,
    }


def run_backend(name: str, db_url: str, workers: int, args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"prefstyle-bench-{name}-"))
    try:
        study = prepare(tmp, db_url, args)
        server = Server(study, db_url, tmp, workers, args.render_workers)
        try:
            server.wait_ready()
            mem = MemorySampler(server.proc.pid, workers)
            mem.start()
            load_before = os.getloadavg()
            out = asyncio.run(load(server.url, args, kill=server.kill if args.kill_after else None, on_go=mem.mark))
            memory = mem.result()
            load_after = os.getloadavg()
        finally:
            server.stop()
        stored = stored_answers(db_url)
        choices = active_choices(db_url, tmp / "data") if args.sampling == "active" else None
        n_stored = sum(len(v) for v in stored.values())
        lost = sum(
            1
            for i, st in out["people"].items()
            for qid, ans in st["acked"].items()
            if stored.get(f"load{i}", {}).get(qid) != ans
        )
        res = {
            "database": name,
            "server_processes": workers,
            "render_processes_per_server": args.render_workers,
            "participants": args.participants,
            "think_s": args.think,
            "joined": len(out["join_s"]),
            "answer_wall_s": round(out["answer_wall_s"], 1),
            "answers_acknowledged": out["acked"],
            "answers_stored": n_stored,
            "acknowledged_but_not_stored": lost,
            "stored_equals_acknowledged": n_stored == out["acked"],
            "answers_per_s": round(out["acked"] / out["answer_wall_s"], 1),
            "answer_latency_ms": _summary(out["latency"], 1000),
            "answer_latency_ms_after_ramp": _summary(
                [x for t, x in zip(out["latency_at"], out["latency"]) if t >= args.ramp], 1000
            )
            if args.ramp
            else None,
            "answer_latency_ms_by_window": latency_by_window(out["latency_at"], out["latency"], args.window),
            "style_views": out["style_views"] + len(out["style_not_ready"]),
            "style_ready_s": _summary(out["style_ready_s"], 1, keys=(50, 95)),
            "style_views_not_ready_when_given_up": len(out["style_not_ready"]),
            "style_ready_s_median_all_views_lower_bound": round(
                statistics.median(out["style_ready_s"] + out["style_not_ready"]), 2
            )
            if out["style_ready_s"] or out["style_not_ready"]
            else None,
            "memory_mb": memory,
            "cpu_s": {**mem.cpu(), "client": round(out["client_cpu_s"], 1)},
            "client_loop_lag_ms": _summary(out["loop_lag"], 1000),
            "active_choices": choices,
            "errors": sorted(set(out["errors"]))[:20],
            "error_count": len(out["errors"]),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        }
        if args.kill_after:
            res["killed_after_s"] = round(out.get("killed_after_s", 0), 1)
            res["stored_but_not_acknowledged"] = n_stored - (out["acked"] - lost)
            server = Server(study, db_url, tmp, workers, args.render_workers)
            try:
                server.wait_ready()
                res["after_restart"] = check_resume(server.url, out, stored)
            finally:
                server.stop()
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=100)
    ap.add_argument("--think", type=float, default=1.0, help="seconds between a pair arriving and its answer")
    ap.add_argument("--duration", type=float, default=120.0, help="answering phase bound, seconds")
    ap.add_argument(
        "--ramp",
        type=float,
        default=0.0,
        help="participants start answering at a uniformly random moment within this many seconds "
        "(0: all at once, in lockstep: the worst case)",
    )
    ap.add_argument("--window", type=float, default=5.0, help="seconds per row of the latency time series")
    ap.add_argument(
        "--style-every",
        type=int,
        default=20,
        help="look at the style when it opens and every this many answers (0: never)",
    )
    ap.add_argument(
        "--style-grace",
        type=float,
        default=30.0,
        help="after the answering phase, wait this long at most for a style being looked at",
    )
    ap.add_argument("--main", type=int, default=80)
    ap.add_argument("--consistency", type=int, default=10)
    ap.add_argument("--style-after", type=int, default=16)
    ap.add_argument("--heldout", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=512)
    ap.add_argument("--model", default="default")
    ap.add_argument("--sampling", default="balanced", choices=["balanced", "random", "active"])
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--sqlite-workers", type=int, default=1, help="server processes on SQLite")
    ap.add_argument("--workers", type=int, default=4, help="server processes on PostgreSQL")
    ap.add_argument("--render-workers", type=int, default=1, help="render processes per server process")
    ap.add_argument("--pg-url", default=None, help="use this PostgreSQL database instead of starting a server")
    ap.add_argument(
        "--kill-after",
        type=float,
        default=0.0,
        help="SIGKILL the whole server after this many seconds of load, then check (0: no kill)",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    results = []
    if args.backend in ("sqlite", "both"):
        tmp_db = Path(tempfile.mkdtemp(prefix="prefstyle-bench-db-"))
        try:
            results.append(run_backend("sqlite", f"sqlite:///{tmp_db / 'app.db'}", args.sqlite_workers, args))
        finally:
            shutil.rmtree(tmp_db, ignore_errors=True)
    if args.backend in ("postgres", "both"):
        try:
            with postgres(args.pg_url) as url:
                results.append(run_backend("postgresql", url, args.workers, args))
        except RuntimeError as e:
            results.append({"database": "postgresql", "skipped": str(e)})
    report = {
        "benchmark": "study app load test (think time, style views)",
        "command": "python benchmarks/bench_app_load.py " + " ".join(sys.argv[1:]),
        "server": "python -m prefstyle.app --workers W --render-workers R (uvicorn)",
        "client": "asyncio + httpx on loopback, one client per participant",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "results": results,
    }
    emit(report, args.out, indent=2)


if __name__ == "__main__":
    main()
