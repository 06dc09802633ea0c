"""What every probe that reads and writes memory shares: ID, module scan, verify, protection.

OpenOCD, nrfjprog, JLinkExe, STM32CubeProgrammer and pyOCD differ in how they
say "read 8 bytes at 0x10000060" or "write this file at 0x30000", not in what
the station does with the answer. :class:`MemoryProgrammer` holds the shared
part once, on top of four primitives each backend implements
(``_read``, ``_write``, ``_reset``, ``_recover``):

* the device ID is read from the ID register of the slot's MCU
  (:mod:`trayline.programmers.targets`);
* the module list is :func:`~trayline.programmers.scan.scan_modules` over
  ``read_memory`` (one batched run where the backend can), including the Gen 3
  SoftDevice read from its info structure at 0x3000 (its prefix is dropped
  when written, so only that structure tells what radio stack is there);
* ``verify`` reads back and compares (exact bytes, first difference named);
* ``write_module`` refuses addresses outside the MCU's flash before any tool
  runs, writes, then verifies by read-back unless the tool verified already
  (a tool's verify failure is :class:`VerifyFailed` from its own parser);
* a protected chip raises :class:`ProtectedDevice` naming the slot, and is
  recovered (mass erase) only when the slot's :class:`SlotPolicy` says
  ``allow_unlock`` — then the operation is tried once more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, TypeVar, Unpack

from trayline.core.ids import DeviceId
from trayline.programmers.base import (
    Capability,
    ModuleOnDevice,
    ProbeInfo,
    ProgrammerError,
    ProtectedDevice,
    ToolFailed,
    VerifyFailed,
    WriteResult,
)
from trayline.programmers.lifecycle import KeepsWorkdir
from trayline.programmers.opening import OnSlot, SlotArgs
from trayline.programmers.registry import BadBackendOption
from trayline.programmers.scan import scan_modules
from trayline.programmers.targets import Mcu, device_id_from_bytes, mcu_for

__all__ = ["SWD_CAPABILITIES", "MemoryProgrammer"]

SWD_CAPABILITIES = frozenset(
    {
        Capability.READ_DEVICE_ID,
        Capability.READ_MEMORY,
        Capability.READ_MODULES,
        Capability.WRITE_MODULE,
        Capability.VERIFY,
        Capability.RESET,
    }
)

T = TypeVar("T")


class MemoryProgrammer(OnSlot, KeepsWorkdir):
    """Base for backends with raw memory access; subclasses implement the four primitives."""

    name = "memory"
    capabilities: frozenset[Capability] = SWD_CAPABILITIES
    only_family: ClassVar[str | None] = None
    """The one MCU family the tool can program (``nrf52``, ``stm32f2``); ``None`` = both."""
    other_family: ClassVar[str] = ""
    """What opening it for the other family says (a configuration error: exit code 2)."""

    def __init__(self, probe: ProbeInfo, **slot: Unpack[SlotArgs]) -> None:
        super().__init__(probe, **slot)
        self.mcu: Mcu = mcu_for(self.platform_id)
        if self.only_family is not None and self.mcu.family != self.only_family:
            raise BadBackendOption(f"{self.slot}: {self.other_family}")

    # -- primitives a backend implements ---------------------------------------------

    def _read(self, address: int, length: int) -> bytes:
        raise NotImplementedError

    def _write(self, address: int, path: Path, data: bytes, verify: bool) -> bool:
        """Write ``data`` (also saved at ``path``); True when the tool itself verified it."""
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def _recover(self) -> None:
        """Mass-erase and unlock the chip (only called when the slot policy allows it)."""
        raise ToolFailed(f"{self.name} cannot recover a protected chip", slot=self.slot)

    def _close(self) -> None:
        """Release the probe (stop a session); one-shot backends have nothing to release."""

    # -- the protocol ---------------------------------------------------------------------

    def _guarded(self, action: Callable[[], T]) -> T:
        """Run ``action``; on a protected chip recover once if the policy allows, else refuse."""
        try:
            return action()
        except ProtectedDevice:
            if not self.policy.allow_unlock:
                raise
        self._recover()
        return action()

    def _check_length(self, address: int, length: int, data: bytes) -> bytes:
        """``data`` if it is as long as the read asked for; a short read is never passed on."""
        if len(data) != length:
            raise ToolFailed(
                f"{self.name} returned {len(data)} bytes for a {length}-byte read at "
                f"{address:#010x}",
                slot=self.slot,
            )
        return data

    def read_memory(self, address: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return self._check_length(
            address, length, self._guarded(lambda: self._read(address, length))
        )

    def read_device_id(self) -> DeviceId:
        raw = self.read_memory(self.mcu.id_address, self.mcu.id_length)
        try:
            return device_id_from_bytes(self.mcu, raw)
        except ValueError as exc:
            raise ToolFailed(
                f"device ID register at {self.mcu.id_address:#x}: {exc}", slot=self.slot
            ) from exc

    def _read_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Several reads; backends that can batch them into one tool run override this."""
        return [self._read(address, length) for address, length in ranges]

    def read_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Read several ranges (one tool run where the backend can), lengths checked."""
        if not ranges:
            return []
        found = self._guarded(lambda: self._read_many(ranges))
        return [
            self._check_length(address, length, data)
            for (address, length), data in zip(ranges, found, strict=True)
        ]

    def read_modules(self) -> list[ModuleOnDevice]:
        """Modules found by their prefixes, plus a Gen 3 SoftDevice from its info structure."""
        return scan_modules(
            self.read_memory, self.platform_id, read_many=self.read_many, softdevice=True
        )

    def verify(self, address: int, data: bytes) -> bool:
        return self.read_memory(address, len(data)) == bytes(data)

    def _check_range(self, address: int, length: int) -> None:
        base, size = self.mcu.flash_base, self.mcu.flash_size
        if not (base <= address and address + length <= base + size) or length == 0:
            raise ProgrammerError(
                f"refusing to write {length} bytes at {address:#010x}: outside internal flash "
                f"{base:#010x}-{base + size:#010x} of the {self.mcu.family}",
                slot=self.slot,
            )

    def write_module(self, address: int, data: bytes, *, verify: bool = True) -> WriteResult:
        self._check_range(address, len(data))
        path = self.workdir() / f"module-{address:08x}.bin"
        path.write_bytes(data)
        started = time.monotonic()
        tool_verified = self._guarded(lambda: self._write(address, path, data, verify))
        if verify and not tool_verified:
            self._verify_or_raise(address, data)
        return WriteResult(
            address=address,
            bytes_written=len(data),
            seconds=time.monotonic() - started,
            verified=verify,
            detail=f"{self.name} {self.probe.probe_id}".strip(),
        )

    def _verify_or_raise(self, address: int, data: bytes) -> None:
        back = self.read_memory(address, len(data))
        if back == bytes(data):
            return
        first = next(i for i, (a, b) in enumerate(zip(back, data, strict=True)) if a != b)
        raise VerifyFailed(
            f"read-back differs at {address + first:#010x} (wrote {data[first]:#04x}, "
            f"read {back[first]:#04x}): the unit is not flashed",
            slot=self.slot,
        )

    def reset(self) -> None:
        self._reset()

    def close(self) -> None:
        try:
            self._close()
        finally:
            super().close()
