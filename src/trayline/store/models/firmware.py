"""Firmware bundles: which module files, in which order, make up a line's test or production image.

A bundle is checked once, when it is created (platform, dependencies, minimum
Device OS, user-part address), and from then on it is a manifest: each file's
SHA-256, its place in the flashing order and what its prefix said. The files
themselves live in a content-addressed folder beside the database; the
manifest is what lets a station prove, at use, that nothing changed on disk.
``digest`` is one SHA-256 over the ordered (address, file SHA-256) list, so two
bundles with the same digest write the same bytes to the same places.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trayline.store.models.base import Base, UtcDateTime, utcnow


class FirmwareBundle(Base):
    __tablename__ = "firmware_bundles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    sku: Mapped[str] = mapped_column(String(16))
    line: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    platform_id: Mapped[int] = mapped_column(Integer)
    system_version: Mapped[int | None] = mapped_column(Integer)
    device_os: Mapped[str | None] = mapped_column(String(32))
    baseline_device_os: Mapped[str | None] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    modules: Mapped[list[FirmwareBundleModule]] = relationship(
        back_populates="bundle",
        cascade="all, delete-orphan",
        order_by="FirmwareBundleModule.position",
    )


class FirmwareBundleModule(Base):
    __tablename__ = "firmware_bundle_modules"
    __table_args__ = (UniqueConstraint("bundle_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bundle_id: Mapped[int] = mapped_column(
        ForeignKey("firmware_bundles.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    address: Mapped[int] = mapped_column(BigInteger)
    platform_id: Mapped[int] = mapped_column(Integer)
    module_function: Mapped[int] = mapped_column(Integer)
    module_index: Mapped[int] = mapped_column(Integer)
    module_version: Mapped[int] = mapped_column(Integer)
    module_sha256: Mapped[str] = mapped_column(String(64))
    flags: Mapped[int] = mapped_column(Integer)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    bundle: Mapped[FirmwareBundle] = relationship(back_populates="modules")
