"""Database engines and sessions for the study app: SQLite (WAL) by default, PostgreSQL by URL.

* :func:`make_engine` builds an engine from a URL. SQLite files are created owner-only (0600)
  and get WAL journaling,
  ``synchronous=FULL`` (a committed answer survives a crash of the process *and* of the
  machine), foreign keys, a busy timeout, and ``BEGIN IMMEDIATE`` transactions (writers queue
  for the lock instead of failing on a lock upgrade; within one process they queue on a Python
  lock first); read-only sessions use a plain ``BEGIN``.
  ``postgresql://`` URLs use psycopg 3.
* :func:`migrate` brings the schema to the newest Alembic revision shipped in
  ``prefstyle/app/migrations`` (run at every start; a no-op when up to date).
* :class:`Database` holds the engine and two session factories: ``write()`` and ``read()``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from prefstyle.errors import PrefstyleError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def normalize_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` -> ``postgresql+psycopg://`` (the driver we ship); others unchanged."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, pool_size: int = 8, max_overflow: int = 24) -> Engine:
    """An engine for ``url`` (see the module docstring). Bad URLs raise :class:`PrefstyleError`."""
    try:
        u = make_url(normalize_url(url))
    except ArgumentError as e:
        raise PrefstyleError(f"not a database URL: {url!r} ({e})") from None
    backend = u.get_backend_name()
    if backend == "sqlite":
        if not u.database or u.database == ":memory:" or u.database.startswith("file:"):
            raise PrefstyleError(f"SQLite database must be a file (sqlite:///path/app.db), got {url!r}")
        _private_file(Path(u.database).expanduser())
        engine = create_engine(
            u,
            connect_args={"timeout": 60, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=60,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        return create_engine(u, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, pool_timeout=60)
    raise PrefstyleError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://...")


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600, whatever the umask), and take
    group/other permissions away from an existing one (it holds participants' names and answers);
    SQLite gives its ``-wal`` and ``-shm`` files the same permissions."""
    import os
    import stat

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    except OSError as e:  # not ours to change: still start, the owner decides
        import logging

        logging.getLogger("prefstyle.app").warning("could not make %s private: %s", path, e)


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # pysqlite must not BEGIN on its own: _sqlite_on_begin does
    cur = dbapi_connection.cursor()
    try:
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("prefstyle_readonly") else "BEGIN IMMEDIATE")


def migrate(engine: Engine) -> str:
    """Upgrade the schema to the newest revision; returns it. Safe to call on every start."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:
        raise PrefstyleError("the package ships no database migrations (a broken install?)", path=MIGRATIONS_DIR)
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return head
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head


class Database:
    """An engine plus session factories. ``with db.write() as s: ...`` commits on success."""

    def __init__(self, url: str, **engine_kwargs: int) -> None:
        """``engine_kwargs``: ``pool_size``, ``max_overflow`` (:func:`make_engine`)."""
        self.url = normalize_url(url)
        self.engine = make_engine(url, **engine_kwargs)
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.engine.execution_options(prefstyle_readonly=True), expire_on_commit=False)
        # SQLite has one writer at a time: queueing writers on a lock in this process wakes them as
        # soon as the previous one commits, where SQLite's busy handler would poll with growing sleeps
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> str:
        return migrate(self.engine)

    def check(self) -> None:
        """Connect once: a database that cannot be opened (not a SQLite file, a folder, a server that
        refuses) is :class:`PrefstyleError` naming the file or the URL (password hidden), not a traceback."""
        from sqlalchemy.exc import DBAPIError

        try:
            with self.engine.connect():
                pass
        except DBAPIError as e:
            why = str(e.orig).strip().splitlines()[0] if str(e.orig).strip() else type(e.orig).__name__
            url = self.engine.url
            if self.dialect == "sqlite":
                raise PrefstyleError(f"cannot open the SQLite database: {why}", path=url.database) from None
            raise PrefstyleError(
                f"cannot open the database {url.render_as_string(hide_password=True)}: {why}"
            ) from None

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction takes the write lock at once (SQLite); commits at the end."""
        with self._write_lock, self._write() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only (SQLite: no write lock); rolled back at the end."""
        with self._read() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
