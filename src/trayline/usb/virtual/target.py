"""What the virtual USB side needs from a simulated device: a small typed interface.

:class:`trayline.virtual.device.VirtualDevice` satisfies it structurally; the
USB side is written against this protocol only, so the rules of the device
(NOR flash, faults, boot modes, the setup-done flag and its Device OS 4.0
change) stay in :mod:`trayline.virtual` and are not written twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from trayline.core.versions import SemVer

__all__ = ["EnumeratedDevice", "UsbTarget"]


class _Identity(Protocol):
    @property
    def device_id(self) -> str: ...
    @property
    def serial_number(self) -> str: ...
    @property
    def iccid(self) -> str: ...
    @property
    def imei(self) -> str: ...


class _Module(Protocol):
    @property
    def function(self) -> int: ...
    @property
    def index(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def address(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def valid(self) -> bool: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def dependencies(self) -> tuple[tuple[int, int, int], ...]: ...


class _Geometry(Protocol):
    @property
    def base(self) -> int: ...
    @property
    def size(self) -> int: ...


class _Faults(Protocol):
    never_answers: bool
    protected: bool


class _State(Protocol):
    ncp_version: int | None


class EnumeratedDevice(Protocol):
    """What the bus shows of a device without opening it: enough for its descriptors.

    A tray device is enumerated from its files without taking its lock, so
    one process flashing a device never stalls another that lists the bus.
    """

    @property
    def device_id(self) -> str: ...
    @property
    def platform_id(self) -> int: ...
    @property
    def is_gen3(self) -> bool: ...
    @property
    def mode(self) -> str:
        """``normal``, ``listening``, ``dfu`` or ``safe``."""
        ...

    @property
    def faults(self) -> _Faults: ...


class UsbTarget(EnumeratedDevice, Protocol):
    """A simulated Particle device as the USB side drives it (while a handle is open).

    Everything the bus shows of it (:class:`EnumeratedDevice`), and what an open handle reads
    and writes.
    """

    @property
    def identity(self) -> _Identity: ...
    @property
    def dct(self) -> bytearray: ...
    @property
    def state(self) -> _State: ...
    @property
    def geometry(self) -> _Geometry: ...
    @property
    def setup_done(self) -> bool: ...

    def read_memory(self, address: int, length: int) -> bytes: ...
    def erase(self, start: int, end: int) -> list[tuple[int, int]]: ...
    def write(self, address: int, data: bytes) -> int: ...
    def modules(self) -> Sequence[_Module]: ...
    def device_os(self) -> SemVer | None: ...
    def runs_test_firmware(self) -> bool: ...
    def set_setup_done(self, done: bool = True) -> bool: ...
    def setup_done_applies(self) -> bool: ...
    def boot(self) -> object: ...
    def enter_mode(self, mode: Any) -> None: ...
