"""The operator's station page: a scan field, a card per slot, PASS/FAIL, YES/NO buttons.

Scans and answers go to the station's runner in this process — the same
runner ``trayline station run`` drives from a terminal. The page follows the
runner with server-sent events (``/station/{name}/events``): each event carries
the slot cards, the waiting questions and the last messages already rendered
as HTML by the same templates as the first page load, so the browser only
swaps them in. Without JavaScript the forms still work (post, then redirect).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from trayline.web.access import Principal, csrf_token, require
from trayline.web.render import TEMPLATES, page
from trayline.web.stations import StationHandle

router = APIRouter(include_in_schema=False)
Operator = Depends(require("operator"))
POLL_S = 0.25
KEEPALIVE_S = 15.0


def handle_of(request: Request, name: str) -> StationHandle:
    handle: StationHandle | None = request.app.state.hub.get(name)
    if handle is None:
        raise HTTPException(404, f"this server drives no station {name!r}")
    return handle


def fragments(snapshot: dict[str, Any], csrf: str) -> dict[str, str]:
    """The live parts of the page, rendered by the templates the first load uses."""
    env = TEMPLATES.env
    return {
        part: env.get_template(f"_{part}.html").render(snap=snapshot, csrf=csrf)
        for part in ("slots", "prompts", "notices")
    }


@router.get("/station")
def station_list(request: Request, who: Principal = Operator) -> Response:
    names = request.app.state.hub.names()
    if len(names) == 1:
        return RedirectResponse(f"/station/{names[0]}", status_code=303)
    return page(request, "station_list.html")


@router.get("/station/{name}")
def station_page(request: Request, name: str, who: Principal = Operator) -> Response:
    handle = handle_of(request, name)
    snap = handle.snapshot()
    return page(request, "station.html", snap=snap, parts=fragments(snap, csrf_token(request)))


def _reply(request: Request, name: str, body: dict[str, Any]) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(body)
    return RedirectResponse(f"/station/{name}", status_code=303)


@router.post("/station/{name}/scan")
def scan(
    request: Request, name: str, scan: str = Form("", max_length=512), who: Principal = Operator
) -> Response:
    notice = handle_of(request, name).scan(scan, operator=who.name)
    body = {"level": notice.level, "text": notice.text} if notice else {"level": "", "text": ""}
    return _reply(request, name, body)


@router.post("/station/{name}/answer")
def answer(
    request: Request,
    name: str,
    answer: str = Form(..., pattern="^(yes|no)$"),
    who: Principal = Operator,
) -> Response:
    taken = handle_of(request, name).answer(answer == "yes")
    text = f"answer {answer.upper()} given" if taken else "no question is waiting"
    return _reply(request, name, {"level": "info" if taken else "warn", "text": text})


@router.get("/station/{name}/events")
async def events(
    request: Request, name: str, once: bool = Query(False), who: Principal = Operator
) -> StreamingResponse:
    handle = handle_of(request, name)
    csrf = csrf_token(request)

    async def stream() -> AsyncIterator[str]:
        last, quiet = "", 0.0
        while True:
            data = json.dumps(fragments(handle.snapshot(), csrf))
            if data != last:
                yield f"event: state\ndata: {data}\n\n"
                last, quiet = data, 0.0
            elif quiet >= KEEPALIVE_S:
                yield ": still here\n\n"
                quiet = 0.0
            if once or await request.is_disconnected():
                return
            await asyncio.sleep(POLL_S)
            quiet += POLL_S

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
