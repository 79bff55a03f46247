"""The organizer's pages under ``/admin``, behind the admin token.

The token is given once (``/admin/login`` form or ``?token=``), then an HttpOnly cookie
(SameSite=Strict, path ``/admin``) derived from it is kept; scripts can send
``Authorization: Bearer TOKEN`` instead. Without it every admin route answers 401. After 10
wrong tokens from one address within a minute (form, ``?token=`` or a Bearer header), that
address gets 429 until the minute has passed (:class:`~prefstyle.app.security.LoginLimiter`).

* ``/admin``: the studies, with progress.
* ``/admin/studies/<id>``: progress per participant, consistency rates, response-time
  histogram, participants flagged by the PPS filters (:func:`prefstyle.data.filters.filter_users`).
* ``/admin/studies/<id>/stats.json``: the same numbers as JSON.
* ``/admin/studies/<id>/export.zip``: the judgments as a pairs-format dataset (:mod:`.export`).
"""

from __future__ import annotations

import hmac
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.background import BackgroundTask

from prefstyle.app.export import export_zip
from prefstyle.app.flow import FlowError
from prefstyle.app.security import ADMIN_COOKIE, admin_cookie_value, is_admin
from prefstyle.app.state import AppState
from prefstyle.app.stats import histogram_svg_bars, study_stats

router = APIRouter(prefix="/admin")


def _state(request: Request) -> AppState:
    return request.app.state.prefstyle


def _page(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
    from prefstyle.app.server import templates

    return templates.TemplateResponse(request, name, context, status_code=status)


def _login_page(request: Request, error: str | None = None, status: int = 401) -> HTMLResponse:
    return _page(request, "admin_login.j2", {"error": error}, status)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _limiter(request: Request):
    return request.app.state.login_limiter


def _too_many(request: Request) -> None:
    if _limiter(request).blocked(_client(request)):
        raise FlowError(429, "too many wrong admin tokens from your address: wait a minute")


def _authorized(request: Request) -> bool:
    if is_admin(request, _state(request).admin_token):
        return True
    if request.headers.get("authorization"):  # a wrong Bearer token counts as a failed login
        _too_many(request)
        _limiter(request).failed(_client(request))
    return False


def _require(request: Request) -> None:
    if not _authorized(request):
        raise FlowError(401, "admin token required")


def _login_response(request: Request, token: str) -> HTMLResponse | RedirectResponse:
    st = _state(request)
    _too_many(request)
    if not hmac.compare_digest(token.strip().encode(), st.admin_token.encode()):
        _limiter(request).failed(_client(request))
        return _login_page(request, "wrong token")
    resp = RedirectResponse("/admin", status_code=303)
    resp.set_cookie(
        ADMIN_COOKIE,
        admin_cookie_value(st.admin_token),
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=st.settings.secure_cookies,
    )
    return resp


@router.get("", response_class=HTMLResponse)
def admin_index(request: Request, token: str | None = None):
    if token is not None:
        return _login_response(request, token)
    if not _authorized(request):
        return _login_page(request)
    st = _state(request)
    rows = [study_stats(s, st.db) for s in sorted(st.studies.values(), key=lambda s: s.id)]
    return _page(request, "admin_index.j2", {"rows": rows})


@router.post("/login")
def admin_login(request: Request, token: Annotated[str, Form()] = ""):
    return _login_response(request, token)


@router.post("/logout")
def admin_logout(request: Request):
    resp = RedirectResponse("/admin", status_code=303)
    resp.delete_cookie(ADMIN_COOKIE, path="/admin")
    return resp


def _admin_study(request: Request, sid: str):
    _require(request)
    study = _state(request).studies.get(sid)
    if study is None:
        raise FlowError(404, "there is no such study")
    return study


@router.get("/studies/{sid}", response_class=HTMLResponse)
def admin_study(request: Request, sid: str):
    if not _authorized(request):
        return _login_page(request)
    study = _admin_study(request, sid)
    stats = study_stats(study, _state(request).db)
    return _page(
        request,
        "admin_study.j2",
        {"s": stats, "cfg": study.cfg, "bars": histogram_svg_bars(stats["response_ms"]["histogram"])},
    )


@router.get("/studies/{sid}/stats.json")
def admin_stats(request: Request, sid: str):
    study = _admin_study(request, sid)
    return JSONResponse(study_stats(study, _state(request).db))


@router.get("/studies/{sid}/export.zip")
def admin_export(request: Request, sid: str):
    study = _admin_study(request, sid)
    tmp = Path(tempfile.mkdtemp(prefix="prefstyle-export-"))
    zpath = tmp / f"{study.id}.zip"
    try:
        export_zip(_state(request).db, study, zpath)
    except BaseException as e:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):  # a full disk, a study image gone from DATA: one line, not a bare 500
            where = f" ({e.filename})" if e.filename else ""
            raise FlowError(500, f"the export could not be written: {e.strerror or e}{where}") from e
        raise

    def cleanup() -> None:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)

    return FileResponse(
        zpath,
        media_type="application/zip",
        filename=f"{study.id}-pairs.zip",
        background=BackgroundTask(cleanup),
        headers={"cache-control": "no-store"},
    )
