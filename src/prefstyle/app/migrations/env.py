"""Alembic environment: runs with the connection :func:`prefstyle.app.db.migrate` hands over.

Offline (SQL script) mode is not supported: the app migrates its own database at start-up.
"""

from __future__ import annotations

from alembic import context

from prefstyle.app.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("prefstyle's migrations run through prefstyle.app.db.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
