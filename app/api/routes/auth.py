"""Login and logout for the pages when TUNEDECK_AUTH_TOKEN is set (the API takes a bearer token)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.deps import SessionDep
from app.api.templating import templates
from app.core import security
from app.core.config import settings
from app.core.ratelimit import AUTH_FAILURES
from app.domain import sessions

router = APIRouter(include_in_schema=False)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    if not settings.auth_token:
        return RedirectResponse(security.safe_next(next), status_code=303)
    return templates.TemplateResponse(request, "auth/login.html",
                                      {"next": security.safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await request.form()
    target = security.safe_next(str(form.get("next") or "/"))
    if not settings.auth_token:
        return RedirectResponse(target, status_code=303)
    if not security.token_matches(str(form.get("token") or ""), settings.auth_token):
        AUTH_FAILURES.fail(security.client_address(request.scope))
        await asyncio.sleep(0.5)  # slows guessing; the token itself should be long and random
        return templates.TemplateResponse(
            request, "auth/login.html", status_code=401,
            context={"next": target,
                     "error": "That token is not this server's TUNEDECK_AUTH_TOKEN."})
    response = RedirectResponse(target, status_code=303)
    cookie = security.new_session(security.signing_key(settings.auth_token))
    response.headers.append("set-cookie",
                            security.session_cookie_header(cookie, secure=_secure(request)))
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> Response:
    if settings.auth_token:  # the cookie stops working here, not only in this browser
        key = security.signing_key(settings.auth_token)
        cookie = request.cookies.get(security.SESSION_COOKIE, "")
        sid = security.session_id(key, cookie)
        if sid is not None:
            sessions.revoke(session, sid, lifetime_s=security.SESSION_MAX_AGE_S)
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("set-cookie", security.session_cookie_header(
        "", secure=_secure(request), max_age=0))
    return response
