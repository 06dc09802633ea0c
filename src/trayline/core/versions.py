"""Device OS versions as comparable values.

Device OS follows semantic versioning with pre-release tags (``4.0.1``,
``5.6.0-rc.1``, ``3.1.0-alpha.2``). Lines compare them constantly: the SKU's
minimum, the test bundle against the production bundle, what a device reports
against what the bundle carries. :class:`SemVer` orders them the way semver
does (a pre-release sorts before its release).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

__all__ = [
    "BOOTLOADER_VERSIONS",
    "SYSTEM_MODULE_VERSIONS",
    "InvalidVersion",
    "SemVer",
    "bootloader_version_for",
    "device_os_for_system_module",
    "device_os_line",
    "system_module_at_least",
    "system_module_version_for",
]

_SEMVER = re.compile(
    r"v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?"
)


class InvalidVersion(ValueError):
    """Text that is not a Device OS version."""


def _pre_key(pre: str) -> tuple[tuple[int, int | str], ...]:
    parts: list[tuple[int, int | str]] = []
    for item in pre.split("."):
        parts.append((0, int(item)) if item.isdigit() else (1, item))
    return tuple(parts)


@total_ordering
@dataclass(frozen=True, slots=True)
class SemVer:
    major: int
    minor: int
    patch: int
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = _SEMVER.fullmatch(text.strip())
        if not match:
            raise InvalidVersion(
                f"{text!r} is not a Device OS version (expected e.g. 4.0.1 or 5.6.0-rc.1)"
            )
        return cls(
            int(match["major"]), int(match["minor"]), int(match["patch"]), match["pre"] or ""
        )

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, _pre_key(self.pre))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.pre}" if self.pre else core


# Module version <-> Device OS release -------------------------------------------------
#
# A module's ``module_version`` is a monotonic integer, not a packed semver: Device OS
# skips to the next hundred every minor release and bumps by one for every prerelease
# or release (device-os ``modules/shared/system_module_version.mk``). Major and minor
# can be read off the number for 1.x and later; the patch and prerelease cannot, so the
# releases below are a lookup table. Sources: shared/spec/device-side.md §1.6; 4.0.1 from
# Particle's docs restore set ``device-restore/4.0.1/boron.json`` (system 4005, bootloader
# 1101); 1.1.0-rc.1, 3.1.0-alpha.2 and 5.3.1 from the module binaries in
# tests/fixtures/particle-binaries (file name and prefix agree).

SYSTEM_MODULE_VERSIONS: dict[int, SemVer] = {
    mv: SemVer.parse(text)
    for mv, text in (
        (1100, "1.1.0-rc.1"),
        (1406, "1.4.4"),
        (1502, "1.5.0"),
        (1512, "1.5.2"),
        (2008, "2.0.0"),
        (2011, "2.0.1"),
        (2300, "2.3.0-rc.1"),
        (2301, "2.3.0"),
        (2302, "2.3.1"),
        (3005, "3.0.0"),
        (3101, "3.1.0-alpha.2"),
        (3302, "3.3.1"),
        (4003, "4.0.0"),
        (4005, "4.0.1"),
        (4200, "4.2.0"),
        (5002, "5.0.0"),
        (5301, "5.3.1"),
        (5500, "5.5.0-rc.1"),
        (5501, "5.5.0"),
        (5800, "5.8.0"),
        (6100, "6.1.0"),
        (6101, "6.1.1"),
        (6200, "6.2.0"),
    )
}
"""System-part ``module_version`` -> the Device OS release that carries it."""

BOOTLOADER_VERSIONS: dict[SemVer, int] = {
    SemVer.parse(text): mv
    for text, mv in (
        ("1.4.4", 501),
        ("1.5.0", 501),
        ("1.5.2", 502),
        ("2.0.0", 1003),
        ("2.0.1", 1005),
        ("2.3.0-rc.1", 1006),
        ("2.3.0", 1006),
        ("2.3.1", 1006),
        ("3.0.0", 1005),
        ("3.3.1", 1100),
        ("4.0.0", 1101),
        ("4.0.1", 1101),
        ("4.2.0", 1200),
        ("5.0.0", 2000),
        ("5.5.0-rc.1", 2300),
        ("5.5.0", 2300),
        ("5.8.0", 2600),
        ("6.1.0", 3000),
        ("6.1.1", 3001),
        ("6.2.0", 3100),
    )
}
"""Device OS release -> the bootloader ``module_version`` it ships (its own numbering)."""

_RELEASE_TO_SYSTEM: dict[SemVer, int] = {v: mv for mv, v in SYSTEM_MODULE_VERSIONS.items()}


def device_os_for_system_module(module_version: int) -> SemVer | None:
    """The exact Device OS release of a system-part version, when the table knows it."""
    return SYSTEM_MODULE_VERSIONS.get(module_version)


def system_module_version_for(release: SemVer) -> int | None:
    """The system-part ``module_version`` of ``release``, when the table knows it."""
    return _RELEASE_TO_SYSTEM.get(release)


def bootloader_version_for(release: SemVer) -> int | None:
    """The bootloader ``module_version`` that ``release`` ships, when the table knows it."""
    return BOOTLOADER_VERSIONS.get(release)


def device_os_line(module_version: int) -> str:
    """``"4.0.x"``: the release line a system-part version belongs to (reliable for >= 1.x)."""
    if module_version < 1000:
        return "0.x"
    return f"{module_version // 1000}.{(module_version % 1000) // 100}.x"


def system_module_at_least(module_version: int, minimum: SemVer) -> bool | None:
    """Whether a system part of ``module_version`` is Device OS ``minimum`` or later.

    Answers from the exact table first, then from the release line (major.minor can
    be read off the number), then from the nearest known releases on either side.
    ``None`` means the number falls between two known releases that straddle
    ``minimum`` (e.g. 4004 against 4.0.1): the caller must not guess.
    """
    exact = SYSTEM_MODULE_VERSIONS.get(module_version)
    if exact is not None:
        return exact >= minimum
    if module_version < 1000:
        return None if minimum.major == 0 else False
    line = (module_version // 1000, (module_version % 1000) // 100)
    if line != (minimum.major, minimum.minor):
        return line > (minimum.major, minimum.minor)
    below = [v for mv, v in SYSTEM_MODULE_VERSIONS.items() if mv < module_version]
    above = [v for mv, v in SYSTEM_MODULE_VERSIONS.items() if mv > module_version]
    if below and max(below) >= minimum:
        return True
    if above and min(above) <= minimum:
        return False
    return None
