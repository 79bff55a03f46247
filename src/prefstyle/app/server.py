"""The FastAPI application of ``prefstyle serve``: :func:`create_app` and :func:`run`.

``create_app(settings)`` opens the database, runs the migrations, creates or updates the
configured studies (rendering their images when new) and returns the app; errors in the
settings or study files raise :class:`~prefstyle.errors.PrefstyleError` before anything listens.

``run(settings, workers=N)`` with N > 1 prepares the database and studies once in the parent
process, then lets uvicorn start N worker processes (:func:`app_from_env`), each loading the
studies without touching them. Nothing a worker keeps in memory decides an answer: answers,
the pair to serve and active sampling's evidence come from the database, rendered styles from
the data folder, so any worker can serve any request.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from prefstyle import __version__
from prefstyle.app.catalog import clean_stale_parts, stored_configs, sync_study
from prefstyle.app.db import Database
from prefstyle.app.flow import FlowError
from prefstyle.app.security import ForwardedMiddleware, GuardMiddleware, LoginLimiter
from prefstyle.app.state import AppSettings, AppState, admin_token_for, load_study_index
from prefstyle.app.study import default_study

if TYPE_CHECKING:
    from prefstyle.app.render import RenderQueue

log = logging.getLogger("prefstyle.app")
HERE = Path(__file__).resolve().parent
# autoescape everything: Starlette's default only escapes templates named *.html
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True)
)


SETTINGS_ENV = "PREFSTYLE_APP_SETTINGS_JSON"


def open_state(settings: AppSettings, sync: bool = True) -> AppState:
    """Database migrated, studies synced and loaded: everything the routes need.

    ``sync=False`` (the worker processes of ``serve --workers``): only load what the parent
    process prepared.
    """
    data_dir = Path(settings.data_dir)
    admin_token = admin_token_for(settings)  # a too-short token is refused before anything else
    data_dir.mkdir(parents=True, exist_ok=True)
    ForwardedMiddleware.parse(settings.forwarded_allow_ips)  # Starlette builds middleware at the first request
    db = Database(settings.db_url)
    try:
        db.check()
        if not sync:
            studies = {c.id: load_study_index(db, c.id, data_dir) for c in stored_configs(db)}
            return AppState(settings=settings, db=db, admin_token=admin_token, studies=studies)
        for stale in clean_stale_parts(data_dir):
            log.warning("removed %s (a study folder left half-built by a server killed while starting)", stale)
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
            sync_study(db, cfg, data_dir, adopt_data=settings.adopt_data)
        studies = {c.id: load_study_index(db, c.id, data_dir) for c in stored_configs(db)}
    except BaseException:
        db.dispose()
        raise
    return AppState(settings=settings, db=db, admin_token=admin_token, studies=studies)


def create_app(settings: AppSettings | None = None, state: AppState | None = None) -> FastAPI:
    """The web app for ``settings`` (or an already opened ``state``)."""
    from prefstyle.app import routes_admin, routes_participant
    from prefstyle.app.render import RenderQueue

    state = state or open_state(settings or AppSettings())
    if state.renders is None:
        cfg = state.settings
        state.renders = RenderQueue(
            cfg.render_workers,
            cfg.render_mode,
            cfg.render_queue,
            threads=int(os.environ.get("OMP_NUM_THREADS", "1") or 1),
        )
    renders = state.renders

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if state.settings.render_mode == "process":
            renders.warm(list(state.studies.values()))
        yield
        renders.shutdown()
        state.db.dispose()

    app = FastAPI(
        title="prefstyle study", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.prefstyle = state
    app.state.login_limiter = LoginLimiter()
    app.add_middleware(
        GuardMiddleware, upload_limits={sid: st.cfg.uploads.max_bytes for sid, st in state.studies.items()}
    )
    if state.settings.forwarded_allow_ips:
        app.add_middleware(ForwardedMiddleware, allow=state.settings.forwarded_allow_ips)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(routes_participant.router)
    app.include_router(routes_admin.router)

    @app.exception_handler(FlowError)
    async def _flow_error(request: Request, exc: FlowError) -> Response:
        if "/api/" in request.url.path:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return templates.TemplateResponse(
            request,
            "message.j2",
            {"title": "Sorry", "message": exc.message, "back": _back_link(request)},
            status_code=exc.status,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own refusals (unknown URL, wrong method, a malformed body or form): the same
        # one-line {"error"} / message page as every other refusal, not {"detail": ...} JSON
        if exc.status_code in (204, 304):  # no body allowed
            return Response(status_code=exc.status_code, headers=exc.headers)
        text = exc.detail if isinstance(exc.detail, str) and exc.detail else "request refused"
        if "/api/" in request.url.path:
            return JSONResponse({"error": text}, status_code=exc.status_code, headers=exc.headers)
        return templates.TemplateResponse(
            request,
            "message.j2",
            {"title": "Sorry", "message": text, "back": _back_link(request)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path"))
        text = f"{where}: {first.get('msg', 'invalid value')}" if where else first.get("msg", "invalid request")
        if "/api/" in request.url.path:  # the JSON API: 400 and one line, as for every other refusal
            return JSONResponse({"error": text}, status_code=400)
        return templates.TemplateResponse(
            request, "message.j2", {"title": "Sorry", "message": text, "back": _back_link(request)}, status_code=422
        )

    return app


def app_from_env() -> FastAPI:
    """The app of one worker process of ``serve --workers N`` (settings from the parent, in the environment)."""
    settings = AppSettings.from_json(os.environ[SETTINGS_ENV])
    app = create_app(state=open_state(settings, sync=False))
    _freeze_startup_objects()
    return app


def _freeze_startup_objects() -> None:
    """What start-up built (modules, studies, the app) lives as long as the server process: kept
    out of the cyclic collector's sight, a full collection under load pauses every request for a
    few milliseconds instead of ~100 ms (measured in docs/BENCHMARKS.md, "serve")."""
    gc.collect()
    gc.freeze()


def _back_link(request: Request) -> str:
    parts = request.url.path.split("/")
    return f"/s/{parts[2]}" if len(parts) > 2 and parts[1] == "s" else "/"


#: how long start-up waits for a study's model to load in a render process before serving anyway
MODEL_CHECK_S = 300.0


def _check_models(state: AppState, renders: RenderQueue | None) -> None:
    """Load each study's model in a render process before listening (``renders``, or a temporary one):
    a model that cannot be loaded (a misspelt name, a folder that is not a trained run) stops the
    start with one line (:class:`PrefstyleError`) instead of failing every participant's style later."""
    import concurrent.futures as cf

    from prefstyle.app.render import RenderQueue
    from prefstyle.errors import PrefstyleError

    if not state.studies:
        return
    queue = renders or RenderQueue(1, state.settings.render_mode, len(state.studies))
    try:
        for sid, study in sorted(state.studies.items()):
            try:
                queue.call("warm", study).result(timeout=MODEL_CHECK_S)
            except cf.TimeoutError:
                log.warning("study %s: its model %r did not load within %.0f s", sid, study.cfg.model, MODEL_CHECK_S)
            except PrefstyleError as e:
                raise PrefstyleError(f"study {sid!r}: {e}") from None
            except Exception as e:  # noqa: BLE001 - a model that loads with an error is the organizer's to fix
                raise PrefstyleError(
                    f"study {sid!r}: its model {study.cfg.model!r} cannot be loaded: {type(e).__name__}: {e}"
                ) from None
    finally:
        if renders is None:
            queue.shutdown()


def run(
    settings: AppSettings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info", workers: int = 1
) -> None:
    """Serve until interrupted (uvicorn; ``workers`` processes sharing the database)."""
    import uvicorn

    state = open_state(settings)
    app = create_app(state=state) if workers == 1 else None
    _check_models(state, state.renders)
    base = f"http://{host}:{port}"
    print(
        f"prefstyle serve: {len(state.studies)} stud{'y' if len(state.studies) == 1 else 'ies'} at {base}/ "
        f"({', '.join(f'{base}/s/{s}' for s in state.studies)})",
        flush=True,
    )
    where = (
        "--admin-token / $PREFSTYLE_ADMIN_TOKEN"
        if settings.admin_token
        else f"in {Path(settings.data_dir) / 'admin-token'}"
    )
    print(f"prefstyle serve: admin pages at {base}/admin (token: {where})", flush=True)
    if workers > 1:
        state.db.dispose()
        os.environ[SETTINGS_ENV] = settings.to_json()
        print(
            f"prefstyle serve: {workers} worker processes, {settings.render_workers} render worker(s) each", flush=True
        )
        uvicorn.run(
            "prefstyle.app.server:app_from_env",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            proxy_headers=False,
        )
        return
    assert app is not None
    _freeze_startup_objects()
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, proxy_headers=False)
