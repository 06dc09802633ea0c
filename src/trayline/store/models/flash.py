"""Flash records: what was written to which device, with which bundle, through which probe.

A unit that leaves the line must be traceable to the exact bytes on it. Each
attempt to put a bundle on a device is one row, written *before* the first
byte goes to the device (``status = 'writing'``, with the plan) and completed
after the read-back (``done`` or ``failed``, with every module written or
skipped, its SHA-256, the bytes and the time). A process killed mid-flash
leaves a ``writing`` row behind: the device was touched, the record says so,
and the next flash re-reads the device instead of trusting this row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from trayline.store.models.base import Base, UtcDateTime, utcnow


class FlashRecord(Base):
    __tablename__ = "flash_records"
    __table_args__ = (
        Index("ix_flash_records_device_started", "device_id", "started_at"),
        Index("ix_flash_records_unit_started", "unit_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(24))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    role: Mapped[str | None] = mapped_column(String(16))
    bundle_name: Mapped[str] = mapped_column(String(128))
    bundle_digest: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(32))
    probe_id: Mapped[str] = mapped_column(String(64))
    slot: Mapped[str | None] = mapped_column(String(64))
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="writing")
    modules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    bytes_written: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
