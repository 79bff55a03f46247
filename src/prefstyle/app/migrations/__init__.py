"""Alembic migrations of the study app's database, run programmatically by :func:`prefstyle.app.db.migrate`."""
