"""The local Particle Cloud as an ASGI app: the wire protocol of shared/spec/particle-cloud-api.md.

:func:`create_app` returns a Starlette application. It is plain Starlette, not
FastAPI, because the emulator is also the benchmark target: thousands of
requests a second in-process, where FastAPI's validation layer would be the
bottleneck being measured.

Each request to a Particle path goes through the same front door
(:meth:`EmulatorApp.__call__`), in this order: count it, apply the per-client
sliding-window rate limit (429 + ``Retry-After``), roll the fault dice (latency,
a random 500/502/503, or a dropped connection), then route it. Handlers parse
JSON, form (``key[]`` arrays) and multipart bodies alike, authenticate the token,
check the API-user scope, resolve the product by ID or slug, and ask
:class:`~trayline.particle.emulator.state.EmulatorState` to do the work. A
:class:`~trayline.particle.emulator.state.CloudError` becomes the exact
Particle-shaped error body.

``/_emulator/...`` is the admin surface for tests and rehearsals: it is never
rate limited, faulted or counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import Message, Receive, Scope, Send

from trayline.core.skus import UnknownSku
from trayline.particle.emulator.config import EmulatorConfig, parse_rate_limit
from trayline.particle.emulator.faults import FaultDice, SlidingWindow
from trayline.particle.emulator.state import (
    CloudError,
    Device,
    EmulatorState,
    Product,
    Token,
    now_iso,
    permission_denied,
)

__all__ = ["EmulatorApp", "create_app"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is invalid.",
}
MISSING_TOKEN = {
    "error": "invalid_request",
    "error_description": "The access token was not found",
}
API_USER_FORBIDDEN = {
    "error": "unauthorized",
    "error_description": "API users are not allowed to call this endpoint",
}
TOO_MANY = {"ok": False, "error": "Too many requests"}
ERROR_TEXT = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def _bad_request(message: str) -> CloudError:
    return CloudError(400, {"ok": False, "error": message})


def _not_found(message: str) -> CloudError:
    return CloudError(404, {"ok": False, "error": message})


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


# --------------------------------------------------------------------------- body parsing
async def read_fields(request: Request) -> dict[str, Any]:
    """A request body as a dict, whatever its encoding.

    JSON objects pass through. Form and multipart fields become strings; keys
    ending in ``[]`` (and keys repeated) become lists; uploaded files become their
    text. An empty body is ``{}``.
    """
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            text = (
                (await value.read()).decode("utf-8", "replace")
                if isinstance(value, UploadFile)
                else value
            )
            if key.endswith("[]"):
                fields.setdefault(key[:-2], []).append(text)
            elif key in fields:
                existing = fields[key]
                fields[key] = [*existing, text] if isinstance(existing, list) else [existing, text]
            else:
                fields[key] = text
        return fields
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise _bad_request("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _bad_request("Request body must be a JSON object")
    return data


def _as_list(value: Any) -> list[str]:
    """A field that should be a list of strings: accepts a list, a string, or nothing."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _int_param(request: Request, *names: str, default: int) -> int:
    for name in names:
        raw = request.query_params.get(name)
        if raw is not None and raw != "":
            try:
                value = int(raw)
            except ValueError:
                raise _bad_request(f"{name} must be a number") from None
            if value < 1:
                raise _bad_request(f"{name} must be at least 1")
            return value
    return default


# --------------------------------------------------------------------------- the app
class EmulatorApp(Starlette):
    """Starlette plus the front door (counters, rate limit, faults) and the emulator's parts."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState) -> None:
        self.config = config
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
        super().__init__(
            routes=_routes(self),
            exception_handlers={
                CloudError: _cloud_error,  # type: ignore[dict-item]
                HTTPException: _http_error,  # type: ignore[dict-item]
            },
            lifespan=self._lifespan,
        )

    # ---- configuration at run time
    def apply_faults(self, **changes: Any) -> None:
        """Change fault settings (any subset), as ``POST /_emulator/faults`` does."""
        if "rate_limit" in changes:
            limit = changes["rate_limit"]
            self.config.rate_limit = limit
            self.limiter = None if limit is None else SlidingWindow(limit[0], limit[1], self.clock)
        for name in ("latency_ms", "jitter_ms", "error_rate", "drop_rate"):
            if name in changes:
                setattr(self.config, name, float(changes[name]))
                setattr(self.dice, name, float(changes[name]))

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

    def _maybe_save(self) -> None:
        if self.config.state_file is None or self.cloud.version == self._saved_version:
            return
        if time.monotonic() - self._last_save >= self.config.save_interval_s:
            self.save_now()

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
            self.save_now()

    # ---- the front door
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        mutating = scope["method"] not in ("GET", "HEAD")
        if scope["path"].startswith("/_emulator"):
            if not mutating:
                await super().__call__(scope, receive, send)
                return

            async def saving_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self._maybe_save()
                await send(message)

            await super().__call__(scope, receive, saving_send)
            return
        counters = self.counters
        counters.requests += 1
        if self.limiter is not None:
            client = scope.get("client")
            wait = self.limiter.hit(client[0] if client else "unknown")
            if wait is not None:
                headers = (
                    {"Retry-After": str(SlidingWindow.retry_after(wait))}
                    if self.config.retry_after_header
                    else None
                )
                self._count(scope, 429)
                await JSONResponse(TOO_MANY, 429, headers=headers)(scope, receive, send)
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
                await JSONResponse(body, plan.error_status)(scope, receive, send)
                return
        status = 0

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if mutating:
                    self._maybe_save()  # on disk before the client hears "done"
            await send(message)

        await super().__call__(scope, receive, counting_send)
        counters.by_status[str(status)] += 1
        route = scope.get("route")
        path = getattr(route, "path", "<unmatched>")
        counters.by_route[f"{scope['method']} {path}"] += 1

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

    # ---- shared request steps
    def authenticate(self, request: Request, fields: dict[str, Any] | None = None) -> Token:
        """The caller's token from the Bearer header, or (old accounts) query or form body."""
        value = None
        header = request.headers.get("authorization")
        if header and header[:7].lower() == "bearer ":
            value = header[7:].strip()
        elif not self.config.new_account:
            value = request.query_params.get("access_token")
            if value is None and fields is not None:
                body_token = fields.get("access_token")
                value = body_token if isinstance(body_token, str) else None
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

    def product(self, request: Request) -> Product:
        ref = request.path_params["product"]
        product = self.cloud.find_product(ref)
        if product is None:
            raise _not_found(f"Product {ref} not found")
        return product

    def product_device(self, product: Product, device_id: str) -> Device:
        device = self.cloud.product_device(product, device_id)
        if device is None:
            raise permission_denied(self.config.device_not_found_status)
        return device

    def group_name(self, raw: Any) -> str:
        """Validate a group name under the configured upper-case rule."""
        name = str(raw).strip() if raw is not None else ""
        if self.config.uppercase_group_names == "lowercase":
            name = name.lower()
        if not self.cloud.valid_group_name(name):
            raise _bad_request(
                "Invalid group name: use 1 to 64 lowercase letters, numbers, dashes or underscores"
            )
        return name


async def _cloud_error(_request: Request, exc: CloudError) -> Response:
    return JSONResponse(exc.body, exc.status)


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    """Unknown paths and methods answer JSON too, as every Particle error does."""
    return JSONResponse({"ok": False, "error": exc.detail}, exc.status_code, headers=exc.headers)


def _drop_connection(send: Send) -> None:
    """Close the connection with no response at all.

    Over uvicorn ``send`` is a bound method of the request cycle, which holds the
    socket's transport: abort it and mark the cycle disconnected so uvicorn does
    not answer 500 for us. In-process (httpx ``ASGITransport``) there is no
    socket; raising httpx's ``RemoteProtocolError`` (what httpx raises when a real
    server hangs up without answering) makes ``ASGITransport`` hand the client the
    same transport error it would see over a socket.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None:
        transport.abort()
        cycle.disconnected = True  # type: ignore[union-attr]
        return
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


def create_app(
    config: EmulatorConfig | None = None, state: EmulatorState | None = None
) -> EmulatorApp:
    """Build the local cloud. Without ``state``, load ``config.state_file`` if it exists."""
    config = config or EmulatorConfig()
    if state is None:
        path = config.state_file
        if path is not None and path.exists():
            state = EmulatorState.load(path, seed=config.seed)
        else:
            state = EmulatorState(seed=config.seed)
    return EmulatorApp(config, state)


# =========================================================================== handlers
def _routes(app: EmulatorApp) -> list[Route]:
    state = app.cloud
    config = app.config

    # ----------------------------------------------------------------- user & products
    async def get_user(request: Request) -> Response:
        token = app.authenticate(request)
        return JSONResponse(
            {
                "username": token.username,
                "subscription_ids": [],
                "account_info": {"first_name": "", "last_name": ""},
                "mfa": {"enabled": False},
                "scim_provisioned": False,
            }
        )

    async def list_products(request: Request) -> Response:
        token = app.authenticate(request)
        app.require(token, "products:list")
        return JSONResponse({"products": [p.to_api() for p in state.products.values()]})

    async def get_product(request: Request) -> Response:
        token = app.authenticate(request)
        app.require(token, "products:get")
        return JSONResponse({"product": app.product(request).to_api()})

    # ----------------------------------------------------------------- serial lookup (§2)
    async def serial_lookup(request: Request) -> Response:
        token = app.authenticate(request)
        if token.api_user and not config.api_users_may_lookup_serials:
            raise CloudError(config.api_user_forbidden_status, API_USER_FORBIDDEN)
        if app.serial_budget is not None:
            wait = app.serial_budget.hit(token.username)
            if wait is not None:
                headers = (
                    {"Retry-After": str(SlidingWindow.retry_after(wait))}
                    if config.retry_after_header
                    else None
                )
                return JSONResponse(TOO_MANY, 429, headers=headers)
        serial = request.path_params["serial"].strip().upper()
        device_id = state.by_serial.get(serial)
        if device_id is None:
            raise CloudError(
                config.serial_lookup_status_not_found,
                {"ok": False, "error": f"Serial number {serial} not found"},
            )
        device = state.devices[device_id]
        id_key = "deviceID" if config.legacy_serial_field else "device_id"
        return JSONResponse(
            {
                "ok": True,
                id_key: device.id,
                "platform_id": device.platform_id,
                "iccid": device.iccid,
                "serial_number": device.serial_number,
            }
        )

    # ----------------------------------------------------------------- product devices (§3, §6, §8)
    async def import_devices(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "devices:import")
        product = app.product(request)
        identifiers = _as_list(fields.get("id")) + _as_list(fields.get("ids"))
        for text in _as_list(fields.get("file")):
            identifiers.extend(line.strip() for line in text.splitlines() if line.strip())
        identifiers = [i.strip() for i in identifiers if i.strip()]
        if not identifiers:
            raise _bad_request("Provide id, ids or a file of device identifiers")
        claim_user = request.query_params.get("claim_user") or fields.get("claim_user")
        result = state.import_devices(
            product,
            identifiers,
            other_product_bucket=config.other_product_bucket,
            platform_mismatch_bucket=config.platform_mismatch_bucket,
            claim_user=str(claim_user) if claim_user else None,
        )
        return JSONResponse(result.to_api())

    async def list_devices(request: Request) -> Response:
        token = app.authenticate(request)
        app.require(token, "devices:list")
        product = app.product(request)
        q = request.query_params
        per_page = _int_param(request, "perPage", "per_page", default=config.default_per_page)
        if config.max_per_page is not None:
            per_page = min(per_page, config.max_per_page)
        groups = [g for g in (q.get("groups") or "").split(",") if g.strip()]
        quarantined = q.get("quarantined")
        devices, total_pages = state.list_product_devices(
            product,
            device_id=q.get("deviceId"),
            groups=groups or None,
            device_name=q.get("deviceName"),
            serial_number=q.get("serialNumber"),
            quarantined=None if quarantined is None else _as_bool(quarantined),
            sort_attr=q.get("sortAttr"),
            sort_dir=q.get("sortDir") or "asc",
            page=_int_param(request, "page", default=1),
            per_page=per_page,
        )
        return JSONResponse(
            {
                "devices": [d.to_api() for d in devices],
                "customers": [],
                "meta": {"total_pages": total_pages},
            }
        )

    async def get_device(request: Request) -> Response:
        token = app.authenticate(request)
        app.require(token, "devices:get")
        product = app.product(request)
        device = app.product_device(product, request.path_params["device_id"])
        return JSONResponse(device.to_api())

    async def update_device(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "devices:update")
        product = app.product(request)
        device = app.product_device(product, request.path_params["device_id"])
        changes: dict[str, Any] = {}
        if "name" in fields:
            changes["name"] = None if fields["name"] is None else str(fields["name"])
        if "notes" in fields:
            changes["notes"] = None if fields["notes"] is None else str(fields["notes"])
        if "development" in fields:
            changes["development"] = _as_bool(fields["development"])
        if "desired_firmware_version" in fields:
            raw = fields["desired_firmware_version"]
            if raw is None or raw in ("", "null"):
                changes["desired_firmware_version"] = None
            else:
                try:
                    changes["desired_firmware_version"] = int(raw)
                except (TypeError, ValueError):
                    raise _bad_request("desired_firmware_version must be a number") from None
        if "groups" in fields:
            names = [app.group_name(g) for g in _as_list(fields["groups"])]
            for name in names:
                state.ensure_group(product, name)
            changes["groups"] = names
        state.update_device(device, changes)
        body: dict[str, Any] = {"id": device.id}
        for key in changes:
            value = getattr(device, key)
            body[key] = list(value) if isinstance(value, list) else value
        body["updated_at"] = device.updated_at
        return JSONResponse(body)

    async def batch_update(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "devices:update")
        product = app.product(request)
        action = fields.get("action")
        if action != "groups":
            raise _bad_request(f"Unknown action {action!r}" if action else "action is required")
        metadata = fields.get("metadata") or {}
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                raise _bad_request("metadata must be a JSON object") from None
        if not isinstance(metadata, dict):
            raise _bad_request("metadata must be an object with add and/or remove")
        add_raw = metadata.get("add", fields.get("metadata[add]"))
        remove_raw = metadata.get("remove", fields.get("metadata[remove]"))
        add = [app.group_name(g) for g in _as_list(add_raw)]
        remove = [app.group_name(g) for g in _as_list(remove_raw)]
        for name in add:
            if name not in state.groups[product.id]:
                if not config.batch_add_creates_groups:
                    raise _bad_request(f"Group {name} not found")
                state.create_group(product, name)
        devices: list[Device] = []
        for raw in _as_list(fields.get("devices")):
            device = state.product_device(product, raw)
            if device is None:
                if config.batch_unknown_devices == "reject":
                    raise _bad_request(f"Device {raw} is not in this product")
                continue
            devices.append(device)
        for device in devices:
            state.change_groups(device, add, remove)
        state.touch()
        return JSONResponse({"ok": True})

    async def remove_device(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "devices:remove")
        product = app.product(request)
        device = app.product_device(product, request.path_params["device_id"])
        state.remove_from_product(device)
        return Response(status_code=204)

    async def remove_owner(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "devices:release")
        product = app.product(request)
        device = app.product_device(product, request.path_params["device_id"])
        device.owner = None
        device.updated_at = now_iso()
        state.touch()
        return JSONResponse({"ok": True})

    # ----------------------------------------------------------------- claim (§7)
    async def claim(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.forbid_api_user(token)
        raw = str(fields.get("id") or "").strip()
        if not raw:
            raise _bad_request("id is required")
        device = state.devices.get(raw.lower())
        if device is None:
            raise permission_denied(config.device_not_found_status)
        if device.owner not in (None, token.username):
            if _as_bool(fields.get("request_transfer", False)):
                return JSONResponse({"ok": True, "transfer_id": secrets.token_hex(12)})
            raise CloudError(403, {"ok": False, "errors": ["That belongs to someone else."]})
        device.owner = token.username
        device.updated_at = now_iso()
        state.touch()
        return JSONResponse(
            {"ok": True, "id": device.id, "user_id": token.username, "connected": False}
        )

    async def unclaim(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "devices:release")
        device = state.devices.get(request.path_params["device_id"].strip().lower())
        if device is None or (device.owner != token.username and device.product_id is None):
            raise permission_denied(config.device_not_found_status)
        device.owner = None
        device.updated_at = now_iso()
        state.touch()
        return JSONResponse({"ok": True})

    async def list_user_devices(request: Request) -> Response:
        token = app.authenticate(request)
        mine = [d.to_api() for d in state.devices.values() if d.owner == token.username]
        return JSONResponse(mine)

    # ----------------------------------------------------------------- SIMs (§4)
    async def import_sims(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "sims:import")
        product = app.product(request)
        iccids = _as_list(fields.get("sims"))
        for text in _as_list(fields.get("file")):
            iccids.extend(line.strip() for line in text.splitlines() if line.strip())
        if not iccids:
            raise _bad_request("Provide sims[] or a file of ICCIDs")
        state.import_sims(product, iccids)
        return JSONResponse({"ok": True})

    def _sim_page(request: Request, sims: list[Any]) -> tuple[list[Any], int]:
        q = request.query_params
        if q.get("iccid"):
            sims = [s for s in sims if q["iccid"].strip() in s.iccid]
        if q.get("deviceId"):
            needle = q["deviceId"].strip().lower()
            sims = [s for s in sims if s.last_device_id and needle in s.last_device_id]
        if q.get("deviceName"):
            needle = q["deviceName"].strip().lower()
            sims = [s for s in sims if needle in (state.sim_device_name(s) or "").lower()]
        per_page = _int_param(request, "perPage", "per_page", default=config.default_per_page)
        page = _int_param(request, "page", default=1)
        total_pages = -(-len(sims) // per_page)
        return sims[(page - 1) * per_page : page * per_page], total_pages

    async def list_user_sims(request: Request) -> Response:
        token = app.authenticate(request)
        app.require(token, "sims:list")
        mine = [s for s in state.sims.values() if s.owner == token.username]
        page, _ = _sim_page(request, mine)
        return JSONResponse({"sims": [s.to_api(state.sim_device_name(s)) for s in page]})

    async def list_product_sims(request: Request) -> Response:
        token = app.authenticate(request)
        app.require(token, "sims:list")
        product = app.product(request)
        sims = [s for s in state.sims.values() if s.product_id == product.id]
        page, total_pages = _sim_page(request, sims)
        return JSONResponse(
            {
                "sims": [s.to_api(state.sim_device_name(s)) for s in page],
                "meta": {"total_pages": total_pages},
            }
        )

    def _find_sim(request: Request) -> Any:
        iccid = request.path_params["iccid"].strip()
        sim = state.sims.get(iccid)
        if "product" in request.path_params:
            product = app.product(request)
            if sim is not None and sim.product_id != product.id:
                sim = None
        if sim is None:
            raise _not_found(f"SIM card {iccid} not found")
        return sim

    async def get_sim(request: Request) -> Response:
        token = app.authenticate(request)
        app.require(token, "sims:get")
        sim = _find_sim(request)
        return JSONResponse(sim.to_api(state.sim_device_name(sim)))

    async def update_sim(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "sims:update")
        sim = _find_sim(request)
        action = fields.get("action")
        if action in ("activate", "reactivate"):
            sim.activate(str(action))
        elif action == "deactivate":
            sim.deactivate()
        else:
            raise _bad_request(
                f"Unknown action {action!r}: use activate, deactivate or reactivate"
                if action
                else "action is required"
            )
        state.touch()
        return JSONResponse({"ok": True, **sim.to_api(state.sim_device_name(sim))})

    async def release_sim(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "sims:remove")
        sim = _find_sim(request)
        sim.deactivate()
        sim.product_id = None
        sim.owner = None
        state.touch()
        return Response(status_code=204)

    # ----------------------------------------------------------------- groups (§5)
    async def create_group(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "groups:create")
        product = app.product(request)
        if not fields.get("name"):
            raise _bad_request("name is required")
        name = app.group_name(fields.get("name"))
        if name in state.groups[product.id]:
            raise CloudError(
                config.duplicate_group_status, {"ok": False, "error": config.duplicate_group_error}
            )
        group = state.create_group(
            product, name, _opt_str(fields.get("description")), _opt_str(fields.get("color"))
        )
        return JSONResponse({"group": group.to_api()}, 201)

    async def list_groups(request: Request) -> Response:
        token = app.authenticate(request)
        app.require(token, "groups:list")
        product = app.product(request)
        needle = (request.query_params.get("name") or "").strip().lower()
        groups = [
            g.to_api(state.group_size(product.id, g.name))
            for g in state.groups[product.id].values()
            if needle in g.name
        ]
        return JSONResponse({"groups": groups})

    def _group(request: Request, product: Product) -> Any:
        name = request.path_params["name"]
        group = state.groups[product.id].get(name)
        if group is None:
            raise _not_found(f"Group {name} not found")
        return group

    async def get_group(request: Request) -> Response:
        token = app.authenticate(request)
        app.require(token, "groups:get")
        product = app.product(request)
        group = _group(request, product)
        return JSONResponse({"group": group.to_api(state.group_size(product.id, group.name))})

    async def update_group(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "groups:update")
        product = app.product(request)
        group = _group(request, product)
        if not any(k in fields for k in ("name", "description", "color")):
            raise _bad_request("Provide at least one of name, description, color")
        if fields.get("name") and fields["name"] != group.name:
            new_name = app.group_name(fields["name"])
            if new_name in state.groups[product.id]:
                raise CloudError(
                    config.duplicate_group_status,
                    {"ok": False, "error": config.duplicate_group_error},
                )
            state.rename_group(product, group, new_name)
        if "description" in fields:
            group.description = _opt_str(fields["description"])
        if "color" in fields:
            group.color = _opt_str(fields["color"])
        state.touch()
        return JSONResponse({"group": group.to_api(state.group_size(product.id, group.name))})

    async def delete_group(request: Request) -> Response:
        fields = await read_fields(request)
        token = app.authenticate(request, fields)
        app.require(token, "groups:remove")
        product = app.product(request)
        group = _group(request, product)
        state.delete_group(product, group.name)
        return Response(status_code=204)

    # ----------------------------------------------------------------- admin surface
    async def admin_products(request: Request) -> Response:
        fields = await read_fields(request)
        try:
            product = state.add_product(
                id=int(fields["id"]),
                slug=_opt_str(fields.get("slug")),
                platform_id=int(fields.get("platform_id", 13)),
                name=_opt_str(fields.get("name")),
                device_limit=(
                    None if fields.get("device_limit") is None else int(fields["device_limit"])
                ),
                protected=_as_bool(fields.get("protected", False)),
            )
        except (KeyError, TypeError, ValueError):
            raise _bad_request("expected {id, slug, platform_id, name}") from None
        return JSONResponse({"product": product.to_api()}, 201)

    async def admin_tokens(request: Request) -> Response:
        fields = await read_fields(request)
        username = fields.get("username")
        if not username:
            raise _bad_request('expected {"username": ..., "scopes": [...] | null}')
        scopes = fields.get("scopes")
        token = state.add_token(
            str(username),
            None if scopes is None else _as_list(scopes),
            api_user=_as_bool(fields.get("api_user", False)),
            token=_opt_str(fields.get("token")),
        )
        return JSONResponse({"token": token}, 201)

    async def admin_devices(request: Request) -> Response:
        fields = await read_fields(request)
        try:
            count = int(fields.get("count", 1))
            product_id = fields.get("product_id")
            devices = state.make_devices(
                str(fields["sku"]),
                count,
                product_id=None if product_id is None else int(product_id),
                protected=_as_bool(fields.get("protected", False)),
                owner=_opt_str(fields.get("owner")),
            )
        except UnknownSku as exc:
            raise _bad_request(str(exc)) from None
        except (KeyError, TypeError, ValueError):
            raise _bad_request('expected {"sku": "BRN404", "count": 10}') from None
        return JSONResponse({"devices": [d.to_admin() for d in devices]}, 201)

    async def admin_faults(request: Request) -> Response:
        fields = await read_fields(request)
        changes: dict[str, Any] = {}
        try:
            if "rate_limit" in fields:
                raw = fields["rate_limit"]
                changes["rate_limit"] = None if raw in (None, "", "off") else parse_rate_limit(raw)
            for name in ("latency_ms", "jitter_ms", "error_rate", "drop_rate"):
                if name in fields:
                    value = float(fields[name] or 0)
                    if value < 0 or (name.endswith("rate") and value > 1):
                        raise ValueError(f"{name} out of range")
                    changes[name] = value
        except (TypeError, ValueError) as exc:
            raise _bad_request(str(exc)) from None
        app.apply_faults(**changes)
        return JSONResponse(_faults_view(app))

    async def admin_reset(_request: Request) -> Response:
        app.reset()
        return JSONResponse({"ok": True})

    async def admin_state(_request: Request) -> Response:
        return JSONResponse({**state.snapshot(), "counters": app.counters.to_dict()})

    p = "/v1/products/{product}"
    return [
        Route("/v1/user", get_user, methods=["GET"]),
        Route("/v1/products", list_products, methods=["GET"]),
        Route(p, get_product, methods=["GET"]),
        Route("/v1/serial_numbers/{serial}", serial_lookup, methods=["GET"]),
        Route(f"{p}/devices", import_devices, methods=["POST"]),
        Route(f"{p}/devices", list_devices, methods=["GET"]),
        Route(f"{p}/devices", batch_update, methods=["PUT"]),
        Route(f"{p}/devices/{{device_id}}", get_device, methods=["GET"]),
        Route(f"{p}/devices/{{device_id}}", update_device, methods=["PUT"]),
        Route(f"{p}/devices/{{device_id}}", remove_device, methods=["DELETE"]),
        Route(f"{p}/devices/{{device_id}}/owner", remove_owner, methods=["DELETE"]),
        Route(f"{p}/sims", import_sims, methods=["POST"]),
        Route(f"{p}/sims", list_product_sims, methods=["GET"]),
        Route(f"{p}/sims/{{iccid}}", get_sim, methods=["GET"]),
        Route(f"{p}/sims/{{iccid}}", update_sim, methods=["PUT"]),
        Route(f"{p}/sims/{{iccid}}", release_sim, methods=["DELETE"]),
        Route("/v1/sims", list_user_sims, methods=["GET"]),
        Route("/v1/sims/{iccid}", get_sim, methods=["GET"]),
        Route("/v1/sims/{iccid}", update_sim, methods=["PUT"]),
        Route("/v1/sims/{iccid}", release_sim, methods=["DELETE"]),
        Route(f"{p}/groups", create_group, methods=["POST"]),
        Route(f"{p}/groups", list_groups, methods=["GET"]),
        Route(f"{p}/groups/{{name}}", get_group, methods=["GET"]),
        Route(f"{p}/groups/{{name}}", update_group, methods=["PUT"]),
        Route(f"{p}/groups/{{name}}", delete_group, methods=["DELETE"]),
        Route("/v1/devices", claim, methods=["POST"]),
        Route("/v1/devices", list_user_devices, methods=["GET"]),
        Route("/v1/devices/{device_id}", unclaim, methods=["DELETE"]),
        Route("/_emulator/products", admin_products, methods=["POST"]),
        Route("/_emulator/tokens", admin_tokens, methods=["POST"]),
        Route("/_emulator/devices", admin_devices, methods=["POST"]),
        Route("/_emulator/faults", admin_faults, methods=["POST"]),
        Route("/_emulator/reset", admin_reset, methods=["POST"]),
        Route("/_emulator/state", admin_state, methods=["GET"]),
    ]


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _faults_view(app: EmulatorApp) -> dict[str, Any]:
    limit = app.config.rate_limit
    return {
        "rate_limit": None if limit is None else f"{limit[0]}/{limit[1]:g}",
        "latency_ms": app.config.latency_ms,
        "jitter_ms": app.config.jitter_ms,
        "error_rate": app.config.error_rate,
        "drop_rate": app.config.drop_rate,
    }
