"""The USB side of ``trayline device``: ``--usb ID``, ``list --usb`` and ``udev-rules``.

Kept apart from :mod:`trayline.cli.device` so that module stays a thin table
of commands: this one turns ``--usb ID`` / ``--virtual DIR`` into a pyusb
backend (libusb, or trayline's virtual bus over the tray folder), asks
:mod:`trayline.usb` and renders the answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from trayline.cli.console import EXIT_USAGE, fail, out
from trayline.core.ids import InvalidIdentifier, SerialNumber

__all__ = [
    "EXIT_DEVICE",
    "StickerOption",
    "UsbOption",
    "identify_usb_command",
    "list_usb_command",
    "udev_rules_command",
    "usb_backend",
    "usb_platform",
]

EXIT_DEVICE = 6

UsbOption = typer.Option(
    None,
    "--usb",
    help="Reach the device with this ID over USB (control requests + DFU; no particle CLI). "
    "Same as --backend usb --probe ID.",
)
StickerOption = typer.Option(
    None, "--sticker", help="With --usb: the serial number scanned from the label, checked."
)


def usb_backend(virtual: Path | None) -> Any:
    """``None`` (libusb) or the virtual USB bus of the tray in ``virtual``."""
    if virtual is None:
        return None
    if not virtual.is_dir():
        fail(f"{virtual}: no such virtual tray directory", EXIT_USAGE)
    from trayline.usb.virtual.backend import VirtualBackend

    try:
        return VirtualBackend.from_tray(virtual)
    except (OSError, ValueError) as exc:  # an unreadable tray, a bad time-scale variable
        fail(f"{virtual}: {exc}", EXIT_USAGE)


def identify_usb_command(
    device_id: str, virtual: Path | None, sticker: str | None, as_json: bool
) -> None:
    """``device identify --usb ID [--sticker SERIAL]``."""
    from trayline.usb.identity import identify_usb
    from trayline.usb.results import UsbError

    scanned = None
    if sticker is not None:
        try:
            scanned = SerialNumber.parse(sticker)
        except InvalidIdentifier as exc:
            fail(f"--sticker: {exc}", EXIT_USAGE)
    backend = usb_backend(virtual)
    try:
        result = identify_usb(device_id, backend=backend, sticker=scanned).to_dict()
    except UsbError as exc:
        fail(str(exc), EXIT_DEVICE)
    if as_json:
        out.print_json(json.dumps(result))
        return
    for key in ("device_id", "platform", "mode", "serial_number", "iccid", "imei", "device_os"):
        out.print(f"{key.replace('_', ' ')}: {result.get(key) or '-'}")
    if result["serial_checked"]:
        out.print("sticker: matches the device's serial number")
    for m in result["modules"]:
        out.print(
            f"  {m['function']} {m['index']} v{m['version']}{'' if m['valid'] else ' INVALID'}"
        )


def list_usb_command(virtual: Path | None, as_json: bool) -> None:
    """``device list --usb``: Particle devices on USB with platform and mode."""
    from trayline.usb.discovery import list_devices
    from trayline.usb.results import UsbError

    try:
        found = list_devices(usb_backend(virtual))
    except UsbError as exc:
        fail(str(exc), EXIT_DEVICE)
    if as_json:
        out.print_json(json.dumps([d.to_dict() for d in found]))
        return
    if not found:
        out.print("no Particle device on USB")
        return
    table = Table("device ID", "platform", "mode", "usb", "bus/address", box=None, pad_edge=False)
    for d in found:
        where = f"{d.bus}/{d.address}"
        table.add_row(d.device_id or f"? ({d.note})", d.platform, d.mode.value,
                      f"{d.vid:04x}:{d.pid:04x}", where)  # fmt: skip
    out.print(table)


def udev_rules_command() -> None:
    """``device udev-rules``: print the shipped rules file."""
    from trayline.usb.udev import udev_rules

    typer.echo(udev_rules(), nl=False)


def usb_platform(device_id: str, virtual: Path | None) -> int:
    """The platform of ``device_id`` from its USB product ID (no ``--sku`` needed)."""
    from trayline.usb.discovery import list_devices
    from trayline.usb.results import UsbError

    try:
        found = list_devices(usb_backend(virtual))
    except UsbError as exc:
        fail(str(exc), EXIT_DEVICE)
    for d in found:
        if d.device_id == device_id.strip().lower():
            return d.platform_id
    fail(f"{device_id}: no such device on USB (see `trayline device list --usb`)", EXIT_DEVICE)
