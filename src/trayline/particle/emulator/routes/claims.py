"""Claiming: ``POST /v1/devices``, ``DELETE /v1/devices/:id``, ``GET /v1/devices`` (spec §7).

Claiming is a person's act: API users get the ``unauthorized`` answer. The rules
(someone else's device, transfer requests) live in :meth:`EmulatorState.claim`.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from trayline.particle.emulator.routes.endpoint import Call, answer, endpoint

__all__ = ["ROUTES"]


@endpoint(body=True, people_only=True)
async def claim(call: Call) -> Response:
    identifier = call.fields.text("id") or ""
    transfer = call.fields.flag("request_transfer")
    return answer(call.cloud.claim(identifier, call.token.username, transfer))


@endpoint("devices:release", body=True)
async def unclaim(call: Call) -> Response:
    call.cloud.unclaim(call.path("device_id"), call.token.username)
    return answer({"ok": True})


@endpoint()
async def list_user_devices(call: Call) -> Response:
    username = call.token.username
    return answer([d.to_api() for d in call.cloud.devices.values() if d.owner == username])


ROUTES = [
    Route("/v1/devices", claim, methods=["POST"]),
    Route("/v1/devices", list_user_devices, methods=["GET"]),
    Route("/v1/devices/{device_id}", unclaim, methods=["DELETE"]),
]
