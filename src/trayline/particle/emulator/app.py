"""The local Particle Cloud's front door: the ASGI app, its limits, faults and error shapes.

:func:`create_app` returns a Starlette application. It is plain Starlette, not
FastAPI, because the emulator is also the benchmark target: thousands of
requests a second in-process, where FastAPI's validation layer would be the
bottleneck being measured.

Every request passes the front door (:meth:`EmulatorApp.__call__`) before any
route sees it, in this order:

1. ``/_emulator/*`` with an admin token configured: no valid
   ``Authorization: Bearer`` → 401. (Admin requests are never rate limited,
   faulted or counted.)
2. The path and query must be valid UTF-8 (400), and a declared
   ``Content-Length`` at most ``max_body_bytes`` (413). A body that turns out
   longer while being read is a 413 too: ``receive`` is wrapped to count bytes.
3. Particle paths only: count it, apply the per-client sliding-window rate
   limit (429 + ``Retry-After``), roll the fault dice (latency, a random
   500/502/503, or a dropped connection).
4. Route it (:mod:`.routes`: one module per resource, one decorator for what
   every handler does). A :class:`~.errors.CloudError` from anywhere becomes its
   exact Particle-shaped body; an unknown path or method is JSON too; anything
   unexpected is a JSON 500, never a text page.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send

from trayline.particle.emulator.bodies import valid_query
from trayline.particle.emulator.config import EmulatorConfig
from trayline.particle.emulator.errors import (
    API_USER_FORBIDDEN,
    ERROR_TEXT,
    INVALID_TOKEN,
    MISSING_TOKEN,
    TOO_MANY,
    CloudError,
    bad_request,
    too_large,
)
from trayline.particle.emulator.faults import FaultDice, SlidingWindow
from trayline.particle.emulator.persistence import to_file_data, write_file_data
from trayline.particle.emulator.records import Token
from trayline.particle.emulator.responses import CloudJSON
from trayline.particle.emulator.routes import all_routes
from trayline.particle.emulator.state import EmulatorState

__all__ = ["Counters", "EmulatorApp", "create_app"]

ADMIN_TOKEN_REQUIRED = {
    "error": "invalid_token",
    "error_description": "The /_emulator admin surface needs the admin token "
    "(Authorization: Bearer <admin token>).",
}


class Counters:
    """Request totals for ``GET /_emulator/state`` (Particle paths only)."""

    def __init__(self) -> None:
        self.requests = 0
        self.dropped = 0
        self.by_status: Counter[str] = Counter()
        self.by_route: Counter[str] = Counter()

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "by_route": dict(self.by_route),
            "dropped": self.dropped,
        }


class EmulatorApp(Starlette):
    """Starlette plus the front door (limits, counters, rate limit, faults) and the cloud."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState) -> None:
        self.config = config
        state.config = config
        self.cloud = state
        """The records (``app.state`` is Starlette's own bag of attributes)."""
        self.counters = Counters()
        self.clock: Callable[[], float] = time.monotonic
        self.limiter: SlidingWindow | None = None
        self.serial_budget: SlidingWindow | None = None
        self.dice = FaultDice(seed=config.seed)
        self.apply_faults(
            rate_limit=config.rate_limit,
            latency_ms=config.latency_ms,
            jitter_ms=config.jitter_ms,
            error_rate=config.error_rate,
            drop_rate=config.drop_rate,
        )
        self._reset_serial_budget()
        self._saved_version = state.version
        self._last_save = 0.0
        self._saving = False
        super().__init__(
            routes=all_routes(),
            exception_handlers={
                CloudError: _cloud_error,  # type: ignore[dict-item]
                HTTPException: _http_error,  # type: ignore[dict-item]
                Exception: _internal_error,
            },
            lifespan=self._lifespan,
        )

    # ---- configuration at run time
    def apply_faults(self, **changes: Any) -> None:
        """Change fault settings (any subset, already checked), as ``/_emulator/faults`` does."""
        if "rate_limit" in changes:
            limit = changes["rate_limit"]
            self.config.rate_limit = limit
            self.limiter = None if limit is None else SlidingWindow(limit[0], limit[1], self.clock)
        for name in ("latency_ms", "jitter_ms", "error_rate", "drop_rate"):
            if name in changes:
                setattr(self.config, name, float(changes[name]))
                setattr(self.dice, name, float(changes[name]))

    def faults_view(self) -> dict[str, Any]:
        limit = self.config.rate_limit
        return {
            "rate_limit": None if limit is None else f"{limit[0]}/{limit[1]:g}",
            "latency_ms": self.config.latency_ms,
            "jitter_ms": self.config.jitter_ms,
            "error_rate": self.config.error_rate,
            "drop_rate": self.config.drop_rate,
        }

    def _reset_serial_budget(self) -> None:
        budget = self.config.serial_lookup_limit
        self.serial_budget = (
            None if budget is None else SlidingWindow(budget[0], budget[1], self.clock)
        )

    def reset(self) -> None:
        """``POST /_emulator/reset``: forget records, counters and rate-limit windows."""
        self.cloud.clear()
        self.counters = Counters()
        self.apply_faults(rate_limit=self.config.rate_limit)
        self._reset_serial_budget()

    # ---- persistence
    def save_now(self) -> None:
        """Write the state file now if anything changed since the last save."""
        path = self.config.state_file
        if path is None or self.cloud.version == self._saved_version:
            return
        version = self.cloud.version
        self.cloud.save(path)
        self._saved_version = version
        self._last_save = time.monotonic()

    async def _save_if_due(self) -> None:
        """Save if something changed and ``save_interval_s`` has passed since the last save."""
        if self.config.state_file is None or self.cloud.version == self._saved_version:
            return
        if time.monotonic() - self._last_save >= self.config.save_interval_s:
            await self._save_off_loop()

    async def _save_off_loop(self) -> None:
        """Copy the records here, encode and write them in a worker thread.

        Encoding tens of thousands of devices and fsyncing takes about a second;
        done on the event loop it would stall every other request (issue 7). One
        save at a time, so an older copy never lands after a newer one.
        """
        path = self.config.state_file
        while self._saving:
            await asyncio.sleep(0.005)
        if path is None or self.cloud.version == self._saved_version:
            return
        self._saving = True
        try:
            version = self.cloud.version
            data = to_file_data(self.cloud)
            await asyncio.to_thread(write_file_data, path, data)
            self._saved_version = version
            self._last_save = time.monotonic()
        finally:
            self._saving = False

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        task = None
        if self.config.state_file is not None:
            task = asyncio.create_task(self._saver())
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.save_now()

    async def _saver(self) -> None:
        interval = max(self.config.save_interval_s, 0.2)
        while True:
            await asyncio.sleep(interval)
            await self._save_off_loop()

    # ---- the front door
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        admin = scope["path"].startswith("/_emulator")
        refusal = self._refusal(scope, admin)
        if refusal is not None:
            if not admin:
                self.counters.requests += 1
                self._count(scope, refusal.status)
            await CloudJSON(refusal.body, refusal.status)(scope, receive, send)
            return
        receive = self._limited(receive)
        mutating = scope["method"] not in ("GET", "HEAD")
        if admin:
            await self._serve_admin(scope, receive, send, mutating)
        else:
            await self._serve_particle(scope, receive, send, mutating)

    def _refusal(self, scope: Scope, admin: bool) -> CloudError | None:
        """Why the request is refused before any route runs, or ``None``."""
        if admin and self.config.admin_token is not None and not self._admin_ok(scope):
            return CloudError(401, ADMIN_TOKEN_REQUIRED)
        query = scope.get("query_string", b"")
        if query and not _plain_ascii(query):
            try:
                valid_query(query)
            except CloudError as exc:
                return exc
        raw_path = scope.get("raw_path")
        if raw_path and not _plain_ascii(raw_path):
            try:
                unquote_to_bytes(bytes(raw_path).split(b"?", 1)[0]).decode("utf-8")
            except UnicodeDecodeError:
                return bad_request("The path is not valid UTF-8")
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return bad_request("Content-Length is not a number")
            if int(declared) > self.config.max_body_bytes:
                return too_large(self.config.max_body_bytes)
        return None

    def _admin_ok(self, scope: Scope) -> bool:
        expected = f"Bearer {self.config.admin_token}".encode()
        given = _header(scope, b"authorization")
        return given is not None and hmac.compare_digest(given.encode("latin-1"), expected)

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that raises 413 once the body passes ``max_body_bytes``."""
        limit = self.config.max_body_bytes
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(limit)
            return message

        return limited

    async def _serve_admin(
        self, scope: Scope, receive: Receive, send: Send, mutating: bool
    ) -> None:
        if not mutating:
            await super().__call__(scope, receive, send)
            return

        async def saving_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._save_if_due()
            await send(message)

        await super().__call__(scope, receive, saving_send)

    async def _serve_particle(
        self, scope: Scope, receive: Receive, send: Send, mutating: bool
    ) -> None:
        counters = self.counters
        counters.requests += 1
        if self.limiter is not None:
            client = scope.get("client")
            wait = self.limiter.hit(client[0] if client else "unknown")
            if wait is not None:
                self._count(scope, 429)
                await CloudJSON(TOO_MANY, 429, headers=self.retry_after(wait))(scope, receive, send)
                return
        dice = self.dice
        if dice.active:
            plan = dice.roll()
            if plan.delay:
                await asyncio.sleep(plan.delay)
            if plan.drop:
                counters.dropped += 1
                self._count_route(scope)
                _drop_connection(send)
                return
            if plan.error_status is not None:
                self._count(scope, plan.error_status)
                body = {"ok": False, "error": ERROR_TEXT[plan.error_status]}
                await CloudJSON(body, plan.error_status)(scope, receive, send)
                return
        status = 0

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if mutating:
                    await self._save_if_due()  # on disk before the client hears "done"
            await send(message)

        await super().__call__(scope, receive, counting_send)
        counters.by_status[str(status)] += 1
        route = scope.get("route")
        path = getattr(route, "path", "<unmatched>")
        counters.by_route[f"{scope['method']} {path}"] += 1

    def retry_after(self, wait: float) -> dict[str, str] | None:
        if not self.config.retry_after_header:
            return None
        return {"Retry-After": str(SlidingWindow.retry_after(wait))}

    def _route_template(self, scope: Scope) -> str:
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "<unmatched>"))
        return "<unmatched>"

    def _count_route(self, scope: Scope) -> None:
        self.counters.by_route[f"{scope['method']} {self._route_template(scope)}"] += 1

    def _count(self, scope: Scope, status: int) -> None:
        self.counters.by_status[str(status)] += 1
        self._count_route(scope)

    # ---- what every Particle handler asks (used by routes.endpoint)
    def authenticate(self, request: Request, body_token: str | None = None) -> Token:
        """The caller's token from the Bearer header, or (old accounts) query or form body."""
        value = None
        header = request.headers.get("authorization")
        if header and header[:7].lower() == "bearer ":
            value = header[7:].strip()
        elif not self.config.new_account:
            value = request.query_params.get("access_token") or body_token
        if not value:
            raise CloudError(400, MISSING_TOKEN)
        token = self.cloud.tokens.get(value)
        if token is None:
            raise CloudError(401, INVALID_TOKEN)
        return token

    def require(self, token: Token, permission: str) -> None:
        if not token.allows(permission):
            raise CloudError(
                403,
                {
                    "ok": False,
                    "error": "Permission Denied",
                    "info": f"This access token does not have the {permission} scope",
                },
            )

    def forbid_api_user(self, token: Token) -> None:
        if token.api_user:
            raise CloudError(self.config.api_user_forbidden_status, API_USER_FORBIDDEN)


def _plain_ascii(raw: bytes) -> bool:
    """ASCII with no %-escape: valid UTF-8 whatever it holds (the fast path)."""
    return raw.isascii() and b"%" not in raw


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None


async def _cloud_error(_request: Request, exc: CloudError) -> Response:
    return CloudJSON(exc.body, exc.status)


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    """Unknown paths and methods answer JSON too, as every Particle error does."""
    return CloudJSON({"ok": False, "error": exc.detail}, exc.status_code, headers=exc.headers)


async def _internal_error(_request: Request, _exc: Exception) -> Response:
    """A bug in the emulator still answers in the cloud's shape (and the server logs it)."""
    return CloudJSON({"ok": False, "error": ERROR_TEXT[500]}, 500)


def _drop_connection(send: Send) -> None:
    """Close the connection with no response at all.

    Over uvicorn ``send`` is a bound method of the request cycle, which holds the
    socket's transport: abort it and mark the cycle disconnected so uvicorn does
    not answer 500 for us. In-process (httpx2 ``ASGITransport``) there is no
    socket; raising httpx2's ``RemoteProtocolError`` (what httpx2 raises when a real
    server hangs up without answering) makes ``ASGITransport`` hand the client the
    same transport error it would see over a socket.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None:
        transport.abort()
        cycle.disconnected = True  # type: ignore[union-attr]
        return
    raise httpx2.RemoteProtocolError("Server disconnected without sending a response.")


def create_app(
    config: EmulatorConfig | None = None, state: EmulatorState | None = None
) -> EmulatorApp:
    """Build the local cloud. Without ``state``, load ``config.state_file`` if it exists."""
    config = config or EmulatorConfig()
    if state is None:
        path = config.state_file
        if path is not None and path.exists():
            state = EmulatorState.load(path, seed=config.seed, config=config)
        else:
            state = EmulatorState(seed=config.seed, config=config)
    return EmulatorApp(config, state)
