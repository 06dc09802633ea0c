"""What trayline said to the Particle Cloud: the audit log and the serial-lookup budget.

The audit log records every request's method, *path template* (``/v1/products/
{product}/devices/{device_id}``, never a filled-in URL with a query string), status
and duration, so a slow or failing job can be explained afterwards. It never
holds a token, a body or a header.

The serial-lookup endpoint allows 50 calls per hour per account. Each call is a
row here, so a restarted process still knows how many it has left. The account
is a fingerprint (a truncated SHA-256) of the token, never the token itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from trayline.store.models.base import Base, UtcDateTime, utcnow


class CloudCall(Base):
    __tablename__ = "cloud_calls"
    __table_args__ = (Index("ix_cloud_calls_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    method: Mapped[str] = mapped_column(String(8))
    path_template: Mapped[str] = mapped_column(String(200))
    status: Mapped[int | None]
    duration_ms: Mapped[float]
    attempt: Mapped[int] = mapped_column(default=1)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("provisioning_jobs.id"), index=True)


class SerialLookup(Base):
    __tablename__ = "serial_lookups"
    __table_args__ = (Index("ix_serial_lookups_account_at", "account", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    serial_number: Mapped[str] = mapped_column(String(15))
    status: Mapped[int | None]
