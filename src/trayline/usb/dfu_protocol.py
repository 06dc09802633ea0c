"""DFU 1.1 and ST's DfuSe extensions: request numbers, states, statuses, descriptors.

Shared by the host (:mod:`trayline.usb.dfuse`) and the virtual device
(:mod:`trayline.usb.virtual.dfu`) so both speak the same bytes. DfuSe adds
commands sent as a DNLOAD with ``wValue`` 0: 0x21 + address sets the
address pointer, 0x41 + address erases the page holding it. Data blocks are
DNLOAD/UPLOAD with ``wValue`` ≥ 2 at ``pointer + (wValue − 2) × transfer size``.
A zero-length DNLOAD followed by GETSTATUS manifests: the device leaves DFU and
resets (dfu-util's ``:leave``). Particle: DFU 1.1a (bcdDFUVersion 0x011A),
wTransferSize 4096, WillDetach, not manifestation-tolerant (spec §2.5).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "CMD_ERASE",
    "CMD_SET_ADDRESS",
    "DFU_FUNCTIONAL_DESCRIPTOR",
    "TRANSFER_SIZE",
    "DfuRequest",
    "DfuState",
    "DfuStatus",
    "StatusReply",
    "functional_descriptor",
    "parse_functional_descriptor",
]

TRANSFER_SIZE = 4096
CMD_SET_ADDRESS = 0x21
CMD_ERASE = 0x41
DFU_FUNCTIONAL_DESCRIPTOR = 0x21
DFU_CLASS, DFU_SUBCLASS, DFU_PROTOCOL_DFU_MODE = 0xFE, 0x01, 0x02


class DfuRequest(IntEnum):
    DETACH = 0
    DNLOAD = 1
    UPLOAD = 2
    GETSTATUS = 3
    CLRSTATUS = 4
    GETSTATE = 5
    ABORT = 6


class DfuState(IntEnum):
    APP_IDLE = 0
    APP_DETACH = 1
    DFU_IDLE = 2
    DFU_DNLOAD_SYNC = 3
    DFU_DNBUSY = 4
    DFU_DNLOAD_IDLE = 5
    DFU_MANIFEST_SYNC = 6
    DFU_MANIFEST = 7
    DFU_MANIFEST_WAIT_RESET = 8
    DFU_UPLOAD_IDLE = 9
    DFU_ERROR = 10


class DfuStatus(IntEnum):
    OK = 0
    ERR_TARGET = 1
    ERR_FILE = 2
    ERR_WRITE = 3
    ERR_ERASE = 4
    ERR_CHECK_ERASED = 5
    ERR_PROG = 6
    ERR_VERIFY = 7
    ERR_ADDRESS = 8
    ERR_NOTDONE = 9
    ERR_FIRMWARE = 10
    ERR_VENDOR = 11
    ERR_USBR = 12
    ERR_POR = 13
    ERR_UNKNOWN = 14
    ERR_STALLEDPKT = 15


@dataclass(frozen=True, slots=True)
class StatusReply:
    """DFU_GETSTATUS: ``bStatus · bwPollTimeout (3 bytes, ms) · bState · iString``."""

    status: int
    poll_timeout_ms: int
    state: int

    def encode(self) -> bytes:
        poll = min(self.poll_timeout_ms, 0xFFFFFF)
        return bytes([self.status]) + poll.to_bytes(3, "little") + bytes([self.state, 0])

    @classmethod
    def decode(cls, data: bytes) -> StatusReply:
        if len(data) < 6:
            raise ValueError(f"DFU_GETSTATUS returned {len(data)} bytes, expected 6")
        return cls(data[0], int.from_bytes(data[1:4], "little"), data[4])


def functional_descriptor(transfer_size: int = TRANSFER_SIZE) -> bytes:
    """The DFU functional descriptor Particle's bootloaders send (9 bytes)."""
    attributes = 0x01 | 0x02 | 0x08  # canDnload, canUpload, willDetach; not manifestation tolerant
    return struct.pack(
        "<BBBHHH", 9, DFU_FUNCTIONAL_DESCRIPTOR, attributes, 255, transfer_size, 0x011A
    )


def parse_functional_descriptor(extra: bytes) -> int | None:
    """wTransferSize from an interface's extra descriptors, ``None`` if there is none."""
    pos = 0
    while pos + 2 <= len(extra):
        length, kind = extra[pos], extra[pos + 1]
        if length < 2:
            return None
        if kind == DFU_FUNCTIONAL_DESCRIPTOR and length >= 7:
            return int(struct.unpack_from("<H", extra, pos + 5)[0])
        pos += length
    return None
