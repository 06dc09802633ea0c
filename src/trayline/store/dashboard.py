"""The dashboard's aggregates: yields per hour and batch, failures, measurements, slots, jobs.

Each query reads one time window (or the newest few rows) through an index that
migration 0006 adds — covering where it groups — so the dashboard costs the same
at a thousand units as at a million: it follows the units built in its window.
Counts are made in SQL per hour (one index range count per hour and outcome, so
no row of the window is sorted); :mod:`trayline.web.dashboard` folds hours into
days and shifts, so one query serves every view of the window. Every read runs
at every request: nothing here is cached.

Hours are text ``YYYY-MM-DD HH`` in UTC on both backends: SQLite stores
timestamps as UTC text (the prefix is the hour), PostgreSQL's hours come from
``generate_series`` over ``timestamptz`` and are printed in UTC.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    Text,
    case,
    cast,
    desc,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from trayline.store.db import Store
from trayline.store.models.base import UtcDateTime, utcnow
from trayline.store.models.line import Part, Unit, UnitAttempt, UnitMeasurement
from trayline.store.models.provisioning import ProvisioningDevice, ProvisioningJob
from trayline.store.reports import DeviceDetail, job_device_details

__all__ = [
    "HourCount",
    "JobDevice",
    "JobProgress",
    "MeasurementSeries",
    "SlotHealth",
    "batch_first_attempts",
    "batch_outcomes",
    "failed_measurements",
    "failure_reasons",
    "hourly_first_attempts",
    "hourly_outcomes",
    "job_devices",
    "measurement_names",
    "measurement_series",
    "recent_jobs",
    "slot_health",
]


@dataclass(frozen=True, slots=True)
class HourCount:
    hour: str
    """``YYYY-MM-DD HH`` UTC."""
    outcome: str
    count: int


@dataclass(frozen=True, slots=True)
class SlotHealth:
    station: str | None
    slot: str | None
    passed: int
    failed: int
    last: datetime | None


@dataclass(frozen=True, slots=True)
class MeasurementSeries:
    name: str
    unit: str | None
    low: float | None
    high: float | None
    values: tuple[float, ...]


@contextmanager
def _reading(store: Store) -> Iterator[Session]:
    """A session for one of these reads. On PostgreSQL the transaction turns off JIT
    compilation and parallel workers: every read here is a few index range scans of a
    window, which each of them takes longer to start (5–30 ms) than the read itself."""
    with store.session() as session:
        if store.engine.dialect.name == "postgresql":
            session.execute(
                select(
                    func.set_config("jit", "off", True),
                    func.set_config("max_parallel_workers_per_gather", "0", True),
                )
            )
        yield session


def _hours(store: Store, since: datetime, until: datetime) -> Any:
    """The hours from ``since`` to the end of the hour holding ``until``, as a table with
    columns ``lo`` and ``hi`` (start and end of each hour, UTC; the first starts at
    ``since`` itself, so each hour is one index range with no other bound to weigh).

    SQLite compares the stored UTC text with ``YYYY-MM-DD HH`` prefixes (a recursive CTE);
    PostgreSQL uses ``generate_series`` over ``timestamptz`` (an hour is an absolute
    duration, so the session's time zone does not matter).
    """
    first = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    last = until.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    step: ColumnElement[Any]
    if store.engine.dialect.name == "postgresql":
        step = literal_column("interval '1 hour'")
        lo = func.generate_series(first, last, step).table_valued("lo").render_derived()
        start = func.greatest(lo.c.lo, literal(since, UtcDateTime()))
        return select(start.label("lo"), (lo.c.lo + step).label("hi")).subquery("hours")
    # SQLite keeps a timestamp as UTC text "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's format)
    seed = select(literal(f"{since.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}", String).label("lo"))
    starts = seed.cte("hour_starts", recursive=True)

    def following(lo: Any) -> Any:
        return func.strftime("%Y-%m-%d %H", func.substr(lo, 1, 13) + ":00", "+1 hour")

    starts = starts.union_all(
        select(following(starts.c.lo)).where(starts.c.lo < f"{last:%Y-%m-%d %H}")
    )
    return select(starts.c.lo, following(starts.c.lo).label("hi")).subquery("hours")


def _hour_text(value: Any) -> str:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%d %H")
    return str(value)[:13]


def _per_hour(
    store: Store,
    at: Any,
    outcome: Any,
    outcomes: Sequence[str],
    where: Sequence[Any],
    since: datetime,
    until: datetime | None,
) -> list[HourCount]:
    """Rows ``where`` selects with ``at >= since``, counted per hour of ``at`` and per
    ``outcome`` (only ``outcomes``), up to the hour of ``until`` (default now).

    Each hour is one counting range scan of an index that leads with the ``where``
    columns then ``at`` (correlated ``count(*)`` per hour and outcome): no row of the
    window is sorted or hashed, which a ``GROUP BY`` of the hour would do — on SQLite
    that sort was three quarters of the query's time.
    """
    hours = _hours(store, since, until or utcnow())
    counts = [
        select(func.count())
        .where(
            *where,
            outcome == value,
            at >= hours.c.lo,
            at < hours.c.hi,
        )
        .scalar_subquery()
        for value in outcomes
    ]
    query = select(hours.c.lo, *counts)
    with _reading(store) as session:
        rows = session.execute(query).all()
    return [
        HourCount(_hour_text(row[0]), value, int(n))
        for row in rows
        for value, n in zip(outcomes, row[1:], strict=True)
        if n
    ]


def hourly_outcomes(
    store: Store, since: datetime, until: datetime | None = None
) -> list[HourCount]:
    """Units that ended ready or failed, per hour of their last change, from ``since`` to the
    hour of ``until`` (default now)."""
    return _per_hour(store, Unit.updated_at, Unit.status, ("ready", "failed"), (), since, until)


def hourly_first_attempts(
    store: Store, since: datetime, until: datetime | None = None
) -> list[HourCount]:
    """First test attempts that finished passed or failed, per hour and outcome: the
    first-pass yield."""
    return _per_hour(
        store,
        UnitAttempt.finished_at,
        UnitAttempt.outcome,
        ("pass", "fail"),
        (UnitAttempt.number == 1,),
        since,
        until,
    )


def failure_reasons(store: Store, since: datetime, limit: int = 200) -> list[tuple[str, int]]:
    """Failed units' reasons since ``since``, most frequent first (callers group similar ones)."""
    count = func.count()
    query = (
        select(Unit.reason, count)
        .where(Unit.status == "failed", Unit.updated_at >= since)
        .group_by(Unit.reason)
        .order_by(desc(count))
        .limit(limit)
    )
    with _reading(store) as session:
        return [(reason or "unknown", int(n)) for reason, n in session.execute(query)]


def failed_measurements(store: Store, since: datetime, limit: int = 20) -> list[tuple[str, int]]:
    """Measurements that failed since ``since`` (``step/name``), most frequent first.

    Failures are read from the verdict index from the first attempt of the window on:
    attempt IDs grow with time, so no attempt finished in the window has an ID below the
    smallest ID among them (``id + 0`` keeps both planners from looking for that minimum
    by walking the primary key from the line's first attempt). Joining every attempt of
    the window instead would probe the index once per attempt, or hash every failure the
    line ever had."""
    first = (
        select(func.min(UnitAttempt.id + 0))
        .where(UnitAttempt.finished_at >= since)
        .scalar_subquery()
    )
    count = func.count()
    query = (
        select(UnitMeasurement.step, UnitMeasurement.name, count)
        .join(UnitAttempt, UnitAttempt.id == UnitMeasurement.attempt_id)
        .where(
            UnitMeasurement.verdict == "fail",
            UnitMeasurement.attempt_id >= first,
            UnitAttempt.finished_at >= since,
        )
        .group_by(UnitMeasurement.step, UnitMeasurement.name)
        .order_by(desc(count))
        .limit(limit)
    )
    with _reading(store) as session:
        return [(f"{s}/{n}" if s else n, int(c)) for s, n, c in session.execute(query)]


def measurement_names(
    store: Store, since: datetime, limit: int = 6, recent: int = 200
) -> list[str]:
    """Names of measurements with numeric limits in the ``recent`` newest attempts finished
    since ``since`` (what the plan measures now; reading the whole window to pick names would
    cost as much as the histograms themselves)."""
    attempts = (
        select(UnitAttempt.id)
        .where(UnitAttempt.finished_at >= since)
        .order_by(desc(UnitAttempt.finished_at))
        .limit(recent)
        .scalar_subquery()
    )
    count = func.count(UnitMeasurement.id)
    query = (
        select(UnitMeasurement.name, count)
        .where(
            UnitMeasurement.attempt_id.in_(attempts),
            or_(UnitMeasurement.low.is_not(None), UnitMeasurement.high.is_not(None)),
        )
        .group_by(UnitMeasurement.name)
        .order_by(desc(count), UnitMeasurement.name)
        .limit(limit)
    )
    with _reading(store) as session:
        return [name for name, _ in session.execute(query)]


def measurement_series(
    store: Store, name: str, since: datetime, limit: int = 2000
) -> MeasurementSeries:
    """The latest ``limit`` numeric values of measurement ``name`` and its newest limits.

    The JSON value is read as its text and parsed as a number here (decoding thousands of
    JSON cells costs more than the query); booleans and strings are left out.
    """
    query = (
        select(
            cast(UnitMeasurement.value, Text),
            UnitMeasurement.unit,
            UnitMeasurement.low,
            UnitMeasurement.high,
        )
        .join(UnitAttempt, UnitAttempt.id == UnitMeasurement.attempt_id)
        .where(UnitAttempt.finished_at >= since, UnitMeasurement.name == name)
        .order_by(desc(UnitAttempt.finished_at))
        .limit(limit)
    )
    with _reading(store) as session:
        rows = session.execute(query).all()
    values = tuple(v for v in (_number(r[0]) for r in rows) if v is not None)
    unit, low, high = (rows[0][1], rows[0][2], rows[0][3]) if rows else (None, None, None)
    return MeasurementSeries(name, unit, low, high, values)


def _number(text: str | None) -> float | None:
    if text is None or text[:1] not in "-0123456789.":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def slot_health(store: Store, since: datetime, limit: int = 200) -> list[SlotHealth]:
    """Per station and slot: test attempts passed and failed since ``since``, and the last one.

    The window's attempts are grouped with their outcome only; each group's last test is
    then one backward step of the time index (carrying every attempt's time through
    SQLite's grouping sort made that sort a third slower)."""
    passed = func.count(case((UnitAttempt.outcome == "pass", 1)))
    failed = func.count(case((UnitAttempt.outcome == "fail", 1)))
    groups = (
        select(
            UnitAttempt.station,
            UnitAttempt.slot,
            passed.label("passed"),
            failed.label("failed"),
        )
        .where(UnitAttempt.finished_at >= since)
        .group_by(UnitAttempt.station, UnitAttempt.slot)
        .order_by(UnitAttempt.station, UnitAttempt.slot)
        .limit(limit)
        .subquery()
    )
    other = aliased(UnitAttempt)
    last = (
        select(other.finished_at)
        .where(
            other.finished_at >= since,
            other.station.is_not_distinct_from(groups.c.station),
            other.slot.is_not_distinct_from(groups.c.slot),
        )
        .order_by(desc(other.finished_at))
        .limit(1)
        .scalar_subquery()
    )
    query = select(
        groups.c.station, groups.c.slot, groups.c.passed, groups.c.failed, last
    ).order_by(groups.c.station, groups.c.slot)
    with _reading(store) as session:
        return [
            SlotHealth(st, sl, int(p or 0), int(f or 0), at)
            for st, sl, p, f, at in session.execute(query)
        ]


@dataclass(frozen=True, slots=True)
class JobProgress:
    """A provisioning job and where its devices are (for the dashboard)."""

    id: int
    product: str
    group: str | None
    status: str
    created_at: datetime
    devices: int
    provisioned: int
    failed: int
    last_error: str | None

    @property
    def remaining(self) -> int:
        return self.devices - self.provisioned - self.failed


def recent_jobs(store: Store, limit: int = 20, job_id: int | None = None) -> list[JobProgress]:
    """The newest ``limit`` jobs (or job ``job_id``) with their device counts (counted per job
    on the job index)."""
    done = func.sum(
        func.cast(
            (ProvisioningDevice.verified == "done") & ProvisioningDevice.failure.is_(None),
            ProvisioningDevice.id.type,
        )
    )
    failed = func.sum(
        func.cast(ProvisioningDevice.failure.is_not(None), ProvisioningDevice.id.type)
    )
    with _reading(store) as session:
        newest = select(ProvisioningJob).order_by(desc(ProvisioningJob.id)).limit(limit)
        if job_id is not None:
            newest = newest.where(ProvisioningJob.id == job_id)
        jobs = session.scalars(newest).all()
        ids = [j.id for j in jobs]
        counts = {
            job_id: (int(n or 0), int(ok or 0), int(bad or 0))
            for job_id, n, ok, bad in session.execute(
                select(ProvisioningDevice.job_id, func.count(ProvisioningDevice.id), done, failed)
                .where(ProvisioningDevice.job_id.in_(ids))
                .group_by(ProvisioningDevice.job_id)
            )
        }
        return [
            JobProgress(
                j.id,
                j.product,
                j.group_name,
                j.status,
                j.created_at,
                *counts.get(j.id, (0, 0, 0)),
                j.last_error,
            )
            for j in jobs
        ]


JobDevice = DeviceDetail
"""One device of a provisioning job with its state per step (the report's own row)."""


def job_devices(store: Store, job_id: int, limit: int = 500) -> list[JobDevice]:
    """The first ``limit`` devices of job ``job_id`` in input order (failed ones first)."""
    return job_device_details(store, job_id, failed_first=True, limit=limit)


def _batches(store: Store, unit_id: Any, outcome: Any, where: Sequence[Any], limit: int) -> Any:
    """Counts per (batch, outcome) over the rows ``where`` selects, driven from those rows.

    Each row's non-unique parts are found by ``parts.unit_id`` (a covering index). Both
    planners need help to start from the window rather than from all parts: PostgreSQL
    hashes the whole parts table unless the parts are a ``LATERAL`` subquery per row that
    it may not flatten into a plain join (``OFFSET 0``; flattened, it read all parts of a
    million-unit line: 250 ms instead of 35);
    SQLite (which has no ``LATERAL``) starts from the ``(kind, unique_serial)``
    constraint unless the "no unique serial" test is written so no index can serve it.
    """
    rows = select(unit_id.label("unit_id"), outcome.label("outcome")).where(*where).subquery()
    label = Part.kind + " " + func.coalesce(Part.lot, Part.part_serial, "")
    count = func.count()
    batch: ColumnElement[Any]
    if store.engine.dialect.name == "postgresql":
        parts = (
            select(label.label("batch"))
            .where(Part.unit_id == rows.c.unit_id, Part.unique_serial.is_(None))
            .offset(0)  # a fence: without it the planner flattens the LATERAL into a join
            .lateral()
        )
        batch = parts.c.batch
        query = select(batch, rows.c.outcome, count).select_from(rows.join(parts, literal(True)))
    else:
        batch = label
        query = (
            select(batch, rows.c.outcome, count)
            .select_from(rows.join(Part, Part.unit_id == rows.c.unit_id))
            .where(func.coalesce(Part.unique_serial, "") == "")
        )
    return query.group_by(batch, rows.c.outcome).order_by(desc(count)).limit(limit)


def batch_outcomes(store: Store, since: datetime, limit: int = 100) -> list[HourCount]:
    """Units that ended ready or failed since ``since``, per batch: each non-unique part they
    were built with (a lot code scanned as a part, or a part's ``lot``), ``kind serial``."""
    where = (Unit.status.in_(("ready", "failed")), Unit.updated_at >= since)
    query = _batches(store, Unit.id, Unit.status, where, limit)
    with _reading(store) as session:
        return [HourCount(b, s, int(n)) for b, s, n in session.execute(query)]


def batch_first_attempts(store: Store, since: datetime, limit: int = 100) -> list[HourCount]:
    """First test attempts finished since ``since`` per batch (as :func:`batch_outcomes`)."""
    where = (UnitAttempt.number == 1, UnitAttempt.finished_at >= since)
    query = _batches(store, UnitAttempt.unit_id, UnitAttempt.outcome, where, limit)
    with _reading(store) as session:
        return [HourCount(b, o, int(n)) for b, o, n in session.execute(query)]
