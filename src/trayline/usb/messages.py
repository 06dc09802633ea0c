"""Request types and the protobuf messages a manufacturing line exchanges with a device.

Numbers: device-os ``system/inc/system_control.h``; messages and field numbers:
device-os-protobuf ``control/*.proto`` and ``cloud/describe.proto`` (spec
§3.4). Only what a line uses is here; every class encodes and decodes itself
with :mod:`trayline.usb.wire` and is shared by the host (``trayline.usb``)
and the device side (``trayline.usb.virtual``), so both speak the same bytes.

Requests without a message (reset, DFU mode, …) send an empty payload;
replies without a message carry only the result code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from trayline.usb.wire import Fields, Writer

__all__ = [
    "DeviceMode",
    "FileFormat",
    "FirmwareModule",
    "FirmwareModuleDependency",
    "GetModuleInfoReply",
    "IccidReply",
    "RequestType",
    "StartFirmwareUpdateRequest",
    "decode_bool",
    "decode_string",
    "encode_bool",
    "encode_string",
]


class RequestType(IntEnum):
    """``ctrl_request_type`` values trayline sends."""

    APP_CUSTOM = 10
    GET_DEVICE_ID = 20
    GET_SERIAL_NUMBER = 21
    GET_SYSTEM_VERSION = 30
    RESET = 40
    FACTORY_RESET = 41
    DFU_MODE = 50
    SAFE_MODE = 60
    START_LISTENING = 70
    STOP_LISTENING = 71
    GET_DEVICE_MODE = 72
    SET_DEVICE_SETUP_DONE = 73
    IS_DEVICE_SETUP_DONE = 74
    GET_MODULE_INFO = 90
    START_FIRMWARE_UPDATE = 250
    FINISH_FIRMWARE_UPDATE = 251
    CANCEL_FIRMWARE_UPDATE = 252
    FIRMWARE_UPDATE_DATA = 253
    CELLULAR_GET_ICCID = 554


class DeviceMode(IntEnum):
    """``particle.ctrl.DeviceMode`` as request 72 reports it."""

    NORMAL = 0
    LISTENING = 1


class FileFormat(IntEnum):
    """``StartFirmwareUpdateRequest.format``."""

    BIN = 0
    MINIZ = 1


def encode_string(value: str) -> bytes:
    """A message whose only field 1 is a string (device id, serial, version, claim code)."""
    return Writer().text(1, value).bytes()


def decode_string(data: bytes) -> str:
    return Fields(data).text(1)


def encode_bool(value: bool) -> bytes:
    """A message whose only field 1 is a bool (setup done, claimed, validate_only)."""
    return Writer().boolean(1, value).bytes()


def decode_bool(data: bytes) -> bool:
    return Fields(data).boolean(1)


@dataclass(frozen=True, slots=True)
class IccidReply:
    """``particle.ctrl.cellular.GetIccidReply {string iccid = 1; string imei = 2}``.

    ``imei`` is empty before Device OS 5.8.0 (the field did not exist).
    """

    iccid: str
    imei: str = ""

    def encode(self) -> bytes:
        return Writer().text(1, self.iccid).text(2, self.imei).bytes()

    @classmethod
    def decode(cls, data: bytes) -> IccidReply:
        f = Fields(data)
        return cls(f.text(1), f.text(2))


@dataclass(frozen=True, slots=True)
class StartFirmwareUpdateRequest:
    """``StartFirmwareUpdateRequest {uint32 size = 1; FileFormat format = 2}``."""

    size: int
    format: FileFormat = FileFormat.BIN

    def encode(self) -> bytes:
        return Writer().uint(1, self.size).uint(2, int(self.format)).bytes()

    @classmethod
    def decode(cls, data: bytes) -> StartFirmwareUpdateRequest:
        f = Fields(data)
        return cls(f.uint(1), FileFormat(f.uint(2)))


@dataclass(frozen=True, slots=True)
class FirmwareModuleDependency:
    """``particle.cloud.FirmwareModuleDependency {type = 1; index = 2; version = 3}``."""

    type: int
    index: int
    version: int

    def encode(self) -> bytes:
        return Writer().uint(1, self.type).uint(2, self.index).uint(3, self.version).bytes()

    @classmethod
    def decode(cls, data: bytes) -> FirmwareModuleDependency:
        f = Fields(data)
        return cls(f.uint(1), f.uint(2), f.uint(3))


@dataclass(frozen=True, slots=True)
class FirmwareModule:
    """``particle.cloud.FirmwareModule`` (``cloud/describe.proto``).

    ``type`` uses the module-function numbers of the binary format (2
    bootloader, 4 system part, 5 user part, 7 NCP, 8 radio stack) — not the
    deprecated ``particle.ctrl.FirmwareModuleType`` of field 1 of the reply.
    ``checked_flags``/``passed_flags``: 0x02 integrity, 0x04 dependencies,
    0x08 range, 0x10 platform. ``hash`` is the suffix SHA-256 (user parts).
    """

    type: int
    index: int
    version: int
    store: int = 0
    max_size: int = 0
    checked_flags: int = 0
    passed_flags: int = 0
    hash: bytes = b""
    dependencies: tuple[FirmwareModuleDependency, ...] = ()
    size: int = 0

    @property
    def valid(self) -> bool:
        """Every check the device performed passed."""
        return self.checked_flags & ~self.passed_flags == 0

    def encode(self) -> bytes:
        w = Writer().uint(1, self.type).uint(2, self.index).uint(3, self.version)
        w.uint(4, self.store).uint(5, self.max_size)
        w.fixed32(6, self.checked_flags).fixed32(7, self.passed_flags)
        w.raw(8, self.hash)
        for dep in self.dependencies:
            w.raw(9, dep.encode(), always=True)
        return w.uint(11, self.size).bytes()

    @classmethod
    def decode(cls, data: bytes) -> FirmwareModule:
        f = Fields(data)
        deps = tuple(FirmwareModuleDependency.decode(d) for d in f.repeated(9))
        return cls(
            type=f.uint(1),
            index=f.uint(2),
            version=f.uint(3),
            store=f.uint(4),
            max_size=f.uint(5),
            checked_flags=f.uint(6),
            passed_flags=f.uint(7),
            hash=f.raw(8),
            dependencies=deps,
            size=f.uint(11),
        )


@dataclass(frozen=True, slots=True)
class GetModuleInfoReply:
    """``GetModuleInfoReply {… modules_deprecated = 1; repeated FirmwareModule modules = 2}``.

    trayline reads only field 2; field 1 (the deprecated per-module summary
    with another type enum) is skipped on decode and not written.
    """

    modules: tuple[FirmwareModule, ...] = field(default_factory=tuple)

    def encode(self) -> bytes:
        w = Writer()
        for module in self.modules:
            w.raw(2, module.encode(), always=True)
        return w.bytes()

    @classmethod
    def decode(cls, data: bytes) -> GetModuleInfoReply:
        return cls(tuple(FirmwareModule.decode(m) for m in Fields(data).repeated(2)))
