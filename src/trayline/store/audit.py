"""The store's side of the cloud client: the audit log and the persistent serial budget.

The client reports each request attempt as a :class:`~trayline.core.calls.CallRecord`
and asks a :class:`~trayline.core.calls.SerialBudget` before each serial lookup;
this module implements both on the store. The shapes live in the domain
(:mod:`trayline.core.calls`), so the client never imports SQL and the store
never imports HTTP (tests/architecture checks both).

Audit rows are buffered and written in batches (every ``batch`` records, and on
:meth:`StoreAudit.flush`): one fsync per request would make the audit log the
slowest part of a rate-bound job. Serial lookups are written at once, before the
request goes out, because losing one would let a restart overspend the budget.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from trayline.core.calls import CallRecord
from trayline.store.db import Store
from trayline.store.models import CloudCall, SerialLookup

__all__ = ["StoreAudit", "StoreSerialBudget"]


class StoreAudit:
    """Writes every cloud call's method, path template, status and duration."""

    def __init__(self, store: Store, *, job_id: int | None = None, batch: int = 200) -> None:
        self._store = store
        self.job_id = job_id
        """Stamped on the rows when they are written: a call made before its job existed
        (the account lookup that names the job) is filed under the job once it does."""
        self._batch = batch
        self._pending: list[dict[str, object]] = []

    def record_call(self, call: CallRecord) -> None:
        self._pending.append(
            {
                "method": call.method,
                "path_template": call.path_template,
                "status": call.status,
                "duration_ms": round(call.duration_ms, 3),
                "attempt": call.attempt,
                "error_kind": call.error_kind,
            }
        )
        if len(self._pending) >= self._batch:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        with self._store.session() as session:
            session.execute(insert(CloudCall), [{**row, "job_id": self.job_id} for row in rows])


class StoreSerialBudget:
    """Serial lookups per account, counted in the store so restarts do not reset them."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def used(self, account: str, since: datetime) -> list[datetime]:
        with self._store.session() as session:
            rows = session.scalars(
                select(SerialLookup.at)
                .where(SerialLookup.account == account, SerialLookup.at >= since)
                .order_by(SerialLookup.at)
            )
            return list(rows)

    def record(self, account: str, serial: str, at: datetime) -> None:
        with self._store.session() as session:
            session.add(SerialLookup(account=account, serial_number=serial, at=at))
