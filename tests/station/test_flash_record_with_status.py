"""A flash record completed together with the unit's next status (one transaction, one flush)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from trayline.store.db import Store, open_store
from trayline.store.flash_records import (
    InTransaction,
    begin_flash,
    finish_flash,
    flash_records_for_unit,
)
from trayline.store.units import (
    DeviceClaimed,
    EventContext,
    LeaseLost,
    UnitView,
    advance_in,
    identify,
    identify_in,
    lease_by_serial,
    link_part,
    register_unit,
    take_lease,
    unit_by_serial,
    unit_events,
)

CTX = EventContext("st1", "A", "op")


def _unit_with_intent(tmp_path: Path) -> tuple[Store, int, int]:
    store = open_store(f"sqlite:///{tmp_path / 'line.db'}")
    unit, _ = register_unit(store, "P028TEST0000001", sku="BRN404", ctx=CTX)
    assert take_lease(store, unit.id, "station-a", ttl=timedelta(minutes=5))
    record = begin_flash(
        store,
        device_id="e00fce68aaaaaaaaaaaaaaaa",
        bundle_name="test",
        bundle_digest="d" * 64,
        backend="memory",
        probe_id="p1",
        planned=[],
        unit_id=unit.id,
        role="test",
        slot="A",
    )
    return store, unit.id, record


def _finish(store: Store, record: int, also: InTransaction) -> None:
    finish_flash(
        store,
        record,
        status="done",
        modules=[],
        bytes_written=10,
        seconds=0.1,
        verified=True,
        also=also,
    )


def test_the_status_and_the_record_are_written_together(tmp_path: Path) -> None:
    store, unit_id, record = _unit_with_intent(tmp_path)
    _finish(
        store,
        record,
        lambda s: advance_in(
            s, unit_id, "test_flashed", owner="station-a", ctx=CTX, detail="flashed"
        ),
    )
    assert [r.status for r in flash_records_for_unit(store, unit_id)] == ["done"]
    view = unit_by_serial(store, "P028TEST0000001")
    assert view is not None and view.status == "test_flashed"
    assert [e.kind for e in unit_events(store, unit_id)] == ["scanned", "test_flashed"]
    store.dispose()


def test_a_lost_lease_still_completes_the_record_and_moves_nothing(tmp_path: Path) -> None:
    store, unit_id, record = _unit_with_intent(tmp_path)
    with pytest.raises(LeaseLost):
        _finish(
            store,
            record,
            lambda s: advance_in(
                s, unit_id, "test_flashed", owner="station-b", ctx=CTX, detail="flashed"
            ),
        )
    [done] = flash_records_for_unit(store, unit_id)
    assert (done.status, done.bytes_written, done.verified) == ("done", 10, True)
    view = unit_by_serial(store, "P028TEST0000001")
    assert view is not None and view.status == "scanned"
    assert [e.kind for e in unit_events(store, unit_id)] == ["scanned"]
    store.dispose()


def test_a_claimed_device_id_refuses_the_intent_and_names_the_holder(tmp_path: Path) -> None:
    store, first, _record = _unit_with_intent(tmp_path)
    device = "e00fce68bbbbbbbbbbbbbbbb"
    identify(store, first, device, ctx=CTX)
    second, _ = register_unit(store, "P028TEST0000002", sku="BRN404", ctx=CTX)
    with pytest.raises(DeviceClaimed, match="P028TEST0000001"):
        begin_flash(
            store,
            device_id=device,
            bundle_name="test",
            bundle_digest="d" * 64,
            backend="memory",
            probe_id="p1",
            planned=[],
            unit_id=second.id,
            role="test",
            also=lambda s: identify_in(s, second.id, device, ctx=CTX),
        )
    assert flash_records_for_unit(store, second.id) == []
    view = unit_by_serial(store, "P028TEST0000002")
    assert view is not None and view.device_id is None
    assert [e.kind for e in unit_events(store, second.id)] == ["scanned"]
    store.dispose()


def test_the_device_id_is_written_with_the_intent(tmp_path: Path) -> None:
    store, first, _record = _unit_with_intent(tmp_path)
    device = "e00fce68cccccccccccccccc"
    begin_flash(
        store,
        device_id=device,
        bundle_name="test",
        bundle_digest="d" * 64,
        backend="memory",
        probe_id="p1",
        planned=[],
        unit_id=first,
        role="test",
        also=lambda s: identify_in(s, first, device, ctx=CTX),
    )
    view = unit_by_serial(store, "P028TEST0000001")
    assert view is not None and view.device_id == device
    assert [e.kind for e in unit_events(store, first)] == ["scanned", "identified"]
    assert len(flash_records_for_unit(store, first)) == 2
    store.dispose()


def test_a_view_from_what_the_slot_knew_equals_a_fresh_read(tmp_path: Path) -> None:
    store, unit_id, record = _unit_with_intent(tmp_path)
    link_part(store, unit_id, "battery", "BAT-000001", unique=True, ctx=CTX)
    known = lease_by_serial(store, "P028TEST0000001", "station-a", ttl=timedelta(minutes=5))
    assert known is not None and known.attempts == 0
    views: list[UnitView] = []
    _finish(
        store,
        record,
        lambda s: views.append(
            advance_in(
                s,
                unit_id,
                "test_flashed",
                owner="station-a",
                ctx=CTX,
                detail="flashed",
                open_attempt=True,
                known=known,
            )
        ),
    )
    fresh = unit_by_serial(store, "P028TEST0000001")
    assert views == [fresh]
    assert fresh is not None and fresh.parts == (("battery", "BAT-000001"),)
    assert (fresh.attempts, fresh.running_attempt) == (1, 1)
    store.dispose()
