"""Admin pages: people and their roles, API tokens, and starting or stopping a station.

Everything here changes configuration, so every route needs ``admin``; every
form carries the session's CSRF token. A new API token is shown once, on the
page that made it, and stored only as its SHA-256.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from trayline.store.users import (
    ROLES,
    UserExists,
    add_token,
    add_user,
    list_users,
    set_disabled,
    set_role,
)
from trayline.web.access import Principal, hash_password, new_token, require, token_digest
from trayline.web.render import page
from trayline.web.routes.station import handle_of

router = APIRouter(prefix="/admin", include_in_schema=False)
Admin = Depends(require("admin"))
MIN_PASSWORD = 8


def _users_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    users = list_users(request.app.state.store)
    return page(request, "admin_users.html", status, users=users, roles=ROLES, error=error)


@router.get("/users")
def users(request: Request, who: Principal = Admin) -> Response:
    return _users_page(request)


@router.post("/users")
def create_user(
    request: Request,
    name: str = Form(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"),
    role: str = Form(...),
    password: str = Form(..., max_length=1024),
    who: Principal = Admin,
) -> Response:
    if role not in ROLES:
        return _users_page(request, f"role must be one of {', '.join(ROLES)}", 422)
    if len(password) < MIN_PASSWORD:
        return _users_page(request, f"the password needs at least {MIN_PASSWORD} characters", 422)
    try:
        add_user(request.app.state.store, name, role, hash_password(password))
    except UserExists as exc:
        return _users_page(request, str(exc), 409)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{name}/role")
def change_role(
    request: Request, name: str, role: str = Form(...), who: Principal = Admin
) -> Response:
    if role not in ROLES:
        return _users_page(request, f"role must be one of {', '.join(ROLES)}", 422)
    if name == who.name and role != "admin":
        return _users_page(request, "you cannot take admin away from yourself", 409)
    try:
        set_role(request.app.state.store, name, role)
    except LookupError as exc:
        return _users_page(request, str(exc), 404)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{name}/enabled")
def change_enabled(
    request: Request,
    name: str,
    enabled: str = Form(..., pattern="^(yes|no)$"),
    who: Principal = Admin,
) -> Response:
    if name == who.name:
        return _users_page(request, "you cannot disable yourself", 409)
    try:
        set_disabled(request.app.state.store, name, enabled == "no")
    except LookupError as exc:
        return _users_page(request, str(exc), 404)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{name}/token")
def create_token(
    request: Request, name: str, label: str = Form("", max_length=64), who: Principal = Admin
) -> Response:
    token = new_token()
    try:
        add_token(request.app.state.store, name, token_digest(token), label)
    except LookupError as exc:
        return _users_page(request, str(exc), 404)
    response = page(request, "token_created.html", name=name, token=token)
    response.headers["cache-control"] = "no-store"
    return response


@router.post("/stations/{station}/{action}")
def station_power(request: Request, station: str, action: str, who: Principal = Admin) -> Response:
    handle = handle_of(request, station)
    if action == "stop":
        handle.stop()
    elif action == "start":
        handle.start()
    else:
        return page(request, "error.html", 404, title="Unknown action", message=action)
    return RedirectResponse(f"/station/{station}", status_code=303)
