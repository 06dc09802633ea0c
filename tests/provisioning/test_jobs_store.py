"""The jobs repository and its writer on SQLite and PostgreSQL: leases, races, group commits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from trayline.provisioning.lease import JobBusy, JobLease
from trayline.store import jobs
from trayline.store.db import Store, StoreError
from trayline.store.jobs import LeaseHolder
from trayline.store.models import Event
from trayline.store.writer import StoreWriter


def new_job(store: Store, key: str = "k" * 64) -> int:
    job = {"key": key, "product": "p", "input_path": "t.txt", "claim_mode": "none"}
    rows = [{"line_no": n, "identifier": f"{n:024x}", "id_kind": "device ID"} for n in range(3)]
    event = {"kind": "provision.job.created", "message": "3 devices", "data": {}}
    job_id, created = jobs.create_job(store, job, rows, event)
    assert created
    return job_id


def test_creating_the_same_job_twice_returns_the_first(store: Store) -> None:
    first = new_job(store)
    job = {"key": "k" * 64, "product": "p", "input_path": "t.txt", "claim_mode": "none"}
    again, created = jobs.create_job(store, job, [], {"kind": "x", "message": "y", "data": {}})
    assert (again, created) == (first, False)


def test_lease_is_exclusive_until_released(store: Store) -> None:
    job_id = new_job(store)
    ttl = timedelta(seconds=60)
    with JobLease(store, job_id):
        with pytest.raises(JobBusy) as busy, JobLease(store, job_id):
            pass
        holder = busy.value.holder
        assert holder.pid > 0 and holder.host
        assert f"pid {holder.pid} on {holder.host} since" in str(busy.value)
        assert jobs.take_lease(store, job_id, LeaseHolder.me("other"), ttl) is not None
    assert jobs.take_lease(store, job_id, LeaseHolder.me("other"), ttl) is None


def test_expired_lease_of_another_host_is_taken_over(store: Store) -> None:
    job_id = new_job(store)
    far = LeaseHolder("far", "another-host", 4242, datetime.now(UTC))
    assert jobs.take_lease(store, job_id, far, timedelta(seconds=-1)) is None  # already expired
    assert jobs.take_lease(store, job_id, LeaseHolder.me("me"), timedelta(seconds=60)) is None
    live = LeaseHolder("live", "another-host", 4242, datetime.now(UTC))
    assert jobs.take_lease(store, job_id, live, timedelta(seconds=60)) is not None


def test_dead_holder_on_this_host_does_not_block(store: Store) -> None:
    """A SIGKILLed run leaves its lease behind; its re-run takes it at once (pid is gone)."""
    job_id = new_job(store)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True)  # fmt: skip
    dead = LeaseHolder.me("dead")
    dead = LeaseHolder("dead", dead.host, int(child.stdout), dead.since)
    assert jobs.take_lease(store, job_id, dead, timedelta(hours=1)) is None
    assert jobs.take_lease(store, job_id, LeaseHolder.me("me"), timedelta(seconds=60)) is None


def test_heartbeat_notices_a_lost_lease(store: Store) -> None:
    job_id = new_job(store)
    lease = JobLease(store, job_id, ttl=timedelta(seconds=0.2))
    with lease:
        jobs.release_lease(store, job_id, lease.me.token)  # someone else took it over
        jobs.take_lease(store, job_id, LeaseHolder("thief", "elsewhere", 1, datetime.now(UTC)),
                        timedelta(seconds=60))  # fmt: skip
        assert lease.lost.wait(5)


async def test_writer_group_commits_and_waits_for_durability(store: Store) -> None:
    writer = StoreWriter(store, interval=0.05)
    for n in range(50):
        writer.put(jobs.event_op("test.event", f"event {n}", {}))
    await writer.submit(jobs.event_op("test.event", "last", {}))
    with store.session() as session:
        count = session.scalar(select(func.count()).where(Event.kind == "test.event"))
    assert count == 51
    assert writer.commits < 51, "many writes share one commit"
    writer.close()


async def test_a_waited_write_does_not_wait_out_the_interval(store: Store) -> None:
    """An intent (someone awaits it) is committed at once with what queued before it, even
    when results alone would wait an hour for company."""
    writer = StoreWriter(store, interval=3600.0, waited_interval=0.002)
    writer.put(jobs.event_op("test.result", "fire and forget", {}))
    await asyncio.wait_for(writer.submit(jobs.event_op("test.intent", "waited", {})), 60)
    with store.session() as session:
        kinds = set(session.scalars(select(Event.kind).where(Event.kind.like("test.%"))))
    assert kinds == {"test.result", "test.intent"}
    assert writer.commits == 1
    writer.close()


async def test_writer_failure_reaches_every_later_caller(store: Store) -> None:
    writer = StoreWriter(store, interval=0.01)

    def broken(_session: object) -> None:
        raise StoreError("cannot write to database: disk full")

    with pytest.raises(StoreError):
        await writer.submit(broken)
    with pytest.raises(StoreError):
        writer.put(jobs.event_op("x", "y", {}))
    with pytest.raises(StoreError):
        writer.close()


async def test_writer_keeps_the_event_loop_free(store: Store) -> None:
    """While the writer commits, the loop still runs other tasks (nothing blocks on a disk)."""
    writer = StoreWriter(store, interval=0.05)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await writer.submit(jobs.event_op("x", "y", {}))
    ticker.cancel()
    assert ticks > 1
    writer.close()
