"""The study web app (``prefstyle serve``): collects pairwise judgments from participants.

* :mod:`.study` — study YAML (:class:`StudyConfig`) and question planning (sampling strategies).
* :mod:`.catalog` — scenes and renditions from a pairs dataset, the simulator or a folder + styles;
  images rendered once and cached on disk.
* :mod:`.models`, :mod:`.db`, ``migrations/`` — SQLAlchemy 2 tables, engines (SQLite WAL or
  PostgreSQL), Alembic migrations run at start-up.
* :mod:`.flow` — join, calibrate, serve the current pair, store an answer (committed before the next
  pair is served), progress.
* :mod:`.personal` — "your style": profile, held-out photos retouched, ``.cube`` LUT; :mod:`.uploads`
  — participants' own photos, checked.
* :mod:`.stats`, :mod:`.export` — the organizer's numbers and the pairs-format export.
* :mod:`.server`, :mod:`.routes_participant`, :mod:`.routes_admin`, :mod:`.security` — the FastAPI app.

See ``docs/APP.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported on first use (below): ``import prefstyle.app`` stays light
    from prefstyle.app.server import create_app
    from prefstyle.app.state import AppSettings

__all__ = ["AppSettings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from prefstyle.app.server import create_app

        return create_app
    if name == "AppSettings":
        from prefstyle.app.state import AppSettings

        return AppSettings
    raise AttributeError(name)
