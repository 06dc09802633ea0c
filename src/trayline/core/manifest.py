"""A bundle's manifest as plain data: what each stored file is, where it goes, and one digest.

Pure on purpose: the station, the diff and the reports read manifests without
touching the database or the disk. The digest is a SHA-256 over the ordered
``(position, address, skip, file SHA-256)`` lines, so it changes if any byte
of any file, any address or the flashing order changes, and two bundles with
the same digest write the same bytes to the same places in the same order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from trayline.core.modules import function_name
from trayline.core.platforms import platform_name

__all__ = ["BundleInfo", "ManifestEntry", "bundle_digest"]


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One module file of a bundle, in flashing order."""

    position: int
    file_name: str
    file_sha256: str
    size: int
    address: int
    skip: int
    platform_id: int
    function: int
    index: int
    version: int
    module_sha256: str
    flags: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.function, self.index)

    def label(self) -> str:
        return f"{function_name(self.function) or 'unknown'} {self.index} v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["function_name"] = function_name(self.function) or "unknown"
        out["address_hex"] = f"{self.address:#010x}"
        return out


def bundle_digest(entries: Iterable[ManifestEntry]) -> str:
    lines = (
        f"{e.position} {e.address:#010x} {e.skip} {e.file_sha256}\n"
        for e in sorted(entries, key=lambda e: e.position)
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """A stored bundle: identity, what it was checked against, and its manifest."""

    name: str
    sku: str
    line: str
    role: str
    platform_id: int
    system_version: int | None
    device_os: str | None
    baseline_device_os: str | None
    digest: str
    created_at: datetime
    entries: tuple[ManifestEntry, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sku": self.sku,
            "line": self.line,
            "role": self.role,
            "platform_id": self.platform_id,
            "platform": platform_name(self.platform_id),
            "system_version": self.system_version,
            "device_os": self.device_os,
            "baseline_device_os": self.baseline_device_os,
            "digest": self.digest,
            "created_at": self.created_at.isoformat(),
            "warnings": list(self.warnings),
            "modules": [e.to_dict() for e in self.entries],
        }
