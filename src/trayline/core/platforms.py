"""Particle platforms as data: ids, names, MCUs and where each module lives in flash.

Every module binary carries a ``platform_id``; the line needs to turn that
number into a name a person recognises, decide whether a module belongs on a
SKU's hardware, and know where in flash each kind of module is allowed to sit.
Those are facts about silicon and Device OS releases, not logic, so they live
here as tables (the pyOCD habit: a new chip is data, not code).

Sources: ``@particle/device-constants`` 4.2.1 (ids, names, generations — the
table that binary-version-reader scores module prefixes against), and
shared/spec/device-side.md §0, §1.2, §2.1, §2.3, §2.4 (memory maps, UICR).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "GEN3_UICR_WORDS",
    "MODULE_PLATFORM_IDS",
    "NRF52840_PLATFORM_IDS",
    "PLATFORM_INFO",
    "USER_PART_COMPAT_ADDRESS",
    "USER_PART_GEN3_ADDRESS",
    "USER_PART_GEN3_MIN_SYSTEM",
    "FlashRegion",
    "PlatformInfo",
    "erase_range",
    "expected_user_part_address",
    "flash_regions",
    "platform_name",
]


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """One platform id as ``device-constants`` describes it.

    ``generation`` is -1 for ids that are not Particle hardware generations
    (third-party boards, GCC, Linux); the reference parser does not count those
    as known when it scores a candidate prefix.
    """

    id: int
    name: str
    display_name: str
    generation: int
    mcu: str


def _p(pid: int, name: str, display: str, gen: int, mcu: str = "") -> PlatformInfo:
    return PlatformInfo(pid, name, display, gen, mcu)


_NRF = "nRF52840"
_RTL = "RTL872x"

PLATFORM_INFO: dict[int, PlatformInfo] = {
    p.id: p
    for p in (
        _p(0, "core", "Core", 1, "STM32F103"),
        _p(3, "gcc", "GCC", -1),
        _p(6, "photon", "Photon", 2, "STM32F205"),
        _p(8, "p1", "P1", 2, "STM32F205"),
        _p(10, "electron", "Electron / E Series", 2, "STM32F205RG"),
        _p(11, "esp32", "ESP32", -1),
        _p(12, "argon", "Argon", 3, _NRF),
        _p(13, "boron", "Boron", 3, _NRF),
        _p(14, "xenon", "Xenon", 3, _NRF),
        _p(15, "esomx", "E-SoM-X", 3, _NRF),
        _p(22, "asom", "A-SoM", 3, _NRF),
        _p(23, "bsom", "B-SoM", 3, _NRF),
        _p(24, "xsom", "X-SoM", 3, _NRF),
        _p(25, "b5som", "B5-SoM", 3, _NRF),
        _p(26, "tracker", "Tracker SoM / Tracker One / Monitor One", 3, _NRF),
        _p(28, "trackerm", "Tracker-M", 3, _RTL),
        _p(31, "raspi", "Raspberry Pi", -1),
        _p(32, "p2", "Photon 2 / P2", 4, _RTL),
        _p(35, "msom", "M-SoM", 4, _RTL),
        _p(37, "electron2", "Electron 2", 3),
        _p(38, "sulu", "Sulu", 4),
        _p(42, "tachyon", "Tachyon", -1),
        _p(43, "linux", "Linux", -1),
        _p(82, "oak", "Oak", -1),
        _p(88, "duo", "Duo", -1),
        _p(103, "bluz", "Bluz", -1),
    )
}

MODULE_PLATFORM_IDS: frozenset[int] = frozenset(
    p.id for p in PLATFORM_INFO.values() if p.generation > 0
)
"""Platform ids the prefix search counts as *known* (device-constants, generation > 0)."""

NRF52840_PLATFORM_IDS: frozenset[int] = frozenset(
    p.id for p in PLATFORM_INFO.values() if p.mcu == _NRF
)
"""Gen 3 nRF52840 platforms: they share one memory map and one SoftDevice."""


def platform_name(platform_id: int) -> str | None:
    """The device-constants name (``boron``, ``tracker``), or ``None`` for an unknown id."""
    info = PLATFORM_INFO.get(platform_id)
    return info.name if info else None


@dataclass(frozen=True, slots=True)
class FlashRegion:
    """Where modules of one (function, index) may sit: ``start`` inclusive, ``end`` exclusive."""

    name: str
    function: int
    index: int | None
    start: int
    end: int

    def holds(self, start: int, end: int) -> bool:
        return self.start <= start < end <= self.end


# Module function codes, repeated here as plain ints so this table stays pure data
# (trayline.core.modules owns the enum and imports this module, not the other way).
_BOOTLOADER, _SYSTEM, _USER, _NCP, _RADIO = 2, 4, 5, 7, 8

# §2.1: Gen 3 internal flash. The system part moved from 0x30000 (<= 6.1.x) to 0x28000
# (6.2.0+); the user part is 128 KB at 0xD4000 (built for < 3.1.0, index 1) or 256 KB at
# 0xB4000 (built for 3.1.0+, index 2). The NCP module is forwarded to the ESP32, so its
# "address" 0 is not a host flash address.
_GEN3_REGIONS: tuple[FlashRegion, ...] = (
    FlashRegion("SoftDevice (radio stack)", _RADIO, 0, 0x00001000, 0x00027000),
    FlashRegion("system-part1 (<= 6.1.x)", _SYSTEM, 1, 0x00030000, 0x000D4000),
    FlashRegion("system-part1 (6.2.0+)", _SYSTEM, 1, 0x00028000, 0x000B4000),
    FlashRegion("user part, 256 KB (3.1.0+)", _USER, 2, 0x000B4000, 0x000F4000),
    FlashRegion("user part, 128 KB (< 3.1.0)", _USER, 1, 0x000D4000, 0x000F4000),
    FlashRegion("bootloader", _BOOTLOADER, 0, 0x000F4000, 0x00100000),
    FlashRegion("ESP32 NCP (forwarded, not host flash)", _NCP, 0, 0x00000000, 0x00400000),
)

# §2.4: Electron / E Series (STM32F205RG). Module index 1 sits in sector 5, index 2 in
# sector 6, index 3 in sector 7 (the file names say part2, part3, part1: see §1.2).
_ELECTRON_REGIONS: tuple[FlashRegion, ...] = (
    FlashRegion("bootloader", _BOOTLOADER, 0, 0x08000000, 0x08004000),
    FlashRegion("system module index 1 (system-part2 file)", _SYSTEM, 1, 0x08020000, 0x08040000),
    FlashRegion("system module index 2 (system-part3 file)", _SYSTEM, 2, 0x08040000, 0x08060000),
    FlashRegion("system module index 3 (system-part1 file)", _SYSTEM, 3, 0x08060000, 0x08080000),
    FlashRegion("user part", _USER, 1, 0x08080000, 0x080A0000),
)


def flash_regions(platform_id: int) -> tuple[FlashRegion, ...]:
    """Every region a module may occupy on ``platform_id``; empty when trayline has no map."""
    if platform_id in NRF52840_PLATFORM_IDS:
        return _GEN3_REGIONS
    if platform_id == 10:
        return _ELECTRON_REGIONS
    return ()


USER_PART_GEN3_ADDRESS = 0x000B4000
USER_PART_COMPAT_ADDRESS = 0x000D4000
USER_PART_GEN3_MIN_SYSTEM = 3100
"""A Gen 3 user part that needs system module >= 3100 (Device OS 3.1.0) is a 256 KB
image at 0xB4000; one built for an older Device OS is a 128 KB image at 0xD4000."""


def expected_user_part_address(platform_id: int, system_dependency: int) -> int | None:
    """Where a user part that needs system module ``system_dependency`` must start.

    ``None`` when the platform has one fixed user-part address that the caller
    checks against :func:`flash_regions` instead (Electron) or no known map.
    """
    if platform_id in NRF52840_PLATFORM_IDS:
        if system_dependency >= USER_PART_GEN3_MIN_SYSTEM:
            return USER_PART_GEN3_ADDRESS
        return USER_PART_COMPAT_ADDRESS
    if platform_id == 10:
        return 0x08080000
    return None


GEN3_UICR_WORDS: dict[int, int] = {
    0x10001014: 0x000F4000,  # UICR.NRFFW[0]: bootloader start address
    0x10001200: 0x00000012,  # UICR.PSELRESET[0]: reset on P0.18
    0x10001204: 0x00000012,  # UICR.PSELRESET[1]
}
"""The UICR words Particle's Gen 3 restore images carry (§2.3, §5.6). NRFFW[1] (the MBR
parameter page) stays erased: the bootloader writes it on first boot."""


_NRF52840_PAGE = 0x1000
# STM32F205RG internal flash sectors (§2.4): 4 x 16 KB, 1 x 64 KB, 7 x 128 KB from 0x08000000.
_STM32F2_SECTORS: tuple[tuple[int, int], ...] = tuple(
    (0x08000000 + base, 0x08000000 + base + size)
    for base, size in (
        [(i * 0x4000, 0x4000) for i in range(4)]
        + [(0x10000, 0x10000)]
        + [(0x20000 + i * 0x20000, 0x20000) for i in range(7)]
    )
)


def erase_range(platform_id: int, start: int, end: int) -> tuple[int, int] | None:
    """The smallest erasable range that covers ``[start, end)`` on the platform's flash.

    nRF52840 erases 4 KB pages; the STM32F205 erases whole sectors (16, 64 or
    128 KB). ``None`` when the range is not in internal flash (the NCP module)
    or trayline has no map for the platform.
    """
    if platform_id in NRF52840_PLATFORM_IDS:
        if end > 0x00100000 or start < 0x1000:
            return None
        return (start - start % _NRF52840_PAGE, -(-end // _NRF52840_PAGE) * _NRF52840_PAGE)
    if platform_id == 10:
        covering = [s for s in _STM32F2_SECTORS if s[0] < end and start < s[1]]
        if not covering or covering[0][0] > start or covering[-1][1] < end:
            return None
        return (covering[0][0], covering[-1][1])
    return None
