"""What the web pages read about units: searches, genealogy, unit lists, exports.

Every query here is bounded (a ``LIMIT`` or a keyset page) and answered from an
index (migration 0006 adds the ones the web needs), so a page costs the same at
a thousand units as at a million. The dashboard's aggregates are in
:mod:`trayline.store.dashboard`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    func,
    or_,
    select,
    union,
)
from sqlalchemy.orm import Session

from trayline.store.db import Store
from trayline.store.models.line import Part, Unit, UnitAttempt, UnitMeasurement

__all__ = [
    "MAX_PAGE",
    "MEASUREMENT_COLUMNS",
    "PartHit",
    "UnitRow",
    "iter_measurements",
    "iter_units",
    "search_units",
    "unit_page",
    "units_with_part",
]

MAX_PAGE = 500
"""The most rows one list request returns; ask for the next page with ``after``."""
EXPORT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class UnitRow:
    """A unit in a list: the keys of ``trayline units list --json`` (plus ``id``)."""

    id: int
    serial_number: str
    device_id: str | None
    sku: str | None
    status: str
    reason: str | None
    station: str | None
    slot: str | None
    attempts: int
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial_number": self.serial_number,
            "device_id": self.device_id,
            "sku": self.sku,
            "status": self.status,
            "reason": self.reason,
            "station": self.station,
            "slot": self.slot,
            "attempts": self.attempts,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PartHit:
    """A part that matched a reverse-genealogy search, with the unit built with it."""

    kind: str
    part_serial: str | None
    lot: str | None
    unit: UnitRow


def _attempt_count() -> Any:
    return (
        select(func.count(UnitAttempt.id))
        .where(UnitAttempt.unit_id == Unit.id)
        .correlate(Unit)
        .scalar_subquery()
    )


def _row_query() -> Select[Any]:
    return select(
        Unit.id,
        Unit.serial_number,
        Unit.device_id,
        Unit.sku,
        Unit.status,
        Unit.reason,
        Unit.station,
        Unit.slot,
        _attempt_count(),
        Unit.updated_at,
    )


def _unit_row(r: Any) -> UnitRow:
    return UnitRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8] or 0), r[9])


def _rows(session: Session, query: Select[Any]) -> list[UnitRow]:
    return [_unit_row(row) for row in session.execute(query)]


def _part_lookups(text: str, column: Any) -> tuple[Select[Any], Select[Any]]:
    """``column`` of the parts whose serial is ``text`` and of those whose lot is: two index
    lookups, to be UNIONed.

    ``part_serial = :q OR lot = :q`` under an ``ORDER BY … LIMIT`` lets PostgreSQL walk the
    primary key hoping to meet matches early — a scan of every part when there is one
    match. Each half of the union is one index lookup on both backends.
    """
    return select(column).where(Part.part_serial == text), select(column).where(Part.lot == text)


def _parts_matching(text: str) -> Any:
    """Ids of parts whose serial or lot is ``text``."""
    return union(*_part_lookups(text, Part.id)).subquery()


def _batch_units(batch: str) -> Any:
    """Ids of the units in the shipment ``batch`` (``export close-batch``) or built with a part
    whose lot or serial it is — a quality engineer types the carton off a returned box, or the
    lot off a reel, into the same box. Three index lookups in a UNION, each giving unit ids
    directly (a join back to ``parts`` by id read the whole table on PostgreSQL)."""
    return union(
        select(Unit.id.label("unit_id")).where(Unit.batch == batch),
        *_part_lookups(batch, Part.unit_id),
    ).subquery()


BATCH_WINDOW = 1000
"""Matching unit ids read per round when a page is filtered by batch."""


def unit_page(
    store: Store,
    *,
    status: str | None = None,
    batch: str | None = None,
    since: datetime | None = None,
    after: int = 0,
    limit: int = 100,
) -> tuple[list[UnitRow], int | None]:
    """One page of units, oldest first, and the ``after`` cursor of the next page (or None)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = _row_query().order_by(Unit.id)
    if status is not None:
        query = query.where(Unit.status == status)
    if since is not None:
        query = query.where(Unit.updated_at >= since)
    with store.session() as session:
        if batch is None:
            rows = _rows(session, query.where(Unit.id > after).limit(limit + 1))
        else:
            rows = _batch_rows(session, query, batch, after, limit + 1)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def _batch_rows(
    session: Session, query: Select[Any], batch: str, after: int, wanted: int
) -> list[UnitRow]:
    """Up to ``wanted`` rows of ``query`` among the batch's units after ``after``.

    Driven from the batch's unit ids, a window at a time in id order, then each window's
    units by primary key. As one ``IN (…) ORDER BY id LIMIT`` query, PostgreSQL walks
    the units' primary key from the start hoping to meet matches early, and a lot built
    late in a million units is met after most of them.
    """
    matches = _batch_units(batch)
    rows: list[UnitRow] = []
    size = min(wanted, BATCH_WINDOW)  # unfiltered, the first window is the page
    while len(rows) < wanted:
        window = list(
            session.scalars(
                select(matches.c.unit_id)
                .where(matches.c.unit_id > after)
                .order_by(matches.c.unit_id)
                .limit(size)
            )
        )
        rows += _rows(session, query.where(Unit.id.in_(window)).limit(wanted - len(rows)))
        if len(window) < size:
            break
        after, size = window[-1], BATCH_WINDOW  # a status or date filter left the page short
    return rows


def iter_units(
    store: Store, *, status: str | None = None, since: datetime | None = None
) -> Iterator[UnitRow]:
    """Every matching unit in pages of :data:`EXPORT_CHUNK` (for CSV exports)."""
    after = 0
    while True:
        rows, cursor = unit_page(store, status=status, since=since, after=after, limit=EXPORT_CHUNK)
        yield from rows
        if cursor is None:
            return
        after = cursor


def search_units(store: Store, q: str, limit: int = 50) -> list[UnitRow]:
    """Units whose serial, device ID, ICCID or IMEI is ``q`` (or whose serial starts with it)."""
    text = q.strip()
    if not text:
        return []
    exact = or_(
        Unit.serial_number == text.upper(),
        Unit.device_id == text.lower(),
        Unit.iccid == text,
        Unit.imei == text,
    )
    with store.session() as session:
        rows = _rows(session, _row_query().where(exact).order_by(Unit.id).limit(limit))
        if not rows and len(text) >= 4:
            prefix = text.upper()
            query = (
                _row_query()
                .where(Unit.serial_number >= prefix, Unit.serial_number < prefix + "\uffff")
                .order_by(Unit.serial_number)
                .limit(limit)
            )
            rows = _rows(session, query)
    return rows


def units_with_part(store: Store, q: str, limit: int = 200) -> tuple[list[PartHit], int]:
    """Reverse genealogy: every unit built with part serial or lot ``q``, and how many in all.

    Two steps, each an index lookup: the first ``limit`` matching part ids (from the union),
    then those parts with their units by primary key. (One joined query with ``ORDER BY …
    LIMIT`` lets PostgreSQL's planner walk the parts' primary key instead.)
    """
    text = q.strip()
    if not text:
        return [], 0
    matching = _parts_matching(text)
    with store.session() as session:
        ids = list(
            session.scalars(select(matching.c.id).order_by(matching.c.id).limit(limit)).all()
        )
        total = int(session.execute(select(func.count()).select_from(matching)).scalar_one())
        if not ids:
            return [], total
        query = (
            _row_query()
            .add_columns(Part.kind, Part.part_serial, Part.lot)
            .join(Part, Part.unit_id == Unit.id)
            .where(Part.id.in_(ids))
            .order_by(Part.id)
        )
        hits = [PartHit(r[10], r[11], r[12], _unit_row(r)) for r in session.execute(query)]
    return hits, total


MEASUREMENT_COLUMNS: Sequence[str] = (
    "serial_number",
    "attempt",
    "station",
    "slot",
    "finished_at",
    "step",
    "name",
    "value",
    "unit",
    "low",
    "high",
    "verdict",
)


def iter_measurements(store: Store, since: datetime) -> Iterator[tuple[Any, ...]]:
    """Every measurement of attempts finished since ``since``, in :data:`MEASUREMENT_COLUMNS`
    order, read in keyset pages so an export holds one page in memory."""
    after = 0
    while True:
        query = (
            select(
                UnitMeasurement.id,
                Unit.serial_number,
                UnitAttempt.number,
                UnitAttempt.station,
                UnitAttempt.slot,
                UnitAttempt.finished_at,
                UnitMeasurement.step,
                UnitMeasurement.name,
                UnitMeasurement.value,
                UnitMeasurement.unit,
                UnitMeasurement.low,
                UnitMeasurement.high,
                UnitMeasurement.verdict,
            )
            .join(UnitAttempt, UnitAttempt.id == UnitMeasurement.attempt_id)
            .join(Unit, Unit.id == UnitAttempt.unit_id)
            .where(UnitAttempt.finished_at >= since, UnitMeasurement.id > after)
            .order_by(UnitMeasurement.id)
            .limit(EXPORT_CHUNK)
        )
        with store.session() as session:
            rows = session.execute(query).all()
        for row in rows:
            yield tuple(row[1:])
        if len(rows) < EXPORT_CHUNK:
            return
        after = rows[-1][0]
