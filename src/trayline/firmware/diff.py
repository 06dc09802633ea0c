"""What a device still needs: the bundle's modules minus what it already runs.

Rewriting the Device OS on every unit costs a minute of programmer time and a
flash erase cycle; when only the user firmware changed (the test image swapped
for production on the same Device OS) the station should write the user part
alone. A device reports its modules as (function, index, version, SHA-256)
(``GetModuleInfo`` over USB, or read back over SWD); :func:`modules_to_write`
compares that with the bundle's manifest and returns, in flashing order, the
entries that must be written and why. Pure: no store, no device.

A module is skipped only when the device has the same (function, index), the
same version and — where the device reported one — the same SHA-256. A newer
version on the device is *not* good enough: the line ships exactly the
bundle's image, so it is written back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trayline.core.manifest import ManifestEntry

__all__ = ["ModuleToWrite", "ReportedModule", "modules_to_write"]


@dataclass(frozen=True, slots=True)
class ReportedModule:
    """A module as a device reports it; ``sha256`` may be unknown (``None``)."""

    function: int
    index: int
    version: int
    sha256: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.function, self.index)


@dataclass(frozen=True, slots=True)
class ModuleToWrite:
    entry: ManifestEntry
    reason: str


def modules_to_write(
    bundle: Sequence[ManifestEntry], reported: Iterable[ReportedModule]
) -> list[ModuleToWrite]:
    """Entries of ``bundle`` (in its order) the device lacks or has in another build."""
    on_device = {m.key: m for m in reported}
    out: list[ModuleToWrite] = []
    for entry in sorted(bundle, key=lambda e: e.position):
        have = on_device.get(entry.key)
        if have is None:
            out.append(ModuleToWrite(entry, "not on the device"))
        elif have.version != entry.version:
            out.append(
                ModuleToWrite(entry, f"device has version {have.version}, bundle {entry.version}")
            )
        elif have.sha256 is not None and have.sha256.lower() != entry.module_sha256:
            out.append(ModuleToWrite(entry, "same version, different build (SHA-256 differs)"))
    return out
