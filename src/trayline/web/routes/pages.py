"""The pages people read: the dashboard, a unit's record, search and reverse genealogy."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from trayline.station.record import unit_record
from trayline.store.units import find_unit
from trayline.store.web_queries import search_units, unit_page, units_with_part
from trayline.web.access import Principal, require
from trayline.web.overview import MAX_DAYS, overview
from trayline.web.render import page
from trayline.web.timestamps import parse_since

router = APIRouter(include_in_schema=False)
Operator = Depends(require("operator"))


@router.get("/")
def dashboard(
    request: Request,
    days: int = Query(7, ge=1, le=MAX_DAYS),
    by: str = Query("day", pattern="^(day|shift)$"),
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
