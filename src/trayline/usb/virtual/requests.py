"""The control requests a virtual device answers in normal and listening mode.

Each handler turns a request type and its payload into an
:class:`~trayline.usb.virtual.channel.Outcome`, following Device OS (spec
§3.4-§3.6, §6, §8):

* 20/21/30/72/74/90/554 read the simulated device (ID lowercase, serial,
  version, mode, setup-done, module info from flash, ICCID + IMEI from 5.8.0);
* 73 on a Gen 3 device below Device OS 4.0 writes DCT byte 8134; on 4.0+ it
  answers OK for done=true and NOT_SUPPORTED for done=false, and 74 always
  says done; the Electron has no flag (NOT_SUPPORTED);
* 40/50/60 reply OK, then the device resets (into DFU for 50) once the host
  has the answer;
* 250/253/251 collect a module, validate it (CRC, platform, NCP rules) and
  apply it on FINISH: a bootloader or any host-flash module is written where
  its prefix says (the system may write the bootloader region DFU cannot); an
  NCP module (function 7) updates the Tracker's ESP32 — refused with
  NOT_SUPPORTED from Device OS 5.6.0, where Tracker NCP updates are compiled
  out (§6). The device then resets;
* 10 (app-custom) is answered only by test firmware: a JSON request
  ``{"cmd": ...}`` gets ``{"ok": true, "cmd": ..., "device_id": ...,
  "readings": {...}}``; any other firmware answers NOT_SUPPORTED.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from trayline.core.modules import ModuleError, ModuleFunction, parse_module
from trayline.core.versions import SemVer
from trayline.usb.messages import (
    FirmwareModule,
    FirmwareModuleDependency,
    GetModuleInfoReply,
    IccidReply,
    StartFirmwareUpdateRequest,
    decode_bool,
    encode_bool,
    encode_string,
)
from trayline.usb.results import Result
from trayline.usb.virtual.channel import Outcome
from trayline.usb.virtual.target import UsbTarget
from trayline.usb.wire import Fields, WireError, Writer
from trayline.virtual.device import DeviceMode

__all__ = ["DeviceRequests", "ModeChanges"]

_IMEI_FROM = SemVer(5, 8, 0)
_NO_SETUP_FLAG_FROM = SemVer(4, 0, 0)
_NCP_UPDATES_UNTIL = SemVer(5, 6, 0)
_TRACKER = 26
_CHUNK = 4096
_MAX_IMAGE = 1024 * 1024
_NCP_BYTES_PER_S = 30_000
"""ESP32 update over AT+FWUPD/XMODEM: an estimate (no measured figure in the spec)."""
_FLASH_BYTES_PER_S = 31_000
_CHECKED = 0x02 | 0x04 | 0x08 | 0x10


@dataclass(frozen=True, slots=True)
class ModeChanges:
    """What the gadget does when a request resets the device."""

    reset: Callable[[], None]
    enter_dfu: Callable[[], None]
    enter_safe: Callable[[], None]


def _ok(reply: bytes = b"", seconds: float = 0.0) -> Outcome:
    return Outcome(Result.OK, reply, seconds)


def _fail(result: Result) -> Outcome:
    return Outcome(result)


class DeviceRequests:
    """The request handlers of one virtual device (one instance per device)."""

    def __init__(self, target: UsbTarget, changes: ModeChanges) -> None:
        self.target = target
        self.changes = changes
        self._update: bytearray | None = None
        self._update_size = 0
        self._handlers: dict[int, Callable[[bytes], Outcome]] = {
            10: self._app_custom,
            20: lambda _: _ok(encode_string(self.target.device_id.lower())),
            21: lambda _: _ok(encode_string(self.target.identity.serial_number)),
            30: lambda _: _ok(encode_string(self.version_string())),
            40: lambda _: Outcome(Result.OK, after=self.changes.reset),
            50: lambda _: Outcome(Result.OK, after=self.changes.enter_dfu),
            60: lambda _: Outcome(Result.OK, after=self.changes.enter_safe),
            70: lambda _: self._set_mode("listening"),
            71: lambda _: self._set_mode("normal"),
            72: lambda _: _ok(
                Writer().uint(1, 1 if self.target.mode == "listening" else 0).bytes()
            ),
            73: self._set_setup_done,
            74: lambda _: _ok(encode_bool(self.target.setup_done)),
            90: lambda _: _ok(self.module_info().encode()),
            250: self._start_update,
            251: self._finish_update,
            252: self._cancel_update,
            253: self._update_data,
            554: self._iccid,
        }

    def __call__(self, request_type: int, payload: bytes) -> Outcome:
        handler = self._handlers.get(request_type)
        if handler is None:
            return _fail(Result.NOT_SUPPORTED)
        try:
            return handler(payload)
        except (WireError, ValueError):
            return _fail(Result.BAD_DATA)

    def version_string(self) -> str:
        release = self.target.device_os()
        return str(release) if release is not None else ""

    def _release(self) -> SemVer:
        return self.target.device_os() or SemVer(0, 0, 0)

    def _set_mode(self, mode: str) -> Outcome:
        self.target.enter_mode(DeviceMode(mode))
        return _ok()

    def _set_setup_done(self, payload: bytes) -> Outcome:
        done = decode_bool(payload)
        if not self.target.is_gen3:
            return _fail(Result.NOT_SUPPORTED)
        if self._release() >= _NO_SETUP_FLAG_FROM:
            return _ok() if done else _fail(Result.NOT_SUPPORTED)
        self.target.set_setup_done(done)
        return _ok()

    def module_info(self) -> GetModuleInfoReply:
        modules = []
        for m in self.target.modules():
            deps = tuple(FirmwareModuleDependency(f, i, v) for f, i, v in m.dependencies if f)
            modules.append(
                FirmwareModule(
                    type=m.function,
                    index=m.index,
                    version=m.version,
                    max_size=m.size,
                    checked_flags=_CHECKED,
                    passed_flags=_CHECKED if m.valid else 0x10,
                    hash=bytes.fromhex(m.sha256) if m.sha256 and m.function == 5 else b"",
                    dependencies=deps,
                    size=m.size,
                )
            )
        ncp = self.target.state.ncp_version
        if ncp is not None:
            modules.append(FirmwareModule(type=ModuleFunction.NCP_FIRMWARE, index=0, version=ncp))
        return GetModuleInfoReply(tuple(modules))

    def _iccid(self, _: bytes) -> Outcome:
        identity = self.target.identity
        imei = identity.imei if self._release() >= _IMEI_FROM else ""
        return _ok(IccidReply(identity.iccid, imei).encode())

    def _app_custom(self, payload: bytes) -> Outcome:
        if not self.target.runs_test_firmware():
            return _fail(Result.NOT_SUPPORTED)
        try:
            request = json.loads(payload.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _fail(Result.BAD_DATA)
        readings = getattr(self.target, "readings", {})
        cmd = request.get("cmd") if isinstance(request, dict) else None
        reply = {"ok": True, "cmd": cmd, "device_id": self.target.device_id, "readings": readings}
        return _ok(json.dumps(reply, sort_keys=True).encode())

    # -- firmware update (250-253) ------------------------------------------------

    def _start_update(self, payload: bytes) -> Outcome:
        request = StartFirmwareUpdateRequest.decode(payload)
        if request.size == 0 or request.size > _MAX_IMAGE:
            return _fail(Result.TOO_LARGE if request.size else Result.INVALID_ARGUMENT)
        self._update, self._update_size = bytearray(), request.size
        return _ok(Writer().uint(1, _CHUNK).bytes())

    def _update_data(self, payload: bytes) -> Outcome:
        if self._update is None:
            return _fail(Result.INVALID_STATE)
        data = Fields(payload).raw(1)
        if len(self._update) + len(data) > self._update_size:
            self._update = None
            return _fail(Result.TOO_LARGE)
        self._update += data
        return _ok(seconds=len(data) / _FLASH_BYTES_PER_S)

    def _cancel_update(self, _: bytes) -> Outcome:
        self._update = None
        return _ok()

    def _finish_update(self, payload: bytes) -> Outcome:
        validate_only = decode_bool(payload)
        data, self._update = self._update, None
        if data is None or len(data) != self._update_size:
            return _fail(Result.INVALID_STATE)
        try:
            module = parse_module(bytes(data))
        except ModuleError:
            return _fail(Result.BAD_DATA)
        if not module.crc_ok or module.platform_id != self.target.platform_id:
            return _fail(Result.BAD_DATA)
        if module.function == ModuleFunction.NCP_FIRMWARE:
            return self._apply_ncp(module.version, len(data), validate_only)
        if validate_only:
            return _ok()
        image = module.flash_image(bytes(data))
        start = module.start_address
        self.target.erase(start, start + len(image))
        self.target.write(start, image)
        return Outcome(Result.OK, seconds=len(image) / _FLASH_BYTES_PER_S, after=self.changes.reset)

    def _apply_ncp(self, version: int, size: int, validate_only: bool) -> Outcome:
        if self.target.platform_id != _TRACKER or self.target.state.ncp_version is None:
            return _fail(Result.NOT_SUPPORTED)
        if self._release() >= _NCP_UPDATES_UNTIL:
            return _fail(Result.NOT_SUPPORTED)
        if validate_only:
            return _ok()
        self.target.state.ncp_version = version
        return Outcome(Result.OK, seconds=size / _NCP_BYTES_PER_S, after=self.changes.reset)
