"""Request guards: body-size limits, security headers, participant and admin tokens.

:class:`GuardMiddleware` (pure ASGI, so it costs little per request) refuses request bodies
over the limit (from ``Content-Length`` before reading, and by counting while streaming, chunked bodies too: 413)
and adds security headers to every response: a strict Content-Security-Policy (no inline
scripts or styles, nothing from other origins), ``nosniff``, ``no-referrer`` (resume links
carry tokens), no framing, and ``Cache-Control: no-store`` unless the route set its own.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
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


class GuardMiddleware:
    """Body limits and security headers (module docstring). ``upload_limits``: study id -> bytes."""

    def __init__(self, app: ASGIApp, upload_limits: dict[str, int]) -> None:
        self.app = app
        self.upload_limits = upload_limits

    def limit_for(self, path: str) -> int:
        m = _UPLOAD_PATH.match(path)
        if m and m.group(1) in self.upload_limits:
            return self.upload_limits[m.group(1)] + MULTIPART_OVERHEAD
        return DEFAULT_BODY_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        started = False

        exceeded = False

        async def send_headers(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app answers to a body cut short (FastAPI: 400), the client gets 413
                if not started:
                    started = True
                    await _too_large(send, _limit_text(scope["path"], limit), headers=SECURITY_HEADERS)
                return
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

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body past the limit: the app sees the client leave
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, counted_receive, send_headers)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            started = True
            await _too_large(send, _limit_text(scope["path"], limit), headers=SECURITY_HEADERS)


def _limit_text(path: str, limit: int) -> str:
    if _UPLOAD_PATH.match(path):
        return f"the file is too large: at most {(limit - MULTIPART_OVERHEAD) / 1e6:g} MB"
    return "request body too large"


async def _too_large(send: Send, text: str, status: int = 413, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                *headers,
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
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
    if not cookie:
        return False
    return hmac.compare_digest(cookie.encode(), admin_cookie_value(token).encode())


def csrf_token(secret: str, *parts: str) -> str:
    """An HMAC of ``parts`` under a key derived from ``secret`` (the admin token: the same in every
    server process, never sent to participants)."""
    key = hmac.new(secret.encode(), b"prefstyle-csrf", hashlib.sha256).digest()
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """False when the request names another site as its ``Origin`` (a cross-site form post);
    True without the header (older browsers, scripts) — the CSRF token then decides."""
    origin = request.headers.get("origin")
    if not origin:
        return True
    if origin == "null":
        return False
    host = origin.split("://", 1)[-1].rstrip("/")
    return host.lower() == (request.headers.get("host") or "").lower()


class ForwardedMiddleware:
    """Trust ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` / ``X-Forwarded-For`` from the proxies in
    ``allow`` only (IPs or CIDRs, or ``*``), so links built from the request (resume links) carry
    the public ``https://`` address behind a TLS proxy. Without ``allow`` the headers are ignored."""

    def __init__(self, app: ASGIApp, allow: str) -> None:
        self.app = app
        self.any, self.nets = self.parse(allow)

    @staticmethod
    def parse(allow: str) -> tuple[bool, list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
        """(``*`` given, the networks) of ``--forwarded-allow-ips``; :class:`PrefstyleError` for a bad one."""
        items = [a.strip() for a in allow.split(",") if a.strip()]
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for a in items:
            if a != "*":
                try:
                    nets.append(ipaddress.ip_network(a, strict=False))
                except ValueError:
                    from prefstyle.errors import PrefstyleError

                    raise PrefstyleError(f"--forwarded-allow-ips: {a!r} is not an IP address or network") from None
        return "*" in items, nets

    def trusted(self, client: str | None) -> bool:
        if self.any:
            return True
        try:
            ip = ipaddress.ip_address(client or "")
        except ValueError:
            return False
        return any(ip in n for n in self.nets)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and (self.any or self.nets):
            client = scope.get("client")
            if self.trusted(client[0] if client else None):
                headers = dict(scope.get("headers", []))
                scope = dict(scope)
                proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").split(",")[0].strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = proto if scope["type"] == "http" else {"http": "ws", "https": "wss"}[proto]
                host = headers.get(b"x-forwarded-host", b"").decode("latin-1").split(",")[0].strip()
                if host and re.fullmatch(r"[A-Za-z0-9.\-\[\]:]{1,255}", host):
                    scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"] + [
                        (b"host", host.encode("latin-1"))
                    ]
                fwd_for = headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",")[0].strip()
                if fwd_for:
                    scope["client"] = (fwd_for, 0)
        await self.app(scope, receive, send)


class LoginLimiter:
    """At most ``attempts`` failed admin logins per client address in ``window`` seconds (per
    server process); then 429 until the window passes. Thread-safe."""

    def __init__(self, attempts: int = 10, window: float = 60.0):
        import threading

        self.attempts, self.window = attempts, window
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, who: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(who, []) if now - t < self.window]
        if times:
            self._failures[who] = times
        else:
            self._failures.pop(who, None)
        return times

    def blocked(self, who: str) -> bool:
        import time

        with self._lock:
            return len(self._recent(who, time.monotonic())) >= self.attempts

    def failed(self, who: str) -> None:
        import time

        with self._lock:
            now = time.monotonic()
            self._recent(who, now)
            self._failures.setdefault(who, []).append(now)
            if len(self._failures) > 10_000:  # bounded memory under a spray of addresses
                self._failures.pop(next(iter(self._failures)))
