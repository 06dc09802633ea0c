"""The unit repository: the only place the line's SQL is written.

The station (:mod:`trayline.station`) decides; this module records. Each
function is one short transaction, so what is on disk is always a state the
station can resume from:

* :func:`register_unit` creates a unit from a sticker scan (or finds it);
* :func:`link_part` inserts a part row; the unique constraint on
  ``(kind, unique_serial)`` decides races, and the loser gets
  :class:`PartTaken` naming the unit that holds the part;
* :func:`take_lease` is a compare-and-swap ``UPDATE``: one process works a
  unit at a time, on SQLite and PostgreSQL alike;
* :func:`advance` moves a unit to a new status *and* appends its event in the
  same transaction, only while the caller holds the lease;
* attempts and their measurements are written once, when the test ends.

Readers get plain frozen dataclasses (:class:`UnitView`), never live ORM rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trayline.store.db import Store
from trayline.store.models.base import utcnow
from trayline.store.models.line import Event, Part, Unit, UnitAttempt, UnitMeasurement
from trayline.store.outbox import enqueue_final_state
from trayline.store.unit_leases import lease_by_serial, release_lease, take_lease
from trayline.store.unit_queries import (
    ATTEMPT,
    ATTEMPT_NUMBERS,
    UNIT_FOR_UPDATE,
    AttemptView,
    EventView,
    UnitView,
    find_unit,
    list_units,
    unit_attempts,
    unit_by_serial,
    unit_events,
    unit_ids_in,
    unit_view,
    view_of,
)
from trayline.store.unit_sessions import ThreadedStore, for_threads, writing

__all__ = [
    "AttemptView",
    "DeviceClaimed",
    "EventContext",
    "EventView",
    "LeaseLost",
    "PartTaken",
    "ThreadedStore",
    "UnitView",
    "add_event",
    "advance",
    "advance_in",
    "find_unit",
    "finish_attempt",
    "finish_attempt_in",
    "for_threads",
    "identify",
    "identify_in",
    "lease_by_serial",
    "link_part",
    "list_units",
    "open_attempt",
    "register_unit",
    "release_lease",
    "set_cloud",
    "take_lease",
    "unit_attempts",
    "unit_by_serial",
    "unit_events",
    "unit_ids_in",
]


class PartTaken(Exception):
    """The part serial is already linked to another unit (the database refused the second link)."""

    def __init__(self, kind: str, serial: str, holder: str) -> None:
        super().__init__(f"{kind} {serial} is already linked to unit {holder}")
        self.kind = kind
        self.serial = serial
        self.holder = holder


class LeaseLost(Exception):
    """The caller no longer holds the unit's lease: another process took it over."""


@dataclass(frozen=True, slots=True)
class EventContext:
    """Who and where, stamped on every event: station, slot, operator."""

    station: str
    slot: str | None = None
    operator: str | None = None


def _event(
    session: Session,
    unit: Unit,
    ctx: EventContext,
    kind: str,
    detail: str | None,
    data: Mapping[str, Any] | None = None,
) -> None:
    payload: dict[str, Any] = {"station": ctx.station, "slot": ctx.slot, "operator": ctx.operator}
    payload.update(data or {})
    session.add(
        Event(
            unit_id=unit.id,
            device_id=unit.device_id,
            kind=kind,
            source=ctx.station,
            message=detail,
            data=payload,
        )
    )


def register_unit(
    store: Store,
    serial: str,
    *,
    sku: str,
    ctx: EventContext,
    expected_device_id: str | None = None,
    iccid: str | None = None,
    imei: str | None = None,
) -> tuple[UnitView, bool]:
    """The unit for ``serial``, created in status ``scanned`` if new; returns (unit, created)."""
    for _ in range(2):
        try:
            with writing(store) as session:
                row = session.scalars(select(Unit).where(Unit.serial_number == serial)).first()
                if row is not None:
                    return unit_view(session, row), False
                row = Unit(
                    serial_number=serial,
                    sku=sku,
                    status="scanned",
                    station=ctx.station,
                    expected_device_id=expected_device_id,
                    iccid=iccid,
                    imei=imei,
                )
                session.add(row)
                session.flush()
                _event(session, row, ctx, "scanned", f"sticker {serial} scanned")
                return unit_view(session, row), True
        except IntegrityError:
            continue  # another station registered it first: read theirs
    raise RuntimeError(f"unit {serial}: could not register or read it")  # pragma: no cover


def _holder(store: Store, kind: str, serial: str) -> str:
    with store.session() as session:
        holder = session.execute(
            select(Unit.serial_number)
            .join(Part, Part.unit_id == Unit.id)
            .where(Part.kind == kind, Part.unique_serial == serial)
        ).scalar()
    return holder or "(unknown)"


def link_part(
    store: Store,
    unit_id: int,
    kind: str,
    serial: str,
    *,
    unique: bool,
    ctx: EventContext,
    complete: Collection[str] = (),
) -> UnitView | None:
    """Link a part; the unit's view after it, None when this unit already has it,
    :class:`PartTaken` when another does.

    ``complete``: the part kinds a unit needs; when it then has them all it moves to
    ``parts_linked`` in the same transaction (the event lists its parts), so the scan
    that completes a unit costs one flush, not two.
    """
    try:
        with writing(store) as session:
            unit = session.get(Unit, unit_id)
            if unit is None:
                raise LookupError(f"no unit {unit_id}")
            same = session.scalars(
                select(Part.id).where(
                    Part.unit_id == unit_id, Part.kind == kind, Part.part_serial == serial
                )
            ).first()
            if same is not None:
                return None
            session.add(
                Part(
                    unit_id=unit_id,
                    kind=kind,
                    part_serial=serial,
                    unique_serial=serial if unique else None,
                )
            )
            session.flush()
            _event(
                session,
                unit,
                ctx,
                "part_linked",
                f"{kind} {serial}",
                {"part": kind, "serial": serial},
            )
            view = unit_view(session, unit)
            if not complete or not set(complete) <= {k for k, _ in view.parts}:
                return view
            names = ", ".join(f"{k} {s}" for k, s in view.parts)
            unit = _apply(session, unit_id, "parts_linked", owner=None, ctx=ctx, detail=names)
            session.flush()
            return view_of(unit, view.parts, view.attempts, view.running_attempt)
    except IntegrityError:
        raise PartTaken(kind, serial, _holder(store, kind, serial)) from None


def _apply(
    session: Session,
    unit_id: int,
    status: str,
    *,
    owner: str | None,
    ctx: EventContext,
    detail: str | None,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    row: Unit | None = None,
) -> Unit:
    """One transition; ``row`` is the unit already loaded (and locked) in this transaction."""
    if row is None:
        row = session.scalars(UNIT_FOR_UPDATE, {"unit_id": unit_id}).first()
    if row is None:
        raise LookupError(f"no unit {unit_id}")
    if owner is not None and row.lease_owner != owner:
        raise LeaseLost(f"unit {row.serial_number}: lease now held by {row.lease_owner}")
    row.status = status
    row.reason = reason
    if ctx.slot is not None:
        row.slot = ctx.slot
    for name, value in (fields or {}).items():
        setattr(row, name, value)
    # No flush here: a chain of transitions (verified → setup done → ready) is one UPDATE of
    # the unit at commit, and its events are inserted in order (autoflush before any read).
    _event(session, row, ctx, status, detail, data)
    # Outbox hook (issue 12): a final state (ready/failed) and its message to the
    # customer's system are written in this one transaction; a no-op otherwise.
    enqueue_final_state(session, row)
    return row


def advance(
    store: Store,
    unit_id: int,
    status: str,
    *,
    owner: str | None,
    ctx: EventContext,
    detail: str | None = None,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    then: Sequence[tuple[str, str]] = (),
    open_attempt: bool = False,
) -> UnitView:
    """Set the unit's status (and ``fields``) and append the event, in one transaction.

    ``open_attempt`` also opens the next test attempt in it (the status before
    testing). ``then`` adds further (status, detail) transitions to the same transaction:
    steps that touch no device in between (setup done → ready) cost one disk
    flush, not one each. With ``owner`` the update only happens while that
    owner holds the lease; otherwise :class:`LeaseLost`.
    """
    with writing(store) as session:
        return advance_in(
            session,
            unit_id,
            status,
            owner=owner,
            ctx=ctx,
            detail=detail,
            reason=reason,
            data=data,
            fields=fields,
            then=then,
            open_attempt=open_attempt,
        )


def advance_in(
    session: Session,
    unit_id: int,
    status: str,
    *,
    owner: str | None,
    ctx: EventContext,
    detail: str | None = None,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    then: Sequence[tuple[str, str]] = (),
    open_attempt: bool = False,
    known: UnitView | None = None,
) -> UnitView:
    """:func:`advance` inside a transaction another repository opened — a flash record
    completed together with the status it leads to (``flash_records.finish_flash(also=)``).
    ``known``: a slot's view since its lease (no parts linked since): its parts and attempts
    are not read again."""
    row = _apply(
        session,
        unit_id,
        status,
        owner=owner,
        ctx=ctx,
        detail=detail,
        reason=reason,
        data=data,
        fields=fields,
    )
    for next_status, next_detail in then:
        row = _apply(
            session, unit_id, next_status, owner=None, ctx=ctx, detail=next_detail, row=row
        )
    number = _new_attempt(session, unit_id, ctx) if open_attempt else None
    if known is None:
        return unit_view(session, row)
    session.flush()  # the row's updated_at, as a read would have flushed it
    opened = number is not None and number != known.running_attempt
    running = number if number is not None else known.running_attempt
    return view_of(row, known.parts, known.attempts + opened, running)


def add_event(
    store: Store,
    unit_id: int,
    kind: str,
    *,
    ctx: EventContext,
    detail: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    """An event that changes no status (an intent, a refusal, an operator note)."""
    with writing(store) as session:
        row = session.get(Unit, unit_id)
        if row is None:
            raise LookupError(f"no unit {unit_id}")
        _event(session, row, ctx, kind, detail, data)


def _running_attempt(session: Session, unit_id: int) -> int | None:
    running = session.execute(ATTEMPT_NUMBERS, {"unit_id": unit_id}).one()[1]
    return None if running is None else int(running)


def _new_attempt(session: Session, unit_id: int, ctx: EventContext) -> int:
    last, running = session.execute(ATTEMPT_NUMBERS, {"unit_id": unit_id}).one()
    if running is not None:
        return int(running)
    number = (last or 0) + 1
    session.add(UnitAttempt(unit_id=unit_id, number=number, station=ctx.station, slot=ctx.slot))
    return number


def open_attempt(store: Store, unit_id: int, ctx: EventContext) -> int:
    """The attempt in progress (an interrupted one is continued) or a new one; its number.

    Usually the attempt was opened with the status before it (``advance(...,
    open_attempt=True)``), so this is a read; it writes only when none runs.
    """
    with store.session() as session:
        running = _running_attempt(session, unit_id)
    if running is not None:
        return running
    with writing(store) as session:
        return _new_attempt(session, unit_id, ctx)


def finish_attempt(
    store: Store,
    unit_id: int,
    number: int,
    *,
    outcome: str,
    reason: str | None,
    measurements: Sequence[Mapping[str, Any]],
    transition: tuple[str, str | None, str | None] | None = None,
    owner: str | None = None,
    ctx: EventContext | None = None,
) -> UnitView | None:
    """Close an attempt with its outcome and every measurement, in one transaction.

    ``transition`` (status, detail, reason) moves the unit in the same
    transaction (tested, or failed with the test's reason).
    """
    with writing(store) as session:
        unit = finish_attempt_in(
            session,
            unit_id,
            number,
            outcome=outcome,
            reason=reason,
            measurements=measurements,
            transition=transition,
            owner=owner,
            ctx=ctx,
        )
        return None if unit is None else unit_view(session, unit)


def finish_attempt_in(
    session: Session,
    unit_id: int,
    number: int,
    *,
    outcome: str,
    reason: str | None,
    measurements: Sequence[Mapping[str, Any]],
    transition: tuple[str, str | None, str | None] | None = None,
    owner: str | None = None,
    ctx: EventContext | None = None,
    finished_at: datetime | None = None,
) -> Unit | None:
    """:func:`finish_attempt` inside a transaction another repository opened (a passed test,
    with the production flash's intent); ``finished_at``: when the test ended (default now).
    Returns the unit row when ``transition`` moved it."""
    row = session.scalars(ATTEMPT, {"unit_id": unit_id, "number": number}).one()
    row.outcome = outcome
    row.reason = reason
    row.finished_at = finished_at or utcnow()
    # Added by attempt_id, not assigned to row.measurements: that would first load the
    # attempt's (empty) list, one more query per test.
    session.add_all(
        UnitMeasurement(
            attempt_id=row.id,
            step=m.get("step") or None,
            name=str(m["name"]),
            value=m.get("value"),
            unit=m.get("unit") or None,
            low=m.get("low"),
            high=m.get("high"),
            equals=m.get("equals"),
            regex=m.get("regex"),
            verdict=str(m["verdict"]),
            reason=m.get("reason"),
        )
        for m in measurements
    )
    if transition is None or ctx is None:
        return None
    status, detail, why = transition
    return _apply(session, unit_id, status, owner=owner, ctx=ctx, detail=detail, reason=why)


def set_cloud(store: Store, unit_id: int, cloud: Mapping[str, Any], *, ctx: EventContext) -> None:
    """Record what provisioning learned (product, group, name, state) on the unit."""
    with writing(store) as session:
        row = session.get(Unit, unit_id)
        if row is None:
            raise LookupError(f"no unit {unit_id}")
        row.cloud = dict(cloud)
        _event(session, row, ctx, "cloud", str(cloud.get("state")), dict(cloud))


class DeviceClaimed(Exception):
    """The device ID read from silicon already belongs to another unit."""

    def __init__(self, device_id: str, holder: str) -> None:
        super().__init__(f"device {device_id} already belongs to unit {holder}")
        self.device_id = device_id
        self.holder = holder


def identify_in(session: Session, unit_id: int, device_id: str, *, ctx: EventContext) -> None:
    """:func:`identify` inside a transaction another repository opened (the flash intent's).

    The ID's unique constraint is checked in a savepoint, so the holder can be
    named; :class:`DeviceClaimed` then undoes the whole transaction.
    """
    row = session.get(Unit, unit_id)
    if row is None:
        raise LookupError(f"no unit {unit_id}")
    if row.device_id == device_id:
        return
    try:
        with session.begin_nested():
            row.device_id = device_id
            session.flush()
    except IntegrityError:
        holder = session.execute(
            select(Unit.serial_number).where(Unit.device_id == device_id)
        ).scalar()
        raise DeviceClaimed(device_id, holder or "(unknown)") from None
    _event(session, row, ctx, "identified", f"device ID {device_id} read from silicon")


def identify(store: Store, unit_id: int, device_id: str, *, ctx: EventContext) -> None:
    """Record the device ID read from silicon on the unit (once; a repeat is a no-op)."""
    try:
        with writing(store) as session:
            row = session.get(Unit, unit_id)
            if row is None:
                raise LookupError(f"no unit {unit_id}")
            if row.device_id == device_id:
                return
            row.device_id = device_id
            session.flush()
            _event(session, row, ctx, "identified", f"device ID {device_id} read from silicon")
    except IntegrityError:
        with store.session() as session:
            holder = session.execute(
                select(Unit.serial_number).where(Unit.device_id == device_id)
            ).scalar()
        raise DeviceClaimed(device_id, holder or "(unknown)") from None
