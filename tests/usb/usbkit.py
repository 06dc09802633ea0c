"""Test helpers for trayline.usb: an in-memory wire between host client and device channel.

No pyusb, no virtual bus: the unit tests of the service protocol talk to the
device-side state machine directly, with a fake clock that the host's sleeps
advance, so back-off and PENDING timing are exact and instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from trayline.usb.results import Stalled
from trayline.usb.service import ServiceClient
from trayline.usb.virtual.backend import VirtualBackend
from trayline.usb.virtual.channel import Handler, ServiceChannel, Stall
from trayline.virtual.device import VirtualDevice

MakeBus = Callable[..., tuple[VirtualBackend, list[VirtualDevice]]]
"""The ``make_bus`` fixture (conftest.py): a SKU, a count, a Device OS → backend and devices."""


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Wire:
    """ControlPipe over a ServiceChannel; counts every setup packet by bRequest."""

    channel: ServiceChannel
    log: list[tuple[int, int, int]] = field(default_factory=list)

    def control_in(
        self, request: int, value: int, index: int, length: int, timeout_ms: int
    ) -> bytes:
        self.log.append((request, value, index))
        try:
            return self.channel.handle_in(request, value, index, length)
        except Stall as exc:
            raise Stalled(str(exc)) from None

    def control_out(
        self, request: int, value: int, index: int, data: bytes, timeout_ms: int
    ) -> None:
        self.log.append((request, len(data), index))
        try:
            self.channel.handle_out(request, index, data)
        except Stall as exc:
            raise Stalled(str(exc)) from None


def pair(
    handler: Handler, *, scale: float = 1.0, **kw: object
) -> tuple[ServiceClient, ServiceChannel, Wire, FakeClock]:
    clock = FakeClock()
    channel = ServiceChannel(handler, scale=scale, clock=clock, **kw)  # type: ignore[arg-type]
    wire = Wire(channel)
    client = ServiceClient(wire, device="dev1", sleep=clock.sleep, clock=clock)
    return client, channel, wire, clock
