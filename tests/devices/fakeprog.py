"""An in-memory programmer for flashing tests: NOR flash semantics, modules read by scanning.

It is deliberately not :mod:`trayline.virtual` (which has its own tests): a
small double whose every behaviour the test can see, so the flashing service's
decisions are checked in isolation. Writes need an erased page (0xFF), as on
real NOR flash; ``flip_bit_at`` corrupts one byte of the next write after the
programmer's own verify, the way a marginal cell fails after programming.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trayline.core.ids import DeviceId
from trayline.core.platforms import erase_range
from trayline.programmers.base import (
    Capability,
    ModuleOnDevice,
    ProbeInfo,
    Programmer,
    WriteResult,
)
from trayline.programmers.scan import scan_modules

FLASH_SIZE = 0x100000


@dataclass
class FakeProgrammer:
    platform_id: int = 13
    device_id: str = "e00fce68aabbccddeeff0011"
    name: str = "fake"
    flash: bytearray = field(default_factory=lambda: bytearray(b"\xff" * FLASH_SIZE))
    capabilities: frozenset[Capability] = frozenset(
        {
            Capability.READ_DEVICE_ID,
            Capability.READ_MEMORY,
            Capability.READ_MODULES,
            Capability.WRITE_MODULE,
            Capability.VERIFY,
            Capability.RESET,
        }
    )
    corrupt_next_write: str | None = None
    """``"before-verify"`` (the programmer's verify sees it) or ``"after-verify"``."""
    erase_on_reset: int | None = None
    """An address whose page the "bootloader" erases at the next reset (a refused module)."""
    writes: list[tuple[int, int]] = field(default_factory=list)
    resets: int = 0

    probe: ProbeInfo = field(init=False)

    def __post_init__(self) -> None:
        self.probe = ProbeInfo(self.name, self.device_id)

    def read_device_id(self) -> DeviceId:
        return DeviceId.parse(self.device_id)

    def read_memory(self, address: int, length: int) -> bytes:
        return bytes(self.flash[address : address + length])

    def read_modules(self) -> list[ModuleOnDevice]:
        return scan_modules(self.read_memory, self.platform_id)

    def write_module(self, address: int, data: bytes, *, verify: bool = True) -> WriteResult:
        span = erase_range(self.platform_id, address, address + len(data))
        assert span is not None, f"no erasable range at {address:#x}"
        self.flash[span[0] : span[1]] = b"\xff" * (span[1] - span[0])
        self.flash[address : address + len(data)] = data
        self.writes.append((address, len(data)))
        if self.corrupt_next_write == "before-verify":
            self._flip(address + len(data) // 2)
        ok = verify and self.verify(address, data)
        if self.corrupt_next_write == "after-verify":
            self._flip(address + len(data) // 2)
        return WriteResult(address, len(data), 0.0, verified=ok)

    def _flip(self, address: int) -> None:
        self.flash[address] ^= 0x04
        self.corrupt_next_write = None

    def verify(self, address: int, data: bytes) -> bool:
        return self.read_memory(address, len(data)) == data

    def reset(self) -> None:
        self.resets += 1
        if self.erase_on_reset is not None:
            span = erase_range(self.platform_id, self.erase_on_reset, self.erase_on_reset + 1)
            assert span is not None
            self.flash[span[0] : span[1]] = b"\xff" * (span[1] - span[0])
            self.erase_on_reset = None

    def close(self) -> None:
        pass

    def __enter__(self) -> Programmer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
