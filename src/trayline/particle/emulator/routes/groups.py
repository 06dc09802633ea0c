"""Device groups of a product: create, list, get, rename/recolour, delete (spec §5).

Naming (``[a-z0-9_-]{1,64}``, the upper-case choice) and duplicates are rules of
the state; the duplicate answer's status and text are configurable because
Particle's are UNCONFIRMED.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from trayline.particle.emulator.errors import bad_request
from trayline.particle.emulator.routes.endpoint import Call, answer, endpoint

__all__ = ["ROUTES"]


def _group_body(call: Call, name: str) -> dict[str, Any]:
    group = call.cloud.group(call.product, name)
    return {"group": group.to_api(call.cloud.group_size(call.product.id, group.name))}


@endpoint("groups:create", body=True, product=True)
async def create_group(call: Call) -> Response:
    fields = call.fields
    name = fields.text("name")
    if not name:
        raise bad_request("name is required")
    description = fields.text("description", blank_is_none=True)
    color = fields.text("color", blank_is_none=True)
    group = call.cloud.new_group(call.product, name, description, color)
    return answer({"group": group.to_api()}, 201)


@endpoint("groups:list", product=True)
async def list_groups(call: Call) -> Response:
    needle = (call.query("name") or "").strip().lower()
    product_id = call.product.id
    groups = [
        g.to_api(call.cloud.group_size(product_id, g.name))
        for g in call.cloud.groups[product_id].values()
        if needle in g.name
    ]
    return answer({"groups": groups})


@endpoint("groups:get", product=True)
async def get_group(call: Call) -> Response:
    return answer(_group_body(call, call.path("name")))


@endpoint("groups:update", body=True, product=True)
async def update_group(call: Call) -> Response:
    fields = call.fields
    group = call.cloud.group(call.product, call.path("name"))
    if not fields.present("name", "description", "color"):
        raise bad_request("Provide at least one of name, description, color")
    changes: dict[str, Any] = {"name": fields.text("name")}
    for key in ("description", "color"):
        if key in fields:
            changes[key] = fields.text(key, blank_is_none=True)
    call.cloud.update_group(call.product, group, changes)
    return answer(_group_body(call, group.name))


@endpoint("groups:remove", body=True, product=True)
async def delete_group(call: Call) -> Response:
    group = call.cloud.group(call.product, call.path("name"))
    call.cloud.delete_group(call.product, group.name)
    return Response(status_code=204)


P = "/v1/products/{product}/groups"
ROUTES = [
    Route(P, create_group, methods=["POST"]),
    Route(P, list_groups, methods=["GET"]),
    Route(f"{P}/{{name}}", get_group, methods=["GET"]),
    Route(f"{P}/{{name}}", update_group, methods=["PUT"]),
    Route(f"{P}/{{name}}", delete_group, methods=["DELETE"]),
]
