"""Find Particle devices on USB, tell their platform and mode, wait for them to come back.

A Particle device's USB serial-number string *is* its device ID (spec §3.1;
particle-usb lowercases it, particle-cli accepts any 24-hex run inside it for
old firmware), its product ID names platform and mode (:mod:`.vidpid`). A
device that resets — after request 40, 50 or a firmware update, or after a
DFU ``:leave`` — disappears and enumerates again a few seconds later, maybe
with another PID; :func:`wait_for_device` polls until it is back.

All functions take the pyusb ``backend`` to search: ``None`` means pyusb's
default (libusb on a station), a
:class:`trayline.usb.virtual.backend.VirtualBackend` reaches virtual devices.
The code path is the same for both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import usb.core
import usb.util

from trayline.core.platforms import platform_name
from trayline.usb.pipe import translate_usb_error
from trayline.usb.results import DeviceGone, UsbError
from trayline.usb.vidpid import PARTICLE_VID, UsbMode, product_for

__all__ = [
    "UsbDeviceInfo",
    "device_id_from_serial",
    "find_device",
    "list_devices",
    "wait_for_device",
]

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
NO_LIBUSB = (
    "no USB backend: libusb-1.0 is not installed (Debian/Ubuntu: apt install libusb-1.0-0; "
    "macOS: brew install libusb; Windows: see docs/usb.md)"
)


def device_id_from_serial(serial: str | None) -> str | None:
    """The 24-hex device ID inside a USB serial-number string, lowercased; ``None`` if none."""
    if not serial:
        return None
    printable = "".join(ch for ch in serial if ch.isprintable())
    match = _HEX24.search(printable)
    return match.group(0).lower() if match else None


@dataclass(frozen=True, slots=True)
class UsbDeviceInfo:
    """One Particle device as the bus shows it (nothing is sent to it but string requests)."""

    device_id: str | None
    platform_id: int
    mode: UsbMode
    vid: int
    pid: int
    bus: int | None
    address: int | None
    note: str = ""
    """Why ``device_id`` is unknown (e.g. permission denied reading the serial string)."""

    @property
    def platform(self) -> str:
        return platform_name(self.platform_id) or f"platform {self.platform_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "platform_id": self.platform_id,
            "platform": self.platform,
            "mode": self.mode.value,
            "usb": f"{self.vid:04x}:{self.pid:04x}",
            "bus": self.bus,
            "address": self.address,
            "note": self.note,
        }


def _find_all(backend: Any) -> list[Any]:
    try:
        return list(usb.core.find(find_all=True, idVendor=PARTICLE_VID, backend=backend) or [])
    except usb.core.NoBackendError:
        raise UsbError(NO_LIBUSB) from None
    except usb.core.USBError as exc:
        raise translate_usb_error(exc, "", "listing USB devices") from None


def _info(dev: Any) -> UsbDeviceInfo | None:
    product = product_for(int(dev.idVendor), int(dev.idProduct))
    if product is None:
        return None
    device_id: str | None = None
    note = ""
    try:
        device_id = device_id_from_serial(usb.util.get_string(dev, dev.iSerialNumber))
    except usb.core.USBError as exc:
        note = str(translate_usb_error(exc, "", "reading the serial number"))
    except (ValueError, NotImplementedError) as exc:
        note = f"serial number unreadable ({exc})"
    finally:
        usb.util.dispose_resources(dev)
    return UsbDeviceInfo(
        device_id, product.platform_id, product.mode, int(dev.idVendor), int(dev.idProduct),
        dev.bus, dev.address, note,
    )  # fmt: skip


def list_devices(backend: Any = None) -> list[UsbDeviceInfo]:
    """Every Particle device attached (normal and DFU), sorted by bus and address."""
    found = [info for dev in _find_all(backend) if (info := _info(dev)) is not None]
    return sorted(found, key=lambda i: (i.bus or 0, i.address or 0))


def find_device(device_id: str, backend: Any = None, mode: UsbMode | None = None) -> Any | None:
    """The pyusb device whose serial is ``device_id`` (in ``mode`` if given), or ``None``."""
    wanted = device_id.lower()
    for dev in _find_all(backend):
        product = product_for(int(dev.idVendor), int(dev.idProduct))
        if product is None or (mode is not None and product.mode is not mode):
            continue
        try:
            serial = usb.util.get_string(dev, dev.iSerialNumber)
        except (usb.core.USBError, ValueError, NotImplementedError):
            continue
        if device_id_from_serial(serial) == wanted:
            return dev
    return None


def wait_for_device(
    device_id: str,
    *,
    backend: Any = None,
    mode: UsbMode | None = None,
    timeout: float = 60.0,
    poll: float = 0.02,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Poll until ``device_id`` enumerates (in ``mode``); :class:`DeviceGone` after ``timeout``.

    flash-util waits up to 60 s for a device to come back after a reset; so
    does this by default.
    """
    deadline = clock() + timeout
    while True:
        dev = find_device(device_id, backend, mode)
        if dev is not None:
            return dev
        if clock() >= deadline:
            where = f" in {mode.value} mode" if mode else ""
            raise DeviceGone(
                f"did not enumerate{where} within {timeout:g} s (unplugged? still resetting?)",
                device=device_id,
            )
        sleep(poll)
