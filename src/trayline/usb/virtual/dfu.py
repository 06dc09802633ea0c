"""The device side of DfuSe: what a Particle bootloader in DFU mode answers.

Alt settings and memory strings are those of spec §2.5 (Gen 3: internal
flash, DCT, external flash; Electron: internal flash, DCT). The state machine
follows DFU 1.1 with ST's DfuSe commands:

* DNLOAD with ``wValue`` 0 carries a command: 0x21 set address pointer,
  0x41 erase the page at an address (refused on a sector whose letter has no
  erase bit);
* DNLOAD with ``wValue`` ≥ 2 writes a block at
  ``pointer + (wValue − 2) × 4096`` (refused — errADDRESS — outside the map
  or on a read-only sector: the MBR, the Gen 3 bootloader's top 32 KB, the
  Electron bootloader sectors);
* the work happens at the first GETSTATUS after a DNLOAD, which answers
  dfuDNBUSY with ``bwPollTimeout`` = the device time it takes (erase: the
  chip's page time; write: 41 µs per word on the nRF52840), scaled; GETSTATUS
  keeps answering dfuDNBUSY until that real time has passed;
* a zero-length DNLOAD manifests: the next GETSTATUS answers dfuMANIFEST and
  the device leaves DFU and resets (``:leave``);
* UPLOAD reads from dfuIDLE / dfuUPLOAD_IDLE; ABORT returns to dfuIDLE;
  CLRSTATUS clears an error.

Internal-flash writes go through the simulated device's ``erase``/``write``
(NOR rules and faults apply); alt 1 is the DCT bytes; alt 2 (external flash)
is kept in memory for the session only.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections.abc import Callable

from trayline.usb.dfu_memory import MemoryLayout, MemoryStringError, parse_memory_string
from trayline.usb.dfu_protocol import (
    CMD_ERASE,
    CMD_SET_ADDRESS,
    TRANSFER_SIZE,
    DfuRequest,
    DfuState,
    DfuStatus,
    StatusReply,
)
from trayline.usb.virtual.channel import Stall
from trayline.usb.virtual.target import UsbTarget
from trayline.virtual.timing import CHIPS

__all__ = ["DfuTarget", "memory_strings"]

_WORD_WRITE_S = {"nRF52840": 41e-6, "STM32F205RG": 16e-6}
"""Program time per 32-bit word: nRF52840 41 µs (spec §10.4); STM32F205 16 µs (datasheet
typical, UNCONFIRMED in the spec)."""
_TRANSFER_OVERHEAD_S = 0.001
"""One 4 KB control transfer on full-speed USB (64-byte packets): about 1 ms."""
_EIGHT_MB = frozenset({15, 25, 26})

GEN3_INTERNAL = "@Internal Flash /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka"
GEN3_DCT = "@DCT Flash /0x00000000/1*016Ke"
ELECTRON_INTERNAL = "@Internal Flash /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg"
ELECTRON_DCT = "@DCT Flash /0x00000000/01*016Kg"


def memory_strings(platform_id: int, *, gen3: bool, protected: bool = False) -> list[str]:
    """The interface strings of alt 0, 1 (and 2 on Gen 3), as the bootloader reports them."""
    if not gen3:
        return [ELECTRON_INTERNAL, ELECTRON_DCT]
    pages = 2048 if platform_id in _EIGHT_MB else 1024
    strings = [GEN3_INTERNAL, GEN3_DCT, f"@External Flash /0x80000000/{pages}*004Kg"]
    if protected:  # Device Protection: every region erase-only, not readable
        strings = [s[: s.rindex("/") + 1] + _all_b(s[s.rindex("/") + 1 :]) for s in strings]
    return strings


def _all_b(segments: str) -> str:
    return ",".join(seg[:-1] + "b" for seg in segments.split(","))


class DfuTarget:
    """DfuSe state machine for one device; ``on_leave`` is called after manifestation."""

    def __init__(
        self,
        target: UsbTarget,
        *,
        scale: float,
        on_leave: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.scale = scale
        self._on_leave = on_leave
        self._clock = clock
        strings = memory_strings(
            target.platform_id, gen3=target.is_gen3, protected=target.faults.protected
        )
        self.strings = strings
        self.layouts: list[MemoryLayout] = [parse_memory_string(s) for s in strings]
        self.alt = 0
        self.state = DfuState.DFU_IDLE
        self.status = DfuStatus.OK
        self.pointer = 0
        self._pending: Callable[[], float] | None = None
        self._busy_until = 0.0
        self._manifest = False
        self._external: dict[int, int] = {}
        self.device_seconds = 0.0
        self._lock = threading.Lock()
        mcu = "nRF52840" if target.is_gen3 else "STM32F205RG"
        self._chip = CHIPS[mcu]
        self._word_s = _WORD_WRITE_S[mcu]

    def select_alt(self, alt: int) -> None:
        if not 0 <= alt < len(self.layouts):
            raise Stall(f"no alt setting {alt}")
        with self._lock:
            self.alt = alt
            self.state = DfuState.DFU_IDLE

    # -- dispatch -------------------------------------------------------------------

    def handle_out(self, request: int, value: int, data: bytes) -> None:
        with self._lock:
            if request == DfuRequest.DNLOAD:
                self._dnload(value, data)
            elif request == DfuRequest.CLRSTATUS:
                self.status, self.state = DfuStatus.OK, DfuState.DFU_IDLE
            elif request == DfuRequest.ABORT:
                self._pending, self.state = None, DfuState.DFU_IDLE
            elif request == DfuRequest.DETACH:
                pass
            else:
                raise Stall(f"DFU OUT request {request} not supported")

    def handle_in(self, request: int, value: int, length: int) -> bytes:
        leave = False
        with self._lock:
            if request == DfuRequest.GETSTATUS:
                reply, leave = self._getstatus()
            elif request == DfuRequest.GETSTATE:
                reply = bytes([self.state])
            elif request == DfuRequest.UPLOAD:
                reply = self._upload(value, length)
            else:
                raise Stall(f"DFU IN request {request} not supported")
        if leave:
            self._on_leave()
        return reply

    # -- requests (lock held) -------------------------------------------------------------

    def _error(self, status: DfuStatus) -> None:
        self.status, self.state, self._pending = status, DfuState.DFU_ERROR, None

    def _dnload(self, value: int, data: bytes) -> None:
        if self.state not in (DfuState.DFU_IDLE, DfuState.DFU_DNLOAD_IDLE):
            self._error(DfuStatus.ERR_STALLEDPKT)
            raise Stall("DNLOAD outside dfuIDLE/dfuDNLOAD_IDLE")
        if not data:
            self._manifest = True
            self.state = DfuState.DFU_MANIFEST_SYNC
            return
        if value == 0:
            self._command(data)
        elif value >= 2:
            address = self.pointer + (value - 2) * TRANSFER_SIZE
            self._pending = lambda: self._write(address, data)
        else:
            self._error(DfuStatus.ERR_STALLEDPKT)
            return
        self.state = DfuState.DFU_DNLOAD_SYNC

    def _command(self, data: bytes) -> None:
        if len(data) == 5 and data[0] == CMD_SET_ADDRESS:
            address = struct.unpack_from("<I", data, 1)[0]
            self._pending = lambda: self._set_pointer(address)
        elif len(data) == 5 and data[0] == CMD_ERASE:
            address = struct.unpack_from("<I", data, 1)[0]
            self._pending = lambda: self._erase(address)
        else:
            self._pending = lambda: self._fail(DfuStatus.ERR_TARGET)

    def _getstatus(self) -> tuple[bytes, bool]:
        now = self._clock()
        if self._manifest and self.state == DfuState.DFU_MANIFEST_SYNC:
            self._manifest = False
            self.state = DfuState.DFU_MANIFEST
            return StatusReply(DfuStatus.OK, 0, DfuState.DFU_MANIFEST).encode(), True
        if self._pending is not None:
            action, self._pending = self._pending, None
            seconds = action()
            if self.state == DfuState.DFU_ERROR:
                return StatusReply(self.status, 0, self.state).encode(), False
            self.device_seconds += seconds
            self._busy_until = now + seconds * self.scale
            self.state = DfuState.DFU_DNBUSY
        if self.state == DfuState.DFU_DNBUSY:
            remaining = self._busy_until - now
            if remaining > 0:
                poll = max(1, math.ceil(remaining * 1000))
                return StatusReply(DfuStatus.OK, poll, DfuState.DFU_DNBUSY).encode(), False
            self.state = DfuState.DFU_DNLOAD_IDLE
        return StatusReply(self.status, 0, self.state).encode(), False

    def _fail(self, status: DfuStatus) -> float:
        self._error(status)
        return 0.0

    def _set_pointer(self, address: int) -> float:
        self.pointer = address
        return 0.0

    def _sectors(self, address: int, length: int) -> list[tuple[int, int, int]] | None:
        try:
            found = self.layouts[self.alt].covering(address, length)
        except MemoryStringError:
            return None
        return [(s.start, s.size, s.access) for s in found]

    def _erase(self, address: int) -> float:
        sectors = self._sectors(address, 1)
        if not sectors or not sectors[0][2] & 2:
            return self._fail(DfuStatus.ERR_ADDRESS)
        start, size, _ = sectors[0]
        if self.alt == 0:
            units = self.target.erase(start, start + size)
            return self._chip.erase_seconds([end - begin for begin, end in units])
        if self.alt == 1:
            self.target.dct[start : start + size] = b"\xff" * size
        else:
            for offset in range(start, start + size):
                self._external.pop(offset, None)
        return self._chip.erase_seconds([size]) or 0.085

    def _write(self, address: int, data: bytes) -> float:
        sectors = self._sectors(address, len(data))
        if not sectors or any(not access & 4 for _, _, access in sectors):
            return self._fail(DfuStatus.ERR_ADDRESS)
        if self.alt == 0:
            self.target.write(address, data)
        elif self.alt == 1:
            dct = self.target.dct
            dct[address : address + len(data)] = bytes(
                a & b for a, b in zip(dct[address:], data, strict=False)
            )
        else:
            for i, byte in enumerate(data):
                self._external[address + i] = self._external.get(address + i, 0xFF) & byte
        return _TRANSFER_OVERHEAD_S + math.ceil(len(data) / 4) * self._word_s

    def _upload(self, value: int, length: int) -> bytes:
        if self.state not in (DfuState.DFU_IDLE, DfuState.DFU_UPLOAD_IDLE) or value < 2:
            self._error(DfuStatus.ERR_STALLEDPKT)
            raise Stall("UPLOAD outside dfuIDLE/dfuUPLOAD_IDLE")
        address = self.pointer + (value - 2) * TRANSFER_SIZE
        sectors = self._sectors(address, length)
        if not sectors or any(not access & 1 for _, _, access in sectors):
            self._error(DfuStatus.ERR_ADDRESS)
            raise Stall(f"UPLOAD from unreadable {address:#010x}")
        self.state = DfuState.DFU_UPLOAD_IDLE
        self.device_seconds += _TRANSFER_OVERHEAD_S
        if self.alt == 0:
            return self.target.read_memory(address, length)
        if self.alt == 1:
            return bytes(self.target.dct[address : address + length])
        return bytes(self._external.get(address + i, 0xFF) for i in range(length))
