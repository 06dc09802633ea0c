"""A Particle device in normal or listening mode, driven with control requests.

:class:`ParticleDevice` is what a station holds for a device on a USB cable:
each method is one request of spec §3.4 with a typed answer, and the mode
changes wait for the device to re-enumerate (same code for a real device
through libusb and a virtual one through trayline's pyusb backend).

Behaviour a line depends on:

* **setup done** (73/74): Gen 3 devices below Device OS 4.0 boot into
  listening mode until DCT byte 8134 is 0x01. :meth:`set_setup_done` returns
  ``True`` when the device stored the flag and ``False`` when it answers
  NOT_SUPPORTED — Device OS ≥ 4.0 has no flag, so "not needed" — then, like
  ``particle usb setup-done``, leaves listening mode (71);
* **serial number** (21) is compared with the sticker the operator scanned:
  :meth:`check_serial` raises :class:`SerialMismatch` naming both;
* **firmware update** (250 → 253 … → 251) is how the bootloader and the
  Tracker's NCP are written without SWD; the device is put in listening mode
  first (70 + 1 s) so the system thread is idle, as particle-cli does, and
  re-enumerates after it applied the module;
* **app-custom** (10) carries bytes to and from the test firmware.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import usb.util

from trayline.core.ids import DeviceId, SerialNumber
from trayline.core.versions import InvalidVersion, SemVer
from trayline.usb.discovery import wait_for_device
from trayline.usb.messages import (
    DeviceMode,
    FirmwareModule,
    GetModuleInfoReply,
    IccidReply,
    RequestType,
    StartFirmwareUpdateRequest,
    decode_bool,
    decode_string,
    encode_bool,
)
from trayline.usb.pipe import PyUsbPipe
from trayline.usb.protocol import BACKOFF_MS, MAX_CHUNK
from trayline.usb.results import DeviceGone, NotSupported, UsbError
from trayline.usb.service import ServiceClient
from trayline.usb.vidpid import UsbMode
from trayline.usb.wire import Fields, WireError, Writer

__all__ = ["FIRMWARE_UPDATE_TIMEOUT_S", "ParticleDevice", "SerialMismatch"]

FIRMWARE_UPDATE_TIMEOUT_S = 240.0
"""particle-cli allows 4 minutes per module (NCP updates are slow)."""
NO_SETUP_FLAG_FROM = SemVer(4, 0, 0)
"""From Device OS 4.0 there is no setup-done flag (device-os commit d50b3506a)."""
LISTENING_SETTLE_S = 1.0
"""particle-cli and flash-util wait 1 s after request 70 before an update."""


class SerialMismatch(UsbError):
    """The serial number the device reports differs from the scanned sticker."""


class ParticleDevice:
    """One open Particle device in normal/listening mode (not DFU: see :mod:`.dfuse`).

    ``backend`` is the pyusb backend it was found on, kept to find the device
    again after it resets. Open with :meth:`open`; ``close`` releases it.
    """

    def __init__(
        self,
        dev: Any,
        device_id: str,
        *,
        backend: Any = None,
        backoff_ms: tuple[int, ...] = BACKOFF_MS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dev = dev
        self.device_id = device_id
        self.backend = backend
        self._backoff = backoff_ms
        self._sleep = sleep
        self.pipe = PyUsbPipe(dev, device_id)
        self.service = ServiceClient(
            self.pipe, device=device_id, backoff_ms=backoff_ms, sleep=sleep
        )

    @classmethod
    def open(
        cls, device_id: str, *, backend: Any = None, timeout: float = 10.0, **kw: Any
    ) -> ParticleDevice:
        """Find ``device_id`` in normal mode and cancel what an earlier session left (RESET 0)."""
        dev = wait_for_device(device_id, backend=backend, mode=UsbMode.NORMAL, timeout=timeout)
        device = cls(dev, device_id, backend=backend, **kw)
        device.service.reset(0)
        return device

    def close(self) -> None:
        usb.util.dispose_resources(self.dev)

    def __enter__(self) -> ParticleDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode(self, what: str, fn: Callable[[bytes], Any], data: bytes) -> Any:
        try:
            return fn(data)
        except (WireError, ValueError) as exc:
            raise UsbError(f"{what}: malformed reply ({exc})", device=self.device_id) from None

    # -- identity -----------------------------------------------------------

    def get_device_id(self) -> DeviceId:
        """Request 20; falls back to the raw vendor request on firmware without it."""
        try:
            text = self._decode("device id", decode_string, self.service.request(20))
        except NotSupported:
            text = self.pipe.raw_in(RequestType.GET_DEVICE_ID, 64).split(b"\0")[0].decode()
        return DeviceId.parse(text)

    def get_serial_number(self) -> str:
        """Request 21: the serial printed on the sticker (from ext-flash OTP on Gen 3)."""
        data = self.service.request(RequestType.GET_SERIAL_NUMBER)
        return str(self._decode("serial number", decode_string, data))

    def check_serial(self, scanned: SerialNumber) -> SerialNumber:
        """Compare the device's serial with the scanned sticker; raise on mismatch."""
        reported = self.get_serial_number().strip().upper()
        if reported != scanned:
            raise SerialMismatch(
                f"serial number {reported or '(none)'} on the device, {scanned} on the sticker",
                device=self.device_id,
            )
        return scanned

    def get_system_version(self) -> str:
        """Raw vendor request 30: the Device OS version string (``2.3.1``)."""
        raw = self.pipe.raw_in(RequestType.GET_SYSTEM_VERSION, 64)
        return raw.split(b"\0")[0].decode("ascii", "replace")

    def get_device_mode(self) -> DeviceMode:
        data = self.service.request(RequestType.GET_DEVICE_MODE)
        value = self._decode("device mode", _uint1, data)
        try:
            return DeviceMode(value)
        except ValueError:
            raise UsbError(f"unknown device mode {value}", device=self.device_id) from None

    def get_module_info(self) -> list[FirmwareModule]:
        data = self.service.request(RequestType.GET_MODULE_INFO)
        reply: GetModuleInfoReply = self._decode("module info", GetModuleInfoReply.decode, data)
        return list(reply.modules)

    def get_iccid(self) -> IccidReply:
        """Request 554: ICCID, and IMEI on Device OS ≥ 5.8.0 (empty before)."""
        data = self.service.request(RequestType.CELLULAR_GET_ICCID)
        reply: IccidReply = self._decode("ICCID", IccidReply.decode, data)
        return reply

    # -- setup done ---------------------------------------------------------

    def set_setup_done(self, done: bool = True) -> bool:
        """Set (or clear) the Gen 3 setup-done flag; ``False`` when the device has none.

        Device OS ≥ 4.0 has no flag: it answers OK to done=true without storing
        anything and NOT_SUPPORTED to done=false, so the version (raw request
        30) is asked first and ≥ 4.0 is "not needed" without a write. A
        NOT_SUPPORTED answer (Electron, or a version that could not be read)
        means the same. Then stop (done) or start (not done) listening mode, as
        ``particle usb setup-done`` does.
        """
        if self._has_no_flag():
            return False
        try:
            self.service.request(RequestType.SET_DEVICE_SETUP_DONE, encode_bool(done))
        except NotSupported:
            return False
        follow = RequestType.STOP_LISTENING if done else RequestType.START_LISTENING
        with contextlib.suppress(NotSupported):
            self.service.request(follow)
        return True

    def _has_no_flag(self) -> bool:
        try:
            version = SemVer.parse(self.get_system_version())
        except (UsbError, InvalidVersion):
            return False
        return version >= NO_SETUP_FLAG_FROM

    def is_setup_done(self) -> bool:
        data = self.service.request(RequestType.IS_DEVICE_SETUP_DONE)
        return bool(self._decode("setup done", decode_bool, data))

    # -- modes --------------------------------------------------------------

    def start_listening(self) -> None:
        self.service.request(RequestType.START_LISTENING)

    def stop_listening(self) -> None:
        self.service.request(RequestType.STOP_LISTENING)

    def _reenumerate(self, mode: UsbMode, timeout: float) -> Any:
        self.close()
        return wait_for_device(self.device_id, backend=self.backend, mode=mode, timeout=timeout)

    def reset(self, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Request 40; with ``wait`` the device is found again in normal mode."""
        self.service.request(RequestType.RESET)
        if wait:
            self._reopen(self._reenumerate(UsbMode.NORMAL, timeout))

    def force_reset(self, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Raw vendor request 40: reset at once, without the service protocol (§3.3).

        For a device whose request handlers are stuck (the service protocol
        answers BUSY for ever); particle-usb's ``reset({force: true})``.
        """
        self.pipe.raw_out(RequestType.RESET)
        if wait:
            self._reopen(self._reenumerate(UsbMode.NORMAL, timeout))

    def enter_dfu(self, *, timeout: float = 60.0) -> Any:
        """Request 50; returns the pyusb device once it enumerated with its DFU PID."""
        self.service.request(RequestType.DFU_MODE)
        return self._reenumerate(UsbMode.DFU, timeout)

    def _reopen(self, dev: Any) -> None:
        self.dev = dev
        self.pipe = PyUsbPipe(dev, self.device_id)
        self.service = ServiceClient(
            self.pipe, device=self.device_id, backoff_ms=self._backoff, sleep=self._sleep
        )

    # -- firmware update and the test-firmware channel ------------------------

    def update_firmware(
        self, data: bytes, *, timeout: float = FIRMWARE_UPDATE_TIMEOUT_S, wait: bool = True
    ) -> None:
        """Write a module (bootloader, NCP, any) with requests 250/253/251, then reopen.

        The device validates and applies it on reset: a module that fails its
        checks is refused at 251 with BAD_DATA / NOT_SUPPORTED (raised).
        """
        self.start_listening()
        self._sleep(LISTENING_SETTLE_S * _settle_scale(self))
        start = StartFirmwareUpdateRequest(len(data)).encode()
        reply = self.service.request(RequestType.START_FIRMWARE_UPDATE, start, timeout=timeout)
        chunk = self._decode("firmware update", _uint1, reply) or MAX_CHUNK
        try:
            for pos in range(0, len(data), chunk):
                payload = Writer().raw(1, data[pos : pos + chunk]).bytes()
                self.service.request(RequestType.FIRMWARE_UPDATE_DATA, payload, timeout=timeout)
            self.service.request(
                RequestType.FINISH_FIRMWARE_UPDATE, encode_bool(False), timeout=timeout
            )
        except UsbError:
            self._cancel_update()
            raise
        if wait:
            self._reopen(self._reenumerate(UsbMode.NORMAL, 60.0))

    def _cancel_update(self) -> None:
        try:
            self.service.request(RequestType.CANCEL_FIRMWARE_UPDATE)
        except (UsbError, DeviceGone):
            return

    def app_request(self, payload: bytes, *, timeout: float = 60.0) -> bytes:
        """Request 10: hand ``payload`` to the user firmware's control-request handler."""
        return self.service.request(RequestType.APP_CUSTOM, payload, timeout=timeout)


def _uint1(data: bytes) -> int:
    return Fields(data).uint(1)


def _settle_scale(device: ParticleDevice) -> float:
    """How much of the 1 s settle to wait: a virtual backend may run its clock faster."""
    scale = getattr(device.backend, "time_scale", None)
    return float(scale) if isinstance(scale, int | float) else 1.0
