"""Reads for reports: a job's devices with every column a person looks at.

The engine reads only what the planner needs (:func:`trayline.store.jobs.device_rows`);
a report also shows the input line, attempts and the last error. Job totals
come from :func:`trayline.store.jobs.job_totals`, shared with ``provision
status``. Read-only: reports never write.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select

from trayline.store.db import Store
from trayline.store.models import ProvisioningDevice

__all__ = ["DeviceDetail", "job_device_details"]


class DeviceDetail(NamedTuple):
    """One device of a job as the report shows it, detached from any session."""

    line_no: int
    identifier: str
    id_kind: str
    device_id: str | None
    serial_number: str | None
    imported: str
    grouped: str
    named: str
    claimed: str
    verified: str
    attempts: int
    failure: str | None
    last_error: str | None


def job_device_details(
    store: Store, job_id: int, *, failed_first: bool = False, limit: int | None = None
) -> list[DeviceDetail]:
    """The devices of ``job_id`` in input order (line, then insertion).

    The report takes them all; the web's job page takes the first ``limit``
    with the failed ones first.
    """
    query = (
        select(
            ProvisioningDevice.line_no,
            ProvisioningDevice.identifier,
            ProvisioningDevice.id_kind,
            ProvisioningDevice.device_id,
            ProvisioningDevice.serial_number,
            ProvisioningDevice.imported,
            ProvisioningDevice.grouped,
            ProvisioningDevice.named,
            ProvisioningDevice.claimed,
            ProvisioningDevice.verified,
            ProvisioningDevice.attempts,
            ProvisioningDevice.failure,
            ProvisioningDevice.last_error,
        )
        .where(ProvisioningDevice.job_id == job_id)
        .order_by(
            *([ProvisioningDevice.failure.is_(None)] if failed_first else []),
            ProvisioningDevice.line_no,
            ProvisioningDevice.id,
        )
        .limit(limit)
    )
    with store.session() as session:
        return [DeviceDetail._make(row) for row in session.execute(query).all()]
