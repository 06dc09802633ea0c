"""The Linux udev rules trayline ships, so a station can open Particle devices without root.

Without them libusb answers ``LIBUSB_ERROR_ACCESS`` for every device and
trayline says so (:data:`trayline.usb.pipe.PERMISSION_HINT`). The file
follows particle-cli's ``assets/50-particle.rules`` (spec §3.1): VID 0x2B04
with PID 0xC0xx/0xD0xx and the Particle Debugger 0x0D28:0x0204, mode 0666 and
group plugdev, ModemManager kept away.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["RULES_FILE", "udev_rules"]

RULES_FILE = "50-particle.rules"


def udev_rules() -> str:
    """The rules file's text, read from the installed package."""
    return resources.files("trayline.usb").joinpath(RULES_FILE).read_text(encoding="utf-8")
