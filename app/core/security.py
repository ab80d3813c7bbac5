"""Access control: bearer token for the API, a signed session cookie for the pages, CSRF tokens,
cross-site request refusal and the allowed Host names (DNS rebinding).

Without TUNEDECK_AUTH_TOKEN (only allowed on localhost) nothing needs a login, but cross-site
state-changing requests are still refused: any web page the user visits could otherwise post to
127.0.0.1. With a token, the API wants ``Authorization: Bearer <token>`` or a login session, and
a cookie-authenticated POST must carry the page's CSRF token (header ``X-CSRF-Token``, or a
``csrf_token`` form field). Bearer requests carry no ambient authority, so they skip CSRF.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

import anyio
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import GENERATE_TOKEN, LOCAL_HOSTS, MIN_TOKEN_CHARS, Settings
from app.core.ratelimit import AUTH_FAILURES

SESSION_COOKIE = "tunedeck_session"
SESSION_MAX_AGE_S = 7 * 24 * 3600
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Reachable without a login: the login form itself, health checks and static assets.
PUBLIC_PREFIXES = ("/login", "/healthz", "/static/")
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
MAX_FORM_BYTES = 64 * 1024


# -- pure helpers ----------------------------------------------------------------------------
def bind_refusal(host: str, auth_token: str) -> str | None:
    """Why TuneDeck must not listen on ``host``, or None when it may."""
    if host in LOCAL_HOSTS:
        return None
    if auth_token and len(auth_token) < MIN_TOKEN_CHARS:
        return (f"refusing to listen on {host}: TUNEDECK_AUTH_TOKEN is {len(auth_token)} "
                f"characters, and a server others can reach needs at least {MIN_TOKEN_CHARS} "
                f"random ones: generate one with {GENERATE_TOKEN}")
    if auth_token:
        return None
    return (f"refusing to listen on {host}: anyone who can reach it could launch runs. "
            "Set TUNEDECK_AUTH_TOKEN to a long random secret (e.g. `openssl rand -hex 32`) "
            "or listen on 127.0.0.1")


def allowed_hosts(cfg: Settings) -> list[str]:
    """Host header values the server answers to. A wildcard bind with no names configured
    accepts any (a token is mandatory there, so a rebound page still cannot authenticate)."""
    if cfg.host in WILDCARD_HOSTS and not cfg.allowed_hosts:
        return ["*"]
    hosts = {"localhost", "127.0.0.1", "::1", "[::1]", *cfg.allowed_hosts}
    if cfg.host not in WILDCARD_HOSTS:
        hosts.add(cfg.host)
    return sorted(hosts)


def token_matches(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def signing_key(auth_token: str) -> bytes:
    # Derived from the token: every web process agrees, and changing the token ends all sessions.
    return hashlib.sha256(b"tunedeck-session\0" + auth_token.encode()).digest()


def _sign(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def new_session(key: bytes, now: float | None = None) -> str:
    payload = f"{int(now if now is not None else time.time())}.{secrets.token_hex(16)}"
    return f"{payload}.{_sign(key, payload)}"


def session_id(key: bytes, cookie: str, now: float | None = None,
               max_age_s: int = SESSION_MAX_AGE_S) -> str | None:
    """The session's id if the cookie is ours, untampered and unexpired."""
    issued, _, rest = cookie.partition(".")
    nonce, _, signature = rest.partition(".")
    if not (issued.isdigit() and nonce and signature):
        return None
    if not hmac.compare_digest(signature, _sign(key, f"{issued}.{nonce}")):
        return None
    current = now if now is not None else time.time()
    return nonce if 0 <= current - int(issued) <= max_age_s else None


def csrf_token(key: bytes, sid: str) -> str:
    return _sign(key, f"csrf.{sid}")


def cross_site_reason(method: str, headers: dict[str, str],
                      trusted: frozenset[str] = frozenset()) -> str | None:
    """Why a request looks cross-site, or None. Only state-changing methods are checked.

    ``trusted``: host names configured in TUNEDECK_ALLOWED_HOSTS, for a reverse proxy that
    rewrites the Host header.
    """
    if method not in UNSAFE_METHODS:
        return None
    host = headers.get("host", "")

    def ours(url: str) -> bool:
        parts = urlsplit(url)
        return parts.netloc == host or (parts.hostname or "") in trusted

    if headers.get("sec-fetch-site") == "cross-site":
        return "cross-site request refused"
    origin = headers.get("origin")
    if origin is not None:
        if origin == "null" or not ours(origin):
            return f"cross-site request refused (Origin {origin} is not {host})"
        return None
    referer = headers.get("referer")
    if referer and not ours(referer):
        return "cross-site request refused (Referer is another site)"
    return None


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def session_cookie_header(value: str, *, secure: bool, max_age: int = SESSION_MAX_AGE_S) -> str:
    parts = [f"{SESSION_COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly",
             "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _cookies(header: str) -> dict[str, str]:
    found = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            found[name] = value
    return found


# -- middleware ------------------------------------------------------------------------------
class SecurityMiddleware:
    """Pure ASGI (uploads stream through untouched); see the module docstring for the rules."""

    def __init__(self, app: ASGIApp, *, auth_token: str,
                 trusted_hosts: list[str] | None = None,
                 is_revoked: Callable[[str], bool] | None = None) -> None:
        self.app = app
        # Whether a session id was logged out (domain/sessions.py); read in a thread.
        self.is_revoked = is_revoked
        self.auth_token = auth_token
        self.trusted = frozenset(trusted_hosts or ())
        self.key = signing_key(auth_token) if auth_token else secrets.token_bytes(32)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        reason = cross_site_reason(method, headers, self.trusted)
        if reason:
            await _deny(scope, receive, send, 403, reason)
            return
        state = scope.setdefault("state", {})
        if not self.auth_token:
            # Nothing to authenticate; the token only keeps the pages' code path the same.
            state["csrf_token"] = csrf_token(self.key, "local")
            await self.app(scope, receive, send)
            return

        bearer = bearer_token(headers.get("authorization", ""))
        client = client_address(scope)
        if bearer is not None or (method == "POST" and path == "/login"):
            wait_s = AUTH_FAILURES.retry_after(client)
            if wait_s is not None:
                await JSONResponse(
                    {"detail": f"too many failed logins or tokens from {client}: try again in "
                               f"{wait_s} s"},
                    status_code=429, headers={"Retry-After": str(wait_s)})(scope, receive, send)
                return
        if bearer is not None:
            if not token_matches(bearer, self.auth_token):
                AUTH_FAILURES.fail(client)
                await _deny(scope, receive, send, 401, "invalid bearer token")
                return
            await self.app(scope, receive, send)
            return

        sid = session_id(self.key, _cookies(headers.get("cookie", "")).get(SESSION_COOKIE, ""))
        if sid is not None and self.is_revoked is not None \
                and await anyio.to_thread.run_sync(self.is_revoked, sid):
            sid = None  # logged out: the cookie is worth nothing any more
        if sid is not None:
            expected = csrf_token(self.key, sid)
            state["csrf_token"] = expected
            state["logged_in"] = True  # base.html shows "Log out"
            if method in UNSAFE_METHODS:
                given, receive = await _submitted_csrf(headers, receive)
                if not token_matches(given or "", expected):
                    await _deny(scope, receive, send, 403,
                                "missing or invalid CSRF token: reload the page and try again")
                    return
            await self.app(scope, receive, send)
            return

        if path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        if method == "GET" and not path.startswith(("/api/", "/openapi.json")):
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + (f"?{query}" if query else "")
            response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            await response(scope, receive, send)
            return
        await _deny(scope, receive, send, 401,
                    "authentication required: send Authorization: Bearer <TUNEDECK_AUTH_TOKEN>")


async def _deny(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    await JSONResponse({"detail": detail}, status_code=status, headers=headers)(
        scope, receive, send)


async def _submitted_csrf(headers: dict[str, str], receive: Receive
                          ) -> tuple[str | None, Receive]:
    """The CSRF token from the header, or from a small urlencoded form body (which is then
    replayed to the app unchanged)."""
    if CSRF_HEADER in headers:
        return headers[CSRF_HEADER], receive
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None, receive
    messages: list[Message] = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body") or len(body) > MAX_FORM_BYTES:
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    values = parse_qs(body[:MAX_FORM_BYTES].decode("latin-1")).get(CSRF_FIELD)
    return (values[0] if values else None), replay


def template_context(request) -> dict:  # type: ignore[no-untyped-def]
    """Jinja2 context processor: ``csrf_token`` for base.html's meta tag and forms, and
    ``logged_in`` (a login session, only with TUNEDECK_AUTH_TOKEN) for its "Log out" button."""
    state = request.scope.get("state", {})
    token = state.get("csrf_token")
    return ({"csrf_token": token} if token else {}) | {"logged_in": bool(state.get("logged_in"))}
