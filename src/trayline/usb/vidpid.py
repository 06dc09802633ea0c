"""USB vendor and product IDs of Particle devices, and what a PID says about a device.

Every Particle device enumerates with vendor ID 0x2B04. The product ID names
the platform and the mode: 0xC0xx in normal / listening / safe mode, 0xD0xx in
DFU mode, the low byte being the same (spec §0; particle-usb and the docs' web
restore build the DFU filter as ``pid | 0xD000``). The Particle Debugger (a
CMSIS-DAP probe, not a device) is 0x0D28:0x0204; it is listed so the udev
rules and ``device list`` can name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "DEBUGGER_PID",
    "DEBUGGER_VID",
    "NORMAL_PIDS",
    "PARTICLE_VID",
    "UsbMode",
    "UsbProduct",
    "pid_for",
    "product_for",
]

PARTICLE_VID = 0x2B04
DEBUGGER_VID = 0x0D28
DEBUGGER_PID = 0x0204


class UsbMode(Enum):
    """What the PID says: running firmware (normal, listening, safe mode) or the DFU bootloader."""

    NORMAL = "normal"
    DFU = "dfu"


NORMAL_PIDS: dict[int, int] = {
    10: 0xC00A,  # Electron / E Series
    12: 0xC00C,  # Argon
    13: 0xC00D,  # Boron
    15: 0xC00F,  # E-SoM-X
    23: 0xC017,  # B Series SoM (bsom)
    25: 0xC019,  # B5 SoM (b5som)
    26: 0xC01A,  # Tracker SoM / Tracker One / Monitor One
}
"""Platform id → normal-mode PID (device-os ``build/platform-id.mk``)."""

_PLATFORM_BY_LOW_BYTE = {pid & 0xFF: platform for platform, pid in NORMAL_PIDS.items()}


@dataclass(frozen=True, slots=True)
class UsbProduct:
    platform_id: int
    mode: UsbMode


def pid_for(platform_id: int, mode: UsbMode) -> int:
    """The PID a platform enumerates with in ``mode``; ``KeyError`` for an unknown platform."""
    normal = NORMAL_PIDS[platform_id]
    return normal if mode is UsbMode.NORMAL else (normal & 0x00FF) | 0xD000


def product_for(vid: int, pid: int) -> UsbProduct | None:
    """Platform and mode of a Particle VID/PID pair; ``None`` for anything else."""
    if vid != PARTICLE_VID:
        return None
    high = pid & 0xFF00
    if high not in (0xC000, 0xD000):
        return None
    platform = _PLATFORM_BY_LOW_BYTE.get(pid & 0xFF)
    if platform is None:
        return None
    return UsbProduct(platform, UsbMode.NORMAL if high == 0xC000 else UsbMode.DFU)
