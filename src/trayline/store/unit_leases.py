"""Unit leases: one process works a unit at a time (split from :mod:`trayline.store.units`,
which re-exports these, so each module stays small).

A lease is a compare-and-swap ``UPDATE`` on the owner the row held, on SQLite and
PostgreSQL alike, timed by the database's clock (:mod:`trayline.store.clock`). Its
writes are not flushed to disk on their own (:func:`trayline.store.unit_sessions.relaxed`):
a lease means nothing once the process that holds it is gone, and only a power cut or
an OS crash — which ends that process — can lose a write the next flushed commit has
not carried to disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trayline.store.clock import database_now
from trayline.store.db import Store
from trayline.store.models.line import Unit
from trayline.store.unit_queries import UNIT_BY_SERIAL, UnitView, unit_view
from trayline.store.unit_sessions import relaxed

__all__ = ["lease_by_serial", "release_lease", "take_lease"]


def take_lease(
    store: Store,
    unit_id: int,
    owner: str,
    *,
    ttl: timedelta,
    abandoned: Callable[[str], bool] = lambda _owner: False,
) -> bool:
    """Take or renew the unit's lease: a compare-and-swap on the owner the row held.

    Free, expired, already ours, or held by an ``abandoned`` owner (a process on
    this host that no longer exists) → taken. The ``UPDATE … WHERE lease_owner
    = <what we read>`` means two processes that both saw the lease free cannot
    both get it.
    """
    with relaxed(store) as session:  # no flush of its own: a lease dies with its process
        now = database_now(session)
        current = session.execute(
            select(Unit.lease_owner, Unit.lease_until).where(Unit.id == unit_id)
        ).first()
        if current is None:
            return False
        held_by, until = current
        return _swap(session, unit_id, held_by, until, owner, now, ttl, abandoned)


def _swap(
    session: Session,
    unit_id: int,
    held_by: str | None,
    until: datetime | None,
    owner: str,
    now: datetime,
    ttl: timedelta,
    abandoned: Callable[[str], bool],
) -> bool:
    """The lease rules on what the row held, then the compare-and-swap: True if taken."""
    expired = until is not None and until < now
    if held_by is not None and held_by != owner and not expired and not abandoned(held_by):
        return False
    cond = Unit.lease_owner.is_(None) if held_by is None else Unit.lease_owner == held_by
    result = session.execute(
        update(Unit)
        .where(Unit.id == unit_id, cond)
        .values(lease_owner=owner, lease_until=now + ttl)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def lease_by_serial(
    store: Store,
    serial: str,
    owner: str,
    *,
    ttl: timedelta,
    abandoned: Callable[[str], bool] = lambda _owner: False,
) -> UnitView | None:
    """The unit ``serial`` with its lease taken (:func:`take_lease`'s rules), in one
    transaction; ``None`` when there is no such unit or another owner holds it."""
    with relaxed(store) as session:  # no flush of its own: a lease dies with its process
        now = database_now(session)
        row = session.scalars(UNIT_BY_SERIAL, {"serial": serial}).first()
        if row is None:
            return None
        if not _swap(session, row.id, row.lease_owner, row.lease_until, owner, now, ttl, abandoned):
            return None
        return replace(unit_view(session, row), lease_owner=owner, lease_until=now + ttl)


def release_lease(store: Store, unit_id: int, owner: str) -> None:
    with relaxed(store) as session:
        session.execute(
            update(Unit)
            .where(Unit.id == unit_id, Unit.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
