"""Units, their parts, test attempts and measurements, and the append-only event log.

A *unit* is one physical product on the line, known first by the Particle
serial on its module sticker, later by its device ID. Its ``status`` is the
last recorded step of the station's state machine (``trayline.station.flow``);
``reason`` says in plain words why a unit failed. ``lease_owner`` /
``lease_until`` make sure one station process works a unit at a time: taking
the lease is one conditional ``UPDATE`` the database decides.

*Parts* are the other scanned components linked to it (enclosure, battery,
antenna), so a returned unit can be traced back to its lots. A part whose
config says ``unique = true`` carries its serial in ``unique_serial`` too, and a
unique constraint on ``(kind, unique_serial)`` means two stations racing to
link the same battery cannot both win (NULLs never collide, so non-unique
parts such as a lot code may repeat).

An *attempt* is one run of the test plan on a unit; every attempt is kept with
its outcome, reason and *measurements* (value, unit, limits, verdict).
*Events* are append-only: every thing that happened to a unit is a row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trayline.store.models.base import Base, UtcDateTime, utcnow


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (Index("ix_units_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    serial_number: Mapped[str] = mapped_column(String(15), unique=True)
    device_id: Mapped[str | None] = mapped_column(String(24), unique=True)
    sku: Mapped[str | None] = mapped_column(String(16))
    iccid: Mapped[str | None] = mapped_column(String(21))
    imei: Mapped[str | None] = mapped_column(String(15))
    status: Mapped[str] = mapped_column(String(32), default="new")
    reason: Mapped[str | None] = mapped_column(Text)
    station: Mapped[str | None] = mapped_column(String(64))
    slot: Mapped[str | None] = mapped_column(String(64))
    expected_device_id: Mapped[str | None] = mapped_column(String(24))
    firmware: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cloud: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    batch: Mapped[str | None] = mapped_column(String(64), index=True)  # 0007: shipment
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    parts: Mapped[list[Part]] = relationship(back_populates="unit", cascade="all, delete-orphan")
    attempts: Mapped[list[UnitAttempt]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="UnitAttempt.number"
    )


class Part(Base):
    __tablename__ = "parts"
    __table_args__ = (
        Index("ix_parts_kind_part_serial", "kind", "part_serial"),
        UniqueConstraint("kind", "unique_serial", name="uq_parts_kind_unique_serial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    part_number: Mapped[str | None] = mapped_column(String(128))
    part_serial: Mapped[str | None] = mapped_column(String(128))
    unique_serial: Mapped[str | None] = mapped_column(String(128))
    lot: Mapped[str | None] = mapped_column(String(128))
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="parts")


class UnitAttempt(Base):
    """One run of the test plan on a unit; kept forever, whatever its outcome."""

    __tablename__ = "unit_attempts"
    __table_args__ = (UniqueConstraint("unit_id", "number", name="uq_unit_attempts_unit_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    station: Mapped[str | None] = mapped_column(String(64))
    slot: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    unit: Mapped[Unit] = relationship(back_populates="attempts")
    measurements: Mapped[list[UnitMeasurement]] = relationship(
        back_populates="attempt", cascade="all, delete-orphan", order_by="UnitMeasurement.id"
    )


class UnitMeasurement(Base):
    """One measured value with the limits it was judged against."""

    __tablename__ = "unit_measurements"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(
        ForeignKey("unit_attempts.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(16))
    low: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    equals: Mapped[Any] = mapped_column(JSON, nullable=True)
    regex: Mapped[str | None] = mapped_column(String(256))
    verdict: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)

    attempt: Mapped[UnitAttempt] = relationship(back_populates="measurements")


class Event(Base):
    """One thing that happened. Never updated, never deleted.

    For station events ``source`` is the station id and ``data`` holds
    ``slot``, ``operator`` and any detail fields; ``message`` is the plain-words
    detail an operator reads.
    """

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
