"""Reading the line's records: units as plain views, found by any identifier, listed, with their
attempts and events.

Split from :mod:`trayline.store.units` (the writes) so each stays small; the
SQL of the line lives in these two modules only. Every reader returns frozen
dataclasses, never live ORM rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from trayline.store.db import Store
from trayline.store.models.line import Event, Part, Unit, UnitAttempt
from trayline.store.record_fields import measurement_fields

__all__ = [
    "AttemptView",
    "EventView",
    "UnitView",
    "find_unit",
    "list_units",
    "unit_attempts",
    "unit_by_serial",
    "unit_events",
    "unit_ids_in",
    "unit_view",
    "view_of",
]


@dataclass(frozen=True, slots=True)
class UnitView:
    id: int
    serial_number: str
    device_id: str | None
    expected_device_id: str | None
    sku: str | None
    iccid: str | None
    imei: str | None
    status: str
    reason: str | None
    station: str | None
    slot: str | None
    firmware: dict[str, Any]
    cloud: dict[str, Any] | None
    lease_owner: str | None
    lease_until: datetime | None
    parts: tuple[tuple[str, str], ...]
    attempts: int
    open_attempt: bool
    created_at: datetime
    updated_at: datetime
    running_attempt: int | None = None
    """The number of the attempt in progress (``open_attempt``), when there is one."""


@dataclass(frozen=True, slots=True)
class AttemptView:
    number: int
    outcome: str
    reason: str | None
    station: str | None
    slot: str | None
    started_at: datetime
    finished_at: datetime | None
    measurements: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class EventView:
    at: datetime
    kind: str
    station: str
    slot: str | None
    operator: str | None
    detail: str | None


def _parts_and_attempts() -> Any:
    parts_q = select(
        literal_column("0", Integer).label("what"),
        Part.id,
        Part.kind,
        Part.part_serial,
        literal_column("0", Integer).label("n"),
    ).where(Part.unit_id == bindparam("unit_id"))
    attempts_q = select(
        literal_column("1", Integer).label("what"),
        UnitAttempt.id,
        literal_column("NULL", String).label("kind"),
        UnitAttempt.outcome,
        UnitAttempt.number,
    ).where(UnitAttempt.unit_id == bindparam("unit_id"))
    return union_all(parts_q, attempts_q).order_by("what", "id")


_PARTS_AND_ATTEMPTS = _parts_and_attempts()
"""Built once: a view is read after most steps of a unit, and building the statement (and
its cache key) each time cost as much as running it. So are the statements below, which
:mod:`trayline.store.units` runs at every step of every unit (bound by name)."""

UNIT_BY_SERIAL = select(Unit).where(Unit.serial_number == bindparam("serial"))
UNIT_FOR_UPDATE = select(Unit).where(Unit.id == bindparam("unit_id")).with_for_update()
ATTEMPT = select(UnitAttempt).where(
    UnitAttempt.unit_id == bindparam("unit_id"), UnitAttempt.number == bindparam("number")
)
ATTEMPT_NUMBERS = select(
    func.max(UnitAttempt.number),
    func.max(case((UnitAttempt.outcome == "running", UnitAttempt.number))),
).where(UnitAttempt.unit_id == bindparam("unit_id"))
"""The last attempt's number and the running one's (if any), in one statement."""


def unit_view(session: Session, row: Unit) -> UnitView:
    # Parts and attempts in one round trip (a view is built after every step of a unit).
    rows: list[Any] = list(session.execute(_PARTS_AND_ATTEMPTS, {"unit_id": row.id}).all())
    parts = [(kind, serial or "") for what, _id, kind, serial, _n in rows if what == 0]
    attempts = {number: outcome for what, _id, _k, outcome, number in rows if what == 1}
    running = [number for number, outcome in attempts.items() if outcome == "running"]
    return view_of(row, tuple(parts), len(attempts), running[0] if running else None)


def view_of(
    row: Unit, parts: tuple[tuple[str, str], ...], attempts: int, running: int | None
) -> UnitView:
    """The view of ``row`` (flushed) when its parts and attempts are already known."""
    return UnitView(
        id=row.id,
        serial_number=row.serial_number,
        device_id=row.device_id,
        expected_device_id=row.expected_device_id,
        sku=row.sku,
        iccid=row.iccid,
        imei=row.imei,
        status=row.status,
        reason=row.reason,
        station=row.station,
        slot=row.slot,
        firmware=dict(row.firmware or {}),
        cloud=dict(row.cloud) if row.cloud else None,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        parts=parts,
        attempts=attempts,
        open_attempt=running is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        running_attempt=running,
    )


def unit_by_serial(store: Store, serial: str) -> UnitView | None:
    with store.session() as session:
        row = session.scalars(UNIT_BY_SERIAL, {"serial": serial}).first()
        return unit_view(session, row) if row else None


def find_unit(store: Store, ident: str) -> UnitView | None:
    """A unit by serial, device ID, ICCID, IMEI or a linked part's serial."""
    text = ident.strip()
    with store.session() as session:
        row = session.scalars(
            select(Unit).where(
                or_(
                    Unit.serial_number == text.upper(),
                    Unit.device_id == text.lower(),
                    Unit.iccid == text,
                    Unit.imei == text,
                )
            )
        ).first()
        if row is None:
            row = session.scalars(
                select(Unit).join(Part, Part.unit_id == Unit.id).where(Part.part_serial == text)
            ).first()
        return unit_view(session, row) if row else None


def list_units(
    store: Store, *, status: str | None = None, station: str | None = None, limit: int | None = None
) -> list[UnitView]:
    query = select(Unit).order_by(Unit.id)
    if status is not None:
        query = query.where(Unit.status == status)
    if station is not None:
        query = query.where(Unit.station == station)
    if limit is not None:
        query = query.limit(limit)
    with store.session() as session:
        return [unit_view(session, row) for row in session.scalars(query).all()]


def unit_ids_in(store: Store, statuses: Iterable[str]) -> list[int]:
    with store.session() as session:
        return list(
            session.scalars(
                select(Unit.id).where(Unit.status.in_(list(statuses))).order_by(Unit.id)
            ).all()
        )


def unit_attempts(store: Store, unit_id: int) -> list[AttemptView]:
    with store.session() as session:
        rows = session.scalars(
            select(UnitAttempt).where(UnitAttempt.unit_id == unit_id).order_by(UnitAttempt.number)
        ).all()
        return [
            AttemptView(
                a.number,
                a.outcome,
                a.reason,
                a.station,
                a.slot,
                a.started_at,
                a.finished_at,
                tuple(measurement_fields(m) for m in a.measurements),
            )
            for a in rows
        ]


def unit_events(store: Store, unit_id: int) -> list[EventView]:
    with store.session() as session:
        rows = session.scalars(
            select(Event).where(Event.unit_id == unit_id).order_by(Event.at, Event.id)
        ).all()
        return [
            EventView(
                e.at,
                e.kind,
                e.source,
                (e.data or {}).get("slot"),
                (e.data or {}).get("operator"),
                e.message,
            )
            for e in rows
        ]
