"""Bundles: a checked set of module files for one SKU and role, stored so it cannot drift.

``create_bundle`` reads the files, refuses anything :func:`check_bundle` finds
wrong, compares the Device OS with the other role's bundle on the same line (a
test image built against another Device OS than production tests the wrong
thing: a warning, or a refusal with ``strict``), copies each file into a
content-addressed folder and records the manifest in the store.

Files live beside the database, named by their SHA-256
(``<db folder>/trayline-bundles/sha256/ab/abcd…``), or in ``TRAYLINE_BUNDLE_DIR``
(default ``./trayline-bundles``) for a server database. The same file in two
bundles is stored once. ``load_bundle`` re-hashes every file before handing a
bundle out: a bundle whose files changed on disk is refused at use, with the
file named, instead of being flashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trayline import settings
from trayline.core.manifest import BundleInfo, ManifestEntry, bundle_digest
from trayline.core.modules import ModuleError, parse_module
from trayline.core.skus import Sku
from trayline.core.versions import SemVer, device_os_for_system_module
from trayline.durable import write_atomically
from trayline.firmware.checks import (
    BaselineError,
    CheckResult,
    baseline_for,
    check_bundle,
)
from trayline.firmware.hexfile import Placement
from trayline.store import bundles
from trayline.store.db import Store
from trayline.store.workspace import workspace_of

__all__ = [
    "ROLES",
    "BundleError",
    "BundleRefused",
    "LoadedBundle",
    "bundle_dir",
    "create_bundle",
    "get_bundle",
    "list_bundles",
    "load_bundle",
    "read_placements",
    "verify_bundle",
]

ROLES = ("test", "production")


class BundleError(Exception):
    """A bundle cannot be created or used; the message names the file or bundle and why."""


class BundleRefused(BundleError):
    """The modules failed the checks; ``problems`` holds one line per reason."""

    def __init__(self, problems: Sequence[str], warnings: Sequence[str] = ()) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)
        self.warnings = list(warnings)


@dataclass(frozen=True, slots=True)
class LoadedBundle:
    """A bundle whose files were just re-hashed against its manifest: safe to flash."""

    info: BundleInfo
    placements: tuple[Placement, ...]
    paths: tuple[Path, ...]


def bundle_dir(url: str) -> Path:
    """Where bundle files live for the database at ``url`` (see the module docstring)."""
    explicit = settings.bundle_dir()
    if explicit is not None:
        return explicit
    return workspace_of(url) / "trayline-bundles"


def _blob_path(root: Path, sha256: str) -> Path:
    return root / "sha256" / sha256[:2] / sha256


def _store_blob(root: Path, data: bytes, sha256: str) -> Path:
    """Write ``data`` under its hash, atomically; an existing good copy is kept."""
    path = _blob_path(root, sha256)
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
        return path
    write_atomically(path, data)
    path.chmod(0o444)
    return path


def read_placements(files: Sequence[Path]) -> list[Placement]:
    """Read and parse module files; an unreadable or unparsable file is a :class:`BundleError`."""
    placements: list[Placement] = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BundleError(f"{path}: cannot read: {exc.strerror or exc}") from None
        try:
            module = parse_module(data)
        except ModuleError as exc:
            raise BundleError(f"{path}: {exc}") from None
        placements.append(Placement(path.name, module, data))
    return placements


def _entries(result: CheckResult) -> list[ManifestEntry]:
    return [
        ManifestEntry(
            position=position,
            file_name=p.name,
            file_sha256=hashlib.sha256(p.data).hexdigest(),
            size=len(p.data),
            address=p.address,
            skip=p.skip,
            platform_id=p.module.platform_id,
            function=p.module.function,
            index=p.module.index,
            version=p.module.version,
            module_sha256=p.module.sha256,
            flags=p.module.flags,
        )
        for position, p in enumerate(result.ordered)
    ]


def _pairing_problem(store: Store, line: str, role: str, system_version: int | None) -> str | None:
    """A test and a production bundle of one line must carry the same Device OS."""
    other_role = "production" if role == "test" else "test"
    other = bundles.latest_bundle(store, line, other_role)
    if other is None or other.system_version == system_version:
        return None

    def shown(v: int | None) -> str:
        if v is None:
            return "no known Device OS"
        known = device_os_for_system_module(v)
        return f"system module {v}" + (f" (Device OS {known})" if known else "")

    return (
        f"the {other_role} bundle {other.name!r} of line {line!r} carries "
        f"{shown(other.system_version)}, this {role} bundle carries {shown(system_version)}: "
        "test firmware must run on the production Device OS"
    )


def create_bundle(
    store: Store,
    *,
    name: str,
    sku: Sku,
    files: Sequence[Path],
    role: str = "production",
    line: str | None = None,
    baseline_device_os: SemVer | None = None,
    strict: bool = False,
) -> BundleInfo:
    """Check ``files`` for ``sku``, store them and their manifest; refuse with every reason."""
    if role not in ROLES:
        raise BundleError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not name.strip():
        raise BundleError("a bundle needs a name")
    line = line or sku.name
    if bundles.find_bundle(store, name) is not None:
        raise BundleError(f"a bundle named {name!r} already exists; pick another name")
    placements = read_placements(files)
    baseline = None
    if baseline_device_os is not None:
        try:
            baseline = baseline_for(sku.platform.id, baseline_device_os)
        except BaselineError as exc:
            raise BundleError(str(exc)) from None
    result = check_bundle(placements, sku, baseline)
    pairing = _pairing_problem(store, line, role, result.system_version)
    if pairing:
        (result.problems if strict else result.warnings).append(pairing)
    if not result.ok:
        raise BundleRefused(result.problems, result.warnings)

    root = bundle_dir(store.url)
    entries = _entries(result)
    for entry, placement in zip(entries, result.ordered, strict=True):
        _store_blob(root, placement.data, entry.file_sha256)
    info = BundleInfo(
        name=name,
        sku=sku.name,
        line=line,
        role=role,
        platform_id=sku.platform.id,
        system_version=result.system_version,
        device_os=str(result.device_os) if result.device_os else None,
        baseline_device_os=str(baseline_device_os) if baseline_device_os else None,
        digest=bundle_digest(entries),
        created_at=datetime.now(UTC),
        entries=tuple(entries),
        warnings=tuple(result.warnings),
    )
    return bundles.add_bundle(store, info)


def list_bundles(store: Store) -> list[BundleInfo]:
    """Every bundle with its manifest, oldest first."""
    return bundles.list_bundles(store)


def get_bundle(store: Store, name: str) -> BundleInfo:
    """The bundle called ``name``; a :class:`BundleError` naming the known ones if none is."""
    info = bundles.find_bundle(store, name)
    if info is None:
        known = bundles.bundle_names(store)
        hint = f"; known bundles: {', '.join(known)}" if known else "; none exist yet"
        raise BundleError(f"no bundle named {name!r}{hint}")
    return info


def _verify(store: Store, info: BundleInfo) -> tuple[list[str], list[Placement], list[Path]]:
    root = bundle_dir(store.url)
    problems: list[str] = []
    placements: list[Placement] = []
    paths: list[Path] = []
    for entry in info.entries:
        path = _blob_path(root, entry.file_sha256)
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(f"{entry.file_name}: stored file {path} is missing ({exc.strerror})")
            continue
        actual = hashlib.sha256(data).hexdigest()
        if actual != entry.file_sha256:
            problems.append(
                f"{entry.file_name}: stored file {path} changed on disk (SHA-256 {actual}, "
                f"manifest says {entry.file_sha256})"
            )
            continue
        placements.append(Placement(entry.file_name, parse_module(data), data))
        paths.append(path)
    if not problems and bundle_digest(info.entries) != info.digest:
        problems.append(f"bundle {info.name!r}: manifest digest does not match its entries")
    return problems, placements, paths


def verify_bundle(store: Store, name: str) -> list[str]:
    """Every way the stored files differ from the manifest; empty when the bundle is intact."""
    problems, _, _ = _verify(store, get_bundle(store, name))
    return problems


def load_bundle(store: Store, name: str) -> LoadedBundle:
    """The bundle with its files re-hashed; refuses (``BundleError``) if any changed."""
    info = get_bundle(store, name)
    problems, placements, paths = _verify(store, info)
    if problems:
        raise BundleError(f"bundle {name!r} refused: " + "; ".join(problems))
    return LoadedBundle(info, tuple(placements), tuple(paths))
