"""What a unit holds when it leaves Particle's factory: Device OS, Tinker, the UICR.

A fresh virtual device of a Gen 3 SKU holds, like a real one: the bootloader
at 0xF4000, the SoftDevice at 0x1000 (prefix dropped), system-part1 (at
0x30000 up to 6.1.x, 0x28000 from 6.2.0), Tinker as the user part (256 KB slot
at 0xB4000 from 3.1.0, the 128 KB slot at 0xD4000 below), and the restore
image's UICR words. An Electron holds its bootloader, the three system modules
(indices 1, 2, 3 at 0x08020000, 0x08040000, 0x08060000) and Tinker at
0x08080000. Every module's dependencies are satisfied, so the device boots.

Which Device OS: :func:`factory_device_os` picks the lowest release trayline's
version table knows that is at least the SKU's minimum and at least 2.3.1
(the LTS line units shipped with for years); ``--device-os`` overrides it.
The module versions come from :mod:`trayline.core.versions` (system part and
bootloader numbers per release); the SoftDevice is S140 7.0.1 (firmware ID 202)
from Device OS 2.0 on and 6.1.1 (182) before.
"""

from __future__ import annotations

from trayline.core.modules import ModuleFunction as F
from trayline.core.modules import parse_module
from trayline.core.platforms import NRF52840_PLATFORM_IDS
from trayline.core.skus import TRACKER, Sku
from trayline.core.versions import (
    BOOTLOADER_VERSIONS,
    SYSTEM_MODULE_VERSIONS,
    SemVer,
    bootloader_version_for,
    system_module_version_for,
)
from trayline.virtual.device import TESTFW_MARKER, VirtualDevice
from trayline.virtual.modulebuild import ModuleSpec, build_module, softdevice_body

__all__ = [
    "FACTORY_FLOOR",
    "factory_device_os",
    "factory_modules",
    "install_module",
    "ncp_version_for",
    "user_part",
]

FACTORY_FLOOR = SemVer(2, 3, 1)
_SYSTEM_MOVED = SemVer(6, 2, 0)
_USER_256K = SemVer(3, 1, 0)
_SOFTDEVICE_701 = SemVer(2, 0, 0)
_NCP_007 = SemVer(3, 0, 0)
_KB = 1024


def factory_device_os(sku: Sku) -> SemVer:
    """The lowest known release >= max(the SKU's minimum, 2.3.1)."""
    floor = max(sku.min_device_os, FACTORY_FLOOR)
    candidates = sorted(v for v in SYSTEM_MODULE_VERSIONS.values() if v >= floor and not v.pre)
    if not candidates:
        raise ValueError(f"no known Device OS release at or above {floor} for {sku.name}")
    return candidates[0]


def _versions(release: SemVer) -> tuple[int, int]:
    """System and bootloader module versions of ``release``.

    The bootloader table has gaps (5.3.1 ships no new bootloader): then the
    bootloader of the nearest earlier release it knows is used.
    """
    system = system_module_version_for(release)
    if system is None:
        known = ", ".join(str(v) for v in sorted(SYSTEM_MODULE_VERSIONS.values()))
        raise ValueError(
            f"Device OS {release} is not in trayline's version table; known releases: {known}"
        )
    bootloader = bootloader_version_for(release)
    if bootloader is None:
        earlier = [v for v in BOOTLOADER_VERSIONS if v <= release]
        bootloader = BOOTLOADER_VERSIONS[max(earlier)] if earlier else 1
    return system, bootloader


def user_part(
    platform_id: int, release: SemVer, *, test_firmware: bool = False, version: int = 6
) -> bytes:
    """Tinker (or, with ``test_firmware``, a user part carrying ``trayline-testfw``)
    built against ``release``, at the address and index that release expects."""
    system, _ = _versions(release)
    banner = TESTFW_MARKER + b" virtual build\x00" if test_firmware else b"tinker\x00"
    if platform_id in NRF52840_PLATFORM_IDS:
        new = release >= _USER_256K
        start, index = (0xB4000, 2) if new else (0xD4000, 1)
        dep = (int(F.SYSTEM_PART), 1, system)
    else:
        start, index, dep = 0x08080000, 1, (int(F.SYSTEM_PART), 2, system)
    spec = ModuleSpec(
        platform=platform_id,
        function=F.USER_PART,
        index=index,
        version=version,
        start=start,
        body=12 * _KB,
        dep=dep,
        product=(platform_id, 3),
        seed=platform_id * 100 + int(test_firmware),
        payload=banner,
    )
    return build_module(spec)


def _gen3(platform_id: int, release: SemVer) -> list[bytes]:
    system, bootloader = _versions(release)
    sd_version = 202 if release >= _SOFTDEVICE_701 else 182
    sd_size = 0x25000
    system_start = 0x28000 if release >= _SYSTEM_MOVED else 0x30000
    return [
        build_module(
            ModuleSpec(
                platform_id,
                F.BOOTLOADER,
                0,
                bootloader,
                0xF4000,
                body=40 * _KB,
                prefix_offset=0x200,
                seed=1,
            )
        ),
        build_module(
            ModuleSpec(
                platform_id,
                F.RADIO_STACK,
                0,
                sd_version,
                0x1000,
                body=sd_size - 24 - 44 - 0x100,
                flags=0x01,
                dep=(int(F.BOOTLOADER), 0, 501),
                seed=2,
                payload=softdevice_body(0x1000, sd_size, sd_version),
            )
        ),
        build_module(
            ModuleSpec(
                platform_id,
                F.SYSTEM_PART,
                1,
                system,
                system_start,
                body=480 * _KB,
                prefix_offset=0x200,
                dep=(int(F.BOOTLOADER), 0, bootloader),
                dep2=(int(F.RADIO_STACK), 0, sd_version),
                seed=3,
            )
        ),
        user_part(platform_id, release),
    ]


def _electron(release: SemVer) -> list[bytes]:
    system, bootloader = _versions(release)
    s = int(F.SYSTEM_PART)
    return [
        build_module(
            ModuleSpec(
                10,
                F.BOOTLOADER,
                0,
                bootloader,
                0x08000000,
                body=14 * _KB,
                prefix_offset=0x184,
                seed=1,
            )
        ),
        # File "system-part1" = index 3 (no vector table), "part2" = index 1, "part3" = index 2.
        build_module(
            ModuleSpec(
                10, F.SYSTEM_PART, 3, system, 0x08060000, body=100 * _KB, dep=(s, 2, 110), seed=3
            )
        ),
        build_module(
            ModuleSpec(
                10,
                F.SYSTEM_PART,
                1,
                system,
                0x08020000,
                body=120 * _KB,
                prefix_offset=0x184,
                dep=(s, 3, system),
                seed=4,
            )
        ),
        build_module(
            ModuleSpec(
                10,
                F.SYSTEM_PART,
                2,
                system,
                0x08040000,
                body=110 * _KB,
                prefix_offset=0x184,
                dep=(s, 1, system),
                dep2=(int(F.BOOTLOADER), 0, bootloader),
                seed=5,
            )
        ),
        user_part(10, release),
    ]


def factory_modules(platform_id: int, release: SemVer) -> list[bytes]:
    """The module files a unit of ``platform_id`` leaves the factory with, in flashing order."""
    if platform_id in NRF52840_PLATFORM_IDS:
        return _gen3(platform_id, release)
    if platform_id == 10:
        return _electron(release)
    raise ValueError(f"no factory image for platform {platform_id}")


def ncp_version_for(sku: Sku, release: SemVer) -> int | None:
    """Tracker ESP32 NCP module version at the factory: 0.0.7 for 3.0+, 0.0.3 before
    (the older value is **UNCONFIRMED**); ``None`` for SKUs without an NCP."""
    if sku.platform is not TRACKER:
        return None
    return 7 if release >= _NCP_007 else 3


def install_module(device: VirtualDevice, data: bytes) -> int:
    """Erase and write one module file where its prefix says (prefix dropped if flagged).

    Returns the address written. Used to build factory images; programmers
    write through the debug port instead, which adds faults and timing.
    """
    module = parse_module(data)
    image = module.flash_image(data)
    device.erase(module.start_address, module.start_address + len(image))
    device.write(module.start_address, image)
    return module.start_address
