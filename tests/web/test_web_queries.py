"""The web's store queries on SQLite and PostgreSQL, over units built by the real station flow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from station.linekit import World, make_bundles, make_line, make_runner
from trayline.station.front import TrayEntry
from trayline.store import web_queries
from trayline.store.dashboard import (
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
from trayline.store.exports import close_batch
from trayline.store.models.base import utcnow
from trayline.store.users import (
    UserExists,
    add_token,
    add_user,
    count_users,
    list_users,
    set_disabled,
    user_for_token,
)
from trayline.store.web_queries import (
    iter_measurements,
    iter_units,
    search_units,
    unit_page,
    units_with_part,
)
from trayline.web.dashboard import capability, pareto, yield_rows
from trayline.web.overview import overview


@pytest.fixture
def line(store: Store, tmp_path: Path) -> tuple[Store, World]:
    """Four units through the station: three pass, one fails its battery voltage."""
    make_bundles(store, tmp_path / "bundles")
    world = World()
    scans = []
    for n in range(1, 5):
        serial = world.add(n, readings={"vbat": 3.1 if n == 4 else 3.8 + n / 100})
        did = world.tray[serial].device_id
        world.tray[serial] = TrayEntry(did, iccid=f"89014103{n:011d}", imei=f"35{n:013d}")
        scans += [serial, f"BAT-{n:06d}", f"ENC-{n:06d}"]
    runner = make_runner(store, make_line(tmp_path), world)
    runner.start()
    for scan in scans:
        runner.scan(scan)
    assert runner.wait_idle(timeout=60)
    runner.stop()
    return store, world


def test_search_finds_a_unit_by_every_identifier(line: tuple[Store, World]) -> None:
    store, world = line
    serial = "P028LAB00000002"
    did = world.tray[serial].device_id or ""
    for q in (serial, serial.lower(), did, did.upper(), "8901410300000000002", "350000000000002"):
        assert [u.serial_number for u in search_units(store, q)] == [serial], q
    assert len(search_units(store, "P028LAB")) == 4  # a serial's start
    assert search_units(store, "nothing-like-it") == []
    assert search_units(store, "  ") == []


def test_reverse_genealogy_by_part_serial(line: tuple[Store, World]) -> None:
    store, _ = line
    hits, total = units_with_part(store, "ENC-000003")
    assert total == 1 and hits[0].unit.serial_number == "P028LAB00000003"
    assert hits[0].kind == "enclosure"
    assert units_with_part(store, "ENC-999999") == ([], 0)


def test_unit_pages_are_bounded_and_filtered(line: tuple[Store, World]) -> None:
    store, _ = line
    first, cursor = unit_page(store, limit=3)
    assert len(first) == 3 and cursor is not None
    rest, end = unit_page(store, after=cursor, limit=3)
    assert len(rest) == 1 and end is None
    failed, _ = unit_page(store, status="failed")
    assert [u.serial_number for u in failed] == ["P028LAB00000004"]
    assert failed[0].attempts == 1 and "vbat" in (failed[0].reason or "")
    batch, _ = unit_page(store, batch="BAT-000002")
    assert [u.serial_number for u in batch] == ["P028LAB00000002"]
    assert unit_page(store, since=utcnow() + timedelta(hours=1))[0] == []
    assert len(list(iter_units(store, status="ready"))) == 3


def test_yield_counts_by_hour_fold_into_days_and_shifts(line: tuple[Store, World]) -> None:
    store, _ = line
    since = utcnow() - timedelta(days=1)
    outcomes = hourly_outcomes(store, since)
    firsts = hourly_first_attempts(store, since)
    assert sum(h.count for h in outcomes if h.outcome == "ready") == 3
    assert sum(h.count for h in outcomes if h.outcome == "failed") == 1
    assert all(len(h.hour) == 13 and h.hour[10] == " " for h in outcomes)
    for by in ("day", "shift"):
        rows = yield_rows(outcomes, firsts, by)
        assert sum(r.ready for r in rows) == 3 and sum(r.failed for r in rows) == 1
        assert sum(r.first_total for r in rows) == 4 and sum(r.first_passed for r in rows) == 3


def test_failures_measurements_and_slots(line: tuple[Store, World]) -> None:
    store, _ = line
    since = utcnow() - timedelta(days=1)
    reasons = failure_reasons(store, since)
    assert len(reasons) == 1 and "vbat" in reasons[0][0]
    assert pareto(reasons)[0][1:] == (1, 1.0)
    assert failed_measurements(store, since) == [("power/vbat", 1)]
    assert measurement_names(store, since) == ["vbat"]
    series = measurement_series(store, "vbat", since)
    assert sorted(series.values) == pytest.approx([3.1, 3.81, 3.82, 3.83])
    assert (series.low, series.high, series.unit) == (3.6, 4.3, "V")
    cap = capability(series)
    assert cap.n == 4 and cap.cpk is not None and cap.cpk < 1.0
    health = slot_health(store, since)
    assert sum(s.passed for s in health) == 3 and sum(s.failed for s in health) == 1
    assert {s.station for s in health} == {"st1"}
    rows = list(iter_measurements(store, since))
    assert len(rows) == 4 and {r[6] for r in rows} == {"vbat"}
    assert recent_jobs(store) == []


def test_the_dashboard_gathers_on_this_backend(line: tuple[Store, World]) -> None:
    store, _ = line
    view = overview(store, days=2, by="shift")
    assert view.total.ready == 3 and view.total.failed == 1
    assert view.uph_svg.startswith("<svg") and "kozea" not in view.uph_svg
    assert view.histograms and view.histograms[0]["svg"].startswith("<svg")


def test_users_and_tokens(store: Store) -> None:
    assert count_users(store) == 0
    add_user(store, "ann", "admin", "$argon2id$fake")
    with pytest.raises(UserExists):
        add_user(store, "ann", "operator", "$argon2id$fake")
    with pytest.raises(ValueError, match="role must be one of"):
        add_user(store, "bob", "boss", "x")
    add_token(store, "ann", "a" * 64, "mes")
    user = user_for_token(store, "a" * 64)
    assert user is not None and user.name == "ann" and user.role == "admin"
    assert user_for_token(store, "b" * 64) is None
    assert list_users(store)[0].tokens == 1
    set_disabled(store, "ann", True)
    assert user_for_token(store, "a" * 64) is None
    assert count_users(store) == 0
    with pytest.raises(LookupError):
        add_token(store, "nobody", "c" * 64)


def _job(store: Store) -> int:
    from trayline.store.jobs import create_job

    devices = [
        {
            "line_no": n,
            "identifier": f"e00fce68{n:016x}",
            "id_kind": "device_id",
            "device_id": f"e00fce68{n:016x}",
            "verified": "done" if n < 3 else "pending",
        }
        for n in range(1, 5)
    ]
    devices[3] |= {
        "failure": "unknown-id",
        "last_error": "404 from the cloud",
        "imported": "failed",
    }
    job = {"key": "k" * 64, "product": "31337", "group_name": "g1", "input_path": "tray.csv"}
    job_id, created = create_job(store, job, devices, {"kind": "job_created", "message": "made"})
    assert created
    return job_id


def test_provisioning_jobs_with_progress_and_device_state(store: Store) -> None:
    from trayline.store.dashboard import job_devices

    job_id = _job(store)
    [job] = recent_jobs(store)
    assert (job.id, job.devices, job.provisioned, job.failed, job.remaining) == (job_id, 4, 2, 1, 1)
    assert recent_jobs(store, job_id=job_id + 1) == []
    devices = job_devices(store, job_id)
    assert devices[0].failure == "unknown-id" and devices[0].line_no == 4  # failures first
    assert [d.line_no for d in devices[1:]] == [1, 2, 3]
    assert len(job_devices(store, job_id, limit=2)) == 2


LOT_PART = """
[[parts]]
name = "lot"
pattern = "LOT-[0-9]{3}"
unique = false

[test_plan]"""


def test_yield_per_batch_of_non_unique_parts(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lot code scanned as a non-unique part groups the units built from that lot."""
    from station.linekit import CONFIG
    from trayline.web.overview import yield_report

    make_bundles(store, tmp_path / "bundles")
    world = World()
    scans = []
    for n in range(1, 5):
        serial = world.add(n, readings={"vbat": 3.1 if n == 4 else 3.9})
        scans += [serial, f"BAT-{n:06d}", f"ENC-{n:06d}", f"LOT-00{1 + n // 3}"]
    config = CONFIG.replace("\n[test_plan]", LOT_PART, 1)
    runner = make_runner(store, make_line(tmp_path, config), world)
    runner.start()
    for scan in scans:
        runner.scan(scan)
    assert runner.wait_idle(timeout=60)
    runner.stop()
    _since, rows = yield_report(store, 1, "batch")
    by_batch = {r.period: (r.ready, r.failed, r.first_total) for r in rows}
    assert by_batch == {"lot LOT-001": (2, 0, 2), "lot LOT-002": (1, 1, 2)}
    assert [r.period for r in overview(store, days=1, by="batch").rows] == [r.period for r in rows]
    assert [u.serial_number for u in unit_page(store, batch="LOT-002")[0]] == [
        "P028LAB00000003",
        "P028LAB00000004",
    ]
    # The same box finds a shipment (a carton closed with `export close-batch`).
    assert close_batch(store, "carton-0042", since=datetime(2000, 1, 1, tzinfo=UTC), until=None)
    in_carton = [u.serial_number for u in unit_page(store, batch="carton-0042")[0]]
    assert in_carton == ["P028LAB00000001", "P028LAB00000002", "P028LAB00000003"]
    assert unit_page(store, batch="carton-0043")[0] == []
    # Read a window of matching ids at a time: pages and filters come out the same.
    monkeypatch.setattr(web_queries, "BATCH_WINDOW", 2)
    first, cursor = unit_page(store, batch="carton-0042", limit=2)
    assert [u.serial_number for u in first] == in_carton[:2] and cursor is not None
    rest, end = unit_page(store, batch="carton-0042", limit=2, after=cursor)
    assert [u.serial_number for u in rest] == in_carton[2:] and end is None
    failed = unit_page(store, batch="LOT-002", status="failed")[0]
    assert [u.serial_number for u in failed] == ["P028LAB00000004"]


def test_a_token_lookup_waits_for_another_connections_write(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock and commits while the API looks a token up:
    the lookup waits its turn instead of failing with 'database is locked'."""
    import sqlite3
    import threading
    import time

    from trayline.store.db import open_store

    path = tmp_path / "line.db"
    store = open_store(f"sqlite:///{path}")
    try:
        add_user(store, "ann", "engineer", "correct horse battery")
        add_token(store, "ann", "a" * 64, "mes")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE web_users SET role = role")
        found: list[object] = []

        def lookup() -> None:
            try:
                found.append(user_for_token(store, "a" * 64))
            except Exception as exc:  # what the old read-then-write did
                found.append(exc)

        thread = threading.Thread(target=lookup)
        thread.start()
        time.sleep(0.3)  # the lookup is waiting on the lock by now
        other.execute("COMMIT")
        other.close()
        thread.join(60)
        assert len(found) == 1
        user = found[0]
        assert not isinstance(user, Exception), user
        assert user is not None and user.name == "ann"  # type: ignore[attr-defined]
    finally:
        store.dispose()
