"""The station end to end with fake boards: scans, parts, slots, failures, retest, the record."""

from __future__ import annotations

from pathlib import Path

import pytest
from linekit import CONFIG, World, make_bundles, make_line, make_runner, serial

from trayline.settings.line import ConfigError
from trayline.station.record import unit_record
from trayline.store.db import Store
from trayline.store.units import find_unit


@pytest.fixture
def line_store(store: Store, tmp_path: Path) -> Store:
    make_bundles(store, tmp_path / "bundles")
    return store


def _run(store: Store, tmp_path: Path, world: World, scans: list[str]) -> list[str]:
    runner = make_runner(store, make_line(tmp_path), world)
    runner.start()
    texts = []
    for line in scans:
        notice = runner.scan(line)
        if notice is not None:
            texts.append(notice.text)
    assert runner.wait_idle(timeout=60)
    assert runner.stop() == []
    return texts


def test_units_pass_through_two_slots(line_store: Store, tmp_path: Path) -> None:
    world = World()
    scans = []
    for n in range(1, 5):
        scans += [world.add(n) + " mobilesecret123", f"BAT-{n:06d}", f"ENC-{n:06d}"]
    _run(line_store, tmp_path, world, scans)
    for n in range(1, 5):
        unit = find_unit(line_store, serial(n))
        assert unit is not None and unit.status == "ready", unit
        assert unit.device_id == world.tray[serial(n)].device_id
    record = unit_record(line_store, find_unit(line_store, f"BAT-{2:06d}"))  # type: ignore[arg-type]
    assert record["serial_number"] == serial(2)
    assert record["parts"] == [
        {"name": "battery", "serial": "BAT-000002"},
        {"name": "enclosure", "serial": "ENC-000002"},
    ]
    assert record["attempts"][0]["outcome"] == "pass"
    vbat = record["attempts"][0]["measurements"][0]
    assert vbat["name"] == "vbat" and vbat["value"] == 3.9 and vbat["low"] == 3.6
    assert vbat["verdict"] == "pass"
    assert record["firmware"]["test"]["bundle"] == "brn404-test"
    assert record["firmware"]["production"]["bundle"] == "brn404-prod"
    assert record["firmware"]["production"]["modules"]
    kinds = [e["kind"] for e in record["events"]]
    for kind in (
        "scanned",
        "part_linked",
        "parts_linked",
        "identified",
        "test_flashed",
        "tested",
        "production_flashed",
        "verified",
        "setup_done",
        "ready",
    ):
        assert kind in kinds
    assert "mobilesecret123" not in repr(record)


def test_failures_and_refusals_are_messages_and_the_line_goes_on(
    line_store: Store, tmp_path: Path
) -> None:
    world = World()
    low = world.add(1, readings={"vbat": 3.1})
    mute = world.add(2, never_answers=True)
    other = world.add(3, silicon="e00fce68ffffffffffffffff")
    good = world.add(4)
    texts = _run(
        line_store,
        tmp_path,
        world,
        [
            "BAT-000001",  # part before any sticker
            low,
            "BAT-000001",
            "ENC-000001",
            "hello world",  # unknown scan
            mute,
            "BAT-000001",  # battery already on the first unit
            "BAT-000002",
            "ENC-000002",
            other,
            "BAT-000003",
            "ENC-000003",
            good,
            "BAT-000004",
            "ENC-000004",
            good,  # sticker twice
        ],
    )
    joined = "\n".join(texts)
    assert "scan a device sticker first" in joined
    assert "unknown scan 'hello'" in joined
    assert f"already linked to unit {low}" in joined
    assert f"{good} scanned twice" in joined
    assert find_unit(line_store, good).status == "ready"  # type: ignore[union-attr]
    failed = {s: find_unit(line_store, s) for s in (low, mute, other)}
    assert all(u is not None and u.status == "failed" for u in failed.values())
    assert "vbat" in (failed[low].reason or "")  # type: ignore[union-attr]
    assert "answer" in (failed[mute].reason or "")  # type: ignore[union-attr]
    assert "silicon ID mismatch" in (failed[other].reason or "")  # type: ignore[union-attr]


def test_retest_runs_again_and_keeps_every_attempt(line_store: Store, tmp_path: Path) -> None:
    world = World()
    unit = world.add(1, readings={"vbat": 3.1})
    _run(line_store, tmp_path, world, [unit, "BAT-000001", "ENC-000001"])
    world.boards[world.tray[unit].device_id or ""].readings["vbat"] = 3.95  # reseated battery
    texts = _run(line_store, tmp_path, world, [unit, "RETEST"])
    assert any("scan RETEST" in t for t in texts)
    record = unit_record(line_store, find_unit(line_store, unit))  # type: ignore[arg-type]
    assert record["status"] == "ready"
    assert [a["outcome"] for a in record["attempts"]] == ["fail", "pass"]
    texts = _run(line_store, tmp_path, world, [unit])
    assert "already passed" in texts[0]


def test_ready_units_get_a_label_and_a_bad_printer_is_a_config_error(
    line_store: Store, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.zpl"
    text = CONFIG + f'\n[label]\nprinter = "{labels}"\ntitle = "Acme Tracker"\n'
    world = World()
    good = world.add(1)
    low = world.add(2, readings={"vbat": 3.0})
    line = make_line(tmp_path, text)
    runner = make_runner(line_store, line, world)
    runner.start()
    for scan in (good, "BAT-000001", "ENC-000001", low, "BAT-000002", "ENC-000002"):
        runner.scan(scan)
    assert runner.wait_idle(60)
    runner.stop()
    zpl = labels.read_text()
    assert good in zpl and world.tray[good].device_id in zpl and low not in zpl
    record = unit_record(line_store, find_unit(line_store, good))  # type: ignore[arg-type]
    assert record["events"][-1]["kind"] == "label"
    bad = (tmp_path / "bad").mkdir() or tmp_path / "bad"
    with pytest.raises(ConfigError) as caught:
        make_line(bad, CONFIG + '\n[label]\nprinter = "ftp://x"\n')
    assert caught.value.problems[0].startswith(f"{bad / 'trayline.toml'}:39: label.printer")


def test_a_unit_another_live_process_holds_is_left_alone(line_store: Store, tmp_path: Path) -> None:
    from datetime import timedelta

    from trayline.station.lease import owner_name
    from trayline.store.units import take_lease

    world = World()
    unit = world.add(1)
    runner = make_runner(line_store, make_line(tmp_path), world)
    runner.start()
    runner.scan(unit)
    view = find_unit(line_store, unit)
    assert view is not None
    assert take_lease(line_store, view.id, owner_name("other"), ttl=timedelta(minutes=5))
    runner.scan("BAT-000001")
    runner.scan("ENC-000001")
    assert runner.wait_idle(30)
    runner.stop()
    assert any("another station process; left alone" in n.text for n in runner.all_notices)
    after = find_unit(line_store, unit)
    assert after is not None and after.status == "parts_linked"
