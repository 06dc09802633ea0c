"""Internal flash as NOR flash behaves: erased is 0xFF, a write can only clear bits.

A programmer that forgets to erase, writes past the end, or writes a page
twice must get exactly what real silicon gives it, or the virtual line would
pass firmware that bricks real units. So :class:`Flash` keeps the bytes of the
MCU's internal flash at their real addresses and follows the two rules of NOR
flash:

* erase works on whole pages (nRF52840: 4 KB) or sectors (STM32F205: 16, 64 or
  128 KB) and sets every bit to 1;
* a write ANDs the new bytes into what is there: it can turn 1s into 0s, never
  0s into 1s. Writing over unerased data silently stores ``old & new`` (the
  NVMC does not complain either) — only a read-back verify catches it.

Writes and erases that reach outside the flash are refused before anything
changes, as the flash controller does.

The page and sector layout comes from :func:`trayline.core.platforms.erase_range`
(the chip facts live in ``core``); this module only asks it where each erase
unit begins and ends.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from trayline.core.platforms import NRF52840_PLATFORM_IDS, erase_range
from trayline.virtual.errors import FlashRangeError

__all__ = ["ERASED", "Flash", "FlashGeometry", "geometry_for"]

ERASED = 0xFF
_NRF_PAGE = 0x1000


@dataclass(frozen=True, slots=True)
class FlashGeometry:
    """Where the internal flash sits and how it is cut into erase units.

    ``sectors`` are ``(start, end)`` pairs, end exclusive, covering
    ``[base, base + size)`` without gaps, in address order.
    """

    mcu: str
    base: int
    size: int
    sectors: tuple[tuple[int, int], ...]

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, address: int, length: int) -> bool:
        return self.base <= address and address + length <= self.end and length >= 0

    def sectors_covering(self, start: int, end: int) -> list[tuple[int, int]]:
        """Every erase unit that overlaps ``[start, end)``."""
        return [s for s in self.sectors if s[0] < end and start < s[1]]


def _probe_sectors(
    platform_id: int, base: int, size: int, step: int
) -> tuple[tuple[int, int], ...]:
    """Ask core's ``erase_range`` for the erase unit at each ``step``; fill gaps with ``step``.

    nRF52840's page 0 (the MBR) is not erasable through ``erase_range`` (a
    programmer never writes it); the flash itself still has a 4 KB page there.
    """
    sectors: list[tuple[int, int]] = []
    address = base
    while address < base + size:
        unit = erase_range(platform_id, address, address + 1)
        start, end = unit if unit else (address, address + step)
        sectors.append((start, end))
        address = end
    return tuple(sectors)


_STM32_STEP = 0x4000


@functools.cache
def geometry_for(platform_id: int) -> FlashGeometry:
    """The internal-flash geometry of a platform (nRF52840 Gen 3 or the Electron's STM32F205)."""
    if platform_id in NRF52840_PLATFORM_IDS:
        return FlashGeometry(
            "nRF52840", 0, 0x100000, _probe_sectors(platform_id, 0, 0x100000, _NRF_PAGE)
        )
    if platform_id == 10:
        base = 0x08000000
        return FlashGeometry(
            "STM32F205RG", base, 0x100000, _probe_sectors(platform_id, base, 0x100000, _STM32_STEP)
        )
    raise ValueError(f"no virtual device for platform {platform_id}: trayline has no memory map")


class Flash:
    """The bytes of one device's internal flash, with NOR-flash erase and write rules."""

    def __init__(self, geometry: FlashGeometry, data: bytes | bytearray | None = None) -> None:
        self.geometry = geometry
        if data is None:
            self._data = bytearray([ERASED]) * geometry.size
        elif len(data) != geometry.size:
            raise ValueError(
                f"flash image is {len(data)} bytes, the {geometry.mcu} has {geometry.size}"
            )
        else:
            self._data = bytearray(data)

    def image(self) -> bytes:
        """The whole flash, from the base address (what is saved to the tray's image file)."""
        return bytes(self._data)

    def _offset(self, address: int, length: int, what: str) -> int:
        if length < 0 or not self.geometry.contains(address, length):
            raise FlashRangeError(
                f"{what} of {length} bytes at {address:#010x} is outside the internal flash "
                f"({self.geometry.base:#010x}-{self.geometry.end:#010x})"
            )
        return address - self.geometry.base

    def read(self, address: int, length: int) -> bytes:
        offset = self._offset(address, length, "read")
        return bytes(self._data[offset : offset + length])

    def erase(self, start: int, end: int) -> list[tuple[int, int]]:
        """Erase every page/sector that overlaps ``[start, end)``; returns the units erased.

        Like the real controller the unit is erased whole, so bytes outside
        ``[start, end)`` but inside a touched sector are lost too.
        """
        self._offset(start, end - start, "erase")
        units = self.geometry.sectors_covering(start, end)
        for unit_start, unit_end in units:
            lo, hi = unit_start - self.geometry.base, unit_end - self.geometry.base
            self._data[lo:hi] = bytes([ERASED]) * (hi - lo)
        return units

    def mass_erase(self) -> None:
        self._data[:] = bytes([ERASED]) * self.geometry.size

    def write(self, address: int, data: bytes) -> int:
        """Program ``data`` at ``address``; returns how many bits could not be set to 1.

        A non-zero result means the area was not erased first: the flash now
        holds ``old & new`` there, exactly as on hardware.
        """
        offset = self._offset(address, len(data), "write")
        old = self._data[offset : offset + len(data)]
        old_int = int.from_bytes(old, "little")
        new_int = int.from_bytes(data, "little")
        stored = old_int & new_int
        self._data[offset : offset + len(data)] = stored.to_bytes(len(data), "little")
        return (new_int & ~old_int).bit_count()

    def flip_bit(self, address: int, bit: int) -> None:
        """Invert one bit in place: a weak cell, for the ``flip_bit_on_write`` fault."""
        offset = self._offset(address, 1, "write")
        self._data[offset] ^= 1 << bit

    def is_erased(self, address: int, length: int) -> bool:
        offset = self._offset(address, length, "read")
        return self._data[offset : offset + length].count(ERASED) == length
