"""Reading a unit and taking its lease in one transaction (what a slot does first)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from trayline.store.db import open_store
from trayline.store.units import EventContext, lease_by_serial, register_unit, take_lease

CTX = EventContext("st1", "A", "op")
TTL = timedelta(minutes=5)


def test_a_free_unit_comes_back_leased_and_a_held_one_not_at_all(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'line.db'}")
    unit, _ = register_unit(store, "P028LEASE000001", sku="BRN404", ctx=CTX)
    view = lease_by_serial(store, "P028LEASE000001", "station-a", ttl=TTL)
    assert view is not None and view.id == unit.id and view.lease_owner == "station-a"
    assert not take_lease(store, unit.id, "station-b", ttl=TTL)  # the lease is on disk
    assert lease_by_serial(store, "P028LEASE000001", "station-b", ttl=TTL) is None
    gone = lease_by_serial(store, "P028LEASE000001", "station-b", ttl=TTL, abandoned=lambda o: True)
    assert gone is not None and gone.lease_owner == "station-b"
    assert lease_by_serial(store, "P028NOSUCHUNIT1", "station-a", ttl=TTL) is None
    store.dispose()
