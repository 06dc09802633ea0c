"""Which serial ports are Particle devices: USB VID 0x2B04, plus a virtual tray's ptys.

A Particle device in normal, listening or safe mode enumerates with vendor ID
0x2B04 and product ID 0xC0xx; its USB serial-number string is the device ID
(spec §3.1), so the port list already says which unit is on which port (the
CLI accepts any 24-hex substring for old firmware; so does this). DFU mode
(0xD0xx) has no serial port. A virtual tray served by ``trayline virtual
serve`` publishes its ports in ``DIR/ports.json``; those are read from the
file, because a pty has no USB descriptors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serial.tools import list_ports

__all__ = ["PARTICLE_VID", "ParticlePort", "find_ports", "virtual_ports"]

PARTICLE_VID = 0x2B04
_HEX24 = re.compile(r"[0-9a-fA-F]{24}")


@dataclass(frozen=True, slots=True)
class ParticlePort:
    """A serial port with a Particle device behind it."""

    path: str
    device_id: str | None
    description: str
    source: str
    """``usb`` (a real USB CDC port) or ``virtual`` (a virtual tray's pty)."""
    product_id: int | None = None


def _device_id(serial_number: str | None) -> str | None:
    match = _HEX24.search(serial_number or "")
    return match.group(0).lower() if match else None


def virtual_ports(folder: Path | str) -> list[ParticlePort]:
    """The ptys a running ``trayline virtual serve DIR`` published (``[]`` when not served)."""
    path = Path(folder) / "ports.json"
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    return [
        ParticlePort(str(pty), str(device_id).lower(), "virtual device", "virtual")
        for device_id, pty in sorted(data.items(), key=lambda item: str(item[1]))
    ]


def find_ports(
    *,
    virtual: Path | str | None = None,
    comports: Callable[[], Iterable[Any]] = list_ports.comports,
) -> list[ParticlePort]:
    """Particle USB serial ports (by VID 0x2B04), then the virtual tray's ports if given."""
    found: list[ParticlePort] = []
    for info in comports():
        if getattr(info, "vid", None) != PARTICLE_VID:
            continue
        pid = getattr(info, "pid", None)
        product = getattr(info, "product", None) or getattr(info, "description", "")
        found.append(
            ParticlePort(
                path=str(info.device),
                device_id=_device_id(getattr(info, "serial_number", None)),
                description=str(product or "Particle device"),
                source="usb",
                product_id=pid,
            )
        )
    if virtual is not None:
        found.extend(virtual_ports(virtual))
    return found
