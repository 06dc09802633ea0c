"""The local cloud's routes: one module per resource, each a table of ``Route``s.

Every handler is wrapped by :func:`.endpoint.endpoint`, which reads the body,
authenticates, checks the scope and resolves the product, so each module holds
only what is particular to its resource; the rules are in the state.
"""

from __future__ import annotations

from starlette.routing import Route

from trayline.particle.emulator.routes import (
    account,
    admin,
    claims,
    devices,
    groups,
    serials,
    sims,
)

__all__ = ["all_routes"]


def all_routes() -> list[Route]:
    """Every route of the local cloud, Particle paths first, then ``/_emulator``."""
    return [
        *account.ROUTES,
        *serials.ROUTES,
        *devices.ROUTES,
        *sims.ROUTES,
        *groups.ROUTES,
        *claims.ROUTES,
        *admin.ROUTES,
    ]
