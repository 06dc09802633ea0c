"""Virtual Particle devices: faithful enough to run, test and benchmark the line without hardware.

A :class:`VirtualDevice` is one unit of a catalog SKU — internal flash with NOR
rules, device-ID registers, UICR, modes, the setup-done flag, faults — and a
:class:`Tray` is a folder of them shared by every process that opens it.
:mod:`trayline.virtual.swd` is the debug-port side (connect faults, timing),
:mod:`trayline.virtual.serial_port` the USB serial side (listening-mode console
and the test-firmware protocol on a pseudo-terminal).

Layering: this package imports only :mod:`trayline.core` (and the standard
library helpers in :mod:`trayline.durable`); trayline's programmers, console
client and services drive it, never the other way round. See docs/virtual.md.
"""

from trayline.virtual.device import DeviceMode, DeviceState, Faults, VirtualDevice
from trayline.virtual.errors import (
    ConnectFailed,
    DeviceProtected,
    FlashRangeError,
    NoResponse,
    UnmappedAddress,
    VirtualDeviceError,
)
from trayline.virtual.identity import DeviceIdentity
from trayline.virtual.memory import Flash, FlashGeometry
from trayline.virtual.records import DeviceRecord, TrayFileError
from trayline.virtual.scan import FlashModule
from trayline.virtual.timing import LINKS, SimClock, TimingModel
from trayline.virtual.tray import FactoryOptions, Tray

__all__ = [
    "LINKS",
    "ConnectFailed",
    "DeviceIdentity",
    "DeviceMode",
    "DeviceProtected",
    "DeviceRecord",
    "DeviceState",
    "FactoryOptions",
    "Faults",
    "Flash",
    "FlashGeometry",
    "FlashModule",
    "FlashRangeError",
    "NoResponse",
    "SimClock",
    "TimingModel",
    "Tray",
    "TrayFileError",
    "UnmappedAddress",
    "VirtualDevice",
    "VirtualDeviceError",
]
