"""Product devices: import, list, get, update, remove, batch groups (spec §3, §5.4, §6, §8).

``POST /v1/products/:p/devices`` takes identifiers as ``id``, ``ids`` or a
multipart ``file`` with one per line (what particle-cli and the console send);
the classification rules are :meth:`EmulatorState.import_devices`.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from trayline.particle.emulator.bodies import Fields, query_flag, query_int
from trayline.particle.emulator.errors import bad_request
from trayline.particle.emulator.listing import DeviceQuery, list_product_devices
from trayline.particle.emulator.routes.endpoint import Call, answer, endpoint

__all__ = ["ROUTES"]

MAX_FIRMWARE_VERSION = 2**31 - 1


@endpoint("devices:import", body=True, product=True)
async def import_devices(call: Call) -> Response:
    fields = call.fields
    identifiers = fields.lines("id", "ids", "file")
    if not identifiers:
        raise bad_request("Provide id, ids or a file of device identifiers")
    fields.flag("import_sims")  # embedded SIMs are always activated; only its type is checked
    claim_user = call.query("claim_user") or fields.text("claim_user")
    result = call.cloud.import_devices(call.product, identifiers, claim_user=claim_user or None)
    return answer(result.to_api())


@endpoint("devices:list", product=True)
async def list_devices(call: Call) -> Response:
    config = call.app.config
    per_page = query_int(call.request, "perPage", "per_page", default=config.default_per_page)
    if config.max_per_page is not None:
        per_page = min(per_page, config.max_per_page)
    groups = [g for g in (call.query("groups") or "").split(",") if g.strip()]
    query = DeviceQuery(
        device_id=call.query("deviceId"),
        groups=groups or None,
        device_name=call.query("deviceName"),
        serial_number=call.query("serialNumber"),
        quarantined=query_flag(call.request, "quarantined"),
        sort_attr=call.query("sortAttr"),
        sort_dir=call.query("sortDir") or "asc",
        page=query_int(call.request, "page", default=1),
        per_page=per_page,
    )
    devices, total_pages = list_product_devices(call.cloud, call.product, query)
    return answer(
        {
            "devices": [d.to_api() for d in devices],
            "customers": [],
            "meta": {"total_pages": total_pages},
        }
    )


@endpoint("devices:get", product=True)
async def get_device(call: Call) -> Response:
    return answer(call.cloud.member(call.product, call.path("device_id")).to_api())


def _device_changes(fields: Fields) -> dict[str, Any]:
    """The fields of a device PUT (spec §6), typed; unknown fields are ignored."""
    changes: dict[str, Any] = {}
    for name in ("name", "notes"):
        if name in fields:
            changes[name] = fields.text(name)
    if "development" in fields:
        changes["development"] = fields.flag("development")
    if "desired_firmware_version" in fields:
        changes["desired_firmware_version"] = fields.integer(
            "desired_firmware_version", 0, MAX_FIRMWARE_VERSION
        )
    if fields.present("groups"):
        changes["groups"] = fields.texts("groups")
    return changes


@endpoint("devices:update", body=True, product=True)
async def update_device(call: Call) -> Response:
    device = call.cloud.member(call.product, call.path("device_id"))
    changes = _device_changes(call.fields)
    call.cloud.update_device(device, changes)
    body: dict[str, Any] = {"id": device.id}
    for key in changes:
        value = getattr(device, key)
        body[key] = list(value) if isinstance(value, list) else value
    body["updated_at"] = device.updated_at
    return answer(body)


@endpoint("devices:update", body=True, product=True)
async def batch_update(call: Call) -> Response:
    fields = call.fields
    action = fields.text("action")
    if action != "groups":
        raise bad_request(f"Unknown action {action!r}" if action else "action is required")
    metadata = Fields(fields.mapping("metadata"))
    add = metadata.texts("add") if "add" in metadata else fields.texts("metadata[add]")
    remove = metadata.texts("remove") if "remove" in metadata else fields.texts("metadata[remove]")
    call.cloud.batch_groups(call.product, fields.texts("devices"), add, remove)
    return answer({"ok": True})


@endpoint("devices:remove", body=True, product=True)
async def remove_device(call: Call) -> Response:
    device = call.cloud.member(call.product, call.path("device_id"))
    call.cloud.remove_from_product(device)
    return Response(status_code=204)


@endpoint("devices:release", body=True, product=True)
async def remove_owner(call: Call) -> Response:
    device = call.cloud.member(call.product, call.path("device_id"))
    call.cloud.release_owner(device)
    return answer({"ok": True})


P = "/v1/products/{product}"
ROUTES = [
    Route(f"{P}/devices", import_devices, methods=["POST"]),
    Route(f"{P}/devices", list_devices, methods=["GET"]),
    Route(f"{P}/devices", batch_update, methods=["PUT"]),
    Route(f"{P}/devices/{{device_id}}", get_device, methods=["GET"]),
    Route(f"{P}/devices/{{device_id}}", update_device, methods=["PUT"]),
    Route(f"{P}/devices/{{device_id}}", remove_device, methods=["DELETE"]),
    Route(f"{P}/devices/{{device_id}}/owner", remove_owner, methods=["DELETE"]),
]
