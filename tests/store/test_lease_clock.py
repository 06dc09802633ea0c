"""Leases expire by the database's clock: station PCs with drifting clocks agree on PostgreSQL.

A CM line without internet has no NTP. A PC whose clock runs an hour ahead must not
see another PC's live lease as expired on a shared PostgreSQL; on SQLite (one host's
file) this host's clock is the only clock, and it decides.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trayline.store import clock, jobs
from trayline.store.db import Store
from trayline.store.jobs import LeaseHolder
from trayline.store.units import EventContext, lease_by_serial, register_unit, take_lease

TTL = timedelta(seconds=60)


def _takes_over(store: Store) -> bool:
    """What a PC an hour ahead should do with a live 60-second lease of another PC."""
    return store.engine.dialect.name != "postgresql"


def test_the_database_clock_is_aware_utc_and_close_to_ours(store: Store) -> None:
    with store.session() as session:
        now = clock.database_now(session)
    assert now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=5)  # same machine, same clock


def test_a_job_lease_by_a_clock_an_hour_ahead(store: Store) -> None:
    job = {"key": "c" * 64, "product": "p", "input_path": "t.txt", "claim_mode": "none"}
    job_id, _ = jobs.create_job(store, job, [], {"kind": "x", "message": "y", "data": {}})
    other_pc = LeaseHolder("other", "station-2", 4242, datetime.now(UTC))
    assert jobs.take_lease(store, job_id, other_pc, TTL) is None  # live for 60 s
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "utcnow", lambda: datetime.now(UTC) + timedelta(hours=1))
        taken = jobs.take_lease(store, job_id, LeaseHolder.me("me"), TTL) is None
    assert taken == _takes_over(store)


def test_a_unit_lease_by_a_clock_an_hour_ahead(store: Store) -> None:
    unit, _ = register_unit(store, "P028CLOCK000001", sku="BRN404", ctx=EventContext("s", "A"))
    assert take_lease(store, unit.id, "station-2/pc2/4242/ab", ttl=TTL)  # the other PC's, live
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "utcnow", lambda: datetime.now(UTC) + timedelta(hours=1))
        mine = lease_by_serial(store, "P028CLOCK000001", "station-1/pc1/1/cd", ttl=TTL)
        renewed = take_lease(store, unit.id, "station-1/pc1/1/cd", ttl=TTL)
    assert (mine is not None) == _takes_over(store)
    assert renewed == _takes_over(store)
