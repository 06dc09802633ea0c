"""The firmware bundles repository: every read and write of bundle manifests in the store.

:mod:`trayline.firmware.bundle` decides what a bundle is (checks, pairing,
files on disk); this module only stores and fetches manifests, as the domain's
:class:`~trayline.core.manifest.BundleInfo`, so the service holds no SQL.

Listing loads every bundle's modules in one extra query (``selectinload``), not
one query per bundle: a line keeps a few bundles, a CM's database many.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from trayline.core.manifest import BundleInfo, ManifestEntry
from trayline.store.db import Store
from trayline.store.models import FirmwareBundle, FirmwareBundleModule

__all__ = ["add_bundle", "bundle_names", "find_bundle", "latest_bundle", "list_bundles"]


def _entry(m: FirmwareBundleModule) -> ManifestEntry:
    return ManifestEntry(
        position=m.position,
        file_name=m.file_name,
        file_sha256=m.file_sha256,
        size=m.size,
        address=m.address,
        skip=int(m.info.get("skip", 0)),
        platform_id=m.platform_id,
        function=m.module_function,
        index=m.module_index,
        version=m.module_version,
        module_sha256=m.module_sha256,
        flags=m.flags,
    )


def _info(row: FirmwareBundle) -> BundleInfo:
    return BundleInfo(
        name=row.name,
        sku=row.sku,
        line=row.line,
        role=row.role,
        platform_id=row.platform_id,
        system_version=row.system_version,
        device_os=row.device_os,
        baseline_device_os=row.baseline_device_os,
        digest=row.digest,
        created_at=row.created_at,
        entries=tuple(_entry(m) for m in row.modules),
        warnings=tuple(row.warnings or ()),
    )


def _row(info: BundleInfo) -> FirmwareBundle:
    row = FirmwareBundle(
        name=info.name,
        sku=info.sku,
        line=info.line,
        role=info.role,
        platform_id=info.platform_id,
        system_version=info.system_version,
        device_os=info.device_os,
        baseline_device_os=info.baseline_device_os,
        digest=info.digest,
        warnings=list(info.warnings),
        created_at=info.created_at,
    )
    row.modules = [
        FirmwareBundleModule(
            position=e.position,
            file_name=e.file_name,
            file_sha256=e.file_sha256,
            size=e.size,
            address=e.address,
            platform_id=e.platform_id,
            module_function=e.function,
            module_index=e.index,
            module_version=e.version,
            module_sha256=e.module_sha256,
            flags=e.flags,
            info={"skip": e.skip},
        )
        for e in info.entries
    ]
    return row


def add_bundle(store: Store, info: BundleInfo) -> BundleInfo:
    """Store a checked bundle's manifest; returns it as read back."""
    with store.session() as session:
        row = _row(info)
        session.add(row)
        session.flush()
        return _info(row)


def find_bundle(store: Store, name: str) -> BundleInfo | None:
    with store.session() as session:
        row = session.scalars(
            select(FirmwareBundle)
            .where(FirmwareBundle.name == name)
            .options(selectinload(FirmwareBundle.modules))
        ).first()
        return None if row is None else _info(row)


def bundle_digest(store: Store, name: str) -> str | None:
    """Only the manifest digest of bundle ``name`` (``None`` if there is none).

    A bundle never changes once stored, so a caller that already holds its
    manifest needs only this to know the name still means the same bundle.
    """
    with store.session() as session:
        return session.scalars(
            select(FirmwareBundle.digest).where(FirmwareBundle.name == name)
        ).first()


def bundle_names(store: Store) -> list[str]:
    """Every bundle's name, oldest first (for "known bundles: ..." hints)."""
    with store.session() as session:
        return list(
            session.scalars(
                select(FirmwareBundle.name).order_by(FirmwareBundle.created_at, FirmwareBundle.id)
            )
        )


def latest_bundle(store: Store, line: str, role: str) -> BundleInfo | None:
    """The newest bundle of ``role`` on ``line``, or ``None``."""
    with store.session() as session:
        row = session.scalars(
            select(FirmwareBundle)
            .where(FirmwareBundle.line == line, FirmwareBundle.role == role)
            .order_by(FirmwareBundle.created_at.desc(), FirmwareBundle.id.desc())
            .options(selectinload(FirmwareBundle.modules))
            .limit(1)
        ).first()
        return None if row is None else _info(row)


def list_bundles(store: Store) -> list[BundleInfo]:
    """Every bundle with its modules, oldest first, in two queries whatever the count."""
    with store.session() as session:
        rows = session.scalars(
            select(FirmwareBundle)
            .order_by(FirmwareBundle.created_at, FirmwareBundle.id)
            .options(selectinload(FirmwareBundle.modules))
        ).all()
        return [_info(r) for r in rows]
