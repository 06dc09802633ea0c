"""``GET /v1/serial_numbers/:sn``: the sticker's serial to device ID and ICCID (spec §2).

The real lookup has its own budget, 50 an hour per *user account* (not per
address), which is why a line must not depend on it; the emulator keeps that
budget (``serial_lookup_limit``) in :attr:`EmulatorApp.serial_budget`.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from trayline.particle.emulator.errors import API_USER_FORBIDDEN, TOO_MANY, CloudError
from trayline.particle.emulator.routes.endpoint import Call, answer, endpoint

__all__ = ["ROUTES"]


@endpoint()
async def serial_lookup(call: Call) -> Response:
    config = call.app.config
    if call.token.api_user and not config.api_users_may_lookup_serials:
        raise CloudError(config.api_user_forbidden_status, API_USER_FORBIDDEN)
    budget = call.app.serial_budget
    if budget is not None:
        wait = budget.hit(call.token.username)
        if wait is not None:
            return answer(TOO_MANY, 429, headers=call.app.retry_after(wait))
    device = call.cloud.lookup_serial(call.path("serial"))
    id_key = "deviceID" if config.legacy_serial_field else "device_id"
    return answer(
        {
            "ok": True,
            id_key: device.id,
            "platform_id": device.platform_id,
            "iccid": device.iccid,
            "serial_number": device.serial_number,
        }
    )


ROUTES = [Route("/v1/serial_numbers/{serial}", serial_lookup, methods=["GET"])]
