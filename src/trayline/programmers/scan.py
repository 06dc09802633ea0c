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

The Gen 3 SoftDevice is the exception: it is written with its prefix dropped
(DROP_MODULE_INFO, spec §2.5), so no prefix sits at 0x1000. Nordic's own info
structure does sit in flash at 0x3000 (size, magic ``0x51B1E5DB`` at 0x3004,
end address at 0x3008, firmware ID at 0x300C — the radio-stack module version,
182 for S140 6.1.1), which is how Device OS reports the radio stack too; with
``softdevice=True`` the scan reads those 16 bytes (in the same batch as the
region heads) and reports the radio stack from them
(:func:`softdevice_from_info`). NCP firmware lives on the ESP32, not in host
flash; backends that can ask the device (USB, the Particle CLI) report it.

Reads cost time on a real probe (one-shot OpenOCD starts a process per read),
so the scan reads once per region for the prefix and once per module found;
``full=False`` reads only the prefix and the 44-byte suffix and trusts the
stored SHA-256 without checking it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trayline.core.modules import PREFIX_SIZE, ModuleError, ModuleFunction, parse_module
from trayline.core.platforms import NRF52840_PLATFORM_IDS, FlashRegion, flash_regions
from trayline.programmers.base import ModuleOnDevice

__all__ = [
    "SOFTDEVICE_INFO",
    "SOFTDEVICE_MAGIC",
    "ReadMany",
    "ReadMemory",
    "prefix_offsets",
    "scan_modules",
    "softdevice_from_info",
]

ReadMemory = Callable[[int, int], bytes]
"""``read_memory(address, length) -> bytes``: a programmer's memory read."""
ReadMany = Callable[[Sequence[tuple[int, int]]], Sequence[bytes]]
"""``read_many([(address, length), …]) -> [bytes, …]``: several reads in one tool run."""

_PREFIX = struct.Struct("<IIBBHHBB")  # start, end, mcu, flags, version, platform, function, index
_SUFFIX_TAIL = 44  # product id, product version, reserved, SHA-256, size, CRC-32
_ELECTRON = 10
_HOST_FLASH_FUNCTIONS = frozenset(
    {ModuleFunction.BOOTLOADER, ModuleFunction.SYSTEM_PART, ModuleFunction.USER_PART}
)

SOFTDEVICE_START = 0x1000
SOFTDEVICE_INFO = 0x3000
"""Nordic's SoftDevice info structure: info size, magic, end address, firmware ID (LE words)."""
SOFTDEVICE_MAGIC = 0x51B1E5DB
_SOFTDEVICE_LIMIT = 0x27000
"""The SoftDevice ends before the Gen 3 system part's lowest start (0x28000, Device OS 6.2+)."""
_SOFTDEVICE_INFO = struct.Struct("<IIIH")
_SOFTDEVICE_READ = (SOFTDEVICE_INFO, 16)


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


def _body_range(found: _Prefix, full: bool) -> tuple[int, int]:
    """What to read to judge the module: all of it, or only the 44-byte suffix."""
    if full:
        return (found.start, found.end - found.start + 4)
    return (found.end - (_SUFFIX_TAIL - 4), _SUFFIX_TAIL)


def _judged(found: _Prefix, data: bytes, full: bool) -> ModuleOnDevice:
    """Judge by CRC-32 and SHA-256 like the device does; ``full=False`` trusts the stored SHA."""
    if not full:
        sha = data[6:38].hex() if len(data) == _SUFFIX_TAIL else None
        return _reported(found, sha256=sha, valid=True)
    try:
        module = parse_module(data)
    except ModuleError:
        return _reported(found, sha256=None, valid=False)
    valid = (
        module.integrity_ok
        and module.start_address == found.start
        and module.end_address == found.end
    )
    return _reported(found, sha256=module.sha256, valid=valid)


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


def softdevice_from_info(info: bytes, platform_id: int) -> ModuleOnDevice | None:
    """The radio stack the 16 bytes read at :data:`SOFTDEVICE_INFO` describe, if any.

    ``None`` when the magic is not there (erased flash, an STM32, a Gen 3 unit
    without a SoftDevice) or the end address is not a plausible SoftDevice end.
    The SoftDevice carries no readable SHA-256 or CRC, so it is reported as
    found, with ``sha256=None``.
    """
    if len(info) < _SOFTDEVICE_INFO.size:
        return None
    _size, magic, end, firmware_id = _SOFTDEVICE_INFO.unpack_from(info)
    if magic != SOFTDEVICE_MAGIC or not SOFTDEVICE_START < end <= _SOFTDEVICE_LIMIT:
        return None
    return ModuleOnDevice(
        function=ModuleFunction.RADIO_STACK,
        index=0,
        version=firmware_id,
        address=SOFTDEVICE_START,
        size=end - SOFTDEVICE_START,
        platform_id=platform_id,
    )


def _first_prefix(platform_id: int, region: FlashRegion, head: bytes) -> _Prefix | None:
    for offset in prefix_offsets(platform_id, region):
        prefix = _prefix_at(head, offset, region)
        if prefix is not None:
            return prefix
    return None


def _covered(prefixes: list[_Prefix], region: FlashRegion) -> bool:
    return any(p.start <= region.start < p.end + 4 for p in prefixes)


def scan_modules(
    read_memory: ReadMemory,
    platform_id: int,
    *,
    full: bool = True,
    read_many: ReadMany | None = None,
    softdevice: bool = False,
) -> list[ModuleOnDevice]:
    """Every module found in the platform's host flash, in address order.

    ``read_memory`` is any programmer's memory read; its errors
    (:class:`~trayline.programmers.base.ProgrammerError`) pass through. An
    unknown platform has no memory map: the result is empty rather than a guess.
    A region that starts inside a module already found (the 128 KB user-part
    slot inside a 256 KB user part, the 6.1.x system-part slot inside a 6.2.0
    system part) is not taken as a module of its own: its bytes are that
    module's code.

    ``read_many(ranges) -> [bytes]``, when the backend has it, reads several
    ranges in one tool run: the scan then costs two runs (all region heads, then
    all module bodies) instead of one per read — what matters when every run
    starts OpenOCD or JLinkExe afresh.

    ``softdevice=True`` also reports a Gen 3 SoftDevice from its info structure
    (:func:`softdevice_from_info`): one more 16-byte read, in the heads' run.
    """
    regions = sorted(
        (r for r in flash_regions(platform_id) if r.function in _HOST_FLASH_FUNCTIONS),
        key=lambda r: r.start,
    )
    extra = [_SOFTDEVICE_READ] if softdevice and platform_id in NRF52840_PLATFORM_IDS else []
    prefixes: list[_Prefix] = []
    if read_many is None:
        for region in regions:
            if _covered(prefixes, region):
                continue
            head = read_memory(region.start, max(prefix_offsets(platform_id, region)) + PREFIX_SIZE)
            if (prefix := _first_prefix(platform_id, region, bytes(head))) is not None:
                prefixes.append(prefix)
        bodies = [read_memory(*_body_range(p, full)) for p in prefixes]
        infos = [read_memory(*at) for at in extra]
    else:
        ranges = [(r.start, max(prefix_offsets(platform_id, r)) + PREFIX_SIZE) for r in regions]
        heads = list(read_many([*ranges, *extra]))
        infos = heads[len(ranges) :]
        for region, head in zip(regions, heads[: len(ranges)], strict=True):
            if _covered(prefixes, region):
                continue
            if (prefix := _first_prefix(platform_id, region, bytes(head))) is not None:
                prefixes.append(prefix)
        bodies = list(read_many([_body_range(p, full) for p in prefixes])) if prefixes else []
    found = [_judged(p, bytes(b), full) for p, b in zip(prefixes, bodies, strict=True)]
    radios = [r for info in infos if (r := softdevice_from_info(bytes(info), platform_id))]
    return sorted([*radios, *found], key=lambda m: m.address)
