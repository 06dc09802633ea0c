"""SIM cards: import, list, get, change state, release (spec §4).

Import is queued in the real cloud and its results are e-mailed, so the answer is
always ``{"ok": true}``; known SIMs become ``active`` at once here.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from trayline.particle.emulator.bodies import query_int
from trayline.particle.emulator.errors import bad_request
from trayline.particle.emulator.listing import SimQuery, list_sims
from trayline.particle.emulator.records import Sim
from trayline.particle.emulator.routes.endpoint import Call, answer, endpoint

__all__ = ["ROUTES"]


@endpoint("sims:import", body=True, product=True)
async def import_sims(call: Call) -> Response:
    iccids = call.fields.lines("sims", "file")
    if not iccids:
        raise bad_request("Provide sims[] or a file of ICCIDs")
    call.cloud.import_sims(call.product, iccids)
    return answer({"ok": True})


def _query(call: Call) -> SimQuery:
    default = call.app.config.default_per_page
    return SimQuery(
        iccid=call.query("iccid"),
        device_id=call.query("deviceId"),
        device_name=call.query("deviceName"),
        page=query_int(call.request, "page", default=1),
        per_page=query_int(call.request, "perPage", "per_page", default=default),
    )


def _api(call: Call, sim: Sim) -> dict[str, object]:
    return sim.to_api(call.cloud.sim_device_name(sim))


@endpoint("sims:list")
async def list_user_sims(call: Call) -> Response:
    mine = [s for s in call.cloud.sims.values() if s.owner == call.token.username]
    page, _ = list_sims(call.cloud, mine, _query(call))
    return answer({"sims": [_api(call, s) for s in page]})


@endpoint("sims:list", product=True)
async def list_product_sims(call: Call) -> Response:
    sims = [s for s in call.cloud.sims.values() if s.product_id == call.product.id]
    page, total_pages = list_sims(call.cloud, sims, _query(call))
    return answer({"sims": [_api(call, s) for s in page], "meta": {"total_pages": total_pages}})


def _sim(call: Call) -> Sim:
    product = (
        call.cloud.product(call.path("product")) if "product" in call.request.path_params else None
    )
    return call.cloud.sim(call.path("iccid"), product)


@endpoint("sims:get")
async def get_sim(call: Call) -> Response:
    return answer(_api(call, _sim(call)))


@endpoint("sims:update", body=True)
async def update_sim(call: Call) -> Response:
    sim = _sim(call)
    call.cloud.change_sim(sim, call.fields.text("action"))
    return answer({"ok": True, **_api(call, sim)})


@endpoint("sims:remove", body=True)
async def release_sim(call: Call) -> Response:
    call.cloud.release_sim(_sim(call))
    return Response(status_code=204)


P = "/v1/products/{product}"
ROUTES = [
    Route(f"{P}/sims", import_sims, methods=["POST"]),
    Route(f"{P}/sims", list_product_sims, methods=["GET"]),
    Route(f"{P}/sims/{{iccid}}", get_sim, methods=["GET"]),
    Route(f"{P}/sims/{{iccid}}", update_sim, methods=["PUT"]),
    Route(f"{P}/sims/{{iccid}}", release_sim, methods=["DELETE"]),
    Route("/v1/sims", list_user_sims, methods=["GET"]),
    Route("/v1/sims/{iccid}", get_sim, methods=["GET"]),
    Route("/v1/sims/{iccid}", update_sim, methods=["PUT"]),
    Route("/v1/sims/{iccid}", release_sim, methods=["DELETE"]),
]
