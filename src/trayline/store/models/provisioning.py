"""The provisioning journal: one job row and one row per device with a status per step.

The journal is what makes a provisioning job resumable. Before a request goes
out, the devices it covers are marked ``sent`` for that step (the intent); when
the answer comes back they become ``done``, ``failed`` or ``skipped`` (the
result), in the same transaction as nothing else. What is left to do is a pure
function of these rows (``trayline.provisioning.plan``), and every cloud call
the engine makes is idempotent, so replaying a ``sent`` step after a crash is
safe.

A job is identified by its ``key``: a digest of the cloud's API URL, the
account the token belongs to (its username, as ``GET /v1/user`` answers — never
the token or a digest of it), the product, the group and the set of
identifiers. Running the same command again against the same cloud and account
finds the same key and resumes the job; the same input against another cloud
(a rehearsal on the local cloud, then the real one) is another job.

One process works a job at a time: the ``lease_*`` columns name the holder
(host, pid, since) and when its lease expires unless its heartbeat renews it
(see :mod:`trayline.store.jobs`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trayline.store.models.base import Base, UtcDateTime, utcnow


class ProvisioningJob(Base):
    __tablename__ = "provisioning_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    api_url: Mapped[str | None] = mapped_column(String(255))
    account: Mapped[str | None] = mapped_column(String(254))
    product: Mapped[str] = mapped_column(String(64))
    group_name: Mapped[str | None] = mapped_column(String(64))
    name_mode: Mapped[str] = mapped_column(String(16), default="serial")
    claim_mode: Mapped[str] = mapped_column(String(16), default="none")
    claim_user: Mapped[str | None] = mapped_column(String(254))
    input_path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="running")
    group_status: Mapped[str] = mapped_column(String(16), default="pending")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_host: Mapped[str | None] = mapped_column(String(255))
    lease_pid: Mapped[int | None]
    lease_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    devices: Mapped[list[ProvisioningDevice]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="ProvisioningDevice.id"
    )


class ProvisioningDevice(Base):
    __tablename__ = "provisioning_devices"
    __table_args__ = (
        UniqueConstraint("job_id", "identifier", name="uq_provisioning_devices_job_identifier"),
        Index("ix_provisioning_devices_job_device", "job_id", "device_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("provisioning_jobs.id", ondelete="CASCADE"))
    line_no: Mapped[int]
    identifier: Mapped[str] = mapped_column(String(32))
    id_kind: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str | None] = mapped_column(String(24))
    serial_number: Mapped[str | None] = mapped_column(String(15))
    iccid: Mapped[str | None] = mapped_column(String(21))
    imported: Mapped[str] = mapped_column(String(16), default="pending")
    grouped: Mapped[str] = mapped_column(String(16), default="pending")
    named: Mapped[str] = mapped_column(String(16), default="pending")
    claimed: Mapped[str] = mapped_column(String(16), default="pending")
    verified: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    failure: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    job: Mapped[ProvisioningJob] = relationship(back_populates="devices")
