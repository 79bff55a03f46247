"""Participant pages and the JSON API the study page talks to (all under ``/s/<study>/``).

A participant is recognised only by their resume token (cookie ``ps_<study>``, path
``/s/<study>``, HttpOnly, SameSite=Lax; or the ``X-Prefstyle-Token`` header). Every route that
shows or changes a participant's data looks the participant up from that token alone, so no
URL or form field can reach another participant's answers, results or photos.

JSON API: ``GET api/question`` -> the current pair (served now); ``POST api/answer``
``{question_id, a, b, choice: a|b|undecided, response_ms}`` (:class:`AnswerBody`, checked at the
edge: 400 with a message) -> stored, then the next pair; both refused (409) before the screen
check. ``GET api/style`` -> where the participant's style stands (rendered in the background).

A resume link (``GET resume/<token>``) never silently replaces another participant this browser
already is, nor acts on a cross-site navigation: it then shows a confirmation page whose POST
form carries a CSRF token (an HMAC bound to the link and to the current cookie) and is checked
against the ``Origin`` header.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import func, select
from starlette.datastructures import UploadFile

from prefstyle.app import flow, nudge, personal, render, uploads
from prefstyle.app.catalog import mark_owner
from prefstyle.app.flow import MAX_RESPONSE_MS, FlowError
from prefstyle.app.models import Participant, Upload
from prefstyle.app.security import csrf_token, participant_cookie, participant_token, same_origin
from prefstyle.app.state import AppState, LoadedStudy

#: the largest id the database columns hold (PostgreSQL ``integer``)
DB_ID_MAX = 2**31 - 1

router = APIRouter()
IMAGE_CACHE = "public, max-age=86400"
COOKIE_MAX_AGE = 180 * 24 * 3600


def _templates():
    from prefstyle.app.server import templates

    return templates


def _state(request: Request) -> AppState:
    return request.app.state.prefstyle


def _study(request: Request, sid: str) -> LoadedStudy:
    study = _state(request).studies.get(sid)
    if study is None:
        raise FlowError(404, "there is no such study")
    return study


def _participant(request: Request, study: LoadedStudy) -> Participant | None:
    return flow.authenticate(_state(request).db, study.id, participant_token(request, study.id))


def _require(request: Request, study: LoadedStudy) -> Participant:
    p = _participant(request, study)
    if p is None:
        raise FlowError(401, flow.NO_PARTICIPANT)
    return p


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return _templates().TemplateResponse(request, name, context, status_code=status)


def _set_cookie(request: Request, resp: Response, study: LoadedStudy, token: str) -> None:
    resp.set_cookie(
        participant_cookie(study.id),
        token,
        max_age=COOKIE_MAX_AGE,
        path=f"/s/{study.id}",
        httponly=True,
        samesite="lax",
        secure=_state(request).settings.secure_cookies,
    )


def _resume_url(request: Request, study: LoadedStudy, request_token: str | None) -> str | None:
    return None if not request_token else str(request.base_url).rstrip("/") + f"/s/{study.id}/resume/{request_token}"


# --------------------------------------------------------------------------------------------
# pages
# --------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def index(request: Request):
    studies = sorted(_state(request).studies.values(), key=lambda s: s.id)
    return _page(request, "index.j2", {"studies": studies})


@router.get("/s/{sid}", response_class=HTMLResponse)
def start(request: Request, sid: str):
    study = _study(request, sid)
    p = _participant(request, study)
    prog = flow.progress(_state(request).db, study, p.id) if p else None
    return _page(request, "start.j2", {"study": study, "cfg": study.cfg, "participant": p, "progress": prog})


@router.post("/s/{sid}/join")
def join(
    request: Request,
    sid: str,
    person: Annotated[str, Form()] = "",
    device: Annotated[str, Form()] = "",
    consent: Annotated[str, Form()] = "",
):
    study = _study(request, sid)
    try:
        _pid, token = flow.join(_state(request).db, study, person, device, consent == "yes")
    except FlowError as e:
        if e.status == 409 and _already_this_participant(request, study, person, device):
            # the join form sent again (double click, browser back): continue instead of "already joined"
            return RedirectResponse(f"/s/{sid}/study", status_code=303)
        return _page(
            request,
            "start.j2",
            {
                "study": study,
                "cfg": study.cfg,
                "participant": None,
                "progress": None,
                "error": e.message,
                "person": person,
                "device": device,
            },
            e.status,
        )
    resp = RedirectResponse(f"/s/{sid}/calibrate", status_code=303)
    _set_cookie(request, resp, study, token)
    return resp


def _already_this_participant(request: Request, study: LoadedStudy, person: str, device: str) -> bool:
    """True when this browser's cookie is already the participant ``person`` on ``device``."""
    p = _participant(request, study)
    if p is None:
        return False
    try:
        return p.user == f"{flow.clean_name(person, 'person')}@{flow.clean_name(device, 'device')}"
    except FlowError:
        return False


def _resume_csrf(request: Request, sid: str, token: str) -> str:
    return csrf_token(
        _state(request).admin_token, "resume", sid, token, request.cookies.get(participant_cookie(sid)) or ""
    )


@router.get("/s/{sid}/resume/{token}")
def resume(request: Request, sid: str, token: str):
    study = _study(request, sid)
    db = _state(request).db
    target = flow.authenticate(db, sid, token)
    if target is None:
        raise FlowError(404, "this resume link is not valid for this study")
    current_token = request.cookies.get(participant_cookie(sid))
    current = None if current_token == token else flow.authenticate(db, sid, current_token)
    cross_site = request.headers.get("sec-fetch-site", "") == "cross-site"
    if current is None and not cross_site:
        resp = RedirectResponse(f"/s/{sid}/study", status_code=303)
        _set_cookie(request, resp, study, token)
        return resp
    # another participant on this browser, or a link followed from another site: ask first
    return _page(
        request,
        "resume.j2",
        {
            "study": study,
            "target": target,
            "current": current,
            "token": token,
            "csrf": _resume_csrf(request, sid, token),
        },
    )


@router.post("/s/{sid}/resume")
def resume_confirm(
    request: Request, sid: str, token: Annotated[str, Form(max_length=200)], csrf: Annotated[str, Form(max_length=200)]
):
    study = _study(request, sid)
    if not same_origin(request) or not _hmac_equal(csrf, _resume_csrf(request, sid, token)):
        raise FlowError(403, "this confirmation is not valid any more: open your resume link again")
    if flow.authenticate(_state(request).db, sid, token) is None:
        raise FlowError(404, "this resume link is not valid for this study")
    resp = RedirectResponse(f"/s/{sid}/study", status_code=303)
    _set_cookie(request, resp, study, token)
    return resp


def _hmac_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


@router.post("/s/{sid}/leave")
def leave(request: Request, sid: str):
    """Forget the participant on this browser (they can come back with their resume link)."""
    study = _study(request, sid)
    resp = RedirectResponse(f"/s/{sid}", status_code=303)
    resp.delete_cookie(participant_cookie(study.id), path=f"/s/{study.id}")
    return resp


@router.get("/s/{sid}/calibrate", response_class=HTMLResponse)
def calibrate_page(request: Request, sid: str):
    study = _study(request, sid)
    p = _require(request, study)
    return _page(
        request,
        "calibrate.j2",
        {
            "study": study,
            "cfg": study.cfg,
            "participant": p,
            "dark": [3 * k for k in range(12)],
            "light": [255 - 3 * (11 - k) for k in range(12)],
        },
    )


@router.post("/s/{sid}/calibrate")
def calibrate(
    request: Request,
    sid: str,
    dark_steps: Annotated[int, Form(ge=0, le=12)],
    light_steps: Annotated[int, Form(ge=0, le=12)],
    screen: Annotated[str, Form()] = "",
):
    study = _study(request, sid)
    p = _require(request, study)
    facts: dict[str, Any] = {}
    if screen:
        try:
            raw = json.loads(screen)
        except (ValueError, RecursionError):  # not JSON, nested too deep, an integer of thousands of digits
            raw = {}
        if isinstance(raw, dict):
            facts = {
                k: raw[k]
                for k in ("width", "height", "dpr", "gamut", "dark_mode", "hdr")
                if k in raw and _plain_value(raw[k])
            }
    flow.save_calibration(
        _state(request).db,
        p.id,
        {
            "grey_ramp": {
                "dark_steps_seen": dark_steps,
                "light_steps_seen": light_steps,
                "steps": 12,
                "step_levels": 3,
            },
            "screen": facts,
        },
    )
    return RedirectResponse(f"/s/{sid}/study", status_code=303)


def _plain_value(v: Any) -> bool:
    """A string, a bool or a finite number (NaN and infinity would make the stored JSON, and the export's
    participants.jsonl, invalid JSON)."""
    return isinstance(v, str | int) or (isinstance(v, float) and math.isfinite(v))  # bool is an int


@router.get("/s/{sid}/study", response_class=HTMLResponse)
def study_page(request: Request, sid: str):
    study = _study(request, sid)
    p = _require(request, study)
    if p.calibrated_at is None:
        return RedirectResponse(f"/s/{sid}/calibrate", status_code=303)
    token = participant_token(request, study.id)
    return _page(
        request,
        "study.j2",
        {"study": study, "cfg": study.cfg, "participant": p, "resume_url": _resume_url(request, study, token)},
    )


# --------------------------------------------------------------------------------------------
# JSON API
# --------------------------------------------------------------------------------------------


def _payload(study: LoadedStudy, q: flow.QuestionView | None, prog: flow.Progress) -> dict[str, Any]:
    # plain JSON types only: the API routes send it as a JSONResponse, past FastAPI's encoder
    return {
        "done": q is None,
        "question": None if q is None else q.to_json(study.id),
        "progress": prog.to_json(),
        "allow_undecided": study.cfg.allow_undecided,
        "style_url": f"/s/{study.id}/style",
    }


class AnswerBody(BaseModel):
    """``POST api/answer``: ids within the database's integer range; a choice; milliseconds."""

    model_config = ConfigDict(extra="ignore")
    question_id: StrictInt = Field(ge=1, le=DB_ID_MAX)
    a: StrictInt = Field(ge=1, le=DB_ID_MAX)
    b: StrictInt = Field(ge=1, le=DB_ID_MAX)
    choice: Literal["a", "b", "undecided"]
    response_ms: float | None = Field(default=None, ge=0, le=MAX_RESPONSE_MS, allow_inf_nan=False, strict=True)


@router.get("/s/{sid}/api/question")
def api_question(request: Request, sid: str):
    study = _study(request, sid)
    pid = flow.authenticate_calibrated(_state(request).db, study.id, participant_token(request, study.id))
    return JSONResponse(_payload(study, *flow.serve_current(_state(request).db, study, pid)))


@router.post("/s/{sid}/api/answer")
def api_answer(request: Request, sid: str, payload: AnswerBody):
    study = _study(request, sid)
    pid = flow.authenticate_calibrated(_state(request).db, study.id, participant_token(request, study.id))
    res = flow.submit_answer(
        _state(request).db, study, pid, payload.question_id, payload.a, payload.b, payload.choice, payload.response_ms
    )
    return JSONResponse({**_payload(study, res.next, res.progress), "stored": True, "duplicate": res.duplicate})


# --------------------------------------------------------------------------------------------
# study images (the same for every participant)
# --------------------------------------------------------------------------------------------


@router.get("/s/{sid}/img/r/{rid}")
def rendition_image(request: Request, sid: str, rid: int):
    path = _study(request, sid).rendition_path(rid)
    if path is None or not path.is_file():
        raise FlowError(404, "no such image")
    return FileResponse(path, headers={"cache-control": IMAGE_CACHE})


@router.get("/s/{sid}/img/src/{scene_id}")
def source_image(request: Request, sid: str, scene_id: int):
    study = _study(request, sid)
    scene = study.scenes.get(scene_id)
    # only held-out originals are shown to participants (question scenes' neutral versions stay hidden)
    path = study.source_path(scene_id) if scene is not None and scene.role == "heldout" else None
    if path is None or not path.is_file():
        raise FlowError(404, "no such image")
    return FileResponse(path, headers={"cache-control": IMAGE_CACHE})


# --------------------------------------------------------------------------------------------
# "your style": rendered in the background (prefstyle.app.render), the page polls api/style
# --------------------------------------------------------------------------------------------


def _status(request: Request, study: LoadedStudy, p: Participant, want_lut: bool = False) -> dict[str, Any]:
    st = _state(request)
    return render.style_status(st.db, st.render_queue(), study, p, want_lut=want_lut)


def _style_context(request: Request, study: LoadedStudy, p: Participant) -> dict[str, Any]:
    st = _state(request)
    prog = flow.progress(st.db, study, p.id)
    status = _status(request, study, p)
    ctx: dict[str, Any] = {
        "study": study,
        "cfg": study.cfg,
        "participant": p,
        "progress": prog,
        "resume_url": _resume_url(request, study, participant_token(request, study.id)),
        "status": status,
        "status_url": f"/s/{study.id}/api/style",
        "state_text": render.STATE_TEXT.get(status["state"], status.get("message") or ""),
    }
    if status["state"] == "not_ready":
        ctx["needed"] = status["needed"]
        return ctx
    if not status["style_ready"]:
        ctx["pending"] = True
        return ctx
    result = personal.style_result(study, p.id, status["version"])
    ctx["heldout"] = [
        {"original": f"/s/{study.id}/img/src/{scene_id}", "mine": f"/s/{study.id}/me/file/{name}"}
        for scene_id, name in result.heldout
    ]
    ctx["version"] = result.version
    ctx["description"] = result.description
    ctx["lut_available"] = personal.lut_available()
    table = nudge.read_table(result.folder)
    if table is not None:
        learned = table.learned()
        ctx["slider_rows"] = [{**sl.to_json(), "shown": sl.show(sl.value), "digits": sl.digits} for sl in table.sliders]
        ctx["sliders_absolute"] = table.absolute
        ctx["gain"] = table.gain
        ctx["preset_notes"] = list(table.notes)
        ctx["downloads"] = nudge.downloads(study.id, table, learned)
        ctx["presets"] = nudge.PRESETS
        ctx["nudge_url"] = f"/s/{study.id}/api/nudge"
    ups = personal.uploads_of(st.db, p.id)
    base = personal.participant_dir(study, p.id)
    ctx["uploads"] = []
    for u in ups:
        name = personal.upload_name(result, u.key)
        gone = not personal.upload_source(study, p.id, u.key).is_file()
        ctx["uploads"].append(
            {
                "name": u.display_name,
                "gone": gone,
                "original": f"/s/{study.id}/me/file/uploads/{u.key}.jpg",
                "mine": f"/s/{study.id}/me/file/{name}" if (base / name).is_file() else None,
            }
        )
    ctx["uploads_pending"] = status["uploads_pending"] > 0
    ctx["can_upload"] = len(ups) < study.cfg.uploads.max_files
    ctx["max_mb"] = study.cfg.uploads.max_bytes / 1e6
    return ctx


@router.get("/s/{sid}/style", response_class=HTMLResponse)
def style_page(request: Request, sid: str):
    study = _study(request, sid)
    p = _require(request, study)
    return _page(request, "style.j2", _style_context(request, study, p))


@router.get("/s/{sid}/api/style")
def api_style(request: Request, sid: str, lut: bool = False):
    """Where the participant's style stands (starts what is missing; never waits for rendering)."""
    study = _study(request, sid)
    p = _require(request, study)
    status = _status(request, study, p, want_lut=lut)
    status["text"] = render.STATE_TEXT.get(status["state"], status.get("message") or "")
    return JSONResponse(status)


def _wait_page(
    request: Request, study: LoadedStudy, status: dict[str, Any], what: str, next_url: str, status_url: str
) -> HTMLResponse:
    if status["state"] == "not_ready":
        raise FlowError(409, "your style is not ready yet: answer a few more pairs")
    return _page(
        request,
        "wait.j2",
        {
            "study": study,
            "what": what,
            "next_url": next_url,
            "status_url": status_url,
            "state_text": render.STATE_TEXT.get(status["state"], status.get("message") or ""),
            "message": status.get("message"),
        },
        202,
    )


@router.get("/s/{sid}/me/profile.zip")
def profile_download(request: Request, sid: str):
    study = _study(request, sid)
    p = _require(request, study)
    status = _status(request, study, p)
    if not status["style_ready"]:
        return _wait_page(request, study, status, "your profile", f"/s/{sid}/me/profile.zip", f"/s/{sid}/api/style")
    path = personal.profile_zip(personal.style_result(study, p.id, status["version"]))
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"prefstyle-profile-{study.id}.zip",
        headers={"cache-control": "private, no-store"},
    )


def _slider_values(request: Request, study: LoadedStudy, p: Participant) -> tuple[dict[str, Any], dict[str, float]]:
    """The style's status and the slider values the request's query asks for (the learned ones for
    sliders it leaves out). Bad values: :class:`FlowError` 400; no rendered style yet: 409."""
    status = _status(request, study, p)
    if not status["style_ready"]:
        raise FlowError(409, "your style is not ready yet: wait for it, then move the sliders")
    table = nudge.read_table(personal.style_result(study, p.id, status["version"]).folder)
    if table is None:
        raise FlowError(409, "this version of your style has no sliders; reload the page")
    params = {k: v for k, v in request.query_params.items() if k not in nudge.OTHER_PARAMS}
    values = nudge.parse_values(table, params)
    return status, (table.learned() if nudge.is_learned(table, values) else values)


def _nudged(request: Request, study: LoadedStudy, p: Participant) -> tuple[dict[str, Any], dict[str, float]] | None:
    """:func:`_slider_values` when the query moves a slider, else None (the learned style)."""
    if not any(k not in nudge.OTHER_PARAMS for k in request.query_params):
        return None
    status, values = _slider_values(request, study, p)
    table = nudge.read_table(personal.style_result(study, p.id, status["version"]).folder)
    return None if table is None or nudge.is_learned(table, values) else (status, values)


@router.get("/s/{sid}/api/nudge")
def api_nudge(request: Request, sid: str, lut: bool = False):
    """The participant's style with the sliders moved (query: ``exposure=0.3&temperature=-5``...,
    display units; the others stay learned): preview URLs and downloads once rendered (rendered in
    the background, poll until ``ready``). Bad values: 400."""
    study = _study(request, sid)
    p = _require(request, study)
    _, values = _slider_values(request, study, p)
    st = _state(request)
    return JSONResponse(nudge.nudge_status(st.db, st.render_queue(), study, p, values, want_lut=lut))


def _nudge_wait(request: Request, study: LoadedStudy, p: Participant, values: dict[str, float], what: str, lut: bool):
    """The participant's nudged rendering, or a wait page (202) that polls ``api/nudge`` until it is."""
    st = _state(request)
    status = nudge.nudge_status(st.db, st.render_queue(), study, p, values, want_lut=lut)
    if status["ready"]:
        return None
    q = nudge.query(values)
    here = request.url.path + "?" + q
    return _wait_page(request, study, status, what, here, f"/s/{study.id}/api/nudge?{q}" + ("&lut=1" if lut else ""))


@router.get("/s/{sid}/me/style.cube")
def lut_download(request: Request, sid: str):
    """The style as a ``.cube`` (with the query's slider values when it has any)."""
    study = _study(request, sid)
    p = _require(request, study)
    if not personal.lut_available():
        raise FlowError(501, "exporting a style as a LUT is not available in this installation")
    nudged = _nudged(request, study, p)
    if nudged is not None:
        status, values = nudged
        wait = _nudge_wait(request, study, p, values, "your adjusted .cube LUT", lut=True)
        if wait is not None:
            return wait
        path = personal.nudged_lut_path(personal.style_result(study, p.id, status["version"]), values)
        return FileResponse(
            path,
            media_type="text/plain",
            filename=f"prefstyle-{study.id}-adjusted.cube",
            headers={"cache-control": "private, no-store"},
        )
    status = _status(request, study, p, want_lut=True)
    if not status["lut_ready"]:
        return _wait_page(
            request, study, status, "your .cube LUT", f"/s/{sid}/me/style.cube", f"/s/{sid}/api/style?lut=1"
        )
    path = personal.style_result(study, p.id, status["version"]).folder / "style.cube"
    return FileResponse(
        path,
        media_type="text/plain",
        filename=f"prefstyle-{study.id}.cube",
        headers={"cache-control": "private, no-store"},
    )


@router.get("/s/{sid}/me/preset.{fmt}")
def preset_download(request: Request, sid: str, fmt: str):
    """The style as a raw editor's preset (``xmp``, ``dtstyle``, ``pp3``; with the query's slider
    values when it has any). Only for a taste that is a slider edit."""
    study = _study(request, sid)
    p = _require(request, study)
    if fmt not in nudge.PRESETS:
        raise FlowError(404, f"no such preset format (there are {', '.join(nudge.PRESETS)})")
    ext, editor = nudge.PRESETS[fmt]
    nudged = _nudged(request, study, p)
    if nudged is not None:
        status, values = nudged
        wait = _nudge_wait(request, study, p, values, f"your {editor} preset", lut=False)
        if wait is not None:
            return wait
        folder = nudge.nudge_dir(personal.style_result(study, p.id, status["version"]).folder, values)
        suffix = "-adjusted"
    else:
        status = _status(request, study, p)
        if not status["style_ready"]:
            return _wait_page(request, study, status, f"your {editor} preset", request.url.path, f"/s/{sid}/api/style")
        folder = personal.style_result(study, p.id, status["version"]).folder
        suffix = ""
    path = folder / f"style{ext}"
    if not path.is_file():
        raise FlowError(404, "your taste is a look that a raw editor's sliders cannot hold: take the .cube LUT instead")
    return FileResponse(
        path,
        media_type="application/xml" if fmt in ("xmp", "dtstyle") else "text/plain",
        filename=f"prefstyle-{study.id}{suffix}{ext}",
        headers={"cache-control": "private, no-store"},
    )


@router.get("/s/{sid}/me/file/{name:path}")
def my_file(request: Request, sid: str, name: str):
    study = _study(request, sid)
    p = _require(request, study)
    path = personal.participant_file(study, p.id, name)
    if path is None:
        raise FlowError(404, "no such file")
    return FileResponse(path, headers={"cache-control": "private, max-age=3600"})


def _may_upload(st: AppState, study: LoadedStudy, p: Participant) -> None:
    if not flow.progress(st.db, study, p.id).style_ready:
        raise FlowError(409, "your style is not ready yet: answer a few more pairs first")
    with st.db.read() as s:
        n = s.execute(select(func.count()).select_from(Upload).where(Upload.participant_id == p.id)).scalar_one()
    if n >= study.cfg.uploads.max_files:
        raise FlowError(409, f"you can upload at most {study.cfg.uploads.max_files} photos")


def _add_upload(st: AppState, study: LoadedStudy, row: Upload) -> None:
    """Register a stored upload; the limit is counted again under the participant's row lock, so two
    uploads sent at once (two tabs) cannot pass ``max_files`` together (the refused one's file is removed)."""
    limit = study.cfg.uploads.max_files
    with st.db.write() as s:
        s.execute(select(Participant.id).where(Participant.id == row.participant_id).with_for_update())
        n = s.execute(
            select(func.count()).select_from(Upload).where(Upload.participant_id == row.participant_id)
        ).scalar_one()
        if n >= limit:
            personal.upload_source(study, row.participant_id, row.key).unlink(missing_ok=True)
            raise FlowError(409, f"you can upload at most {limit} photos")
        s.add(row)


@router.post("/s/{sid}/me/uploads", response_class=HTMLResponse)
async def upload(request: Request, sid: str):
    """Stream the file to a temporary file, then decode, check and store it in a render worker
    (awaited without holding a thread); retouching it is left to the style page's render job."""
    study = _study(request, sid)
    p = await run_in_threadpool(_require, request, study)
    st = _state(request)
    limits = study.cfg.uploads
    try:
        await run_in_threadpool(_may_upload, st, study, p)
        form = await request.form(max_files=1, max_fields=4)
        try:
            f = form.get("photo")
            if not isinstance(f, UploadFile):
                raise FlowError(400, "please choose a photo to upload")
            name = uploads.check_filename(f.filename)
            fd, tmp_name = tempfile.mkstemp(prefix="prefstyle-upload-")
            tmp = Path(tmp_name)
            try:
                size = 0
                with os.fdopen(fd, "wb") as out:
                    while chunk := await f.read(1 << 20):
                        size += len(chunk)
                        if size > limits.max_bytes:
                            raise FlowError(413, f"the file is too large: at most {limits.max_bytes / 1e6:g} MB")
                        out.write(chunk)
                if size == 0:
                    raise FlowError(400, "the file is empty")
                with open(tmp, "rb") as fh:
                    uploads.check_type(fh.read(16), limits)  # cheap: refuse non-images before queueing
                mark_owner(personal.participant_dir(study, p.id), p.token_hash)
                try:
                    job = st.render_queue().submit(
                        ("store-upload", study.id, p.id, tmp_name),
                        "store_upload",
                        tmp,
                        limits,
                        study.cfg.image_size,
                        personal.participant_dir(study, p.id),
                    )
                except render.Busy:
                    raise FlowError(503, "the server is busy retouching photos: please try again in a minute") from None
                key, width, height = await asyncio.wrap_future(job)
            finally:
                tmp.unlink(missing_ok=True)
        finally:
            await form.close()
        await run_in_threadpool(
            _add_upload,
            st,
            study,
            Upload(participant_id=p.id, key=key, display_name=name[:120], width=width, height=height),
        )
    except FlowError as e:
        ctx = await run_in_threadpool(_style_context, request, study, p)
        ctx["error"] = e.message
        return _page(request, "style.j2", ctx, e.status)
    return RedirectResponse(f"/s/{sid}/style#uploads", status_code=303)


@router.get("/s/{sid}/api/progress")
def api_progress(request: Request, sid: str):
    study = _study(request, sid)
    p = _require(request, study)
    return JSONResponse(flow.progress(_state(request).db, study, p.id).to_json())
