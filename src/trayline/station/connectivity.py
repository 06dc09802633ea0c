"""The optional cloud connectivity check: wait until the cloud says the device is online.

The guide: with an activated SIM and normal connectivity, the device goes from
blinking green to breathing cyan, "the greatest confidence in the correct
operation of the device", and "could take up to 20 minutes". Some lines skip it
(a Cat M1 SKU at a CM in China, billing not to start yet): the station then does
not pass a :class:`CloudPresence` and the step's result is ``skipped`` with the
line's reason.

:func:`wait_until_online` is the loop, with the clock and the sleep injected so
tests run it without waiting. :class:`ParticleCloudPresence` asks the Particle
Cloud (or the local emulator) through :class:`trayline.particle.client.ParticleClient`
(``GET /v1/products/:product/devices/:id`` → ``online``). The device must be in
the product for that (import the tray before testing); until it is, the cloud
answers 403 "I didn't recognize that device", which counts as "not online yet"
so a unit being imported in parallel is not failed early.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from trayline.particle.auth import AccessToken
from trayline.particle.client import ParticleClient
from trayline.particle.errors import AuthError, CloudError, NotFound, PermissionDenied

if TYPE_CHECKING:
    import httpx2


class CloudCheckError(Exception):
    """The cloud refused for good (auth, permission): waiting longer will not help."""


class CloudPresence(Protocol):
    def is_online(self, device_id: str) -> bool:
        """True when the cloud reports the device online now. CloudCheckError when refused."""
        ...


@dataclass(frozen=True, slots=True)
class OnlineResult:
    online: bool
    waited_s: float
    polls: int
    last_problem: str | None = None
    """A transient problem seen on the last poll (not found yet, server error)."""


def wait_until_online(
    presence: CloudPresence,
    device_id: str,
    *,
    timeout_s: float,
    poll_interval_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> OnlineResult:
    """Poll until online or ``timeout_s`` has passed (at least one poll, one at the deadline)."""
    start = clock()
    polls = 0
    problem: str | None = None
    while True:
        polls += 1
        try:
            if presence.is_online(device_id):
                return OnlineResult(True, clock() - start, polls)
            problem = None
        except TransientCloudProblem as exc:
            problem = str(exc)
        left = timeout_s - (clock() - start)
        if left <= 0:
            return OnlineResult(False, clock() - start, polls, problem)
        sleep(min(poll_interval_s, left))


class TransientCloudProblem(Exception):
    """This poll could not tell (device not in the product yet, 5xx, network): poll again."""


ClientFactory = Callable[[], AbstractAsyncContextManager[ParticleClient]]


class ParticleCloudPresence:
    """:class:`CloudPresence` through the Particle client, callable from a slot's worker thread.

    ``client_factory`` returns a fresh ``ParticleClient`` (an async context manager)
    for each poll: each poll runs in its own short event loop (``asyncio.run``), so
    the blocking runner needs no loop of its own and slots do not share one.
    """

    def __init__(self, client_factory: ClientFactory, product: str) -> None:
        self._factory = client_factory
        self._product = product

    @classmethod
    def connect(
        cls,
        token: AccessToken,
        product: str,
        *,
        base_url: str | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> ParticleCloudPresence:
        """The usual wiring: a client per poll with this token, base URL and (tests) transport."""

        def factory() -> ParticleClient:
            return ParticleClient(token, base_url=base_url, transport=transport, timeout=15.0)

        return cls(factory, product)

    def is_online(self, device_id: str) -> bool:
        return asyncio.run(self._is_online(device_id))

    async def _is_online(self, device_id: str) -> bool:
        try:
            async with self._factory() as client:
                device = await client.get_product_device(self._product, device_id)
        except PermissionDenied as exc:
            if not exc.unknown_device:
                raise CloudCheckError(f"the cloud refused the online check: {exc}") from None
            raise TransientCloudProblem(
                f"device {device_id} is not in product {self._product} (yet)"
            ) from None
        except AuthError as exc:
            raise CloudCheckError(f"the cloud refused the online check: {exc}") from None
        except NotFound:
            raise TransientCloudProblem(
                f"device {device_id} is not in product {self._product} (yet)"
            ) from None
        except CloudError as exc:
            raise TransientCloudProblem(f"cloud error: {exc}") from None
        return device.raw.get("online") is True
