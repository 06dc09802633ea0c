"""The flash-record repository: the only place that writes or reads ``flash_records`` SQL.

The flashing service calls :func:`begin_flash` before the first byte goes to a
device and :func:`finish_flash` after the read-back, so a unit is never flashed
without a record (see :mod:`trayline.store.models.flash`). Readers (the unit
record, ``trayline device flash --json``, reports) get :class:`FlashRecordView`,
plain data with no session attached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from trayline.store.db import Store
from trayline.store.models.base import utcnow
from trayline.store.models.flash import FlashRecord

__all__ = [
    "FlashRecordView",
    "InTransaction",
    "begin_flash",
    "finish_flash",
    "flash_records_for_device",
    "flash_records_for_unit",
    "latest_flash",
]


_TABLE: Table = FlashRecord.__table__  # type: ignore[assignment]

InTransaction = Callable[[Session], object]
"""More writes for the transaction that completes a flash record (another repository's)."""


@dataclass(frozen=True, slots=True)
class FlashRecordView:
    """One flash attempt as stored."""

    id: int
    device_id: str
    unit_id: int | None
    role: str | None
    bundle_name: str
    bundle_digest: str
    backend: str
    probe_id: str
    slot: str | None
    full: bool
    status: str
    modules: tuple[dict[str, Any], ...]
    bytes_written: int
    seconds: float
    verified: bool
    error: str | None
    started_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device_id": self.device_id,
            "unit_id": self.unit_id,
            "role": self.role,
            "bundle": self.bundle_name,
            "digest": self.bundle_digest,
            "backend": self.backend,
            "probe": self.probe_id,
            "slot": self.slot,
            "full": self.full,
            "status": self.status,
            "modules": list(self.modules),
            "bytes_written": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "verified": self.verified,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


_VIEW_COLUMNS = tuple(name for name in FlashRecordView.__dataclass_fields__ if name != "modules")


def _view(row: FlashRecord) -> FlashRecordView:
    return FlashRecordView(
        id=row.id,
        device_id=row.device_id,
        unit_id=row.unit_id,
        role=row.role,
        bundle_name=row.bundle_name,
        bundle_digest=row.bundle_digest,
        backend=row.backend,
        probe_id=row.probe_id,
        slot=row.slot,
        full=row.full,
        status=row.status,
        modules=tuple(row.modules or ()),
        bytes_written=row.bytes_written,
        seconds=row.seconds,
        verified=row.verified,
        error=row.error,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def begin_flash(
    store: Store,
    *,
    device_id: str,
    bundle_name: str,
    bundle_digest: str,
    backend: str,
    probe_id: str,
    planned: Sequence[dict[str, Any]],
    unit_id: int | None = None,
    role: str | None = None,
    slot: str | None = None,
    full: bool = False,
    also: InTransaction | None = None,
) -> int:
    """Record the intent to flash (committed before any byte is written); returns its id.

    ``also`` adds writes that must be on disk before the device is written (the
    station records the device ID read from silicon here): one transaction, one
    flush. If it raises, nothing is recorded and the error goes to the caller.
    """
    # Core INSERT … RETURNING id: one statement, none of the ORM unit of work. An INSERT
    # first: SQLite's write lock is taken before any read.
    with store.session() as session:
        record_id: int = session.execute(
            insert(_TABLE)
            .values(
                device_id=device_id,
                unit_id=unit_id,
                role=role,
                bundle_name=bundle_name,
                bundle_digest=bundle_digest,
                backend=backend,
                probe_id=probe_id,
                slot=slot,
                full=full,
                status="writing",
                modules=list(planned),
                bytes_written=0,
                seconds=0.0,
                verified=False,
                started_at=utcnow(),
            )
            .returning(_TABLE.c.id)
        ).scalar_one()
        if also is not None:
            also(session)
        return record_id


def finish_flash(
    store: Store,
    record_id: int,
    *,
    status: str,
    modules: Sequence[dict[str, Any]],
    bytes_written: int,
    seconds: float,
    verified: bool,
    error: str | None = None,
    also: InTransaction | None = None,
) -> FlashRecordView:
    """Complete a record with what happened (``done`` or ``failed``).

    ``also`` writes what follows from the flash (the unit's next status and its
    event) in the same transaction, so one disk flush records both. If it raises
    (the unit's lease was lost, say), or the commit with its writes fails, that
    transaction is rolled back and the record is completed on its own in a second
    one, then the error is raised to the caller: a device is never left flashed
    behind a record that says ``writing``. (No savepoint: the usual case costs
    two statements fewer, the rare refusal one more transaction.)
    """
    if status not in ("done", "failed"):
        raise ValueError(f"a flash ends done or failed, not {status!r}")
    completed = (
        update(_TABLE)
        .where(_TABLE.c.id == record_id)
        .values(
            status=status,
            modules=list(modules),
            bytes_written=bytes_written,
            seconds=seconds,
            verified=verified,
            error=error,
            finished_at=utcnow(),
        )
        .returning(*_TABLE.c)
    )
    try:
        with store.session() as session:
            # Write first: on SQLite a transaction that reads and then writes fails with
            # "database is locked" (no busy wait) when another slot committed in between.
            # One UPDATE … RETURNING gives the row for the view (no second statement).
            view = _completed(session, completed, record_id)
            if also is not None:
                also(session)
        return view
    except Exception as exc:
        if also is None:
            raise
        refused = exc  # raised below, once the record itself is committed
    # ``also`` (or the commit with its writes) was refused: the whole transaction was
    # rolled back, so complete the record on its own. A failure of the store itself fails
    # here again and is raised instead.
    with store.session() as session:
        _completed(session, completed, record_id)
    raise refused


def _completed(session: Session, statement: Any, record_id: int) -> FlashRecordView:
    row = session.execute(statement).first()
    if row is None:
        raise LookupError(f"no flash record {record_id}")
    values = row._mapping
    return FlashRecordView(
        **{name: values[name] for name in _VIEW_COLUMNS},
        modules=tuple(values["modules"] or ()),
    )


def flash_records_for_device(
    store: Store, device_id: str, limit: int = 100
) -> list[FlashRecordView]:
    """The newest records for a device, newest first."""
    with store.session() as session:
        rows = session.scalars(
            select(FlashRecord)
            .where(FlashRecord.device_id == device_id)
            .order_by(FlashRecord.started_at.desc(), FlashRecord.id.desc())
            .limit(limit)
        ).all()
        return [_view(r) for r in rows]


def flash_records_for_unit(store: Store, unit_id: int) -> list[FlashRecordView]:
    """Every record of a unit, oldest first (the unit's firmware history)."""
    with store.session() as session:
        rows = session.scalars(
            select(FlashRecord)
            .where(FlashRecord.unit_id == unit_id)
            .order_by(FlashRecord.started_at, FlashRecord.id)
        ).all()
        return [_view(r) for r in rows]


def latest_flash(
    store: Store, device_id: str, *, role: str | None = None, status: str | None = "done"
) -> FlashRecordView | None:
    """The newest record for a device (of a role, with a status), or ``None``."""
    query = select(FlashRecord).where(FlashRecord.device_id == device_id)
    if role is not None:
        query = query.where(FlashRecord.role == role)
    if status is not None:
        query = query.where(FlashRecord.status == status)
    query = query.order_by(FlashRecord.started_at.desc(), FlashRecord.id.desc()).limit(1)
    with store.session() as session:
        row = session.scalars(query).first()
        return _view(row) if row else None
