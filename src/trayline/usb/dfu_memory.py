"""DfuSe memory strings: which addresses an alt setting covers and what may be done there.

In DFU mode a Particle device exposes one interface with an alternate
setting per memory (spec §2.5): alt 0 internal flash, alt 1 the DCT, alt 2
(Gen 3) external flash. Each alt's interface string describes its layout in
ST's DfuSe notation::

    @Internal Flash /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka
    @DCT Flash /0x00000000/1*016Ke
    @External Flash /0x80000000/1024*004Kg

``name /start/count*size[unit]type,...`` (more ``/start/…`` groups may
follow). ``unit`` is `` `` (bytes), ``K`` or ``M``; ``type`` is a letter whose
low three bits say readable (1), erasable (2), writable (4): ``a`` read-only,
``b`` erase-only (Device Protection), ``e`` read+write without erase (the DCT),
``g`` read+erase+write. Writing to an ``a`` sector is refused here, before
anything is sent: the MBR at 0x0 and the top of the Gen 3 bootloader are
read-only, so the bootloader cannot be flashed over DFU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MemoryLayout", "MemoryStringError", "Sector", "parse_memory_string"]

READABLE, ERASABLE, WRITABLE = 1, 2, 4
_UNITS = {" ": 1, "": 1, "B": 1, "K": 1024, "M": 1024 * 1024}
_SEGMENT = re.compile(r"^\s*(\d+)\s*\*\s*(\d+)\s*([ BKM]?)([a-g])\s*$")


class MemoryStringError(ValueError):
    """A memory string that does not follow the DfuSe notation."""


@dataclass(frozen=True, slots=True)
class Sector:
    """One erase unit: ``[start, start + size)`` with its access bits."""

    start: int
    size: int
    access: int

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def readable(self) -> bool:
        return bool(self.access & READABLE)

    @property
    def erasable(self) -> bool:
        return bool(self.access & ERASABLE)

    @property
    def writable(self) -> bool:
        return bool(self.access & WRITABLE)


@dataclass(frozen=True, slots=True)
class MemoryLayout:
    """A parsed memory string: a name and sectors in address order."""

    name: str
    sectors: tuple[Sector, ...]

    @property
    def start(self) -> int:
        return self.sectors[0].start if self.sectors else 0

    @property
    def end(self) -> int:
        return max((s.end for s in self.sectors), default=0)

    def covering(self, start: int, length: int) -> list[Sector]:
        """Sectors overlapping ``[start, start + length)``; every byte must fall in one."""
        end = start + length
        found = [s for s in self.sectors if s.start < end and start < s.end]
        covered = start
        for sector in found:
            if sector.start > covered:
                break
            covered = max(covered, sector.end)
        if length and covered < end:
            raise MemoryStringError(
                f"{self.name}: {start:#010x}-{end:#010x} is not inside the device's memory map "
                f"({self.start:#010x}-{self.end:#010x})"
            )
        return found

    def check_write(self, start: int, length: int) -> list[Sector]:
        """The sectors a write touches; refuses read-only ones (naming the first)."""
        sectors = self.covering(start, length)
        for sector in sectors:
            if not sector.writable:
                raise MemoryStringError(
                    f"{self.name}: {sector.start:#010x}-{sector.end:#010x} is read-only; "
                    f"cannot write {length} bytes at {start:#010x}"
                )
        return sectors

    def check_read(self, start: int, length: int) -> None:
        for sector in self.covering(start, length):
            if not sector.readable:
                raise MemoryStringError(
                    f"{self.name}: {sector.start:#010x}-{sector.end:#010x} is not readable"
                )


def parse_memory_string(text: str) -> MemoryLayout:
    """Parse ``@Name /0xSTART/N*SSu t,...`` into a :class:`MemoryLayout`."""
    if not text.startswith("@"):
        raise MemoryStringError(f"memory string {text!r} does not start with '@'")
    parts = text[1:].split("/")
    if len(parts) < 3 or len(parts) % 2 == 0:
        raise MemoryStringError(f"memory string {text!r}: expected '@name /start/segments'")
    name = parts[0].strip()
    sectors: list[Sector] = []
    for start_text, segments in zip(parts[1::2], parts[2::2], strict=True):
        try:
            address = int(start_text.strip(), 0)
        except ValueError:
            raise MemoryStringError(f"memory string {text!r}: bad address {start_text!r}") from None
        for segment in segments.split(","):
            match = _SEGMENT.match(segment)
            if not match:
                raise MemoryStringError(f"memory string {text!r}: bad segment {segment!r}")
            count, size, unit, letter = match.groups()
            unit_size = int(size) * _UNITS[unit]
            access = (ord(letter) - ord("a") + 1) & 7
            for _ in range(int(count)):
                sectors.append(Sector(address, unit_size, access))
                address += unit_size
    return MemoryLayout(name, tuple(sectors))
