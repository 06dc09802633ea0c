"""Export queries: what a shipment manifest and a quality engineer's spreadsheet read.

Three flat row shapes (one per unit, per measurement, per event) and the
shipment selection for manifests. A *batch* is the shipment a ready unit is
packed in: a name (``units.batch``) the CM gives with ``trayline export
close-batch NAME --since T [--until T]`` when a carton is closed. Only ready
units without a batch yet are taken, so a unit is in one shipment at most.
Times filter on when a unit became ready (its newest ``ready`` event).

Rows are plain dicts of JSON-ready values (ISO times), so the CSV and JSON
writers in :mod:`trayline.outbox.exports` need no knowledge of the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from trayline.store.db import Store
from trayline.store.models.line import Event, Part, Unit, UnitAttempt, UnitMeasurement
from trayline.store.record_fields import firmware_fields, measurement_fields

__all__ = [
    "close_batch",
    "event_rows",
    "manifest_units",
    "measurement_rows",
    "unit_rows",
]

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ready_at() -> Any:
    """Per unit, when it last became ready (a subquery: unit_id, ready_at)."""
    return (
        select(Event.unit_id.label("unit_id"), func.max(Event.at).label("ready_at"))
        .where(Event.kind == "ready")
        .group_by(Event.unit_id)
        .subquery()
    )


def _units_query(
    *, batch: str | None, since: datetime | None, ready_only: bool
) -> Select[tuple[Unit, Any]]:
    ready = _ready_at()
    query = select(Unit, ready.c.ready_at).outerjoin(ready, ready.c.unit_id == Unit.id)
    if ready_only:
        query = query.where(Unit.status == "ready")
    since_column = ready.c.ready_at if ready_only else Unit.updated_at
    return _in_window(query, batch=batch, since=since, at=since_column).order_by(Unit.id)


def _in_window(query: _Query, *, batch: str | None, since: datetime | None, at: Any) -> _Query:
    """``--batch`` and ``--since`` as every export reads them: the unit's batch, ``at >= since``.

    ``at`` is the time column the export counts from (a unit's last change or
    readiness, an attempt's start, an event's time).
    """
    if batch is not None:
        query = query.where(Unit.batch == batch)
    if since is not None:
        query = query.where(at >= since)
    return query


def _fix_tz(value: Any) -> datetime | None:
    """Aggregates bypass the column type on SQLite: make naive values aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def close_batch(store: Store, batch: str, *, since: datetime, until: datetime | None) -> int:
    """Give ``batch`` to the ready, unbatched units that became ready in [since, until)."""
    ready = _ready_at()
    chosen = select(ready.c.unit_id).where(ready.c.ready_at >= since)
    if until is not None:
        chosen = chosen.where(ready.c.ready_at < until)
    with store.session() as session:
        result = session.execute(
            update(Unit)
            .where(Unit.id.in_(chosen), Unit.status == "ready", Unit.batch.is_(None))
            .values(batch=batch)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def manifest_units(
    store: Store, *, batch: str | None, since: datetime | None
) -> list[dict[str, Any]]:
    """The ready units of a shipment as manifest entries (no secrets: there are none stored)."""
    with store.session() as session:
        rows = session.execute(_units_query(batch=batch, since=since, ready_only=True)).all()
        entries = []
        for unit, ready_at in rows:
            attempts = session.scalars(
                select(UnitAttempt)
                .where(UnitAttempt.unit_id == unit.id)
                .order_by(UnitAttempt.number)
            ).all()
            passed = [a for a in attempts if a.outcome == "pass"]
            last = passed[-1] if passed else None
            parts = session.execute(
                select(Part.kind, Part.part_serial).where(Part.unit_id == unit.id).order_by(Part.id)
            ).all()
            entries.append(
                {
                    "serial_number": unit.serial_number,
                    "device_id": unit.device_id,
                    "sku": unit.sku,
                    "iccid": unit.iccid,
                    "imei": unit.imei,
                    "batch": unit.batch,
                    "station": unit.station,
                    "slot": unit.slot,
                    "ready_at": _iso(_fix_tz(ready_at)),
                    "parts": [{"name": k, "serial": s or ""} for k, s in parts],
                    "test": {
                        "verdict": "pass" if last else "none",
                        "attempts": len(attempts),
                        "failed_attempts": sum(1 for a in attempts if a.outcome == "fail"),
                        "attempt": last.number if last else None,
                        "station": last.station if last else None,
                        "finished_at": _iso(last.finished_at) if last else None,
                        "measurements": [
                            measurement_fields(m, reason=False) for m in last.measurements
                        ]
                        if last
                        else [],
                    },
                    "firmware": firmware_fields(unit.firmware, modules=False),
                }
            )
        return entries


CHUNK = 500
"""Units read per round trip by :func:`unit_rows`: memory stays flat on a million-unit store."""


def _unit_chunks(
    session: Session, *, batch: str | None, since: datetime | None
) -> Iterator[list[tuple[Unit, Any]]]:
    """Units in id order, CHUNK at a time (keyset paging: no OFFSET that slows down)."""
    last = 0
    base = _units_query(batch=batch, since=since, ready_only=False)
    while True:
        rows = [(u, r) for u, r in session.execute(base.where(Unit.id > last).limit(CHUNK)).all()]
        if not rows:
            return
        yield rows
        last = rows[-1][0].id


def _chunk_details(
    session: Session, ids: list[int]
) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Attempt outcomes (by number) and "kind=serial" parts (by id) of these units."""
    outcomes: dict[int, list[str]] = {i: [] for i in ids}
    for unit_id, outcome in session.execute(
        select(UnitAttempt.unit_id, UnitAttempt.outcome)
        .where(UnitAttempt.unit_id.in_(ids))
        .order_by(UnitAttempt.unit_id, UnitAttempt.number)
    ).all():
        outcomes[unit_id].append(outcome)
    parts: dict[int, list[str]] = {i: [] for i in ids}
    for unit_id, kind, serial in session.execute(
        select(Part.unit_id, Part.kind, Part.part_serial)
        .where(Part.unit_id.in_(ids))
        .order_by(Part.unit_id, Part.id)
    ).all():
        parts[unit_id].append(f"{kind}={serial or ''}")
    return outcomes, parts


def _unit_row(unit: Unit, ready_at: Any, outcomes: list[str], parts: list[str]) -> dict[str, Any]:
    fw = firmware_fields(unit.firmware, modules=False)
    cloud = unit.cloud or {}
    return {
        "serial_number": unit.serial_number,
        "device_id": unit.device_id,
        "sku": unit.sku,
        "iccid": unit.iccid,
        "imei": unit.imei,
        "status": unit.status,
        "reason": unit.reason,
        "batch": unit.batch,
        "station": unit.station,
        "slot": unit.slot,
        "attempts": len(outcomes),
        "first_pass": bool(outcomes) and outcomes[0] == "pass",
        "last_outcome": outcomes[-1] if outcomes else None,
        "test_bundle": (fw["test"] or {}).get("bundle"),
        "test_digest": (fw["test"] or {}).get("digest"),
        "production_bundle": (fw["production"] or {}).get("bundle"),
        "production_digest": (fw["production"] or {}).get("digest"),
        "parts": "; ".join(parts),
        "cloud_state": cloud.get("state"),
        "cloud_group": cloud.get("group"),
        "created_at": _iso(unit.created_at),
        "ready_at": _iso(_fix_tz(ready_at)),
        "updated_at": _iso(unit.updated_at),
    }


def unit_rows(
    store: Store, *, batch: str | None = None, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """One row per unit: identity, status, batch, test summary, firmware, parts, cloud.

    Three queries per :data:`CHUNK` units, whatever the store's size.
    """
    with store.session() as session:
        for chunk in _unit_chunks(session, batch=batch, since=since):
            outcomes, parts = _chunk_details(session, [u.id for u, _r in chunk])
            for unit, ready_at in chunk:
                yield _unit_row(unit, ready_at, outcomes[unit.id], parts[unit.id])


def measurement_rows(
    store: Store, *, batch: str | None = None, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """One row per measurement of every attempt, with its limits, verdict and attempt."""
    query = (
        select(UnitMeasurement, UnitAttempt, Unit)
        .join(UnitAttempt, UnitMeasurement.attempt_id == UnitAttempt.id)
        .join(Unit, UnitAttempt.unit_id == Unit.id)
        .order_by(Unit.id, UnitAttempt.number, UnitMeasurement.id)
    )
    query = _in_window(query, batch=batch, since=since, at=UnitAttempt.started_at)
    with store.session() as session:
        for m, attempt, unit in session.execute(query.execution_options(yield_per=1000)):
            yield {
                "serial_number": unit.serial_number,
                "device_id": unit.device_id,
                "sku": unit.sku,
                "batch": unit.batch,
                "attempt": attempt.number,
                "attempt_outcome": attempt.outcome,
                "station": attempt.station,
                "slot": attempt.slot,
                **measurement_fields(m),
                "started_at": _iso(attempt.started_at),
                "finished_at": _iso(attempt.finished_at),
            }


def event_rows(
    store: Store, *, batch: str | None = None, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """One row per unit event, oldest first."""
    query = (
        select(Event, Unit.serial_number, Unit.batch)
        .join(Unit, Event.unit_id == Unit.id)
        .order_by(Event.at, Event.id)
    )
    query = _in_window(query, batch=batch, since=since, at=Event.at)
    with store.session() as session:
        for event, serial, unit_batch in session.execute(query.execution_options(yield_per=1000)):
            data = event.data or {}
            yield {
                "at": _iso(event.at),
                "serial_number": serial,
                "device_id": event.device_id,
                "batch": unit_batch,
                "kind": event.kind,
                "station": event.source,
                "slot": data.get("slot"),
                "operator": data.get("operator"),
                "detail": event.message,
            }
