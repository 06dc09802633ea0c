"""Find the modules on a device by reading its flash, the way Device OS itself does.

A probe that can read memory (OpenOCD, nrfjprog, JLinkExe, pyOCD, a virtual
device) sees only bytes; it has no ``GetModuleInfo`` to ask. The modules are
still findable, because each kind of module sits at a fixed address
(:func:`trayline.core.platforms.flash_regions`) with its 24-byte prefix at a
fixed offset from that address (spec §1.2): 0x200 after the nRF52840 vector
table for the Gen 3 bootloader and system part, 0 for a user part, 0x184 after
the STM32F2 vector/boot table for the Electron bootloader and system modules
index 1 and 2, 0 for Electron system module index 3 and the user part.

So :func:`scan_modules` reads the first bytes of every region, accepts a prefix
only if it points back at that region (its start address *is* the region's
start, its end lies inside the region, its function is the region's), and then
reads the whole module up to its end address plus the CRC to check the CRC-32
and SHA-256 (:mod:`trayline.core.modules`). Erased flash (all 0xFF) and stale
or random bytes fail the first test; a half-written module passes it and fails
the integrity check, and is reported with ``valid=False`` so the planner
rewrites it rather than skipping it.

What it cannot see: the SoftDevice is written with its prefix dropped
(DROP_MODULE_INFO, spec §2.5), so no prefix sits at 0x1000 and the radio stack
is not reported by a memory scan; NCP firmware lives on the ESP32, not in host
flash. Backends that can ask the device (USB, the Particle CLI) report those.

Reads cost time on a real probe (one-shot OpenOCD starts a process per read),
so the scan reads once per region for the prefix and once per module found;
``full=False`` reads only the prefix and the 44-byte suffix and trusts the
stored SHA-256 without checking it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from trayline.core.modules import PREFIX_SIZE, ModuleError, ModuleFunction, parse_module
from trayline.core.platforms import NRF52840_PLATFORM_IDS, FlashRegion, flash_regions
from trayline.programmers.base import ModuleOnDevice

__all__ = ["ReadMemory", "prefix_offsets", "scan_modules"]

ReadMemory = Callable[[int, int], bytes]
"""``read_memory(address, length) -> bytes``: a programmer's memory read."""

_PREFIX = struct.Struct("<IIBBHHBB")  # start, end, mcu, flags, version, platform, function, index
_SUFFIX_TAIL = 44  # product id, product version, reserved, SHA-256, size, CRC-32
_ELECTRON = 10
_HOST_FLASH_FUNCTIONS = frozenset(
    {ModuleFunction.BOOTLOADER, ModuleFunction.SYSTEM_PART, ModuleFunction.USER_PART}
)


def prefix_offsets(platform_id: int, region: FlashRegion) -> tuple[int, ...]:
    """Where the prefix sits after ``region.start`` (spec §1.2), most likely first.

    Electron system module index 3 (file ``system-part1``) has no vector table,
    so its prefix is at 0; indices 1 and 2 and the bootloader carry a 0x184-byte
    table first. On Gen 3 the bootloader and system part carry the 512-byte
    nRF52840 vector table; user parts never have one.
    """
    if region.function == ModuleFunction.USER_PART:
        return (0,)
    if platform_id == _ELECTRON:
        return (0,) if region.index == 3 else (0x184,)
    if platform_id in NRF52840_PLATFORM_IDS:
        return (0x200,)
    return (0, 0x200, 0x184)


@dataclass(frozen=True, slots=True)
class _Prefix:
    start: int
    end: int
    version: int
    platform_id: int
    function: int
    index: int


def _prefix_at(head: bytes, offset: int, region: FlashRegion) -> _Prefix | None:
    """The prefix at ``offset`` if it belongs to ``region``; ``None`` for erased/foreign bytes."""
    if offset + PREFIX_SIZE > len(head):
        return None
    start, end, _mcu, _flags, version, platform, function, index = _PREFIX.unpack_from(head, offset)
    if start != region.start or not region.start < end <= region.end - 4:
        return None
    if function != region.function:
        return None
    if region.index is not None and index != region.index:
        return None
    if end - start < offset + PREFIX_SIZE + _SUFFIX_TAIL - 4:
        return None
    return _Prefix(start, end, version, platform, function, index)


def _checked(read_memory: ReadMemory, found: _Prefix) -> ModuleOnDevice:
    """Read the whole module and judge it by its CRC-32 (and SHA-256) like the device does."""
    size = found.end - found.start + 4
    data = read_memory(found.start, size)
    try:
        module = parse_module(bytes(data))
    except ModuleError:
        return _reported(found, sha256=None, valid=False)
    valid = (
        module.integrity_ok
        and module.start_address == found.start
        and module.end_address == found.end
    )
    return _reported(found, sha256=module.sha256, valid=valid)


def _trusted(read_memory: ReadMemory, found: _Prefix) -> ModuleOnDevice:
    """Read only the suffix: the stored SHA-256, not checked (``full=False``)."""
    tail = read_memory(found.end - (_SUFFIX_TAIL - 4), _SUFFIX_TAIL)
    sha = bytes(tail[6:38]).hex() if len(tail) == _SUFFIX_TAIL else None
    return _reported(found, sha256=sha, valid=True)


def _reported(found: _Prefix, *, sha256: str | None, valid: bool) -> ModuleOnDevice:
    return ModuleOnDevice(
        function=found.function,
        index=found.index,
        version=found.version,
        address=found.start,
        size=found.end - found.start + 4,
        platform_id=found.platform_id,
        sha256=sha256,
        valid=valid,
    )


def scan_modules(
    read_memory: ReadMemory, platform_id: int, *, full: bool = True
) -> list[ModuleOnDevice]:
    """Every module found in the platform's host flash, in address order.

    ``read_memory`` is any programmer's memory read; its errors
    (:class:`~trayline.programmers.base.ProgrammerError`) pass through. An
    unknown platform has no memory map: the result is empty rather than a guess.
    A region that starts inside a module already found (the 128 KB user-part
    slot inside a 256 KB user part, the 6.1.x system-part slot inside a 6.2.0
    system part) is not read: its bytes are that module's code.
    """
    regions = sorted(
        (r for r in flash_regions(platform_id) if r.function in _HOST_FLASH_FUNCTIONS),
        key=lambda r: r.start,
    )
    found: list[ModuleOnDevice] = []
    for region in regions:
        if any(m.address <= region.start < m.address + m.size for m in found):
            continue
        offsets = prefix_offsets(platform_id, region)
        head = read_memory(region.start, max(offsets) + PREFIX_SIZE)
        for offset in offsets:
            prefix = _prefix_at(bytes(head), offset, region)
            if prefix is None:
                continue
            found.append(_checked(read_memory, prefix) if full else _trusted(read_memory, prefix))
            break
    return found
