"""The outbox rows: written with the final state, the unit record as payload, ordered per unit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from outboxkit import build_line
from sqlalchemy import func, select

from trayline.station.record import unit_record
from trayline.store.db import Store
from trayline.store.models.outbox import OutboxMessage
from trayline.store.outbox import (
    due_messages,
    list_messages,
    mark_failed,
    mark_retry,
    mark_sent,
    outbox_counts,
    requeue,
)
from trayline.store.units import (
    EventContext,
    LeaseLost,
    advance,
    register_unit,
    take_lease,
    unit_by_serial,
)

CTX = EventContext("st9", "A", "op")


def _count(store: Store) -> int:
    with store.session() as session:
        return int(session.execute(select(func.count()).select_from(OutboxMessage)).scalar() or 0)


def test_line_queues_each_final_unit_with_its_record(store: Store, tmp_path: Path) -> None:
    built = build_line(store, tmp_path, ready=2, failed=1)
    messages = sorted(list_messages(store), key=lambda m: m.id)
    assert [m.kind for m in messages].count("unit.ready") == 2
    assert [m.kind for m in messages].count("unit.failed") == 1
    assert {m.serial_number for m in messages} == set(built.ready + built.failed)
    for m in messages:
        unit = unit_by_serial(store, m.serial_number)
        assert unit is not None
        record = dict(m.payload["unit"])
        assert record.pop("batch") is None
        now = unit_record(store, unit)
        # the record as of the final state; only the lease release may touch the row later
        assert record.pop("updated_at") <= now.pop("updated_at")
        assert record == now
        assert m.payload["idempotency_key"] == m.idempotency_key and m.sequence == 1
        assert m.state == "pending"


def test_only_final_states_queue_and_a_lost_lease_queues_nothing(store: Store) -> None:
    unit, _ = register_unit(store, "P028AAA00000001", sku="BRN404", ctx=CTX)
    advance(store, unit.id, "parts_linked", owner=None, ctx=CTX)
    assert _count(store) == 0
    assert take_lease(store, unit.id, "me", ttl=timedelta(minutes=1))
    with pytest.raises(LeaseLost):
        advance(store, unit.id, "ready", owner="someone-else", ctx=CTX)
    assert _count(store) == 0  # the state was refused, and so was its message
    assert unit_by_serial(store, "P028AAA00000001").status == "parts_linked"  # type: ignore[union-attr]


def test_order_per_unit_and_failed_rows_hold_back_their_unit(store: Store) -> None:
    a, _ = register_unit(store, "P028AAA00000001", sku="BRN404", ctx=CTX)
    b, _ = register_unit(store, "P028AAA00000002", sku="BRN404", ctx=CTX)
    advance(store, a.id, "failed", owner=None, ctx=CTX, reason="vbat low")
    advance(store, b.id, "ready", owner=None, ctx=CTX)
    advance(store, a.id, "ready", owner=None, ctx=CTX)  # retested and passed
    first = due_messages(store)
    assert [(m.serial_number, m.sequence, m.kind) for m in first] == [
        ("P028AAA00000001", 1, "unit.failed"),
        ("P028AAA00000002", 1, "unit.ready"),
    ]
    mark_retry(store, first[0].id, "HTTP 503", timedelta(hours=1))
    assert [m.serial_number for m in due_messages(store)] == ["P028AAA00000002"]
    mark_sent(store, first[1].id)
    mark_failed(store, first[0].id, "HTTP 401: bad signature")
    assert due_messages(store) == []  # a's second message waits behind its refused first
    counts = outbox_counts(store)
    assert (counts.pending, counts.sent, counts.failed) == (1, 1, 1)
    assert requeue(store, all_failed=True) == 1
    again = due_messages(store)
    assert [(m.serial_number, m.sequence) for m in again] == [("P028AAA00000001", 1)]
    assert again[0].idempotency_key == first[0].idempotency_key  # stable across retries
    mark_sent(store, again[0].id)
    last = due_messages(store)
    assert [(m.serial_number, m.sequence, m.kind) for m in last] == [
        ("P028AAA00000001", 2, "unit.ready")
    ]
