"""The provisioning jobs repository: every SQL statement about jobs, their devices and leases.

Services (:mod:`trayline.provisioning`) speak in jobs, device rows and leases;
this module turns that into SQL that runs the same on SQLite and PostgreSQL.
It knows nothing of the cloud or the planner: rows go in and out as plain
tuples and mappings, and the service layer gives them meaning.

Three things here exist for a factory floor rather than a laptop:

* **Concurrent creation.** Two processes that start the same job at the same
  moment both try to insert it; the loser meets the unique key, rolls back,
  and re-reads the winner's row (:func:`create_job` returns it as "found").
* **One worker per job.** :func:`take_lease` is a compare-and-swap ``UPDATE``:
  it succeeds only if the lease is free, expired, already ours, or held by a
  process on this host that no longer exists (a SIGKILLed run must not block
  its own re-run for the lease's lifetime). Otherwise the current holder
  comes back so the caller can name it. A heartbeat (:func:`renew_lease`)
  pushes the expiry on; a holder that stops renewing loses the job after
  the expiry, so a dead machine never blocks a job forever.
* **Group commits.** The engine's writes arrive as small operations
  (``Op``: a function of a session) that :class:`~trayline.store.writer.StoreWriter`
  commits many at a time; the builders below make those operations.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trayline.core.processes import process_alive
from trayline.store.clock import database_now
from trayline.store.db import Store
from trayline.store.models import CloudCall, Event, ProvisioningDevice, ProvisioningJob

__all__ = [
    "DeviceRow",
    "JobRow",
    "JobTotals",
    "LeaseHolder",
    "Op",
    "accounts_for",
    "add_event",
    "call_rows_op",
    "create_job",
    "device_rows",
    "event_op",
    "find_job",
    "job_row",
    "job_totals",
    "mark_op",
    "release_lease",
    "renew_lease",
    "set_job",
    "set_job_op",
    "take_lease",
    "take_lease_holder",
    "update_devices_op",
]

Op = Callable[[Session], None]
"""One write, run inside a transaction the writer owns (many ops share one commit)."""

_CHUNK = 500
STEP_COLUMNS = frozenset({"imported", "grouped", "named", "claimed", "verified"})
DEVICE_FIELDS = STEP_COLUMNS | {"device_id", "serial_number", "failure", "last_error"}
JOB_FIELDS = frozenset({"status", "group_status", "last_error", "finished_at"})


class DeviceRow(NamedTuple):
    """One device of a job, in the order :class:`~trayline.provisioning.plan.DeviceState` takes."""

    key: int
    identifier: str
    id_kind: str
    device_id: str | None
    serial_number: str | None
    imported: str
    grouped: str
    named: str
    claimed: str
    verified: str
    failure: str | None


@dataclass(frozen=True, slots=True)
class JobRow:
    """The job's own row, detached from any session."""

    id: int
    key: str
    api_url: str | None
    account: str | None
    product: str
    group_name: str | None
    name_mode: str
    claim_mode: str
    claim_user: str | None
    input_path: str
    status: str
    group_status: str
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who works a job: a random token per run, and where that run lives."""

    token: str
    host: str
    pid: int
    since: datetime

    @classmethod
    def me(cls, token: str) -> LeaseHolder:
        return cls(token, socket.gethostname(), os.getpid(), datetime.now(UTC))

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since:%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True, slots=True)
class JobTotals:
    """A job row with its device counts, for ``provision status``."""

    job: JobRow
    devices: int
    provisioned: int
    failed: int


def _job_row(job: ProvisioningJob) -> JobRow:
    return JobRow(
        id=job.id,
        key=job.key,
        api_url=job.api_url,
        account=job.account,
        product=job.product,
        group_name=job.group_name,
        name_mode=job.name_mode,
        claim_mode=job.claim_mode,
        claim_user=job.claim_user,
        input_path=job.input_path,
        status=job.status,
        group_status=job.group_status,
        last_error=job.last_error,
        created_at=job.created_at,
    )


# -- finding and creating ----------------------------------------------------------------------


def find_job(store: Store, key: str) -> int | None:
    with store.session() as session:
        return session.scalar(select(ProvisioningJob.id).where(ProvisioningJob.key == key))


def accounts_for(store: Store, api_url: str) -> list[str]:
    """The accounts that have jobs against ``api_url`` (to find a job without asking the cloud)."""
    with store.session() as session:
        rows = session.scalars(
            select(ProvisioningJob.account)
            .where(ProvisioningJob.api_url == api_url, ProvisioningJob.account.is_not(None))
            .distinct()
        )
        return sorted(str(a) for a in rows)


def job_row(store: Store, job_id: int) -> JobRow:
    with store.session() as session:
        job = session.get(ProvisioningJob, job_id)
        if job is None:
            raise LookupError(f"no provisioning job {job_id}")
        return _job_row(job)


def create_job(
    store: Store,
    job: Mapping[str, Any],
    devices: Sequence[Mapping[str, Any]],
    event: Mapping[str, Any],
) -> tuple[int, bool]:
    """Insert a job and all its device rows in one transaction. Returns (job id, created).

    If another process inserted the same key first, its job is returned with
    ``created=False``: concurrent first runs agree on one job.
    """
    try:
        with store.session() as session:
            row = ProvisioningJob(**job)
            session.add(row)
            session.flush()
            job_id = row.id
            if devices:
                session.execute(
                    insert(ProvisioningDevice), [{**d, "job_id": job_id} for d in devices]
                )
            data = {**event.get("data", {}), "job_id": job_id}
            session.add(
                Event(
                    kind=event["kind"],
                    message=f"job {job_id}: {event['message']}",
                    data=data,
                    source="provision",
                )
            )
        return job_id, True
    except IntegrityError:
        found = find_job(store, str(job["key"]))
        if found is None:
            raise
        return found, False


# -- reading ------------------------------------------------------------------------------------


def device_rows(session_or_store: Store | Session, job_id: int) -> list[DeviceRow]:
    """Every device of a job, in input order, with only the columns the planner reads."""
    query = (
        select(
            ProvisioningDevice.id,
            ProvisioningDevice.identifier,
            ProvisioningDevice.id_kind,
            ProvisioningDevice.device_id,
            ProvisioningDevice.serial_number,
            ProvisioningDevice.imported,
            ProvisioningDevice.grouped,
            ProvisioningDevice.named,
            ProvisioningDevice.claimed,
            ProvisioningDevice.verified,
            ProvisioningDevice.failure,
        )
        .where(ProvisioningDevice.job_id == job_id)
        .order_by(ProvisioningDevice.id)
    )

    def rows(session: Session) -> list[DeviceRow]:
        return [DeviceRow(*r) for r in session.execute(query).all()]

    if isinstance(session_or_store, Session):
        return rows(session_or_store)
    with session_or_store.session() as session:
        return rows(session)


def job_totals(store: Store, job_id: int | None = None) -> list[JobTotals]:
    """Each job (or one) with how many devices it has, provisioned and failed."""
    done = func.sum(
        func.cast(
            (ProvisioningDevice.verified == "done") & ProvisioningDevice.failure.is_(None),
            ProvisioningDevice.id.type,
        )
    )
    failed = func.sum(
        func.cast(ProvisioningDevice.failure.is_not(None), ProvisioningDevice.id.type)
    )
    query = (
        select(ProvisioningJob, func.count(ProvisioningDevice.id), done, failed)
        .join(ProvisioningDevice, ProvisioningDevice.job_id == ProvisioningJob.id, isouter=True)
        .group_by(ProvisioningJob.id)
        .order_by(ProvisioningJob.id)
    )
    if job_id is not None:
        query = query.where(ProvisioningJob.id == job_id)
    with store.session() as session:
        result: list[Any] = list(session.execute(query))
        return [
            JobTotals(_job_row(job), int(count or 0), int(ok or 0), int(bad or 0))
            for job, count, ok, bad in result
        ]


# -- writing: operations for the group-committing writer ------------------------------------


def set_job_op(job_id: int, **fields: Any) -> Op:
    unknown = set(fields) - JOB_FIELDS
    if unknown:
        raise ValueError(f"not a job field: {sorted(unknown)}")

    def op(session: Session) -> None:
        session.execute(
            update(ProvisioningJob).where(ProvisioningJob.id == job_id).values(**fields)
        )

    return op


def set_job(store: Store, job_id: int, **fields: Any) -> None:
    with store.session() as session:
        set_job_op(job_id, **fields)(session)


@dataclass(frozen=True)
class MarkOp:
    """One step's status on many devices; marking ``sent`` (the intent) counts an attempt.

    Mergeable: the writer combines every ``MarkOp`` of one commit with the same
    column and status into one statement (a rate-bound job marks one device per
    request; one statement per request would cost more CPU than the request).
    """

    keys: tuple[int, ...]
    column: str
    status: str

    @property
    def merge_key(self) -> tuple[str, ...]:
        return ("mark", self.column, self.status)

    @classmethod
    def combine(cls, ops: Sequence[MarkOp]) -> MarkOp:
        return cls(tuple(k for op in ops for k in op.keys), ops[0].column, ops[0].status)

    def __call__(self, session: Session) -> None:
        values: dict[str, Any] = {self.column: self.status, "updated_at": datetime.now(UTC)}
        if self.status == "sent":
            values["attempts"] = ProvisioningDevice.attempts + 1
        ids = list(self.keys)
        for start in range(0, len(ids), _CHUNK):
            session.execute(
                update(ProvisioningDevice)
                .where(ProvisioningDevice.id.in_(ids[start : start + _CHUNK]))
                .values(**values)
            )


def mark_op(keys: Sequence[int], column: str, status: str) -> MarkOp:
    if column not in STEP_COLUMNS:
        raise ValueError(f"not a step column: {column}")
    return MarkOp(tuple(keys), column, status)


@dataclass(frozen=True)
class UpdateOp:
    """Per-device updates (each row has ``id`` and the columns to set); mergeable."""

    rows: tuple[Mapping[str, Any], ...]

    merge_key = ("update",)

    @classmethod
    def combine(cls, ops: Sequence[UpdateOp]) -> UpdateOp:
        return cls(tuple(row for op in ops for row in op.rows))

    def __call__(self, session: Session) -> None:
        if not self.rows:
            return
        now = datetime.now(UTC)
        # One executemany per set of keys; rows for one device keep their order.
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in self.rows:
            by_shape.setdefault(tuple(sorted(row)), []).append({**row, "updated_at": now})
        for shaped in by_shape.values():
            session.execute(update(ProvisioningDevice), shaped)


def update_devices_op(rows: Sequence[Mapping[str, Any]]) -> UpdateOp:
    for shape in {tuple(row) for row in rows}:  # a handful of shapes for thousands of rows
        unknown = set(shape) - DEVICE_FIELDS - {"id"}
        if unknown:
            raise ValueError(f"not a device field: {sorted(unknown)}")
    return UpdateOp(tuple(dict(row) for row in rows))


def event_op(kind: str, message: str, data: Mapping[str, Any], source: str = "provision") -> Op:
    def op(session: Session) -> None:
        session.add(Event(kind=kind, message=message, data=dict(data), source=source))

    return op


def add_event(
    store: Store, kind: str, message: str, data: Mapping[str, Any], source: str = "provision"
) -> None:
    """One event, committed now (an intent that must be on disk before a request goes out)."""
    with store.session() as session:
        event_op(kind, message, data, source)(session)


@dataclass(frozen=True)
class CallsOp:
    """Audit-log rows (see :class:`~trayline.store.models.CloudCall`), in the same commit as
    the results they explain: nothing answered before a commit is missing from the log."""

    rows: tuple[Mapping[str, Any], ...]

    merge_key = ("calls",)

    @classmethod
    def combine(cls, ops: Sequence[CallsOp]) -> CallsOp:
        return cls(tuple(row for op in ops for row in op.rows))

    def __call__(self, session: Session) -> None:
        if self.rows:
            session.execute(insert(CloudCall), [dict(row) for row in self.rows])


def call_rows_op(rows: Sequence[Mapping[str, Any]]) -> CallsOp:
    return CallsOp(tuple(dict(row) for row in rows))


# -- the lease ----------------------------------------------------------------------------------


def _alive_here(holder_host: str | None, pid: int | None) -> bool:
    """Whether the holder is a live process on this host (other hosts: assume alive)."""
    if holder_host != socket.gethostname() or pid is None:
        return True
    return process_alive(pid)


def take_lease(store: Store, job_id: int, me: LeaseHolder, ttl: timedelta) -> LeaseHolder | None:
    """Take the job's lease for ``ttl``. ``None`` on success, else the holder that has it.
    Expiry is by the database's clock (:mod:`trayline.store.clock`), not this host's."""
    with store.session() as session:
        now = database_now(session)
        row = session.execute(
            select(
                ProvisioningJob.lease_token,
                ProvisioningJob.lease_host,
                ProvisioningJob.lease_pid,
                ProvisioningJob.lease_since,
                ProvisioningJob.lease_expires_at,
            ).where(ProvisioningJob.id == job_id)
        ).one()
    token, host, pid, since, expires = row
    free = (
        token is None
        or token == me.token
        or expires is None
        or expires <= now
        or not _alive_here(host, pid)
    )
    if not free:
        return LeaseHolder(str(token), host or "?", pid or 0, since or now)
    with store.session() as session:
        held = (
            ProvisioningJob.lease_token.is_(None)
            if token is None
            else ProvisioningJob.lease_token == token
        )
        result = session.execute(
            update(ProvisioningJob)
            .where(ProvisioningJob.id == job_id, held)
            .values(
                lease_token=me.token,
                lease_host=me.host,
                lease_pid=me.pid,
                lease_since=me.since,
                lease_expires_at=now + ttl,
            )
        )
        taken = bool(result.rowcount)  # type: ignore[attr-defined]
    if taken:
        return None
    return take_lease_holder(store, job_id) or me


def take_lease_holder(store: Store, job_id: int) -> LeaseHolder | None:
    """The job's current holder, if any."""
    with store.session() as session:
        token, host, pid, since = session.execute(
            select(
                ProvisioningJob.lease_token,
                ProvisioningJob.lease_host,
                ProvisioningJob.lease_pid,
                ProvisioningJob.lease_since,
            ).where(ProvisioningJob.id == job_id)
        ).one()
    if token is None:
        return None
    return LeaseHolder(str(token), host or "?", pid or 0, since or datetime.now(UTC))


def renew_lease(store: Store, job_id: int, token: str, ttl: timedelta) -> bool:
    """Push the expiry on; ``False`` if the lease is no longer ours."""
    with store.session() as session:
        result = session.execute(
            update(ProvisioningJob)
            .where(ProvisioningJob.id == job_id, ProvisioningJob.lease_token == token)
            .values(lease_expires_at=database_now(session) + ttl)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release_lease(store: Store, job_id: int, token: str) -> None:
    with store.session() as session:
        session.execute(
            update(ProvisioningJob)
            .where(ProvisioningJob.id == job_id, ProvisioningJob.lease_token == token)
            .values(
                lease_token=None,
                lease_host=None,
                lease_pid=None,
                lease_since=None,
                lease_expires_at=None,
            )
        )
