"""The checks a bundle must pass before any unit is flashed, and the order to flash it in.

A wrong image written to ten thousand units is the most expensive mistake a
line can make, and every way to make it is visible in the module prefixes
before the first unit: a module built for another platform, a user part that
needs a newer Device OS than the bundle carries, a Device OS older than the
SKU supports (the X SKUs' SARA-R510S modem needs 4.0.1), a user part at the
address of the wrong Device OS generation (0xD4000 vs 0xB4000), a damaged
file. :func:`check_bundle` finds all of them at once and says which file and
why; it is pure, so the CLI, the web UI and the station all get the same
verdict from the same function.

Ordering (:func:`flash_order`): bootloader, radio stack, then system parts in
dependency order, then the user part, then the NCP (which Device OS forwards to
the ESP32, so it needs a running system). Dependencies express what must be
*installed* for a module to run, not what must be written first, so they only
order the system parts among themselves. The Electron's system parts depend on
each other in a cycle (index 3 needs index 2 >= 110, the 0.6.4 floor); the
lowest-version edge of a cycle is treated as already met, which gives the
documented order index 3 -> 1 -> 2 (file names part1, part2, part3).
Facts: shared/spec/device-side.md §1.2, §1.4, §1.7, §2.1, §6.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from trayline.core.modules import ModuleFunction
from trayline.core.platforms import (
    NRF52840_PLATFORM_IDS,
    expected_user_part_address,
    flash_regions,
    platform_name,
)
from trayline.core.skus import Sku
from trayline.core.versions import (
    SemVer,
    bootloader_version_for,
    device_os_for_system_module,
    device_os_line,
    system_module_at_least,
    system_module_version_for,
)
from trayline.firmware.hexfile import Placement

__all__ = [
    "Baseline",
    "BaselineError",
    "CheckResult",
    "baseline_for",
    "check_bundle",
    "flash_order",
]

_GROUP: dict[int, int] = {
    ModuleFunction.BOOTLOADER: 0,
    ModuleFunction.RADIO_STACK: 1,
    ModuleFunction.SYSTEM_PART: 2,
    ModuleFunction.USER_PART: 3,
    ModuleFunction.NCP_FIRMWARE: 4,
}
_ALLOWED = frozenset(_GROUP)
_S140_7_0_1 = 202
_TRACKER_NCP_0_0_7 = 7


class BaselineError(ValueError):
    """A declared baseline Device OS trayline cannot turn into module versions."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """Modules the units already carry when they reach the station (from the factory or a
    previous step), as ``(function, index) -> module_version``."""

    device_os: SemVer
    modules: dict[tuple[int, int], int]


def baseline_for(platform_id: int, device_os: SemVer) -> Baseline:
    """What a unit on ``device_os`` has installed: its system parts and bootloader, and on
    Gen 3 the S140 7.0.1 SoftDevice (2.0.0+); on Tracker the ESP32 NCP 0.0.7 (3.0.0+, §6)."""
    system = system_module_version_for(device_os)
    if system is None:
        raise BaselineError(
            f"trayline does not know the module version of Device OS {device_os}; "
            "use a release from the table in trayline.core.versions (e.g. 4.0.1, 5.8.0, 6.1.1)"
        )
    indexes = (1, 2, 3) if platform_id == 10 else (1,)
    modules = {(int(ModuleFunction.SYSTEM_PART), i): system for i in indexes}
    bootloader = bootloader_version_for(device_os)
    if bootloader is not None:
        modules[(int(ModuleFunction.BOOTLOADER), 0)] = bootloader
    if platform_id in NRF52840_PLATFORM_IDS and device_os >= SemVer(2, 0, 0):
        modules[(int(ModuleFunction.RADIO_STACK), 0)] = _S140_7_0_1
    if platform_id == 26 and device_os >= SemVer(3, 0, 0):
        modules[(int(ModuleFunction.NCP_FIRMWARE), 0)] = _TRACKER_NCP_0_0_7
    return Baseline(device_os, modules)


@dataclass
class CheckResult:
    """The verdict on a set of modules for a SKU: problems refuse, warnings inform."""

    ordered: list[Placement]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    system_version: int | None = None
    device_os: SemVer | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _system_order(systems: list[Placement]) -> list[Placement]:
    """Topological order of system parts by their dependencies on each other.

    Ties keep the input order by address; a cycle is broken by dropping its
    lowest-version edge (the Electron's 0.6.4 floor), as spec §1.2 prescribes.
    """
    by_key = {p.module.key: p for p in systems}
    edges: set[tuple[tuple[int, int], tuple[int, int], int]] = set()
    for p in systems:
        for dep in p.module.dependencies:
            if dep.key in by_key and dep.key != p.module.key:
                edges.add((dep.key, p.module.key, dep.version))
    remaining = sorted(by_key, key=lambda k: by_key[k].address)
    order: list[tuple[int, int]] = []
    while remaining:
        ready = [k for k in remaining if not any(e[1] == k and e[0] in remaining for e in edges)]
        if not ready:
            live = [e for e in edges if e[0] in remaining and e[1] in remaining]
            edges.discard(min(live, key=lambda e: e[2]))
            continue
        order.append(ready[0])
        remaining.remove(ready[0])
    return [by_key[k] for k in order]


def flash_order(placements: Sequence[Placement]) -> list[Placement]:
    """Bootloader, radio stack, system parts (dependency order), user part, NCP."""
    groups: dict[int, list[Placement]] = {}
    for p in placements:
        groups.setdefault(_GROUP.get(p.module.function, 5), []).append(p)
    ordered: list[Placement] = []
    for rank in sorted(groups):
        members = sorted(groups[rank], key=lambda p: p.address)
        ordered += _system_order(members) if rank == 2 else members
    return ordered


def _describe_system(version: int) -> str:
    known = device_os_for_system_module(version)
    return f"Device OS {known}" if known else f"Device OS {device_os_line(version)}"


def _check_platform(p: Placement, sku: Sku, problems: list[str]) -> None:
    module = p.module
    want = sku.platform.id
    if module.platform_id == want:
        return
    if (
        module.function == ModuleFunction.RADIO_STACK
        and module.platform_id in NRF52840_PLATFORM_IDS
        and want in NRF52840_PLATFORM_IDS
    ):
        return  # §1.7: Particle's Boron restore set uses an Argon-tagged SoftDevice.
    got = platform_name(module.platform_id) or "unknown"
    problems.append(
        f"{p.name}: built for platform {module.platform_id} ({got}), but {sku.name} is "
        f"platform {want} ({sku.platform.name})"
    )


def _check_address(p: Placement, sku: Sku, problems: list[str]) -> None:
    module = p.module
    regions = [
        r
        for r in flash_regions(sku.platform.id)
        if r.function == module.function and r.index in (None, module.index)
    ]
    image_end = module.start_address + len(p.data) - p.skip
    if regions and not any(r.holds(module.start_address, image_end) for r in regions):
        where = ", ".join(f"{r.name} {r.start:#010x}-{r.end:#010x}" for r in regions)
        problems.append(
            f"{p.name}: {module.label()} at {module.start_address:#010x}-{image_end:#010x} "
            f"is outside its flash region on {sku.platform.name} ({where})"
        )
    if module.function != ModuleFunction.USER_PART:
        return
    system = module.system_dependency
    if system is None:
        problems.append(f"{p.name}: user part has no dependency on a system part")
        return
    expected = expected_user_part_address(sku.platform.id, system.version)
    if expected is not None and expected != module.start_address:
        problems.append(
            f"{p.name}: user part at {module.start_address:#010x} needs system part >= "
            f"{system.version} ({_describe_system(system.version)}), which runs user parts at "
            f"{expected:#010x}; rebuild it for the Device OS it targets (0xB4000 for 3.1.0 and "
            "later, 0xD4000 before)"
        )


def _check_overlaps(placements: Sequence[Placement], problems: list[str]) -> None:
    """Two modules that would land on the same bytes: the second write destroys the first.

    Each module fits its own region, yet a 3.1.0+ user part at 0xB4000 sits
    inside the (<= 6.1.x) system-part region, so only the modules' real extents
    can tell whether a large system part and the user part collide.
    """
    spans = sorted(
        (p.address, p.address + len(p.image()), p.name) for p in placements if p.in_host_flash
    )
    for (_, end, name), (start, _, other) in itertools.pairwise(spans):
        if start < end:
            problems.append(
                f"{other}: starts at {start:#010x}, inside {name} (which ends at {end:#010x}); "
                "writing one would destroy the other"
            )


def _check_modules(
    placements: Sequence[Placement], sku: Sku, problems: list[str], warnings: list[str]
) -> None:
    """Integrity, kind, duplicates, platform and address of each module on its own."""
    seen: dict[tuple[int, int], str] = {}
    for p in placements:
        module = p.module
        if not module.crc_ok:
            problems.append(
                f"{p.name}: CRC-32 mismatch (stored {module.stored_crc}, computed "
                f"{module.actual_crc}): the file is damaged or padded"
            )
        elif not module.sha256_ok:
            if module.sha256_authoritative:
                problems.append(f"{p.name}: SHA-256 in the suffix does not match the contents")
            else:
                warnings.append(
                    f"{p.name}: SHA-256 field does not match ({module.function_name} modules "
                    "do not carry the usual digest; the CRC matched)"
                )
        if module.function not in _ALLOWED:
            kind = module.function_name or f"unknown function {module.function}"
            problems.append(f"{p.name}: a {kind} module cannot be part of a flashing bundle")
            continue
        if module.key in seen:
            problems.append(
                f"{p.name}: {module.function_name} {module.index} is already given by "
                f"{seen[module.key]}"
            )
        seen[module.key] = p.name
        _check_platform(p, sku, problems)
        _check_address(p, sku, problems)


def _check_device_os(
    placements: Sequence[Placement],
    sku: Sku,
    baseline: Baseline | None,
    available: dict[tuple[int, int], tuple[int, str]],
    result: CheckResult,
) -> None:
    """The bundle's Device OS (its system part, else the baseline) against the SKU's minimum."""
    problems = result.problems

    systems = [p for p in placements if p.module.function == ModuleFunction.SYSTEM_PART]
    versions = {p.module.version for p in systems}
    if len(versions) > 1:
        problems.append(
            "system parts from different Device OS releases: "
            + ", ".join(f"{p.name} v{p.module.version}" for p in systems)
        )
    if versions:
        result.system_version = max(versions)
        result.device_os = device_os_for_system_module(result.system_version)
    elif baseline is not None:
        result.system_version = available.get((int(ModuleFunction.SYSTEM_PART), 1), (None, ""))[0]
        result.device_os = baseline.device_os
    if result.system_version is not None:
        meets = system_module_at_least(result.system_version, sku.min_device_os)
        shown = _describe_system(result.system_version)
        if meets is False:
            problems.append(
                f"{sku.name} needs Device OS {sku.min_device_os} or later; this bundle carries "
                f"system module {result.system_version} ({shown})"
            )
        elif meets is None:
            problems.append(
                f"cannot tell whether system module {result.system_version} ({shown}) is "
                f"Device OS {sku.min_device_os} or later, which {sku.name} needs; use a "
                "release trayline's version table knows"
            )
    else:
        problems.append(
            "the bundle has no system part and no --baseline-device-os: trayline cannot check "
            f"the Device OS against {sku.name}'s minimum {sku.min_device_os}"
        )


def check_bundle(
    placements: Sequence[Placement], sku: Sku, baseline: Baseline | None = None
) -> CheckResult:
    """Every reason not to flash these modules on ``sku``, and the order to flash them in."""
    result = CheckResult(ordered=flash_order(placements))
    problems, warnings = result.problems, result.warnings
    if not placements:
        problems.append("no modules given")
        return result

    _check_modules(placements, sku, problems, warnings)
    _check_overlaps(placements, problems)

    # Dependencies: met inside the bundle, or by what the units already carry.
    available: dict[tuple[int, int], tuple[int, str]] = {}
    if baseline is not None:
        for key, version in baseline.modules.items():
            available[key] = (version, f"baseline Device OS {baseline.device_os}")
    for p in placements:
        available[p.module.key] = (p.module.version, p.name)
    for p in placements:
        for dep in p.module.dependencies:
            have = available.get(dep.key)
            if have is None:
                hint = "" if baseline else "; add it, or declare --baseline-device-os"
                problems.append(
                    f"{p.name}: needs {dep.describe()}, which is neither in the bundle nor "
                    f"on the units{hint}"
                )
            elif have[0] < dep.version:
                problems.append(
                    f"{p.name}: needs {dep.describe()}, but {have[1]} provides version {have[0]}"
                )

    _check_device_os(placements, sku, baseline, available, result)
    return result
