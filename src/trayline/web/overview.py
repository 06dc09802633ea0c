"""Gathering the dashboard: one bounded query per panel, over one time window.

The window is the last ``days`` days (1 to 31) up to now; every query below is
limited to it and indexed (migration 0006), so the page costs the same at a
million units. :func:`yield_report` is shared by the page and ``GET /api/yield``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from trayline.store.dashboard import (
    HourCount,
    JobProgress,
    SlotHealth,
    batch_first_attempts,
    batch_outcomes,
    failed_measurements,
    failure_reasons,
    hourly_first_attempts,
    hourly_outcomes,
    measurement_names,
    measurement_series,
    recent_jobs,
    slot_health,
)
from trayline.store.db import Store
from trayline.store.models.base import utcnow
from trayline.web.dashboard import (
    YieldRow,
    bar_chart,
    capability,
    histogram_chart,
    pareto,
    units_per_hour,
    yield_rows,
)

__all__ = ["MAX_DAYS", "Overview", "overview", "window", "yield_report"]

MAX_DAYS = 31
MAX_JOBS = 20
HISTOGRAM_VALUES = 1000
"""The newest values a histogram and its Cpk are drawn from: enough for a stable Cpk."""
_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dashboard")
"""Shared by every dashboard request: at most four queries at once per process."""


def window(days: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(since, now) for the last ``days`` days, ``days`` clamped to 1..:data:`MAX_DAYS`."""
    end = now or utcnow()
    return end - timedelta(days=max(1, min(days, MAX_DAYS))), end


def yield_report(store: Store, days: int, by: str) -> tuple[datetime, list[YieldRow]]:
    """Yield per day, shift or batch over the last ``days`` days (the two counts side by
    side on :data:`_READERS`)."""
    since, _ = window(days)
    ends: Callable[[Store, datetime], list[HourCount]] = hourly_outcomes
    firsts: Callable[[Store, datetime], list[HourCount]] = hourly_first_attempts
    if by == "batch":
        ends, firsts = batch_outcomes, batch_first_attempts
    ended = _READERS.submit(ends, store, since)
    first = _READERS.submit(firsts, store, since)
    if by == "batch":
        return since, _by_batch(ended.result(), first.result())
    return since, yield_rows(ended.result(), first.result(), by)


def _by_batch(outcomes: list[HourCount], firsts: list[HourCount]) -> list[YieldRow]:
    """Batches with the most units first."""
    rows = yield_rows(outcomes, firsts, "batch")
    return sorted(rows, key=lambda r: (-(r.ready + r.failed), r.period))


@dataclass(frozen=True, slots=True)
class Overview:
    since: datetime
    days: int
    by: str
    rows: list[YieldRow]
    total: YieldRow
    uph_svg: str
    reasons: list[tuple[str, int, float]]
    measurements: list[tuple[str, int]]
    histograms: list[dict[str, Any]]
    slots: list[SlotHealth]
    jobs: list[JobProgress]


def _total(rows: list[YieldRow]) -> YieldRow:
    return YieldRow(
        "total",
        sum(r.ready for r in rows),
        sum(r.failed for r in rows),
        sum(r.first_passed for r in rows),
        sum(r.first_total for r in rows),
    )


def _histograms(store: Store, since: datetime) -> list[dict[str, Any]]:
    out = []
    for name in measurement_names(store, since, limit=4):
        series = measurement_series(store, name, since, limit=HISTOGRAM_VALUES)
        cap = capability(series)
        out.append({"series": series, "cap": cap, "svg": histogram_chart(series, cap)})
    return out


def _per_hour_chart(store: Store, since: datetime, now: datetime) -> tuple[list[HourCount], str]:
    """The units ended per hour and their chart, drawn on the reader thread (while the other
    panels' queries run) rather than after every query has answered."""
    outcomes = hourly_outcomes(store, since, now)
    per_hour = units_per_hour(outcomes, since, now)
    start = since.replace(minute=0, second=0, microsecond=0)
    labels = [f"{start + timedelta(hours=i):%b %d %H:00}" for i in range(len(per_hour))]
    return outcomes, bar_chart("Units finished per hour (UTC)", labels, per_hour)


def overview(store: Store, days: int = 7, by: str = "day") -> Overview:
    """Every panel of the dashboard. The panels' queries are independent, so they run side by
    side on :data:`_READERS` (each on its own pooled connection), the longest first: the
    page waits for the slowest, not for their sum."""
    since, now = window(days)
    reads: dict[str, Callable[[Store, datetime], Any]] = {
        "slots": slot_health,
        "histograms": _histograms,
    }
    if by == "batch":
        reads.update(batch_outcomes=batch_outcomes, batch_firsts=batch_first_attempts)
    else:
        reads["firsts"] = hourly_first_attempts
    reads.update(measurements=failed_measurements, reasons=failure_reasons)
    pending = {name: _READERS.submit(read, store, since) for name, read in reads.items()}
    hourly = _READERS.submit(_per_hour_chart, store, since, now)
    jobs = _READERS.submit(recent_jobs, store, MAX_JOBS)
    got: dict[str, Any] = {name: future.result() for name, future in pending.items()}
    outcomes, uph_svg = hourly.result()
    if by == "batch":
        rows = _by_batch(got["batch_outcomes"], got["batch_firsts"])
    else:
        rows = yield_rows(outcomes, got["firsts"], by)
    return Overview(
        since=since,
        days=max(1, min(days, MAX_DAYS)),
        by=by,
        rows=rows,
        total=_total(rows),
        uph_svg=uph_svg,
        reasons=pareto(got["reasons"]),
        measurements=got["measurements"],
        histograms=got["histograms"],
        slots=got["slots"],
        jobs=jobs.result(),
    )
