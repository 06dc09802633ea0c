"""Units, their parts, and the append-only event log.

A *unit* is one physical product on the line, known first by the Particle
serial on its module sticker, later by its device ID. *Parts* are the other
scanned components linked to it (enclosure, PCB, antenna, battery), so a
returned unit can be traced back to its lots. *Events* are append-only: every
thing that happened to a unit or a device is a row, and current state is derived
from them or cached beside them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trayline.store.models.base import Base, UtcDateTime, utcnow


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial_number: Mapped[str] = mapped_column(String(15), unique=True)
    device_id: Mapped[str | None] = mapped_column(String(24), unique=True)
    sku: Mapped[str | None] = mapped_column(String(16))
    iccid: Mapped[str | None] = mapped_column(String(21))
    imei: Mapped[str | None] = mapped_column(String(15))
    status: Mapped[str] = mapped_column(String(32), default="new")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    parts: Mapped[list[Part]] = relationship(back_populates="unit", cascade="all, delete-orphan")


class Part(Base):
    __tablename__ = "parts"
    __table_args__ = (Index("ix_parts_kind_part_serial", "kind", "part_serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    part_number: Mapped[str | None] = mapped_column(String(128))
    part_serial: Mapped[str | None] = mapped_column(String(128))
    lot: Mapped[str | None] = mapped_column(String(128))
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="parts")


class Event(Base):
    """One thing that happened. Never updated, never deleted."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_unit_at", "unit_id", "at"),
        Index("ix_events_device_at", "device_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    device_id: Mapped[str | None] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64), default="trayline")
    message: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
