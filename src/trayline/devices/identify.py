"""Who is this device: the identity a bench engineer and the station need, from any path.

Over the serial console (listening mode) a device says its ID, serial number,
IMEI, ICCID and Device OS itself (device-side.md §4). Over SWD only silicon
answers: the device ID from the FICR / STM32 UID, and the modules from flash,
from which the Device OS follows (the system part's module version). Both end
as one :class:`IdentifyResult`, so ``trayline device identify --json`` prints
the same shape whichever way it asked; what a path cannot know is ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trayline.console.listening import ListeningConsole
from trayline.core.modules import ModuleFunction, function_name
from trayline.core.platforms import platform_name
from trayline.core.versions import device_os_for_system_module
from trayline.programmers.base import Capability, ModuleOnDevice, Programmer

__all__ = ["IdentifyResult", "device_os_of", "identify_on_port", "identify_with_programmer"]


@dataclass(slots=True)
class IdentifyResult:
    device_id: str
    serial_number: str | None = None
    iccid: str | None = None
    imei: str | None = None
    device_os: str | None = None
    platform_id: int | None = None
    source: str = ""
    """``console PORT`` or ``BACKEND probe ID``: where the answer came from."""
    modules: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "serial_number": self.serial_number,
            "iccid": self.iccid,
            "imei": self.imei,
            "device_os": self.device_os,
            "platform_id": self.platform_id,
            "platform": platform_name(self.platform_id) if self.platform_id is not None else None,
            "source": self.source,
            "modules": self.modules,
        }


def device_os_of(modules: list[ModuleOnDevice]) -> str | None:
    """The Device OS release the system part in ``modules`` belongs to. Pure.

    A system module number trayline has no release for is shown as such
    rather than guessed.
    """
    systems = [m for m in modules if m.function == ModuleFunction.SYSTEM_PART and m.valid]
    if not systems:
        return None
    version = max(m.version for m in systems)
    release = device_os_for_system_module(version)
    return str(release) if release else f"system module {version}"


def identify_with_programmer(programmer: Programmer) -> IdentifyResult:
    """Identity from silicon: device ID, modules and the Device OS they imply."""
    result = IdentifyResult(
        device_id=str(programmer.read_device_id()),
        source=f"{programmer.name} probe {programmer.probe.probe_id}",
    )
    if Capability.READ_MODULES in programmer.capabilities:
        modules = programmer.read_modules()
        result.device_os = device_os_of(modules)
        platforms = {m.platform_id for m in modules if m.valid}
        result.platform_id = platforms.pop() if len(platforms) == 1 else None
        result.modules = [
            {
                "function": function_name(m.function) or str(m.function),
                "index": m.index,
                "version": m.version,
                "address": f"{m.address:#010x}",
                "valid": m.valid,
            }
            for m in modules
        ]
    return result


def identify_on_port(port: str) -> IdentifyResult:
    """Identity from the listening-mode console on ``port`` (``i`` then ``v``).

    The mobile secret the ``i`` command prints (``Device Secret``) is dropped
    here: it is never shown, logged or stored.
    """
    with ListeningConsole(port) as console:
        ident = console.identify()
        version = console.version()
    return IdentifyResult(
        device_id=str(ident.device_id),
        serial_number=ident.serial_number,
        iccid=ident.iccid,
        imei=ident.imei,
        device_os=version,
        source=f"console {port}",
    )
