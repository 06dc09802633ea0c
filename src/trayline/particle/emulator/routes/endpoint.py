"""The one decorator every handler of the local cloud goes through.

Every Particle handler starts the same way: read the body into typed fields,
authenticate the token (Bearer header, or for old accounts the query or a form
body), refuse API users where only people may call, check the permission scope,
and resolve ``:product`` by ID or slug. :func:`endpoint` does those steps, in
that order (so the precedence of errors matches the real cloud's: a bad token
before a missing scope before an unknown product), and hands the handler a
:class:`Call` with what it found. A handler then only reads its own fields and
asks the state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from trayline.particle.emulator.bodies import Fields, read_fields
from trayline.particle.emulator.records import Product, Token
from trayline.particle.emulator.responses import CloudJSON
from trayline.particle.emulator.state import EmulatorState

if TYPE_CHECKING:
    from trayline.particle.emulator.app import EmulatorApp

__all__ = ["Call", "Handler", "answer", "endpoint"]


@dataclass(frozen=True, slots=True)
class Call:
    """One request, as far as the decorator got: fields, token, product."""

    request: Request
    app: EmulatorApp
    fields: Fields
    token_or_none: Token | None
    product_or_none: Product | None

    @property
    def cloud(self) -> EmulatorState:
        return self.app.cloud

    @property
    def token(self) -> Token:
        assert self.token_or_none is not None, "endpoint(auth=False) has no token"
        return self.token_or_none

    @property
    def product(self) -> Product:
        assert self.product_or_none is not None, "endpoint(product=False) has no product"
        return self.product_or_none

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)


Handler = Callable[[Call], Awaitable[Response]]


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer that always renders (:class:`~..responses.CloudJSON`)."""
    return CloudJSON(body, status, headers=headers)


def endpoint(
    permission: str | None = None,
    *,
    body: bool = False,
    product: bool = False,
    auth: bool = True,
    people_only: bool = False,
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: fields (``body``), token (``auth``), ``people_only``, scope, product."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            app: EmulatorApp = request.app
            fields = await read_fields(request) if body else Fields({})
            token = None
            if auth:
                body_token = fields.raw("access_token")
                token = app.authenticate(
                    request, body_token if isinstance(body_token, str) else None
                )
                if people_only:
                    app.forbid_api_user(token)
                if permission is not None:
                    app.require(token, permission)
            found = app.cloud.product(request.path_params["product"]) if product else None
            return await handler(Call(request, app, fields, token, found))

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap
