"""Request guards: body-size limits, security headers, participant and admin tokens.

:class:`GuardMiddleware` (pure ASGI, so it costs little per request) refuses request bodies
over the limit (from ``Content-Length`` before reading, and by counting while streaming: 413)
and adds security headers to every response: a strict Content-Security-Policy (no inline
scripts or styles, nothing from other origins), ``nosniff``, ``no-referrer`` (resume links
carry tokens), no framing, and ``Cache-Control: no-store`` unless the route set its own.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from starlette.requests import Request

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
DEFAULT_BODY_LIMIT = 256_000  # forms and JSON answers are tiny
MULTIPART_OVERHEAD = 64_000
ADMIN_COOKIE = "prefstyle_admin"
TOKEN_HEADER = "x-prefstyle-token"
_UPLOAD_PATH = re.compile(r"^/s/([a-z0-9][a-z0-9_-]{0,63})/me/uploads$")


class _TooLarge(Exception):
    pass


class GuardMiddleware:
    """Body limits and security headers (module docstring). ``upload_limits``: study id -> bytes."""

    def __init__(self, app, upload_limits: dict[str, int]):
        self.app = app
        self.upload_limits = upload_limits

    def limit_for(self, path: str) -> int:
        m = _UPLOAD_PATH.match(path)
        if m and m.group(1) in self.upload_limits:
            return self.upload_limits[m.group(1)] + MULTIPART_OVERHEAD
        return DEFAULT_BODY_LIMIT

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        started = False

        async def send_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    await _too_large(send_headers, "invalid Content-Length", 400)
                    return
                if declared > limit:
                    await _too_large(send_headers, _limit_text(scope["path"], limit))
                    return
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted_receive, send_headers)
        except _TooLarge:
            if not started:
                await _too_large(send_headers, _limit_text(scope["path"], limit))


def _limit_text(path: str, limit: int) -> str:
    if _UPLOAD_PATH.match(path):
        return f"the file is too large: at most {(limit - MULTIPART_OVERHEAD) / 1e6:g} MB"
    return "request body too large"


async def _too_large(send, text: str, status: int = 413) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def participant_cookie(study_id: str) -> str:
    return f"ps_{study_id}"


def participant_token(request: Request, study_id: str) -> str | None:
    """The resume token a request carries: the ``X-Prefstyle-Token`` header, else the study's cookie."""
    return request.headers.get(TOKEN_HEADER) or request.cookies.get(participant_cookie(study_id))


def admin_cookie_value(token: str) -> str:
    """What the admin cookie holds: derived from the token, so the cookie is not the token itself."""
    return hmac.new(token.encode(), b"prefstyle-admin-cookie", hashlib.sha256).hexdigest()


def is_admin(request: Request, token: str) -> bool:
    """True when the request carries the admin token (``Authorization: Bearer``) or the admin cookie."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(ADMIN_COOKIE)
    return bool(cookie) and hmac.compare_digest(cookie.encode(), admin_cookie_value(token).encode())
