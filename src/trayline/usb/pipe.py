"""Endpoint 0 of a pyusb device, with libusb's failures turned into trayline's errors.

pyusb drives a real device through libusb and a virtual one through
:class:`trayline.usb.virtual.backend.VirtualBackend`; both raise
``usb.core.USBError`` with a libusb error code. :class:`PyUsbPipe` is the one
place that reads those codes: a vanished device (``NO_DEVICE``) becomes
:class:`DeviceGone`, ``ACCESS`` becomes :class:`UsbPermissionDenied` with the
fix for each OS, a ``PIPE`` error (a STALL) becomes :class:`Stalled`.

pyusb releases the GIL inside libusb, and each ``usb.core.Device`` has its own
lock, so threads driving different devices do not wait for each other.
"""

from __future__ import annotations

from typing import Any

import usb.core

from trayline.usb.protocol import RAW_VENDOR_REQUEST, TRANSFER_TIMEOUT_MS
from trayline.usb.results import DeviceGone, Stalled, UsbError, UsbPermissionDenied

__all__ = ["PERMISSION_HINT", "PyUsbPipe", "translate_usb_error"]

VENDOR_IN, VENDOR_OUT = 0xC0, 0x40
CLASS_INTERFACE_IN, CLASS_INTERFACE_OUT = 0xA1, 0x21

_NO_DEVICE, _ACCESS, _PIPE, _TIMEOUT, _NOT_FOUND = -4, -3, -9, -7, -5

PERMISSION_HINT = (
    "Linux: install the udev rules (`trayline device udev-rules | sudo tee "
    "/etc/udev/rules.d/50-particle.rules`, then replug); Windows: bind WinUSB with Zadig"
)


def translate_usb_error(exc: usb.core.USBError, device: str, what: str) -> UsbError:
    """The trayline error for a pyusb failure during ``what``."""
    code = getattr(exc, "backend_error_code", None)
    if code in (_NO_DEVICE, _NOT_FOUND) or exc.errno == 19:
        return DeviceGone(f"{what}: the device disconnected", device=device)
    if code == _ACCESS or exc.errno == 13:
        return UsbPermissionDenied(f"{what}: permission denied. {PERMISSION_HINT}", device=device)
    if code == _PIPE or exc.errno == 32:
        return Stalled(f"{what}: the device stalled the request", device=device)
    if code == _TIMEOUT or isinstance(exc, usb.core.USBTimeoutError):
        return DeviceGone(f"{what}: no answer within the USB timeout", device=device)
    return UsbError(f"{what}: USB error {exc}", device=device)


class PyUsbPipe:
    """Control transfers on one ``usb.core.Device``; implements ``ControlPipe``."""

    def __init__(self, dev: Any, device: str = "") -> None:
        self.dev = dev
        self.device = device

    def transfer(
        self, bm_request_type: int, request: int, value: int, index: int,
        data_or_length: bytes | int, timeout_ms: int, what: str,
    ) -> bytes | int:  # fmt: skip
        try:
            out = self.dev.ctrl_transfer(
                bm_request_type, request, value, index, data_or_length, timeout_ms
            )
        except usb.core.USBError as exc:
            raise translate_usb_error(exc, self.device, what) from None
        except NotImplementedError:
            raise DeviceGone(
                f"{what}: the USB backend cannot do this", device=self.device
            ) from None
        return out if isinstance(out, int) else bytes(out)

    def control_in(
        self, request: int, value: int, index: int, length: int, timeout_ms: int
    ) -> bytes:
        out = self.transfer(
            VENDOR_IN, request, value, index, length, timeout_ms, f"request {request}"
        )
        return out if isinstance(out, bytes) else b""

    def control_out(
        self, request: int, value: int, index: int, data: bytes, timeout_ms: int
    ) -> None:
        self.transfer(VENDOR_OUT, request, value, index, data, timeout_ms, f"request {request}")

    def raw_in(self, request_type: int, length: int = 64) -> bytes:
        """A raw vendor request (bRequest 0x50, wIndex = type), IN (spec §3.3)."""
        return self.control_in(RAW_VENDOR_REQUEST, 0, request_type, length, TRANSFER_TIMEOUT_MS)

    def raw_out(self, request_type: int, data: bytes = b"") -> None:
        self.control_out(RAW_VENDOR_REQUEST, 0, request_type, data, TRANSFER_TIMEOUT_MS)
