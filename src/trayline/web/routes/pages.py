"""The pages people read: the dashboard, a unit's record, search and reverse genealogy."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from trayline.provisioning.plan import FAILURE_REASONS
from trayline.station.record import unit_record
from trayline.store.dashboard import job_devices, recent_jobs
from trayline.store.units import find_unit
from trayline.store.web_queries import search_units, unit_page, units_with_part
from trayline.web.access import Principal, require
from trayline.web.overview import MAX_DAYS, overview
from trayline.web.render import page
from trayline.web.timestamps import parse_since

router = APIRouter(include_in_schema=False)
Operator = Depends(require("operator"))
JOB_DEVICES = 500
"""Devices a job page lists (failed first); the CSV report has them all."""


@router.get("/")
def dashboard(
    request: Request,
    days: int = Query(7, ge=1, le=MAX_DAYS),
    by: str = Query("day", pattern="^(day|shift|batch)$"),
    who: Principal = Operator,
) -> Response:
    view = overview(request.app.state.store, days, by)
    live = [request.app.state.hub.get(n).snapshot() for n in request.app.state.hub.names()]
    return page(request, "dashboard.html", view=view, live=live)


@router.get("/units/{ident}")
def unit(request: Request, ident: str, who: Principal = Operator) -> Response:
    store = request.app.state.store
    found = find_unit(store, ident)
    if found is None:
        return page(
            request,
            "error.html",
            404,
            title="No such unit",
            message=f"No unit has serial, device ID, ICCID, IMEI or part serial {ident!r}.",
        )
    record = unit_record(store, found)
    return page(request, "unit.html", unit=record)


@router.get("/search")
def search(
    request: Request, q: str = Query("", max_length=128), who: Principal = Operator
) -> Response:
    store = request.app.state.store
    units = search_units(store, q) if q.strip() else []
    parts, total = units_with_part(store, q) if q.strip() else ([], 0)
    serials = {u.serial_number for u in units} | {p.unit.serial_number for p in parts}
    if len(serials) == 1:
        return RedirectResponse(f"/units/{quote(serials.pop(), safe='')}", status_code=303)
    return page(request, "search.html", q=q, units=units, parts=parts, parts_total=total)


@router.get("/units")
def units(
    request: Request,
    status: str | None = Query(None, max_length=32),
    batch: str | None = Query(None, max_length=128),
    since: str | None = Query(None, max_length=40),
    after: int = Query(0, ge=0),
    who: Principal = Operator,
) -> Response:
    when = parse_since(since)
    rows, cursor = unit_page(
        request.app.state.store,
        status=status or None,
        batch=batch or None,
        since=when,
        after=after,
        limit=100,
    )
    return page(
        request,
        "units.html",
        rows=rows,
        cursor=cursor,
        status=status or "",
        batch=batch or "",
        since=since or "",
    )


@router.get("/jobs/{job_id}")
def job(
    request: Request, job_id: int = Path(ge=1, le=2**62), who: Principal = Operator
) -> Response:
    """A provisioning job: progress and each device's state per step (failures first)."""
    store = request.app.state.store
    found = recent_jobs(store, limit=1, job_id=job_id)
    if not found:
        return page(request, "error.html", 404, title="No such job", message=f"job {job_id}")
    devices = job_devices(store, job_id, limit=JOB_DEVICES)
    reasons = {d.failure: FAILURE_REASONS.get(d.failure, d.failure) for d in devices if d.failure}
    return page(
        request, "job.html", job=found[0], devices=devices, reasons=reasons, shown=JOB_DEVICES
    )
