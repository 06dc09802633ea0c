"""Logging in and out: a form with a CSRF token, a signed session cookie, nothing else stored.

Failed sign-ins are counted (:class:`~trayline.web.access.SignInLimit`); past the limit the
form answers 429 "too many failed sign-ins; try again in N s" and the password is not checked.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from trayline.web.access import SignInLimit, check_csrf, check_password, client_address, principal
from trayline.web.render import page

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//host`` or a full URL (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    if principal(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return page(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
async def login(
    request: Request,
    name: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
) -> Response:
    await check_csrf(request)
    name, address = name.strip(), client_address(request)
    limit: SignInLimit = request.app.state.signin_limit
    wait = limit.wait(name, address)
    if wait:  # refused before argon2 runs: guessing costs the guesser time, not the server
        error = f"too many failed sign-ins; try again in {wait} s"
        reply = page(request, "login.html", 429, next=_safe_next(next), error=error)
        reply.headers["retry-after"] = str(wait)
        return reply
    store = request.app.state.store
    user = await run_in_threadpool(check_password, store, name, password)  # argon2: slow
    if user is None:
        limit.failed(name, address)
        return page(
            request, "login.html", 401, next=_safe_next(next), error="wrong name or password"
        )
    limit.succeeded(name, address)
    request.session.clear()
    request.session["user"] = user.name
    request.session["csrf"] = secrets.token_urlsafe(24)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await check_csrf(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
