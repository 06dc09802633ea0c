"""``/api/``: what the pages show, as JSON, for machines and scripts (OpenAPI at /api/openapi.json).

Authentication: a session cookie (browser) or ``Authorization: Bearer tl_…``
(``trayline users token NAME``). ``GET /api/units/{ident}`` returns exactly the
object ``trayline units show --json`` prints (built by the station's record
builder). Lists are paginated with ``after`` (a cursor from the previous page's
``next``) and never return more than 500 rows.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from trayline.station.record import unit_record
from trayline.store.units import find_unit
from trayline.store.web_queries import MAX_PAGE, search_units, unit_page, units_with_part
from trayline.web.access import Principal, require
from trayline.web.overview import MAX_DAYS, yield_report
from trayline.web.routes.station import handle_of
from trayline.web.timestamps import parse_since

router = APIRouter(prefix="/api", tags=["api"])
Operator = Depends(require("operator"))
NOT_LOGGED_IN: dict[int | str, dict[str, Any]] = {
    401: {"description": "no session and no valid bearer token"},
    403: {"description": "role too low, or a session request without its CSRF token"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **NOT_LOGGED_IN,
    404: {"description": "no such unit, station or job"},
}


class UnitSummary(BaseModel):
    serial_number: str
    device_id: str | None
    sku: str | None
    status: str
    reason: str | None
    station: str | None
    slot: str | None
    attempts: int
    updated_at: str


class UnitPage(BaseModel):
    units: list[UnitSummary]
    next: int | None = Field(description="pass as `after` for the next page; null at the end")


class PartMatch(BaseModel):
    kind: str
    part_serial: str | None
    lot: str | None
    unit: UnitSummary


class SearchResult(BaseModel):
    q: str
    units: list[UnitSummary]
    parts: list[PartMatch]
    parts_total: int = Field(description="units built with this part serial or lot, in all")


class YieldPeriod(BaseModel):
    period: str
    ready: int
    failed: int
    final_yield: float | None
    first_attempts: int
    first_passed: int
    first_pass_yield: float | None


class YieldReport(BaseModel):
    since: str
    by: str
    periods: list[YieldPeriod]


class ScanIn(BaseModel):
    scan: str = Field(max_length=512, description="one scanned line, as the scanner sends it")


class AnswerIn(BaseModel):
    yes: bool


class NoticeOut(BaseModel):
    level: str
    text: str


@router.get("/units/{ident}", responses=NOT_FOUND)
def get_unit(request: Request, ident: str, who: Principal = Operator) -> dict[str, Any]:
    """The unit's record: the object `trayline units show IDENT --json` prints."""
    store = request.app.state.store
    found = find_unit(store, ident[:128])
    if found is None:
        raise HTTPException(404, f"no unit with serial, device ID, ICCID, IMEI or part {ident!r}")
    return unit_record(store, found)


@router.get("/units", responses=NOT_LOGGED_IN)
def list_units(
    request: Request,
    status: str | None = Query(None, max_length=32),
    batch: str | None = Query(
        None,
        max_length=128,
        description="a shipment (export close-batch), a part lot or a part serial",
    ),
    since: str | None = Query(None, max_length=40, description="ISO date/time, or 7d / 12h"),
    after: int = Query(0, ge=0, le=2**62),
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    who: Principal = Operator,
) -> UnitPage:
    """Units, oldest first, filtered by status, batch (carton, part lot or part serial) and last
    change."""
    rows, cursor = unit_page(
        request.app.state.store,
        status=status,
        batch=batch,
        since=parse_since(since),
        after=after,
        limit=limit,
    )
    return UnitPage(units=[UnitSummary(**r.to_dict()) for r in rows], next=cursor)


@router.get("/search", responses=NOT_LOGGED_IN)
def search(
    request: Request, q: str = Query(..., min_length=1, max_length=128), who: Principal = Operator
) -> SearchResult:
    """Units by device ID, serial (or its start), ICCID, IMEI; and every unit built with a
    part serial or lot (reverse genealogy)."""
    store = request.app.state.store
    hits, total = units_with_part(store, q)
    return SearchResult(
        q=q,
        units=[UnitSummary(**u.to_dict()) for u in search_units(store, q)],
        parts=[
            PartMatch(
                kind=h.kind,
                part_serial=h.part_serial,
                lot=h.lot,
                unit=UnitSummary(**h.unit.to_dict()),
            )
            for h in hits
        ],
        parts_total=total,
    )


@router.get("/yield", responses=NOT_LOGGED_IN)
def get_yield(
    request: Request,
    days: int = Query(7, ge=1, le=MAX_DAYS),
    by: str = Query("day", pattern="^(day|shift|batch)$"),
    who: Principal = Operator,
) -> YieldReport:
    """First-pass and final yield per day or shift (UTC), or per batch (a lot code or other
    non-unique part the units were built with), over the last `days` days."""
    since, rows = yield_report(request.app.state.store, days, by)
    return YieldReport(
        since=since.isoformat(),
        by=by,
        periods=[YieldPeriod(**r.to_dict()) for r in rows],  # type: ignore[arg-type]
    )


@router.get("/stations", responses=NOT_LOGGED_IN)
def stations(request: Request, who: Principal = Operator) -> list[dict[str, Any]]:
    """Each station this server drives: slots, waiting questions, last messages."""
    hub = request.app.state.hub
    return [hub.get(name).snapshot() for name in hub.names()]


@router.post("/stations/{name}/scan", responses=NOT_FOUND)
def scan(request: Request, name: str, body: ScanIn, who: Principal = Operator) -> NoticeOut:
    """Hand one scanned line to the station (as if scanned at its page)."""
    notice = handle_of(request, name).scan(body.scan, operator=who.name)
    return (
        NoticeOut(level=notice.level, text=notice.text) if notice else NoticeOut(level="", text="")
    )


@router.post("/stations/{name}/answer", responses=NOT_FOUND)
def answer(request: Request, name: str, body: AnswerIn, who: Principal = Operator) -> NoticeOut:
    """Answer the oldest waiting operator question yes or no."""
    taken = handle_of(request, name).answer(body.yes)
    return NoticeOut(
        level="info" if taken else "warn",
        text=("answer given" if taken else "no question is waiting"),
    )
