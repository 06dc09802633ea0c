"""The listening-mode serial console (blinking dark blue), byte for byte as Device OS prints it.

Source: spec §4 (device-os ``system/src/system_setup.cpp``). Commands are single
characters with no terminator; every line ends ``\\r\\n`` except the version
line, which ends ``\\n\\r\\n`` — a parser that splits on ``\\r\\n`` must cope,
which is why the virtual device reproduces it exactly.

Pure: :func:`answer` takes a device snapshot and one command character and
returns the bytes to send (``b""`` for commands that print nothing). The
serial port (:mod:`trayline.virtual.serial_port`) applies what ``x`` asks for
(leave listening mode).
"""

from __future__ import annotations

import json

from trayline.core.modules import ModuleFunction
from trayline.virtual.device import VirtualDevice
from trayline.virtual.identity import mac_address
from trayline.virtual.scan import FlashModule

__all__ = ["COMMANDS", "answer", "identity_text", "modules_json", "version_text"]

COMMANDS = frozenset("ivsmcx")
"""The commands simulated; others (``f``, ``L``, ``C``, ``d``, ``w``) print nothing."""

_FUNCTION_CHARS = {
    ModuleFunction.BOOTLOADER: "b",
    ModuleFunction.SYSTEM_PART: "s",
    ModuleFunction.USER_PART: "u",
    ModuleFunction.NCP_FIRMWARE: "c",
    ModuleFunction.RADIO_STACK: "a",
    ModuleFunction.MONO_FIRMWARE: "m",
    ModuleFunction.RESOURCE: "r",
}
# device-os MODULE_VALIDATION_* bits: integrity 2, dependencies 4, range 8, platform 16.
_INTEGRITY, _DEPENDENCIES, _RANGE, _PLATFORM = 2, 4, 8, 16
_CHECKED = _INTEGRITY | _DEPENDENCIES | _RANGE | _PLATFORM


def identity_text(device: VirtualDevice) -> bytes:
    """``i``: the key/value form; every cellular Particle platform has key/values (§4)."""
    ident = device.identity
    lines = [f"Device ID: {ident.device_id}"]
    if ident.mobile_secret:
        lines.append(f"Device Secret: {ident.mobile_secret}")
    lines.append(f"Serial Number: {ident.serial_number}")
    lines.append(f"IMEI: {ident.imei}")
    lines.append(f"ICCID: {ident.iccid}")
    if ident.cell_radio_version:
        lines.append(f"Cell Radio Version: {ident.cell_radio_version}")
    return "".join(line + "\r\n" for line in lines).encode()


def version_text(device: VirtualDevice) -> bytes:
    """``v``: ``system firmware version: X.Y.Z\\n\\r\\n`` (the odd ending is Device OS's)."""
    release = device.device_os()
    return f"system firmware version: {release or '0.0.0'}\n\r\n".encode()


def _module_entry(
    device: VirtualDevice, module: FlashModule, installed: dict[tuple[int, int], int]
) -> dict[str, object]:
    passed = _CHECKED
    if not module.valid:
        passed &= ~_INTEGRITY
    if any(installed.get((f, i), -1) < v for f, i, v in module.dependencies):
        passed &= ~_DEPENDENCIES
    if module.platform_id != device.platform_id and module.function != ModuleFunction.RADIO_STACK:
        passed &= ~_PLATFORM
    entry: dict[str, object] = {"s": module.region_size, "l": "m", "vc": _CHECKED, "vv": passed}
    if module.function == ModuleFunction.USER_PART and module.sha256:
        entry["u"] = module.sha256.upper()
    entry["f"] = _FUNCTION_CHARS.get(ModuleFunction(module.function), "n")
    entry["n"] = str(module.index)
    entry["v"] = module.version
    entry["d"] = [
        {"f": _FUNCTION_CHARS.get(ModuleFunction(f), "n"), "n": str(i), "v": v}
        for f, i, v in module.dependencies
    ]
    return entry


def modules_json(device: VirtualDevice) -> bytes:
    """``s``: one JSON object (platform, cellular key/values, modules) and ``\\r\\n``."""
    modules = device.modules()
    installed = {(m.function, m.index): m.version for m in modules if m.valid}
    ident = device.identity
    out: dict[str, object] = {"p": device.platform_id, "imei": ident.imei, "iccid": ident.iccid}
    if ident.cell_radio_version:
        out["cellfw"] = ident.cell_radio_version
    entries = [_module_entry(device, m, installed) for m in modules]
    if device.state.ncp_version is not None:
        entries.append(
            {
                "s": 0,
                "l": "m",
                "vc": _CHECKED,
                "vv": _CHECKED,
                "f": "c",
                "n": "0",
                "v": device.state.ncp_version,
                "d": [],
            }
        )
    out["m"] = entries
    return json.dumps(out, separators=(",", ":")).encode() + b"\r\n"


def answer(device: VirtualDevice, command: str) -> bytes:
    """The bytes the console prints for one command character (``b""`` for none)."""
    if command == "i":
        return identity_text(device)
    if command == "v":
        return version_text(device)
    if command == "s":
        return modules_json(device)
    if command == "m":
        return f"Your device MAC address is\r\n{mac_address(device.device_id)}\r\n".encode()
    if command == "c":
        return f"Device claimed: {'yes' if device.state.claimed else 'no'}\r\n".encode()
    return b""
