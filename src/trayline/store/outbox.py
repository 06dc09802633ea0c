"""The outbox repository: queueing a unit's final state and recording each delivery.

:func:`enqueue_final_state` is called by :func:`trayline.store.units.advance`
*inside its transaction* when a unit reaches ``ready`` or ``failed``: the
message exists exactly when the state does. Its payload is the unit record
(the shape of ``trayline units show --json``, :mod:`trayline.station.record`)
as of that transaction, built here from the same session because the record
must include the final event that is not committed yet.

The sender (:mod:`trayline.outbox.sender`) asks for :func:`due_messages` — per
unit only the oldest undelivered row, so one unit's messages go out in order —
and records each outcome at once: :func:`mark_sent` right after a 2xx (a crash
before it means one re-send with the same idempotency key, never a loss),
:func:`mark_retry` or :func:`mark_failed` otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trayline.store.db import Store
from trayline.store.models.base import utcnow
from trayline.store.models.line import Event, Part, Unit, UnitAttempt
from trayline.store.models.outbox import OutboxMessage
from trayline.store.record_fields import firmware_fields, measurement_fields

__all__ = [
    "FINAL_STATES",
    "OutboxCounts",
    "OutboxView",
    "due_messages",
    "enqueue_final_state",
    "list_messages",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "message_state",
    "next_due_at",
    "outbox_counts",
    "requeue",
    "unit_snapshot",
]

FINAL_STATES = frozenset({"ready", "failed"})
"""Unit statuses that put a message in the outbox (the station's terminal states)."""


@dataclass(frozen=True, slots=True)
class OutboxView:
    id: int
    unit_id: int
    serial_number: str
    sequence: int
    kind: str
    idempotency_key: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    pending: int
    sent: int
    failed: int
    oldest_pending: datetime | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _attempts(session: Session, unit_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(UnitAttempt).where(UnitAttempt.unit_id == unit_id).order_by(UnitAttempt.number)
    ).all()
    return [
        {
            "number": a.number,
            "outcome": a.outcome,
            "reason": a.reason,
            "station": a.station,
            "slot": a.slot,
            "started_at": a.started_at.isoformat(),
            "finished_at": _iso(a.finished_at),
            "measurements": [measurement_fields(m) for m in a.measurements],
        }
        for a in rows
    ]


def _events(session: Session, unit_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Event).where(Event.unit_id == unit_id).order_by(Event.at, Event.id)
    ).all()
    return [
        {
            "at": e.at.isoformat(),
            "kind": e.kind,
            "station": e.source,
            "slot": (e.data or {}).get("slot"),
            "operator": (e.data or {}).get("operator"),
            "detail": e.message,
        }
        for e in rows
    ]


def unit_snapshot(session: Session, unit: Unit) -> dict[str, Any]:
    """The unit record (same keys as :func:`trayline.station.record.unit_record`) in ``session``.

    A test holds the two shapes equal; this one exists because the outbox row
    must be built inside the transaction that sets the final state.
    """
    session.flush()
    parts = session.execute(
        select(Part.kind, Part.part_serial).where(Part.unit_id == unit.id).order_by(Part.id)
    ).all()
    attempts = _attempts(session, unit.id)
    return {
        "serial_number": unit.serial_number,
        "device_id": unit.device_id,
        "sku": unit.sku,
        "status": unit.status,
        "reason": unit.reason,
        "station": unit.station,
        "slot": unit.slot,
        "attempts": attempts,
        "updated_at": unit.updated_at.isoformat(),
        "iccid": unit.iccid,
        "imei": unit.imei,
        "expected_device_id": unit.expected_device_id,
        "parts": [{"name": kind, "serial": serial or ""} for kind, serial in parts],
        "firmware": firmware_fields(unit.firmware),
        "events": _events(session, unit.id),
        "cloud": dict(unit.cloud) if unit.cloud else None,
        "created_at": unit.created_at.isoformat(),
        "batch": unit.batch,
    }


def enqueue_final_state(session: Session, unit: Unit) -> None:
    """Queue ``unit``'s final state for the customer's system, in the caller's transaction.

    A no-op for a status that is not final. Every arrival at a final state is a
    message of its own: a failed unit that is retested and passes later sends
    ``unit.failed`` and then ``unit.ready``, in that order.
    """
    if unit.status not in FINAL_STATES:
        return
    last = session.execute(
        select(func.max(OutboxMessage.sequence)).where(OutboxMessage.unit_id == unit.id)
    ).scalar()
    sequence = (last or 0) + 1
    key = uuid.uuid4().hex
    record = unit_snapshot(session, unit)
    now = utcnow()
    kind = f"unit.{unit.status}"
    session.add(
        OutboxMessage(
            unit_id=unit.id,
            sequence=sequence,
            kind=kind,
            idempotency_key=key,
            payload={
                "kind": kind,
                "idempotency_key": key,
                "sequence": sequence,
                "queued_at": now.isoformat(),
                "unit": record,
            },
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def _view(row: OutboxMessage) -> OutboxView:
    return OutboxView(
        id=row.id,
        unit_id=row.unit_id,
        serial_number=str(row.payload.get("unit", {}).get("serial_number", "")),
        sequence=row.sequence,
        kind=row.kind,
        idempotency_key=row.idempotency_key,
        payload=dict(row.payload),
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def due_messages(
    store: Store, *, now: datetime | None = None, limit: int = 100
) -> list[OutboxView]:
    """The next message of each unit, when it is pending and its retry time has come.

    Per unit only the oldest undelivered row (pending or failed) is a
    candidate, so a later message never overtakes an earlier one, and a failed
    row holds back its unit's later rows until it is retried.
    """
    now = now or utcnow()
    heads = (
        select(func.min(OutboxMessage.id))
        .where(OutboxMessage.state.in_(("pending", "failed")))
        .group_by(OutboxMessage.unit_id)
    )
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.id.in_(heads),
            OutboxMessage.state == "pending",
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    with store.session() as session:
        return [_view(r) for r in session.scalars(query).all()]


def next_due_at(store: Store) -> datetime | None:
    """When the earliest pending head of a unit becomes due (None: nothing pending)."""
    heads = (
        select(func.min(OutboxMessage.id))
        .where(OutboxMessage.state.in_(("pending", "failed")))
        .group_by(OutboxMessage.unit_id)
    )
    with store.session() as session:
        value: datetime | None = session.execute(
            select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.id.in_(heads), OutboxMessage.state == "pending"
            )
        ).scalar()
    if value is not None and value.tzinfo is None:  # SQLite's min() bypasses the column type
        value = value.replace(tzinfo=UTC)
    return value


def mark_sent(store: Store, message_id: int) -> None:
    """The receiver acknowledged (2xx): never send this row again."""
    with store.session() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(state="sent", sent_at=utcnow(), last_error=None)
            .execution_options(synchronize_session=False)
        )


def mark_retry(store: Store, message_id: int, error: str, delay: timedelta) -> None:
    """A transient failure: try again after ``delay``."""
    with store.session() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.state == "pending")
            .values(
                attempts=OutboxMessage.attempts + 1,
                next_attempt_at=utcnow() + delay,
                last_error=error[:500],
            )
            .execution_options(synchronize_session=False)
        )


def mark_failed(store: Store, message_id: int, error: str) -> None:
    """The receiver refused the message for good (e.g. 400, 401): park it for a person."""
    with store.session() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.state == "pending")
            .values(state="failed", attempts=OutboxMessage.attempts + 1, last_error=error[:500])
            .execution_options(synchronize_session=False)
        )


def requeue(store: Store, *, message_id: int | None = None, all_failed: bool = False) -> int:
    """Make failed rows (one, or all) pending and due now; the number requeued."""
    query = update(OutboxMessage).where(OutboxMessage.state == "failed")
    if message_id is not None:
        query = query.where(OutboxMessage.id == message_id)
    elif not all_failed:
        return 0
    with store.session() as session:
        result = session.execute(
            query.values(state="pending", next_attempt_at=utcnow()).execution_options(
                synchronize_session=False
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def message_state(store: Store, message_id: int) -> str | None:
    with store.session() as session:
        state: str | None = session.execute(
            select(OutboxMessage.state).where(OutboxMessage.id == message_id)
        ).scalar()
        return state


def outbox_counts(store: Store) -> OutboxCounts:
    with store.session() as session:
        rows = session.execute(
            select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
        ).all()
        oldest = session.scalars(
            select(OutboxMessage.created_at)
            .where(OutboxMessage.state == "pending")
            .order_by(OutboxMessage.id)
            .limit(1)
        ).first()
    counts = {state: int(n) for state, n in rows}
    return OutboxCounts(
        counts.get("pending", 0), counts.get("sent", 0), counts.get("failed", 0), oldest
    )


def list_messages(
    store: Store, *, states: Sequence[str] | None = None, limit: int = 50
) -> list[OutboxView]:
    """Messages newest first (optionally only some states), for ``trayline outbox status``."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if states:
        query = query.where(OutboxMessage.state.in_(list(states)))
    with store.session() as session:
        return [_view(r) for r in session.scalars(query).all()]
