"""Who am I, and which products: ``GET /v1/user``, ``/v1/products[/:p]`` (spec §1, §0).

particle-cli reads ``/v1/user`` to learn the username behind a token, and
trayline's client does the same to name the account a job belongs to.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from trayline.particle.emulator.routes.endpoint import Call, answer, endpoint

__all__ = ["ROUTES"]


@endpoint()
async def get_user(call: Call) -> Response:
    return answer(
        {
            "username": call.token.username,
            "subscription_ids": [],
            "account_info": {"first_name": "", "last_name": ""},
            "mfa": {"enabled": False},
            "scim_provisioned": False,
        }
    )


@endpoint("products:list")
async def list_products(call: Call) -> Response:
    return answer({"products": [p.to_api() for p in call.cloud.products.values()]})


@endpoint("products:get", product=True)
async def get_product(call: Call) -> Response:
    return answer({"product": call.product.to_api()})


ROUTES = [
    Route("/v1/user", get_user, methods=["GET"]),
    Route("/v1/products", list_products, methods=["GET"]),
    Route("/v1/products/{product}", get_product, methods=["GET"]),
]
