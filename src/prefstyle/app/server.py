"""The FastAPI application of ``prefstyle serve``: :func:`create_app` and :func:`run`.

``create_app(settings)`` opens the database, runs the migrations, creates or updates the
configured studies (rendering their images when new) and returns the app; errors in the
settings or study files raise :class:`~prefstyle.errors.PrefstyleError` before anything listens.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from prefstyle import __version__
from prefstyle.app.catalog import stored_configs, sync_study
from prefstyle.app.db import Database
from prefstyle.app.flow import FlowError
from prefstyle.app.security import GuardMiddleware
from prefstyle.app.state import AppSettings, AppState, admin_token_for, load_study_index
from prefstyle.app.study import default_study

log = logging.getLogger("prefstyle.app")
HERE = Path(__file__).resolve().parent
# autoescape everything: Starlette's default only escapes templates named *.html
templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                                                   autoescape=True))


def open_state(settings: AppSettings) -> AppState:
    """Database migrated, studies synced and loaded: everything the routes need."""
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    try:
        db.migrate()
        configs = list(settings.studies)
        if not configs and settings.use_default_study and not stored_configs(db):
            configs = [default_study()]
        ids = [c.id for c in configs]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            from prefstyle.errors import PrefstyleError

            raise PrefstyleError(f"two study files use the id {', '.join(dup)}: ids must be unique")
        for cfg in configs:
            log.info("study %s: checking scenes and images", cfg.id)
            sync_study(db, cfg, data_dir)
        studies = {c.id: load_study_index(db, c.id, data_dir) for c in stored_configs(db)}
    except BaseException:
        db.dispose()
        raise
    return AppState(settings=settings, db=db, admin_token=admin_token_for(settings), studies=studies)


def create_app(settings: AppSettings | None = None, state: AppState | None = None) -> FastAPI:
    """The web app for ``settings`` (or an already opened ``state``)."""
    from prefstyle.app import routes_admin, routes_participant

    state = state or open_state(settings or AppSettings())

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        state.db.dispose()

    app = FastAPI(title="prefstyle study", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.prefstyle = state
    app.add_middleware(GuardMiddleware, upload_limits={sid: st.cfg.uploads.max_bytes
                                                       for sid, st in state.studies.items()})
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(routes_participant.router)
    app.include_router(routes_admin.router)

    @app.exception_handler(FlowError)
    async def _flow_error(request: Request, exc: FlowError):
        if "/api/" in request.url.path:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return templates.TemplateResponse(request, "message.j2", {"title": "Sorry", "message": exc.message,
                                                                   "back": _back_link(request)},
                                          status_code=exc.status)

    return app


def _back_link(request: Request) -> str:
    parts = request.url.path.split("/")
    return f"/s/{parts[2]}" if len(parts) > 2 and parts[1] == "s" else "/"


def run(settings: AppSettings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve until interrupted (uvicorn, one process)."""
    import uvicorn

    state = open_state(settings)
    app = create_app(state=state)
    base = f"http://{host}:{port}"
    print(f"prefstyle serve: {len(state.studies)} stud{'y' if len(state.studies) == 1 else 'ies'} at {base}/ "
          f"({', '.join(f'{base}/s/{s}' for s in state.studies)})", flush=True)
    where = ("--admin-token / $PREFSTYLE_ADMIN_TOKEN" if settings.admin_token
             else f"in {Path(settings.data_dir) / 'admin-token'}")
    print(f"prefstyle serve: admin pages at {base}/admin (token: {where})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, proxy_headers=False)
