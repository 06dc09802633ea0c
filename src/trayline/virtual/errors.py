"""What can go wrong on a virtual device, as the device itself would signal it.

These are *device-side* conditions (the chip refuses, the wire stays silent),
not programmer errors: :mod:`trayline.virtual` imports nothing from
:mod:`trayline.programmers`. The ``virtual`` programmer backend translates them
into the protocol's typed errors (``ProtectedDevice``, ``TargetNotHalted`` …),
exactly as a real backend translates a tool's output.
"""

from __future__ import annotations

__all__ = [
    "ConnectFailed",
    "DeviceProtected",
    "FlashRangeError",
    "NoResponse",
    "UnmappedAddress",
    "VirtualDeviceError",
]


class VirtualDeviceError(Exception):
    """Base class; the message names the device where one is known."""


class FlashRangeError(VirtualDeviceError):
    """An erase or write reaches outside the internal flash (the NVMC / FPEC refuses it)."""


class UnmappedAddress(VirtualDeviceError):
    """A read of an address no memory answers at (a bus fault on real silicon)."""


class DeviceProtected(VirtualDeviceError):
    """APPROTECT (nRF52840) or readout protection (STM32) is on: the debug port is closed."""


class ConnectFailed(VirtualDeviceError):
    """The SWD connect did not succeed this time (the ``swd_connect_failures`` fault)."""


class NoResponse(VirtualDeviceError):
    """The device does not answer at all (the ``never_answers`` fault)."""
