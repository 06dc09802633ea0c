"""The provisioning report: every device of a job with its final state and, if it failed, why.

One row per input line, in input order. ``state`` is ``provisioned`` (every
step done and verified), ``failed`` (the cloud refused it for good — ``reason``
says why in plain words), or ``incomplete`` (a transient problem; running the
same command again continues it).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import Any

from trayline.provisioning.plan import FAILURE_REASONS
from trayline.store.db import Store
from trayline.store.jobs import job_totals
from trayline.store.reports import DeviceDetail, job_device_details

__all__ = ["DeviceReportRow", "JobSummary", "job_report", "job_summaries", "render_csv"]


@dataclass(frozen=True, slots=True)
class DeviceReportRow:
    line: int
    identifier: str
    kind: str
    device_id: str | None
    serial_number: str | None
    state: str
    imported: str
    grouped: str
    named: str
    claimed: str
    verified: str
    attempts: int
    reason: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class JobSummary:
    id: int
    product: str
    group: str | None
    status: str
    devices: int
    provisioned: int
    failed: int
    created_at: str
    input_path: str
    last_error: str | None
    api_url: str | None = None
    account: str | None = None


def _state(row: DeviceDetail) -> str:
    if row.failure:
        return "failed"
    if row.verified == "done":
        return "provisioned"
    return "incomplete"


def job_report(store: Store, job_id: int) -> list[DeviceReportRow]:
    """One row per device of the job, in input order, with its reason in plain words."""
    return [
        DeviceReportRow(
            line=r.line_no,
            identifier=r.identifier,
            kind=r.id_kind,
            device_id=r.device_id,
            serial_number=r.serial_number,
            state=_state(r),
            imported=r.imported,
            grouped=r.grouped,
            named=r.named,
            claimed=r.claimed,
            verified=r.verified,
            attempts=r.attempts,
            reason=FAILURE_REASONS.get(r.failure, r.failure) if r.failure else None,
            detail=r.last_error,
        )
        for r in job_device_details(store, job_id)
    ]


def job_summaries(store: Store, job_id: int | None = None) -> list[JobSummary]:
    """Each job (or one) with its device counts."""
    return [
        JobSummary(
            id=t.job.id,
            product=t.job.product,
            group=t.job.group_name,
            status=t.job.status,
            devices=t.devices,
            provisioned=t.provisioned,
            failed=t.failed,
            created_at=t.job.created_at.isoformat(timespec="seconds"),
            input_path=t.job.input_path,
            last_error=t.job.last_error,
            api_url=t.job.api_url,
            account=t.job.account,
        )
        for t in job_totals(store, job_id)
    ]


def render_csv(rows: list[DeviceReportRow]) -> str:
    buffer = io.StringIO()
    fields = list(DeviceReportRow.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return buffer.getvalue()


def render_json(summary: JobSummary, rows: list[DeviceReportRow]) -> str:
    document: dict[str, Any] = {"job": asdict(summary), "devices": [asdict(r) for r in rows]}
    return json.dumps(document, indent=2)
