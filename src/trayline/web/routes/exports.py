"""CSV downloads for engineers: units, measurements, provisioning job reports.

Exports stream: rows are read from the store in keyset pages and written as
they come, so a download of a million units holds one page in memory. Cells
that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first)
are prefixed with ``'``: a part serial typed as ``=HYPERLINK(…)`` stays text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from trayline.reports.provisioning import job_report, render_csv
from trayline.store.dashboard import recent_jobs
from trayline.store.web_queries import MEASUREMENT_COLUMNS, iter_measurements, iter_units
from trayline.web.access import Principal, require
from trayline.web.overview import MAX_DAYS, window
from trayline.web.routes.api import NOT_FOUND, NOT_LOGGED_IN
from trayline.web.timestamps import parse_since

router = APIRouter(prefix="/api", tags=["exports"])
Engineer = Depends(require("engineer"))
Operator = Depends(require("operator"))
UNIT_COLUMNS = (
    "serial_number",
    "device_id",
    "sku",
    "status",
    "reason",
    "station",
    "slot",
    "attempts",
    "updated_at",
)
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV with a header row"},
    **NOT_LOGGED_IN,
}


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _download(body: Iterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/export/units.csv", responses=CSV_RESPONSE, response_class=StreamingResponse)
def units_csv(
    request: Request,
    status: str | None = Query(None, max_length=32),
    since: str | None = Query(None, max_length=40, description="ISO date/time, or 7d / 12h"),
    who: Principal = Engineer,
) -> StreamingResponse:
    """Every unit (optionally in one status, changed since a time), one row each."""
    rows = iter_units(request.app.state.store, status=status, since=parse_since(since))
    body = _csv(UNIT_COLUMNS, ([r.to_dict()[c] for c in UNIT_COLUMNS] for r in rows))
    return _download(body, "units.csv")


@router.get("/export/measurements.csv", responses=CSV_RESPONSE, response_class=StreamingResponse)
def measurements_csv(
    request: Request, days: int = Query(7, ge=1, le=MAX_DAYS), who: Principal = Engineer
) -> StreamingResponse:
    """Every measurement of the test attempts finished in the last `days` days, with limits."""
    since, _ = window(days)
    rows = (
        [r[0], r[1], r[2], r[3], r[4].isoformat() if r[4] else None, *r[5:]]
        for r in iter_measurements(request.app.state.store, since)
    )
    return _download(_csv(MEASUREMENT_COLUMNS, rows), "measurements.csv")


@router.get(
    "/export/jobs/{job_id}.csv",
    responses={**CSV_RESPONSE, **NOT_FOUND},
    response_class=StreamingResponse,
)
def job_csv(
    request: Request, job_id: int = Path(ge=1, le=2**62), who: Principal = Engineer
) -> StreamingResponse:
    """A provisioning job's report: one row per device with its state and reason."""
    rows = job_report(request.app.state.store, job_id)
    if not rows:
        raise HTTPException(404, f"no provisioning job {job_id} (or it has no devices)")
    return _download(iter([render_csv(rows)]), f"provisioning-job-{job_id}.csv")


class JobOut(BaseModel):
    id: int
    product: str
    group: str | None
    status: str
    created_at: str
    devices: int
    provisioned: int
    failed: int
    remaining: int


@router.get("/jobs", responses=NOT_LOGGED_IN)
def jobs(request: Request, who: Principal = Operator) -> list[JobOut]:
    """The newest provisioning jobs with their progress."""
    return [
        JobOut(
            id=j.id,
            product=j.product,
            group=j.group,
            status=j.status,
            created_at=j.created_at.isoformat(),
            devices=j.devices,
            provisioned=j.provisioned,
            failed=j.failed,
            remaining=j.remaining,
        )
        for j in recent_jobs(request.app.state.store)
    ]
