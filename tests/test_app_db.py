"""The study app's database layer: migrations, SQLite settings, concurrent writers."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from prefstyle.app.db import Database, make_engine, normalize_url
from prefstyle.app.models import Base, Study
from prefstyle.errors import PrefstyleError


def test_migrations_create_exactly_the_models_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    assert db.migrate() == "0001"
    assert db.migrate() == "0001"  # idempotent
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'sub' / 'b.db'}")  # parent folders are created
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_bad_urls_are_refused():
    for url in ("sqlite://", "sqlite:///:memory:", "mysql://x@y/z", "not a url"):
        with pytest.raises(PrefstyleError):
            make_engine(url)
    assert normalize_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"


def test_concurrent_writers_queue_instead_of_failing(tmp_path):
    """BEGIN IMMEDIATE: read-then-write transactions from many threads never hit 'database is locked'."""
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.migrate()
    with db.write() as s:
        s.add(Study(id="s", title="0", config_json="{}", catalog_hash="h"))
    errors = []

    def bump():
        try:
            for _ in range(20):
                with db.write() as s:
                    st = s.get(Study, "s")
                    st.title = str(int(st.title) + 1)
        except Exception as e:  # noqa: BLE001 - the assertion below reports any error
            errors.append(e)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as s:
        assert s.get(Study, "s").title == "160"  # no lost update
        assert s.scalar(select(func.count()).select_from(Study)) == 1
    db.dispose()
