"""The customer's side of the line: the outbox, trusted keys and imported manifests.

*Outbox messages* are the units the customer's own system has to hear about.
A row is written in the same transaction as the unit's final state (``ready``,
or ``failed``), so a unit cannot reach its end without its message, and a
message cannot exist for a state that was rolled back. The row holds the unit
record as it was at that moment (``payload``), an *idempotency key* (stable for
the row's whole life: a re-send after a crash carries the same key, so the
receiver can drop it), and the delivery state: ``pending`` until the receiver
answers 2xx (then ``sent``), or ``failed`` when the receiver refused it in a way
retrying cannot fix (then a person runs ``trayline outbox retry``). Rows of one
unit are delivered in ``id`` order; ``sequence`` numbers them per unit so the
receiver can check the order too.

*Trusted keys* are the contract manufacturers' Ed25519 public keys the customer
accepts manifests from. *Imported manifests* remember each manifest by id and
by the SHA-256 of its signed body: importing the same file twice is a no-op,
and a different file reusing an imported id is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trayline.store.models.base import Base, UtcDateTime, utcnow


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_state_unit", "state", "unit_id"),
        UniqueConstraint("unit_id", "sequence", name="uq_outbox_messages_unit_sequence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TrustedKey(Base):
    __tablename__ = "trusted_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64))
    """The raw 32-byte Ed25519 public key, lowercase hex."""
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ImportedManifest(Base):
    __tablename__ = "imported_manifests"

    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_id: Mapped[str] = mapped_column(String(64), unique=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(64))
    batch: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str | None] = mapped_column(String(255))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
