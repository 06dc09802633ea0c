"""The unit lease: one process works a unit at a time; a dead owner's units are taken over."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from trayline.station.flow import Status, next_step, retest_allowed
from trayline.station.lease import abandoned, owner_name
from trayline.store.db import Store
from trayline.store.units import (
    EventContext,
    LeaseLost,
    advance,
    register_unit,
    release_lease,
    take_lease,
)

TTL = timedelta(minutes=10)


def test_one_owner_at_a_time_and_takeover_rules(store: Store) -> None:
    ctx = EventContext("st1", "A")
    unit, _ = register_unit(store, "P028LEASE000001", sku="BRN404", ctx=ctx)
    live_a, live_b = owner_name("st1"), owner_name("st2")
    assert take_lease(store, unit.id, live_a, ttl=TTL, abandoned=abandoned)
    assert take_lease(store, unit.id, live_a, ttl=TTL)  # renewing is allowed
    assert not take_lease(store, unit.id, live_b, ttl=TTL, abandoned=abandoned)
    with pytest.raises(LeaseLost):
        advance(store, unit.id, Status.PARTS_LINKED, owner=live_b, ctx=ctx)
    release_lease(store, unit.id, live_a)
    assert take_lease(store, unit.id, live_b, ttl=TTL)
    # an expired lease is free
    assert take_lease(store, unit.id, live_b, ttl=timedelta(seconds=-1))
    assert take_lease(store, unit.id, live_a, ttl=TTL)


def test_a_dead_process_on_this_host_is_abandoned(store: Store) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    mine = owner_name("st1")
    host = mine.split("/")[1]
    dead_owner = f"st1/{host}/{dead}/deadbeef"
    assert abandoned(dead_owner)
    assert not abandoned(mine)
    assert not abandoned(f"st1/another-host/{dead}/x")  # other hosts: wait for expiry
    ctx = EventContext("st1")
    unit, _ = register_unit(store, "P028LEASE000002", sku="BRN404", ctx=ctx)
    assert take_lease(store, unit.id, dead_owner, ttl=TTL)
    assert take_lease(store, unit.id, mine, ttl=TTL, abandoned=abandoned)


def test_flow_table() -> None:
    assert next_step("parts_linked", setup_done_applies=True)[1] == Status.TEST_FLASHED  # type: ignore[index]
    assert next_step("verified", setup_done_applies=True)[1] == Status.SETUP_DONE  # type: ignore[index]
    assert next_step("verified", setup_done_applies=False)[1] == Status.READY  # type: ignore[index]
    assert next_step("ready", setup_done_applies=True) is None
    assert next_step("failed", setup_done_applies=True) is None
    assert retest_allowed("failed", 2, 2) and not retest_allowed("failed", 3, 2)
    assert not retest_allowed("ready", 0, 2)
