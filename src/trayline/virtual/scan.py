"""What modules a virtual device holds, read from its flash the way Device OS finds them.

A device does not keep a list of its modules: at boot it looks at the known
start address of each module region, reads the prefix there and checks the
module (CRC, addresses, platform, dependencies). The virtual device does the
same with :func:`trayline.core.modules.parse_module`, so a half-written or
bit-flipped module shows up as invalid exactly as on hardware, and an erased
region simply has no module.

Two special cases, both as on real devices:

* the **SoftDevice** (radio stack) is written without its 24-byte prefix
  (DROP_MODULE_INFO), so there is no prefix in flash to read. Device OS reports
  it from the SoftDevice's own info structure: magic ``0x51B1E5DB`` at
  0x3004, size at 0x3008 and firmware ID (the radio-stack module version, e.g.
  182 for S140 6.1.1, 202 for 7.0.1) at 0x300C. :func:`scan_modules` reads
  those words.
* overlapping regions (Gen 3 system part at 0x28000 or 0x30000; user part at
  0xB4000 or the 128 KB compat slot at 0xD4000): a region whose start lies
  inside a valid module found earlier is part of that module, not a module.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from trayline.core.modules import ModuleError, ModuleFunction, parse_module
from trayline.core.platforms import flash_regions
from trayline.virtual.memory import Flash

__all__ = ["SOFTDEVICE_MAGIC", "FlashModule", "scan_modules"]

SOFTDEVICE_MAGIC = 0x51B1E5DB
_SD_INFO = 0x2000  # offset of the SoftDevice info structure from the SoftDevice start
_PREFIX_OFFSETS = (0, 0x200, 0x184)


@dataclass(frozen=True, slots=True)
class FlashModule:
    """One module found in flash.

    ``valid`` is the device's integrity verdict (CRC and, where meaningful,
    SHA-256); ``sha256`` is the module's own stored SHA-256 (``None`` for the
    SoftDevice, which has no suffix the device can read). ``dependencies`` are
    ``(function, index, version)`` triples as the prefix states them.
    """

    function: int
    index: int
    version: int
    address: int
    size: int
    platform_id: int
    valid: bool
    sha256: str | None
    dependencies: tuple[tuple[int, int, int], ...] = ()
    region_size: int = 0


def _softdevice(flash: Flash, start: int, end: int, platform_id: int) -> FlashModule | None:
    info = start + _SD_INFO
    if not flash.geometry.contains(info, 16):
        return None
    magic, size, fwid = struct.unpack("<IIH", flash.read(info + 4, 10))
    if magic != SOFTDEVICE_MAGIC:
        return None
    valid = start < size <= end
    return FlashModule(
        function=ModuleFunction.RADIO_STACK,
        index=0,
        version=fwid,
        address=start,
        size=size - start if valid else 0,
        platform_id=platform_id,
        valid=valid,
        sha256=None,
        region_size=end - start,
    )


def _module_at(flash: Flash, start: int, end: int, function: int) -> FlashModule | None:
    """The module whose prefix says it starts at ``start``, or ``None`` if there is none."""
    for offset in _PREFIX_OFFSETS:
        if not flash.geometry.contains(start + offset, 24):
            continue
        head = flash.read(start + offset, 24)
        m_start, m_end = struct.unpack_from("<II", head)
        m_function = head[14]
        if m_start != start or not start < m_end <= end or m_function != function:
            continue
        data = flash.read(start, m_end - start + 4)
        try:
            module = parse_module(data)
        except ModuleError:
            continue
        if module.start_address != start:
            continue
        return FlashModule(
            function=module.function,
            index=module.index,
            version=module.version,
            address=start,
            size=len(data),
            platform_id=module.platform_id,
            valid=module.integrity_ok,
            sha256=module.sha256,
            dependencies=tuple((d.function, d.index, d.version) for d in module.dependencies),
            region_size=end - start,
        )
    return None


def scan_modules(flash: Flash, platform_id: int) -> list[FlashModule]:
    """Every module in ``flash``, in address order; NCP modules are not in host flash."""
    found: list[FlashModule] = []
    covered: list[tuple[int, int]] = []
    regions = sorted(flash_regions(platform_id), key=lambda r: r.start)
    for region in regions:
        if region.function == ModuleFunction.NCP_FIRMWARE:
            continue
        if not flash.geometry.contains(region.start, 1):
            continue
        if any(lo < region.start < hi for lo, hi in covered):
            continue
        end = min(region.end, flash.geometry.end)
        if region.function == ModuleFunction.RADIO_STACK:
            module = _softdevice(flash, region.start, end, platform_id)
        else:
            module = _module_at(flash, region.start, end, region.function)
        if module is None:
            continue
        found.append(module)
        if module.valid:
            covered.append((module.address, module.address + module.size))
    return found
