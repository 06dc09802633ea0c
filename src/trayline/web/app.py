"""The web application: middleware, error pages, and the routers, assembled in one place.

:func:`create_app` is what ``trayline serve`` runs and what the tests drive
(in-process, through httpx2's ASGI transport, or over a socket for the browser
tests). A missing login answers 401 on ``/api/`` and sends a browser to the
login page; a role too low or a missing CSRF token answers 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trayline import __version__
from trayline.store.db import Store
from trayline.web.access import Forbidden, NeedLogin, SignInLimit
from trayline.web.render import STATIC, page
from trayline.web.routes import admin, api, auth, exports, pages, station
from trayline.web.stations import StationHub

__all__ = ["SESSION_COOKIE", "create_app"]

SESSION_COOKIE = "trayline_session"
SESSION_HOURS = 12
_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"script-src 'self'; frame-ancestors 'none'",
    ),
]


class SecurityHeaders:
    """Headers that keep the pages from being framed or fed foreign scripts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _HEADERS
            await send(message)

        await self.app(scope, receive, sending if scope["type"] == "http" else send)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _need_login(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return JSONResponse(
            {"detail": "log in, or send Authorization: Bearer <token from trayline users token>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    if _is_api(request) or request.headers.get("accept", "").startswith("application/json"):
        return JSONResponse({"detail": str(exc)}, status_code=403)
    return page(request, "error.html", 403, title="Not allowed", message=str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Errors of the API stay JSON; a person's browser gets a page saying what went wrong."""
    assert isinstance(exc, StarletteHTTPException)
    wants_json = "application/json" in request.headers.get("accept", "")
    if _is_api(request) or wants_json or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    title = "Not found" if exc.status_code == 404 else f"Error {exc.status_code}"
    return page(request, "error.html", exc.status_code, title=title, message=str(exc.detail))


def create_app(
    store: Store,
    *,
    secret: str,
    hub: StationHub | None = None,
    open_local: bool = False,
    signin_limit: SignInLimit | None = None,
) -> FastAPI:
    """The app over ``store``; ``hub`` holds the stations this process drives (started with
    the app, stopped with it); ``open_local`` is local mode (loopback, no users yet);
    ``signin_limit`` counts failed sign-ins (default: 5 per name, 20 per address, 5 min)."""
    stations = hub if hub is not None else StationHub()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stations.start_all()
        try:
            yield
        finally:
            stations.stop_all()

    app = FastAPI(
        title="trayline",
        version=__version__,
        summary="The line's units, yield, stations and exports.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.store = store
    app.state.hub = stations
    app.state.open_local = open_local
    app.state.signin_limit = signin_limit if signin_limit is not None else SignInLimit()
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
    )
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(NeedLogin, _need_login)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (auth, pages, station, api, exports, admin):
        app.include_router(module.router)
    return app
