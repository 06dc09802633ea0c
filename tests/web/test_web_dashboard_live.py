"""The dashboard stays live: its counts are read at every request, hour by hour on both
backends, and a kept chart drawing is reused only while its data is unchanged."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from webkit import add_users, build_app, client_for, login

from station.linekit import World
from trayline.store.dashboard import (
    HourCount,
    failed_measurements,
    hourly_first_attempts,
    hourly_outcomes,
    slot_health,
)
from trayline.store.db import Store, open_store
from trayline.store.models.line import Unit, UnitAttempt, UnitMeasurement

_CHART = re.compile(r'<section class="chart">(.*?)</section>', re.DOTALL)
_HISTOGRAMS = re.compile(r'<div class="histograms">(.*?)</div>', re.DOTALL)
_CHART_ID = re.compile(r"chart-[0-9a-f-]{36}")


def _build(client: TestClient, csrf: str, app: FastAPI, serial: str, n: int) -> None:
    for scan in (serial, f"BAT-{n:06d}", f"ENC-{n:06d}"):
        reply = client.post(
            "/api/stations/st1/scan", json={"scan": scan}, headers={"x-csrf-token": csrf}
        )
        assert reply.status_code == 200, reply.text
    assert app.state.hub.get("st1").runner.wait_idle(timeout=60)


def _chart(page: str) -> str:
    found = _CHART.search(page)
    assert found, "no units-per-hour chart on the dashboard"
    return found.group(1)


def test_a_unit_finished_since_the_last_request_is_on_the_next(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    add_users(store)
    world = World()
    first = world.add(1)
    app = build_app(store, tmp_path, world)
    with client_for(app) as client:
        csrf = login(client, "engineer")
        _build(client, csrf, app, first, 1)
        before = client.get("/").text
        assert "1 ready · 0 failed" in before
        # nothing changed: the same drawing (pygal gives every drawing a new random id)
        assert _chart(client.get("/").text) == _chart(before)
        _build(client, csrf, app, world.add(2), 2)
        after = client.get("/").text
    store.dispose()
    assert "2 ready · 0 failed" in after
    drawn, was = _chart(after), _chart(before)
    assert drawn != was and _CHART_ID.sub("", drawn) != _CHART_ID.sub("", was)
    histograms = _HISTOGRAMS.search(after)
    assert histograms and "vbat: n 2" in histograms.group(1)


def _at(hour: datetime, minutes: float) -> datetime:
    return hour + timedelta(minutes=minutes)


def test_counts_per_hour_keep_to_the_window_and_the_hour_edges(store: Store) -> None:
    """Each row lands in the hour of its timestamp — one exactly on the hour in that hour —
    and rows before ``since`` (mid-hour) or not finished are not counted."""
    now = datetime.now(UTC)
    h0 = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    since = _at(h0, 30)
    h1, h2 = h0 + timedelta(hours=1), h0 + timedelta(hours=2)
    units = [
        ("ready", _at(h0, 29.9)),  # before the window
        ("ready", _at(h0, 30.01)),
        ("failed", h1),  # on the hour: counted in h1
        ("ready", h2 - timedelta(microseconds=1)),
        ("ready", h2),
        ("testing", _at(h2, 5)),  # not ended
        ("failed", now - timedelta(seconds=1)),
    ]
    with store.session() as session:
        for n, (status, at) in enumerate(units, start=1):
            unit = Unit(serial_number=f"P028EDGE{n:07d}", status=status, updated_at=at)
            session.add(unit)
            session.flush()
            outcome = {"ready": "pass", "failed": "fail"}.get(status, "running")
            session.add(UnitAttempt(unit_id=unit.id, number=1, outcome=outcome, finished_at=at))
            # a retest is not a first attempt
            session.add(UnitAttempt(unit_id=unit.id, number=2, outcome="pass", finished_at=at))
    label = f"{h0:%Y-%m-%d %H}"
    expected = {
        (label, "ready", 1),
        (f"{h1:%Y-%m-%d %H}", "failed", 1),
        (f"{h1:%Y-%m-%d %H}", "ready", 1),
        (f"{h2:%Y-%m-%d %H}", "ready", 1),
        (f"{now:%Y-%m-%d %H}", "failed", 1),
    }
    assert {(h.hour, h.outcome, h.count) for h in hourly_outcomes(store, since)} == expected
    firsts = {(h.hour, h.outcome, h.count) for h in hourly_first_attempts(store, since)}
    renamed = {"ready": "pass", "failed": "fail"}
    assert firsts == {(hour, renamed[o], n) for hour, o, n in expected}
    assert all(isinstance(h, HourCount) for h in hourly_outcomes(store, since))
    # a window that ends before the newest unit leaves it out
    earlier = hourly_outcomes(store, since, until=h1)
    assert {(h.hour, h.outcome) for h in earlier} == {
        (label, "ready"),
        (f"{h1:%Y-%m-%d %H}", "failed"),
        (f"{h1:%Y-%m-%d %H}", "ready"),
    }


def test_failed_measurements_only_of_attempts_finished_in_the_window(store: Store) -> None:
    """An old attempt's failure is left out even when it has a higher ID than an attempt of
    the window (it started later but finished before ``since``)."""
    now = datetime.now(UTC)
    since = now - timedelta(hours=1)
    finished = [now - timedelta(minutes=5), now - timedelta(hours=2), now - timedelta(minutes=1)]
    with store.session() as session:
        for n, at in enumerate(finished, start=1):
            unit = Unit(serial_number=f"P028MEAS{n:07d}", status="failed", updated_at=at)
            session.add(unit)
            session.flush()
            attempt = UnitAttempt(unit_id=unit.id, number=1, outcome="fail", finished_at=at)
            session.add(attempt)
            session.flush()
            session.add(
                UnitMeasurement(attempt_id=attempt.id, step="power", name="vbat", verdict="fail")
            )
            session.add(
                UnitMeasurement(attempt_id=attempt.id, step="radio", name="rssi", verdict="pass")
            )
    assert failed_measurements(store, since) == [("power/vbat", 2)]
    assert failed_measurements(store, now + timedelta(minutes=1)) == []


def test_slot_health_counts_and_last_test_per_station_and_slot(store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    since = now - timedelta(hours=1)
    attempts = [
        ("st1", "A", "pass", now - timedelta(minutes=50)),
        ("st1", "A", "fail", now - timedelta(minutes=10)),
        ("st1", "B", "pass", now - timedelta(minutes=30)),
        ("st1", "B", "pass", now - timedelta(hours=2)),  # before the window
        (None, None, "fail", now - timedelta(minutes=20)),  # a slot nobody named
    ]
    with store.session() as session:
        for n, (station, slot, outcome, at) in enumerate(attempts, start=1):
            unit = Unit(serial_number=f"P028SLOT{n:07d}", status="testing", updated_at=at)
            session.add(unit)
            session.flush()
            session.add(
                UnitAttempt(
                    unit_id=unit.id,
                    number=1,
                    station=station,
                    slot=slot,
                    outcome=outcome,
                    finished_at=at,
                )
            )
    health = {(h.station, h.slot): (h.passed, h.failed, h.last) for h in slot_health(store, since)}
    assert health == {
        ("st1", "A"): (1, 1, now - timedelta(minutes=10)),
        ("st1", "B"): (1, 0, now - timedelta(minutes=30)),
        (None, None): (0, 1, now - timedelta(minutes=20)),
    }
