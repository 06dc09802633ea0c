"""Who is the device on this USB cable: everything its control requests can tell.

Over SWD a station learns only the device ID and what is in flash; over USB
the device itself answers (spec §3.4): device ID (20), serial number (21),
Device OS version (raw 30), mode (72), modules (90), ICCID and — from Device
OS 5.8.0 — IMEI (554). A device in DFU mode answers none of these; its ID
comes from the USB serial string and its platform from the PID.

``sticker`` (the serial number an operator scanned) is compared with what the
device reports; a mismatch raises :class:`~trayline.usb.device.SerialMismatch`
so a swapped label is caught before the unit is provisioned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trayline.core.ids import SerialNumber
from trayline.core.modules import function_name
from trayline.core.platforms import platform_name
from trayline.usb.device import ParticleDevice
from trayline.usb.discovery import list_devices
from trayline.usb.messages import DeviceMode
from trayline.usb.results import DeviceGone, NotFound, NotSupported
from trayline.usb.vidpid import UsbMode

__all__ = ["UsbIdentity", "identify_usb"]


@dataclass(slots=True)
class UsbIdentity:
    device_id: str
    platform_id: int
    mode: str
    """``normal``, ``listening`` or ``dfu``."""
    serial_number: str | None = None
    iccid: str | None = None
    imei: str | None = None
    device_os: str | None = None
    serial_checked: bool = False
    modules: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "platform_id": self.platform_id,
            "platform": platform_name(self.platform_id),
            "mode": self.mode,
            "serial_number": self.serial_number,
            "serial_checked": self.serial_checked,
            "iccid": self.iccid,
            "imei": self.imei,
            "device_os": self.device_os,
            "modules": self.modules,
        }


def identify_usb(
    device_id: str, *, backend: Any = None, sticker: SerialNumber | None = None
) -> UsbIdentity:
    """Ask the device; :class:`DeviceGone` when it is not attached."""
    wanted = device_id.strip().lower()
    info = next((d for d in list_devices(backend) if d.device_id == wanted), None)
    if info is None:
        raise DeviceGone("not attached (see `trayline device list --usb`)", device=wanted)
    if info.mode is UsbMode.DFU:
        return UsbIdentity(wanted, info.platform_id, "dfu")
    with ParticleDevice.open(wanted, backend=backend) as dev:
        mode = "listening" if dev.get_device_mode() is DeviceMode.LISTENING else "normal"
        result = UsbIdentity(str(dev.get_device_id()), info.platform_id, mode)
        result.device_os = dev.get_system_version() or None
        result.serial_number = dev.get_serial_number() or None
        if sticker is not None:
            dev.check_serial(sticker)
            result.serial_checked = True
        try:
            reply = dev.get_iccid()
            result.iccid, result.imei = reply.iccid or None, reply.imei or None
        except (NotSupported, NotFound):
            pass
        result.modules = [
            {"function": function_name(m.type) or str(m.type), "index": m.index,
             "version": m.version, "valid": m.valid}
            for m in dev.get_module_info()
        ]  # fmt: skip
    return result
