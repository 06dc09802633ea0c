"""The admin surface ``/_emulator/*``: set the stage for tests and rehearsals.

Products, tokens, factory devices, a device coming online, faults, reset, and a
dump of everything. These shapes are a contract (docs/cloud.md): tests outside
trayline depend on them. They are not Particle endpoints: never rate limited,
faulted or counted, and guarded by the admin token when one is configured (the
front door checks it before any handler runs).

A factory order is made in chunks of :data:`CHUNK` devices with a yield to the
event loop between them, so an order of ten thousand devices does not stall the
other requests; nothing is stored until the whole order is made.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.routing import Route

from trayline.particle.emulator.config import parse_rate_limit
from trayline.particle.emulator.errors import bad_request
from trayline.particle.emulator.factory import FactoryUnit
from trayline.particle.emulator.faults import check_faults
from trayline.particle.emulator.routes.endpoint import Call, answer, endpoint
from trayline.particle.emulator.state import MAX_PLATFORM_ID, MAX_PRODUCT_ID

__all__ = ["CHUNK", "ROUTES"]

CHUNK = 250
"""Devices made (or rendered) between two yields to the event loop."""
MAX_DEVICE_LIMIT = 1_000_000


@endpoint(body=True, auth=False)
async def add_product(call: Call) -> Response:
    fields = call.fields
    product_id = fields.integer("id", 1, MAX_PRODUCT_ID)
    if product_id is None:
        raise bad_request('expected {"id": 4242, "slug": "line-a", "platform_id": 13, "name": …}')
    platform_id = fields.integer("platform_id", 0, MAX_PLATFORM_ID)
    product = call.cloud.add_product(
        id=product_id,
        slug=fields.text("slug", blank_is_none=True),
        platform_id=13 if platform_id is None else platform_id,
        name=fields.text("name", blank_is_none=True),
        device_limit=fields.integer("device_limit", 0, MAX_DEVICE_LIMIT),
        protected=fields.flag("protected"),
    )
    return answer({"product": product.to_api()}, 201)


@endpoint(body=True, auth=False)
async def add_token(call: Call) -> Response:
    fields = call.fields
    username = fields.text("username")
    if not username:
        raise bad_request('expected {"username": ..., "scopes": [...] | null}')
    scopes = None if fields.raw("scopes") is None else fields.texts("scopes")
    token = call.cloud.add_token(
        username,
        scopes,
        api_user=fields.flag("api_user"),
        token=fields.text("token", blank_is_none=True),
    )
    return answer({"token": token}, 201)


@endpoint(body=True, auth=False)
async def add_devices(call: Call) -> Response:
    """Manufacture ``count`` devices of ``sku`` (optionally imported, owned, online)."""
    fields = call.fields
    cloud = call.cloud
    most = call.app.config.max_devices_per_request
    count = fields.integer("count", 1, most)
    sku = fields.text("sku")
    if not sku:
        raise bad_request('expected {"sku": "BRN404", "count": 10}')
    spec = cloud.factory_sku(sku, 1 if count is None else count)
    product = cloud.owning_product(fields.integer("product_id", 1, MAX_PRODUCT_ID))
    protected, online = fields.flag("protected"), fields.flag("online")
    owner = fields.text("owner", blank_is_none=True)
    units: list[FactoryUnit] = []
    for unit in cloud.new_units(spec, 1 if count is None else count):
        units.append(unit)
        if len(units) % CHUNK == 0:
            await asyncio.sleep(0)  # let other requests through
    devices = cloud.add_units(units, product, protected=protected, owner=owner, online=online)
    rendered = []
    for index, device in enumerate(devices, 1):
        rendered.append(device.to_admin())
        if index % CHUNK == 0:
            await asyncio.sleep(0)
    return answer({"devices": rendered}, 201)


@endpoint(body=True, auth=False)
async def set_online(call: Call) -> Response:
    """``{"online": true}`` (the default): the device connects; ``false``: it goes away."""
    device = call.cloud.set_online(call.path("device_id"), call.fields.flag("online", True))
    return answer(
        {
            "id": device.id,
            "online": device.online,
            "last_heard": device.last_heard,
            "last_handshake_at": device.last_handshake_at,
        }
    )


@endpoint(body=True, auth=False)
async def set_faults(call: Call) -> Response:
    raw = {
        name: call.fields.raw(name)
        for name in ("rate_limit", "latency_ms", "jitter_ms", "error_rate", "drop_rate")
        if name in call.fields
    }
    try:
        changes = check_faults(raw, parse_rate_limit)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    call.app.apply_faults(**changes)
    return answer(call.app.faults_view())


@endpoint(auth=False)
async def reset(call: Call) -> Response:
    call.app.reset()
    return answer({"ok": True})


@endpoint(auth=False)
async def dump_state(call: Call) -> Response:
    return answer({**call.cloud.snapshot(), "counters": call.app.counters.to_dict()})


ROUTES = [
    Route("/_emulator/products", add_product, methods=["POST"]),
    Route("/_emulator/tokens", add_token, methods=["POST"]),
    Route("/_emulator/devices", add_devices, methods=["POST"]),
    Route("/_emulator/devices/{device_id}/online", set_online, methods=["POST"]),
    Route("/_emulator/faults", set_faults, methods=["POST"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
    Route("/_emulator/state", dump_state, methods=["GET"]),
]
