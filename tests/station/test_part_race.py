"""Eight processes race to link the same battery: the database lets exactly one win."""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.synchronize import Barrier

import pytest

from trayline.store.db import Store, open_store
from trayline.store.units import (
    EventContext,
    PartTaken,
    link_part,
    register_unit,
    unit_by_serial,
    unit_events,
)

RACERS = 8


def _racer(url: str, n: int, barrier: Barrier, results: mp.Queue[tuple[int, str, str]]) -> None:
    store = open_store(url)
    ctx = EventContext(f"station-{n}", "A", f"op{n}")
    unit, _ = register_unit(store, f"P028RACE{n:07d}", sku="BRN404", ctx=ctx)
    barrier.wait()
    try:
        link_part(store, unit.id, "battery", "BAT-00000001", unique=True, ctx=ctx)
        results.put((n, "won", unit.serial_number))
    except PartTaken as exc:
        results.put((n, "refused", str(exc)))
    finally:
        store.dispose()


@pytest.mark.postgres
def test_eight_processes_one_part_one_winner(pg_url: str) -> None:
    open_store(pg_url).dispose()  # migrate once, before the race
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(RACERS)
    results: mp.Queue[tuple[int, str, str]] = ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(pg_url, n, barrier, results)) for n in range(RACERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners = [o for o in outcomes if o[1] == "won"]
    refused = [o for o in outcomes if o[1] == "refused"]
    assert len(winners) == 1 and len(refused) == RACERS - 1
    winner_serial = winners[0][2]
    for _, _, message in refused:
        assert message == f"battery BAT-00000001 is already linked to unit {winner_serial}"


def test_same_part_twice_on_sqlite_names_the_holder(store: Store) -> None:
    ctx = EventContext("st1")
    first, _ = register_unit(store, "P028AAAAAAAAAA1", sku="BRN404", ctx=ctx)
    second, _ = register_unit(store, "P028AAAAAAAAAA2", sku="BRN404", ctx=ctx)
    assert link_part(store, first.id, "battery", "BAT-1", unique=True, ctx=ctx)
    assert not link_part(store, first.id, "battery", "BAT-1", unique=True, ctx=ctx)
    with pytest.raises(PartTaken, match="already linked to unit P028AAAAAAAAAA1"):
        link_part(store, second.id, "battery", "BAT-1", unique=True, ctx=ctx)
    # a non-unique part (a lot code) may repeat across units
    assert link_part(store, first.id, "lot", "LOT-7", unique=False, ctx=ctx)
    assert link_part(store, second.id, "lot", "LOT-7", unique=False, ctx=ctx)


def test_the_part_that_completes_a_unit_links_it_in_the_same_transaction(store: Store) -> None:
    ctx = EventContext("st1")
    unit, _ = register_unit(store, "P028AAAAAAAAAA3", sku="BRN404", ctx=ctx)
    needs = ["battery", "enclosure"]
    first = link_part(store, unit.id, "battery", "BAT-3", unique=True, ctx=ctx, complete=needs)
    assert first is not None and first.status == "scanned"
    assert first.parts == (("battery", "BAT-3"),)
    last = link_part(store, unit.id, "enclosure", "ENC-3", unique=True, ctx=ctx, complete=needs)
    assert last is not None and last.status == "parts_linked"
    assert last == unit_by_serial(store, "P028AAAAAAAAAA3")
    events = [(e.kind, e.detail) for e in unit_events(store, unit.id)]
    assert events[-2:] == [
        ("part_linked", "enclosure ENC-3"),
        ("parts_linked", "battery BAT-3, enclosure ENC-3"),
    ]
